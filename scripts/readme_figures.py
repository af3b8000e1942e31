"""The README's measured figures as data: blocks generated from committed results files.

Every table of measured numbers in README.md sits between ``<!-- figures:NAME -->`` and
``<!-- /figures:NAME -->`` and is generated from a small results file under ``docs/results/``
(never typed by hand):

* ``main-job`` -- ``docs/results/main-job.csv``: the first README command's results
  (``fer-bench run --methods lrdif,scn`` on the embedded sample set and its two degraded copies);
* ``robustness`` -- ``docs/results/robustness.csv`` and ``robustness-summary.csv``: the README's
  ``fer-bench robustness --methods cnn,scn,lrdif --severities 1,2,3,4,5`` run (accuracy per
  severity, seeds averaged; clean, mean over severities, mCE and relative mCE);
* ``tiny-sample`` (README and docs/baselines.md) -- ``docs/results/tiny-sample.csv``: each method's
  ``tiny`` preset at the shared budget on the sample set, ``fer-bench run --methods <all eleven>
  --datasets sample --eval-every 0``;
* ``small-real`` (in docs/benchmark.md) -- ``docs/results/small-real.csv``: all eleven methods at
  the shared ``tiny`` budget on two small real folders with subject splits (a 220-image CK+48
  subset and JAFFE), clean and with their UDC / low-light copies. Re-measuring needs your copies
  of the data: ``FER_CKPLUS48=DIR FER_JAFFE=DIR python scripts/readme_figures.py --rerun small-real``.

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
BENCHMARK_DOC = ROOT / "docs" / "benchmark.md"
BASELINES_DOC = ROOT / "docs" / "baselines.md"
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
    the block's files there from the run's results, where the command does not write them itself).
    ``target`` is the Markdown file that holds the block."""

    name: str
    files: tuple[str, ...]
    render: Callable[[Path], str]
    run: Callable[[Path], None]
    collect: Callable[[Path], None] = lambda out: None
    target: Path = README


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


def result_row(r: dict) -> dict[str, str]:
    """The MAIN_JOB_COLUMNS of one result.json, at the precision the files store."""
    return {"dataset": r["dataset"], "method": r["method"], "seed": str(r["seed"]),
            "accuracy": f"{r['accuracy']:.2f}", "ci_low": f"{r['ci_low']:.2f}",
            "ci_high": f"{r['ci_high']:.2f}", "mean_class_accuracy": f"{r['mean_class_accuracy']:.2f}",
            "macro_f1": f"{r['macro_f1']:.2f}", "budget": budget_text(r),
            "n_train": str(r["n_train"]), "n_test": str(r["n_test"])}


def collect_main_job(out: Path) -> None:
    """``out/main-job.csv`` from the runs folder ``out``."""
    from benchmark.results import find_results

    rows = [result_row(r) for r in find_results(out)]
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


# ------------------------------------------------------------------------------- tiny presets, sample set
TINY_SAMPLE_METHODS = "cnn,lrdif,lldif,scn,rul,eac,dan,posterpp,arm,manet,dacl"


def run_tiny_sample(out: Path) -> None:
    """``fer-bench run --methods <all eleven> --datasets sample --eval-every 0 --out OUT``."""
    from benchmark.cli import main as bench

    bench.main(["run", "--methods", TINY_SAMPLE_METHODS, "--datasets", "sample", "--eval-every", "0",
                "--out", str(out)], standalone_mode=False)


def collect_tiny_sample(out: Path) -> None:
    """``out/tiny-sample.csv`` from the runs folder ``out`` (best first)."""
    from benchmark.results import find_results

    rows = sorted((result_row(r) for r in find_results(out)), key=lambda r: (-float(r["accuracy"]), r["method"]))
    atomic_write_text(out / "tiny-sample.csv", rows_text(rows, MAIN_JOB_COLUMNS))


def render_tiny_sample(folder: Path) -> str:
    """One table: method, accuracy with its interval, mean class accuracy, macro-F1, budget."""
    rows = read_rows(folder / "tiny-sample.csv")
    lines = ["| method | accuracy [95 % CI] | mean class acc. | macro-F1 | budget |", "|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {float(r['accuracy']):.1f} [{float(r['ci_low']):.1f}, "
                     f"{float(r['ci_high']):.1f}] | {float(r['mean_class_accuracy']):.1f} | "
                     f"{float(r['macro_f1']):.1f} | {r['budget']} |")
    first = rows[0]
    lines += ["", f"Sample set, seed 0: {first['n_train']} training images, {first['n_test']} test images of "
              f"unseen people (chance 14.3 %; one image = {100 / int(first['n_test']):.2f} points)."]
    return "\n".join(lines)


# ------------------------------------------------------------------------------- small real folders
@dataclass(frozen=True)
class SmallRealSet:
    """One small real folder of the ``small-real`` block."""

    env: str                      # environment variable naming the user's copy
    build: tuple[str, ...]        # scripts/make_small_folder.py arguments that build the folder from it
    crop: bool                    # `fer-bench data crop` its faces next
    subject: str                  # the folder source's subject pattern
    title: str
    datasets: tuple[str, ...] = ("folder", "udc-folder", "ll-folder")


SMALL_REAL_SETS = {
    "ckplus48": SmallRealSet("FER_CKPLUS48", ("--from", "ckplus48", "--max-images", "220", "--frames", "last"),
                             False, r"^(S\d+)_",
                             "CK+48, 220 images (the last frame of each sequence of 82 evenly spaced subjects)"),
    "jaffe": SmallRealSet("FER_JAFFE", ("--from", "jaffe"), True, r"^([A-Z]{2})\.",
                          "JAFFE, all 213 images (10 subjects), faces cropped by `fer-bench data crop`"),
    "jaffe-uncropped": SmallRealSet("FER_JAFFE", ("--from", "jaffe"), False, r"^([A-Z]{2})\.",
                                    "JAFFE uncropped (the 256x256 frames as distributed), clean only",
                                    ("folder",)),
}
SMALL_REAL_METHODS = "cnn,lrdif,lldif,scn,rul,eac,dan,posterpp,arm,manet,dacl"
SMALL_REAL_COLUMNS = ["set", *MAIN_JOB_COLUMNS, "n_classes", "majority"]
SMALL_REAL_DATASETS = {"folder": "clean", "udc-folder": "UDC copy", "ll-folder": "low-light copy"}


def small_real_command(name: str, folder: Path | str, out: Path | str) -> list[str]:
    """The ``fer-bench`` arguments of one small real set's run."""
    spec = SMALL_REAL_SETS[name]
    return ["run", "--methods", SMALL_REAL_METHODS, "--datasets", ",".join(spec.datasets),
            "--root", str(folder), "--src-opt", f"subject={spec.subject}",
            "--src-opt", "classes=present", "--preset", "tiny", "--eval-every", "0", "--out", str(out)]


def run_small_real(out: Path) -> None:
    """Build each small real folder from the user's copy (an environment variable), run all eleven
    methods on it and its two degraded copies into ``out/<set>``."""
    import os
    import subprocess

    from benchmark.cli import main as bench

    for name, spec in SMALL_REAL_SETS.items():
        src = os.environ.get(spec.env)
        if not src or not Path(src).is_dir():
            raise click.ClickException(f"--rerun small-real needs {spec.env}=DIR: your copy of {name} "
                                       "(see docs/benchmark.md, 'Small real folders')")
        folder = out / "data" / spec.build[1]
        if not folder.is_dir():
            subprocess.run([sys.executable, str(ROOT / "scripts" / "make_small_folder.py"), *spec.build,
                            "--src", src, "--out", str(folder)], check=True)
        if spec.crop:
            bench.main(["data", "crop", "--root", str(folder), "--out", str(folder) + "-faces"], standalone_mode=False)
            folder = Path(str(folder) + "-faces")
        bench.main(small_real_command(name, folder, out / name), standalone_mode=False)


def collect_small_real(out: Path) -> None:
    """``out/small-real.csv`` from the runs folders ``out/<set>``."""
    import json

    from benchmark.results import find_results

    rows = []
    for name in SMALL_REAL_SETS:
        for r in find_results(out / name):
            confusion = json.loads(r["confusion"]) if isinstance(r["confusion"], str) else r["confusion"]
            per_class = [sum(row) for row in confusion]
            rows.append({"set": name, **result_row(r), "n_classes": str(len(r["classes"])),
                         "majority": f"{100 * max(per_class) / sum(per_class):.2f}"})
    order = {d: i for i, d in enumerate(SMALL_REAL_DATASETS)}
    methods = SMALL_REAL_METHODS.split(",")
    rows.sort(key=lambda r: (list(SMALL_REAL_SETS).index(r["set"]), order.get(r["dataset"], 99),
                             methods.index(r["method"]) if r["method"] in methods else 99, r["method"]))
    atomic_write_text(out / "small-real.csv", rows_text(rows, SMALL_REAL_COLUMNS))


def render_small_real(folder: Path) -> str:
    """Per set: methods as rows, clean / UDC / low-light copies as columns (accuracy and 95 %
    interval); then how many cells are above chance, and by how much."""
    rows = read_rows(folder / "small-real.csv")
    lines = []
    for name in dict.fromkeys(r["set"] for r in rows):
        mine = [r for r in rows if r["set"] == name]
        datasets = [d for d in SMALL_REAL_DATASETS if any(r["dataset"] == d for r in mine)]
        cell = {(r["dataset"], r["method"]): r for r in mine}
        first = mine[0]
        budgets = sorted({r["budget"].split(" = ")[0] for r in mine})
        steps = sorted({int(r["budget"].rsplit("= ", 1)[1].split()[0]) for r in mine})
        chance = 100 / int(first["n_classes"])
        spec = SMALL_REAL_SETS[name]
        lines += [f"**{spec.title}**, subject split `{spec.subject}`: "
                  f"{first['n_train']} training / {first['n_test']} test images of unseen people "
                  f"(one image = {100 / int(first['n_test']):.1f} points), "
                  f"{first['n_classes']} classes (chance {chance:.1f} %, majority class of the test split "
                  f"{float(first['majority']):.1f} %), one budget {' / '.join(budgets)} for every method "
                  f"({steps[0]}-{steps[-1]} optimiser steps, by batch size).",
                  "", "| method | " + " | ".join(SMALL_REAL_DATASETS[d] for d in datasets) + " |",
                  "|---|" + "---:|" * len(datasets)]
        for m in dict.fromkeys(r["method"] for r in mine):
            cells = [f"{float(c['accuracy']):.1f} [{float(c['ci_low']):.1f}, {float(c['ci_high']):.1f}]"
                     if (c := cell.get((d, m))) else "—" for d in datasets]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        above = [r for r in mine if float(r["ci_low"]) > chance]
        over_majority = [r for r in mine if float(r["accuracy"]) > float(r["majority"])]
        worst = min(mine, key=lambda r: float(r["accuracy"]))
        lines += ["", f"{len(above)} of {len(mine)} cells have the lower end of their 95 % interval above chance; "
                  f"{len(over_majority)} of {len(mine)} beat always answering the majority class; the lowest is "
                  f"{worst['method']} on {SMALL_REAL_DATASETS[worst['dataset']]} at {float(worst['accuracy']):.1f} %.",
                  ""]
    return "\n".join(lines).rstrip("\n")


BLOCKS = {b.name: b for b in (
    Block("main-job", ("main-job.csv",), render_main_job, run_main_job, collect_main_job),
    Block("robustness", ("robustness.csv", "robustness-summary.csv"), render_robustness, run_robustness),
    Block("tiny-sample", ("tiny-sample.csv",), render_tiny_sample, run_tiny_sample, collect_tiny_sample),
    Block("tiny-sample-baselines", ("tiny-sample.csv",), render_tiny_sample, run_tiny_sample, collect_tiny_sample,
          target=BASELINES_DOC),
    Block("small-real", ("small-real.csv",), render_small_real, run_small_real, collect_small_real,
          target=BENCHMARK_DOC),
)}


# ------------------------------------------------------------------------------- README
def block_pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- figures:{re.escape(name)} -->\n)(.*?)(<!-- /figures:{re.escape(name)} -->)", re.S)


def targets() -> list[Path]:
    """The Markdown files that hold figures blocks."""
    return list(dict.fromkeys(b.target for b in BLOCKS.values()))


def expected_readme(text: str, target: Path = README) -> str:
    """``text`` (the contents of ``target``) with its figures blocks regenerated from their files."""
    for name, block in BLOCKS.items():
        if block.target != target:
            continue
        pat = block_pattern(name)
        if not pat.search(text):
            raise click.ClickException(f"{target}: no <!-- figures:{name} --> block")
        body = block.render(RESULTS).rstrip("\n") + "\n"
        text = pat.sub(lambda m, body=body: m.group(1) + body + m.group(3), text)
    return text


def readme_differences(text: str, target: Path = README) -> list[str]:
    """Names of the blocks whose text in ``target`` differs from what their files give."""
    want = expected_readme(text, target)
    return [n for n, b in BLOCKS.items() if b.target == target
            and block_pattern(n).search(text).group(2) != block_pattern(n).search(want).group(2)]


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
    bad = []
    for target in targets():
        text = target.read_text()
        if mode == "write":
            atomic_write_text(target, expected_readme(text, target))
            click.echo(f"{target.relative_to(ROOT)}: blocks {', '.join(n for n, b in BLOCKS.items() if b.target == target)} "
                       "regenerated")
        else:
            bad += readme_differences(text, target)
    if mode == "write":
        return
    if bad:
        click.echo(f"figures blocks differ from their results files: {', '.join(bad)} "
                   "(python scripts/readme_figures.py --write)")
        sys.exit(1)
    click.echo(f"figures blocks match their files: {', '.join(BLOCKS)}")


if __name__ == "__main__":
    main()
