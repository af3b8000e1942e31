"""A straightforward per-image NumPy/OpenCV version of the UDC maths (the benchmark's baseline).

One image at a time, float64, textbook formulas: sRGB decoding with ``np.power``, the PSF by
``cv2.filter2D`` per channel (OpenCV switches to a DFT for large kernels; borders mirrored like
the toolkit's ``reflect``), noise from a NumPy generator, sRGB encoding with ``np.power`` and
rounding. It computes what :class:`degrade.udc.UDC` computes (with noise from a different
generator), so ``scripts/bench_degrade.py`` can compare speeds on the same work.

Interface shared with the other ``scripts/numpy_<kind>.py`` modules::

    degrade_one(img_uint8, params, rng, **context) -> uint8 image
    reference_for(degradation) -> callable(img_uint8, params, rng)   # binds the context
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np


def srgb_decode(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, np.power((v + 0.055) / 1.055, 2.4))


def srgb_encode(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def degrade_one(img: np.ndarray, params: dict[str, float], rng: np.random.Generator, *,
                psf: np.ndarray, settings: Any) -> np.ndarray:
    """Degrade one ``H x W x 3`` uint8 RGB image; ``psf`` is ``(3, K, K)``, ``settings`` a UDCSettings."""
    x = srgb_decode(img.astype(np.float64) / 255.0)
    if settings.flare:
        lum = 0.2126 * x[..., 0] + 0.7152 * x[..., 1] + 0.0722 * x[..., 2]
        m = np.clip((lum - settings.flare_threshold) / (1 - settings.flare_threshold), 0, 1)
        b = settings.flare_blob_px
        total = cv2.boxFilter(m, -1, (b, b), normalize=False, borderType=cv2.BORDER_CONSTANT)
        count = cv2.boxFilter(np.ones_like(m), -1, (b, b), normalize=False, borderType=cv2.BORDER_CONSTANT)
        x = x * (1 + (params["flare_gain"] - 1) * m * total / count)[..., None]
    t = np.array([params["trans_r"], params["trans_g"], params["trans_b"]])
    x = x * t
    border = {"reflect": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE,
              "zeros": cv2.BORDER_CONSTANT}[settings.border]
    x = np.stack([cv2.filter2D(x[..., c], -1, np.ascontiguousarray(psf[c, ::-1, ::-1], dtype=np.float64),
                               borderType=border) for c in range(3)], axis=-1)
    L = params["photons"]
    if settings.noise == "normal":
        e = np.maximum(x, 0) * L
        e = e + np.sqrt(e + settings.read_noise_e ** 2) * rng.standard_normal(e.shape)
        x = np.clip(e, 0, settings.full_well_e) / L
    elif settings.noise == "poisson":
        e = rng.poisson(np.maximum(x, 0) * L) + settings.read_noise_e * rng.standard_normal(x.shape)
        x = np.clip(e, 0, settings.full_well_e) / L
    x = np.clip(x * params["exposure"] / t.mean(), 0, 1)
    return np.round(srgb_encode(x) * 255).astype(np.uint8)


def reference_for(degradation):
    """``degrade_one`` bound to a :class:`degrade.udc.UDC`'s settings and the PSF it uses at
    each image's size (the PSF scales with the face)."""
    def fn(img: np.ndarray, params: dict[str, float], rng: np.random.Generator) -> np.ndarray:
        psf = degradation.kernel_for(img.shape[0], img.shape[1])
        return degrade_one(img, params, rng, psf=psf, settings=degradation.settings)

    return fn
