"""Accuracy-vs-severity curves from a tidy ``robustness.csv`` (shared by ``fer-bench report``
and ``fer-bench robustness``).

``robustness.csv`` has one row per (method, train set, test degradation, severity)::

    method, train_set, test_degradation, severity, accuracy, mean_class_accuracy, ci_low, ci_high

Accuracies and the confidence interval are fractions in [0, 1] (or percentages, as long as one
file uses one scale); severity is an integer 0..5 (0: the clean test set).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from fercore.errors import DataError

from .figures import _plt, save_figure

COLUMNS = ("method", "train_set", "test_degradation", "severity", "accuracy", "mean_class_accuracy",
           "ci_low", "ci_high")
NUMERIC = ("accuracy", "mean_class_accuracy", "ci_low", "ci_high")


def read_robustness(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``robustness.csv``, typed (severity int, metrics float; empty -> NaN).

    Raises :class:`~fercore.errors.DataError` naming the file for a missing column or a value
    that is not a number.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"robustness table lacks column(s) {', '.join(missing)}; "
                                f"expected {', '.join(COLUMNS)}", path)
            rows = list(reader)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"unreadable robustness table ({exc})", path) from None
    out = []
    for i, row in enumerate(rows, start=2):
        try:
            typed = {**row, "severity": int(row["severity"])}
            for c in NUMERIC:
                typed[c] = float(row[c]) if row[c].strip() else math.nan
        except ValueError as exc:
            raise DataError(f"line {i}: not a number ({exc})", path) from None
        out.append(typed)
    return out


#: The train set of a method trained at each severity (``fer-bench robustness --train-on each``).
EACH = "each"


def regimes(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Each method's training regime: its one train set, or :data:`EACH` when its rows have
    several (a model per severity, each tested at its own severity)."""
    sets: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        sets[r["method"]].add(r["train_set"])
    return {m: next(iter(s)) if len(s) == 1 else EACH for m, s in sets.items()}


def curves(rows: list[dict[str, Any]], metric: str = "accuracy") -> dict[str, dict[tuple[str, str], list[tuple]]]:
    """test degradation -> (method, train regime) -> ``[(severity, value, ci_low, ci_high), ...]``
    sorted by severity. Rows of several seeds at one severity give one point: the mean value,
    and a band from the lowest ``ci_low`` to the highest ``ci_high`` (every seed's interval)."""
    regime = regimes(rows)
    pts: dict[str, dict[tuple[str, str], dict[int, list[tuple]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list)))
    for r in rows:
        ci = (r["ci_low"], r["ci_high"]) if metric == "accuracy" else (math.nan, math.nan)
        pts[r["test_degradation"]][(r["method"], regime[r["method"]])][r["severity"]].append((r[metric], *ci))
    out: dict[str, dict[tuple[str, str], list[tuple]]] = {}
    for deg, lines in sorted(pts.items()):
        out[deg] = {}
        for key, by_sev in sorted(lines.items()):
            out[deg][key] = [(sev, sum(v[0] for v in vals) / len(vals), min(v[1] for v in vals),
                              max(v[2] for v in vals)) for sev, vals in sorted(by_sev.items())]
    return out


def plot_robustness(rows: list[dict[str, Any]], out: str | Path, name: str = "robustness",
                    metric: str = "accuracy") -> list[Path]:
    """One panel per test degradation, one line per (method, train set): ``metric`` against
    severity with its confidence band. Writes ``out/name.png`` and ``.pdf``; returns the paths."""
    if not rows:
        raise DataError("no rows to plot", Path(out) / f"{name}.png")
    plt = _plt()
    groups = curves(rows, metric)
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.4), squeeze=False, sharey=True)
    trains = {train for lines in groups.values() for _, train in lines}
    for ax, (deg, lines) in zip(axes[0], groups.items()):
        for (method, train), pts in lines.items():
            sev = [p[0] for p in pts]
            label = method if len(trains) == 1 else f"{method} (train: {train})"
            label = f"{method} (trained at each severity)" if train == EACH and len(trains) == 1 else label
            (line,) = ax.plot(sev, [p[1] for p in pts], marker="o", label=label)
            lo, hi = [p[2] for p in pts], [p[3] for p in pts]
            if not any(math.isnan(v) for v in lo + hi):
                ax.fill_between(sev, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
        ax.set_title(f"test: {deg}")
        ax.set_xlabel("severity")
        ax.set_xticks(sorted({p[0] for pts in lines.values() for p in pts}))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(metric.replace("_", " "))
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return save_figure(fig, Path(out), name)
