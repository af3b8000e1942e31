"""Presets as data: per-image parameter ranges plus the operations' settings.

A preset maps every per-image parameter to a :class:`Range` (drawn per image), the string
``"brooks"`` (``read_noise`` only: derived from ``shot_noise`` by Brooks et al.'s fit) or
``None`` (the step is off). Parameters are drawn independently, each image from its own
generator seeded by (run seed, image id).

The calibrated presets ``lldif`` and ``realistic`` are data files, ``presets/<name>.json``
(fitted to real low/normal-light pairs by ``fer-degrade calibrate --fit``; see
``docs/calibration.md``). The Python presets here are the first versions, kept under new names
so sets built with them can be rebuilt byte for byte:

``lldif-v1`` (paper-faithful): exposure, white balance, highlights and shadows only -- the four
Lightroom controls the LLDif paper names -- with ranges chosen by eye from the paper's Fig. 1
description (a shadowed face, details obscured). It darkens by a median factor of ~4, about
half as much as real low-light captures.

``realistic-v1``: ``lldif-v1`` plus amplified sensor noise and JPEG re-compression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from fercore.errors import ConfigError

from .colour import KELVIN_MAX, KELVIN_MIN

SCALES = ("linear", "log", "mired")


@dataclass(frozen=True)
class Range:
    """Draw uniformly in [lo, hi] on a scale: ``linear``, ``log`` (log-uniform) or ``mired``
    (uniform in 1e6 / value, the perceptually even scale for colour temperature).
    ``lo == hi`` is a fixed value."""

    lo: float
    hi: float
    scale: str = "linear"

    def draw(self, u: float) -> float:
        """Map ``u`` in [0, 1) to a value of the range."""
        if self.lo == self.hi:
            return float(self.lo)
        if self.scale == "log":
            return math.exp(math.log(self.lo) + u * (math.log(self.hi) - math.log(self.lo)))
        if self.scale == "mired":
            return 1e6 / (1e6 / self.lo + u * (1e6 / self.hi - 1e6 / self.lo))
        return self.lo + u * (self.hi - self.lo)

    def to_json(self) -> list:
        return [self.lo, self.hi, self.scale]


@dataclass(frozen=True)
class ParamSpec:
    """A per-image parameter: its hard limits, neutral value, manifest rounding and meaning."""

    lo: float
    hi: float
    neutral: float | None
    digits: int | None  # decimals kept (None: 4 significant figures)
    help: str


#: Every per-image parameter, in manifest (and draw) order.
PARAMS: dict[str, ParamSpec] = {
    "exposure_ev": ParamSpec(-10.0, 10.0, 0.0, 3, "Exposure, stops (Lightroom -5..+5)"),
    "temperature_k": ParamSpec(KELVIN_MIN, KELVIN_MAX, 6500.0, 0, "Temp, Kelvin; 6500 neutral, lower is bluer"),
    "tint": ParamSpec(-150.0, 150.0, 0.0, 2, "Tint, Lightroom units; + magenta, - green"),
    "contrast": ParamSpec(-1.0, 1.0, 0.0, 3, "Contrast slider / 100"),
    "highlights": ParamSpec(-1.0, 1.0, 0.0, 3, "Highlights slider / 100"),
    "shadows": ParamSpec(-1.0, 1.0, 0.0, 3, "Shadows slider / 100"),
    "whites": ParamSpec(-1.0, 1.0, 0.0, 3, "Whites slider / 100"),
    "blacks": ParamSpec(-1.0, 1.0, 0.0, 3, "Blacks slider / 100"),
    "camera_gain": ParamSpec(1.0, 1024.0, 1.0, 3, "camera gain G applied to the sensor signal (ISO / base ISO)"),
    "shot_noise": ParamSpec(0.0, 0.1, 0.0, None, "shot-noise factor at base gain"),
    "read_noise": ParamSpec(0.0, 0.01, 0.0, None, "read-noise variance at base gain"),
    "jpeg_quality": ParamSpec(1.0, 100.0, None, 0, "JPEG re-compression quality"),
}

#: Parameters that must be on (never ``None``): the four controls the paper names.
REQUIRED = ("exposure_ev", "temperature_k", "tint", "highlights", "shadows")
NOISE = ("camera_gain", "shot_noise", "read_noise")

#: Settings of the operations (not drawn per image): name -> (default, help).
SETTINGS: dict[str, tuple[float, str]] = {
    "pivot": (0.5, "mid-grey (encoded luma) splitting shadows from highlights"),
    "highlights_stops": (1.5, "strength of Highlights = ±100, stops (<= 1.6 keeps the curve monotonic)"),
    "shadows_stops": (1.5, "strength of Shadows = ±100, stops (<= 1.6 keeps the curve monotonic)"),
    "contrast_stops": (1.0, "slope change at the pivot for Contrast = ±100, stops"),
    "whites_reach": (0.25, "white-point shift for Whites = ±100"),
    "blacks_reach": (0.1, "black-point shift for Blacks = ±100"),
    "reference_kelvin": (6500.0, "colour temperature the input images are balanced for"),
}

_OFF: dict[str, Any] = {"contrast": None, "whites": None, "blacks": None,
                        "camera_gain": None, "shot_noise": None, "read_noise": None, "jpeg_quality": None}

#: The presets (data). Values: Range, "brooks" (read_noise only) or None (off).
PRESETS: dict[str, dict[str, Any]] = {
    "lldif-v1": {
        "exposure_ev": Range(-3.5, -2.0),
        "temperature_k": Range(4500.0, 9000.0, "mired"),
        "tint": Range(-15.0, 15.0),
        "highlights": Range(-1.0, -0.5),
        "shadows": Range(-1.0, -0.4),
        **_OFF,
    },
}
PRESETS["realistic-v1"] = {
    **PRESETS["lldif-v1"],
    "camera_gain": Range(1.0, 8.0, "log"),
    "shot_noise": Range(1e-4, 2e-3, "log"),
    "read_noise": "brooks",
    "jpeg_quality": Range(70.0, 95.0),
}


def check_range(name: str, value: Any) -> Range | str | None:
    """Validate one preset entry (already a Range, "brooks" or None); raise ConfigError if impossible."""
    spec = PARAMS[name]
    if value is None:
        if name in REQUIRED:
            raise ConfigError("this control cannot be switched off; give 0 (or 6500 for temperature_k) "
                              "to leave it neutral", flag=name)
        return None
    if isinstance(value, str):
        if value == "brooks" and name == "read_noise":
            return value
        raise ConfigError(f"got {value!r}; expected a number, lo:hi[:scale] or 'off'"
                          + (" or 'brooks'" if name == "read_noise" else ""), flag=name)
    if not isinstance(value, Range):
        raise ConfigError(f"got {value!r}; expected a Range", flag=name)
    if value.scale not in SCALES:
        raise ConfigError(f"unknown scale {value.scale!r}; choose one of {', '.join(SCALES)}", flag=name)
    for v in (value.lo, value.hi):
        if not (isinstance(v, (int, float)) and spec.lo <= v <= spec.hi):  # rejects NaN too
            raise ConfigError(f"got {v!r}; values must be finite and in [{spec.lo:g}, {spec.hi:g}] ({spec.help})",
                              flag=name)
    if value.lo > value.hi:
        raise ConfigError(f"range {value.lo:g}:{value.hi:g} is reversed; give lo:hi with lo <= hi", flag=name)
    if value.scale in ("log", "mired") and value.lo <= 0:
        raise ConfigError(f"a {value.scale} range needs positive bounds, got {value.lo:g}", flag=name)
    return value


def parse_range(name: str, value: Any) -> Range | str | None:
    """A user value -> preset entry. Accepts a Range, a number (fixed), ``(lo, hi[, scale])``,
    ``None``/``"off"``, ``"brooks"``, or a string ``"v"``, ``"lo:hi"``, ``"lo:hi:scale"``."""
    if name not in PARAMS:
        raise ConfigError(f"unknown parameter; choose from {', '.join(list(PARAMS) + list(SETTINGS))}", flag=name)
    if value is None or value == "off":
        return check_range(name, None)
    if isinstance(value, Range) or value == "brooks":
        return check_range(name, value)
    if isinstance(value, str):
        parts = value.split(":")
        try:
            nums = [float(p) for p in parts[:2]]
        except ValueError:
            raise ConfigError(f"cannot read {value!r}; write a number, lo:hi or lo:hi:scale "
                              f"(scale one of {', '.join(SCALES)})", flag=name) from None
        if len(parts) == 1:
            return check_range(name, Range(nums[0], nums[0]))
        if len(parts) in (2, 3):
            return check_range(name, Range(nums[0], nums[1], parts[2] if len(parts) == 3 else "linear"))
        raise ConfigError(f"cannot read {value!r}; write a number, lo:hi or lo:hi:scale", flag=name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return check_range(name, Range(float(value), float(value)))
    if isinstance(value, (tuple, list)) and len(value) in (2, 3):
        lo, hi = value[0], value[1]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi)):
            raise ConfigError(f"got {value!r}; bounds must be numbers", flag=name)
        return check_range(name, Range(float(lo), float(hi), value[2] if len(value) == 3 else "linear"))
    raise ConfigError(f"got {value!r}; expected a number, (lo, hi[, scale]), 'lo:hi' or 'off'", flag=name)


def parse_setting(name: str, value: Any) -> float:
    """A setting value -> float (finite); the operations check their own limits."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"got {value!r}; expected a number ({SETTINGS[name][1]})", flag=name) from None
    if not math.isfinite(v):
        raise ConfigError(f"got {value!r}; must be finite ({SETTINGS[name][1]})", flag=name)
    return v
