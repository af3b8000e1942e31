"""Severity levels shared by both simulators: 0 (the identity) to 5 (the harshest).

Each simulator defines five physically meaningful steps as data (``degrade/udc/severity.py``,
``degrade/lowlight/severity.py``), with its calibrated paper-like preset at :data:`PRESET_LEVEL`.
A level changes the preset's *ranges*, never the per-image draws: an image's uniforms and
noise come from (seed, kind, image id) alone, so every level of one image shares them
(common random numbers) and each level is the same capture made harsher -- which is what
makes the PSNR to the clean image fall with the level for every image, not only on average.

Severity 0 is :class:`Identity`: the clean image, byte for byte.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from fercore.errors import ConfigError

from .base import Degradation

#: The levels ``--severity`` accepts (0 = the identity).
LEVELS = (0, 1, 2, 3, 4, 5)
#: The level at which each simulator's calibrated paper-like preset sits.
PRESET_LEVEL = 3
FLAG = "--severity"


def check_severity(severity: Any, flag: str = FLAG) -> int:
    """``severity`` as an int in :data:`LEVELS`; a clear error naming ``flag`` otherwise."""
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer, str)):
        raise ConfigError(f"severity must be an integer 0..5, got {severity!r}", flag=flag)
    try:
        k = int(severity)
    except ValueError:
        raise ConfigError(f"severity must be an integer 0..5, got {severity!r}", flag=flag) from None
    if k not in LEVELS:
        raise ConfigError(f"severity must be 0..5 (0: the clean image, {PRESET_LEVEL}: the calibrated preset), "
                          f"got {k}", flag=flag)
    return k


class Identity(Degradation):
    """Severity 0 of a simulator: returns the images unchanged (no per-image parameters)."""

    def __init__(self, kind: str, preset: str):
        self.kind = kind
        self.preset = preset
        self.severity = 0

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "preset": self.preset, "severity": 0, "identity": True}

    def param_names(self) -> list[str]:
        return []

    def noise_kind(self) -> str:
        return "none"  # no noise field to draw: augmentations skip it

    def sample_params(self, rng: np.random.Generator) -> dict[str, float]:
        return {}

    def apply(self, images: Tensor, params: dict[str, Tensor], generators: list[torch.Generator]) -> Tensor:
        return images

    def apply_uint8(self, images: Tensor, params: dict[str, Tensor], generators: list[torch.Generator]) -> Tensor:
        return images

    def __repr__(self) -> str:
        return f"Identity(kind={self.kind!r}, preset={self.preset!r})"


def label(preset: str, severity: int | None) -> str:
    """A preset's name with its level, for folder names: ``toled`` -> ``toled-s4``."""
    return preset if severity is None else f"{preset}-s{severity}"
