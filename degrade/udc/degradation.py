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

from ..base import Degradation, Noise
from ..presetfile import is_preset_path
from ..settings import check_keys
from ..severity import Identity
from . import ops
from .displays import PANELS, Display, get_display, load_display_mask
from .psf import PsfSettings, add_scatter, display_psf, load_psf_file, psf_summary

#: Bump when the pipeline's maths change (recorded in run records).
UDC_VERSION = 1

#: Values of the preset-dependent settings when neither the user nor the preset sets them.
FALLBACKS: dict[str, Any] = {
    "spectral": "peak", "spectral_samples": 5, "psf_energy": 0.98, "psf_max_px": 63, "reference_px": 0.0,
    "scatter": 0.0, "scatter_px": 10.0, "transmittance_scale": (0.85, 1.15), "transmittance_jitter": 0.05,
    "photons": (1500.0, 50000.0), "exposure": (0.60, 0.95), "read_noise_e": 4.87, "full_well_e": 15506.0,
}
#: Settings a preset file may set (everything but the per-run choices).
PRESET_KEYS = ("panel", "pitch_um", "pixel_um", "aperture_mm", "focal_mm", "material_transmittance",
               "opaque_transmittance", "spectral", "spectral_samples", "psf_energy", "psf_max_px",
               "reference_px", "scatter", "scatter_px", "transmittance_scale", "transmittance_jitter",
               "photons", "exposure", "read_noise_e", "full_well_e")


@dataclass(frozen=True)
class UDCSettings:
    """Every setting of the UDC simulator (``--set KEY=VALUE`` on the command line).

    ``None`` means "the preset's value" (and, where the preset is silent, :data:`FALLBACKS`);
    :meth:`resolved` fills them in.

    Preset:
        display: a shipped preset (``toled``, ``poled``: calibrated against real captures;
            ``toled-binary``, ``poled-binary``: the v0.1 presets) or a preset ``.json`` file
            (``fer-degrade calibrate --write-preset``).
        panel: the panel's cell geometry and material, ``toled`` or ``poled`` (see
            :mod:`~degrade.udc.displays`).
    Display and optics:
        display_mask: PNG of one unit cell of another panel (white = open); lens and
            material from ``panel``.
        pitch_um, pixel_um, aperture_mm, focal_mm: cell pitch, sensor size of one image pixel
            (of a face ``reference_px`` wide), lens aperture diameter and focal length.
        material_transmittance: R, G, B transmittance of the panel's open areas' material.
        opaque_transmittance: intensity transmittance of the cell's closed areas (0 = opaque;
            a transparent OLED's emitters let some light through).
        psf: measured PSF (``H x W x 3`` ``.npy``) used instead of the computed one (and its
            scatter: a measured PSF holds the veil already); ``psf_scale`` resizes it to the
            images' scale (of a face ``reference_px`` wide).
        spectral, spectral_samples, psf_energy, psf_max_px: see :class:`~degrade.udc.psf.PsfSettings`
            (``psf_max_px`` at the reference size; it scales with the image).
    Scale:
        reference_px: face width (pixels) at which ``pixel_um`` and ``scatter_px`` hold; other
            sizes get the same degradation relative to the face (the PSF is recomputed for
            ``pixel_um * reference_px / face_px``). ``0``: fixed in image pixels (v0.1).
        face_fraction: the face's width as a fraction of the image's shorter side (1 for
            aligned face crops; ``fer-degrade`` takes each source's documented default).
    Scatter:
        scatter: fraction of the light the panel scatters into a wide veil (haze), in [0, 1).
        scatter_px: the veil's Gaussian sigma in pixels (at the reference size).
    Per-image ranges:
        transmittance_scale: common factor on the nominal transmittance, uniform.
        transmittance_jitter: per-channel relative jitter (+-), uniform.
        photons: electrons of a white pixel without the panel, log-uniform.
        exposure: output / clean brightness, uniform.
    Sensor:
        noise: ``normal`` (Poisson-Gaussian, shot noise in Gaussian form; default),
            ``poisson`` (exact Poisson shot noise; ~10x slower) or ``none``.
        read_noise_e, full_well_e: read noise (electrons RMS) and full-well capacity.
    Flare (off by default: the LRDif sets were made without it):
        flare, flare_gain (log-uniform range), flare_threshold, flare_blob_px.
    Backend:
        border: ``reflect`` | ``replicate`` | ``zeros``: the scene beyond the frame.
        fft_backend: ``auto`` (OpenCV's DFT for the exact 8-bit path on the CPU, ``torch.fft``
            otherwise), ``torch`` or ``opencv``. Backends agree to ~1e-6 in linear light,
            which can flip a rare 8-bit code at a rounding tie: use one backend (one device
            type) for a set that must be byte-identical.
    """

    display: str = "toled"
    panel: str | None = None
    display_mask: str | None = None
    pitch_um: float | None = None
    pixel_um: float | None = None
    aperture_mm: float | None = None
    focal_mm: float | None = None
    material_transmittance: tuple[float, float, float] | None = None
    opaque_transmittance: float | None = None
    psf: str | None = None
    psf_scale: float = 1.0
    spectral: str | None = None
    spectral_samples: int | None = None
    psf_energy: float | None = None
    psf_max_px: int | None = None
    reference_px: float | None = None
    face_fraction: float = 1.0
    scatter: float | None = None
    scatter_px: float | None = None
    border: str = "reflect"
    fft_backend: str = "auto"
    transmittance_scale: tuple[float, float] | None = None
    transmittance_jitter: float | None = None
    photons: tuple[float, float] | None = None
    exposure: tuple[float, float] | None = None
    noise: str = "normal"
    read_noise_e: float | None = None
    full_well_e: float | None = None
    flare: bool = False
    flare_gain: tuple[float, float] = (8.0, 100.0)
    flare_threshold: float = 0.95
    flare_blob_px: int = 9

    def resolved(self, preset: dict[str, Any] | None = None) -> UDCSettings:
        """Fill every ``None`` from the preset (``display``, or the given preset-file dict),
        then from :data:`FALLBACKS`."""
        preset = preset if preset is not None else load_udc_preset(self.display)
        fill = {k: (tuple(v) if isinstance(v, list) else v) for k, v in preset["settings"].items()
                if getattr(self, k) is None}
        out = dataclasses.replace(self, **fill)
        rest = {k: v for k, v in FALLBACKS.items() if getattr(out, k) is None}
        if out.panel is None:
            rest["panel"] = self.display if self.display in PANELS else None
        return dataclasses.replace(out, **rest)

    def validate(self) -> None:
        def rng(name: str, lo_min: float, hi_max: float = math.inf) -> None:
            v = getattr(self, name)
            if v is None or len(v) != 2 or not (lo_min <= v[0] <= v[1] <= hi_max):
                raise ConfigError(f"{name}={v} must be LO:HI with {lo_min} <= LO <= HI <= {hi_max}",
                                  flag=f"--set {name}")

        if self.panel not in PANELS:
            raise ConfigError(f"panel={self.panel!r}; choose one of {', '.join(PANELS)}", flag="--set panel")
        rng("transmittance_scale", 1e-6)
        rng("photons", 1e-6)
        rng("exposure", 1e-6, 10.0)
        rng("flare_gain", 1.0)
        if self.psf_energy is None or self.spectral_samples is None:
            raise ConfigError("psf_energy and spectral_samples must be set", flag="--set")
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
        for name in ("pitch_um", "pixel_um", "aperture_mm", "focal_mm", "scatter_px"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {v}", flag=f"--set {name}")
        if not (math.isfinite(self.reference_px) and self.reference_px >= 0):
            raise ConfigError(f"reference_px must be >= 0 (0: PSF fixed in image pixels), got {self.reference_px}",
                              flag="--set reference_px")
        if not (math.isfinite(self.face_fraction) and 0 < self.face_fraction <= 4):
            raise ConfigError(f"face_fraction must be in (0, 4], got {self.face_fraction}",
                              flag="--set face_fraction")
        if not (math.isfinite(self.scatter) and 0 <= self.scatter < 1):
            raise ConfigError(f"scatter must be in [0, 1), got {self.scatter}", flag="--set scatter")
        if not (math.isfinite(self.psf_scale) and self.psf_scale > 0):
            raise ConfigError(f"psf scale must be a finite number > 0, got {self.psf_scale}", flag="--psf-scale")
        if self.opaque_transmittance is not None and not 0 <= self.opaque_transmittance < 1:
            raise ConfigError("opaque_transmittance must be in [0, 1)", flag="--set opaque_transmittance")
        mt = self.material_transmittance
        if mt is not None and (len(mt) != 3 or not all(0 < m <= 1 for m in mt)):
            raise ConfigError("material_transmittance must be three values in (0, 1]",
                              flag="--set material_transmittance")

    def psf_settings(self, max_px: int | None = None) -> PsfSettings:
        return PsfSettings(spectral=self.spectral, spectral_samples=self.spectral_samples,
                           energy=self.psf_energy, max_px=max_px or self.psf_max_px)


def load_udc_preset(name: str) -> dict[str, Any]:
    """A UDC preset (shipped name or ``.json`` path), its settings checked against :class:`UDCSettings`."""
    from ..presetfile import load_preset

    preset = load_preset("udc", name, flag="--display")
    unknown = sorted(set(preset["settings"]) - set(PRESET_KEYS))
    if unknown:
        raise ConfigError(f"{preset['path']}: unknown setting(s) {', '.join(unknown)}; a UDC preset may set "
                          f"{', '.join(PRESET_KEYS)}", flag="--display")
    return preset


def build_display(s: UDCSettings) -> Display:
    """The :class:`Display` the settings describe (panel, optional mask, overrides)."""
    base = get_display(s.panel)
    if s.display_mask:
        base = load_display_mask(s.display_mask, base, pitch_um=s.pitch_um)
    over: dict[str, Any] = {"name": s.display if s.display_mask is None else base.name}
    if is_preset_path(s.display):
        over["name"] = os.path.splitext(os.path.basename(s.display))[0]
    for name in ("pitch_um", "pixel_um", "aperture_mm", "focal_mm"):
        if getattr(s, name) is not None:
            over[name] = float(getattr(s, name))
    if s.material_transmittance is not None:
        over["material_transmittance"] = tuple(float(m) for m in s.material_transmittance)
    if s.opaque_transmittance is not None:
        over["opaque_transmittance"] = float(s.opaque_transmittance)
    return dataclasses.replace(base, **over)


def _odd(x: float) -> int:
    n = max(1, int(math.ceil(x)))
    return n if n % 2 else n + 1


class UDC(Degradation):
    """Physically based under-display-camera degradation (see the module docstring)."""

    kind = "udc"

    def __init__(self, settings: UDCSettings | None = None, preset: dict[str, Any] | None = None,
                 severity: int | None = None):
        #: The severity level these settings came from (:func:`~degrade.udc.severity.udc_severity`),
        #: recorded by :meth:`describe`; ``None``: not made from a level.
        self.severity = severity
        s = (settings or UDCSettings()).resolved(preset)
        s.validate()
        s.psf_settings().validate()
        self.settings = s
        self.display = build_display(s)
        self._kernels: dict[float, np.ndarray] = {}
        self._file_psf: np.ndarray | None = None
        if s.psf:
            self._file_psf = load_psf_file(s.psf, PsfSettings(energy=1.0, max_px=_MAX_FILE_PX), scale=1.0)
        ref = int(round(s.reference_px)) if s.reference_px else 100
        self.psf_np = self.kernel_for(ref, ref)  # the PSF at the reference size (records, figures)
        self.psf = torch.from_numpy(self.psf_np)
        self.nominal = self.display.nominal_transmittance()
        peak = max(self.nominal) * s.transmittance_scale[1] * (1 + s.transmittance_jitter)
        if peak > 1:
            if s.display_mask and (settings is None or settings.transmittance_scale is None):
                raise ConfigError(f"{s.display_mask}: the mask lets through {max(self.nominal):.3f} of the light, "
                                  f"so the default transmittance_scale up to {s.transmittance_scale[1]} could "
                                  "exceed 1; use a mask with less open (white) area, or lower the range with "
                                  "--set transmittance_scale=LO:HI", flag="--display-mask")
            raise ConfigError(f"transmittance could reach {peak:.3f} > 1 with these ranges; lower "
                              "transmittance_scale or transmittance_jitter", flag="--set transmittance_scale")
        self._otf: dict[tuple[int, int, str], Tensor] = {}
        self._opencv: dict[tuple[int, int], ops.OpenCVConvolver] = {}

    # ------------------------------------------------------------------ PSF per size
    def scale_for(self, h: int, w: int) -> float:
        """Image pixels per reference pixel for an ``h x w`` image (1 when the PSF is fixed in
        image pixels): ``face_fraction * min(h, w) / reference_px``."""
        s = self.settings
        if not s.reference_px:
            return 1.0
        return s.face_fraction * min(h, w) / s.reference_px

    def kernel_for(self, h: int, w: int) -> np.ndarray:
        """The ``(3, K, K)`` PSF (diffraction and scatter, each channel summing to 1) that
        ``h x w`` images get. Cached per scale; the diffraction part also on disk.

        Image pixels of ``pixel_um / scale`` up to :data:`FINE_PIXEL_UM` are computed
        directly; coarser ones by integrating the PSF computed at :data:`FINE_PIXEL_UM` over
        the coarser pixels (the same light, binned: far cheaper than a finer pupil grid).
        """
        s = self.settings
        f = round(self.scale_for(h, w), 6)
        if f not in self._kernels:
            if self._file_psf is not None:
                kernel = _rescaled(self._file_psf, s.psf_scale * f, s.psf_settings(_odd(s.psf_max_px * f)))
            else:
                pixel = float(f"{self.display.pixel_um / f:.6g}")  # sensor width of one image pixel
                # The same physical extent at every scale: psf_max_px reference pixels, at most
                # FINE_MAX_PX fine pixels (0.5 mm on the sensor).
                max_px = _odd(s.psf_max_px * f if not s.reference_px else
                              min(s.psf_max_px * f, FINE_MAX_PX * FINE_PIXEL_UM / pixel))
                if pixel <= FINE_PIXEL_UM or not s.reference_px:
                    kernel = display_psf(dataclasses.replace(self.display, pixel_um=pixel), s.psf_settings(max_px))
                else:
                    fine_px = _odd(min(s.psf_max_px * self.display.pixel_um / FINE_PIXEL_UM, FINE_MAX_PX))
                    fine = display_psf(dataclasses.replace(self.display, pixel_um=FINE_PIXEL_UM),
                                       s.psf_settings(fine_px))
                    kernel = _rescaled(fine, FINE_PIXEL_UM / pixel, s.psf_settings(max_px))
            if s.scatter > 0 and self._file_psf is None:  # a measured PSF already holds the veil
                kernel = add_scatter(kernel, s.scatter, s.scatter_px * f)
            self._kernels[f] = kernel
        return self._kernels[f]

    def preset_settings(self) -> dict[str, Any]:
        """The resolved settings a preset file would hold to reproduce this simulator."""
        return {k: _jsonable(getattr(self.settings, k)) for k in PRESET_KEYS
                if getattr(self.settings, k) is not None}

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
        } | ({} if self.severity is None else {"severity": self.severity})

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

    def apply(self, images: Tensor, params: dict[str, Tensor], generators: Noise) -> Tensor:
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

    def noise_kind(self) -> str:
        return self.settings.noise

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
            kernel = torch.from_numpy(self.kernel_for(h, w))
            shape = ops.fft_shape_for(h, w, kernel.shape[-1])
            self._otf[key] = ops.psf_otf(kernel.to(device), shape)
        return self._otf[key]

    def convolver(self, h: int, w: int) -> ops.OpenCVConvolver:
        """The CPU (OpenCV) convolver for ``h x w`` images (cached per size)."""
        if (h, w) not in self._opencv:
            self._opencv[(h, w)] = ops.OpenCVConvolver(self.kernel_for(h, w), self.settings.border)
        return self._opencv[(h, w)]

    def linear(self, x: Tensor, params: dict[str, Tensor], generators: Noise, *,
               backend: str = "torch") -> Tensor:
        """Linear scene ``(B, 3, H, W)`` -> linear camera output in [0, 1].

        ``generators``: the noise source (:data:`~fercore.transform.Noise`), one CPU generator
        per image for a rebuilt set.

        ``backend="opencv"`` blurs with :class:`~degrade.udc.ops.OpenCVConvolver` (CPU, not
        differentiable); the default torch path is differentiable and runs on any device.
        """
        s = self.settings
        b, _, h, w = x.shape
        if isinstance(generators, (list, tuple)) and len(generators) != b:
            raise ValueError(f"need one generator per image ({b}), got {len(generators)}")
        if s.flare:
            x = ops.flare_boost(x, params["flare_gain"], threshold=s.flare_threshold, blob_px=s.flare_blob_px)
        t = torch.stack([params["trans_r"], params["trans_g"], params["trans_b"]], dim=1)
        x = ops.attenuate(x, t)
        if backend == "opencv":
            x = self.convolver(h, w)(x)
        else:
            kernel = self.otf(h, w, x.device)
            x = ops.psf_convolve(x, torch.from_numpy(self.kernel_for(h, w)), border=s.border, otf=kernel)
        if s.noise == "normal":
            z = ops.standard_normal(generators, (3, h, w), x.device, batch=b)
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


def make_udc(display: str = "toled", severity: int | None = None, **settings: Any) -> UDC | Identity:
    """A configured UDC degradation: ``make_udc("poled", flare=True, photons=(2e3, 2e4))``.

    ``settings`` are :class:`UDCSettings` fields; an unknown one raises a clear error.
    ``severity`` (0..5, see :mod:`~degrade.udc.severity`) sets the preset's scatter, light and
    exposure to that level's (``settings`` given explicitly still win); 0 returns the
    :class:`~degrade.severity.Identity`.
    """
    check_keys(settings, UDCSettings, "udc")
    if severity is not None:
        from ..severity import check_severity
        from .severity import udc_severity

        severity = check_severity(severity)
        if severity == 0:
            return Identity("udc", display)
        settings = {**udc_severity(severity, display), **settings}
    return UDC(UDCSettings(display=display, **settings), severity=severity)


def udc_from_settings(name: str, settings: dict[str, Any], **overrides: Any) -> UDC:
    """A :class:`UDC` from a preset file's ``settings`` object held in memory (e.g. a fit)."""
    check_keys(overrides, UDCSettings, "udc")
    unknown = sorted(set(settings) - set(PRESET_KEYS))
    if unknown:
        raise ConfigError(f"unknown UDC preset setting(s) {', '.join(unknown)}", flag="--display")
    return UDC(UDCSettings(display=name, **overrides), preset={"name": name, "settings": settings})


#: Sensor pixel (um) at which PSFs for coarser image pixels are computed, then integrated.
FINE_PIXEL_UM = 8.0
#: Largest side (px at FINE_PIXEL_UM) of that fine PSF: 0.5 mm on the sensor (as v0.1 kept).
FINE_MAX_PX = 63
#: Largest side (px) a measured PSF file keeps before it is rescaled to an image's scale.
_MAX_FILE_PX = 1023


def _rescaled(kernel: np.ndarray, scale: float, settings: PsfSettings) -> np.ndarray:
    """A ``(3, K, K)`` measured kernel resized by ``scale`` (area), cropped and normalised."""
    from .psf import finish_kernel, resize_kernel

    return finish_kernel(resize_kernel(kernel, scale), settings)
