"""Batch helpers shared by the prior-diffusion methods (LRDif, LLDif).

* :func:`prepare_images` -- ``batch["image"]`` checked and resized to the working size.
* :func:`batch_ids` -- the record ids of a batch (cache and noise keys), when present.
* :func:`inference_noise` -- the Gaussian draws of label-free inference, keyed per item so an
  image gets the same prior in any batch, at any batch size.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from fercore.errors import ConfigError
from fercore.seeding import torch_generator

from .base import StepContext
from .clip_encoders import image_fingerprint


def prepare_images(batch: dict[str, Any], size: int) -> Tensor:
    """``batch["image"]`` ``(B, 3, H, W)`` RGB in [0, 1] as float, resized to ``size x size``
    (bilinear, antialiased) when it has another size."""
    img = batch["image"]
    if img.ndim != 4 or img.shape[1] != 3:
        raise ConfigError(f"batch['image'] must be (B, 3, H, W) RGB in [0, 1], got {tuple(img.shape)}",
                          flag="image")
    if img.shape[-2:] != (size, size):
        img = F.interpolate(img.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return img.float()


def batch_ids(batch: dict[str, Any], n: int) -> list[str] | None:
    """The batch's record ids as strings, or ``None`` when absent or of the wrong length."""
    ids = batch.get("id")
    return list(map(str, ids)) if ids is not None and len(ids) == n else None


def inference_noise(batch: dict[str, Any], img: Tensor, draws: int, dim: int, seed: int, tag: str,
                    ctx: StepContext | None) -> Tensor:
    """``(draws, B, dim)`` standard normal noise for label-free inference.

    With a generator in ``ctx``: drawn from it. Without: per item, from a generator seeded by
    ``(seed, tag, record id)`` -- ``ctx.item_seed`` instead of ``seed`` when given, the image's
    fingerprint when the batch has no ids -- so an image gets the same noise alone or in a
    batch, at any batch size.
    """
    b = img.shape[0]
    if ctx is not None and ctx.generator is not None:
        out = ctx.randn(draws, b, dim)
    else:
        if ctx is not None and ctx.item_seed is not None:
            seed = ctx.item_seed
        keys = batch_ids(batch, b) or [image_fingerprint(im).hex() for im in img]
        out = torch.stack([torch.randn(draws, dim, generator=torch_generator(seed, tag, k)) for k in keys], dim=1)
    return out.to(img.device)
