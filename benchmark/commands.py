"""``fer-bench run | tables | figures | reproduce``: the benchmark's commands.

The functions :func:`plan_jobs` and :func:`execute` are the Python API behind ``run`` and
``reproduce``; the click commands only parse flags.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import rich_click as click

from fercore.errors import ConfigError
from fercore.progress import console, make_progress, out_console
from fercore.seeding import parse_shard
from fercore.sources import parse_options

from .config_file import config_options, write_job_configs
from .datasets import (DataSettings, ResolvedDataset, degradation_names, is_sample, parse_data_paths,
                       parse_scoped_options, parse_value, resolve_in_order, sample_datasets, split_list)
from .specs import MethodSpec, RecipeOverrides, parse_methods, parse_seeds, plan_model, stage_plan

if TYPE_CHECKING:
    from .augment import AugmentConfig

DEFAULT_METHODS = "lrdif,scn"


# ----------------------------------------------------------------------- options
def data_options(fn):
    """Flags that say where datasets come from (shared by ``run`` and ``reproduce``)."""
    opts = [
        click.option("--root", type=click.Path(file_okay=False), default=None,
                     help="Folder of the clean base dataset (e.g. your RAF-DB copy); degraded versions of it "
                          "are built on demand unless given with --data."),
        click.option("--data", "data_paths", multiple=True, metavar="NAME=PATH",
                     help="Folder of one dataset, repeatable: `--data rafdb=~/RAF-DB --data udc-rafdb=~/UDC-RAF-DB` "
                          "(a degraded copy made by fer-degrade)."),
        click.option("--src-opt", "src_opts", multiple=True, metavar="[BASE.]KEY=VALUE",
                     help="Source option, repeatable, e.g. `--src-opt ferplus.classes=7`."),
        click.option("--degraded-dir", type=click.Path(file_okay=False), default=None,
                     help="Where on-demand degraded copies are built [default: $FER_CACHE/degraded]."),
        click.option("--degrade-seed", default=0, show_default=True, help="Seed of on-demand degraded copies."),
        click.option("--udc-display", default="toled", show_default=True,
                     help="Display preset of on-demand UDC copies (make_udc(display=...))."),
        click.option("--ll-preset", default="lldif", show_default=True,
                     help="Preset of on-demand low-light copies (make_lowlight(preset=...))."),
        click.option("--degrade-opt", "degrade_opts", multiple=True, metavar="[NAME.]KEY=VALUE",
                     help="Extra setting of on-demand copies, repeatable (JSON values); NAME is a degradation "
                          "(udc, ll, a plugin's); `NAME.preset=P` picks its preset."),
        click.option("--allow-unverified-data", is_flag=True,
                     help="Train on a degraded copy given with --data even when it is incomplete, fails "
                          "`fer-degrade verify`, or was not made by fer-degrade (recorded in run.json)."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def exec_options(fn):
    """Flags of how jobs run (shared by ``run`` and ``reproduce``)."""
    opts = [
        click.option("--seeds", default=None, help="Seeds, e.g. `0,1,2` or `0-4` [default: 0 for run, 0,1,2 for reproduce]."),
        click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False),
                     help="Runs folder (one sub-folder per dataset / method / seed)."),
        click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto."),
        click.option("--workers", default=2, show_default=True, help="Image-decoding processes (results do not depend on it)."),
        click.option("--threads", default=0, show_default=True, help="torch CPU threads (0: torch's default)."),
        click.option("--epochs", type=int, default=None, help="Epochs (of every stage) instead of the recipe's."),
        click.option("--lr", type=float, default=None, help="Learning rate instead of the recipe's."),
        click.option("--batch-size", type=int, default=None, help="Batch size instead of the recipe's."),
        click.option("--input-size", type=int, default=None, help="Input side instead of the recipe's."),
        click.option("--recipe", "recipe_pairs", multiple=True, metavar="KEY=VALUE",
                     help="Any recipe field, repeatable (JSON values): `--recipe optimizer=sgd --recipe augment='[\"hflip\"]'`."),
        click.option("--aug", "aug_pairs", multiple=True, metavar="KEY=VALUE",
                     help="Augmentation range, repeatable: `--aug rotate_deg=15 --aug crop_scale=0.875`."),
        click.option("--eval-every", default=1, show_default=True, help="Evaluate every N epochs (0: at the end only)."),
        click.option("--eval-batch-size", default=128, show_default=True, help="Evaluation batch size."),
        click.option("--eval-clean/--no-eval-clean", default=True, show_default=True,
                     help="Also evaluate models trained on a degraded set on its clean test set."),
        click.option("--save-features/--no-save-features", default=True, show_default=True,
                     help="Keep test features for t-SNE figures."),
        click.option("--limit-train", type=int, default=None, help="Class-balanced subset of N training images (smoke runs)."),
        click.option("--limit-test", type=int, default=None, help="Class-balanced subset of N test images (smoke runs)."),
        click.option("--keep-last-batch", is_flag=True, help="Train on each epoch's last partial batch too."),
        click.option("--cache-mb", default=4096.0, show_default=True,
                     help="Keep a split's decoded images in memory when they fit in this many MiB."),
        click.option("--landmark-detect", is_flag=True, help="Detect faces before fitting landmarks (unaligned images)."),
        click.option("--stop-after-epochs", type=int, default=None,
                     help="Stop each job after N epochs in this call; the next call resumes (time-limited slots, tests)."),
        click.option("--force", is_flag=True, help="Retrain jobs that already finished."),
        click.option("--job-shard", default=None, metavar="I/N",
                     help="Run only jobs I, I+N, I+2N... of the list (one SLURM array task each)."),
        click.option("--report/--no-report", default=True, show_default=True,
                     help="Write tables and figures into OUT/tables and OUT/figures at the end."),
        click.option("--dry-run", is_flag=True, help="Print the jobs and exit."),
        click.option("--dist-timeout-min", default=120.0, show_default=True,
                     help="torch.distributed timeout (under torchrun), minutes."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def _data_settings(root, data_paths, src_opts, degraded_dir, degrade_seed, udc_display, ll_preset,
                   degrade_opts, device, workers, allow_unverified=False) -> DataSettings:
    return DataSettings(root=root, paths=parse_data_paths(data_paths),
                        src_opts=parse_scoped_options(src_opts, "--src-opt"),
                        degraded_dir=degraded_dir, degrade_seed=degrade_seed, udc_display=udc_display,
                        ll_preset=ll_preset,
                        degrade_opts=parse_scoped_options(degrade_opts, "--degrade-opt", degradation_names(), parse_json=True),
                        device=_build_device(device), workers=workers, allow_unverified=allow_unverified)


def _build_device(device: str) -> str:
    """Device for on-demand degraded copies (``auto``: CUDA when present)."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _aug_config(pairs) -> AugmentConfig:
    from .augment import AugmentConfig  # torch: not at start-up

    fields: dict[str, Any] = {}
    known = AugmentConfig.__dataclass_fields__
    for k, v in parse_options(pairs, flag="--aug").items():
        if k not in known:
            raise ConfigError(f"unknown augmentation setting {k!r}; known: {', '.join(known)}", flag="--aug")
        val = parse_value(v)
        fields[k] = tuple(val) if isinstance(val, list) else val
    return AugmentConfig(**fields)


def _job_shard(text: str | None) -> tuple[int, int]:
    return parse_shard(text, flag="--job-shard") if text else (0, 1)


# ------------------------------------------------------------------------ engine
def plan_jobs(methods: list[MethodSpec], datasets: list[ResolvedDataset], seeds: list[int],
              overrides: RecipeOverrides, preset: str | None):
    """Every (dataset, method, seed) job, in that nesting order."""
    from .runner import Job

    plans = {}
    for spec in methods:
        for ds in datasets:
            default = preset or ("tiny" if ds.name.base == "sample" else None)
            key = (spec, default)
            if key not in plans:
                plans[key] = plan_model(spec, overrides, default)
    return [Job(plans[(spec, preset or ("tiny" if ds.name.base == "sample" else None))], ds, seed)
            for ds in datasets for spec in methods for seed in seeds]


def execute(jobs, settings, info, *, report: bool = True, dry_run: bool = False,
            shard: tuple[int, int] = (0, 1), stand_in: str | None = "auto",
            t_key: str = "T", table_only: list[str] | None = None) -> list[dict[str, Any]]:
    """Run jobs (skipping finished ones), then write results.csv, tables and figures."""
    from rich.table import Table

    from .results import write_results_table
    from .runner import record_failure, run_job

    jobs = jobs[shard[0]::shard[1]]
    if dry_run:
        t = Table(title=f"{len(jobs)} jobs")
        for col in ("dataset", "method", "preset", "seed", "epochs", "folder"):
            t.add_column(col)
        for j in jobs:
            eps = "+".join(str(n) for _, n in stage_plan(j.plan.recipe, j.plan.stages))
            t.add_row(j.dataset.name.name, j.plan.spec.label, j.plan.preset, str(j.seed), eps,
                      str(j.run_dir(settings)))
        out_console.print(t)
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
        _print_summary(done, time.perf_counter() - t_start)
        if any(r.get("status") in ("done", "skipped") for r in done) and report:
            write_report(settings.out, stand_in=stand_in, t_key=t_key, table_only=table_only)
    return done


def write_report(runs: Path, *, stand_in: str | None = "auto", t_key: str = "T",
                 table_only: list[str] | None = None) -> None:
    from .figures import write_figures
    from .results import find_results
    from .tables import write_tables

    runs = Path(runs)
    write_tables(find_results(runs), runs / "tables", stand_in=stand_in, only=table_only)
    idx = write_figures(runs, runs / "figures", t_key=t_key)
    console.print(f"tables: {runs / 'tables'}  figures: {runs / 'figures'} ({len(idx['figures'])} files)")


def _print_summary(done: list[dict[str, Any]], seconds: float) -> None:
    from rich.table import Table

    t = Table(title=f"{len(done)} jobs in {seconds:.0f} s")
    for col in ("dataset", "method", "seed", "status", "accuracy", "macro-F1", "train s"):
        t.add_column(col)
    for r in done:
        acc = r.get("accuracy")
        t.add_row(str(r.get("dataset")), str(r.get("label")), str(r.get("seed")), r.get("status", ""),
                  f"{acc:.2f}" if isinstance(acc, float) else "", 
                  f"{r['macro_f1']:.2f}" if isinstance(r.get("macro_f1"), float) else "",
                  f"{r['train_time_s']:.1f}" if isinstance(r.get("train_time_s"), float) else "")
    out_console.print(t)
    failed = [r for r in done if r.get("status") == "failed"]
    for r in failed:
        console.print(f"[red]{r['label']} on {r['dataset']} seed {r['seed']}: {r['error']}[/]")


def _settings(out, device, workers, threads, eval_every, eval_batch_size, eval_clean, save_features,
              limit_train, limit_test, keep_last_batch, landmark_detect, stop_after_epochs, force, aug_pairs,
              cache_mb=4096.0):
    from .runner import RunSettings

    if eval_every < 0:
        raise ConfigError(f"must be >= 0, got {eval_every}", flag="--eval-every")
    for flag, v in (("--eval-batch-size", eval_batch_size), ("--limit-train", limit_train),
                    ("--limit-test", limit_test), ("--stop-after-epochs", stop_after_epochs)):
        if v is not None and v <= 0:
            raise ConfigError(f"must be positive, got {v}", flag=flag)
    return RunSettings(out=Path(out), device=device, workers=workers, eval_every=eval_every,
                       eval_batch_size=eval_batch_size, eval_clean=eval_clean, save_features=save_features,
                       stop_after_epochs=stop_after_epochs, limit_train=limit_train, limit_test=limit_test,
                       drop_last=not keep_last_batch, augment=_aug_config(aug_pairs), force=force,
                       landmark_detect=landmark_detect, threads=threads, cache_mb=cache_mb)


def _distributed(device: str, timeout: float):
    from .distributed import init_distributed

    return init_distributed(device, timeout)


def _exit_status(done: list[dict[str, Any]]) -> None:
    if any(r.get("status") == "failed" for r in done):
        sys.exit(1)


# ---------------------------------------------------------------------- commands
@click.command("run")
@click.option("--methods", default=DEFAULT_METHODS, show_default=True,
              help="Methods, comma-separated: `NAME[:VARIANT][@PRESET][+KEY=VALUE]`, e.g. `lrdif:S2-V4,scn@paper`.")
@click.option("--datasets", default=None,
              help="Datasets, comma-separated: rafdb, udc-rafdb, ll-rafdb, ferplus, ..., kdef, folder, sample and "
                   "their udc-/ll- versions [default: sample,udc-sample,ll-sample without data flags].")
@click.option("--preset", default=None,
              help="Preset for methods that name none [default: tiny on the sample set, else the method's own].")
@click.option("--model-opt", "model_opts", multiple=True, metavar="[METHOD.]KEY=VALUE",
              help="Model constructor option, repeatable: `--model-opt lrdif.T=8`.")
@click.option("--sweep", "sweeps", multiple=True, metavar="[METHOD.]KEY=V1,V2",
              help="One configuration per value, repeatable: `--sweep lrdif.T=1,2,4,8,16,32`.")
@data_options
@exec_options
@config_options
def run_cmd(methods, datasets, preset, model_opts, sweeps, root, data_paths, src_opts, degraded_dir, degrade_seed,
            udc_display, ll_preset, degrade_opts, allow_unverified_data, seeds, out, device, workers, threads, epochs,
            lr, batch_size,
            input_size, recipe_pairs, aug_pairs, eval_every, eval_batch_size, eval_clean, save_features,
            limit_train, limit_test, keep_last_batch, cache_mb, landmark_detect, stop_after_epochs, force, job_shard,
            report, dry_run, dist_timeout_min):
    """Train and evaluate every (method, dataset, seed) with the methods' recorded recipes.

    Each job checkpoints every epoch and resumes after an interruption to the same result;
    finished jobs are skipped. Writes `OUT/results.csv`, per-job folders (run.json,
    epochs.csv, result.json, predictions.npz, model.pt), then tables and figures.

    With no data flags it runs the embedded default: the sample set and its UDC and low-light
    versions, tiny presets.

    Example: `fer-bench run --methods lrdif,scn --datasets udc-rafdb,rafdb --root ~/data/RAF-DB --seeds 0,1,2 --device cuda --out runs/`

    Example (embedded default): `fer-bench run --methods lrdif,scn`

    Multi-GPU: `torchrun --nproc_per_node=4 -m benchmark.cli run --methods lrdif --datasets udc-rafdb --root ~/RAF-DB`
    """
    info = _distributed(device, dist_timeout_min)
    try:
        settings = _settings(out, device, workers, threads, eval_every, eval_batch_size, eval_clean, save_features,
                             limit_train, limit_test, keep_last_batch, landmark_detect, stop_after_epochs, force,
                             aug_pairs, cache_mb)
        specs = parse_methods(methods, model_opts, sweeps)
        dsettings = _data_settings(root, data_paths, src_opts, degraded_dir, degrade_seed, udc_display, ll_preset,
                                   degrade_opts, device, workers, allow_unverified_data)
        if datasets:
            names = split_list(datasets)
        elif data_paths:
            names = list(dsettings.paths)
        elif root:
            raise ConfigError("name the datasets to run on the --root folder, e.g. --datasets rafdb,udc-rafdb",
                              flag="--datasets")
        else:
            names = sample_datasets()
        overrides = RecipeOverrides.from_cli(epochs, lr, batch_size, input_size, recipe_pairs)
        seed_list = parse_seeds(seeds or "0")
        resolved = resolve_in_order(names, dsettings, info)
        jobs = plan_jobs(specs, resolved, seed_list, overrides, preset)
        stand_in = "sample" if all(is_sample(n) for n in names) else "auto"
        write_job_configs(jobs, settings, info, dry_run=dry_run, shard=_job_shard(job_shard))
        done = execute(jobs, settings, info, report=report, dry_run=dry_run, shard=_job_shard(job_shard),
                       stand_in=stand_in)
    finally:
        from .distributed import shutdown

        shutdown(info)
    _exit_status(done)


@click.command("tables")
@click.option("--runs", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Runs folder written by `fer-bench run`.")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Output folder [default: RUNS/tables].")
@click.option("--metric", default="accuracy", show_default=True,
              type=click.Choice(["accuracy", "best_accuracy", "macro_f1", "clean_accuracy"]),
              help="What the cells show (final-epoch accuracy by default).")
@click.option("--stand-in", default="auto", show_default=True,
              help="Base dataset that stands in for the papers' (sample, folder...); `none` for none; "
                   "`auto`: sample when the runs include it.")
@click.option("--fill", "fills", multiple=True, metavar="ROW=LABEL",
              help="Fill a paper row with another run configuration, e.g. `--fill SCN=scn@paper+pretrained=\"ms1m.pth\"`.")
@click.option("--table", "only", multiple=True, help="Only these paper tables (e.g. lrdif-table2), repeatable.")
def tables_cmd(runs, out, metric, stand_in, fills, only):
    """Tables 1-5 of LRDif and LLDif as CSV, LaTeX (booktabs) and Markdown.

    Each cell: mean ± std over seeds, the paper's number and the difference; missing runs
    show as `missing`. Also a summary of every run and `results.csv`.

    Example: `fer-bench tables --runs runs/ --out tables/`
    """
    from .results import find_results, write_results_table
    from .tables import get_table, parse_fill, write_tables

    results = find_results(runs)
    write_results_table(runs)
    keys = [get_table(k).key for k in only] if only else None
    out = Path(out) if out else Path(runs) / "tables"
    written = write_tables(results, out, metric=metric, stand_in=None if stand_in == "none" else stand_in,
                           fill=parse_fill(fills), only=keys)
    out_console.print(f"{len(written)} tables ({len(results)} finished runs) in {out}")


@click.command("figures")
@click.option("--runs", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Runs folder written by `fer-bench run`.")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Output folder [default: RUNS/figures].")
@click.option("--t-key", default="T", show_default=True, help="Model option holding the diffusion steps.")
@click.option("--tsne-max", default=1500, show_default=True, help="At most this many points per domain in t-SNE.")
@click.option("--only", "kinds", multiple=True,
              type=click.Choice(["tsne", "tstudy", "confidence", "classes", "confusion"]),
              help="Only these figures, repeatable.")
def figures_cmd(runs, out, t_key, tsne_max, kinds):
    """The papers' figures (PNG and PDF): t-SNE clean vs degraded, accuracy vs diffusion
    steps, confidence distributions, class distributions, confusion matrices.

    Example: `fer-bench figures --runs runs/ --out figures/`
    """
    from .figures import write_figures

    out = Path(out) if out else Path(runs) / "figures"
    idx = write_figures(runs, out, t_key=t_key, tsne_max=tsne_max,
                        kinds=tuple(kinds) or ("tsne", "tstudy", "confidence", "classes", "confusion"))
    for s in idx["skipped"]:
        console.print(f"[yellow]skipped:[/] {s}")
    out_console.print(f"{len(idx['figures'])} files in {out}")


@click.command("reproduce")
@click.argument("target", type=click.Choice(["table1", "table2", "table3", "table4", "table5", "tstudy"]))
@click.option("--paper", default="lrdif", show_default=True, type=click.Choice(["lrdif", "lldif"]))
@click.option("--preset", default="paper", show_default=True, help="Preset of every method.")
@click.option("--stand-in", default=None, help="Run on this base instead of the paper's datasets (e.g. sample).")
@click.option("--only-available", is_flag=True,
              help="Skip the table's methods that are not installed (their cells stay missing).")
@click.option("--t-values", default="1,2,4,8,16,32", show_default=True, help="tstudy: diffusion steps to train.")
@click.option("--t-key", default="T", show_default=True, help="tstudy: the model option holding the steps.")
@click.option("--datasets", default=None, help="tstudy: dataset [default: udc-rafdb (lrdif), ll-kdef (lldif)].")
@data_options
@exec_options
def reproduce_cmd(target, paper, preset, stand_in, only_available, t_values, t_key, datasets, root, data_paths,
                  src_opts, degraded_dir, degrade_seed, udc_display, ll_preset, degrade_opts, allow_unverified_data,
                  seeds, out, device,
                  workers, threads, epochs, lr, batch_size, input_size, recipe_pairs, aug_pairs, eval_every,
                  eval_batch_size, eval_clean, save_features, limit_train, limit_test, keep_last_batch,
                  cache_mb, landmark_detect, stop_after_epochs, force, job_shard, report, dry_run, dist_timeout_min):
    """Run every method, dataset and seed one paper table needs, at the paper's settings,
    then write the tables.

    `tstudy` trains the paper's method at each number of diffusion steps (LRDif Fig. 6 on
    UDC-RAF-DB, LLDif Fig. 8 on LL-KDEF) and plots accuracy against T.

    Example: `fer-bench reproduce table2 --root ~/data/RAF-DB --device cuda`

    Example: `fer-bench reproduce table1 --paper lldif --data rafdb=~/RAF-DB --data ferplus=~/FERPlus --data kdef=~/KDEF`
    """
    from .reproduce import reproduce_jobs

    info = _distributed(device, dist_timeout_min)
    try:
        settings = _settings(out, device, workers, threads, eval_every, eval_batch_size, eval_clean, save_features,
                             limit_train, limit_test, keep_last_batch, landmark_detect, stop_after_epochs, force,
                             aug_pairs, cache_mb)
        dsettings = _data_settings(root, data_paths, src_opts, degraded_dir, degrade_seed, udc_display, ll_preset,
                                   degrade_opts, device, workers, allow_unverified_data)
        overrides = RecipeOverrides.from_cli(epochs, lr, batch_size, input_size, recipe_pairs)
        seed_list = parse_seeds(seeds or "0,1,2")
        jobs, table_keys = reproduce_jobs(target, paper, dsettings, seed_list, overrides, preset,
                                          stand_in=stand_in, only_available=only_available, t_values=t_values,
                                          t_key=t_key, datasets=datasets, info=info)
        done = execute(jobs, settings, info, report=report, dry_run=dry_run, shard=_job_shard(job_shard),
                       stand_in=stand_in, t_key=t_key, table_only=table_keys)
    finally:
        from .distributed import shutdown

        shutdown(info)
    _exit_status(done)


COMMANDS = (run_cmd, tables_cmd, figures_cmd, reproduce_cmd)
