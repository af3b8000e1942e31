"""``LowLight``: the configured low-light simulator the shared rebuilding runner drives.

>>> ll = make_lowlight("lldif", exposure_ev=(-4, -3))          # override one range
>>> rows, generators = ll.draws(0, ids)                        # seeded by (seed, kind, id)
>>> out = ll.apply(images, ll.stack_params(rows, images.device), generators)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from degrade.base import Degradation, codes8
from degrade.severity import Identity, check_severity
from fercore.errors import ConfigError

from .noise import brooks_read_noise
from .pipeline import low_light
from .presets import NOISE, PARAMS, PRESETS, SETTINGS, Range, check_range, parse_range, parse_setting

#: Bumped whenever the maths changes, so cached outputs of an older version are not reused.
VERSION = 1

# pipeline keyword for each per-image parameter
_KWARG = {"highlights": "highlights_amount", "shadows": "shadows_amount", "contrast": "contrast_amount"}


class LowLight(Degradation):
    """Lightroom-style low light: exposure, white balance, highlights, shadows (+ optional extras).

    Build with :func:`make_lowlight`. ``ranges`` maps every name in
    :data:`~.presets.PARAMS` to a :class:`~.presets.Range`, ``"brooks"`` or ``None`` (off);
    ``settings`` holds the operations' settings (:data:`~.presets.SETTINGS`).
    """

    kind = "lowlight"

    def __init__(self, preset: str, ranges: dict[str, Range | str | None], settings: dict[str, float],
                 severity: int | None = None):
        self.preset = preset
        #: The severity level the ranges came from (recorded by :meth:`describe`); ``None``: none.
        self.severity = severity
        self.ranges = {name: check_range(name, ranges.get(name)) for name in PARAMS}
        self.settings = {name: float(settings.get(name, default)) for name, (default, _) in SETTINGS.items()}
        noise_on = [self.ranges[n] is not None for n in NOISE]
        if any(noise_on) and not all(noise_on):
            missing = [n for n, on in zip(NOISE, noise_on) if not on]
            raise ConfigError(f"sensor noise needs {', '.join(NOISE)} together; also set {', '.join(missing)} "
                              "(or switch all three off)", flag=missing[0])
        shot = self.ranges["shot_noise"]
        if self.ranges["read_noise"] == "brooks" and isinstance(shot, Range) and shot.lo <= 0:
            raise ConfigError(f"got lower bound {shot.lo:g}; read_noise='brooks' derives read noise from "
                              "log(shot_noise), so shot_noise must be > 0 (or give read_noise a range)",
                              flag="shot_noise")
        # Check the settings now (the operations validate them) rather than mid-run.
        probe = torch.zeros(1, 3, 2, 2)
        low_light(probe, contrast_amount=0.0, whites=0.0, blacks=0.0, **self._settings_kwargs())

    # -- Degradation contract ---------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        ranges = {n: (r.to_json() if isinstance(r, Range) else r) for n, r in self.ranges.items()}
        return {"kind": self.kind, "version": VERSION, "preset": self.preset,
                "ranges": ranges, "settings": dict(self.settings)} | (
                    {} if self.severity is None else {"severity": self.severity})

    def preset_settings(self) -> dict[str, Any]:
        """Ranges and settings as a preset file holds them (reproduces this simulator)."""
        d = self.describe()
        return {**d["ranges"], **d["settings"]}

    def param_names(self) -> list[str]:
        return [n for n in PARAMS if self.ranges[n] is not None]

    def sample_params(self, rng: np.random.Generator) -> dict[str, float]:
        """Draw one image's parameters from ``rng`` alone.

        Always draws one uniform per known parameter and one normal (Brooks' read-noise
        jitter), whether or not a step is on, so switching a step on or overriding one range
        never changes the values drawn for the others.
        """
        u = rng.random(len(PARAMS))
        normal = float(rng.standard_normal())
        out: dict[str, float] = {}
        for (name, spec), ui in zip(PARAMS.items(), u):
            r = self.ranges[name]
            if r is None:
                continue
            if r == "brooks":
                continue  # filled in after shot_noise below
            out[name] = _rounded(r.draw(float(ui)), spec.digits, spec.lo, spec.hi)
        if self.ranges["read_noise"] == "brooks":
            spec = PARAMS["read_noise"]
            out["read_noise"] = _rounded(brooks_read_noise(out["shot_noise"], normal), None, spec.lo, spec.hi)
        return {n: out[n] for n in self.param_names()}

    def apply(self, images: Tensor, params: dict[str, Tensor],
              generators: list[torch.Generator] | None = None) -> Tensor:
        """Degrade ``(B, 3, H, W)`` sRGB in [0, 1] with per-sample ``(B,)`` parameters.

        Missing optional parameters leave their step off; the five paper controls must be
        present. ``generators`` (one CPU generator per sample) are needed when noise is on.
        """
        unknown = sorted(set(params) - set(PARAMS))
        if unknown:
            raise ConfigError(f"unknown parameter(s) {', '.join(unknown)}; expected {', '.join(self.param_names())}",
                              flag="params")
        kwargs: dict[str, Any] = {}
        for name in self.param_names():
            if name not in params:
                raise ConfigError(f"missing from params; this {self.preset!r} degradation needs "
                                  f"{', '.join(self.param_names())}", flag=name)
            kwargs[_KWARG.get(name, name)] = params[name]
        return low_light(images, generators=generators, **kwargs, **self._settings_kwargs())

    __call__ = apply

    def apply_uint8(self, images: Tensor, params: dict[str, Tensor],
                    generators: list[torch.Generator] | None = None) -> Tensor:
        """The runner's 8-bit path: ``(B, 3, H, W)`` uint8 sRGB -> uint8.

        An image's bytes must not depend on the batch it was computed in, and torch's
        vectorised ``pow``/``exp2`` differ from their scalar tails in the last bit, so every
        per-pixel step runs on one image at a time. Without sensor noise the colour stage
        (sRGB decode, white balance, exposure, clip, encode) maps each channel's 256 codes
        independently: it runs as a 3 x 256 look-up table per image (computed for the batch at
        once with the same functions as :meth:`apply`; each image's 768 entries fill whole
        vectors, so they cannot depend on the batch either), then the tone controls run on
        the looked-up values. With noise, the float path runs per image.
        """
        if images.dtype != torch.uint8:
            raise ConfigError(f"expected uint8 images, got {images.dtype}; use apply() for float input",
                              flag="images")
        b = images.shape[0]
        noise = self.ranges["shot_noise"] is not None
        s = self._settings_kwargs()
        colour_keys = [k for k in ("exposure_ev", "temperature_k", "tint") if k in params]
        if not noise:
            codes = torch.arange(256, dtype=torch.float32, device=images.device).div_(255.0)
            codes = codes.expand(b, 3, 1, 256).contiguous()
            luts = low_light(codes, **{k: params[k] for k in colour_keys},
                             reference_kelvin=s["reference_kelvin"])[:, :, 0, :]
            tone_settings = {k: v for k, v in s.items() if k != "reference_kelvin"}
        outs = []
        for i in range(b):
            p = {k: v[i:i + 1] for k, v in params.items()}
            if noise:
                y = self.apply(images[i:i + 1].to(torch.float32) / 255.0, p,
                               None if generators is None else generators[i:i + 1])
            else:
                idx = images[i].long()
                x = torch.stack([luts[i, c][idx[c]] for c in range(3)]).unsqueeze(0)
                kwargs = {_KWARG.get(n, n): p[n] for n in self.param_names() if n not in colour_keys}
                y = low_light(x, **kwargs, **tone_settings, colour_stage=False)
            outs.append(codes8(y))
        return torch.cat(outs) if len(outs) > 1 else outs[0]

    def noise_kind(self) -> str:
        return "none" if self.ranges["shot_noise"] is None else "normal"

    def _settings_kwargs(self) -> dict[str, float]:
        return dict(self.settings)

    def __repr__(self) -> str:
        on = ", ".join(self.param_names())
        return f"LowLight(preset={self.preset!r}, params=[{on}])"


def _rounded(v: float, digits: int | None, lo: float, hi: float) -> float:
    v = round(v, digits) if digits is not None else float(f"{v:.4g}")
    return min(max(v, lo), hi)


def preset_entries(preset: str) -> tuple[str, dict[str, Any], dict[str, float]]:
    """``(name, ranges, settings)`` of a preset: a Python preset of :data:`~.presets.PRESETS`
    (the v1 presets), a shipped preset file (``degrade/lowlight/presets/<name>.json``: the
    calibrated ``lldif`` and ``realistic``) or a path to a preset ``.json`` file."""
    settings = {name: default for name, (default, _) in SETTINGS.items()}
    if preset in PRESETS:
        return preset, dict(PRESETS[preset]), settings
    from ..presetfile import load_preset

    data = load_preset("lowlight", preset, flag="--preset")
    ranges, file_settings = parse_preset_settings(data["settings"], data["path"])
    return data["name"], ranges, {**settings, **file_settings}


def parse_preset_settings(entries: dict[str, Any], where: str = "preset") -> tuple[dict[str, Any], dict[str, float]]:
    """A preset file's ``settings`` object -> ``(ranges, settings)``: every per-image parameter
    (absent ones off) and the operation settings it gives. Unknown keys raise, naming ``where``."""
    ranges: dict[str, Any] = {name: None for name in PARAMS}
    settings: dict[str, float] = {}
    for key, value in entries.items():
        if key in SETTINGS:
            settings[key] = parse_setting(key, value)
        elif key in PARAMS:
            ranges[key] = parse_range(key, tuple(value) if isinstance(value, list) else value)
        else:
            raise ConfigError(f"{where}: unknown parameter or setting {key!r}; known: "
                              f"{', '.join(list(PARAMS) + list(SETTINGS))}", flag="--preset")
    return ranges, settings


def lowlight_from_settings(name: str, entries: dict[str, Any]) -> LowLight:
    """A :class:`LowLight` from a preset file's ``settings`` object (e.g. a fit in progress)."""
    ranges, settings = parse_preset_settings(entries, name)
    return LowLight(name, ranges, settings)  # LowLight fills every setting not given with its default


def make_lowlight(preset: str = "lldif", severity: int | None = None, **overrides: Any) -> LowLight | Identity:
    """A :class:`LowLight` from a named preset (or a preset ``.json`` file), with ranges or
    settings overridden.

    Overrides: a per-image parameter (``exposure_ev=(-4, -3)``, ``"lo:hi[:scale]"``, a number
    for a fixed value, ``None``/``"off"`` to switch an optional step off, ``"brooks"`` for
    ``read_noise``) or a setting (``pivot=0.45``). Unknown names and impossible values raise
    :class:`~fercore.errors.ConfigError` naming them.

    ``severity`` (0..5, see :mod:`~degrade.lowlight.severity`) sets the preset's exposure and
    sensor noise to that level's (overrides given explicitly still win); 0 returns the
    :class:`~degrade.severity.Identity`.
    """
    name, ranges, settings = preset_entries(preset)
    if severity is not None:
        from .severity import lowlight_severity

        severity = check_severity(severity)
        if severity == 0:
            return Identity("lowlight", name)
        ranges.update(lowlight_severity(severity, ranges))
    for key, value in overrides.items():
        if key in SETTINGS:
            settings[key] = parse_setting(key, value)
        else:
            ranges[key] = parse_range(key, value)  # raises on unknown names
    return LowLight(name, ranges, settings, severity=severity)
