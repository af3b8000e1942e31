"""Low-light severity levels 1..5: the calibrated preset (level 3) made milder or harsher.

Two physical quantities change with the level; white balance and the tone controls stay the
preset's:

* **exposure (EV)** -- the preset's exposure range (stops below the clean image) times
  :attr:`LowLightLevel.ev_factor`: each image keeps its place in the range (its uniform draw)
  and loses ``ev_factor`` times the preset's stops of light.
* **sensor noise** -- shot and read noise at an ISO gain :attr:`LowLightLevel.iso_gain`
  (``G`` of :mod:`~degrade.lowlight.noise`). A preset without noise (``lldif``, as the paper's
  sets) stays noise-free at levels 1-3 and gets, at 4-5, the noise of a sensor with a
  base-gain shot-noise factor :data:`SHOT_NOISE` (a clean sensor: the low end of
  ``realistic``'s range) and Brooks et al.'s read noise, amplified by ``G``. A preset with noise has its
  ``camera_gain`` range multiplied by ``G``.

The per-image draws (uniforms and the noise's normals) do not depend on the level, so each
level is the same capture darker and noisier, and the PSNR to the clean image falls with the
level image by image (checked on all 2,100 sample-set images: the smallest step is 0.025 dB,
between levels 4 and 5; a stronger gain at level 5 lets the clipped noise of near-black images
brighten them, which breaks that). Severity 0 is :class:`~degrade.severity.Identity`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fercore.errors import ConfigError

from ..severity import FLAG, PRESET_LEVEL, check_severity
from .presets import PARAMS, Range


@dataclass(frozen=True)
class LowLightLevel:
    """One level's changes to a low-light preset (see the module docstring)."""

    ev_factor: float
    iso_gain: float


#: The levels (data). Level :data:`~degrade.severity.PRESET_LEVEL` leaves the preset as it is.
LOWLIGHT_LEVELS: dict[int, LowLightLevel] = {
    1: LowLightLevel(ev_factor=0.25, iso_gain=1.0),
    2: LowLightLevel(ev_factor=0.5, iso_gain=1.0),
    3: LowLightLevel(ev_factor=1.0, iso_gain=1.0),
    4: LowLightLevel(ev_factor=1.25, iso_gain=4.0),
    5: LowLightLevel(ev_factor=1.5, iso_gain=8.0),
}
assert LOWLIGHT_LEVELS[PRESET_LEVEL] == LowLightLevel(1.0, 1.0)

#: Base-gain shot-noise factor of the sensor levels 4-5 add to a noise-free preset.
SHOT_NOISE = 1e-4


def lowlight_severity(severity: int, ranges: dict[str, Any]) -> dict[str, Any]:
    """The range overrides of level ``severity`` (1..5) for a preset's ``ranges`` (as
    :func:`~degrade.lowlight.degradation.preset_entries` returns them): ``exposure_ev`` and,
    where the level adds noise, ``camera_gain``, ``shot_noise`` and ``read_noise``."""
    k = check_severity(severity)
    if k == 0:
        raise ValueError("severity 0 is the identity: use make_lowlight(severity=0)")
    lv = LOWLIGHT_LEVELS[k]
    ev = ranges["exposure_ev"]
    if ev.hi > 0:
        raise ConfigError(f"severity levels scale a darkening exposure range, but this preset's exposure_ev "
                          f"reaches {ev.hi:+g} EV; give a range <= 0 (--set exposure_ev=LO:HI)", flag=FLAG)
    spec = PARAMS["exposure_ev"]
    out: dict[str, Any] = {"exposure_ev": Range(max(spec.lo, round(ev.lo * lv.ev_factor, 4)),
                                                max(spec.lo, round(ev.hi * lv.ev_factor, 4)), ev.scale)}
    if lv.iso_gain != 1.0:
        gain = ranges["camera_gain"]
        if gain is None:
            out.update(camera_gain=Range(lv.iso_gain, lv.iso_gain), shot_noise=Range(SHOT_NOISE, SHOT_NOISE),
                       read_noise="brooks")
        else:
            top = PARAMS["camera_gain"].hi
            out["camera_gain"] = Range(min(top, gain.lo * lv.iso_gain), min(top, gain.hi * lv.iso_gain), gain.scale)
    return out
