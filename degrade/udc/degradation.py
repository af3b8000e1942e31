"""The UDC degradation: settings, per-image parameter ranges and the batched pipeline.

Image formation, in linear light (each step is a function in :mod:`degrade.udc.ops`)::

    x    = srgb_to_linear(image)                       # the scene
    x    = flare_boost(x, flare_gain)                  # optional: clipped highlights' energy
    x    = attenuate(x, t)                             # panel: brightness loss and colour cast
    x    = psf_convolve(x, psf)                        # diffraction through the panel
    x    = sensor_noise(x, photons)                    # shot + read noise at the light that is left
    x    = camera_gain(x, exposure / mean(t))          # the camera brightens it again (noise too)
    out  = linear_to_srgb8(x)                          # sRGB, 8 bits

Per-image parameters (the manifest's columns) and their default ranges:

* ``trans_r``, ``trans_g``, ``trans_b`` -- nominal transmittance x U(0.85, 1.15) (common) x
  U(0.95, 1.05) (per channel): panel-to-panel and viewing-angle variation of the brightness
  loss (Zhou et al. 2021: ~20 % T-OLED, ~2.9 % P-OLED) and of its colour cast.
* ``photons`` -- log-uniform, ``toled`` 1.5e3..5e4, ``poled`` 1e4..2e5: electrons of a white
  pixel without the panel. Behind a T-OLED ~300..10,000 remain (the CMU UPC photon levels, SNR
  24..40 dB); P-OLED captures, exposed longer, keep ~270..5,400 -- noisier, as real ones are.
* ``exposure`` -- U(0.60, 0.95) ``toled``, U(0.45, 0.85) ``poled``: output over clean
  brightness; the camera's gain does not restore all the lost light (UDC captures look darker).
* ``flare_gain`` -- log-uniform 8..100, only with ``flare``: DISCNet's boost of clipped blobs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fercore.errors import ConfigError

from ..base import Degradation
from ..settings import check_keys
from . import ops
from .displays import PRESETS, Display, get_display, load_display_mask
from .psf import PsfSettings, display_psf, load_psf_file, psf_summary

#: Bump when the pipeline's maths change (recorded in run records).
UDC_VERSION = 1

#: Preset-specific default ranges (see the module docstring).
PRESET_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "toled": {"photons": (1500.0, 50000.0), "exposure": (0.60, 0.95)},
    "poled": {"photons": (10000.0, 200000.0), "exposure": (0.45, 0.85)},
}


@dataclass(frozen=True)
class UDCSettings:
    """Every setting of the UDC simulator (``--set KEY=VALUE`` on the command line).

    Display and optics (``None`` = the preset's value):
        display: preset, ``toled`` or ``poled``.
        display_mask: PNG of one unit cell of another panel (white = open); lens and
            material from ``display``.
        pitch_um, pixel_um, aperture_mm, focal_mm: cell pitch, sensor size of one image pixel,
            lens aperture diameter and focal length.
        material_transmittance: R, G, B transmittance of the panel's open areas' material.
        opaque_transmittance: intensity transmittance of the cell's closed areas (0 = opaque;
            a transparent OLED's emitters let some light through).
        psf: measured PSF (``H x W x 3`` ``.npy``) used instead of the computed one;
            ``psf_scale`` resizes it to the images' scale.
        spectral, spectral_samples, psf_energy, psf_max_px: see :class:`~degrade.udc.psf.PsfSettings`.
        border: ``reflect`` | ``replicate`` | ``zeros``: the scene beyond the frame.
        fft_backend: ``auto`` (OpenCV's DFT for the exact 8-bit path on the CPU, ``torch.fft``
            otherwise), ``torch`` or ``opencv``. Backends agree to ~1e-6 in linear light,
            which can flip a rare 8-bit code at a rounding tie: use one backend (one device
            type) for a set that must be byte-identical.
    Per-image ranges:
        transmittance_scale: common factor on the nominal transmittance, uniform.
        transmittance_jitter: per-channel relative jitter (+-), uniform.
        photons: electrons of a white pixel without the panel, log-uniform (``None``: preset).
        exposure: output / clean brightness, uniform (``None``: preset).
    Sensor:
        noise: ``normal`` (Poisson-Gaussian, shot noise in Gaussian form; default),
            ``poisson`` (exact Poisson shot noise; ~10x slower) or ``none``.
        read_noise_e, full_well_e: read noise (electrons RMS) and full-well capacity.
    Flare (off by default: the LRDif sets were made without it):
        flare, flare_gain (log-uniform range), flare_threshold, flare_blob_px.
    """

    display: str = "toled"
    display_mask: str | None = None
    pitch_um: float | None = None
    pixel_um: float | None = None
    aperture_mm: float | None = None
    focal_mm: float | None = None
    material_transmittance: tuple[float, float, float] | None = None
    opaque_transmittance: float | None = None
    psf: str | None = None
    psf_scale: float = 1.0
    spectral: str = "peak"
    spectral_samples: int = 5
    psf_energy: float = 0.98
    psf_max_px: int = 63
    border: str = "reflect"
    fft_backend: str = "auto"
    transmittance_scale: tuple[float, float] = (0.85, 1.15)
    transmittance_jitter: float = 0.05
    photons: tuple[float, float] | None = None
    exposure: tuple[float, float] | None = None
    noise: str = "normal"
    read_noise_e: float = 4.87
    full_well_e: float = 15506.0
    flare: bool = False
    flare_gain: tuple[float, float] = (8.0, 100.0)
    flare_threshold: float = 0.95
    flare_blob_px: int = 9

    def resolved(self) -> UDCSettings:
        """Fill the preset-dependent ranges (``photons``, ``exposure``)."""
        base = PRESET_RANGES.get(self.display, PRESET_RANGES["toled"])
        return dataclasses.replace(self, photons=self.photons or base["photons"],
                                   exposure=self.exposure or base["exposure"])

    def validate(self) -> None:
        def rng(name: str, lo_min: float, hi_max: float = math.inf) -> None:
            v = getattr(self, name)
            if v is None or len(v) != 2 or not (lo_min <= v[0] <= v[1] <= hi_max):
                raise ConfigError(f"{name}={v} must be LO:HI with {lo_min} <= LO <= HI <= {hi_max}",
                                  flag=f"--set {name}")

        rng("transmittance_scale", 1e-6)
        rng("photons", 1e-6)
        rng("exposure", 1e-6, 10.0)
        rng("flare_gain", 1.0)
        if not 0 <= self.transmittance_jitter < 1:
            raise ConfigError("transmittance_jitter must be in [0, 1)", flag="--set transmittance_jitter")
        if self.noise not in ("normal", "poisson", "none"):
            raise ConfigError(f"noise={self.noise!r}; use normal, poisson or none", flag="--noise")
        if self.fft_backend not in ("auto", "torch", "opencv"):
            raise ConfigError(f"fft_backend={self.fft_backend!r}; use auto, torch or opencv", flag="--set fft_backend")
        if self.border not in ("reflect", "replicate", "zeros"):
            raise ConfigError(f"border={self.border!r}; use reflect, replicate or zeros", flag="--set border")
        if self.read_noise_e < 0 or self.full_well_e <= 0:
            raise ConfigError("read_noise_e must be >= 0 and full_well_e > 0", flag="--set")
        if not 0 < self.flare_threshold < 1 or self.flare_blob_px < 1 or self.flare_blob_px % 2 == 0:
            raise ConfigError("flare_threshold must be in (0, 1) and flare_blob_px odd", flag="--set")
        for name in ("pitch_um", "pixel_um", "aperture_mm", "focal_mm"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ConfigError(f"{name} must be > 0, got {v}", flag=f"--set {name}")
        if self.opaque_transmittance is not None and not 0 <= self.opaque_transmittance < 1:
            raise ConfigError("opaque_transmittance must be in [0, 1)", flag="--set opaque_transmittance")
        mt = self.material_transmittance
        if mt is not None and (len(mt) != 3 or not all(0 < m <= 1 for m in mt)):
            raise ConfigError("material_transmittance must be three values in (0, 1]",
                              flag="--set material_transmittance")

    def psf_settings(self) -> PsfSettings:
        return PsfSettings(spectral=self.spectral, spectral_samples=self.spectral_samples,
                           energy=self.psf_energy, max_px=self.psf_max_px)


def build_display(s: UDCSettings) -> Display:
    """The :class:`Display` the settings describe (preset, optional mask, overrides)."""
    base = get_display(s.display)
    if s.display_mask:
        base = load_display_mask(s.display_mask, base, pitch_um=s.pitch_um)
    over: dict[str, Any] = {}
    for name in ("pitch_um", "pixel_um", "aperture_mm", "focal_mm"):
        if getattr(s, name) is not None:
            over[name] = float(getattr(s, name))
    if s.material_transmittance is not None:
        over["material_transmittance"] = tuple(float(m) for m in s.material_transmittance)
    if s.opaque_transmittance is not None:
        over["opaque_transmittance"] = float(s.opaque_transmittance)
    return dataclasses.replace(base, **over) if over else base


class UDC(Degradation):
    """Physically based under-display-camera degradation (see the module docstring)."""

    kind = "udc"

    def __init__(self, settings: UDCSettings | None = None):
        s = (settings or UDCSettings()).resolved()
        s.validate()
        s.psf_settings().validate()
        self.settings = s
        self.display = build_display(s)
        if s.psf:
            kernel = load_psf_file(s.psf, s.psf_settings(), scale=s.psf_scale)
        else:
            kernel = display_psf(self.display, s.psf_settings())
        self.psf_np = kernel
        self.psf = torch.from_numpy(kernel)
        self.nominal = self.display.nominal_transmittance()
        peak = max(self.nominal) * s.transmittance_scale[1] * (1 + s.transmittance_jitter)
        if peak > 1:
            if s.display_mask and s.transmittance_scale == type(s)().transmittance_scale:
                raise ConfigError(f"{s.display_mask}: the mask lets through {max(self.nominal):.3f} of the light, "
                                  f"so the default transmittance_scale up to {s.transmittance_scale[1]} could "
                                  "exceed 1; use a mask with less open (white) area, or lower the range with "
                                  "--set transmittance_scale=LO:HI", flag="--display-mask")
            raise ConfigError(f"transmittance could reach {peak:.3f} > 1 with these ranges; lower "
                              "transmittance_scale or transmittance_jitter", flag="--set transmittance_scale")
        self._otf: dict[tuple[int, int, str], Tensor] = {}
        self._opencv = ops.OpenCVConvolver(kernel, s.border)

    # --------------------------------------------------------------- contract
    def describe(self) -> dict[str, Any]:
        s = asdict(self.settings)
        for key in ("psf", "display_mask"):  # file contents are pinned by the hashes below
            if s[key]:
                s[key] = os.path.basename(s[key])
        return {
            "kind": self.kind,
            "version": UDC_VERSION,
            "preset": self.display.name,
            "settings": _jsonable(s),
            "display": _jsonable(self.display.describe()),
            "nominal_transmittance": [round(t, 6) for t in self.nominal],
            "psf": {"source": "file" if self.settings.psf else "computed",
                    "sha256": hashlib.sha256(self.psf_np.tobytes()).hexdigest(),
                    **psf_summary(self.psf_np)},
        }

    def param_names(self) -> list[str]:
        names = ["trans_r", "trans_g", "trans_b", "photons", "exposure"]
        return names + ["flare_gain"] if self.settings.flare else names

    def sample_params(self, rng: np.random.Generator) -> dict[str, float]:
        s = self.settings
        scale = rng.uniform(*s.transmittance_scale)
        jit = rng.uniform(1 - s.transmittance_jitter, 1 + s.transmittance_jitter, size=3)
        out = {f"trans_{c}": float(n * scale * j) for c, n, j in zip("rgb", self.nominal, jit)}
        out["photons"] = float(math.exp(rng.uniform(math.log(s.photons[0]), math.log(s.photons[1]))))
        out["exposure"] = float(rng.uniform(*s.exposure))
        if s.flare:
            out["flare_gain"] = float(math.exp(rng.uniform(math.log(s.flare_gain[0]), math.log(s.flare_gain[1]))))
        return out

    def apply(self, images: Tensor, params: dict[str, Tensor], generators: list[torch.Generator]) -> Tensor:
        """Float path: sRGB [0, 1] in and out (differentiable with ``noise="normal"``)."""
        return ops.linear_to_srgb(self.linear(ops.srgb_to_linear(images), params, generators))

    def apply_uint8(self, images: Tensor, params: dict[str, Tensor], generators: list[torch.Generator]) -> Tensor:
        """Exact 8-bit path used to rebuild datasets (look-up tables instead of ``pow``)."""
        backend = self.fft_backend_for(images.device)
        b, _, h, w = images.shape
        # Work through a large batch in chunks of ~1M values so the intermediates stay in
        # cache on the CPU; each image's result does not depend on its chunk.
        step = b if images.device.type != "cpu" else max(1, (1 << 20) // (3 * h * w))
        outs = []
        for i in range(0, b, step):
            sl = slice(i, i + step)
            p = {k: v[sl] for k, v in params.items()}
            lin = self.linear(ops.srgb8_to_linear(images[sl]), p, generators[sl], backend=backend)
            outs.append(ops.linear_to_srgb8(lin))
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def fft_backend_for(self, device: torch.device) -> str:
        """The convolution backend the 8-bit path uses on ``device`` (see ``fft_backend``)."""
        b = self.settings.fft_backend
        if b == "auto":
            return "opencv" if device.type == "cpu" else "torch"
        if b == "opencv" and device.type != "cpu":
            raise ConfigError("fft_backend=opencv runs on the CPU only; use auto or torch with --device cuda",
                              flag="--set fft_backend")
        return b

    # ------------------------------------------------------------- pipeline
    def otf(self, h: int, w: int, device: torch.device) -> Tensor:
        """The PSF's transfer function for ``h x w`` images (cached per size and device)."""
        key = (h, w, str(device))
        if key not in self._otf:
            shape = ops.fft_shape_for(h, w, self.psf.shape[-1])
            self._otf[key] = ops.psf_otf(self.psf.to(device), shape)
        return self._otf[key]

    def linear(self, x: Tensor, params: dict[str, Tensor], generators: list[torch.Generator], *,
               backend: str = "torch") -> Tensor:
        """Linear scene ``(B, 3, H, W)`` -> linear camera output in [0, 1].

        ``backend="opencv"`` blurs with :class:`~degrade.udc.ops.OpenCVConvolver` (CPU, not
        differentiable); the default torch path is differentiable and runs on any device.
        """
        s = self.settings
        b, _, h, w = x.shape
        if len(generators) != b:
            raise ValueError(f"need one generator per image ({b}), got {len(generators)}")
        if s.flare:
            x = ops.flare_boost(x, params["flare_gain"], threshold=s.flare_threshold, blob_px=s.flare_blob_px)
        t = torch.stack([params["trans_r"], params["trans_g"], params["trans_b"]], dim=1)
        x = ops.attenuate(x, t)
        if backend == "opencv":
            x = self._opencv(x)
        else:
            x = ops.psf_convolve(x, self.psf, border=s.border, otf=self.otf(h, w, x.device))
        if s.noise == "normal":
            z = ops.standard_normal(generators, (3, h, w), x.device)
            x = ops.sensor_noise(x, params["photons"], z, read_noise_e=s.read_noise_e, full_well_e=s.full_well_e)
        elif s.noise == "poisson":
            x = ops.sensor_noise_poisson(x, params["photons"], generators, read_noise_e=s.read_noise_e,
                                         full_well_e=s.full_well_e)
        gain = params["exposure"] / ((t[:, 0] + t[:, 1] + t[:, 2]) / 3.0)
        return ops.camera_gain(x, gain)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, float):
        return float(v)
    return v


def make_udc(display: str = "toled", **settings: Any) -> UDC:
    """A configured UDC degradation: ``make_udc("poled", flare=True, photons=(2e3, 2e4))``.

    ``settings`` are :class:`UDCSettings` fields; an unknown one raises a clear error.
    """
    check_keys(settings, UDCSettings, "udc")
    if display not in PRESETS:
        get_display(display)  # raises the standard error
    return UDC(UDCSettings(display=display, **settings))
