"""Any folder of labelled images: ``root/<class>/<image>`` or ``root/<split>/<class>/<image>``.

Works for CK+, JAFFE, AffectNet exports, ImageFolder trees and one's own photos. Class folder
names are mapped to the canonical expressions by :data:`fercore.classes.ALIASES` (``happy``,
``Happiness``, ``HA``, JAFFE's ``1 - Happy`` ... all mean *happiness*); an unknown name is
reported by name. Split folders may be called train/training, val/valid/validation,
test/testing.

Options (``--src-opt``):
  * ``classes=auto|7|8|present`` -- ``auto`` uses 8 classes if a contempt folder exists, else
    7; ``present`` uses exactly the classes that have images, in the canonical order (CK+:
    its 7 classes with contempt and without neutral).
  * ``subject=REGEX`` -- a subject-independent split: the regex is searched in each image's
    path inside its class folder (the file name for flat class folders); its first group is
    the person (``'^(S\\d+)_'`` for CK+'s ``S005_001_00000011.png``, ``'^([A-Z]{2})\\.'`` for
    JAFFE's ``KA.HA1.29.tiff``). Every image of a person lands in the same split.
  * ``test_fraction=0.2`` -- for a tree without split folders: the share of test people
    (with ``subject``) or of test images (without: per image, which puts the same person in
    both splits on a posed data set).
  * ``folds=K``, ``fold=I`` -- K-fold cross-validation instead of one hold-out split: fold
    ``I`` (0 .. K-1) is the test set, the other K-1 folds train. With ``subject`` the folds
    partition the people (group K-fold, as subject-independent CK+ protocols use); without,
    the images (JAFFE's usual ten-fold). A source reads one fold; ``fer-bench run`` also takes
    ``fold=all`` (with ``folds=K``): one job per fold in one command, each the job ``fold=I``
    would be (finished folds are skipped), one degraded copy for all folds, and tables that
    report the mean over the K folds as one cell (:mod:`benchmark.folds`)::

        fer-bench run --datasets folder,udc-folder --root CK+ --src-opt "subject=^(S\\d+)_" \\
            --src-opt classes=present --src-opt folds=10 --src-opt fold=all
  * ``split_seed=0`` -- which split: people (or images) are ordered by a hash of this seed
    and their id, so the split is stable under renaming the folder or listing the files in
    another order, and another seed gives another split.
  * ``aliases=FILE.json`` -- extra ``{"folder name": "canonical class"}`` mappings.
  * ``exif=true|false`` -- apply each photo's EXIF orientation tag (default true: a phone
    photo stored sideways is read upright, as a photo viewer shows it, and a degraded copy is
    written upright); ``false`` reads the stored pixels as they are.

The split used is recorded in :meth:`Folder.describe` (``split``: how, the pattern, the folds
and the test people), which the benchmark keeps in each job's ``run.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
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


def hash_order(ids: Iterable[str], seed: int, tag: str) -> list[str]:
    """``ids`` (deduplicated) ordered by a hash of ``(seed, tag, id)``: the same order whatever
    order they come in, another order for another seed."""
    return sorted(set(ids), key=lambda g: (derive_seed(seed, tag, g), g))


def group_folds(groups: Iterable[str], folds: int, seed: int) -> dict[str, int]:
    """Each group's fold in ``0 .. folds-1``: groups in :func:`hash_order`, dealt round-robin,
    so fold sizes differ by at most one group."""
    return {g: i % folds for i, g in enumerate(hash_order(groups, seed, "folder-fold"))}


def holdout_groups(groups: Iterable[str], fraction: float, seed: int) -> set[str]:
    """The test groups of a hold-out split: the first ``round(fraction * n)`` groups of
    :func:`hash_order` (at least one and at most ``n - 1`` when ``fraction > 0``)."""
    order = hash_order(groups, seed, "folder-subject")
    if fraction <= 0 or not order:
        return set()
    n_test = min(len(order) - 1, max(1, round(fraction * len(order))))
    return set(order[:n_test])


class Folder(Source):
    name = "folder"
    description = "any root/<class>/<img> or root/<split>/<class>/<img> tree"
    options = {
        "classes": Option("auto", "7, 8, auto (8 if a contempt folder exists) or present (the classes with images)",
                          ("auto", "7", "8", "present")),
        "subject": Option("", "regex whose first group is the person in each image's path inside its class "
                              "folder: a subject-independent split (e.g. '^(S\\d+)_')"),
        "test_fraction": Option(0.2, "test share (of people with subject=, else of images) for trees "
                                     "without split folders"),
        "folds": Option(0, "K-fold cross-validation (0: one hold-out split); groups are people with subject="),
        "fold": Option(0, "which fold (0 .. folds-1) is the test set; fer-bench run also takes fold=all "
                          "(every fold, one job each; tables average them)",
                       hint=" (fold=all is for fer-bench run; here give one fold, 0 .. folds-1)"),
        "split_seed": Option(0, "seed of the split (people/images are ordered by a hash of it and their id)"),
        "aliases": Option("", "JSON file with extra {folder name: canonical class} mappings"),
        "exif": Option(True, "apply each photo's EXIF orientation tag (true: upright as a viewer shows it)"),
    }

    def __init__(self, root=None, **options):
        super().__init__(root, **options)
        o = self.opts
        if not 0.0 <= o["test_fraction"] < 1.0:
            raise ConfigError(f"test_fraction must be in [0, 1), got {o['test_fraction']}", flag="--src-opt")
        if o["folds"] == 1 or o["folds"] < 0:
            raise ConfigError(f"folds must be 0 (one hold-out split) or at least 2, got {o['folds']}",
                              flag="--src-opt")
        if o["folds"] and not 0 <= o["fold"] < o["folds"]:
            raise ConfigError(f"fold must be in 0 .. {o['folds'] - 1} for folds={o['folds']}, got {o['fold']}",
                              flag="--src-opt")
        if not o["folds"] and o["fold"]:
            raise ConfigError(f"fold={o['fold']} needs folds=K (K-fold cross-validation)", flag="--src-opt")
        self._subject: re.Pattern | None = None
        if o["subject"]:
            try:
                self._subject = re.compile(o["subject"])
            except re.error as exc:
                raise ConfigError(f"subject={o['subject']!r} is not a regular expression ({exc})",
                                  flag="--src-opt") from None
            if self._subject.groups < 1:
                raise ConfigError(f"subject={o['subject']!r} has no group; put the person's id in parentheses, "
                                  "e.g. '^(S\\d+)_'", flag="--src-opt")
        self._aliases: dict[str, str] = {}
        if o["aliases"]:
            p = Path(o["aliases"]).expanduser()
            try:
                self._aliases = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError(f"cannot read aliases file {p}: {exc}", flag="--src-opt") from None
            bad = {k: v for k, v in self._aliases.items() if v not in BASIC8}
            if bad:
                raise ConfigError(f"aliases in {p} map to unknown classes {bad}; use {', '.join(BASIC8)}",
                                  flag="--src-opt")
        self._classes: tuple[str, ...] | None = None
        self.split_info: dict[str, Any] = {}

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

    @staticmethod
    def _has_image(cdir: Path) -> bool:
        """Whether a class folder holds an image (stops at the first one found)."""
        return any(p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
                   for p in cdir.rglob("*"))

    @property
    def classes(self) -> tuple[str, ...]:
        if self._classes is None:
            mode = self.opts["classes"]
            if mode == "present":
                names = {canonical_class(c.name, self._aliases) for _, c in self._layout()
                         if self._has_image(c)}
                self._classes = tuple(c for c in BASIC8 if c in names)
                if not self._classes:
                    raise DataError("classes=present: no class folder with a known name holds an image",
                                    self.root)
            elif mode == "auto":
                names = {canonical_class(c.name, self._aliases) for _, c in self._layout()}
                self._classes = BASIC8 if "contempt" in names else BASIC7
            else:
                self._classes = BASIC8 if mode == "8" else BASIC7
        return self._classes

    def _scan(self, issues: Issues) -> list[Record]:
        # (split, class, path, path inside the class folder, path inside the root)
        found: list[tuple[str | None, str, Path, str, str]] = []
        layout = self._layout()
        for split, cdir in layout:
            cls = canonical_class(cdir.name, self._aliases)
            if cls is None:
                issues.unknown_class(cdir.name, cdir)
                continue
            if cls not in self.classes:
                if self.opts["classes"] == "present":
                    continue  # a class folder without images
                issues.problem(f"class folder {cdir.name!r} ({cls}) is not one of the {len(self.classes)} classes "
                               f"of classes={self.opts['classes']}; pass --src-opt classes=present to train on "
                               "exactly the classes that have images" + (" (or classes=8)" if cls == "contempt"
                                                                         else ""), cdir)
                continue
            for p in sorted(cdir.rglob("*")):
                if not p.is_file() or p.name.startswith("."):
                    continue
                if p.suffix.lower() not in IMAGE_EXTENSIONS:
                    issues.extra(p)
                    continue
                found.append((split, cls, p, p.relative_to(cdir).as_posix(), p.relative_to(self.root).as_posix()))
        if not found and issues.report is None:
            raise DataError("no images found in the class folders", self.root)
        splits = self._assign_splits(found, has_split_folders=layout[0][0] is not None)
        records = []
        for (_, cls, p, _, rel), s in zip(found, splits):
            records.append(Record(rel.rsplit(".", 1)[0], s, self.classes.index(cls), cls, rel, path=p))
        return records

    def _assign_splits(self, found: list[tuple[str | None, str, Path, str, str]], has_split_folders: bool) -> list[str]:
        """Each image's split (see the module docstring); fills :attr:`split_info`."""
        o = self.opts
        if has_split_folders:
            if self._subject is not None or o["folds"]:
                raise ConfigError("subject= and folds= split a tree without split folders (root/<class>/<image>); "
                                  f"{self.root} already has train/test folders", flag="--src-opt")
            self.split_info = {"by": "split folders"}
            return [f[0] for f in found]
        if not found:  # data check on a tree without images: reported, nothing to split
            return []
        ids = [rel.rsplit(".", 1)[0] for *_, rel in found]  # the records' ids
        seed = o["split_seed"]
        if self._subject is None:
            if o["folds"]:
                fold_of = group_folds(ids, o["folds"], seed)
                self.split_info = {"by": "image", "folds": o["folds"], "fold": o["fold"], "split_seed": seed}
                return ["test" if fold_of[i] == o["fold"] else "train" for i in ids]
            frac = o["test_fraction"]
            self.split_info = {"by": "image", "test_fraction": frac, "split_seed": seed}
            return ["test" if (derive_seed(seed, "folder-split", i) % 10_000) < frac * 10_000 else "train"
                    for i in ids]
        subjects = [self._subject_of(f[3], found) for f in found]
        people = sorted(set(subjects))
        if len(people) < 2:
            raise ConfigError(f"subject={o['subject']!r} finds one person ({people[0]!r}) in {len(found)} images; "
                              "a subject split needs at least two", flag="--src-opt")
        if o["folds"]:
            if o["folds"] > len(people):
                raise ConfigError(f"folds={o['folds']} but subject={o['subject']!r} finds only {len(people)} people",
                                  flag="--src-opt")
            fold_of = group_folds(people, o["folds"], seed)
            test = {g for g in people if fold_of[g] == o["fold"]}
        else:
            test = holdout_groups(people, o["test_fraction"], seed)
        self.split_info = {"by": "subject", "subject": o["subject"], "people": len(people),
                           "test_people": sorted(test), "split_seed": seed,
                           **({"folds": o["folds"], "fold": o["fold"]} if o["folds"]
                              else {"test_fraction": o["test_fraction"]})}
        return ["test" if s in test else "train" for s in subjects]

    def _subject_of(self, inner: str, found: list[tuple[str | None, str, Path, str, str]]) -> str:
        m = self._subject.search(inner)
        if m is not None and m.group(1):
            return m.group(1)
        pattern = self.opts["subject"]
        misses = [f[3] for f in found if not ((mm := self._subject.search(f[3])) and mm.group(1))]
        if len(misses) == len(found):
            raise ConfigError(f"subject={pattern!r} matches no image (e.g. {inner!r}, searched in the path "
                              "inside its class folder)", flag="--src-opt")
        raise ConfigError(f"subject={pattern!r} finds no person in {inner!r} ({len(misses)} of {len(found)} "
                          "images); every image needs one", flag="--src-opt")

    def expected_counts(self) -> dict[str, dict[str, Any]] | None:
        return None

    def describe(self) -> dict[str, Any]:
        """Name, root, options and the split used (``split``: how, and the test people)."""
        if not self.split_info:
            self.records()
        return {**super().describe(), "split": dict(self.split_info)}

    def load(self, rec: Record) -> np.ndarray:
        """The image, turned upright by its EXIF orientation unless ``exif=false``."""
        if rec.path is None:
            return super().load(rec)
        return read_image(rec.path, exif=self.opts["exif"])
