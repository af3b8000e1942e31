"""Fit a UDC preset's free parameters to real (clean, under-display capture) pairs.

What is fitted, in order (each step holds the earlier ones fixed):

1. **Exposure** (output over clean brightness): per pair, the exposure whose noise-free output
   has the real capture's mean brightness (a grid, interpolated); the range spans the 10th to
   90th percentile over pairs.
2. **Colour cast**: the panel material's R and B transmittance relative to G, by fixed-point
   steps on the median R/G and B/G over pairs (the camera's gain keeps the overall level).
3. **Blur**: ``pixel_um`` (the PSF's scale at ``reference_px``), ``opaque_transmittance``,
   ``scatter`` and ``scatter_px`` on a grid, minimising the squared log-ratio of the contrast
   transfer in the bands below 0.25 cycles/px (the top band holds noise and JPEG, not blur),
   plus a penalty on ghost copies in the PSF (:data:`GHOST_WEIGHT`).
   The contrast of a candidate is computed from its PSF's transfer function and the clean
   images' spectra (no image is rendered), so the grid is cheap.
4. **Noise** (optional, from real captures that need no reference): one factor on the
   ``photons`` range, by bisection, so the simulated noise in flat regions matches the real
   captures' at equal brightness.

Images are resized so their shorter side is ``short`` pixels (default 100, the face scale at
which ``reference_px`` = 100 defines the PSF): the fitted degradation is the real captures'
as seen at that scale.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import cv2
import numpy as np
import torch

from fercore.progress import track

from ..udc import UDCSettings
from ..udc.degradation import PRESET_KEYS, UDC
from ..udc.psf import add_scatter
from .metrics import BANDS, PairStats, _lin_luma, colour_cast, flat_noise_sums, noise_from_sums, psf_ghost
from .pairs import Pair, iter_pairs, resize_short, simulate

#: Candidate values of step 3.
PIXEL_UM = (8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0, 96.0)
OPAQUE = (0.0, 0.1, 0.25, 0.5)
SCATTER = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
SCATTER_PX = (3.0, 6.0, 12.0, 24.0, 48.0)
#: Exposure grid of step 1.
EXPOSURE_GRID = np.round(np.arange(0.05, 1.6001, 0.01), 3)
#: Bands (indices into BANDS) the blur fit uses.
FIT_BANDS = (0, 1, 2, 3)
#: Weight of the ghost-copy penalty (:func:`~.metrics.psf_ghost` squared) in the blur fit: real
#: T-OLED and P-OLED captures show no displaced copies of edges at the face scale.
GHOST_WEIGHT = 10.0
SPAN = (10.0, 90.0)

_LUMA = np.array([0.2126, 0.7152, 0.0722])


def _udc(settings: dict[str, Any]) -> UDC:
    return UDC(UDCSettings(**settings))


def _plain(settings: dict[str, Any]) -> UDC:
    """The simulator without sensor noise (steps 1-2 render expected values)."""
    return _udc({**settings, "noise": "none"})


def _render(udc: UDC, img: np.ndarray, exposure: np.ndarray) -> np.ndarray:
    """Noise-free float renders of ``img`` at each exposure (mid transmittance)."""
    n = len(exposure)
    x = torch.from_numpy(img).permute(2, 0, 1).float().div(255.0).expand(n, -1, -1, -1).contiguous()
    scale = math.sqrt(udc.settings.transmittance_scale[0] * udc.settings.transmittance_scale[1])
    t = [float(v * scale) for v in udc.nominal]
    p = {"trans_r": torch.full((n,), t[0]), "trans_g": torch.full((n,), t[1]), "trans_b": torch.full((n,), t[2]),
         "photons": torch.full((n,), 1e4), "exposure": torch.as_tensor(exposure, dtype=torch.float32)}
    gens = [torch.Generator().manual_seed(0) for _ in range(n)]
    with torch.no_grad():
        y = udc.apply(x, p, gens)
    return torch.round(y * 255.0).permute(0, 2, 3, 1).numpy().astype(np.uint8)


def fit_exposure(udc: UDC, data: list[tuple[np.ndarray, np.ndarray]]) -> tuple[list, list[float]]:
    """Step 1: the exposure range and the per-pair exposures."""
    per = []
    for clean, real in data:
        out = _render(udc, clean, EXPOSURE_GRID)
        ratio = np.maximum.accumulate(out.reshape(len(EXPOSURE_GRID), -1).mean(axis=1) / max(clean.mean(), 1e-9))
        target = real.mean() / max(clean.mean(), 1e-9)
        per.append(float(np.interp(target, ratio + np.arange(len(ratio)) * 1e-9, EXPOSURE_GRID)))
    lo, hi = np.percentile(per, SPAN)
    return [round(float(lo), 3), round(float(hi), 3)], per


def fit_colour(settings: dict[str, Any], data, exposure: float, steps: int = 5) -> list[float]:
    """Step 2: material transmittance (R, G, B) giving the real median R/G and B/G."""
    rg_t = float(np.median([colour_cast(c, r)[0] for c, r in data]))
    bg_t = float(np.median([colour_cast(c, r)[1] for c, r in data]))
    udc = _plain(settings)
    m = np.array(udc.display.material_transmittance, dtype=np.float64)
    for _ in range(steps):
        udc = _plain({**settings, "material_transmittance": tuple(m)})
        casts = [colour_cast(c, _render(udc, c, np.array([exposure]))[0]) for c, _ in data]
        rg, bg = float(np.median([x[0] for x in casts])), float(np.median([x[1] for x in casts]))
        m[0] *= (rg_t / rg) ** 2.2
        m[2] *= (bg_t / bg) ** 2.2
        m = m / max(m.max(), 1.0)  # stay a transmittance
        m = np.clip(m, 1e-3, 1.0)
    return [round(float(v), 4) for v in m]


def _spectra(data) -> list[tuple[np.ndarray, tuple[int, int], np.ndarray]]:
    """Per clean image: its windowed, mean-normalised luminance power, shape and band index map."""
    out = []
    for clean, _ in data:
        y = _lin_luma(clean) - 1.0
        h, w = y.shape
        win = np.outer(np.hanning(h), np.hanning(w))
        p = np.abs(np.fft.rfft2(y * win)) ** 2
        r = np.sqrt(np.fft.fftfreq(h)[:, None] ** 2 + np.fft.rfftfreq(w)[None, :] ** 2)
        band = np.full(r.shape, -1)
        for i, (lo, hi) in enumerate(BANDS):
            band[(r >= lo) & (r < hi)] = i
        out.append((p, (h, w), band))
    return out


def _otf2(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``|OTF|^2`` of a centred 2-D kernel on an image of ``shape`` (rfft layout): the kernel
    placed circularly with its centre at ``[0, 0]`` (wrapping when it is wider than the image)."""
    h, w = shape
    k = kernel.shape[0]
    offs = np.arange(k) - k // 2
    pad = np.zeros((h, w))
    np.add.at(pad, ((offs % h)[:, None], (offs % w)[None, :]), kernel)
    return np.abs(np.fft.rfft2(pad)) ** 2


def contrast_of(kernel_rgb: np.ndarray, spectra) -> np.ndarray:
    """Contrast transfer per band of a blur alone (no noise), pooled like :class:`PairStats`."""
    k = np.tensordot(_LUMA, kernel_rgb.astype(np.float64), axes=1)
    num = np.zeros(len(BANDS))
    den = np.zeros(len(BANDS))
    cache: dict[tuple[int, int], np.ndarray] = {}
    for p, shape, band in spectra:
        if shape not in cache:
            cache[shape] = _otf2(k, shape)
        m = cache[shape]
        for i in range(len(BANDS)):
            sel = band == i
            num[i] += (p[sel] * m[sel]).sum()
            den[i] += p[sel].sum()
    return np.sqrt(num / np.maximum(den, 1e-30))


def fit_blur(settings: dict[str, Any], data, target: list[float], short: int) -> tuple[dict[str, Any], float]:
    """Step 3: the grid point whose contrast transfer is nearest the target's."""
    spectra = _spectra(data)
    t = np.log(np.asarray(target)[list(FIT_BANDS)])
    best, best_loss = {}, math.inf
    for pixel_um, opaque in track(list(itertools.product(PIXEL_UM, OPAQUE)), "fitting blur"):
        base = _udc({**settings, "pixel_um": pixel_um, "opaque_transmittance": opaque, "scatter": 0.0})
        diff = base.kernel_for(short, short)
        f = base.scale_for(short, short)
        for scatter, sp in itertools.product(SCATTER, SCATTER_PX):
            kern = add_scatter(diff, scatter, sp * f) if scatter > 0 else diff
            c = contrast_of(kern, spectra)[list(FIT_BANDS)]
            loss = float(((np.log(np.maximum(c, 1e-6)) - t) ** 2).sum()) + GHOST_WEIGHT * psf_ghost(kern) ** 2
            if loss < best_loss:
                best_loss = loss
                best = {"pixel_um": pixel_um, "opaque_transmittance": opaque, "scatter": scatter,
                        "scatter_px": sp}
    return best, best_loss


def noise_sums_unpaired(img: np.ndarray) -> np.ndarray:
    """Flat-region noise sums of a real capture without a reference: its own 5 x 5 median
    stands in for the clean image (flat where that varies least)."""
    return flat_noise_sums(cv2.medianBlur(img, 5), img)


def _binned(settings: dict[str, Any], k: float) -> dict[str, Any]:
    """``settings`` for output pixels that each bin ``k`` times the light of the preset's: photon
    range and full well times ``k``, read noise times ``sqrt(k)`` (it adds in quadrature). The
    clipping level relative to white stays; only the noise falls, as ``1 / sqrt(k)``."""
    return {**settings, "photons": tuple(float(f"{v * k:.4g}") for v in settings["photons"]),
            "full_well_e": float(f"{settings['full_well_e'] * k:.4g}"),
            "read_noise_e": float(f"{settings['read_noise_e'] * math.sqrt(k):.4g}")}


def flat_patch_noise(udc: UDC, seed: int = 0, size: int = 64) -> np.ndarray:
    """The simulator's own noise per brightness bin, measured on flat grey patches (so no
    scene texture counts as noise): one patch per bin centre, pooled like :func:`flat_noise`."""
    from .metrics import NOISE_BINS

    mid = 0.5 * (udc.settings.exposure[0] + udc.settings.exposure[1])
    sums = np.zeros((len(NOISE_BINS) - 1, 2))
    for i, (lo, hi) in enumerate(zip(NOISE_BINS[:-1], NOISE_BINS[1:])):
        level = int(np.clip(round(0.5 * (lo + hi) / mid), 1, 255))
        patch = np.full((size, size, 3), level, np.uint8)
        for j in range(4):
            sums += flat_noise_sums(patch, simulate(udc, patch, f"flat-{i}-{j}", seed))
    return noise_from_sums(sums)


def fit_photons(settings: dict[str, Any], real_noise: np.ndarray, seed: int = 0) -> tuple[dict[str, Any], float]:
    """Step 4: bin the sensor (:func:`_binned`) so the simulator's noise on flat patches
    matches ``real_noise`` (per brightness bin, NaN where unmeasured): the median ratio over
    the bins both measure is 1. Returns the settings and ``k``."""

    def ratio(k: float) -> float:
        sim = flat_patch_noise(_udc(_binned(settings, k)), seed)
        r = [s / t for s, t in zip(sim, real_noise) if math.isfinite(s) and math.isfinite(t) and t > 0]
        return float(np.median(r)) if r else 1.0

    lo, hi = math.log(1e-3), math.log(1e5)
    for _ in track(range(14), "fitting photons"):
        mid = 0.5 * (lo + hi)
        if ratio(math.exp(mid)) > 1.0:  # too noisy: more light per output pixel
            lo = mid
        else:
            hi = mid
    k = float(f"{math.exp(0.5 * (lo + hi)):.4g}")
    return _binned(settings, k), k


def fit_udc(pairs: list[Pair], preset: str = "toled", *, short: int = 100, overrides: dict[str, Any] | None = None,
            noise_real: list[np.ndarray] | None = None, seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit ``preset`` to ``pairs`` (steps 1-3) and, given real captures, its noise (step 4).

    Returns ``(settings for a preset file, fit record)``.
    """
    settings: dict[str, Any] = {"display": preset, **(overrides or {})}
    resolved = dataclasses.asdict(_udc(settings).settings)
    data = [(c, r) for _, c, r in iter_pairs(pairs, short)]
    target = PairStats()
    for c, r in data:
        target.add(c, r)
    real = target.summary()
    # Blur first: the contrast transfer is brightness-normalised, and the colour and exposure
    # the blur leaves depend on it (a wide red PSF, clipped highlights).
    blur, loss = fit_blur(settings, data, real["contrast"], short)
    settings.update(blur)
    exposure, _ = fit_exposure(_plain(settings), data)
    settings["material_transmittance"] = tuple(fit_colour(settings, data, 0.5 * (exposure[0] + exposure[1])))
    exposure, per_pair = fit_exposure(_plain(settings), data)
    settings["exposure"] = tuple(exposure)
    record: dict[str, Any] = {"per_pair_exposure": {p.name: round(e, 3) for p, e in zip(pairs, per_pair)},
                              "blur_loss": round(loss, 5)}
    if noise_real:
        real_sums = sum(noise_sums_unpaired(resize_short(img, short)) for img in noise_real)
        base = {**settings, **{k: resolved[k] for k in ("photons", "full_well_e", "read_noise_e") if k not in settings}}
        settings, record["sensor_binning"] = fit_photons(base, noise_from_sums(real_sums), seed)
        record["real_noise"] = [round(float(v), 4) for v in noise_from_sums(real_sums)]
    keep = ("panel", "spectral", "reference_px", "psf_max_px", "transmittance_scale", "photons",
            "full_well_e", "read_noise_e")
    out = {k: resolved[k] for k in keep}
    out.update({k: v for k, v in settings.items() if k in PRESET_KEYS})
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items()}, record
