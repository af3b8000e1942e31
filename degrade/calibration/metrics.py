"""What a degradation does to an image, measured from a (clean, degraded) pair of the same scene.

Every measure compares a degraded image with its clean original, so the same numbers can be
read off real captures (a clean reference and a real UDC / low-light capture of one scene) and
off the simulator (the clean image and its simulated copy), and set side by side:

* :func:`brightness_ratio` -- mean of the degraded image's 8-bit codes over the clean one's
  (its inverse is the *darkening factor* low-light papers quote).
* :func:`colour_cast` -- R/G and B/G of the degraded image relative to the clean image's.
* :func:`contrast_transfer` -- per radial frequency band (cycles/pixel), the degraded image's
  contrast over the clean one's with brightness factored out: each image's linear luminance is
  divided by its mean, Hann-windowed, and the square roots of the band powers compared.
* :func:`flat_noise` -- noise of the degraded image in regions the clean image shows as flat,
  binned by the degraded image's local brightness (Immerkaer's Laplacian-difference estimator).
* :func:`histogram_distance` -- Wasserstein-1 distance between two luminance histograms.

Images are ``H x W x 3`` uint8 RGB arrays of one size (NumPy/OpenCV, CPU: measurement, not a
training path). :class:`PairStats` accumulates the measures over many pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

#: Radial frequency bands, cycles per pixel, for :func:`contrast_transfer`.
BANDS: tuple[tuple[float, float], ...] = ((0.01, 0.03), (0.03, 0.06), (0.06, 0.12), (0.12, 0.25), (0.25, 0.5))
#: Edges (8-bit luminance codes) of the brightness bins of :func:`flat_noise`.
NOISE_BINS: tuple[float, ...] = (0, 8, 16, 32, 64, 128, 256)
#: Share of the clean image's pixels (the flattest) that count as flat.
FLAT_SHARE = 0.3
#: Least number of flat pixels a brightness bin needs before its noise is reported.
MIN_BIN_PIXELS = 200

_LUMA = np.array([0.2126, 0.7152, 0.0722])
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)


def _check_pair(clean: np.ndarray, degraded: np.ndarray) -> None:
    for name, img in (("clean", clean), ("degraded", degraded)):
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"{name} must be an H x W x 3 uint8 RGB array, got {img.dtype} {img.shape}")
    if clean.shape != degraded.shape:
        raise ValueError(f"the pair's images differ in size: {clean.shape} vs {degraded.shape}; "
                         "resize both to one size first")


def srgb_to_linear(codes: np.ndarray) -> np.ndarray:
    """8-bit sRGB codes -> linear light in [0, 1] (IEC 61966-2-1), float64."""
    c = codes.astype(np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def luma_codes(img: np.ndarray) -> np.ndarray:
    """Luminance of an 8-bit RGB image on the code scale (Rec. 709 weights on the codes), float64."""
    return img.astype(np.float64) @ _LUMA


def brightness_ratio(clean: np.ndarray, degraded: np.ndarray) -> float:
    """``mean(degraded codes) / mean(clean codes)`` over all pixels and channels."""
    _check_pair(clean, degraded)
    return float(degraded.mean() / max(clean.mean(), 1e-9))


def colour_cast(clean: np.ndarray, degraded: np.ndarray) -> tuple[float, float]:
    """``(R/G, B/G)`` of the degraded image's channel means over the clean image's (1, 1 = no cast)."""
    _check_pair(clean, degraded)
    c = clean.reshape(-1, 3).mean(axis=0) + 1e-9
    d = degraded.reshape(-1, 3).mean(axis=0) + 1e-9
    return float((d[0] / d[1]) / (c[0] / c[1])), float((d[2] / d[1]) / (c[2] / c[1]))


def band_power(img: np.ndarray, bands=BANDS) -> np.ndarray:
    """Power of the mean-normalised, Hann-windowed linear luminance in each radial band."""
    y = srgb_to_linear(img) @ _LUMA
    y = y / max(y.mean(), 1e-9) - 1.0
    h, w = y.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    p = np.abs(np.fft.rfft2(y * win)) ** 2
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    r = np.sqrt(fy ** 2 + fx ** 2)
    return np.array([p[(r >= lo) & (r < hi)].sum() for lo, hi in bands])


def contrast_transfer(clean: np.ndarray, degraded: np.ndarray, bands=BANDS) -> np.ndarray:
    """Per band, ``sqrt(power(degraded) / power(clean))`` with brightness factored out (1 = unchanged)."""
    _check_pair(clean, degraded)
    pc, pd = band_power(clean, bands), band_power(degraded, bands)
    return np.sqrt(pd / np.maximum(pc, 1e-30))


def flat_noise_sums(clean: np.ndarray, degraded: np.ndarray, bins=NOISE_BINS) -> np.ndarray:
    """Per brightness bin, ``(number of flat pixels, sum of |Immerkaer response|)`` of the
    degraded image: the raw sums :class:`PairStats` pools over pairs (see :func:`flat_noise`)."""
    _check_pair(clean, degraded)
    c = luma_codes(clean)
    d = luma_codes(degraded)
    # Flat where the clean image varies least (local standard deviation over 5 x 5).
    mu = cv2.blur(c, (5, 5))
    sd = np.sqrt(np.maximum(cv2.blur(c * c, (5, 5)) - mu * mu, 0.0))
    inner = np.zeros(c.shape, dtype=bool)
    inner[3:-3, 3:-3] = True
    thr = np.quantile(sd[inner], FLAT_SHARE)
    flat = inner & (sd <= thr)
    resp = np.abs(cv2.filter2D(d, -1, _IMMERKAER, borderType=cv2.BORDER_REFLECT))
    level = cv2.blur(d, (5, 5))
    out = np.zeros((len(bins) - 1, 2))
    idx = np.digitize(level[flat], bins) - 1
    vals = resp[flat]
    for b in range(len(bins) - 1):
        sel = idx == b
        out[b] = sel.sum(), vals[sel].sum()
    return out


def noise_from_sums(sums: np.ndarray) -> np.ndarray:
    """Noise standard deviation (8-bit codes) per bin from :func:`flat_noise_sums` totals:
    Immerkaer's ``sqrt(pi / 2) / 6 * mean |response|``; NaN where a bin has too few pixels."""
    n, s = sums[:, 0], sums[:, 1]
    sigma = math.sqrt(math.pi / 2.0) / 6.0 * s / np.maximum(n, 1)
    return np.where(n >= MIN_BIN_PIXELS, sigma, np.nan)


def flat_noise(clean: np.ndarray, degraded: np.ndarray, bins=NOISE_BINS) -> np.ndarray:
    """Noise (standard deviation, 8-bit codes) of ``degraded`` in the clean image's flattest
    regions, per bin of the degraded image's local brightness (:data:`NOISE_BINS`)."""
    return noise_from_sums(flat_noise_sums(clean, degraded, bins))


def luma_histogram(img: np.ndarray) -> np.ndarray:
    """Normalised 256-bin histogram of the luminance codes."""
    h = np.bincount(np.clip(np.rint(luma_codes(img)), 0, 255).astype(np.int64).ravel(), minlength=256)
    return h / max(h.sum(), 1)


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 distance between two luminance histograms, in codes / 255 (0 = equal, 1 = black vs white)."""
    return float(np.abs(np.cumsum(a) - np.cumsum(b)).sum() / 255.0)


def _lin_luma(img: np.ndarray) -> np.ndarray:
    y = srgb_to_linear(img) @ _LUMA
    return y / max(y.mean(), 1e-9)


def ghost_score(kernel: np.ndarray, core_px: int = 2, reach_px: int = 20) -> float:
    """How much a blur kernel paints ghost copies: the highest *local* peak of the kernel
    between ``core_px`` and ``reach_px`` (20) from its centre (the kernel minus its 5 x 5 median,
    so a smooth veil does not count), relative to the centre value. ~0 for a smooth blur or
    haze; 0.1-1 for a grating's diffraction orders. ``kernel`` is ``(K, K)``, centred."""
    k = np.asarray(kernel, dtype=np.float32)
    c = k.shape[0] // 2
    peak = float(k[c, c])
    if peak <= 0:
        return float("nan")
    ridge = k - cv2.medianBlur(k, 5)
    yy, xx = np.mgrid[0:k.shape[0], 0:k.shape[1]] - c
    r = np.sqrt(yy ** 2 + xx ** 2)
    ring = (r > core_px) & (r <= reach_px)
    if not ring.any():  # a kernel no wider than its core has no side peaks
        return 0.0
    return float(max(ridge[ring].max(), 0.0) / peak)


def psf_ghost(kernel_rgb: np.ndarray) -> float:
    """:func:`ghost_score` of a ``(3, K, K)`` RGB PSF's luminance kernel."""
    return ghost_score(np.tensordot(_LUMA, kernel_rgb.astype(np.float64), axes=1))


def centred_kernel(spectrum: np.ndarray, size: int) -> np.ndarray:
    """The centred ``size x size`` crop of the kernel whose full-size rFFT is ``spectrum``."""
    full = np.fft.irfft2(spectrum[0], s=spectrum[1])
    full = np.fft.fftshift(full)
    cy, cx = full.shape[0] // 2, full.shape[1] // 2
    h = size // 2
    return full[cy - h:cy + h + 1, cx - h:cx + h + 1]


@dataclass
class PairStats:
    """The measures of many (clean, degraded) pairs, pooled the way each measure pools best:
    per-pair ratios for brightness and colour (medians and ranges over pairs), summed band
    powers for the contrast transfer, summed flat-region responses for the noise."""

    brightness: list[float] = field(default_factory=list)
    rg: list[float] = field(default_factory=list)
    bg: list[float] = field(default_factory=list)
    power_clean: np.ndarray = field(default_factory=lambda: np.zeros(len(BANDS)))
    power_degraded: np.ndarray = field(default_factory=lambda: np.zeros(len(BANDS)))
    noise_sums: np.ndarray = field(default_factory=lambda: np.zeros((len(NOISE_BINS) - 1, 2)))
    hist_clean: np.ndarray = field(default_factory=lambda: np.zeros(256))
    hist_degraded: np.ndarray = field(default_factory=lambda: np.zeros(256))
    hist_dist: list[float] = field(default_factory=list)
    cross: np.ndarray | None = None  # sum of conj(F clean) F degraded (luminance), one image size
    auto: np.ndarray | None = None   # sum of |F clean|^2
    shape: tuple[int, int] | None = None

    def add(self, clean: np.ndarray, degraded: np.ndarray) -> None:
        self.brightness.append(brightness_ratio(clean, degraded))
        rg, bg = colour_cast(clean, degraded)
        self.rg.append(rg)
        self.bg.append(bg)
        pc, pd = band_power(clean), band_power(degraded)
        # Each pair weighs by its clean power, so the pooled ratio is a power-weighted mean.
        self.power_clean += pc
        self.power_degraded += pd
        self.noise_sums += flat_noise_sums(clean, degraded)
        hc, hd = luma_histogram(clean), luma_histogram(degraded)
        self.hist_clean += hc
        self.hist_degraded += hd
        self.hist_dist.append(histogram_distance(hc, hd))
        if self.shape is None or self.shape == clean.shape[:2]:  # the blur kernel pools one size
            fc, fd = np.fft.rfft2(_lin_luma(clean) - 1.0), np.fft.rfft2(_lin_luma(degraded) - 1.0)
            cross, auto = np.conj(fc) * fd, np.abs(fc) ** 2
            if self.shape is None:
                self.shape, self.cross, self.auto = clean.shape[:2], cross, auto
            else:
                self.cross += cross
                self.auto += auto

    def kernel(self, size: int = 31) -> np.ndarray:
        """The luminance blur kernel that maps the clean images onto the degraded ones best
        (regularised least squares over every pooled pair), centred, ``size x size``."""
        if self.cross is None:
            raise ValueError("no pairs were measured")
        eps = 1e-3 * float(self.auto.mean())
        return centred_kernel((self.cross / (self.auto + eps), self.shape), size)

    def __len__(self) -> int:
        return len(self.brightness)

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures: brightness (median, 10th/90th percentile), darkening factor
        (median, 10th/90th percentile, share in [3.5, 16]), colour cast, contrast per band,
        noise per bin and the clean-to-degraded histogram distance."""
        if not self.brightness:
            raise ValueError("no pairs were measured")
        b = np.array(self.brightness)
        dark = 1.0 / np.maximum(b, 1e-9)
        return {
            "pairs": len(b),
            "brightness": {"median": _r(np.median(b)), "p10": _r(np.quantile(b, 0.1)),
                           "p90": _r(np.quantile(b, 0.9))},
            "darkening": {"median": _r(np.median(dark)), "p10": _r(np.quantile(dark, 0.1)),
                          "p90": _r(np.quantile(dark, 0.9)),
                          "share_3.5_16": _r(np.mean((dark >= 3.5) & (dark <= 16.0)))},
            "rg": _r(np.median(self.rg)), "bg": _r(np.median(self.bg)),
            "contrast": [_r(v) for v in np.sqrt(self.power_degraded / np.maximum(self.power_clean, 1e-30))],
            "noise": [_r(v) for v in noise_from_sums(self.noise_sums)],
            "hist_distance": _r(np.mean(self.hist_dist)),
            "ghost": _r(ghost_score(self.kernel())),
        }


def _r(v: float, digits: int = 4) -> float:
    v = float(v)
    return v if not math.isfinite(v) else float(f"{v:.{digits}g}")


def noise_ratio(sim: dict[str, Any], real: dict[str, Any]) -> float:
    """Median over the brightness bins both report of ``noise(sim) / noise(real)`` (NaN if none)."""
    r = [s / t for s, t in zip(sim["noise"], real["noise"])
         if s is not None and t is not None and math.isfinite(s) and math.isfinite(t) and t > 0]
    return float(np.median(r)) if r else float("nan")


def compare(sim: dict[str, Any], real: dict[str, Any]) -> dict[str, Any]:
    """Simulator vs real summaries: ratios of the contrast per band and of the noise, the
    brightness and colour differences, and the histogram distance between the two sets'
    pooled degraded histograms is left to :class:`PairStats` callers (it needs both)."""
    return {
        "brightness": _r(sim["brightness"]["median"] / real["brightness"]["median"]),
        "rg": _r(sim["rg"] / real["rg"]), "bg": _r(sim["bg"] / real["bg"]),
        "contrast": [_r(s / t) if t else float("nan") for s, t in zip(sim["contrast"], real["contrast"])],
        "noise": _r(noise_ratio(sim, real)),
    }
