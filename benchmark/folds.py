"""K-fold cross-validation runs: ``--src-opt folds=K --src-opt fold=all``.

A source *declares folds* when it has both a ``folds`` and a ``fold`` option (the ``folder``
source: group K-fold over people with ``subject=``, per image without). ``fold=I`` makes fold
``I`` the test set of one job; ``fold=all`` asks for all K: the run resolves the dataset once
per fold (:func:`benchmark.datasets.resolve_datasets`) and plans one job per (dataset, fold,
method, seed), each exactly the job ``fold=I`` would be (same config hash, so finished folds
are skipped and an interrupted run resumes).

The jobs of one configuration's K folds share a *cross-validation identity*: the data's
identity without the fold (:func:`cv_identity`), which enters ``cv_hash`` (the job's config
hash with the fold removed, :meth:`benchmark.runner.Job.cv_hash`). Tables put the results of
one ``cv_hash`` into one cell (:mod:`benchmark.tables`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from fercore.errors import ConfigError
from fercore.sources import SOURCES, get_source
from fercore.sources.base import Source

FOLDS, FOLD = "folds", "fold"
#: The ``fold=`` value that runs every fold.
ALL = "all"


@dataclass(frozen=True)
class FoldInfo:
    """Which fold a resolved dataset is: ``fold`` of ``folds``, and the data's identity
    without the fold (the same for the K folds of one split)."""

    fold: int
    folds: int
    identity: str


def declares_folds(base: str) -> bool:
    """Whether the registered source ``base`` has ``folds`` and ``fold`` options."""
    opts = SOURCES[base].options
    return FOLDS in opts and FOLD in opts


def wants_all_folds(opts: dict[str, Any]) -> bool:
    return str(opts.get(FOLD, "")).strip().lower() == ALL


def fold_count(base: str, opts: dict[str, Any]) -> int | None:
    """K when the source options ``opts`` of ``base`` ask for every fold (``fold=all``), else
    ``None``. Raises :class:`ConfigError` (``--src-opt``) for ``fold=all`` without
    ``folds=K`` (K >= 2) or on a source without folds."""
    if not wants_all_folds(opts):
        return None
    if not declares_folds(base):
        raise ConfigError(f"fold=all: source {base!r} has no folds (sources with folds= and fold= options: "
                          f"{', '.join(b for b in SOURCES if declares_folds(b))})", flag="--src-opt")
    raw = opts.get(FOLDS)
    if raw is None:
        raise ConfigError("fold=all needs folds=K (K >= 2), e.g. --src-opt folds=10 --src-opt fold=all",
                          flag="--src-opt")
    try:
        k = int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"folds={raw!r} is not a whole number", flag="--src-opt") from None
    if k < 2:
        raise ConfigError(f"fold=all needs folds=K with K >= 2, got folds={k}", flag="--src-opt")
    return k


def fold_of(source: Source) -> tuple[int, int] | None:
    """``(fold, folds)`` of a source that runs K-fold cross-validation, else ``None``."""
    if source.name not in SOURCES or not declares_folds(source.name):
        return None
    k = int(source.opts.get(FOLDS) or 0)
    return (int(source.opts[FOLD]), k) if k >= 2 else None


def without_fold(source: Source) -> Source:
    """The same source with ``folds`` and ``fold`` at their defaults (one hold-out split), or
    ``source`` itself when it does not run cross-validation. A degraded copy is built from it:
    the copy degrades every image whatever the split, so one copy serves all K folds."""
    if fold_of(source) is None:
        return source
    return get_source(source.name, source.root, **{k: v for k, v in source.opts.items() if k not in (FOLDS, FOLD)})


def cv_identity(source: Source) -> str:
    """Hash of what the K folds share: source, classes, options without ``fold`` and every
    image's (id, label) -- not the split, which is the fold's."""
    h = hashlib.sha256()
    opts = {k: v for k, v in source.describe()["options"].items() if k != FOLD}
    h.update(json.dumps([source.name, list(source.classes), opts], sort_keys=True, default=str).encode())
    for r in source.records():
        h.update(f"{r.id}\t{r.label}\n".encode())
    return h.hexdigest()


def fold_info(source: Source, extra: str = "") -> FoldInfo | None:
    """The :class:`FoldInfo` of a resolved source (``extra``: the copy's manifest hash)."""
    f = fold_of(source)
    return None if f is None else FoldInfo(f[0], f[1], cv_identity(source) + extra)
