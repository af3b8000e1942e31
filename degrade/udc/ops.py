"""The stages of the UDC image formation as pure, batched PyTorch functions (kornia style).

Each function takes images ``(B, 3, H, W)`` and per-sample parameter tensors ``(B,)`` or
``(B, 3)`` on the images' device, checks its input and says how to fix a bad call. Chained
they give the whole simulator (:class:`~degrade.udc.degradation.UDC`); each is also usable
alone, e.g. as a training augmentation. All are differentiable except the 8-bit
quantisation (which has a straight-through option) and exact Poisson sampling.

Light is linear and relative: 1.0 is the sensor signal of a white scene point *without* the
panel at the reference exposure.

Exactness. The dataset builder needs the same bytes whatever the batch size. Every per-pixel
operation used on that path is therefore either exactly rounded IEEE arithmetic
(``+ - * / sqrt``, min/max, comparisons), a table look-up, or an FFT (whose per-transform
results do not depend on the batch on the CPU); transcendental functions such as ``pow`` --
whose vectorised and scalar code paths can differ in the last bit -- only enter through
look-up tables (:func:`srgb8_to_linear`, :func:`linear_to_srgb8`). Complex products are
written out in real arithmetic for the same reason.
"""

from __future__ import annotations

from functools import lru_cache

import kornia
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from fercore.checks import TensorError, check_images, per_sample

from ..base import Noise, standard_normal

__all__ = [
    "srgb_to_linear", "linear_to_srgb", "srgb8_to_linear", "linear_to_srgb8", "attenuate",
    "flare_boost", "psf_otf", "psf_convolve", "fft_shape_for", "standard_normal", "sensor_noise",
    "sensor_noise_poisson", "camera_gain", "quantize_8bit",
]


# ----------------------------------------------------------------------------- checks
def _check_images(x: Tensor, name: str = "images") -> None:
    """A ``(B, 3, H, W)`` float tensor; linear light may exceed 1, so no range check."""
    check_images(x, name, unit_range=False)


# ------------------------------------------------------------------------ colour space
def srgb_to_linear(x: Tensor) -> Tensor:
    """sRGB in [0, 1] -> linear light in [0, 1] (IEC 61966-2-1; kornia's ``rgb_to_linear_rgb``)."""
    _check_images(x)
    return kornia.color.rgb_to_linear_rgb(x)


def linear_to_srgb(x: Tensor) -> Tensor:
    """Linear light -> sRGB in [0, 1]; values outside [0, 1] are clipped first (a camera's output range)."""
    _check_images(x)
    return kornia.color.linear_rgb_to_rgb(x.clamp(0.0, 1.0))


def _srgb_decode64(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


@lru_cache(maxsize=8)
def _srgb8_lut(device: str) -> Tensor:
    lut = _srgb_decode64(np.arange(256, dtype=np.float64) / 255.0)
    return torch.from_numpy(lut.astype(np.float32)).to(device)


#: Bins of the uniform grid on [0, 1] used by :func:`linear_to_srgb8`. Their width (1/4096)
#: is below the smallest gap between two code thresholds (1 / (255 * 12.92) ~ 1/3294), so
#: each bin holds at most one threshold.
_ENC_BINS = 4096


@lru_cache(maxsize=8)
def _srgb8_encoder(device: str) -> tuple[Tensor, Tensor]:
    # thr[k]: the linear value at which the 8-bit code changes from k to k + 1 (k = 0..254).
    thr = _srgb_decode64((np.arange(255, dtype=np.float64) + 0.5) / 255.0).astype(np.float32)
    lo = (np.arange(_ENC_BINS + 1, dtype=np.float64) / _ENC_BINS).astype(np.float32)  # exact
    hi = (np.arange(1, _ENC_BINS + 2, dtype=np.float64) / _ENC_BINS).astype(np.float32)
    base = np.searchsorted(thr, lo, side="right")  # code of the bin's start (thresholds <= lo)
    inside = np.searchsorted(thr, hi, side="left") - np.searchsorted(thr, lo, side="right")
    assert inside.max() <= 1, "encoder bins too wide"
    nxt = np.full(_ENC_BINS + 1, np.inf, dtype=np.float32)  # the threshold inside the bin, if any
    has = base < 255
    nxt[has] = thr[base[has]]
    nxt[nxt >= hi] = np.inf
    return torch.from_numpy(base.astype(np.int16)).to(device), torch.from_numpy(nxt).to(device)


def srgb8_to_linear(img: Tensor) -> Tensor:
    """8-bit sRGB ``(B, 3, H, W)`` uint8 -> linear float32 by a 256-entry table (exact, fast).

    On the CPU the look-up runs in OpenCV (``cv2.LUT``, several times faster than indexing a
    tensor); the values are the same either way.
    """
    if img.dtype != torch.uint8:
        raise TensorError(f"expected uint8 codes, got {img.dtype}; use srgb_to_linear for float images", flag="srgb8_to_linear: img")
    lut = _srgb8_lut(str(img.device))
    if img.device.type != "cpu":
        return lut[img.long()]
    import cv2

    nhwc = img.permute(0, 2, 3, 1)
    if nhwc.is_contiguous():  # images that came from H x W x 3 arrays: keep their layout
        arr = nhwc.numpy()
        out = cv2.LUT(arr.reshape(-1, arr.shape[-1]), lut.numpy()).reshape(arr.shape)
        return torch.from_numpy(out).permute(0, 3, 1, 2)
    arr = img.contiguous().numpy()
    return torch.from_numpy(cv2.LUT(arr.reshape(-1, arr.shape[-1]), lut.numpy()).reshape(arr.shape))


def linear_to_srgb8(x: Tensor) -> Tensor:
    """Linear light -> 8-bit sRGB codes (uint8), i.e. ``round(255 * srgb(clip(x, 0, 1)))``.

    Exact and without ``pow`` per pixel, so bit-identical whatever the batch: ``x`` falls in
    one of 4096 equal bins of [0, 1] (``floor(4096 x)`` is exact in float32); a table gives the
    code at the bin's start and the one code threshold inside the bin, if any, and a single
    comparison finishes. Thresholds are the linear values of the code boundaries
    ``(k + 0.5) / 255``, computed in float64; ties round up.
    """
    base, nxt = _srgb8_encoder(str(x.device))
    if x.device.type == "cpu" and not x.requires_grad:  # NumPy's take is faster; same values
        xc = np.clip(x.detach().numpy(), 0.0, 1.0)
        idx = (xc * np.float32(_ENC_BINS)).astype(np.intp)
        code = np.take(base.numpy(), idx) + (xc >= np.take(nxt.numpy(), idx))
        return torch.from_numpy(code.astype(np.uint8))
    xc = x.clamp(0.0, 1.0)
    idx = (xc * _ENC_BINS).long()
    code = base[idx] + (xc >= nxt[idx]).to(torch.int16)
    return code.to(torch.uint8)


# ---------------------------------------------------------------------------- stages
def attenuate(x: Tensor, transmittance: Tensor) -> Tensor:
    """Light passing the panel: linear ``x`` times the per-sample, per-channel transmittance.

    Args:
        x: ``(B, 3, H, W)`` linear light.
        transmittance: ``(B, 3)`` (or ``(B,)``, or a scalar) in (0, 1]; brightness
            attenuation and colour cast of the panel.
    """
    _check_images(x)
    b = x.shape[0]
    t = transmittance
    if isinstance(t, Tensor) and t.ndim == 1 and t.shape[0] == b:
        t = t[:, None].expand(b, 3)
    t = per_sample(t, b, "transmittance", x, width=3, lo=0.0, hi=1.0, lo_open=True)
    return x * t[:, :, None, None]


def flare_boost(x: Tensor, gain: Tensor | float, *, threshold: float = 0.95, blob_px: int = 9) -> Tensor:
    """Restore the energy of clipped highlights before the PSF spreads it (flare).

    A clipped pixel in an 8-bit image hides a brighter scene: the brighter the blob, the
    more light the PSF's side lobes spread (DISCNet, CVPR 2021, boosts such blobs x8..x100 by
    size). Here a pixel's saturation ``m`` ramps from 0 at luminance ``threshold`` to 1 at 1;
    the blob measure ``s`` is the mean of ``m`` over a ``blob_px`` window, and the pixel is
    multiplied by ``1 + (gain - 1) * m * s``: small specks get little, large clipped areas up to
    ``gain``.

    Args:
        x: ``(B, 3, H, W)`` linear light in [0, 1].
        gain: ``(B,)`` or scalar >= 1, the boost of a large fully clipped blob.
        threshold: luminance in (0, 1) where the ramp starts.
        blob_px: odd window side for the blob measure.
    """
    _check_images(x)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if blob_px < 1 or blob_px % 2 == 0:
        raise ValueError(f"blob_px must be a positive odd number, got {blob_px}")
    g = per_sample(gain, x.shape[0], "flare gain", x, lo=1.0)
    lum = x[:, 0:1] * 0.2126 + x[:, 1:2] * 0.7152 + x[:, 2:3] * 0.0722
    m = ((lum - threshold) / (1.0 - threshold)).clamp(0.0, 1.0)
    s = F.avg_pool2d(m, blob_px, stride=1, padding=blob_px // 2, count_include_pad=False)
    boost = (g[:, None, None, None] - 1.0) * (m * s) + 1.0
    return x * boost


def fft_shape_for(h: int, w: int, k: int) -> tuple[int, int]:
    """FFT size for an ``h x w`` image and a ``k x k`` kernel: the smallest sizes with prime
    factors 2, 3, 5, 7 that are >= ``h + k - 1`` and ``w + k - 1`` (no wrap-around, fast
    transforms). A function of the shapes only, so the bytes never depend on timing."""
    from .optics import next_fast_len

    return next_fast_len(h + k - 1, primes=(2, 3, 5, 7)), next_fast_len(w + k - 1, primes=(2, 3, 5, 7))


def psf_otf(psf: Tensor, fft_shape: tuple[int, int]) -> Tensor:
    """Optical transfer function of a PSF for one FFT size, in the form :func:`psf_convolve` uses.

    ``psf`` is ``(3, k, k)`` (shared) or ``(B, 3, k, k)`` (per sample), ``k`` odd, centred.
    Returns ``(2, ..., 3, Nh, Nw // 2 + 1, 2)``: for the OTF ``c + i d``, index 0 holds
    ``(c, c)`` and index 1 ``(-d, d)``, so that a spectrum ``(a, b)`` is multiplied as
    ``(a, b) * (c, c) + (b, a) * (-d, d)`` -- the complex product in exactly rounded real
    arithmetic (a fused complex kernel may round differently depending on the batch).
    """
    if psf.ndim not in (3, 4) or psf.shape[-3] != 3 or psf.shape[-1] != psf.shape[-2] or psf.shape[-1] % 2 == 0:
        raise TensorError(f"must be (3, k, k) or (B, 3, k, k) with k odd, got {tuple(psf.shape)}", flag="psf")
    k = psf.shape[-1]
    nh, nw = fft_shape
    pad = psf.new_zeros((*psf.shape[:-2], nh, nw))
    pad[..., :k, :k] = psf
    pad = torch.roll(pad, shifts=(-(k // 2), -(k // 2)), dims=(-2, -1))  # centre -> index 0
    spec = torch.view_as_real(torch.fft.rfft2(pad))
    c, d = spec[..., 0], spec[..., 1]
    return torch.stack((torch.stack((c, c), dim=-1), torch.stack((-d, d), dim=-1))).contiguous()


def psf_convolve(x: Tensor, psf: Tensor, *, border: str = "reflect", otf: Tensor | None = None) -> Tensor:
    """Blur each channel with its PSF by FFT, borders padded so nothing wraps around.

    Args:
        x: ``(B, 3, H, W)`` linear light.
        psf: ``(3, k, k)`` shared or ``(B, 3, k, k)`` per-sample kernels, ``k`` odd, each
            channel summing to 1 (optical axis at the centre).
        border: how the scene continues beyond the frame: ``"reflect"`` (mirror; default),
            ``"replicate"`` (edge pixels) or ``"zeros"`` (dark). The image is padded by
            ``k // 2`` on every side and the FFT is at least ``H + k - 1`` long, so the
            circular convolution never wraps. Reflection needs ``k // 2 < H, W``; smaller
            images fall back to ``replicate``.
        otf: :func:`psf_otf` of ``psf`` for :func:`fft_shape_for` ``(H, W, k)``, to reuse
            across batches.

    Returns:
        ``(B, 3, H, W)``: ``y[c] = x[c] * psf[c]`` (true convolution).
    """
    _check_images(x)
    _, _, h, w = x.shape
    k = psf.shape[-1]
    p = k // 2
    shape = fft_shape_for(h, w, k)
    if otf is None:
        otf = psf_otf(psf.to(device=x.device, dtype=x.dtype), shape)
    elif tuple(otf.shape[-3:-1]) != (shape[0], shape[1] // 2 + 1):
        raise ValueError(f"otf was made for another FFT size; expected {shape}")
    mode = {"reflect": "reflect", "replicate": "replicate", "zeros": "constant"}.get(border)
    if mode is None:
        raise ValueError(f"border must be 'reflect', 'replicate' or 'zeros', got {border!r}")
    if mode == "reflect" and (p >= h or p >= w):
        mode = "replicate"
    xp = F.pad(x, (p, p, p, p), mode=mode) if p else x
    spec = torch.view_as_real(torch.fft.rfft2(xp, s=shape))  # zero-filled up to the FFT size
    prod = spec * otf[0] + spec.flip(-1) * otf[1]
    y = torch.fft.irfft2(torch.view_as_complex(prod), s=shape)
    return y[..., p:p + h, p:p + w]


class OpenCVConvolver:
    """CPU fast path of :func:`psf_convolve` for the dataset builder: OpenCV's real DFT per plane.

    On CPU, OpenCV's DFT of these small sizes is about three times faster than
    ``torch.fft`` (measured by ``scripts/bench_degrade.py``); each image is transformed on its
    own, so the result cannot depend on the batch. Not differentiable (NumPy in between); the
    torch path serves training and GPUs. The PSF's spectra are cached per FFT size.
    """

    def __init__(self, psf: np.ndarray, border: str = "reflect"):
        import cv2

        if psf.ndim != 3 or psf.shape[0] != 3 or psf.shape[1] != psf.shape[2] or psf.shape[1] % 2 == 0:
            raise TensorError(f"must be (3, k, k) with k odd, got {psf.shape}", flag="psf")
        self.cv2 = cv2
        self.psf = np.ascontiguousarray(psf, dtype=np.float32)
        self.border = {"reflect": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE,
                       "zeros": cv2.BORDER_CONSTANT}[border]
        self._spectra: dict[tuple[int, int], list[np.ndarray]] = {}

    def spectra(self, shape: tuple[int, int]) -> list[np.ndarray]:
        if shape not in self._spectra:
            k = self.psf.shape[-1]
            out = []
            for c in range(3):
                pad = np.zeros(shape, np.float32)
                pad[:k, :k] = self.psf[c]
                pad = np.roll(pad, (-(k // 2), -(k // 2)), axis=(0, 1))
                out.append(self.cv2.dft(pad))  # CCS-packed real spectrum
            self._spectra[shape] = out
        return self._spectra[shape]

    def __call__(self, x: Tensor) -> Tensor:
        """``(B, 3, H, W)`` float32 CPU tensor -> blurred tensor of the same shape."""
        cv2 = self.cv2
        _check_images(x)
        b, _, h, w = x.shape
        k = self.psf.shape[-1]
        p = k // 2
        nh, nw = fft_shape_for(h, w, k)
        border = self.border
        if border == cv2.BORDER_REFLECT_101 and (p >= h or p >= w):
            border = cv2.BORDER_REPLICATE
        spectra = self.spectra((nh, nw))
        xs = x.detach().to(torch.float32).contiguous().numpy()
        out = np.empty((b, 3, h, w), np.float32)
        for i in range(b):
            for c in range(3):
                # Everything beyond h + 2p - 1 is never reached by a valid output (no wrap).
                plane = cv2.copyMakeBorder(xs[i, c], p, nh - h - p, p, nw - w - p, border)
                spec = cv2.mulSpectrums(cv2.dft(plane), spectra[c], 0)
                full = cv2.idft(spec, flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)
                out[i, c] = full[p:p + h, p:p + w]
        return torch.from_numpy(out)


def sensor_noise(x: Tensor, photons: Tensor | float, normal: Tensor, *, read_noise_e: float = 4.87,
                 full_well_e: float = 15506.0) -> Tensor:
    """Poisson-Gaussian sensor noise, shot noise in its Gaussian form (exact mean and variance).

    The pixel collects ``e = photons * x`` electrons (``x`` = linear light after the panel and
    the blur, ``photons`` = electrons of a white pixel without the panel). Shot noise has
    variance ``e`` and read noise ``read_noise_e^2``; both are drawn as one normal variate
    ``e + sqrt(e + read_noise_e^2) * z``, then clipped to ``[0, full_well_e]`` (the CMU UPC model,
    Yang & Sankaranarayanan 2021: read noise 4.87 e-, full well 15506 e-) and divided by
    ``photons`` again. The Gaussian form of the Poisson term (Foi et al. 2008) differs from the
    exact Poisson law only in its shape at a few electrons; :func:`sensor_noise_poisson` is exact.

    Args:
        x: ``(B, 3, H, W)`` linear light (>= 0).
        photons: ``(B,)`` electrons of a white pixel without the panel (> 0).
        normal: ``(B, 3, H, W)`` standard normal draws (see :func:`standard_normal`).

    Returns:
        ``(B, 3, H, W)`` noisy linear light, variance ``(photons * x + read^2) / photons^2``.
    """
    _check_images(x)
    if normal.shape != x.shape:
        raise TensorError(f"must have the images' shape {tuple(x.shape)}, got {tuple(normal.shape)}; draw it with "
                          "standard_normal(generators, x.shape[1:], x.device)", flag="normal")
    L = per_sample(photons, x.shape[0], "photons", x, lo=0.0, lo_open=True)[:, None, None, None]
    e = x.clamp(min=0.0) * L
    if not (e.requires_grad or normal.requires_grad):  # same arithmetic, in place (less memory traffic)
        sd = torch.add(e, read_noise_e * read_noise_e).sqrt_().mul_(normal.to(x.dtype))
        return e.add_(sd).clamp_(0.0, full_well_e).div_(L)
    noisy = e + torch.sqrt(e + read_noise_e * read_noise_e) * normal.to(x.dtype)
    return noisy.clamp(0.0, full_well_e) / L


def sensor_noise_poisson(x: Tensor, photons: Tensor | float, generators: Noise, *,
                         read_noise_e: float = 4.87, full_well_e: float = 15506.0) -> Tensor:
    """Exact Poisson shot noise plus Gaussian read noise (not differentiable in ``x``).

    ``Poisson(photons * x) + read_noise_e * N(0, 1)``, clipped to ``[0, full_well_e]``, divided
    by ``photons``. With one CPU generator per sample (a rebuilt set) each sample's read noise
    and Poisson counts come from its own generator, in that order, on the CPU; with one
    generator on the images' device (or ``None``: torch's global generator) both are drawn on
    the device for the whole batch.
    """
    _check_images(x)
    L = per_sample(photons, x.shape[0], "photons", x, lo=0.0, lo_open=True)[:, None, None, None]
    if not isinstance(generators, (list, tuple)):
        rate = (x.clamp(min=0.0) * L).detach()
        read = standard_normal(generators, tuple(x.shape[1:]), x.device, batch=x.shape[0], dtype=x.dtype)
        noisy = torch.poisson(rate, generator=generators if isinstance(generators, torch.Generator) else None)
        return (noisy + read_noise_e * read).clamp(0.0, full_well_e) / L
    if len(generators) != x.shape[0]:
        raise TensorError(f"need one generator per sample ({x.shape[0]}), got {len(generators)}", flag="generators")
    rate = (x.clamp(min=0.0) * L).detach().cpu()
    out = []
    for i, g in enumerate(generators):
        read = torch.randn(rate.shape[1:], generator=g)
        out.append(torch.poisson(rate[i], generator=g) + read_noise_e * read)
    noisy = torch.stack(out).to(device=x.device, dtype=x.dtype)
    return noisy.clamp(0.0, full_well_e) / L


def camera_gain(x: Tensor, gain: Tensor | float) -> Tensor:
    """The camera's digital/analogue gain: ``clip(gain * x, 0, 1)`` per sample.

    Applied after the noise, it amplifies signal and noise alike, as in a real camera that
    brightens a dim capture.
    """
    _check_images(x)
    g = per_sample(gain, x.shape[0], "gain", x, lo=0.0, lo_open=True)
    return (x * g[:, None, None, None]).clamp(0.0, 1.0)


def quantize_8bit(x: Tensor, *, straight_through: bool = False) -> Tensor:
    """Round [0, 1] values to the 256 levels of an 8-bit file (still float).

    With ``straight_through=True`` the gradient passes as if no rounding happened (for
    training through the simulator).
    """
    q = torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0
    if straight_through:
        return x + (q - x).detach()
    return q
