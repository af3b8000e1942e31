"""Fraunhofer optics of a camera behind a display: pupil -> point spread function (PSF).

A camera under a display sees the scene through two stops in its pupil plane: the lens
aperture (a disc of diameter ``D``) and the display panel in front of it, a periodic pattern
of transparent openings (one *unit cell* tiled with the pixel pitch). In the Fraunhofer
(far-field) approximation the field at the sensor is the Fourier transform of the pupil
function, so the intensity PSF for wavelength ``lambda`` is::

    PSF_lambda(x, y) = | FT[ aperture(u, v) * sqrt(T(u, v)) ] (x / (lambda f), y / (lambda f)) |^2

with ``T`` the panel's intensity transmittance and ``f`` the focal length (Zhou et al.,
CVPR 2021; Yang & Sankaranarayanan, ICCP 2021).

Sampling. A discrete Fourier transform of ``M`` pupil samples spaced ``d1`` gives sensor
samples spaced ``d2 = lambda f / (M d1)``. To put every wavelength on *the same* sensor grid,
:func:`fraunhofer_psf` keeps ``M`` and ``d2`` fixed and scales the pupil grid with the
wavelength, ``d1 = lambda f / (M d2)`` ("grids scaled with wavelength"). The pupil grid then
spans ``M d1 = lambda f / d2``, which must be at least twice ``D`` so the intensity (whose
band is twice the field's) is not aliased; :func:`sensor_sampling` picks ``d2`` accordingly.
The sensor field repeats every ``M d2``; :func:`psf_on_pixels` keeps only the central part and
integrates it over image pixels (box filter, as a pixel collects light over its area).

Everything here is NumPy/SciPy in float64: PSFs are computed once per preset and cached.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

#: Pupil transmittance as a function of pupil-plane coordinates (micrometres) -> [0, 1].
Transmission = Callable[[np.ndarray, np.ndarray], np.ndarray]


def next_fast_len(n: int, primes: tuple[int, ...] = (2, 3, 5)) -> int:
    """Smallest integer >= ``n`` whose prime factors are all in ``primes`` (fast FFT sizes)."""
    if n < 1:
        raise ValueError("n must be >= 1")
    m = n
    while True:
        r = m
        for p in primes:
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def open_aperture(_x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """No display in front of the lens: transmittance 1 everywhere."""
    return np.ones_like(y)


def fraunhofer_psf(transmission: Transmission, wavelength_um: float, *, focal_mm: float,
                   aperture_mm: float, sample_um: float, size: int,
                   supersample: int = 2) -> np.ndarray:
    """Intensity PSF of one wavelength on a ``size x size`` sensor grid spaced ``sample_um``.

    Args:
        transmission: panel intensity transmittance at pupil coordinates (um), in [0, 1].
        wavelength_um: wavelength in micrometres (e.g. 0.53).
        focal_mm: focal length of the lens.
        aperture_mm: diameter of the circular lens aperture ``D``.
        sample_um: sensor-plane sample spacing ``d2``.
        size: grid size ``M`` (use :func:`next_fast_len`).
        supersample: the panel transmittance of each pupil sample is the mean of
            ``supersample^2`` point evaluations across the sample (anti-aliased cell edges).

    Returns:
        ``(size, size)`` float64 array summing to 1, optical axis at index ``size // 2``.

    The pupil grid spacing is ``d1 = wavelength * f / (size * d2)``: it scales with the
    wavelength so that every wavelength lands on the same sensor grid.
    """
    if wavelength_um <= 0 or focal_mm <= 0 or aperture_mm <= 0 or sample_um <= 0 or size < 8:
        raise ValueError("wavelength, focal length, aperture, sampling must be > 0 and size >= 8")
    focal_um = focal_mm * 1e3
    radius_um = aperture_mm * 1e3 / 2
    d1 = wavelength_um * focal_um / (size * sample_um)
    if size * d1 < 2 * radius_um * 2 - 1e-9:
        raise ValueError(
            f"pupil grid {size * d1:.0f} um is smaller than twice the aperture "
            f"({4 * radius_um:.0f} um): the intensity would alias; use a finer sample_um")
    c = size // 2
    half = int(np.ceil(radius_um / d1)) + 1
    idx = np.arange(-half, half + 1)
    u = idx * d1
    uu, vv = np.meshgrid(u, u, indexing="xy")  # uu: x (columns), vv: y (rows)
    inside = (uu ** 2 + vv ** 2) <= radius_um ** 2
    offs = (np.arange(supersample) + 0.5) / supersample - 0.5
    trans = np.zeros_like(uu)
    for oy in offs:
        for ox in offs:
            trans += transmission(uu + ox * d1, vv + oy * d1)
    trans /= supersample ** 2
    amp = np.where(inside, np.sqrt(np.clip(trans, 0.0, 1.0)), 0.0)
    pupil = np.zeros((size, size), dtype=np.complex128)
    pupil[c - half:c + half + 1, c - half:c + half + 1] = amp
    field = sfft.fftshift(sfft.fft2(sfft.ifftshift(pupil), workers=-1))
    psf = field.real ** 2 + field.imag ** 2
    return psf / psf.sum()


def sensor_sampling(pixel_um: float, wavelengths_um: list[float], focal_mm: float,
                    aperture_mm: float) -> tuple[float, int]:
    """Sensor sample spacing ``d2`` and the odd number ``n`` of samples per image pixel.

    ``d2 = pixel_um / n`` with ``n`` the smallest odd integer that keeps the intensity
    unaliased for the shortest wavelength (``d2 <= lambda_min f / (2 D)``). ``n`` is odd so
    the centre sample of the central pixel sits on the optical axis.
    """
    lam = min(wavelengths_um)
    limit = lam * focal_mm * 1e3 / (2 * aperture_mm * 1e3)
    n = int(np.ceil(pixel_um / limit - 1e-9))
    if n % 2 == 0:
        n += 1
    return pixel_um / n, n


def bin_to_pixels(psf: np.ndarray, n: int, radius_px: int) -> np.ndarray:
    """Integrate a centred fine-grid PSF over ``n x n`` sample pixels.

    Returns the ``(2 radius_px + 1)^2`` pixel kernel centred on the optical axis (index
    ``size // 2`` of ``psf``); sums over each pixel's samples (box integration).
    """
    size = psf.shape[0]
    c = size // 2
    half = radius_px * n + n // 2
    if c - half < 0 or c + half + 1 > size:
        raise ValueError(f"grid of {size} samples cannot hold {2 * radius_px + 1} pixels of {n} samples")
    crop = psf[c - half:c + half + 1, c - half:c + half + 1]
    k = 2 * radius_px + 1
    return crop.reshape(k, n, k, n).sum(axis=(1, 3))


@dataclass(frozen=True)
class SpectralBand:
    """Wavelengths (um) and weights that make up one colour channel."""

    wavelengths_um: tuple[float, ...]
    weights: tuple[float, ...]


#: Peak wavelengths of the R, G, B channels (Yang & Sankaranarayanan, ICCP 2021).
PEAK_RGB_UM = (0.61, 0.53, 0.47)
#: Approximate half-widths (um) of typical Bayer colour filters, for ``spectral="band"``.
BAND_SIGMA_UM = (0.035, 0.035, 0.030)


def spectral_bands(mode: str, samples: int = 5) -> tuple[SpectralBand, SpectralBand, SpectralBand]:
    """The R, G, B bands: ``"peak"`` (one wavelength each) or ``"band"``.

    ``"band"`` samples ``samples`` wavelengths per channel within +-2 sigma of the peak and
    weights them by a Gaussian sensor response with the half-widths in
    :data:`BAND_SIGMA_UM` (an approximation of a colour filter array's response; no measured
    curve is shipped).
    """
    if mode == "peak":
        return tuple(SpectralBand((lam,), (1.0,)) for lam in PEAK_RGB_UM)  # type: ignore[return-value]
    if mode == "band":
        if samples < 2:
            raise ValueError("band mode needs at least 2 samples per channel")
        out = []
        for lam, sig in zip(PEAK_RGB_UM, BAND_SIGMA_UM):
            offs = np.linspace(-2 * sig, 2 * sig, samples)
            w = np.exp(-0.5 * (offs / sig) ** 2)
            out.append(SpectralBand(tuple(float(lam + o) for o in offs), tuple(float(x / w.sum()) for x in w)))
        return tuple(out)  # type: ignore[return-value]
    raise ValueError(f"unknown spectral mode {mode!r}; use 'peak' or 'band'")


def energy_radius(kernel: np.ndarray, energy: float) -> int:
    """Smallest half-width ``r`` whose centred ``(2r+1)^2`` square holds ``energy`` of every channel.

    ``kernel`` is ``(C, K, K)`` with ``K`` odd, each channel summing to ~1.
    """
    c, k, _ = kernel.shape
    mid = k // 2
    totals = kernel.sum(axis=(1, 2))
    for r in range(mid + 1):
        box = kernel[:, mid - r:mid + r + 1, mid - r:mid + r + 1].sum(axis=(1, 2))
        if np.all(box >= energy * totals - 1e-12):
            return r
    return mid


def mtf(psf: np.ndarray) -> np.ndarray:
    """Modulation transfer function ``|FFT(psf)|`` of a ``(K, K)`` PSF, DC at ``[0, 0]``, normalised to 1 at DC."""
    otf = np.fft.fft2(np.fft.ifftshift(psf))
    m = np.abs(otf)
    return m / m[0, 0]
