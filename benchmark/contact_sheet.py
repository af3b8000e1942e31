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
