"""White balance as Lightroom's Temp (Kelvin) and Tint sliders, via the Planckian locus.

The input is taken as a neutral rendering of a daylight scene (reference white 6500 K, tint 0).
Setting Temp to ``K`` tells the converter the light was ``K``; it divides each channel by
that light's colour and multiplies by the reference's, exactly as Lightroom does on a raw file:

* ``K < 6500``: the image turns cooler (blue), ``K > 6500``: warmer (yellow-orange);
* ``tint > 0``: magenta, ``tint < 0``: green (Adobe's scale, 1 unit = 1/3000 of a CIE 1960
  (u, v) step off the locus);
* the per-channel gains are scaled so a grey keeps its luminance (white balance alone does
  not change brightness; the Exposure slider does).

``(6500 K, tint 0)`` gives gains of exactly 1, the identity.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fercore.checks import per_sample
from fercore.errors import ConfigError

from .colour import KELVIN_MAX, KELVIN_MIN, REC709, white_rgb

#: The colour temperature the input is assumed to be balanced for.
REFERENCE_KELVIN = 6500.0
#: Lightroom's Tint slider range.
TINT_LIMIT = 150.0


def white_balance_gains(kelvin: Tensor, tint: Tensor, reference_kelvin: float = REFERENCE_KELVIN) -> Tensor:
    """Per-channel linear gains ``(B, 3)`` for Lightroom Temp ``kelvin`` and ``tint`` (both ``(B,)``).

    ``gains = white(reference, 0) / white(kelvin, tint)``, normalised to unit luminance.
    Differentiable in ``kelvin`` and ``tint``. The ``(B, 3)`` numbers are computed on the CPU in
    float64 (cheap, identical on every device, and fine where a GPU lacks float64) and returned
    in ``kelvin``'s dtype and device.
    """
    k = kelvin.to("cpu", torch.float64)
    ref_t = torch.full_like(k, float(reference_kelvin))
    ref = white_rgb(ref_t, torch.zeros_like(ref_t))
    gains = ref / white_rgb(k, tint.to("cpu", torch.float64))
    lum = gains @ torch.tensor(REC709, dtype=torch.float64)
    return (gains / lum[:, None]).to(device=kelvin.device, dtype=kelvin.dtype)


def white_balance(linear: Tensor, kelvin: float | Tensor, tint: float | Tensor = 0.0,
                  reference_kelvin: float = REFERENCE_KELVIN) -> Tensor:
    """Apply Lightroom-style white balance to linear light.

    Args:
        linear: ``(B, 3, H, W)`` linear-light RGB, >= 0.
        kelvin: Temp slider in Kelvin, a number or ``(B,)`` tensor in [1667, 25000] (the range
            of the Planckian-locus fit); 6500 is neutral.
        tint: Tint slider, a number or ``(B,)`` tensor in [-150, 150]; 0 is neutral.
        reference_kelvin: the temperature the input is balanced for (default 6500).

    Returns:
        ``(B, 3, H, W)`` linear light (may exceed 1 where a gain is above 1; not clipped).
    """
    b = linear.shape[0]
    kelvin = per_sample(kelvin, b, "temperature_k", linear, lo=KELVIN_MIN, hi=KELVIN_MAX,
                         hint="Temp is in Kelvin: 6500 is neutral, lower is cooler, higher is warmer")
    tint = per_sample(tint, b, "tint", linear, lo=-TINT_LIMIT, hi=TINT_LIMIT,
                       hint="Lightroom Tint units: 0 is neutral, + is magenta, - is green")
    if not KELVIN_MIN <= reference_kelvin <= KELVIN_MAX:  # also rejects NaN
        raise ConfigError(f"got {reference_kelvin!r}; must be in [{KELVIN_MIN:g}, {KELVIN_MAX:g}] K "
                          "(6500 for sRGB/D65 images)", flag="reference_kelvin")
    gains = white_balance_gains(kelvin, tint, reference_kelvin)
    return linear * gains[:, :, None, None]

