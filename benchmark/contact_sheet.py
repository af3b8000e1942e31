"""A contact sheet of a dataset: one row per class, the first images of each (by id)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fercore.imageio import write_image
from fercore.sources import Source


def contact_sheet(source: Source, out: str | Path, *, split: str | None = None, per_class: int = 8,
                  tile: int = 100) -> np.ndarray:
    recs = source.records(split)
    rows = []
    for label, _cls in enumerate(source.classes):
        chosen = [r for r in recs if r.label == label][:per_class]
        tiles = [cv2.resize(source.load(r), (tile, tile), interpolation=cv2.INTER_AREA) for r in chosen]
        tiles += [np.zeros((tile, tile, 3), np.uint8)] * (per_class - len(tiles))
        rows.append(np.concatenate(tiles, 1))
    sheet = np.concatenate(rows, 0)
    write_image(out, sheet)
    return sheet


def pairs_sheet(clean: Source, degraded: Source, out: str | Path, *, split: str | None = "test",
                per_class: int = 1, tile: int = 96) -> np.ndarray:
    """Clean images (top row) over their degraded copies (bottom row): the first ``per_class``
    images of each class (by id) present in both sources."""
    return rows_sheet([clean, degraded], out, split=split, per_class=per_class, tile=tile)


def rows_sheet(sources: list[Source], out: str | Path, *, split: str | None = "test", per_class: int = 1,
               tile: int = 96) -> np.ndarray:
    """One row per source (a clean set and its copies, e.g. at each severity), the same images in
    every row: the first ``per_class`` images of each class (by id) of ``sources[0]`` present in all."""
    have = [{r.id: r for r in s.records(split)} for s in sources[1:]]
    first = sources[0]
    chosen = []
    for label in range(len(first.classes)):
        chosen += [r for r in first.records(split) if r.label == label and all(r.id in h for h in have)][:per_class]
    if not chosen:
        raise ValueError("the sources share no images")
    rows = [[cv2.resize(first.load(r), (tile, tile), interpolation=cv2.INTER_AREA) for r in chosen]]
    rows += [[cv2.resize(src.load(h[r.id]), (tile, tile), interpolation=cv2.INTER_AREA) for r in chosen]
             for src, h in zip(sources[1:], have)]
    sheet = np.concatenate([np.concatenate(r, 1) for r in rows], 0)
    write_image(out, sheet)
    return sheet
