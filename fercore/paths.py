"""Relative paths that come from data files stay inside their folder.

Label files and manifests name images by relative path (a FERPlus ``Image name``, a
``labels.csv`` ``path`` column, a manifest row). Such a name is data, not trusted: a name like
``../../x.png`` or ``/home/you/.bashrc`` would make a rebuild write (or verify read) outside
the dataset. :func:`relpath_problem` says what is wrong with a name; :func:`inside` resolves a
name under a root (following symlinks) and refuses one that lands outside it.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from .errors import DataError

_DRIVE = re.compile(r"^[A-Za-z]:")


def relpath_problem(rel: str) -> str | None:
    """Why ``rel`` is not a plain relative POSIX path below its root (``None``: it is fine)."""
    if not rel:
        return "empty path"
    if "\x00" in rel:
        return "path contains a NUL byte"
    if "\\" in rel:
        return "path contains a backslash"
    if rel.startswith("/") or _DRIVE.match(rel):
        return "absolute path"
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "path has an empty, '.' or '..' component"
    return None


def inside(root: str | Path, rel: str, what: str = "path") -> Path:
    """``root / rel``, refused (:class:`DataError` naming it) unless it is a plain relative path
    that resolves (symlinks followed) to a place inside ``root``."""
    problem = relpath_problem(rel)
    root = Path(root)
    if problem is not None:
        raise DataError(f"{what} {rel!r}: {problem}; refusing to go outside the folder", root)
    base = root.resolve()
    target = (base / PurePosixPath(rel)).resolve()
    if target != base and base not in target.parents:
        raise DataError(f"{what} {rel!r} resolves to {target}, outside the folder; refusing it", root)
    return root / rel
