"""The low-light simulator as a kornia augmentation (:class:`LowLightAugment`)."""

from __future__ import annotations

from typing import Any

import torch

from ..augment import DegradationAugment
from .degradation import LowLight, make_lowlight


class LowLightAugment(DegradationAugment):
    """Darken and re-colour a batch of sRGB images in [0, 1] like a low-light capture.

    A kornia intensity augmentation (:class:`degrade.augment.DegradationAugment`): each sample
    is degraded with probability ``p``, with its own exposure, white balance, highlights and
    shadows (and, for presets with them, sensor noise and JPEG quality) drawn from the preset's
    ranges (one set with ``same_on_batch``); noise is drawn on the images' device.

    Args:
        lowlight: a configured :class:`LowLight` or a preset name (``lldif``, ``realistic``, ...).
        p, same_on_batch, keepdim, seed, generator: see :class:`~degrade.augment.DegradationAugment`.
        **overrides: range or setting overrides for :func:`make_lowlight` when ``lowlight`` is a name.

    Example::

        aug = LowLightAugment("lldif", p=0.5, seed=0)
        x_dark = aug(x)
    """

    def __init__(self, lowlight: LowLight | str = "lldif", p: float = 0.5, same_on_batch: bool = False,
                 keepdim: bool = False, *, seed: int | None = None, generator: torch.Generator | None = None,
                 **overrides: Any):
        if isinstance(lowlight, str):
            lowlight = make_lowlight(lowlight, **overrides)
        super().__init__(lowlight, p=p, same_on_batch=same_on_batch, keepdim=keepdim, seed=seed,
                         generator=generator)
        self.flags = {"preset": lowlight.preset}

    @property
    def lowlight(self) -> LowLight:
        return self.degradation
