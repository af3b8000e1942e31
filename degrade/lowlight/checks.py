"""Input checks shared by the low-light operations.

Every check raises :class:`fercore.errors.ConfigError` whose ``flag`` names the parameter
at fault and whose message says how to fix the call. Parameters may be given as Python
numbers (one value for the whole batch), 0-d tensors, or ``(B,)`` tensors (one value per
sample); :func:`batch_param` turns each into a ``(B,)`` tensor on the images' device.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from fercore.errors import ConfigError


def check_images(images: Tensor, name: str = "images") -> None:
    """Require a floating ``(B, 3, H, W)`` tensor with values in [0, 1]."""
    if not isinstance(images, Tensor):
        raise ConfigError(f"expected a torch.Tensor of shape (B, 3, H, W), got {type(images).__name__}; "
                          "convert with torch.from_numpy(img).permute(2, 0, 1)[None] / 255", flag=name)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ConfigError(f"expected shape (B, 3, H, W), got {tuple(images.shape)}; add a batch dimension "
                          "with x[None] or move channels first with x.permute(0, 3, 1, 2)", flag=name)
    if not images.is_floating_point():
        raise ConfigError(f"expected a floating tensor in [0, 1], got {images.dtype}; use x.float() / 255",
                          flag=name)
    if images.numel() == 0:
        return
    lo, hi = torch.aminmax(images.detach())
    lo, hi = float(lo), float(hi)
    if math.isnan(lo) or math.isnan(hi) or not (lo >= 0.0 and hi <= 1.0):
        raise ConfigError(f"values must lie in [0, 1] (found min {lo:g}, max {hi:g}); divide 8-bit images "
                          "by 255 and replace NaN/inf before calling", flag=name)


def batch_param(value: float | Tensor, batch: int, name: str, like: Tensor, *,
                lo: float | None = None, hi: float | None = None, hint: str = "") -> Tensor:
    """``value`` as a finite ``(B,)`` tensor (dtype and device of ``like``) within [lo, hi].

    Raises:
        ConfigError: wrong shape, NaN/inf, or a value outside [lo, hi]; the message gives the
        first offending sample and ``hint``.
    """
    if isinstance(value, Tensor):
        t = value.to(device=like.device, dtype=like.dtype)
        if t.ndim == 0:
            t = t.expand(batch)
        elif t.shape != (batch,):
            raise ConfigError(f"expected a number or a tensor of shape ({batch},) (one value per sample), "
                              f"got shape {tuple(t.shape)}", flag=name)
    else:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"expected a number or a (B,) tensor, got {value!r}", flag=name) from None
        t = torch.full((batch,), v, device=like.device, dtype=like.dtype)
    if batch == 0:
        return t
    d = t.detach()
    bad = ~torch.isfinite(d)
    if lo is not None:
        bad |= d < lo
    if hi is not None:
        bad |= d > hi
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        rng = f"[{lo:g}, {hi:g}]" if lo is not None and hi is not None else (
            f">= {lo:g}" if lo is not None else f"<= {hi:g}" if hi is not None else "finite")
        raise ConfigError(f"got {float(d[i]):g} for sample {i}; must be finite and in {rng}"
                          + (f" ({hint})" if hint else ""), flag=name)
    return t
