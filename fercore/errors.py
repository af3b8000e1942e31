"""One error type for the whole toolkit.

Every message names the file or flag at fault and says how to fix it. The CLIs print a
:class:`FerError` as one clean line (no traceback) and exit with status 2.
"""

from __future__ import annotations

from pathlib import Path


class FerError(Exception):
    """Base class: a problem the user can fix (bad input, bad flag, missing data)."""


class ConfigError(FerError, ValueError):
    """An impossible or unknown setting. ``flag`` names the option (e.g. ``--seed``)."""

    def __init__(self, message: str, flag: str | None = None):
        self.flag = flag
        super().__init__(f"{flag}: {message}" if flag else message)


class DataError(FerError):
    """A dataset file or layout that is missing, malformed or inconsistent."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        super().__init__(f"{path}: {message}" if path is not None else message)


class ImageReadError(DataError):
    """An image that is missing, unreadable or corrupt."""


class TrainingError(ConfigError):
    """A training job that cannot go on (a non-finite loss): names the epoch and the flag to change."""
