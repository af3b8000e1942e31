"""Any folder of labelled images: ``root/<class>/<image>`` or ``root/<split>/<class>/<image>``.

Works for CK+, JAFFE, AffectNet exports, ImageFolder trees and one's own photos. Class folder
names are mapped to the canonical expressions by :data:`fercore.classes.ALIASES` (``happy``,
``Happiness``, ``HA`` ... all mean *happiness*); an unknown name is reported by name. Split
folders may be called train/training, val/valid/validation, test/testing.

Options (``--src-opt``):
  * ``classes=auto|7|8`` -- ``auto`` uses 8 classes if a contempt folder exists, else 7.
  * ``test_fraction=0.2`` -- for a tree without split folders: the fraction of images put in
    ``test``, chosen by a hash of each image's path (stable, no randomness). Note that this
    split is per image, not per person.
  * ``aliases=FILE.json`` -- extra ``{"folder name": "canonical class"}`` mappings.
  * ``exif=true|false`` -- apply each photo's EXIF orientation tag (default true: a phone
    photo stored sideways is read upright, as a photo viewer shows it, and a degraded copy is
    written upright); ``false`` reads the stored pixels as they are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..classes import BASIC7, BASIC8, canonical_class
from ..errors import ConfigError, DataError
from ..imageio import IMAGE_EXTENSIONS, read_image
from ..seeding import derive_seed
from .base import Issues, Option, Record, Source

SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val",
               "validation": "val", "test": "test", "testing": "test"}


class Folder(Source):
    name = "folder"
    description = "any root/<class>/<img> or root/<split>/<class>/<img> tree"
    options = {
        "classes": Option("auto", "7, 8, or auto (8 if a contempt folder exists)", ("auto", "7", "8")),
        "test_fraction": Option(0.2, "test share for trees without split folders (hash of the path)"),
        "aliases": Option("", "JSON file with extra {folder name: canonical class} mappings"),
        "exif": Option(True, "apply each photo's EXIF orientation tag (true: upright as a viewer shows it)"),
    }

    def __init__(self, root=None, **options):
        super().__init__(root, **options)
        if not 0.0 <= self.opts["test_fraction"] < 1.0:
            raise ConfigError(f"test_fraction must be in [0, 1), got {self.opts['test_fraction']}",
                              flag="--src-opt")
        self._aliases: dict[str, str] = {}
        if self.opts["aliases"]:
            p = Path(self.opts["aliases"]).expanduser()
            try:
                self._aliases = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError(f"cannot read aliases file {p}: {exc}", flag="--src-opt") from None
            bad = {k: v for k, v in self._aliases.items() if v not in BASIC8}
            if bad:
                raise ConfigError(f"aliases in {p} map to unknown classes {bad}; use {', '.join(BASIC8)}",
                                  flag="--src-opt")
        self._classes: tuple[str, ...] | None = None

    def _layout(self) -> list[tuple[str | None, Path]]:
        """(split or None, class folder) pairs."""
        top = sorted(d for d in self.root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not top:
            raise DataError("no class folders found; expected root/<class>/<image> or "
                            "root/<split>/<class>/<image>", self.root)
        is_split = [d.name.lower() in SPLIT_NAMES for d in top]
        if all(is_split):
            return [(SPLIT_NAMES[d.name.lower()], c) for d in top
                    for c in sorted(x for x in d.iterdir() if x.is_dir() and not x.name.startswith("."))]
        if any(is_split):
            raise DataError("mixes split folders (" + ", ".join(d.name for d, s in zip(top, is_split) if s)
                            + ") with other folders; use either root/<split>/<class> or root/<class>", self.root)
        return [(None, d) for d in top]

    @property
    def classes(self) -> tuple[str, ...]:
        if self._classes is None:
            mode = self.opts["classes"]
            if mode == "auto":
                names = {canonical_class(c.name, self._aliases) for _, c in self._layout()}
                self._classes = BASIC8 if "contempt" in names else BASIC7
            else:
                self._classes = BASIC8 if mode == "8" else BASIC7
        return self._classes

    def _scan(self, issues: Issues) -> list[Record]:
        records: list[Record] = []
        frac = self.opts["test_fraction"]
        for split, cdir in self._layout():
            cls = canonical_class(cdir.name, self._aliases)
            if cls is None or cls not in self.classes:
                issues.unknown_class(cdir.name, cdir)
                continue
            for p in sorted(cdir.rglob("*")):
                if not p.is_file() or p.name.startswith("."):
                    continue
                if p.suffix.lower() not in IMAGE_EXTENSIONS:
                    issues.extra(p)
                    continue
                rel = p.relative_to(self.root).as_posix()
                rid = rel.rsplit(".", 1)[0]
                s = split
                if s is None:
                    s = "test" if (derive_seed(0, "folder-split", rid) % 10_000) < frac * 10_000 else "train"
                records.append(Record(rid, s, self.classes.index(cls), cls, rel, path=p))
        if not records and issues.report is None:
            raise DataError("no images found in the class folders", self.root)
        return records

    def expected_counts(self) -> dict[str, dict[str, Any]] | None:
        return None

    def load(self, rec: Record) -> np.ndarray:
        """The image, turned upright by its EXIF orientation unless ``exif=false``."""
        if rec.path is None:
            return super().load(rec)
        return read_image(rec.path, exif=self.opts["exif"])
