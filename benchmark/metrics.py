"""Accuracy, per-class accuracy, mean class accuracy, macro-F1, confusion matrix and confidence.

Percent like the papers' tables. Per-class accuracy is the recall of each class (the diagonal
of the row-normalised confusion matrix); mean class accuracy averages it (RAF-DB papers report
it beside accuracy, as "average accuracy"). Both averages -- mean class accuracy and macro-F1 --
run over the classes that have at least one test image: a class without test images (CK+ has
no neutral; a small split may miss a class) never enters them, where it would count as 0.
Macro-F1 equals scikit-learn's ``f1_score(average="macro", labels=<classes with a test image>,
zero_division=0)`` (computed from the confusion matrix with NumPy: importing scikit-learn costs
seconds per job).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def confusion_matrix(labels: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """``(K, K)`` counts, rows = true class, columns = predicted class."""
    return np.bincount(labels.astype(np.int64) * k + pred.astype(np.int64), minlength=k * k).reshape(k, k)


def _mean_over_present(per_class: np.ndarray, present: np.ndarray) -> float | np.ndarray:
    """Mean over the last axis of ``per_class`` where ``present``; ``nan`` where none is."""
    n = present.sum(-1)
    total = np.where(present, per_class, 0.0).sum(-1)
    out = np.divide(total, n, out=np.full(np.shape(n), np.nan), where=n > 0)
    return float(out) if out.ndim == 0 else out


def accuracy(cm: np.ndarray) -> float | np.ndarray:
    """Share of the diagonal: ``cm`` ``(K, K)`` -> float, or ``(..., K, K)`` -> ``(...)``."""
    cm = np.asarray(cm)
    out = np.trace(cm, axis1=-2, axis2=-1) / cm.sum((-2, -1))
    return float(out) if np.ndim(out) == 0 else out


def macro_f1(cm: np.ndarray) -> float | np.ndarray:
    """Mean of F1 = 2 TP / (2 TP + FP + FN) over the classes with a test image (rows of ``cm``
    with a count); ``nan`` for an empty matrix. A class that is only ever predicted adds no
    term of its own (its false positives lower the other classes' recall). ``cm`` ``(K, K)``
    -> float, or a stack ``(..., K, K)`` -> ``(...)``."""
    cm = np.asarray(cm)
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(np.float64)
    support = cm.sum(-1)
    denom = cm.sum(-2) + support
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return _mean_over_present(f1, support > 0)


def mean_class_accuracy(cm: np.ndarray) -> float | np.ndarray:
    """Mean over the classes with a test image of the class's recall TP / (TP + FN); shapes
    as :func:`macro_f1`."""
    cm = np.asarray(cm)
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(np.float64)
    support = cm.sum(-1)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    return _mean_over_present(recall, support > 0)


#: Metrics computed from a confusion matrix (fractions; stacks of matrices give arrays).
FROM_CONFUSION = {"accuracy": accuracy, "mean_class_accuracy": mean_class_accuracy, "macro_f1": macro_f1}


def classification_metrics(logits: np.ndarray, labels: np.ndarray, classes: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Metrics of one evaluation: ``logits`` ``(N, K)``, ``labels`` ``(N,)`` class indices."""
    k = len(classes)
    if logits.ndim != 2 or logits.shape[0] != labels.shape[0] or logits.shape[1] != k:
        raise ValueError(f"logits {logits.shape}, labels {labels.shape} and {k} classes do not match")
    pred = logits.argmax(1)
    cm = confusion_matrix(labels, pred, k)
    support = cm.sum(1)
    per_class = {c: (100.0 * cm[i, i] / support[i]) if support[i] else None for i, c in enumerate(classes)}
    conf = softmax(logits.astype(np.float64)).max(1)
    return {
        "accuracy": 100.0 * float((pred == labels).mean()),
        "macro_f1": 100.0 * macro_f1(cm),
        "mean_class_accuracy": 100.0 * mean_class_accuracy(cm),
        "per_class_accuracy": per_class,
        "confusion": cm.tolist(),
        "mean_confidence": float(conf.mean()),
        "n": int(labels.shape[0]),
    }
