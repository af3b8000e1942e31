"""Optional JPEG re-compression, per image, with the real codec (OpenCV/libjpeg).

Beyond the paper. Each image is quantised to 8 bits, encoded at its own quality with
:func:`fercore.imageio.encode_image` (4:2:0 chroma, deterministic for one OpenCV build) and
decoded again. This runs on the CPU, one image at a time, and is **not differentiable**: in
the forward pass the output is the decoded JPEG; gradients pass straight through as if the
step were the identity (a straight-through estimator), so a training graph does not break.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from fercore.checks import per_sample
from fercore.imageio import decode_image, encode_image

from ..base import codes8


def to_uint8(image: Tensor) -> np.ndarray:
    """``(B, 3, H, W)`` in [0, 1] -> ``(B, H, W, 3)`` ``uint8`` (round half to even, after clipping)."""
    return codes8(image.detach()).permute(0, 2, 3, 1).cpu().numpy()


def jpeg_recompress(image: Tensor, quality: float | Tensor) -> Tensor:
    """Encode and decode each image as JPEG at its own quality.

    Args:
        image: ``(B, 3, H, W)`` sRGB in [0, 1].
        quality: JPEG quality, number or ``(B,)`` tensor, in [1, 100] (rounded to an integer).

    Returns:
        ``(B, 3, H, W)`` decoded JPEG in [0, 1] on ``image``'s device (multiples of 1/255).
    """
    quality = per_sample(quality, image.shape[0], "jpeg_quality", image, lo=1.0, hi=100.0,
                          hint="libjpeg quality, e.g. 75")
    q = torch.round(quality.detach()).to(torch.int64).cpu().tolist()
    decoded = [decode_image(encode_image(img, ".jpg", jpeg_quality=qi)) for img, qi in zip(to_uint8(image), q)]
    out = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).to(device=image.device, dtype=image.dtype) / 255.0
    if not image.requires_grad:
        return out
    return image + (out - image).detach()
