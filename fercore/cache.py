"""The toolkit's cache folder: ``$FER_CACHE``, or ``~/.cache/fer-toolkit``.

Everything derived and re-creatable lives under it: the generated sample set, PSFs, landmarks,
on-demand degraded copies.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The toolkit's cache folder (``$FER_CACHE`` or ``~/.cache/fer-toolkit``)."""
    return Path(os.environ.get("FER_CACHE", Path.home() / ".cache" / "fer-toolkit")).expanduser()
