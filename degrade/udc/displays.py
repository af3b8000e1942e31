"""Panels: one unit cell of the panel's opening pattern + the camera behind it.

A :class:`Display` holds everything the PSF depends on: the unit cell (a bitmap of intensity
transmittance, 1 = open, tiled with ``pitch_um``), the lens aperture and focal length, the size
of one *image* pixel on the sensor (``pixel_um``) and the panel material's transmittance per
colour channel. The cell comes from a preset (drawn from a few rectangles or discs) or from a
user's PNG (``--display-mask``).

Panels (geometry and material from the literature; the UDC presets in ``presets/*.json`` add
the fitted optics, scatter, exposure and noise on top of them):

``toled``
    Transparent OLED, modelled on the 4K T-OLED of Zhou et al. (CVPR 2021) in the 150-DPI
    version of Yang & Sankaranarayanan (ICCP 2021): 168 um cell, opaque emitter/circuit block
    crossed by a vertical slit (0.13 of the pitch) and a horizontal slit (0.09): open area 20.8 %
    (their measured open ratio: 20.72 %). The slit grid diffracts into strong horizontal and
    vertical streaks. Material transmittance 1.00 / 0.97 / 0.88 (R/G/B): about 20 % overall,
    nearly neutral (Zhou et al. report ~20 % for T-OLED).
``poled``
    Pentile OLED of a phone, modelled on the P-OLED of Zhou et al.: 63.5 um cell (400 PPI), two
    staggered round openings between the sub-pixels (diameter 0.37 of the pitch, 21.5 % open)
    on a yellow polyimide substrate with material transmittance 0.19 / 0.14 / 0.05 (R/G/B):
    2.7 % overall with a yellow-green cast (Zhou et al.: 2.9 %, strongest loss in blue).

Both use the lens of Yang & Sankaranarayanan's simulation: 4 mm aperture, 10 mm focal length.
``pixel_um`` (default 8 um) is the sensor area one *output image* pixel integrates: a front
camera with 2 um pixels that frames a face ~400 px wide, downscaled to a 100 px crop. It sets
the PSF's size in image pixels; it is a setting because the datasets' crops differ.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fercore.errors import ConfigError, ImageReadError
from fercore.imageio import read_image

#: Resolution (samples per side) at which preset cells are drawn.
CELL_RES = 480


@dataclass(frozen=True)
class Display:
    """A panel + camera: everything the PSF and the nominal transmittance depend on."""

    name: str
    pitch_um: float
    cell: str  # "slit_grid", "staggered_holes" or "mask"
    cell_params: tuple[tuple[str, float], ...] = ()
    mask_path: str | None = None
    mask_sha256: str | None = None
    aperture_mm: float = 4.0
    focal_mm: float = 10.0
    pixel_um: float = 8.0
    material_transmittance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    opaque_transmittance: float = 0.0
    reference: str = ""
    _mask: np.ndarray | None = field(default=None, repr=False, compare=False)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (the PSF cache key and the run record use it)."""
        d = asdict(self)
        d.pop("_mask")
        d.pop("reference")  # documentation, not a parameter
        if d["mask_path"]:
            d["mask_path"] = Path(d["mask_path"]).name  # the content is pinned by mask_sha256
        d["cell_params"] = dict(self.cell_params)
        d["material_transmittance"] = list(self.material_transmittance)
        d["open_fraction"] = round(float(self.cell_bitmap().mean()), 6)
        return d

    def cell_bitmap(self) -> np.ndarray:
        """The unit cell as a float64 ``(h, w)`` intensity transmittance in [0, 1].

        ``opaque_transmittance`` lets light through the closed areas too (a transparent OLED's
        emitters are partly transparent): ``T = open + (1 - open) * opaque_transmittance``.
        """
        t = self._open_bitmap()
        if self.opaque_transmittance:
            t = t + (1.0 - t) * self.opaque_transmittance
        return t

    def _open_bitmap(self) -> np.ndarray:
        if self.cell == "mask":
            if self._mask is None:
                raise ValueError("mask display without its bitmap; build it with load_display_mask")
            return self._mask
        p = dict(self.cell_params)
        n = CELL_RES
        y, x = (np.mgrid[0:n, 0:n] + 0.5) / n  # fractional cell coordinates (rows, columns)
        if self.cell == "slit_grid":
            return ((x < p["vertical_slit"]) | (y < p["horizontal_slit"])).astype(np.float64)
        if self.cell == "staggered_holes":
            r = p["hole_diameter"] / 2
            holes = ((x - 0.25) ** 2 + (y - 0.25) ** 2 <= r * r) | ((x - 0.75) ** 2 + (y - 0.75) ** 2 <= r * r)
            return holes.astype(np.float64)
        raise ValueError(f"unknown cell kind {self.cell!r}")

    @property
    def open_fraction(self) -> float:
        return float(self.cell_bitmap().mean())

    def nominal_transmittance(self) -> tuple[float, float, float]:
        """Per-channel light transmittance: open fraction x material transmittance."""
        a = self.open_fraction
        return tuple(float(a * m) for m in self.material_transmittance)  # type: ignore[return-value]

    def transmission(self):
        """Panel transmittance as a function of pupil coordinates (um): the cell, tiled."""
        bitmap = self.cell_bitmap()
        h, w = bitmap.shape
        pitch = self.pitch_um

        def fn(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            fx = np.mod(x / pitch, 1.0)
            fy = np.mod(y / pitch, 1.0)
            return bitmap[np.minimum((fy * h).astype(np.int64), h - 1),
                          np.minimum((fx * w).astype(np.int64), w - 1)]

        return fn


PANELS: dict[str, Display] = {
    "toled": Display(
        name="toled", pitch_um=168.0, cell="slit_grid",
        cell_params=(("vertical_slit", 0.13), ("horizontal_slit", 0.09)),
        material_transmittance=(1.0, 0.97, 0.88),
        reference="Zhou et al. CVPR 2021 (T-OLED, ~20% transmission); Yang & Sankaranarayanan "
                  "ICCP 2021 (168 um / 150 DPI T-OLED cell, open ratio 0.2072, D = 4 mm, f = 10 mm)"),
    "poled": Display(
        name="poled", pitch_um=63.5, cell="staggered_holes",
        cell_params=(("hole_diameter", 0.37),),
        material_transmittance=(0.19, 0.14, 0.05),
        reference="Zhou et al. CVPR 2021 (phone P-OLED, pentile layout, ~2.9% transmission, "
                  "yellow polyimide); 400 PPI pitch; lens as Yang & Sankaranarayanan ICCP 2021"),
}


def load_display_mask(path: str | Path, base: Display, *, pitch_um: float | None = None) -> Display:
    """A display whose unit cell is the PNG at ``path`` (white = open, grey = partly open).

    The image is one unit cell; it is tiled with ``pitch_um`` (default: the base preset's).
    Lens, pixel size and material transmittance come from ``base``.
    """
    path = Path(path)
    try:
        img = read_image(path)
    except ImageReadError as exc:
        raise ConfigError(f"cannot read the display mask: {exc}", flag="--display-mask") from None
    if img.shape[0] != img.shape[1]:
        raise ConfigError(f"{path}: the mask is {img.shape[1]}x{img.shape[0]} pixels; it must be square (one "
                          "unit cell, tiled with the square pitch --pitch-um)", flag="--display-mask")
    bitmap = img.astype(np.float64).mean(axis=2) / 255.0
    if bitmap.max() <= 0:
        raise ConfigError(f"{path}: the mask is all black (no opening); white marks open areas",
                          flag="--display-mask")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return replace(base, name=f"mask:{path.name}", cell="mask", cell_params=(), mask_path=str(path),
                   mask_sha256=digest, pitch_um=float(pitch_um or base.pitch_um), _mask=bitmap)


def get_display(name: str) -> Display:
    try:
        return PANELS[name]
    except KeyError:
        raise ConfigError(f"unknown panel {name!r}; choose one of {', '.join(PANELS)} "
                          "or pass --display-mask PNG", flag="--set panel") from None
