"""UDC severity levels 1..5: the calibrated preset (level 3) made milder or harsher.

Three physical quantities change with the level; everything else (the panel's geometry and
its diffraction PSF, the transmittance ranges, the sensor) stays the preset's:

* **scatter** -- the fraction of the light the panel scatters into a wide veil (haze): the
  preset's value plus :attr:`UDCLevel.scatter_add` (clipped to [0, 0.95]).
* **light** -- photons per white pixel (scene light x exposure time), the preset's range
  times ``2 ** light_stops``. Levels 1-2 keep the preset's light: it already fills the
  sensor's full well (more would clip the highlights, not clean the image).
* **brightness deficit** -- ``1 - exposure``, how much of the lost light the camera's gain
  does not restore: the preset's deficit times :attr:`UDCLevel.deficit_factor` (the camera
  restores more of it at levels 1-2, less at 4-5).

Each change makes every image worse for the same draws (more haze, more noise for the same
normal draws, darker output), so the PSNR to the clean image falls with the level image by
image. Severity 0 is :class:`~degrade.severity.Identity`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..severity import PRESET_LEVEL, check_severity


@dataclass(frozen=True)
class UDCLevel:
    """One level's changes to a UDC preset (see the module docstring)."""

    scatter_add: float
    light_stops: float
    deficit_factor: float


#: The levels (data). Level :data:`~degrade.severity.PRESET_LEVEL` leaves the preset as it is.
UDC_LEVELS: dict[int, UDCLevel] = {
    1: UDCLevel(scatter_add=-0.06, light_stops=0.0, deficit_factor=0.25),
    2: UDCLevel(scatter_add=-0.03, light_stops=0.0, deficit_factor=0.5),
    3: UDCLevel(scatter_add=0.0, light_stops=0.0, deficit_factor=1.0),
    4: UDCLevel(scatter_add=0.06, light_stops=-2.0, deficit_factor=2.5),
    5: UDCLevel(scatter_add=0.14, light_stops=-4.0, deficit_factor=5.0),
}
assert UDC_LEVELS[PRESET_LEVEL] == UDCLevel(0.0, 0.0, 1.0)

#: Limits the level's values are clipped to (the simulator's own limits, with a margin).
MAX_SCATTER = 0.95
MIN_EXPOSURE = 0.02


def udc_severity(severity: int, display: str = "toled", preset: dict[str, Any] | None = None) -> dict[str, Any]:
    """The :class:`~degrade.udc.degradation.UDCSettings` overrides of level ``severity`` (1..5)
    for the preset ``display`` (a shipped name or a preset ``.json`` path; or the preset-file
    dict ``preset``): ``{"scatter": ..., "photons": (lo, hi), "exposure": (lo, hi)}``.

    >>> udc_severity(5)                       # doctest: +SKIP
    {'scatter': 0.24, 'photons': (5863.125, 195437.5), 'exposure': (0.8, 0.995)}
    """
    from .degradation import UDCSettings

    k = check_severity(severity)
    if k == 0:
        raise ValueError("severity 0 is the identity: use make_udc(severity=0)")
    s = UDCSettings(display=display).resolved(preset)
    lv = UDC_LEVELS[k]
    gain = 2.0 ** lv.light_stops
    lo_def, hi_def = 1.0 - s.exposure[1], 1.0 - s.exposure[0]  # the deficit's range
    exposure = (max(MIN_EXPOSURE, 1.0 - hi_def * lv.deficit_factor),
                max(MIN_EXPOSURE, 1.0 - lo_def * lv.deficit_factor))
    return {"scatter": round(min(MAX_SCATTER, max(0.0, s.scatter + lv.scatter_add)), 6),
            "photons": (s.photons[0] * gain, s.photons[1] * gain),
            "exposure": tuple(round(e, 6) for e in exposure)}
