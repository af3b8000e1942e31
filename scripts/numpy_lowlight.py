"""A straightforward per-image NumPy/OpenCV version of the low-light maths (the speed baseline).

The batched torch implementation lives in :mod:`degrade.lowlight`; this file re-derives the
same maths one image at a time, the way a dataset script usually would, so the benchmark
driver can report "batched vs per-image" and a test can check that both agree (noise off,
within 1-2/255). It shares no code with the torch version, only the published constants.

    from numpy_lowlight import degrade_one
    out = degrade_one(img_uint8, {"exposure_ev": -3, "temperature_k": 5000, "tint": 5,
                                  "highlights": -0.8, "shadows": -0.6}, np.random.default_rng(0))

``params`` holds a manifest row (any of ``exposure_ev, temperature_k, tint, contrast,
highlights, shadows, whites, blacks, camera_gain, shot_noise, read_noise, jpeg_quality``;
missing optional steps are off) and, optionally, settings (``pivot``, ``highlights_stops``,
``shadows_stops``, ``contrast_stops``, ``whites_reach``, ``blacks_reach``, ``reference_kelvin``).
Noise is drawn from ``rng`` (so it differs from the torch version's per-sample generators).
"""

from __future__ import annotations

import cv2
import numpy as np

SETTINGS = {"pivot": 0.5, "highlights_stops": 1.5, "shadows_stops": 1.5, "contrast_stops": 1.0,
            "whites_reach": 0.25, "blacks_reach": 0.1, "reference_kelvin": 6500.0}
W709 = np.array([0.2126, 0.7152, 0.0722])
XYZ_TO_RGB = np.array([[3.2404813432005266, -1.5371515162713185, -0.4985363261688878],
                       [-0.9692549499965682, 1.8759900014898907, 0.0415559265582928],
                       [0.0556466391351772, -0.2040413383665112, 1.0573110696453443]])
# sRGB decoding of the 256 possible 8-bit values (IEC 61966-2-1)
_C = np.arange(256) / 255.0
SRGB_TO_LINEAR_LUT = np.where(_C > 0.04045, ((_C + 0.055) / 1.055) ** 2.4, _C / 12.92).astype(np.float32)


def encode_srgb(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(lin, 0.0, 1.0)
    return np.where(lin > 0.0031308, 1.055 * np.maximum(lin, 0.0031308) ** (1 / 2.4) - 0.055, 12.92 * lin)


def planck_uv(t: float) -> tuple[float, float]:
    """CIE 1960 (u, v) of a black body (Kim et al. 2002 fit of the Planckian locus)."""
    if t <= 4000:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    d = -2 * x + 12 * y + 3
    return 4 * x / d, 6 * y / d


def light_rgb(t: float, tint: float) -> np.ndarray:
    """Linear sRGB of the light (t Kelvin, Lightroom tint) at luminance 1."""
    u, v = planck_uv(t)
    (u1, v1), (u0, v0) = planck_uv(t * 1.0001), planck_uv(t * 0.9999)
    n = np.hypot(u1 - u0, v1 - v0)
    u, v = u + tint / 3000 * (v1 - v0) / n, v - tint / 3000 * (u1 - u0) / n
    d = 2 * u - 8 * v + 4
    x, y = 3 * u / d, 2 * v / d
    return XYZ_TO_RGB @ np.array([x / y, 1.0, (1 - x - y) / y])


def smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def degrade_one(img_uint8: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
    """Degrade one ``H x W x 3`` uint8 RGB image; returns uint8 of the same shape."""
    s = {k: float(params.get(k, v)) for k, v in SETTINGS.items()}
    p = s["pivot"]
    lin = SRGB_TO_LINEAR_LUT[img_uint8]                                   # H x W x 3 float32
    gains = light_rgb(s["reference_kelvin"], 0.0) / light_rgb(params["temperature_k"], params["tint"])
    gains = gains / (gains @ W709)
    lin = lin * (gains * 2.0 ** params["exposure_ev"]).astype(np.float32)
    if params.get("shot_noise") is not None:
        g, shot, read = params.get("camera_gain", 1.0), params["shot_noise"], params["read_noise"]
        var = g * shot * np.maximum(lin, 0) + g * g * read
        lin = lin + np.sqrt(var) * rng.standard_normal(lin.shape, dtype=np.float32)
    x = encode_srgb(lin)
    if params.get("contrast") is not None:
        gamma = 2.0 ** (s["contrast_stops"] * params["contrast"])
        x = np.where(x < p, p * np.maximum(x / p, 1e-6) ** gamma,
                     1 - (1 - p) * np.maximum((1 - x) / (1 - p), 1e-6) ** gamma)
    lum = x @ W709
    m = smoothstep((lum - p) / (1 - p))[..., None]
    x = 1 - (1 - x) * 2.0 ** (-s["highlights_stops"] * params["highlights"] * m)
    lum = x @ W709
    m = smoothstep((p - lum) / p)[..., None]
    x = x * 2.0 ** (s["shadows_stops"] * params["shadows"] * m)
    if params.get("whites") is not None or params.get("blacks") is not None:
        white = 1 - s["whites_reach"] * params.get("whites", 0.0)
        black = -s["blacks_reach"] * params.get("blacks", 0.0)
        x = (x - black) / (white - black)
    out = np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
    if params.get("jpeg_quality") is not None:
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(round(params["jpeg_quality"]))])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()
    return out
