"""The common record type, the :class:`Source` interface and the data-check report.

Every dataset source yields the same :class:`Record`; every command (degrade, train, check)
talks to a source only through :class:`Source`. A source knows its layout, validates it
against ``data_manifests/`` and says exactly what is missing or wrong.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, DataError, ImageReadError
from ..imageio import read_image, to_rgb8, verify_image
from ..progress import track

SPLITS = ("train", "val", "test")


@dataclass(frozen=True, eq=False)
class Record:
    """One labelled image.

    Attributes:
        id: unique, stable identifier within the dataset (seeds and manifests key on it).
        split: ``"train"``, ``"val"`` or ``"test"``.
        label: class index into the source's ``classes``.
        class_name: canonical expression name (see :mod:`fercore.classes`).
        relpath: POSIX path relative to the dataset root; a degraded copy is written at the
            same relative path so every loader reads it like the original.
        path: absolute image path, or ``None`` for in-memory images.
        pixels: in-memory image (FERPlus CSV pixels), ``H x W`` or ``H x W x 3`` ``uint8``.
    """

    id: str
    split: str
    label: int
    class_name: str
    relpath: str
    path: Path | None = None
    pixels: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Option:
    """A documented source option (``--src-opt key=value`` on the command line)."""

    default: Any
    help: str
    choices: tuple | None = None
    #: Appended to the error for a value of the wrong type (how to fix the call).
    hint: str = ""

    def parse(self, key: str, value: Any) -> Any:
        if isinstance(value, str):
            d = self.default
            try:
                if isinstance(d, bool):
                    low = value.strip().lower()
                    if low not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError(value)
                    value = low in ("true", "1", "yes")
                elif isinstance(d, int):
                    value = int(value)
                elif isinstance(d, float):
                    value = float(value)
            except ValueError:
                kind = {bool: "true or false", int: "a whole number", float: "a number"}[type(d)]
                raise ConfigError(f"{key}={value!r} is not {kind}{self.hint}", flag="--src-opt") from None
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{key}={value!r}; choose one of {', '.join(map(str, self.choices))}",
                              flag="--src-opt")
        return value


@dataclass
class CheckReport:
    """What ``fer-bench data check`` found in a user's copy of a dataset."""

    dataset: str
    root: Path
    classes: tuple[str, ...] = ()
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    expected: dict[str, dict[str, Any]] | None = None
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    bad_lines: list[tuple[str, int, str, str]] = field(default_factory=list)
    unknown_classes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count_mismatches(self) -> list[str]:
        """Differences between the counted and the expected split/class sizes."""
        out: list[str] = []
        if not self.expected:
            return out
        for split, exp in self.expected.items():
            got = self.counts.get(split, {})
            total = sum(got.values())
            if exp.get("total") is not None and total != exp["total"]:
                out.append(f"{split}: {total} images, expected {exp['total']}")
            for cls, n in (exp.get("classes") or {}).items():
                if got.get(cls, 0) != n:
                    out.append(f"{split}/{cls}: {got.get(cls, 0)} images, expected {n}")
        return out

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.corrupt or self.bad_lines
                    or self.unknown_classes or self.problems or self.count_mismatches())


class Issues:
    """Collects layout problems into a report (data check) or raises at the first one."""

    def __init__(self, report: CheckReport | None):
        self.report = report

    def _raise(self, message: str, path: Any) -> None:
        raise DataError(f"{message} (run `fer-bench data check` for a full list)", path)

    def bad_line(self, file: Path, lineno: int, line: str, reason: str) -> None:
        if self.report is None:
            self._raise(f"line {lineno}: {reason}: {line.rstrip()!r}", file)
        else:
            self.report.bad_lines.append((str(file), lineno, line.rstrip("\n"), reason))

    def missing(self, path: Path | str, what: str = "") -> None:
        if self.report is None:
            self._raise(f"missing{(' ' + what) if what else ''}", path)
        else:
            self.report.missing.append(str(path))

    def extra(self, path: Path | str) -> None:
        if self.report is not None:  # extra files do not stop normal loading
            self.report.extra.append(str(path))

    def unknown_class(self, name: str, path: Path | str) -> None:
        if self.report is None:
            self._raise(f"unknown class folder {name!r}; rename it or pass --src-opt aliases=FILE.json", path)
        else:
            self.report.unknown_classes.append(f"{name} ({path})")

    def problem(self, message: str, path: Path | str | None = None) -> None:
        if self.report is None:
            self._raise(message, path)
        else:
            self.report.problems.append(f"{path}: {message}" if path else message)


class Source(ABC):
    """A dataset on disk (or generated) that yields :class:`Record` objects.

    Subclasses set ``name`` and ``options`` and implement :meth:`_scan`. Options come as
    keyword arguments (``rafdb``) or ``--src-opt key=value`` strings on the command line.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    options: ClassVar[dict[str, Option]] = {}
    #: The face's width as a fraction of the image's shorter side (UDC blur scales with it).
    face_fraction: ClassVar[float] = 1.0

    def __init__(self, root: str | Path | None = None, **options: Any):
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(self.options) or "none"
            raise ConfigError(f"unknown option(s) {', '.join(unknown)} for source {self.name!r} "
                              f"(known: {known})", flag="--src-opt")
        self.opts = {k: o.parse(k, options.get(k, o.default)) for k, o in self.options.items()}
        self.root = self._resolve_root(root)
        self._records: list[Record] | None = None

    # ----------------------------------------------------------------- layout
    def _resolve_root(self, root: str | Path | None) -> Path:
        if root is None:
            raise ConfigError(f"source {self.name!r} needs the dataset folder", flag="--root")
        root = Path(root).expanduser()
        if not root.is_dir():
            raise DataError("dataset folder not found; pass the folder you unpacked the "
                            f"{self.name} archive into", root)
        return root.resolve()

    @property
    @abstractmethod
    def classes(self) -> tuple[str, ...]:
        """Canonical class names in this dataset's label order."""

    @abstractmethod
    def _scan(self, issues: Issues) -> list[Record]:
        """List all records, reporting layout problems to ``issues``."""

    def label_files(self) -> list[str]:
        """Label files (relative paths) that a mirrored copy of the dataset needs."""
        return []

    def expected_counts(self) -> dict[str, dict[str, Any]] | None:
        """Expected split/class counts from ``data_manifests/`` (``None``: not known)."""
        return None

    # ------------------------------------------------------------------- API
    def records(self, split: str | None = None) -> list[Record]:
        """All records (or one split's), sorted by id. Raises :class:`DataError` on a bad layout."""
        if self._records is None:
            recs = self._scan(Issues(None))
            recs.sort(key=lambda r: r.id)
            problems = self._record_problems(recs)
            if problems:
                raise DataError(f"{problems[0]} (run `fer-bench data check` for a full list)", self.root)
            self._records = recs
        if split is None:
            return list(self._records)
        if split not in SPLITS:
            raise ConfigError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}", flag="--split")
        return [r for r in self._records if r.split == split]

    def _record_problems(self, recs: list[Record]) -> list[str]:
        """Duplicate ids (``a.jpg`` + ``a.png``; a name listed twice) and relative paths that
        would leave the dataset folder (``../x.png``, ``/abs/x.png``): what every command refuses."""
        from ..paths import relpath_problem

        out = []
        dup = sorted(k for k, n in Counter(r.id for r in recs).items() if n > 1)
        if dup:
            out.append(f"duplicate ids {dup[:5]}" + (f" (+{len(dup) - 5} more)" if len(dup) > 5 else ""))
        for r in recs:
            problem = relpath_problem(r.relpath)
            if problem is not None:
                out.append(f"record {r.id!r} has the unsafe path {r.relpath!r} ({problem})")
        return out

    def listing_hash(self, records: list[Record] | None = None) -> str:
        """SHA-256 of the inputs' listing: source, classes and per record id, split, label, path
        and the file's size and modification time (in-memory pixels: their hash). Cheap (no
        image is read) and changes when an image is edited, added or removed."""
        import hashlib
        import json

        h = hashlib.sha256(json.dumps([self.name, list(self.classes)]).encode())
        for r in self.records() if records is None else records:
            if r.pixels is not None:
                tag = hashlib.sha256(np.ascontiguousarray(r.pixels).tobytes()).hexdigest()
            else:
                try:
                    st = r.path.stat()
                    tag = f"{st.st_size}:{st.st_mtime_ns}"
                except (OSError, AttributeError):
                    tag = "missing"
            h.update(f"{r.id}\t{r.split}\t{r.label}\t{r.relpath}\t{tag}\n".encode())
        return h.hexdigest()

    def splits(self) -> list[str]:
        present = {r.split for r in self.records()}
        return [s for s in SPLITS if s in present]

    def load(self, rec: Record) -> np.ndarray:
        """The record's image as ``H x W x 3`` ``uint8`` RGB."""
        if rec.pixels is not None:
            return to_rgb8(rec.pixels, name=rec.id)
        if rec.path is None:
            raise ImageReadError("record has neither a path nor pixels", rec.id)
        return read_image(rec.path)

    def mirror_labels(self, out_root: str | Path, ids: set[str] | None = None) -> list[str]:
        """Write the label files into ``out_root`` at the same relative paths (atomically).

        With ``ids``, the files list only those items (a partial or interrupted copy stays
        readable: every image its labels name exists); without, they are copied verbatim.
        """
        from ..atomic import atomic_write_bytes

        written = []
        for rel in self.label_files():
            data = (self.root / rel).read_bytes()
            if ids is not None:
                data = self.filter_label_file(rel, data, ids)
            atomic_write_bytes(Path(out_root) / rel, data, fsync=False)
            written.append(rel)
        return written

    def filter_label_file(self, rel: str, data: bytes, ids: set[str]) -> bytes:
        """``data`` of label file ``rel`` restricted to the items in ``ids``.

        Sources with label files override this; the default keeps a file unchanged.
        """
        return data

    def counts(self, records: list[Record] | None = None) -> dict[str, dict[str, int]]:
        """Images per split and class name."""
        out: dict[str, dict[str, int]] = {}
        for r in records if records is not None else self.records():
            out.setdefault(r.split, {c: 0 for c in self.classes})
            out[r.split][r.class_name] = out[r.split].get(r.class_name, 0) + 1
        return {s: out[s] for s in SPLITS if s in out}

    def check(self, verify_images: bool = True) -> CheckReport:
        """Compare this copy with its manifest; collect every problem instead of raising."""
        report = CheckReport(self.name, self.root, classes=self.classes)
        try:
            recs = self._scan(Issues(report))
        except DataError as exc:  # a problem that prevents any further look
            report.problems.append(str(exc))
            return report
        report.problems.extend(self._record_problems(recs))
        if verify_images:
            from ..paths import relpath_problem

            for r in track(recs, f"verifying {self.name} images"):
                if r.pixels is not None or relpath_problem(r.relpath) is not None:
                    continue  # an unsafe path is reported above and never opened
                try:
                    verify_image(r.path)
                except ImageReadError as exc:
                    if r.path is not None and not r.path.exists():
                        report.missing.append(str(r.path))
                    else:
                        report.corrupt.append((str(r.path), str(exc).split(": ", 1)[-1]))
        report.counts = self.counts(recs)
        report.expected = self.expected_counts()
        return report

    def describe(self) -> dict[str, Any]:
        """Name, root and options, for run records."""
        return {"source": self.name, "root": str(self.root), "options": dict(self.opts)}

