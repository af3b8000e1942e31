"""The benchmark's data pipeline: images of one split as batches, deterministic by design.

* :class:`ImageTable` decodes a split's images (with :meth:`Source.load`), resizes each to the
  recipe's ``input_size`` (a square; ``cv2.INTER_AREA`` when shrinking, bilinear when
  enlarging) and keeps them in memory as ``uint8`` when they fit in ``cache_mb`` (loaded once,
  with ``workers`` processes); otherwise it streams each batch through a ``DataLoader`` with
  ``workers`` processes, which returns batches in the order asked for.
* :func:`epoch_batches` is the training order: a permutation drawn from a generator seeded by
  (run seed, stage, epoch), cut into batches of ``batch_size`` (a final partial batch is
  dropped when ``drop_last``; a split smaller than one batch gives one batch).
* :func:`augment_seed_keys` keys every augmentation draw by (run seed, stage, epoch, item id).
* :func:`item_meta` gives each item's row of a degraded copy's ``manifest.csv`` (the per-image
  degradation parameters) for models that ask for ``"meta"`` (LLDif's captions).

Nothing here depends on the number of workers: workers only decode, in a fixed order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import cv2
import numpy as np
import torch
from torch import Tensor

from fercore.progress import make_progress
from fercore.seeding import torch_generator
from fercore.sources.base import Record, Source


def load_resized(source: Source, rec: Record, size: int) -> np.ndarray:
    """The record's image as ``size x size x 3`` ``uint8`` RGB."""
    img = source.load(rec)
    h, w = img.shape[:2]
    if (h, w) != (size, size):
        interp = cv2.INTER_AREA if (h > size or w > size) else cv2.INTER_LINEAR
        img = cv2.resize(img, (size, size), interpolation=interp)
    return np.ascontiguousarray(img)


class _Items(torch.utils.data.Dataset):
    def __init__(self, source: Source, records: Sequence[Record], size: int):
        self.source, self.records, self.size = source, list(records), size

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[int, Tensor]:
        img = load_resized(self.source, self.records[i], self.size)
        return i, torch.from_numpy(img).permute(2, 0, 1).contiguous()


def _collate(items):
    idx = torch.tensor([i for i, _ in items], dtype=torch.long)
    return idx, torch.stack([t for _, t in items])


class ImageTable:
    """One split of a source, as ``uint8`` ``(B, 3, S, S)`` batches by position.

    Attributes:
        records, ids, labels (``np.int64``), size.
    """

    def __init__(self, source: Source, records: Sequence[Record], size: int, *, workers: int = 0,
                 cache_mb: float = 4096, description: str = "loading images"):
        if not records:
            raise ValueError(f"{source.name}: no images in this split")
        self.source = source
        self.records = list(records)
        self.ids = [r.id for r in self.records]
        self.labels = np.array([r.label for r in self.records], dtype=np.int64)
        self.size = int(size)
        self.workers = int(workers)
        self._cache: Tensor | None = None
        nbytes = len(self.records) * 3 * self.size * self.size
        if nbytes <= cache_mb * 2**20:
            self._cache = self._preload(description)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def cached(self) -> bool:
        return self._cache is not None

    def _loader(self, batches: list[list[int]]):
        ds = _Items(self.source, self.records, self.size)
        return torch.utils.data.DataLoader(ds, batch_sampler=batches, num_workers=self.workers,
                                           collate_fn=_collate, persistent_workers=False)

    def _preload(self, description: str) -> Tensor:
        n = len(self.records)
        out = torch.empty((n, 3, self.size, self.size), dtype=torch.uint8)
        chunk = 64
        batches = [list(range(i, min(n, i + chunk))) for i in range(0, n, chunk)]
        with make_progress(transient=True) as prog:
            task = prog.add_task(description, total=n)
            for idx, imgs in self._loader(batches):
                out[idx] = imgs
                prog.advance(task, len(idx))
        return out

    def iter_batches(self, batches: list[np.ndarray]) -> Iterator[tuple[np.ndarray, Tensor]]:
        """Yield ``(positions, uint8 images)`` for each batch of positions, in order."""
        if self._cache is not None:
            for b in batches:
                yield b, self._cache[torch.as_tensor(b, dtype=torch.long)]
            return
        lists = [[int(i) for i in b] for b in batches]
        for b, (_, imgs) in zip(batches, self._loader(lists)):
            yield b, imgs


def epoch_batches(n: int, batch_size: int, seed: int, stage: str, epoch: int, *, shuffle: bool = True,
                  drop_last: bool = True) -> list[np.ndarray]:
    """Positions of every batch of one epoch (a permutation seeded by (seed, stage, epoch))."""
    if shuffle:
        order = torch.randperm(n, generator=torch_generator(seed, "shuffle", stage, epoch)).numpy()
    else:
        order = np.arange(n)
    bs = min(batch_size, n)
    cut = (n // bs) * bs if drop_last else n
    return [order[i:i + bs] for i in range(0, cut, bs)]


def eval_batches(n: int, batch_size: int) -> list[np.ndarray]:
    """Positions of the evaluation batches (in order)."""
    return [np.arange(i, min(n, i + batch_size)) for i in range(0, n, batch_size)]


def shard(positions: np.ndarray, rank: int, world: int) -> np.ndarray:
    """This rank's part of a global batch: contiguous, sizes differing by at most one."""
    if world == 1:
        return positions
    return np.array_split(positions, world)[rank]


def augment_seed_keys(seed: int, stage: str, epoch: int, item_id: str) -> tuple:
    """The keys of one item's augmentation generator (``numpy_rng(*keys)``)."""
    return (seed, "augment", stage, epoch, item_id)


def limit_records(records: list[Record], limit: int | None, seed: int = 0) -> list[Record]:
    """A deterministic class-balanced subset of ``limit`` records (for smoke runs).

    Items are ranked by a hash of (seed, id) within each class and taken round-robin over
    classes, so the subset depends only on the ids.
    """
    if limit is None or limit >= len(records):
        return list(records)
    from fercore.seeding import balanced_subset

    idx = balanced_subset([r.label for r in records], [r.id for r in records], limit, seed, "subset")
    return sorted((records[i] for i in idx), key=lambda r: r.id)


#: Manifest columns that are bookkeeping, not degradation parameters (never given to a model:
#: ``label`` and ``class`` would leak the answer).
META_DROP = ("id", "split", "label", "class", "path", "sha256")


def item_meta(source: Source, ids: Sequence[str]) -> list[dict[str, str]]:
    """Per item, its row of ``<source root>/manifest.csv`` (written by ``fer-degrade``) without
    the :data:`META_DROP` columns, values as strings; ``{}`` for items without a row and for
    every item of a source without a manifest (clean data)."""
    from pathlib import Path

    from fercore.manifest import read_manifest

    path = Path(source.root) / "manifest.csv"
    if not path.is_file():
        return [{} for _ in ids]
    rows = {r["id"]: {k: v for k, v in r.items() if k not in META_DROP}
            for r in read_manifest(path, required=("id",))}
    return [dict(rows.get(i, {})) for i in ids]
