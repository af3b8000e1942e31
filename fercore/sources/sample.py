"""The embedded sample set as a source (built on first use, then cached).

Without ``--root`` the set is built into the cache for ``seed`` (see
:mod:`fercore.sample.build`); with ``--root`` it reads a built or degraded copy there (a
degraded copy mirrors the layout and carries ``labels.csv``).

Options (``--src-opt``): ``seed=0`` -- which sample set to build when no ``--root`` is given.
"""

from __future__ import annotations

import csv
import re
from typing import Any

from data_manifests import load_manifest

from ..classes import BASIC7
from ..errors import DataError
from ..imageio import IMAGE_EXTENSIONS
from ..sample.build import build_sample, default_sample_root
from .base import SPLITS, Issues, Option, Record, Source

LABELS = "labels.csv"


class Sample(Source):
    name = "sample"
    description = "embedded sample set: rendered faces, 7 classes, 1,680 train / 420 test, built from a seed"
    options = {"seed": Option(0, "seed of the generated set (used when no --root is given)")}

    def __init__(self, root=None, **options):
        self.manifest = load_manifest("sample")
        self._given_root = root
        super().__init__(root, **options)

    def _resolve_root(self, root):
        if root is None:
            seed = int(self.opts["seed"])
            return build_sample(default_sample_root(seed), seed)
        return super()._resolve_root(root)

    @property
    def classes(self) -> tuple[str, ...]:
        return BASIC7

    def label_files(self) -> list[str]:
        return [f for f in (LABELS, "meta.csv", "sample.json") if (self.root / f).is_file()]

    def expected_counts(self) -> dict[str, dict[str, Any]]:
        return self.manifest["splits"]

    def filter_label_file(self, rel: str, data: bytes, ids: set[str]) -> bytes:
        if not rel.endswith(".csv"):
            return data
        lines = data.decode("utf-8").splitlines(keepends=True)
        return "".join([lines[0]] + [ln for ln in lines[1:] if ln.split(",", 1)[0] in ids]).encode()

    def _scan(self, issues: Issues) -> list[Record]:
        path = self.root / LABELS
        if not path.is_file():
            raise DataError(f"{LABELS} not found: not a sample set (build one with "
                            "`fer-bench data build-sample --out DIR`)", path)
        try:
            return self._read_labels(path, issues)
        except UnicodeDecodeError as exc:
            raise DataError(f"not a UTF-8 CSV ({exc.reason} at byte {exc.start})", path) from None

    def _read_labels(self, path, issues: Issues) -> list[Record]:
        records: list[Record] = []
        listed: set[str] = set()
        id_re = re.compile(self.manifest["file_naming"]["regex"])
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header != ["id", "split", "label", "class", "path"]:
                raise DataError(f"unexpected header {header}; expected id,split,label,class,path", path)
            for lineno, row in enumerate(reader, 2):
                if len(row) != 5:
                    issues.bad_line(path, lineno, ",".join(row), "expected 5 columns")
                    continue
                rid, split, label, cls, rel = row
                if split not in SPLITS or cls not in BASIC7 or label != str(BASIC7.index(cls)):
                    issues.bad_line(path, lineno, ",".join(row), "bad split, class or label")
                    continue
                if not id_re.match(rid) or rel.rsplit(".", 1)[0] != f"{split}/{cls}/{rid}" \
                        or "." + rel.rsplit(".", 1)[-1].lower() not in IMAGE_EXTENSIONS:
                    issues.bad_line(path, lineno, ",".join(row), f"id must match {id_re.pattern} and path be "
                                    "<split>/<class>/<id>.png")
                    continue
                p = self.root / rel
                listed.add(rel)
                if not p.is_file():
                    issues.missing(p, f"image listed in {LABELS}")
                    continue
                records.append(Record(rid, split, int(label), cls, rel, path=p))
        for split in SPLITS:
            d = self.root / split
            if d.is_dir():
                for p in sorted(d.rglob("*")):
                    if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
                        if p.relative_to(self.root).as_posix() not in listed:
                            issues.extra(p)
        return records
