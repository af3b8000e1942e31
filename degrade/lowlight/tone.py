"""Highlights and Shadows: luminance-masked tone curves, each acting only on its own range.

Both work on sRGB-*encoded* values (a perceptual scale, as Lightroom's tone controls do) and
on Rec. 709 luma ``L``. A pivot ``p`` (mid-grey, default 0.5 = 128/255) splits the tones:

* **Shadows** (``s`` in [-1, 1] = Lightroom's Shadows slider / 100) acts on ``L < p``::

      m = smoothstep((p - L) / p)            # 1 at black, 0 at and above the pivot
      rgb' = rgb * 2 ** (k * s * m)           # a local exposure change of up to k stops

  Black stays black; ``s < 0`` crushes dark tones, ``s > 0`` opens them up.

* **Highlights** (``h`` in [-1, 1] = Lightroom's Highlights slider / 100) acts on ``L > p``
  as the mirror image, on the distance to white::

      m = smoothstep((L - p) / (1 - p))      # 0 at and below the pivot, 1 at white
      1 - rgb' = (1 - rgb) * 2 ** (-k * h * m)

  White stays white; ``h < 0`` pulls bright tones down (Lightroom's highlight recovery),
  ``h > 0`` brightens them.

:func:`highlights_shadows` applies both from one luma computation (the masks do not overlap,
and neither curve moves a pixel across the pivot, so this equals ``shadows(highlights(x))``
up to float rounding); the pipeline uses it to save passes over the batch.

Because every channel is scaled by the same factor (towards black or towards white), the
output luma is exactly the curve applied to ``L`` and hue is kept. With ``k <= 1.6`` stops
the luma curve is monotonic for every slider value (``L * dm/dL`` is at most 0.89 in size),
so neither control inverts tones. Pixels on the other side of the pivot are multiplied by
exactly ``2 ** 0 = 1``: untouched. Channels pushed outside [0, 1] (saturated colours) are
clipped by the caller.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fercore.checks import per_sample
from fercore.errors import ConfigError

from .colour import luma

#: Stops of local exposure at a full slider (±100) -- the default strength of both controls.
DEFAULT_STOPS = 1.5
#: Largest strength that keeps the luma curve monotonic for every slider value.
MAX_STOPS = 1.6
#: Mid-grey pivot between shadows and highlights, in encoded luma.
DEFAULT_PIVOT = 0.5


def _smoothstep(t: Tensor) -> Tensor:
    t = t.clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _check_settings(stops: float, pivot: float, what: str) -> None:
    if not 0.0 < stops <= MAX_STOPS:  # also rejects NaN
        raise ConfigError(f"got {stops!r}; must be in (0, {MAX_STOPS}] stops so the tone curve stays "
                          "monotonic", flag=f"{what}_stops")
    if not 0.05 <= pivot <= 0.95:
        raise ConfigError(f"got {pivot!r}; the mid-grey pivot must be in [0.05, 0.95] (encoded luma; "
                          "0.5 = 128/255)", flag="pivot")


def shadows_mask(image: Tensor, pivot: float = DEFAULT_PIVOT) -> Tensor:
    """Shadow weight ``(B, 1, H, W)`` in [0, 1]: 1 at black, 0 for luma >= ``pivot``."""
    return _smoothstep((pivot - luma(image)) / pivot)


def highlights_mask(image: Tensor, pivot: float = DEFAULT_PIVOT) -> Tensor:
    """Highlight weight ``(B, 1, H, W)`` in [0, 1]: 0 for luma <= ``pivot``, 1 at white."""
    return _smoothstep((luma(image) - pivot) / (1.0 - pivot))


def shadows(image: Tensor, amount: float | Tensor, *, stops: float = DEFAULT_STOPS,
            pivot: float = DEFAULT_PIVOT) -> Tensor:
    """Lightroom's Shadows slider on sRGB-encoded images (see module docstring).

    Args:
        image: ``(B, 3, H, W)`` sRGB-encoded, in [0, 1].
        amount: slider / 100, a number or ``(B,)`` tensor in [-1, 1]; negative darkens shadows.
        stops: local exposure change at ``amount = ±1`` (0, 1.6]; default 1.5.
        pivot: encoded luma above which nothing changes; default 0.5.

    Returns:
        ``(B, 3, H, W)``, unclipped (a saturated channel may exceed 1 when ``amount > 0``).
    """
    _check_settings(stops, pivot, "shadows")
    amount = per_sample(amount, image.shape[0], "shadows", image, lo=-1.0, hi=1.0,
                         hint="Lightroom's Shadows slider divided by 100")
    m = shadows_mask(image, pivot)
    return image * torch.exp2(stops * amount.view(-1, 1, 1, 1) * m)


def highlights(image: Tensor, amount: float | Tensor, *, stops: float = DEFAULT_STOPS,
               pivot: float = DEFAULT_PIVOT) -> Tensor:
    """Lightroom's Highlights slider on sRGB-encoded images (see module docstring).

    Args:
        image: ``(B, 3, H, W)`` sRGB-encoded, in [0, 1].
        amount: slider / 100, a number or ``(B,)`` tensor in [-1, 1]; negative darkens highlights.
        stops: change of the distance to white at ``amount = ±1`` (0, 1.6]; default 1.5.
        pivot: encoded luma below which nothing changes; default 0.5.

    Returns:
        ``(B, 3, H, W)``, unclipped (a saturated channel may fall below 0 when ``amount < 0``).
    """
    _check_settings(stops, pivot, "highlights")
    amount = per_sample(amount, image.shape[0], "highlights", image, lo=-1.0, hi=1.0,
                         hint="Lightroom's Highlights slider divided by 100")
    m = highlights_mask(image, pivot)
    return 1.0 - (1.0 - image) * torch.exp2(-stops * amount.view(-1, 1, 1, 1) * m)


def highlights_shadows(image: Tensor, highlights_amount: float | Tensor, shadows_amount: float | Tensor, *,
                       highlights_stops: float = DEFAULT_STOPS, shadows_stops: float = DEFAULT_STOPS,
                       pivot: float = DEFAULT_PIVOT) -> Tensor:
    """Both controls in one pass: ``rgb * fs + (1 - rgb) * (1 - fh)``, equal to
    ``shadows(highlights(image, h), s)`` (see module docstring).

    Args:
        image: ``(B, 3, H, W)`` sRGB-encoded, in [0, 1].
        highlights_amount, shadows_amount: slider / 100, numbers or ``(B,)`` tensors in [-1, 1].
        highlights_stops, shadows_stops: strengths in (0, 1.6]; pivot: mid-grey luma.

    Returns:
        ``(B, 3, H, W)``, unclipped.
    """
    _check_settings(highlights_stops, pivot, "highlights")
    _check_settings(shadows_stops, pivot, "shadows")
    b = image.shape[0]
    h = per_sample(highlights_amount, b, "highlights", image, lo=-1.0, hi=1.0,
                    hint="Lightroom's Highlights slider divided by 100").view(-1, 1, 1, 1)
    s = per_sample(shadows_amount, b, "shadows", image, lo=-1.0, hi=1.0,
                    hint="Lightroom's Shadows slider divided by 100").view(-1, 1, 1, 1)
    lum = luma(image)
    fs = torch.exp2(shadows_stops * s * _smoothstep((pivot - lum) / pivot))
    fh = torch.exp2(-highlights_stops * h * _smoothstep((lum - pivot) / (1.0 - pivot)))
    return torch.addcmul(image * fs, 1.0 - image, 1.0 - fh)
