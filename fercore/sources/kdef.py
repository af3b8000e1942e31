"""KDEF: 4,900 images named ``<session><gender><id><expression><angle>.JPG``.

Example: ``AF01AFS.JPG`` = session A, female, person 01, afraid, straight (frontal). Any folder
depth is accepted (the official archive has ``KDEF/AF01/AF01AFS.JPG``). The split is
subject-independent and fixed by the subject lists in ``data_manifests/kdef.json`` (56 train /
14 test people, 3,920 / 980 images), so every user gets the same split.

Options (``--src-opt``): ``frontal=true`` keeps only straight (``S``) views (784 / 196).
"""

from __future__ import annotations

import re
from typing import Any

from data_manifests import load_manifest

from ..errors import DataError
from ..imageio import IMAGE_EXTENSIONS
from .base import Issues, Option, Record, Source


class KDEF(Source):
    name = "kdef"
    description = "KDEF (70 people x 7 expressions x 5 angles x 2 sessions; 56/14-person split)"
    options = {"frontal": Option(False, "keep only the straight (frontal) view")}
    face_fraction = 0.5  # 562 x 762 portraits: a frontal face spans about half the width

    def __init__(self, root=None, **options):
        self.manifest = load_manifest("kdef")
        super().__init__(root, **options)
        self._regex = re.compile(self.manifest["file_naming"]["regex"], re.IGNORECASE)
        subj = self.manifest["subjects"]
        self._split_of = {s: "train" for s in subj["train"]} | {s: "test" for s in subj["test"]}

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.manifest["classes"])

    def expected_counts(self) -> dict[str, dict[str, Any]]:
        return self.manifest["frontal_splits" if self.opts["frontal"] else "splits"]

    def expected_ids(self) -> list[str]:
        """Every file stem the manifest expects (4,900, or 980 frontal)."""
        fn = self.manifest["file_naming"]
        angles = ["S"] if self.opts["frontal"] else fn["angles"]
        codes = self.manifest["label_encoding"]["codes"]
        return [f"{sess}{person}{expr}{ang}" for sess in fn["sessions"]
                for person in self._split_of for expr in codes for ang in angles]

    def _scan(self, issues: Issues) -> list[Record]:
        codes = self.manifest["label_encoding"]["codes"]
        found: dict[str, Any] = {}
        for p in sorted(self.root.rglob("*")):
            if not p.is_file() or p.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            m = self._regex.match(p.name)
            if m is None:
                issues.extra(p)
                continue
            sess, gender, num, expr, angle = (g.upper() for g in m.groups()[:5])
            person = f"{gender}{num}"
            if person not in self._split_of:
                issues.extra(p)
                continue
            if self.opts["frontal"] and angle != "S":
                continue
            stem = f"{sess}{person}{expr}{angle}"
            if stem in found:
                issues.problem(f"two files for {stem}: {found[stem]} and {p}", p)
                continue
            found[stem] = p
        if not found and issues.report is None:
            raise DataError("no KDEF images found (expected names like AF01AFS.JPG)", self.root)
        if issues.report is not None:  # a few missing files do not stop training, only the check
            for stem in self.expected_ids():
                if stem not in found:
                    issues.missing(f"{stem}.JPG", "KDEF image")
        records = []
        for stem, p in found.items():
            cls = codes[stem[4:6]]
            records.append(Record(stem, self._split_of[stem[1:4]], self.classes.index(cls), cls,
                                  p.relative_to(self.root).as_posix(), path=p))
        return records
