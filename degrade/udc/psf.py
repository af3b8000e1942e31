"""The PSF a UDC degradation uses: computed for a display (and cached) or loaded from a file.

* :func:`display_psf` computes the RGB PSF of a :class:`~degrade.udc.displays.Display` in
  image pixels: Fraunhofer PSFs per wavelength (:mod:`degrade.udc.optics`), weighted into R, G,
  B, integrated over image pixels, cropped to the square that holds ``energy`` of every
  channel (at most ``max_px`` wide) and normalised so each channel sums to 1. The result is
  cached on disk under ``$FER_CACHE/psf/``, keyed by a hash of every parameter it depends on.
* :func:`load_psf_file` reads a measured PSF (``H x W x 3`` ``.npy``, e.g. DISCNet's ZTE
  Axon 20 PSF) and prepares it the same way.

Kernels are ``(3, K, K)`` float32 arrays, ``K`` odd, optical axis at ``[K // 2, K // 2]``.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fercore.atomic import atomic_write_bytes
from fercore.errors import ConfigError
from fercore.cache import cache_dir

from .displays import Display
from .optics import (bin_to_pixels, energy_radius, fraunhofer_psf, next_fast_len, sensor_sampling,
                     spectral_bands)

#: Bump when the PSF computation changes, so stale cache entries are not reused.
PSF_VERSION = 1


@dataclass(frozen=True)
class PsfSettings:
    """How a display's PSF is sampled and cropped.

    Attributes:
        spectral: ``"peak"`` (one wavelength per channel: 610/530/470 nm) or ``"band"``
            (``spectral_samples`` wavelengths per channel weighted by a Gaussian response).
        spectral_samples: wavelengths per channel in ``"band"`` mode.
        energy: keep the smallest centred square holding this fraction of every channel's
            energy (the far, faint diffraction orders beyond it are dropped).
        max_px: largest kernel side in image pixels (odd); bounds the FFT size.
        supersample: sub-samples per pupil sample (per axis) when rendering the panel.
    """

    spectral: str = "peak"
    spectral_samples: int = 5
    energy: float = 0.98
    max_px: int = 63
    supersample: int = 2

    def validate(self) -> None:
        if self.spectral not in ("peak", "band"):
            raise ConfigError(f"spectral={self.spectral!r}; use 'peak' or 'band'", flag="--spectral")
        if not 0.5 <= self.energy <= 1.0:
            raise ConfigError(f"psf_energy={self.energy} must be in [0.5, 1]", flag="--set psf_energy")
        if self.max_px < 1 or self.max_px % 2 == 0:
            raise ConfigError(f"psf_max_px={self.max_px} must be a positive odd number", flag="--set psf_max_px")
        if self.spectral_samples < 2:
            raise ConfigError("spectral_samples must be >= 2", flag="--set spectral_samples")


def psf_cache_key(display: Display, settings: PsfSettings) -> str:
    payload = {"version": PSF_VERSION, "display": display.describe(), "psf": asdict(settings)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def compute_display_psf(display: Display, settings: PsfSettings) -> np.ndarray:
    """The ``(3, K, K)`` float32 image-pixel PSF of ``display`` (not cached; see :func:`display_psf`)."""
    settings.validate()
    bands = spectral_bands(settings.spectral, settings.spectral_samples)
    all_lams = [lam for b in bands for lam in b.wavelengths_um]
    sample_um, n = sensor_sampling(display.pixel_um, all_lams, display.focal_mm, display.aperture_mm)
    radius = settings.max_px // 2
    # Twice the kept field: the DFT's periodic copies of the far orders stay outside the kernel.
    size = next_fast_len(2 * (2 * radius + 1) * n)
    trans = display.transmission()
    kernel = np.zeros((3, 2 * radius + 1, 2 * radius + 1))
    for c, band in enumerate(bands):
        for lam, w in zip(band.wavelengths_um, band.weights):
            fine = fraunhofer_psf(trans, lam, focal_mm=display.focal_mm, aperture_mm=display.aperture_mm,
                                  sample_um=sample_um, size=size, supersample=settings.supersample)
            kernel[c] += w * bin_to_pixels(fine, n, radius)
    return finish_kernel(kernel, settings)


def finish_kernel(kernel: np.ndarray, settings: PsfSettings) -> np.ndarray:
    """Crop a centred ``(3, K, K)`` kernel to its energy square (<= ``max_px``) and normalise."""
    k = kernel.shape[-1]
    if k > settings.max_px:
        o = (k - settings.max_px) // 2
        kernel = kernel[:, o:o + settings.max_px, o:o + settings.max_px]
    r = energy_radius(kernel / kernel.sum(axis=(1, 2), keepdims=True), settings.energy)
    mid = kernel.shape[-1] // 2
    kernel = kernel[:, mid - r:mid + r + 1, mid - r:mid + r + 1]
    kernel = kernel / kernel.sum(axis=(1, 2), keepdims=True)
    return np.ascontiguousarray(kernel, dtype=np.float32)


def display_psf(display: Display, settings: PsfSettings = PsfSettings(), *,
                cache: bool = True) -> np.ndarray:
    """The display's PSF, from the disk cache when an identical one was computed before."""
    key = psf_cache_key(display, settings)
    path = cache_dir() / "psf" / f"{display.name.replace(':', '-').replace('/', '-')}-{key[:20]}.npy"
    if cache and path.is_file():
        try:
            k = np.load(path, allow_pickle=False)
            if k.ndim == 3 and k.shape[0] == 3 and np.isfinite(k).all():
                return k
        except (OSError, ValueError):
            pass  # a damaged cache entry is recomputed
    kernel = compute_display_psf(display, settings)
    if cache:
        buf = io.BytesIO()
        np.save(buf, kernel, allow_pickle=False)
        atomic_write_bytes(path, buf.getvalue())
    return kernel


def load_psf_file(path: str | Path, settings: PsfSettings = PsfSettings(), *, scale: float = 1.0) -> np.ndarray:
    """A measured PSF from an ``H x W x 3`` ``.npy`` file, as a normalised ``(3, K, K)`` kernel.

    The optical axis is taken at ``[H // 2, W // 2]``; an even side gets a zero row/column at
    its end so the kernel is odd and that pixel stays in the centre. ``scale`` resizes it
    (e.g. 0.25 for a PSF measured at 4x the image's resolution; area interpolation). It is
    then cropped like a computed PSF (``energy``, ``max_px``) and each channel normalised.
    """
    path = Path(path)
    flag = "--psf"
    if not path.is_file():
        raise ConfigError(f"{path}: PSF file not found", flag=flag)
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a NumPy .npy array ({exc})", flag=flag) from None
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ConfigError(f"{path}: PSF must be H x W x 3 (RGB), got shape {arr.shape}", flag=flag)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ConfigError(f"{path}: PSF must hold real numbers (an intensity), got dtype {arr.dtype}", flag=flag)
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all() or arr.min() < 0:
        raise ConfigError(f"{path}: PSF has negative or non-finite values", flag=flag)
    if (arr.sum(axis=(0, 1)) <= 0).any():
        raise ConfigError(f"{path}: a PSF channel is all zero", flag=flag)
    if scale <= 0:
        raise ConfigError(f"psf scale must be > 0, got {scale}", flag="--psf-scale")
    if scale != 1.0:
        import cv2

        h, w = arr.shape[:2]
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        arr = np.stack([cv2.resize(arr[:, :, c], (nw, nh), interpolation=cv2.INTER_AREA)
                        for c in range(3)], axis=2)
    h, w = arr.shape[:2]
    if h % 2 == 0:
        arr = np.concatenate([arr, np.zeros((1, w, 3))], axis=0)
        h += 1
    if w % 2 == 0:
        arr = np.concatenate([arr, np.zeros((h, 1, 3))], axis=1)
        w += 1
    side = max(h, w)  # pad to a square around the centre
    sq = np.zeros((side, side, 3))
    oy, ox = side // 2 - h // 2, side // 2 - w // 2
    sq[oy:oy + h, ox:ox + w] = arr
    return finish_kernel(sq.transpose(2, 0, 1), settings)


def _box_matrix(k: int, scale: float) -> np.ndarray:
    """``(n, k)`` weights that integrate ``k`` centred unit pixels into ``n`` (odd) pixels of
    width ``1 / scale``, centre on centre: exact area resampling of a piecewise-constant kernel."""
    n = max(1, int(np.ceil(k * scale)))
    n += 1 - n % 2
    j = np.arange(k) - k // 2                  # fine pixel j spans [j - 0.5, j + 0.5]
    i = np.arange(n) - n // 2                  # output pixel i spans [(i - 0.5) / s, (i + 0.5) / s]
    lo = np.maximum((i[:, None] - 0.5) / scale, j[None, :] - 0.5)
    hi = np.minimum((i[:, None] + 0.5) / scale, j[None, :] + 0.5)
    return np.clip(hi - lo, 0.0, None)


def resize_kernel(kernel: np.ndarray, scale: float) -> np.ndarray:
    """Resample a centred ``(C, K, K)`` kernel to pixels ``1 / scale`` times as wide (exact box
    integration; ``scale < 1`` makes it smaller). The optical axis stays the centre of the
    centre pixel; the side becomes the odd ``n >= K * scale``. Normalise afterwards."""
    if scale == 1.0:
        return kernel
    m = _box_matrix(kernel.shape[-1], scale)
    return np.einsum("ik,ckl,jl->cij", m, kernel.astype(np.float64), m)


def gaussian_kernel(sigma_px: float) -> np.ndarray:
    """A centred 2-D Gaussian of standard deviation ``sigma_px`` on an odd support of
    ``2 ceil(3 sigma) + 1`` pixels, integrated over each pixel and summing to 1."""
    from scipy.special import erf

    r = max(1, int(np.ceil(3.0 * sigma_px)))
    edges = np.arange(-r, r + 2) - 0.5
    cdf = 0.5 * (1.0 + erf(edges / (np.sqrt(2.0) * sigma_px)))
    g1 = np.diff(cdf)
    g = np.outer(g1, g1)
    return g / g.sum()


def add_scatter(kernel: np.ndarray, fraction: float, sigma_px: float) -> np.ndarray:
    """Mix a wide veil into a PSF: ``(1 - fraction) * kernel + fraction * G_sigma``.

    The panel's layers scatter part of the light forward over a wide angle (the haze of
    P-OLED captures, veiling glare). Both parts sum to 1 per channel, so the mixture does too:
    scatter moves energy, it neither adds nor removes any.

    Args:
        kernel: ``(3, K, K)`` float PSF, ``K`` odd, each channel summing to 1.
        fraction: share of the light in the veil, in [0, 1).
        sigma_px: the veil's Gaussian standard deviation in pixels (> 0).

    Returns:
        ``(3, K', K')`` float32 kernel, ``K' = max(K, 2 ceil(3 sigma) + 1)``.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"scatter fraction must be in [0, 1), got {fraction}")
    if not sigma_px > 0:
        raise ValueError(f"scatter sigma must be > 0 px, got {sigma_px}")
    g = gaussian_kernel(sigma_px)
    k, kg = kernel.shape[-1], g.shape[-1]
    side = max(k, kg)
    out = np.zeros((kernel.shape[0], side, side))
    o = (side - k) // 2
    out[:, o:o + k, o:o + k] = (1.0 - fraction) * (kernel / kernel.sum(axis=(1, 2), keepdims=True))
    o = (side - kg) // 2
    out[:, o:o + kg, o:o + kg] += fraction * g
    return np.ascontiguousarray(out / out.sum(axis=(1, 2), keepdims=True), dtype=np.float32)


def psf_summary(kernel: np.ndarray) -> dict[str, Any]:
    """Size, centre-pixel energy and RMS radius (px) per channel, for records and printing."""
    k = kernel.shape[-1]
    yy, xx = np.mgrid[0:k, 0:k] - k // 2
    r2 = (yy ** 2 + xx ** 2).astype(np.float64)
    return {
        "size_px": int(k),
        "centre_energy": [round(float(kernel[c, k // 2, k // 2]), 6) for c in range(3)],
        "rms_radius_px": [round(float(np.sqrt((kernel[c] * r2).sum())), 4) for c in range(3)],
    }
