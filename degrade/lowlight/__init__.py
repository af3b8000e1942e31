"""Low-light degradation: Lightroom-style exposure, white balance, highlights and shadows.

Pure, batched, differentiable operations on ``(B, 3, H, W)`` tensors with per-sample
``(B,)`` parameters (kornia style), the ``lldif`` and ``realistic`` presets as data, and the
:class:`LowLight` degradation the shared rebuilding runner drives. See ``docs/lowlight.md``.
"""

from .colour import illuminant_xy, linear_to_srgb, luma, planckian_xy, srgb_to_linear, white_rgb
from .degradation import LowLight, make_lowlight
from .exposure import exposure
from .jpeg import jpeg_recompress
from .levels import contrast, whites_blacks
from .noise import noise_variance, sensor_noise
from .pipeline import low_light
from .presets import PARAMS, PRESETS, SETTINGS, Range
from .severity import LOWLIGHT_LEVELS, lowlight_severity
from .tone import highlights, highlights_mask, highlights_shadows, shadows, shadows_mask
from .white_balance import white_balance, white_balance_gains

__all__ = [
    "LowLight", "make_lowlight", "low_light", "exposure", "white_balance", "white_balance_gains",
    "highlights", "shadows", "highlights_shadows", "highlights_mask", "shadows_mask", "contrast", "whites_blacks",
    "sensor_noise", "noise_variance", "jpeg_recompress", "srgb_to_linear", "linear_to_srgb", "luma",
    "planckian_xy", "illuminant_xy", "white_rgb", "PRESETS", "PARAMS", "SETTINGS", "Range", "LowLightAugment",
    "lowlight_severity", "LOWLIGHT_LEVELS",
]


def __getattr__(name: str):
    if name == "LowLightAugment":  # imported on use: it pulls in kornia.augmentation
        from .augment import LowLightAugment

        return LowLightAugment
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
