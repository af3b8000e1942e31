"""RAF-DB (basic): ``basic/Image/aligned/*_aligned.jpg`` + ``basic/EmoLabel/list_patition_label.txt``.

Label lines look like ``train_00001.jpg 5``; the split is the name prefix and labels 1..7 are
Surprise, Fear, Disgust, Happiness, Sadness, Anger, Neutral (see ``data_manifests/rafdb.json``).
``--root`` may point at the folder that holds ``basic/`` or at ``basic/`` itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from data_manifests import load_manifest

from ..errors import DataError
from ..imageio import IMAGE_EXTENSIONS
from .base import Issues, Record, Source

LABEL_FILE = "basic/EmoLabel/list_patition_label.txt"
IMAGE_DIR = "basic/Image/aligned"


class RafDB(Source):
    name = "rafdb"
    description = "RAF-DB basic (12,271 train / 3,068 test, 7 classes, aligned 100x100)"

    def __init__(self, root=None, **options):
        self.manifest = load_manifest("rafdb")
        super().__init__(root, **options)

    def _resolve_root(self, root):
        root = super()._resolve_root(root)
        if not (root / "basic").is_dir() and (root / "EmoLabel").is_dir():
            root = root.parent  # the user pointed at basic/ itself
        return root

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.manifest["classes"])

    def label_files(self) -> list[str]:
        return [LABEL_FILE]

    def expected_counts(self) -> dict[str, dict[str, Any]]:
        return self.manifest["splits"]

    def filter_label_file(self, rel: str, data: bytes, ids: set[str]) -> bytes:
        lines = data.decode("utf-8-sig", errors="replace").splitlines(keepends=True)
        return "".join(ln for ln in lines if ln.split() and ln.split()[0].rsplit(".", 1)[0] in ids).encode()

    def _scan(self, issues: Issues) -> list[Record]:
        label_path = self.root / LABEL_FILE
        image_dir = self.root / IMAGE_DIR
        if not label_path.is_file():
            raise DataError(f"label file not found; expected {LABEL_FILE} under the RAF-DB root",
                            label_path)
        if not image_dir.is_dir():
            raise DataError(f"image folder not found; expected {IMAGE_DIR} under the RAF-DB root",
                            image_dir)
        name_re = re.compile(self.manifest["file_naming"]["label_line_regex"])
        values = self.manifest["label_encoding"]["values"]
        present = {p.name: p for p in image_dir.iterdir()
                   if p.suffix.lower() in IMAGE_EXTENSIONS}
        used: set[str] = set()
        seen: set[str] = set()
        records: list[Record] = []
        text = label_path.read_text(encoding="utf-8-sig", errors="replace")  # a BOM is not part of line 1
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                issues.bad_line(label_path, lineno, line, "expected '<name>.jpg <label>'")
                continue
            fname, lab = parts
            if not name_re.match(fname):
                issues.bad_line(label_path, lineno, line, "name is not train_NNNNN.jpg / test_NNNNN.jpg")
                continue
            if lab not in values:
                issues.bad_line(label_path, lineno, line, "label must be an integer 1..7")
                continue
            stem = fname.rsplit(".", 1)[0]
            if stem in seen:
                issues.bad_line(label_path, lineno, line, "duplicate entry")
                continue
            seen.add(stem)
            img = self._find(present, stem)
            if img is None:
                issues.missing(image_dir / f"{stem}_aligned.jpg", "image named in the label file")
                continue
            used.add(img.name)
            cls = values[lab]
            records.append(Record(
                id=stem, split=stem.split("_", 1)[0], label=self.classes.index(cls),
                class_name=cls, relpath=f"{IMAGE_DIR}/{img.name}", path=img))
        for name in sorted(set(present) - used):
            issues.extra(image_dir / name)
        return records

    @staticmethod
    def _find(present: dict[str, Path], stem: str) -> Path | None:
        """``<stem>_aligned.jpg``; a degraded copy written losslessly may be ``.png``."""
        for ext in (".jpg", ".png", ".jpeg", ".JPG"):
            p = present.get(f"{stem}_aligned{ext}")
            if p is not None:
                return p
        return None
