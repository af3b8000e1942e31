"""The README's measured figures as data: blocks generated from committed results files.

Every table of measured numbers in README.md sits between ``<!-- figures:NAME -->`` and
``<!-- /figures:NAME -->`` and is generated from a small results file under ``docs/results/``
(never typed by hand):

* ``main-job`` -- ``docs/results/main-job.csv``: the first README command's results
  (``fer-bench run --methods lrdif,scn`` on the embedded sample set and its two degraded copies);
* ``robustness`` -- ``docs/results/robustness.csv`` and ``robustness-summary.csv``: the README's
  ``fer-bench robustness --methods cnn,scn,lrdif --severities 1,2,3,4,5`` run (accuracy per
  severity, seeds averaged; clean, mean over severities, mCE and relative mCE).

Commands::

    python scripts/readme_figures.py --check            # README == the files (tests/test_readme.py runs this)
    python scripts/readme_figures.py --write            # regenerate the README's blocks from the files
    python scripts/readme_figures.py --rerun main-job   # re-run the main job now, diff against the file
    python scripts/readme_figures.py --rerun main-job --update   # ... and replace the file (then --write)
    python scripts/readme_figures.py --rerun robustness --update # the robustness run (tens of minutes)
    python scripts/readme_figures.py --rerun main-job --runs runs     # compare a finished run (fresh clone)

``--rerun`` runs exactly the README's command (through the Python API, into a temporary runs
folder unless ``--out``) and compares every figure the files hold, at the precision they store;
it exits 1 on any difference and prints each one.
"""

from __future__ import annotations

import csv
import io
import math
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from fercore.atomic import atomic_write_bytes, atomic_write_text  # noqa: E402

README = ROOT / "README.md"
RESULTS = ROOT / "docs" / "results"

#: Columns of main-job.csv (one row per dataset and method), in file order.
MAIN_JOB_COLUMNS = ["dataset", "method", "seed", "accuracy", "ci_low", "ci_high", "mean_class_accuracy",
                    "macro_f1", "budget", "n_train", "n_test"]
DATASET_TITLES = {"sample": "`sample` (clean)", "udc-sample": "`udc-sample` (calibrated `toled`)",
                  "ll-sample": "`ll-sample` (calibrated `lldif`)"}
METHOD_TITLES = {"lrdif": "LRDif (stage 2, label-free)", "scn": "SCN"}


@dataclass(frozen=True)
class Block:
    """One generated README block: its results files, how to render them and how to re-measure
    them (``run(out)`` runs the command into the runs folder ``out``; ``collect(out)`` then writes
    the block's files there from the run's results, where the command does not write them itself)."""

    name: str
    files: tuple[str, ...]
    render: Callable[[Path], str]
    run: Callable[[Path], None]
    collect: Callable[[Path], None] = lambda out: None


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise click.ClickException(f"{path}: results file missing (create it with --rerun NAME --update)")
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def rows_text(rows: list[dict[str, str]], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, columns, lineterminator="\n")
    w.writeheader()
    w.writerows({k: r[k] for k in columns} for r in rows)
    return buf.getvalue()


# ------------------------------------------------------------------------------- main job
def render_main_job(folder: Path) -> str:
    """Datasets as rows, methods as columns: accuracy with its 95 % bootstrap interval."""
    rows = read_rows(folder / "main-job.csv")
    methods = list(dict.fromkeys(r["method"] for r in rows))
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    cell = {(r["dataset"], r["method"]): r for r in rows}
    budgets = sorted({r["budget"] for r in rows})
    lines = ["| dataset | " + " | ".join(METHOD_TITLES.get(m, m) for m in methods) + " |",
             "|---|" + "---|" * len(methods)]
    for d in datasets:
        cells = []
        for m in methods:
            r = cell.get((d, m))
            cells.append("—" if r is None else f"{float(r['accuracy']):.1f} % "
                         f"[{float(r['ci_low']):.1f}, {float(r['ci_high']):.1f}]")
        lines.append(f"| {DATASET_TITLES.get(d, d)} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Accuracy on the test split with its 95 % bootstrap interval; every job trained at the "
                 f"run's one budget ({' / '.join(budgets)}); mean class accuracy and macro-F1 are in "
                 f"[docs/results/main-job.csv](docs/results/main-job.csv).")
    return "\n".join(lines)


def run_main_job(out: Path) -> None:
    """The README's first command, ``fer-bench run --methods lrdif,scn``, into ``out``."""
    from benchmark.execute import run_benchmark
    from benchmark.options import DataOptions, ExecOptions, RunOptions

    run_benchmark(RunOptions(methods="lrdif,scn"), DataOptions(), ExecOptions(out=str(out)))


def collect_main_job(out: Path) -> None:
    """``out/main-job.csv`` from the runs folder ``out``."""
    from benchmark.results import find_results

    rows = []
    for r in find_results(out):
        rows.append({"dataset": r["dataset"], "method": r["method"], "seed": str(r["seed"]),
                     "accuracy": f"{r['accuracy']:.2f}", "ci_low": f"{r['ci_low']:.2f}",
                     "ci_high": f"{r['ci_high']:.2f}", "mean_class_accuracy": f"{r['mean_class_accuracy']:.2f}",
                     "macro_f1": f"{r['macro_f1']:.2f}", "budget": budget_text(r),
                     "n_train": str(r["n_train"]), "n_test": str(r["n_test"])})
    order = {d: i for i, d in enumerate(DATASET_TITLES)}
    rows.sort(key=lambda r: (order.get(r["dataset"], 99), r["dataset"], r["method"]))
    atomic_write_text(out / "main-job.csv", rows_text(rows, MAIN_JOB_COLUMNS))


def budget_text(result: dict) -> str:
    """``"11760img = 368 steps"``: a result's budget and the optimiser steps it trained."""
    return f"{result.get('budget') or 'per-method epochs'} = {result.get('steps')} steps"


# ------------------------------------------------------------------------------- robustness
ROBUSTNESS_NAMES = {"udc": "UDC", "ll": "low light"}


def _f(text: str) -> str:
    v = float(text) if text.strip() else math.nan
    return "n/a" if not math.isfinite(v) else f"{v:.1f}"


def render_robustness(folder: Path) -> str:
    """Accuracy per method, simulator and severity (seeds averaged), then the summary."""
    from benchmark.robustness import mean_table
    from benchmark.robustness_plots import read_robustness

    rows = read_robustness(folder / "robustness.csv")
    acc = mean_table(rows)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    degs = list(dict.fromkeys(r["test_degradation"] for r in rows))
    sevs = sorted({int(r["severity"]) for r in rows})
    lines = ["| method | simulator | " + " | ".join(f"s{k}" for k in sevs) + " |",
             "|---|---|" + "---:|" * len(sevs)]
    for m in methods:
        for d in degs:
            lines.append(f"| {m} | {ROBUSTNESS_NAMES.get(d, d)} | "
                         + " | ".join(f"{acc[(m, d, k)]:.1f}" if (m, d, k) in acc else "" for k in sevs) + " |")
    summary = read_rows(folder / "robustness-summary.csv")
    ref = summary[0]["reference"]
    lines += ["", "| method | clean | " + " | ".join(f"mean {ROBUSTNESS_NAMES.get(d, d)}" for d in degs)
              + f" | mean | mCE (vs {ref}) | relative mCE |", "|---|" + "---:|" * (len(degs) + 4)]
    for r in summary:
        lines.append(f"| {r['method']} | {_f(r['clean_accuracy'])} | "
                     + " | ".join(_f(r[f"mean_accuracy_{d}"]) for d in degs)
                     + f" | {_f(r['mean_accuracy'])} | {_f(r['mce'])} | {_f(r['relative_mce'])} |")
    rises = [f"{m} on {ROBUSTNESS_NAMES.get(d, d)} at s{k} ({acc[(m, d, prev)]:.1f} -> {acc[(m, d, k)]:.1f})"
             for m in methods for d in degs for prev, k in zip(sevs, sevs[1:])
             if (m, d, k) in acc and (m, d, prev) in acc and acc[(m, d, k)] > acc[(m, d, prev)]]
    lines += ["", "Accuracy falls at every step of severity for every method and simulator." if not rises else
              f"Accuracy falls with severity except at {len(rises)} step(s): " + "; ".join(rises) + "."]
    return "\n".join(lines)


def run_robustness(out: Path) -> None:
    """``fer-bench robustness --methods cnn,scn,lrdif --severities 1,2,3,4,5 --out OUT``."""
    from benchmark.cli import main as bench

    bench.main(["robustness", "--methods", "cnn,scn,lrdif", "--severities", "1,2,3,4,5", "--out", str(out)],
               standalone_mode=False)


BLOCKS = {b.name: b for b in (
    Block("main-job", ("main-job.csv",), render_main_job, run_main_job, collect_main_job),
    Block("robustness", ("robustness.csv", "robustness-summary.csv"), render_robustness, run_robustness),
)}


# ------------------------------------------------------------------------------- README
def block_pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- figures:{re.escape(name)} -->\n)(.*?)(<!-- /figures:{re.escape(name)} -->)", re.S)


def expected_readme(text: str) -> str:
    """``text`` with every figures block regenerated from its results file."""
    for name, block in BLOCKS.items():
        pat = block_pattern(name)
        if not pat.search(text):
            raise click.ClickException(f"{README}: no <!-- figures:{name} --> block")
        body = block.render(RESULTS).rstrip("\n") + "\n"
        text = pat.sub(lambda m, body=body: m.group(1) + body + m.group(3), text)
    return text


def readme_differences(text: str) -> list[str]:
    """Names of the blocks whose README text differs from what their files give."""
    want = expected_readme(text)
    return [n for n in BLOCKS if block_pattern(n).search(text).group(2) != block_pattern(n).search(want).group(2)]


@click.command()
@click.option("--check", "mode", flag_value="check", default=True, help="Exit 1 if a README block differs from its file.")
@click.option("--write", "mode", flag_value="write", help="Regenerate the README's blocks.")
@click.option("--rerun", "rerun", default=None, type=click.Choice(sorted(BLOCKS)),
              help="Re-measure one block's results now and diff against its file.")
@click.option("--runs", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="With --rerun: compare the runs folder an earlier run of the command wrote (e.g. a fresh "
                   "clone's `runs`) instead of running it.")
@click.option("--update", is_flag=True, help="With --rerun: replace the results files with the new figures.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="With --rerun: runs folder (default: a temporary one).")
def main(mode: str, rerun: str | None, runs: Path | None, update: bool, out: Path | None) -> None:
    if rerun:
        block = BLOCKS[rerun]
        if runs is not None:
            out = runs
        else:
            out = out or Path(tempfile.mkdtemp(prefix=f"readme-{rerun}-"))
            block.run(out)
        block.collect(out)
        if update:
            RESULTS.mkdir(parents=True, exist_ok=True)
            for name in block.files:
                atomic_write_bytes(RESULTS / name, (out / name).read_bytes())
            click.echo(f"copied {', '.join(block.files)} to {RESULTS}; run --write to update the README")
            return
        diffs = []
        for name in block.files:
            old, new = read_rows(RESULTS / name), read_rows(out / name)
            if len(old) != len(new):
                diffs.append(f"{name}: rows: file {len(old)}, now {len(new)}")
            diffs += [f"{name} row {i + 1} {k}: file {o.get(k)!r}, now {n.get(k)!r}"
                      for i, (o, n) in enumerate(zip(old, new)) for k in {**o, **n} if o.get(k) != n.get(k)]
        for d in diffs:
            click.echo(d)
        click.echo(f"{rerun}: {'identical' if not diffs else f'{len(diffs)} differences'} ({out})")
        sys.exit(1 if diffs else 0)
    text = README.read_text()
    if mode == "write":
        atomic_write_text(README, expected_readme(text))
        click.echo(f"{README}: blocks {', '.join(BLOCKS)} regenerated")
        return
    bad = readme_differences(text)
    if bad:
        click.echo(f"README blocks differ from their results files: {', '.join(bad)} "
                   "(python scripts/readme_figures.py --write)")
        sys.exit(1)
    click.echo(f"README blocks match their files: {', '.join(BLOCKS)}")


if __name__ == "__main__":
    main()
