"""Statistics a reviewer asks for: bootstrap confidence intervals and McNemar's paired test.

Both work from the predictions each job keeps (``predictions.npz``: test ``ids``, ``labels``,
``logits``; ``clean_*`` for the clean test set of a degraded data set).

* :func:`bootstrap_ci` -- a percentile bootstrap over test images: ``n_boot`` resamples of the
  test set (with replacement), the metric on each, the 2.5th and 97.5th percentiles. With
  several seeds of one configuration (the same test set), each resample is scored for every
  seed and the seeds' mean taken, so the interval is that of the seed mean. Resamples are
  drawn from a seed derived from the test set's name and the seeds (never from the order jobs
  finished in, nor from the code's fingerprint), so the same predictions give the same
  interval, and every method of a table is resampled on the same images.
* :func:`mcnemar` -- McNemar's test of two classifiers on the same test images: ``b`` images
  only the first gets right, ``c`` only the second; exact two-sided binomial p-value when
  ``b + c < 25``, else the chi-square statistic with continuity correction.
* :func:`paired_mcnemar` -- the test between two jobs of the same seed, paired by test image id.

K-fold cross-validation (``--src-opt folds=K``): the K fold jobs of one seed are *pooled*
(:func:`seed_predictions`: their predictions concatenated in fold order; the folds' test sets
together are every image once), so a cross-validated configuration's interval is a bootstrap
over all images, and McNemar's test pairs every image of the two methods' pooled folds.

Mean +- standard deviation over seeds is the table cells' own (:class:`benchmark.tables.Cell`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fercore.seeding import numpy_rng

from .metrics import FROM_CONFUSION, confusion_matrix

#: Bootstrap resamples per interval and the interval's level.
BOOTSTRAP_SAMPLES = 1000
LEVEL = 0.95
#: Below this many discordant pairs McNemar's test is the exact binomial one.
EXACT_BELOW = 25
#: Metrics an interval can be computed for from predictions (``clean_`` ones from the clean set).
CI_METRICS = ("accuracy", "mean_class_accuracy", "macro_f1", "clean_accuracy")


def metric_value(labels: np.ndarray, pred: np.ndarray, k: int, metric: str = "accuracy") -> float:
    """The metric of one set of predictions, in percent (``accuracy``, ``mean_class_accuracy``,
    ``macro_f1``)."""
    return 100.0 * FROM_CONFUSION[metric](confusion_matrix(labels, pred, k))


def bootstrap_ci(labels: np.ndarray, preds: np.ndarray, k: int, *, metric: str = "accuracy",
                 n_boot: int = BOOTSTRAP_SAMPLES, level: float = LEVEL, seed: int = 0,
                 key: tuple = ()) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric`` (percent) over test images.

    Args:
        labels: ``(N,)`` true class indices.
        preds: ``(N,)`` predicted classes of one job, or ``(S, N)`` of S seeds on the same
            images (the interval is then that of the seeds' mean).
        k: number of classes.
        seed, key: the resamples come from ``numpy_rng(seed, "bootstrap", *key)``.

    Returns:
        ``(low, high)``, the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles.
    """
    if metric not in FROM_CONFUSION:
        raise ValueError(f"no bootstrap for {metric!r}; choose one of {', '.join(FROM_CONFUSION)}")
    labels = np.asarray(labels, dtype=np.int64)
    preds = np.atleast_2d(np.asarray(preds, dtype=np.int64))
    n = labels.shape[0]
    if n == 0 or preds.shape[1] != n:
        raise ValueError(f"labels {labels.shape} and predictions {preds.shape} do not match")
    rng = numpy_rng(seed, "bootstrap", *key)
    reps = np.empty(n_boot)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        b = idx.shape[0]
        offset = (np.arange(b) * k * k)[:, None]
        total = np.zeros(b)
        for p in preds:
            codes = offset + labels[idx] * k + p[idx]
            cms = np.bincount(codes.ravel(), minlength=b * k * k).reshape(b, k, k)
            total += 100.0 * FROM_CONFUSION[metric](cms)
        reps[start:start + b] = total / preds.shape[0]
    lo, hi = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


@dataclass(frozen=True)
class McNemar:
    """McNemar's test: ``b`` items only A classified correctly, ``c`` only B; ``p`` two-sided;
    ``test`` ``"exact"`` (binomial) or ``"chi2"`` (continuity-corrected)."""

    b: int
    c: int
    p: float
    test: str


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray, exact_below: int = EXACT_BELOW) -> McNemar:
    """McNemar's test of two classifiers' per-item correctness (boolean ``(N,)`` arrays, the
    same items in the same order).

    Exact: ``p = min(1, 2 * P(X <= min(b, c)))`` with ``X ~ Binomial(b + c, 1/2)`` (b = 10,
    c = 2 gives 0.0386). Chi-square: ``(|b - c| - 1)^2 / (b + c)`` with one degree of freedom.
    """
    a = np.asarray(correct_a, dtype=bool)
    o = np.asarray(correct_b, dtype=bool)
    if a.shape != o.shape:
        raise ValueError(f"paired arrays differ in shape: {a.shape} vs {o.shape}")
    b, c = int((a & ~o).sum()), int((~a & o).sum())
    n = b + c
    if n < exact_below:
        tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
        return McNemar(b, c, min(1.0, 2 * tail / 2 ** n), "exact")
    chi2 = (abs(b - c) - 1) ** 2 / n
    return McNemar(b, c, math.erfc(math.sqrt(chi2 / 2)), "chi2")


# ------------------------------------------------------------------- from runs
@dataclass(frozen=True)
class Predictions:
    """One job's test predictions: ids, true labels and predicted classes, ``(N,)`` each."""

    ids: np.ndarray
    labels: np.ndarray
    pred: np.ndarray


@functools.lru_cache(maxsize=512)
def _load(path: str, stamp: tuple[int, int], clean: bool) -> Predictions | None:
    """A job folder's predictions (``stamp``: the file's mtime and size, so a rewritten file is
    read again); ``None`` when the file lacks the arrays."""
    from .results import load_predictions

    z = load_predictions(Path(path))
    pre = "clean_" if clean else ""
    if not all(f"{pre}{x}" in z for x in ("ids", "labels", "logits")):
        return None
    return Predictions(z[f"{pre}ids"].astype(str), z[f"{pre}labels"].astype(np.int64),
                       z[f"{pre}logits"].argmax(1).astype(np.int64))


def _stamp(result: dict[str, Any]) -> tuple[str, int, int] | None:
    """(folder, mtime, size) of a job's ``predictions.npz``: what its cached values key on."""
    d = result.get("run_dir")
    p = Path(d) / "predictions.npz" if d else None
    if p is None or not p.is_file():
        return None
    st = p.stat()
    return str(p.parent), st.st_mtime_ns, st.st_size


def job_predictions(result: dict[str, Any], clean: bool = False) -> Predictions | None:
    """The predictions of a finished job (its ``run_dir``), or ``None`` when it kept none."""
    stamp = _stamp(result)
    return None if stamp is None else _load(stamp[0], stamp[1:], clean)


def seed_groups(results: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Jobs grouped by seed (seeds in order of first appearance), each group in fold order: the
    K folds of a cross-validation seed together, one job per group without folds."""
    by_seed: dict[int, list[dict[str, Any]]] = {}
    for r in results:
        by_seed.setdefault(int(r["seed"]), []).append(r)
    return [sorted(g, key=lambda r: r.get("fold") or 0) for g in by_seed.values()]


def _pooled(stamps: tuple[tuple[str, int, int], ...], clean: bool) -> Predictions | None:
    """The predictions of one seed's jobs, concatenated in the given (fold) order: the K folds'
    test sets together are every image once. ``None`` when a job lacks them or an image repeats."""
    preds = [_load(s[0], s[1:], clean) for s in stamps]
    if any(p is None for p in preds):
        return None
    if len(preds) == 1:
        return preds[0]
    pooled = Predictions(*(np.concatenate([getattr(p, f) for p in preds]) for f in ("ids", "labels", "pred")))
    return pooled if np.unique(pooled.ids).size == pooled.ids.size else None


def seed_predictions(results: list[dict[str, Any]], clean: bool = False) -> Predictions | None:
    """The pooled predictions of one seed's jobs (one job, or the K folds of a cross-validation)."""
    stamps = tuple(_stamp(r) for r in sorted(results, key=lambda r: r.get("fold") or 0))
    return None if any(s is None for s in stamps) else _pooled(stamps, clean)


def runs_interval(results: list[dict[str, Any]], metric: str = "accuracy", *, n_boot: int = BOOTSTRAP_SAMPLES,
                  level: float = LEVEL) -> tuple[float, float] | None:
    """The bootstrap interval of the seeds' mean ``metric`` for jobs of one configuration
    (one job: that job's interval). The K fold jobs of a seed of a cross-validation are pooled
    (their test sets together are every image once), so the interval is over all images.
    ``None`` when the metric has no interval (best accuracy), a job kept no predictions, or the
    seeds were tested on different images. Cached per predictions files (a run folder's
    results are re-read after every job)."""
    if metric not in CI_METRICS or not results:
        return None
    stamps = tuple(tuple(_stamp(r) for r in g) for g in seed_groups(results))
    if any(s is None for g in stamps for s in g):
        return None
    k = len(results[0].get("classes") or [])
    # resamples keyed by the test set and seeds, not the configuration: every method of a table
    # is resampled on the same images (a paired bootstrap), and editing code leaves intervals be
    key = (results[0].get("dataset"), metric, *sorted({int(r["seed"]) for r in results}))
    return _interval(stamps, metric, k, key, n_boot, level)


@functools.lru_cache(maxsize=1024)
def _interval(stamps: tuple[tuple[tuple[str, int, int], ...], ...], metric: str, k: int, key: tuple, n_boot: int,
              level: float) -> tuple[float, float] | None:
    clean = metric.startswith("clean_")
    preds = [_pooled(g, clean) for g in stamps]
    if any(p is None for p in preds):
        return None
    first = preds[0]
    order = np.argsort(first.ids, kind="stable")
    stacked = []
    for p in preds:
        if p.ids.shape != first.ids.shape:
            return None
        o = np.argsort(p.ids, kind="stable")
        if not (np.array_equal(p.ids[o], first.ids[order]) and np.array_equal(p.labels[o], first.labels[order])):
            return None
        stacked.append(p.pred[o])
    k = k or int(max(first.labels.max(), *(s.max() for s in stacked))) + 1
    return bootstrap_ci(first.labels[order], np.stack(stacked), k, metric=metric.removeprefix("clean_"),
                        n_boot=n_boot, level=level, key=key)


def _paired(pa: Predictions | None, pb: Predictions | None) -> McNemar | None:
    """McNemar's test of ``pa`` against ``pb``, paired by test image id over the images both
    were tested on; ``None`` without predictions or common images."""
    if pa is None or pb is None:
        return None
    common, ia, ib = np.intersect1d(pa.ids, pb.ids, assume_unique=True, return_indices=True)
    if common.size == 0 or not np.array_equal(pa.labels[ia], pb.labels[ib]):
        return None
    return mcnemar(pa.pred[ia] == pa.labels[ia], pb.pred[ib] == pb.labels[ib])


def paired_mcnemar(a: dict[str, Any], b: dict[str, Any]) -> McNemar | None:
    """McNemar's test between two jobs (``a`` against ``b``), paired by test image id over the
    images both were tested on; ``None`` without predictions or common images."""
    return _paired(job_predictions(a), job_predictions(b))


def seedwise_mcnemar(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[tuple[int, McNemar]]:
    """McNemar's test of ``a``'s jobs against ``b``'s for every seed both have (jobs of one
    configuration each), in seed order, paired by test image id. The K folds of a seed of a
    cross-validation are pooled first (:func:`seed_predictions`), so the test pairs every image."""
    by_seed = {int(g[0]["seed"]): g for g in seed_groups(b)}
    out = []
    for g in sorted(seed_groups(a), key=lambda g: int(g[0]["seed"])):
        s = int(g[0]["seed"])
        if s in by_seed:
            t = _paired(seed_predictions(g), seed_predictions(by_seed[s]))
            if t is not None:
                out.append((s, t))
    return out


def format_p(p: float) -> str:
    """``0.0386`` -> ``"p=0.039*"``: three decimals (``<0.001`` below), ``*`` below 0.05, ``**``
    below 0.01."""
    text = "p<0.001" if p < 0.001 else f"p={p:.3f}"
    return text + ("**" if p < 0.01 else "*" if p < 0.05 else "")
