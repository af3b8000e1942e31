"""Running planned jobs: the benchmark's Python API behind ``fer-bench run`` and ``reproduce``.

* :func:`run_benchmark` / :func:`reproduce_benchmark` -- a whole command from its option
  bundles (:mod:`benchmark.options`): resolve the device once, join ``torchrun``'s process
  group, plan, run, report;
* :func:`execute` -- run a list of jobs (skipping finished ones), then write ``results.csv``,
  tables and figures;
* :func:`write_report` -- tables and figures of a runs folder.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fercore.progress import console, make_progress, out_console

from .config_file import bundle_values, write_job_configs
from .datasets import is_sample, resolve_in_order
from .options import DataOptions, ExecOptions, ReproduceOptions, RunOptions
from .plan import plan_jobs, run_dataset_names
from .specs import parse_methods

if TYPE_CHECKING:
    import torch

    from .distributed import DistInfo


@contextlib.contextmanager
def session(opts: ExecOptions) -> Iterator[tuple[DistInfo, torch.device]]:
    """Resolve ``--device`` once, join the process group under ``torchrun``; yields (info, this rank's device)."""
    from fercore.device import resolve_device

    from .distributed import init_distributed, shutdown

    device = resolve_device(opts.device)
    info = init_distributed(device, opts.dist_timeout_min)
    try:
        yield info, info.place(device)
    finally:
        shutdown(info)


def run_benchmark(run: RunOptions, data: DataOptions, opts: ExecOptions) -> list[dict[str, Any]]:
    """``fer-bench run``: train and evaluate every (dataset, method, seed); returns each job's result."""
    with session(opts) as (info, device):
        settings = opts.run_settings(device)
        specs = parse_methods(run.methods, run.model_opts, run.sweeps)
        dsettings = data.settings(device, opts.workers)
        names = run_dataset_names(run.datasets, dsettings)
        overrides = opts.overrides()
        seeds = opts.seed_list("0")
        jobs = plan_jobs(specs, resolve_in_order(names, dsettings, info), seeds, overrides, run.preset)
        stand_in = "sample" if all(is_sample(n) for n in names) else "auto"
        write_job_configs(jobs, settings, info, bundle_values(run, data, opts), dry_run=opts.dry_run,
                          shard=opts.shard())
        return execute(jobs, settings, info, report=opts.report, dry_run=opts.dry_run, shard=opts.shard(),
                       stand_in=stand_in)


def reproduce_benchmark(rep: ReproduceOptions, data: DataOptions, opts: ExecOptions) -> list[dict[str, Any]]:
    """``fer-bench reproduce``: the jobs one paper table (or the T study) needs, then its tables."""
    from .reproduce import reproduce_jobs

    with session(opts) as (info, device):
        settings = opts.run_settings(device)
        dsettings = data.settings(device, opts.workers)
        jobs, table_keys = reproduce_jobs(rep.target, rep.paper, dsettings, opts.seed_list("0,1,2"), opts.overrides(),
                                          rep.preset, stand_in=rep.stand_in, only_available=rep.only_available,
                                          t_values=rep.t_values, t_key=rep.t_key, datasets=rep.datasets, info=info)
        return execute(jobs, settings, info, report=opts.report, dry_run=opts.dry_run, shard=opts.shard(),
                       stand_in=rep.stand_in, t_key=rep.t_key, table_only=table_keys)


def print_plan(jobs, settings) -> None:
    """The ``--dry-run`` table: each job's dataset (and fold of a cross-validation), method,
    preset, seed, budget, steps and epochs per stage, and folder."""
    from rich.table import Table

    from .budget import describe_stages

    t = Table(title=f"{len(jobs)} jobs")
    for col in ("dataset", "method", "preset", "seed", "budget", "steps", "epochs", "folder"):
        t.add_column(col, overflow="fold")  # wrap, never cut: the dry run shows exactly what runs
    for j in jobs:
        stages = j.stage_steps(settings)
        budget = j.resolved_budget(settings)
        t.add_row(j.dataset_title, j.plan.spec.label, j.plan.preset, str(j.seed),
                  str(budget) if budget else "--epochs", describe_stages(stages),
                  "+".join(str(st.epochs) for st in stages), str(j.run_dir(settings)))
    out_console.print(t)


def execute(jobs, settings, info, *, report: bool = True, dry_run: bool = False,
            shard: tuple[int, int] = (0, 1), stand_in: str | None = "auto",
            t_key: str = "T", table_only: list[str] | None = None) -> list[dict[str, Any]]:
    """Run jobs (skipping finished ones), then write results.csv, tables and figures."""
    from .results import write_results_table
    from .runner import record_failure, run_job

    jobs = jobs[shard[0]::shard[1]]
    if dry_run:
        print_plan(jobs, settings)
        return []
    done: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    with make_progress() as progress:
        top = progress.add_task("jobs", total=len(jobs)) if info.is_writer else None
        for job in jobs:
            try:
                res = run_job(job, settings, info, progress)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 -- one failed job must not stop the others
                if info.enabled:
                    raise
                console.print(f"[bold red]failed:[/] {job.title}: {exc}")
                res = record_failure(job, settings, exc)
            done.append(res)
            if top is not None:
                progress.advance(top)
            if info.is_writer and res.get("status") in ("done", "skipped"):
                write_results_table(settings.out)
    if info.is_writer:
        print_summary(done, time.perf_counter() - t_start)
        if any(r.get("status") in ("done", "skipped") for r in done) and report:
            write_report(settings.out, stand_in=stand_in, t_key=t_key, table_only=table_only)
    return done


def write_report(runs: Path, *, stand_in: str | None = "auto", t_key: str = "T",
                 table_only: list[str] | None = None) -> None:
    """Tables (``RUNS/tables``), figures (``RUNS/figures``) and the HTML report (``RUNS/report``)
    of every finished run in ``runs``."""
    from .figures import write_figures
    from .report import write_html_report
    from .results import find_results
    from .tables import write_tables

    runs = Path(runs)
    write_tables(find_results(runs), runs / "tables", stand_in=stand_in, only=table_only)
    idx = write_figures(runs, runs / "figures", t_key=t_key)
    page = write_html_report(runs)
    console.print(f"tables: {runs / 'tables'}  figures: {runs / 'figures'} ({len(idx['figures'])} files)  "
                  f"report: {page}")


def print_summary(done: list[dict[str, Any]], seconds: float) -> None:
    """One row per job (status, accuracy, macro-F1, training time), then each failure's error."""
    from rich.table import Table

    t = Table(title=f"{len(done)} jobs in {seconds:.0f} s")
    for col in ("dataset", "method", "seed", "status", "accuracy", "macro-F1", "train s"):
        t.add_column(col)
    for r in done:
        acc = r.get("accuracy")
        fold = f" fold {r['fold']} of {r['folds']}" if r.get("folds") else ""
        t.add_row(str(r.get("dataset")) + fold, str(r.get("label")), str(r.get("seed")), r.get("status", ""),
                  f"{acc:.2f}" if isinstance(acc, float) else "",
                  f"{r['macro_f1']:.2f}" if isinstance(r.get("macro_f1"), float) else "",
                  f"{r['train_time_s']:.1f}" if isinstance(r.get("train_time_s"), float) else "")
    out_console.print(t)
    failed = [r for r in done if r.get("status") == "failed"]
    for r in failed:
        console.print(f"[red]{r['label']} on {r['dataset']} seed {r['seed']}: {r['error']}[/]")
