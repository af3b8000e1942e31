"""``fer-bench run | tables | figures | reproduce``: click parsing only.

Each command fills option bundles (:mod:`benchmark.options`) and calls the Python API
(:mod:`benchmark.execute`, :mod:`benchmark.plan`); nothing here is imported back by the engine.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import rich_click as click

from fercore.progress import console, out_console

from .config_file import config_options
from .options import DataOptions, ExecOptions, ReproduceOptions, RunOptions

DEFAULT_METHODS = RunOptions.methods


def _bundle(cls, opts):
    """Decorator: add the click ``opts`` and pass their values to the command as one ``cls`` bundle."""
    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, cls.pop_from(kwargs), **kwargs)

        for o in reversed(opts):
            wrapper = o(wrapper)
        return wrapper

    return deco


# ----------------------------------------------------------------------- options
_DATA_FLAGS = [
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
#: Flags that say where datasets come from (shared by ``run`` and ``reproduce``): a DataOptions.
data_options = _bundle(DataOptions, _DATA_FLAGS)


_EXEC_FLAGS = [
    click.option("--seeds", default=None, help="Seeds, e.g. `0,1,2` or `0-4` [default: 0 for run, 0,1,2 for reproduce]."),
    click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False),
                 help="Runs folder (one sub-folder per dataset / method / seed)."),
    click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto."),
    click.option("--workers", default=2, show_default=True, help="Image-decoding processes (results do not depend on it)."),
    click.option("--threads", default=0, show_default=True, help="torch CPU threads (0: torch's default)."),
    click.option("--budget", default=None, metavar="N[steps]|Nimg",
                 help="Training budget of every method: optimiser steps (`600`, `600steps`) or images seen "
                      "(`40000img`), split over a method's stages by its recipe [default: the preset's, "
                      "e.g. tiny: 7 epochs of the training set, at least 300 steps of 32]."),
    click.option("--epochs", type=int, default=None,
                 help="Train every stage of every method N epochs instead of a shared budget (unequal budgets)."),
    click.option("--lr", type=float, default=None, help="Learning rate instead of the recipe's."),
    click.option("--batch-size", type=int, default=None, help="Batch size instead of the recipe's."),
    click.option("--input-size", type=int, default=None, help="Input side instead of the recipe's."),
    click.option("--recipe", "recipe_pairs", multiple=True, metavar="KEY=VALUE",
                 help="Any recipe field, repeatable (JSON values): `--recipe optimizer=sgd --recipe augment='[\"hflip\"]'`."),
    click.option("--aug", "aug_pairs", multiple=True, metavar="KEY=VALUE",
                 help="Augmentation range, repeatable: `--aug rotate_deg=15 --aug crop_scale=0.875`; "
                      "`--aug udc:p=0.5[,display=poled]` / `--aug ll:p=0.5[,preset=realistic]` degrade "
                      "training images on the fly."),
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
#: Flags of how jobs run (shared by ``run`` and ``reproduce``): an ExecOptions.
exec_options = _bundle(ExecOptions, _EXEC_FLAGS)


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
def run_cmd(data: DataOptions, opts: ExecOptions, **run: Any) -> None:
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
    from .execute import run_benchmark

    _exit_status(run_benchmark(RunOptions(**run), data, opts))


@click.command("tables")
@click.option("--runs", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Runs folder written by `fer-bench run`.")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Output folder [default: RUNS/tables].")
@click.option("--metric", default="accuracy", show_default=True,
              type=click.Choice(["accuracy", "best_accuracy", "macro_f1", "mean_class_accuracy", "clean_accuracy"]),
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
def reproduce_cmd(data: DataOptions, opts: ExecOptions, **rep: Any) -> None:
    """Run every method, dataset and seed one paper table needs, at the paper's settings,
    then write the tables.

    `tstudy` trains the paper's method at each number of diffusion steps (LRDif Fig. 6 on
    UDC-RAF-DB, LLDif Fig. 8 on LL-KDEF) and plots accuracy against T.

    Example: `fer-bench reproduce table2 --root ~/data/RAF-DB --device cuda`

    Example: `fer-bench reproduce table1 --paper lldif --data rafdb=~/RAF-DB --data ferplus=~/FERPlus --data kdef=~/KDEF`
    """
    from .execute import reproduce_benchmark

    _exit_status(reproduce_benchmark(ReproduceOptions(**rep), data, opts))


@click.command("robustness")
@click.option("--methods", default="cnn,scn,lrdif", show_default=True,
              help="Methods, comma-separated (the syntax of `run --methods`).")
@click.option("--severities", default="1,2,3,4,5", show_default=True,
              help="Severity levels 1..5 to test at (0, the clean test set, is always added; 3 = the calibrated preset).")
@click.option("--degradations", default="udc,ll", show_default=True, help="Simulators to test on: udc, ll.")
@click.option("--train-on", default="clean", show_default=True, metavar="clean|DEG-sK|each",
              help="Train each method once on the clean set, or on one degraded copy (`udc-s4`), and test it at "
                   "every severity; `each`: train one model per severity and test it there.")
@click.option("--reference", default=None, help="Method the corruption error is relative to [default: the first of --methods].")
@click.option("--datasets", default=None,
              help="The clean base dataset (one) [default: sample, or the one --data names].")
@click.option("--preset", default=None,
              help="Preset for methods that name none [default: tiny on the sample set, else the method's own].")
@click.option("--model-opt", "model_opts", multiple=True, metavar="[METHOD.]KEY=VALUE",
              help="Model constructor option, repeatable: `--model-opt lrdif.T=8`.")
@data_options
@exec_options
def robustness_cmd(data: DataOptions, opts: ExecOptions, **rob: Any) -> None:
    """Accuracy against degradation severity: train each method once, test it on every severity
    of every simulator, and write the ImageNet-C style summary (mean corruption error).

    Degraded test copies are built on demand at each severity and cached; trained jobs and
    finished evaluations are reused. Writes `OUT/robustness.csv`, `OUT/robustness.png|pdf`,
    `OUT/robustness-summary.csv|md|tex` and the HTML report `OUT/report/index.html`.

    Example (embedded default): `fer-bench robustness --methods cnn,scn,lrdif --severities 1,2,3,4,5 --out runs-robust`

    Example: `fer-bench robustness --methods scn,lrdif --datasets rafdb --root ~/RAF-DB --train-on udc-s3 --device cuda`
    """
    from .robustness import RobustnessOptions, run_robustness

    res = run_robustness(RobustnessOptions(**rob), data, opts)
    if res["failed"]:
        sys.exit(1)


COMMANDS = (run_cmd, tables_cmd, figures_cmd, reproduce_cmd, robustness_cmd)
