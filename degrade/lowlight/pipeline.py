"""The whole low-light edit as one pure, batched function, in Lightroom's Basic-panel order.

::

    sRGB --(kornia)--> linear --> white balance --> exposure --> [sensor noise] --> clip
         --(kornia)--> sRGB --> [contrast] --> highlights --> shadows --> [whites/blacks]
         --> clip --> [JPEG]

Colour and exposure act in linear light (where a stop is a factor of two); the tone controls
act on encoded values (Lightroom's tone sliders work on a perceptual scale). Noise sits after
the darkening because a sensor adds it to the light it actually received, and before the tone
controls because a camera's (or Lightroom's) tone curve reshapes it. Bracketed steps are
skipped when their parameters are ``None`` (the paper-faithful ``lldif`` preset skips them all).
"""

from __future__ import annotations

import torch
from torch import Tensor

from fercore.checks import check_images
from fercore.errors import ConfigError

from .colour import linear_to_srgb, srgb_to_linear
from .exposure import exposure
from .jpeg import jpeg_recompress
from .levels import DEFAULT_BLACKS_REACH, DEFAULT_CONTRAST_STOPS, DEFAULT_WHITES_REACH, contrast, whites_blacks
from .noise import sensor_noise
from .tone import DEFAULT_PIVOT, DEFAULT_STOPS, highlights_shadows
from .white_balance import REFERENCE_KELVIN, white_balance

Param = float | Tensor


def low_light(images: Tensor, *, exposure_ev: Param = 0.0, temperature_k: Param = REFERENCE_KELVIN,
              tint: Param = 0.0, highlights_amount: Param = 0.0, shadows_amount: Param = 0.0,
              contrast_amount: Param | None = None, whites: Param | None = None, blacks: Param | None = None,
              shot_noise: Param | None = None, read_noise: Param | None = None, camera_gain: Param = 1.0,
              jpeg_quality: Param | None = None, generators: list[torch.Generator] | None = None,
              pivot: float = DEFAULT_PIVOT, highlights_stops: float = DEFAULT_STOPS,
              shadows_stops: float = DEFAULT_STOPS, contrast_stops: float = DEFAULT_CONTRAST_STOPS,
              whites_reach: float = DEFAULT_WHITES_REACH, blacks_reach: float = DEFAULT_BLACKS_REACH,
              reference_kelvin: float = REFERENCE_KELVIN, colour_stage: bool = True) -> Tensor:
    """Darken and re-colour a batch like a Lightroom low-light edit.

    Args:
        images: ``(B, 3, H, W)`` sRGB in [0, 1], any float dtype, any device.
        exposure_ev: Exposure in stops, [-10, 10]. temperature_k: Temp in Kelvin, [1667, 25000].
        tint: Tint, [-150, 150]. highlights_amount / shadows_amount / contrast_amount / whites /
            blacks: Lightroom slider / 100, in [-1, 1].
        shot_noise, read_noise, camera_gain: sensor noise (see :mod:`.noise`); noise is added
            when ``shot_noise`` is given, and then ``read_noise`` and ``generators`` are required.
        jpeg_quality: re-compress at this quality (1..100) when given (not differentiable).
        generators: one CPU ``torch.Generator`` per sample (noise only).
        pivot, *_stops, *_reach, reference_kelvin: settings of the individual operations.
        colour_stage: ``False`` skips everything up to the sRGB re-encoding (the input is then
            taken as already white-balanced and exposed; the 8-bit look-up path uses this).

    Every parameter is a number (whole batch) or a ``(B,)`` tensor (per sample).

    Returns:
        ``(B, 3, H, W)`` sRGB in [0, 1], same dtype and device; differentiable in the image and
        every continuous parameter except through the JPEG step (straight-through there).
    """
    check_images(images)
    if colour_stage:
        lin = srgb_to_linear(images)
        lin = white_balance(lin, temperature_k, tint, reference_kelvin)
        lin = exposure(lin, exposure_ev)
        if shot_noise is not None:
            if read_noise is None or generators is None:
                raise ConfigError("sensor noise needs read_noise and one generator per sample as well as "
                                  "shot_noise", flag="read_noise" if read_noise is None else "generators")
            lin = sensor_noise(lin, shot_noise, read_noise, camera_gain, generators)
        x = linear_to_srgb(lin.clamp(0.0, 1.0))
    else:
        x = images
    if contrast_amount is not None:
        x = contrast(x, contrast_amount, stops=contrast_stops, pivot=pivot)
    x = highlights_shadows(x, highlights_amount, shadows_amount, highlights_stops=highlights_stops,
                           shadows_stops=shadows_stops, pivot=pivot)
    if whites is not None or blacks is not None:
        x = whites_blacks(x, 0.0 if whites is None else whites, 0.0 if blacks is None else blacks,
                          whites_reach=whites_reach, blacks_reach=blacks_reach)
    x = x.clamp(0.0, 1.0)
    if jpeg_quality is not None:
        x = jpeg_recompress(x, jpeg_quality)
    return x
