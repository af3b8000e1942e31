"""The UDC simulator as a kornia augmentation (:class:`UDCAugment`)."""

from __future__ import annotations

from typing import Any

import torch

from ..augment import DegradationAugment
from ..severity import Identity
from .degradation import UDC, make_udc


class UDCAugment(DegradationAugment):
    """Degrade a batch of sRGB images in [0, 1] as seen through an under-display camera.

    A kornia intensity augmentation (:class:`degrade.augment.DegradationAugment`): each sample
    is degraded with probability ``p``, with its own transmittance, photon level and exposure
    drawn from the preset's ranges (one set with ``same_on_batch``); the sensor noise is drawn
    on the images' device. The float path is used, so gradients flow to the input (with
    ``noise="normal"``).

    Args:
        udc: a configured :class:`UDC` or a display preset name (``toled``, ``poled``, ...).
        p, same_on_batch, keepdim, seed, generator: see :class:`~degrade.augment.DegradationAugment`.
        **settings: :class:`~degrade.udc.degradation.UDCSettings` fields when ``udc`` is a name.

    Example::

        aug = UDCAugment("toled", p=0.5, seed=0)
        x_udc = aug(x)                                  # (B, 3, H, W) in [0, 1], CPU or CUDA
        pipeline = kornia.augmentation.AugmentationSequential(K.RandomHorizontalFlip(), aug)
    """

    def __init__(self, udc: UDC | str = "toled", p: float = 0.5, same_on_batch: bool = False,
                 keepdim: bool = False, *, seed: int | None = None, generator: torch.Generator | None = None,
                 **settings: Any):
        if isinstance(udc, str):
            udc = make_udc(udc, **settings)
        super().__init__(udc, p=p, same_on_batch=same_on_batch, keepdim=keepdim, seed=seed, generator=generator)
        # severity 0 is the Identity degradation, which has no display, only the preset's name
        self.flags = {"display": udc.preset if isinstance(udc, Identity) else udc.display.name}

    @property
    def udc(self) -> UDC:
        return self.degradation
