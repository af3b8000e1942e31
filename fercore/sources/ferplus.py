"""FERPlus: FER2013 pixels (``fer2013.csv``) with the FER+ crowd votes (``fer2013new.csv``).

Labels follow the official FER+ *majority* rule (:func:`majority_label`). Images come from
``fer2013.csv`` (48x48 grey, promoted to RGB) or, when present, from the folder layout of the
FERPlus repository's ``generate_training_data.py`` (``FER2013Train/fer0000000.png`` ...), which
is also what ``fer-degrade`` writes for a degraded copy.

Options (``--src-opt``):
  * ``classes=8|7`` -- 8 with contempt (default), 7 drops contempt rows.
  * ``test=private|public+private`` -- ``private``: Training/PublicTest/PrivateTest become
    train/val/test (default); ``public+private``: both test sets form ``test`` (the papers'
    28,709 / 7,178 protocol).
  * ``pixels=auto|csv|images`` -- where the pixels come from (``auto``: the image folders if
    they exist, else ``fer2013.csv``).
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data_manifests import load_manifest

from ..errors import DataError
from ..progress import track
from .base import Issues, Option, Record, Source

VOTES_FILE = "fer2013new.csv"
PIXELS_FILE = "fer2013.csv"
USAGE_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
USAGE_FOLDER = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                "contempt", "unknown", "NF")


def majority_label(votes: Sequence[float]) -> int | None:
    """The official FER+ majority label: an index into the 8 emotions, or ``None``.

    Every count of one vote or less is zeroed (outlier removal); the label is the column with
    the largest count if it holds more than half of the remaining votes (first column on a
    tie), otherwise the image is *unknown*. Images whose winner is ``unknown`` or ``NF``
    (not a face) are dropped as well. NaN, infinite or negative counts raise ``ValueError``.
    """
    if any(not math.isfinite(x) or x < 0 for x in votes):
        raise ValueError(f"vote counts must be finite numbers >= 0, got {list(votes)}")
    v = [0.0 if x <= 1.0 else float(x) for x in votes]
    total = sum(v)
    if total <= 0:
        return None
    best = max(range(len(v)), key=lambda i: (v[i], -i))
    if v[best] <= 0.5 * total:
        return None
    return best if best < 8 else None


class FERPlus(Source):
    name = "ferplus"
    description = "FERPlus (FER2013 + FER+ votes; 8 or 7 classes; 48x48 grey)"
    options = {
        "classes": Option(8, "8 (with contempt) or 7 (contempt rows dropped)", (7, 8)),
        "test": Option("private", "'private': PublicTest is val; 'public+private': both are test",
                       ("private", "public+private")),
        "pixels": Option("auto", "read pixels from fer2013.csv ('csv'), the FER2013Train/... "
                         "image folders ('images'), or whichever exists ('auto')",
                         ("auto", "csv", "images")),
    }

    def __init__(self, root=None, **options):
        self.manifest = load_manifest("ferplus")
        super().__init__(root, **options)

    @property
    def classes(self) -> tuple[str, ...]:
        key = "classes" if self.opts["classes"] == 8 else "classes_7"
        return tuple(self.manifest[key])

    def label_files(self) -> list[str]:
        return [VOTES_FILE]

    def expected_counts(self) -> dict[str, dict[str, Any]] | None:
        return None  # per-class counts after the majority rule are not published

    def filter_label_file(self, rel: str, data: bytes, ids: set[str]) -> bytes:
        """Keep every row (row order is the image index) but blank the name of the records not in
        ``ids``, the way FER+ marks its 173 unusable rows; a full copy's file is unchanged."""
        dropped = {r.id for r in self.records()} - ids
        lines = data.decode("utf-8", errors="replace").splitlines(keepends=True)
        out = lines[:1]
        for line in lines[1:]:
            parts = line.split(",", 2)
            if len(parts) == 3 and parts[1].strip().rsplit(".", 1)[0] in dropped:
                line = f"{parts[0]},,{parts[2]}"
            out.append(line)
        return "".join(out).encode()

    def _use_images(self) -> bool:
        mode = self.opts["pixels"]
        if mode == "auto":
            return any((self.root / f).is_dir() for f in USAGE_FOLDER.values())
        return mode == "images"

    def _scan(self, issues: Issues) -> list[Record]:
        votes_path = self.root / VOTES_FILE
        if not votes_path.is_file():
            raise DataError(f"{VOTES_FILE} (the FER+ votes) not found in the FERPlus root", votes_path)
        use_images = self._use_images()
        pixels: list[np.ndarray | None] | None = None
        if not use_images:
            pixels = self._read_pixels(issues)
        rows = self._read_votes(votes_path, issues)
        if pixels is not None and len(pixels) != len(rows):
            issues.problem(f"{PIXELS_FILE} has {len(pixels)} rows but {VOTES_FILE} has {len(rows)}; "
                           "they must match row by row", self.root)
        records: list[Record] = []
        merge_test = self.opts["test"] == "public+private"
        for i, (usage, name, label) in enumerate(rows):
            if not name or label is None:
                continue
            if label >= len(self.classes):
                continue  # contempt with classes=7
            stem = name.rsplit(".", 1)[0]
            split = USAGE_SPLIT[usage]
            if merge_test and split == "val":
                split = "test"
            rel = f"{USAGE_FOLDER[usage]}/{name}"
            cls = self.classes[label]
            if use_images:
                path = self.root / rel
                if not path.is_file():
                    issues.missing(path, "image named in fer2013new.csv")
                    continue
                records.append(Record(stem, split, label, cls, rel, path=path))
            else:
                px = pixels[i] if pixels is not None and i < len(pixels) else None
                if px is None:
                    continue  # reported while reading pixels
                records.append(Record(stem, split, label, cls, rel, pixels=px))
        if use_images:
            named = {f"{USAGE_FOLDER[u]}/{n}" for u, n, _ in rows if n}
            for folder in USAGE_FOLDER.values():
                d = self.root / folder
                if d.is_dir():
                    for p in sorted(d.iterdir()):
                        if p.suffix.lower() == ".png" and f"{folder}/{p.name}" not in named:
                            issues.extra(p)
        return records

    def _read_votes(self, path: Path, issues: Issues) -> list[tuple[str, str, int | None]]:
        rows: list[tuple[str, str, int | None]] = []
        name_re = re.compile(self.manifest["file_naming"]["image_regex"])
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            expected = self.manifest["label_encoding"]["columns"]
            if header is None or [h.strip() for h in header] != expected:
                raise DataError(f"unexpected header {header}; expected {','.join(expected)}", path)
            for lineno, row in enumerate(reader, 2):
                if len(row) != len(expected):
                    issues.bad_line(path, lineno, ",".join(row), f"expected {len(expected)} columns")
                    rows.append(("Training", "", None))
                    continue
                usage, name = row[0].strip(), row[1].strip()
                if name and not name_re.match(name):
                    issues.bad_line(path, lineno, ",".join(row), f"Image name must look like fer0000000.png "
                                    f"({name_re.pattern})")
                    rows.append(("Training", "", None))
                    continue
                if usage not in USAGE_SPLIT:
                    issues.bad_line(path, lineno, ",".join(row), "Usage must be Training, PublicTest or PrivateTest")
                    rows.append(("Training", "", None))
                    continue
                try:
                    votes = [float(x) for x in row[2:]]
                except ValueError:
                    votes = None
                if votes is None or not all(math.isfinite(v) and v >= 0 for v in votes):
                    issues.bad_line(path, lineno, ",".join(row), "vote counts must be finite numbers >= 0")
                    rows.append((usage, "", None))
                    continue
                rows.append((usage, name, majority_label(votes)))
        return rows

    def _read_pixels(self, issues: Issues) -> list[np.ndarray | None]:
        path = self.root / PIXELS_FILE
        if not path.is_file():
            raise DataError(f"{PIXELS_FILE} (the FER2013 pixels) not found in the FERPlus root; "
                            "or provide the FER2013Train/Valid/Test image folders", path)
        out: list[np.ndarray | None] = []
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:3]] != ["emotion", "pixels", "Usage"]:
                raise DataError(f"unexpected header {header}; expected emotion,pixels,Usage", path)
            for lineno, row in enumerate(track(reader, f"reading {PIXELS_FILE}", total=None), 2):
                try:
                    px = np.array(row[1].split(), dtype=np.int64)
                except (ValueError, IndexError):
                    px = None
                if px is None or px.size != 48 * 48 or px.min() < 0 or px.max() > 255:
                    issues.bad_line(path, lineno, (row[1][:40] + "...") if len(row) > 1 else ",".join(row),
                                    "pixels must be 2304 values in 0..255")
                    out.append(None)
                    continue
                out.append(px.astype(np.uint8).reshape(48, 48))
        return out
