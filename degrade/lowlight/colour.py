"""Colour-space helpers: sRGB transfer curve, luma, and white points on the Planckian locus.

* :func:`srgb_to_linear` / :func:`linear_to_srgb` are kornia's IEC 61966-2-1 curves
  (``kornia.color.rgb_to_linear_rgb`` / ``linear_rgb_to_rgb``).
* :func:`luma` is Rec. 709 luma on *encoded* values (Y' = 0.2126 R' + 0.7152 G' + 0.0722 B'),
  the tonal coordinate the highlight/shadow masks use.
* :func:`planckian_xy` is the CIE 1931 chromaticity of a black body (Kim et al. 2002 cubic
  spline, valid 1667-25000 K); :func:`illuminant_xy` moves it off the locus by a Lightroom
  tint along the CIE 1960 (u, v) normal; :func:`white_rgb` gives its linear sRGB colour.
"""

from __future__ import annotations

import kornia
import torch
from torch import Tensor

#: Rec. 709 / sRGB luminance weights (linear light) -- also used as luma weights on encoded values.
REC709 = (0.2126, 0.7152, 0.0722)

#: Valid range of the Kim et al. (2002) Planckian-locus approximation, in Kelvin.
KELVIN_MIN, KELVIN_MAX = 1667.0, 25000.0

#: Adobe's tint scale (DNG SDK ``kTintScale``): one tint unit = 1/3000 of a (u, v) distance.
TINT_SCALE = 3000.0


def srgb_to_linear(image: Tensor) -> Tensor:
    """sRGB-encoded ``(*, 3, H, W)`` in [0, 1] -> linear light in [0, 1] (kornia)."""
    return kornia.color.rgb_to_linear_rgb(image)


def linear_to_srgb(image: Tensor) -> Tensor:
    """Linear-light ``(*, 3, H, W)`` in [0, 1] -> sRGB-encoded in [0, 1] (kornia)."""
    return kornia.color.linear_rgb_to_rgb(image)


def luma(image: Tensor) -> Tensor:
    """Rec. 709 weighted sum over channels: ``(B, 3, H, W)`` -> ``(B, 1, H, W)``."""
    r, g, b = image.unbind(dim=1)
    return (REC709[0] * r + REC709[1] * g + REC709[2] * b).unsqueeze(1)


def planckian_xy(kelvin: Tensor) -> tuple[Tensor, Tensor]:
    """CIE 1931 (x, y) of a black body at ``kelvin`` (any shape, 1667-25000 K; Kim et al. 2002)."""
    t = kelvin
    x_lo = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    x_hi = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    x = torch.where(t <= 4000.0, x_lo, x_hi)
    y_1 = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    y_2 = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    y_3 = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    y = torch.where(t <= 2222.0, y_1, torch.where(t <= 4000.0, y_2, y_3))
    return x, y


def _xy_to_uv(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    d = -2.0 * x + 12.0 * y + 3.0
    return 4.0 * x / d, 6.0 * y / d


def _uv_to_xy(u: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    d = 2.0 * u - 8.0 * v + 4.0
    return 3.0 * u / d, 2.0 * v / d


def illuminant_xy(kelvin: Tensor, tint: Tensor) -> tuple[Tensor, Tensor]:
    """Chromaticity of a light of correlated colour temperature ``kelvin`` and Lightroom ``tint``.

    The point on the Planckian locus is moved along the locus normal in CIE 1960 (u, v) by
    ``tint / 3000`` (Adobe's scale); positive tint moves towards green (above the locus),
    so *correcting* for that light turns an image magenta, as Lightroom's Tint slider does.
    Computed in float64 (the normal comes from a central difference of the locus).
    """
    t = kelvin.to(torch.float64)
    u, v = _xy_to_uv(*planckian_xy(t))
    h = t * 1e-4
    u1, v1 = _xy_to_uv(*planckian_xy(t + h))
    u0, v0 = _xy_to_uv(*planckian_xy(t - h))
    du, dv = u1 - u0, v1 - v0  # tangent towards higher temperature (u and v both fall)
    norm = torch.sqrt(du * du + dv * dv)
    nu, nv = dv / norm, -du / norm  # rotate by -90 deg: points to higher v (greener)
    off = tint.to(torch.float64) / TINT_SCALE
    return _uv_to_xy(u + off * nu, v + off * nv)


def white_rgb(kelvin: Tensor, tint: Tensor) -> Tensor:
    """Linear sRGB colour of the illuminant (``kelvin``, ``tint``) at luminance Y = 1.

    ``kelvin`` and ``tint`` are ``(B,)``; returns ``(B, 3)`` float64 (kornia's D65 XYZ -> RGB).
    """
    x, y = illuminant_xy(kelvin, tint)
    xyz = torch.stack([x / y, torch.ones_like(y), (1.0 - x - y) / y], dim=-1)
    return kornia.color.xyz_to_rgb(xyz[..., None, None])[..., 0, 0]
