"""Atomic file writes: a reader sees the old file or the complete new one, never half of one.

Write to a temporary file in the same directory, fsync, then ``os.replace`` (atomic on POSIX
and Windows). An interrupted run therefore never leaves a truncated output behind.

* Written files get the usual permissions: ``0666`` minus the process umask (``mkstemp``'s
  private ``0600`` would make a shared set unreadable to lab-mates).
* Temporary names are ``.<name (at most 64 bytes)>.<pid>.<random>.tmp``: short enough for any
  file name the file system allows, and they name the process that wrote them, so
  :func:`remove_stale_temps` can delete the leftovers of a killed process (and only those).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO


#: Longest part of the target's name kept in a temporary name (bytes of UTF-8).
TEMP_NAME_BYTES = 64
_TEMP_RE = re.compile(r"^\..*\.(\d+)\.[A-Za-z0-9_]{8}\.tmp$", re.DOTALL)
_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask (read without changing it where the OS allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def temp_prefix(name: str) -> str:
    """``.<name cut to TEMP_NAME_BYTES>.<pid>.`` -- the prefix of every temporary the toolkit makes."""
    short = name.encode("utf-8")[:TEMP_NAME_BYTES].decode("utf-8", errors="ignore")
    return f".{short}.{os.getpid()}."


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's live process
    return True


def remove_stale_temps(folder: str | Path, *, recursive: bool = True) -> list[Path]:
    """Delete the temporary files and folders (see :func:`temp_prefix`) under ``folder`` whose
    writing process is no longer running on this machine; returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")
    removed = []
    for p in sorted(found):
        m = _TEMP_RE.match(p.name)
        if m is None or _alive(int(m.group(1))):
            continue
        with contextlib.suppress(FileNotFoundError):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
    return removed


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", *, fsync: bool = True,
                encoding: str | None = None, newline: str | None = None) -> Iterator[IO]:
    """Open ``path`` for writing atomically; the file appears only if the block succeeds."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, mode, encoding=encoding if "b" not in mode else None,
                       newline=newline if "b" not in mode else None) as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb", fsync=fsync) as fh:
        fh.write(data)


def atomic_write_text(path: str | Path, text: str, *, fsync: bool = True) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (newlines written as given)."""
    with atomic_open(path, "w", fsync=fsync, encoding="utf-8", newline="") as fh:
        fh.write(text)
