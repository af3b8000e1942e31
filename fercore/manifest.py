"""Manifest CSVs (one row per item, with the sha256 of each output) and a resume journal.

* :func:`write_manifest` writes rows sorted by ``id`` with a fixed column order and a
  round-trip float format, atomically: the same rows always give the same bytes.
* :class:`Journal` is an append-only JSON-lines log of finished items. A run that is killed
  mid-way leaves at most one partial last line, which :meth:`Journal.load` ignores; the next
  run resumes from the complete entries.
* :func:`verify_hashes` re-hashes the files a manifest names (``path`` and ``sha256``
  columns) so two labs can confirm they hold the same data.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text
from .errors import DataError
from .hashing import sha256_file
from .paths import inside


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_manifest(path: str | Path, rows: Iterable[dict[str, Any]],
                   columns: Sequence[str] | None = None, *, sort_key: str | None = "id") -> None:
    """Write ``rows`` to a CSV at ``path`` atomically and deterministically.

    ``columns`` fixes the order; by default the keys of the first row, then any new keys in
    order of first appearance. Rows are sorted by ``sort_key`` (``None`` keeps their order).
    """
    rows = list(rows)
    if sort_key is not None:
        rows.sort(key=lambda r: str(r[sort_key]))
    if columns is None:
        seen: dict[str, None] = {}
        for r in rows:
            for k in r:
                seen.setdefault(k, None)
        columns = list(seen)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_fmt(r.get(c)) for c in columns])
    atomic_write_text(path, buf.getvalue())


def read_manifest(path: str | Path, required: Sequence[str] = ()) -> list[dict[str, str]]:
    """Read a manifest CSV written by :func:`write_manifest` (values as strings)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("manifest not found; was the output written by this toolkit?", path)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"manifest lacks column(s) {', '.join(missing)}", path)
            return list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"manifest is not a UTF-8 CSV ({exc.__class__.__name__}: {exc})", path) from None


class Journal:
    """Append-only JSON-lines record of finished items, used to resume interrupted runs."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def load(self) -> dict[str, dict[str, Any]]:
        """Entries by ``id``; a torn last line (from a kill) is ignored, later entries win."""
        entries: dict[str, dict[str, Any]] = {}
        if not self.path.exists():
            return entries
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break  # torn write from an interrupted run
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(entry, dict) and "id" in entry:
                    entries[str(entry["id"])] = entry
        return entries

    def append(self, entries: Iterable[dict[str, Any]]) -> None:
        """Append entries and flush them to disk (one ``write`` per call)."""
        text = "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries)
        if not text:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    def _repair_tail(self) -> None:
        """Drop a torn last line so new entries start on a line of their own."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "rb+") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) == b"\n":
                return
            fh.seek(0)
            cut = fh.read().rfind(b"\n") + 1
            fh.truncate(cut)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class HashMismatch:
    """One way a set on disk differs from its records."""

    path: str
    problem: str  # "missing" | "changed" | "outside" | "extra" | "rows" | "label" | "incomplete" | ...
    expected: str = ""
    actual: str = ""
    detail: str = ""


def verify_hashes(root: str | Path, rows: Iterable[dict[str, str]], *,
                  path_key: str = "path", hash_key: str = "sha256",
                  progress=None) -> list[HashMismatch]:
    """Re-hash every file a manifest names; returns the mismatches (empty list = identical)."""
    root = Path(root)
    bad: list[HashMismatch] = []
    for row in rows:
        rel, expected = row[path_key], row[hash_key]
        try:
            f = inside(root, rel, "manifest path")  # never read outside the set
        except DataError as exc:
            bad.append(HashMismatch(rel, "outside", expected, detail=str(exc).split(": ", 1)[-1]))
            if progress is not None:
                progress()
            continue
        if not f.is_file():
            bad.append(HashMismatch(rel, "missing", expected))
        else:
            actual = sha256_file(f)
            if actual != expected:
                bad.append(HashMismatch(rel, "changed", expected, actual))
        if progress is not None:
            progress()
    return bad
