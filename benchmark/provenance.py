"""What produced a result: package versions, the git commit, the plugins (for ``run.json``)."""

from __future__ import annotations

import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

#: Distributions whose version can change a result (``None``: not installed).
RESULT_PACKAGES = ("torch", "torchvision", "numpy", "kornia", "opencv-python", "opencv-python-headless",
                   "open_clip_torch", "scikit-image", "scikit-learn", "scipy", "pillow", "pandas", "timm",
                   "dlib-bin", "fer-degraded-toolkit")


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str | None]:
    """Installed version of every package in :data:`RESULT_PACKAGES`."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in RESULT_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _git(args: list[str], cwd: Path, timeout: float) -> str | None:
    try:
        res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                             check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


@lru_cache(maxsize=1)
def git_info(timeout: float = 5.0) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the repository holding the toolkit's code, or ``None`` when it
    is not in one (an installed wheel) or git is missing. ``dirty``: uncommitted changes to
    tracked files."""
    import fercore

    here = Path(fercore.__file__).resolve().parent.parent
    commit = _git(["rev-parse", "HEAD"], here, timeout)
    if not commit:
        return None
    status = _git(["status", "--porcelain", "--untracked-files=no"], here, timeout)
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def run_versions() -> dict[str, Any]:
    """Toolkit, Python and result-relevant package versions."""
    import torch

    from fercore import __version__

    return {"toolkit": __version__, "torch": torch.__version__, "python": sys.version.split()[0],
            "packages": package_versions()}


def provenance() -> dict[str, Any]:
    """Everything ``run.json`` records about what produced it (besides the config)."""
    from fercore.plugins import loaded_plugins

    return {"versions": run_versions(), "git": git_info(), "plugins": loaded_plugins()}
