"""Read a runs folder: finished jobs' results, the tidy results table, predictions.

``results.csv`` (written at the top of the runs folder after every job, and by ``fer-bench
tables``) has one row per finished job: method, variant, preset, options, label, dataset,
seed, accuracy with its 95% bootstrap interval over test images (``ci_low``, ``ci_high``, see
:mod:`benchmark.stats`), best accuracy, macro-F1, mean class accuracy, ``acc_<class>`` per
class, clean accuracy (degraded sets), mean confidence, train time, epochs, the budget
(``budget``: ``11760img`` / ``600steps``, empty for an ``--epochs`` run) with the optimiser
steps and images seen it trained, config hash, dataset copy and run folder. Rows are sorted by
(dataset, label, config hash, seed) so the same runs give the same file.

Runs of a K-fold cross-validation (``--src-opt folds=K``) add three columns: ``fold`` and
``folds`` after the seed, and ``cv_hash`` (the config hash without the fold, shared by the K
folds of one configuration) after the config hash; their rows sort by (cv hash, seed, fold).
A runs folder without such runs has none of these columns.

Macro-F1 and mean class accuracy are read from each job's confusion matrix, over the classes
with at least one test image (:mod:`benchmark.metrics`), so results written before that rule
read the same way as new ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from fercore.classes import BASIC8
from fercore.errors import DataError
from fercore.manifest import write_manifest

RESULT_COLUMNS = ["method", "variant", "preset", "options", "label", "dataset", "seed", "accuracy",
                  "ci_low", "ci_high", "best_accuracy", "best_epoch", "macro_f1", "mean_class_accuracy"]
TAIL_COLUMNS = ["clean_accuracy", "mean_confidence", "clean_mean_confidence", "n_train", "n_test",
                "epochs", "budget", "steps", "images_seen", "train_time_s", "config_hash", "dataset_copy", "run_dir"]


def find_results(runs: str | Path) -> list[dict[str, Any]]:
    """Every finished job's ``result.json`` under ``runs`` (sorted, see module docstring)."""
    runs = Path(runs)
    if not runs.is_dir():
        raise DataError("runs folder not found (the --out of `fer-bench run`)", runs)
    out = []
    for p in sorted(runs.glob("*/*/seed*/result.json")):
        try:
            r = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"unreadable result ({exc})", p) from None
        _check_result(r, p)
        r["run_dir"] = str(p.parent)
        _add_statistics(r, p)
        out.append(r)
    out.sort(key=sort_key)
    return out


def sort_key(r: dict[str, Any]) -> tuple:
    """(dataset, label, config hash, seed); the K folds of a cross-validation together, by
    (cv hash, seed, fold)."""
    return (r["dataset"], r["label"], r.get("cv_hash") or r["config_hash"], int(r["seed"]),
            r["fold"] if r.get("folds") else -1)


#: Fields of result.json that tables and figures compute with (numbers; ``None`` allowed where
#: a value may be absent).
NUMERIC_FIELDS = {"accuracy": False, "best_accuracy": True, "macro_f1": True, "mean_class_accuracy": True,
                  "clean_accuracy": True, "mean_confidence": True, "clean_mean_confidence": True,
                  "train_time_s": True}


def _check_result(r: Any, path: Path) -> None:
    """A result.json must have the fields the tables read, with the right types."""
    import math

    if not isinstance(r, dict):
        raise DataError("unreadable result (not a JSON object)", path)
    for key in ("dataset", "label", "config_hash"):
        if not isinstance(r.get(key), str):
            raise DataError(f"unreadable result: {key!r} must be text, got {r.get(key)!r}", path)
    if isinstance(r.get("seed"), bool) or not isinstance(r.get("seed"), int):
        raise DataError(f"unreadable result: 'seed' must be an integer, got {r.get('seed')!r}", path)
    for key, optional in NUMERIC_FIELDS.items():
        v = r.get(key)
        if v is None and optional:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise DataError(f"unreadable result: {key!r} must be a finite number, got {v!r}", path)
    if r.get("folds") is not None:  # one fold of a K-fold cross-validation
        folds, fold = r.get("folds"), r.get("fold")
        if (isinstance(folds, bool) or not isinstance(folds, int) or folds < 2 or isinstance(fold, bool)
                or not isinstance(fold, int) or not 0 <= fold < folds or not isinstance(r.get("cv_hash"), str)):
            raise DataError(f"unreadable result: 'fold' {fold!r} of 'folds' {folds!r} with 'cv_hash' "
                            f"{r.get('cv_hash')!r} is not a fold of a cross-validation", path)
    per_class = r.get("per_class_accuracy")
    if per_class is not None and (not isinstance(per_class, dict) or any(
            v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v))
            for v in per_class.values())):
        raise DataError("unreadable result: 'per_class_accuracy' must map classes to numbers", path)


def _add_statistics(r: dict[str, Any], path: Path) -> None:
    """Macro-F1 and mean class accuracy from the confusion matrix (classes with a test image),
    and the accuracy's bootstrap interval from the job's predictions (``None`` without them)."""
    from .metrics import macro_f1, mean_class_accuracy
    from .stats import runs_interval

    cm = r.get("confusion")
    if cm is not None:
        try:
            cm = np.asarray(cm, dtype=np.int64)
        except (TypeError, ValueError):
            cm = None
        if cm is None or cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.sum() <= 0 or (cm < 0).any():
            raise DataError("unreadable result: 'confusion' must be a square matrix of counts", path)
        r["macro_f1"] = 100.0 * macro_f1(cm)
        r["mean_class_accuracy"] = 100.0 * mean_class_accuracy(cm)
    elif r.get("mean_class_accuracy") is None:
        present = [v for v in (r.get("per_class_accuracy") or {}).values() if v is not None]
        r["mean_class_accuracy"] = sum(present) / len(present) if present else None
    ci = runs_interval([r], "accuracy")
    r["ci_low"], r["ci_high"] = ci if ci is not None else (None, None)


def find_runs(runs: str | Path) -> list[dict[str, Any]]:
    """Every job's ``run.json`` (finished or not), for status reports."""
    out = []
    for p in sorted(Path(runs).glob("*/*/seed*/run.json")):
        try:
            r = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        r["run_dir"] = str(p.parent)
        out.append(r)
    return out


def result_rows(results: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Flatten results into tidy rows (one per job) and their column order."""
    classes = [c for c in BASIC8 if any(c in r.get("classes", []) for r in results)]
    extra = sorted({c for r in results for c in r.get("classes", []) if c not in BASIC8})
    head, tail = list(RESULT_COLUMNS), list(TAIL_COLUMNS)
    if any(r.get("folds") for r in results):  # cross-validation runs: which fold, and their cell
        head[head.index("seed") + 1:head.index("seed") + 1] = ["fold", "folds"]
        tail.insert(tail.index("config_hash") + 1, "cv_hash")
    cols = head + [f"acc_{c}" for c in classes + extra] + tail
    rows = []
    for r in results:
        row = {k: r.get(k) for k in head + tail}
        row["options"] = json.dumps(r.get("options") or {}, sort_keys=True)
        row["dataset_copy"] = json.dumps(r.get("dataset_copy") or {}, sort_keys=True, default=str)
        for c in classes + extra:
            row[f"acc_{c}"] = (r.get("per_class_accuracy") or {}).get(c)
        rows.append(row)
    return rows, cols


def write_results_table(runs: str | Path, path: str | Path | None = None) -> Path:
    """Write ``results.csv`` for the runs folder (atomically); returns its path."""
    results = find_results(runs)
    rows, cols = result_rows(results)
    path = Path(path) if path is not None else Path(runs) / "results.csv"
    write_manifest(path, rows, cols, sort_key=None)
    return path


def load_predictions(run_dir: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a job's ``predictions.npz``."""
    p = Path(run_dir) / "predictions.npz"
    if not p.is_file():
        raise DataError("predictions not found (did the job finish?)", p)
    with np.load(p, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
