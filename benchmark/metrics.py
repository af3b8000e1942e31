"""Accuracy, per-class accuracy, macro-F1, confusion matrix and confidence, in percent.

Percent like the papers' tables. Per-class accuracy is the recall of each class (the diagonal
of the row-normalised confusion matrix); macro-F1 averages F1 over all classes of the dataset
and equals scikit-learn's ``f1_score(average="macro", zero_division=0)`` (computed from the
confusion matrix with NumPy: importing scikit-learn costs seconds per job).
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


def macro_f1(cm: np.ndarray) -> float:
    """Mean over classes of F1 = 2 TP / (2 TP + FP + FN); a class with no true and no predicted
    item scores 0 (scikit-learn's ``f1_score(average="macro", zero_division=0)``)."""
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(0) + cm.sum(1)
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1.mean())


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
        "per_class_accuracy": per_class,
        "confusion": cm.tolist(),
        "mean_confidence": float(conf.mean()),
        "n": int(labels.shape[0]),
    }
