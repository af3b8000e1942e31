"""Optional extras: Contrast, Whites and Blacks (off in both presets unless overridden).

All act per channel on sRGB-encoded values, like Lightroom's tone curve:

* **Contrast** (``c`` in [-1, 1] = slider / 100): a power S-curve about the pivot ``p``
  with slope ``g = 2 ** (k * c)`` there; black, white and the pivot stay fixed::

      x < p:  p * (x / p) ** g        x >= p:  1 - (1 - p) * ((1 - x) / (1 - p)) ** g

* **Whites** / **Blacks** (``w``, ``b`` in [-1, 1]): levels that move the white point to
  ``W = 1 - 0.25 w`` and the black point to ``B = -0.1 b``, ``x' = (x - B) / (W - B)``.
  ``w > 0`` clips the top quarter at most (brighter), ``w < 0`` dims white to 0.8;
  ``b < 0`` crushes everything below 0.1 to black, ``b > 0`` lifts black to 0.09.
  The reaches (0.25, 0.1) are settings.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fercore.checks import per_sample
from fercore.errors import ConfigError

from .tone import DEFAULT_PIVOT

#: Slope change at the pivot, in stops, for a full Contrast slider.
DEFAULT_CONTRAST_STOPS = 1.0
#: How far Whites = ±100 moves the white point, and Blacks = ±100 the black point.
DEFAULT_WHITES_REACH = 0.25
DEFAULT_BLACKS_REACH = 0.1

_EPS = 1e-6


def contrast(image: Tensor, amount: float | Tensor, *, stops: float = DEFAULT_CONTRAST_STOPS,
             pivot: float = DEFAULT_PIVOT) -> Tensor:
    """Lightroom's Contrast slider: ``(B, 3, H, W)`` encoded in [0, 1] -> same, in [0, 1].

    ``amount`` is slider / 100 (number or ``(B,)``, in [-1, 1]); ``stops`` in (0, 3].
    """
    if not 0.0 < stops <= 3.0:
        raise ConfigError(f"got {stops!r}; must be in (0, 3]", flag="contrast_stops")
    amount = per_sample(amount, image.shape[0], "contrast", image, lo=-1.0, hi=1.0,
                         hint="Lightroom's Contrast slider divided by 100")
    g = torch.exp2(stops * amount).view(-1, 1, 1, 1)
    x = image.clamp(0.0, 1.0)
    low = pivot * ((x / pivot).clamp_min(_EPS)) ** g
    high = 1.0 - (1.0 - pivot) * (((1.0 - x) / (1.0 - pivot)).clamp_min(_EPS)) ** g
    return torch.where(x < pivot, low, high)


def whites_blacks(image: Tensor, whites: float | Tensor = 0.0, blacks: float | Tensor = 0.0, *,
                  whites_reach: float = DEFAULT_WHITES_REACH,
                  blacks_reach: float = DEFAULT_BLACKS_REACH) -> Tensor:
    """Lightroom's Whites and Blacks sliders as levels (see module docstring).

    Args:
        image: ``(B, 3, H, W)`` sRGB-encoded.
        whites, blacks: slider / 100, numbers or ``(B,)`` tensors in [-1, 1].
        whites_reach: white-point shift at ±1, in (0, 0.5]; blacks_reach: black-point shift, (0, 0.4].

    Returns:
        ``(B, 3, H, W)``, unclipped.
    """
    if not 0.0 < whites_reach <= 0.5:
        raise ConfigError(f"got {whites_reach!r}; must be in (0, 0.5]", flag="whites_reach")
    if not 0.0 < blacks_reach <= 0.4:
        raise ConfigError(f"got {blacks_reach!r}; must be in (0, 0.4]", flag="blacks_reach")
    b = image.shape[0]
    whites = per_sample(whites, b, "whites", image, lo=-1.0, hi=1.0, hint="Lightroom's Whites slider / 100")
    blacks = per_sample(blacks, b, "blacks", image, lo=-1.0, hi=1.0, hint="Lightroom's Blacks slider / 100")
    white = (1.0 - whites_reach * whites).view(-1, 1, 1, 1)
    black = (-blacks_reach * blacks).view(-1, 1, 1, 1)
    return (image - black) / (white - black)
