"""Print the README's "Robustness curves" numbers from a `fer-bench robustness` run's files.

    python scripts/robustness_readme.py                              # the committed docs/results/ files
    python scripts/robustness_readme.py --run runs-robust            # a run folder
    python scripts/robustness_readme.py --run runs-robust --save     # also copy its CSVs to docs/results/

The block (between the README's ``<!-- robustness:begin -->`` and ``<!-- robustness:end -->``
markers) is generated, never typed: accuracy per severity (seeds averaged) from
``robustness.csv`` and the summary (clean, mean over severities, mCE, relative mCE) from
``robustness-summary.csv``. ``tests/test_robustness.py`` checks that the README holds exactly
what the committed files give.
"""

from __future__ import annotations

import csv
import math
import shutil
import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "docs" / "results"
BEGIN, END = "<!-- robustness:begin -->", "<!-- robustness:end -->"
NAMES = {"udc": "UDC", "ll": "low light"}


def _f(text: str) -> str:
    v = float(text) if text.strip() else math.nan
    return "n/a" if not math.isfinite(v) else f"{v:.1f}"


def markdown_block(folder: Path = RESULTS) -> str:
    """The README block from ``folder/robustness.csv`` and ``folder/robustness-summary.csv``."""
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
            lines.append(f"| {m} | {NAMES.get(d, d)} | "
                         + " | ".join(f"{acc[(m, d, k)]:.1f}" if (m, d, k) in acc else "" for k in sevs) + " |")
    with open(folder / "robustness-summary.csv", newline="", encoding="utf-8") as fh:
        summary = list(csv.DictReader(fh))
    ref = summary[0]["reference"]
    lines += ["", "| method | clean | " + " | ".join(f"mean {NAMES.get(d, d)}" for d in degs)
              + f" | mean | mCE (vs {ref}) | relative mCE |", "|---|" + "---:|" * (len(degs) + 4)]
    for r in summary:
        lines.append(f"| {r['method']} | {_f(r['clean_accuracy'])} | "
                     + " | ".join(_f(r[f"mean_accuracy_{d}"]) for d in degs)
                     + f" | {_f(r['mean_accuracy'])} | {_f(r['mce'])} | {_f(r['relative_mce'])} |")
    return "\n".join([BEGIN, *lines, END])


def readme_block(readme: str) -> str:
    """The block as it stands in the README text (markers included)."""
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    return readme[start:end]


@click.command()
@click.option("--run", "run_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A `fer-bench robustness` --out folder [default: docs/results].")
@click.option("--save", is_flag=True, help="Copy the run's robustness.csv and robustness-summary.csv to docs/results/.")
def main(run_dir: Path | None, save: bool) -> None:
    folder = run_dir or RESULTS
    if save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        for name in ("robustness.csv", "robustness-summary.csv"):
            shutil.copyfile(folder / name, RESULTS / name)
    click.echo(markdown_block(folder))


if __name__ == "__main__":
    main()
