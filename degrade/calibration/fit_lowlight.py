"""Fit a low-light preset's ranges to real low/normal-light pairs.

The preset keeps its controls (exposure, white balance, highlights, shadows; optionally sensor
noise and JPEG); the fit sets the ranges they are drawn from:

1. **Exposure, per pair.** With every other control at the middle of its range, the exposure
   (EV) whose output has the real capture's mean brightness (a dense grid of EVs, interpolated;
   brightness falls monotonically with EV).
2. **White balance, per pair.** At that exposure, the temperature and tint whose output has the
   real capture's colour cast (R/G, B/G relative to the clean image), on a grid.
3. **Ranges.** Each range spans the 10th to 90th percentile of the per-pair values (temperature
   on the mired scale), so the drawn parameters cover the real pairs' central 80 %.
4. **Noise** (presets with sensor noise). One factor ``k`` on the shot-noise range (read noise
   follows it through Brooks et al.'s relation), found by bisection so the simulator's noise in
   flat regions equals the real captures' (median over brightness bins), measured *after* the
   preset's JPEG step -- the fitted noise is the noise that survives it.

The fit reads only the pairs it is given (fit on training pairs, report on others).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from fercore.progress import track

from ..lowlight import make_lowlight
from ..lowlight.degradation import lowlight_from_settings
from ..lowlight.presets import Range
from .measure import measure
from .metrics import colour_cast
from .pairs import Pair, iter_pairs

#: Exposure grid (EV) of step 1.
EV_GRID = np.round(np.arange(-10.0, 0.0001, 0.05), 4)
#: Temperature (Kelvin, even in mired) and tint grids of step 2.
MIRED_GRID = np.linspace(1e6 / 2500.0, 1e6 / 20000.0, 24)
TINT_GRID = np.linspace(-80.0, 80.0, 21)
#: Percentiles the fitted ranges span.
SPAN = (10.0, 90.0)
#: Working size (shorter side, px) of steps 1-2: brightness and colour do not depend on it.
FIT_SHORT = 48


def _mid(r: Any) -> float:
    if not isinstance(r, Range):
        raise ValueError(f"expected a Range, got {r!r}")
    if r.scale == "mired":
        return 1e6 / (0.5 * (1e6 / r.lo + 1e6 / r.hi))
    if r.scale == "log":
        return math.sqrt(r.lo * r.hi)
    return 0.5 * (r.lo + r.hi)


def _render(ll, img: np.ndarray, **params: Any) -> np.ndarray:
    """The noise-free float path on copies of ``img`` (one per value of the swept parameters)."""
    n = max(len(v) for v in params.values() if isinstance(v, np.ndarray))
    x = torch.from_numpy(img).permute(2, 0, 1).float().div(255.0).expand(n, -1, -1, -1)
    p = {k: torch.as_tensor(np.broadcast_to(np.asarray(v, dtype=np.float32), (n,)).copy()) for k, v in params.items()}
    with torch.no_grad():
        y = ll.apply(x, p)
    return torch.round(y * 255.0).permute(0, 2, 3, 1).numpy().astype(np.uint8)


def fit_pair(ll, clean: np.ndarray, real: np.ndarray) -> dict[str, float]:
    """Exposure, temperature and tint that map ``clean`` onto ``real`` best (steps 1-2)."""
    mids = {n: _mid(ll.ranges[n]) for n in ("exposure_ev", "temperature_k", "tint", "highlights", "shadows")}
    target = real.mean() / max(clean.mean(), 1e-9)
    out = _render(ll, clean, **{**mids, "exposure_ev": EV_GRID})
    ratio = out.reshape(len(EV_GRID), -1).mean(axis=1) / max(clean.mean(), 1e-9)
    # ratio rises with EV; np.interp needs increasing x: interpolate EV as a function of ratio.
    r_inc = np.maximum.accumulate(ratio)
    ev = float(np.interp(target, r_inc + np.arange(len(r_inc)) * 1e-9, EV_GRID))
    rg_t, bg_t = colour_cast(clean, real)
    mm, tt = np.meshgrid(MIRED_GRID, TINT_GRID, indexing="ij")
    out = _render(ll, clean, **{**mids, "exposure_ev": ev, "temperature_k": (1e6 / mm).ravel(), "tint": tt.ravel()})
    err = []
    for o in out:
        rg, bg = colour_cast(clean, o)
        err.append(math.log(rg / rg_t) ** 2 + math.log(bg / bg_t) ** 2)
    best = int(np.argmin(err))
    return {"exposure_ev": ev, "temperature_k": float(1e6 / mm.ravel()[best]), "tint": float(tt.ravel()[best]),
            "brightness": float(target)}


def _span(values: list[float], scale: str = "linear", digits: int = 2) -> list:
    v = np.asarray(values, dtype=np.float64)
    if scale == "mired":
        lo, hi = np.percentile(1e6 / v, SPAN)
        return [round(float(1e6 / hi), 0), round(float(1e6 / lo), 0), "mired"]
    lo, hi = np.percentile(v, SPAN)
    return [round(float(lo), digits), round(float(hi), digits), scale]


def fit_lowlight(pairs: list[Pair], preset: str = "lldif", *, noise_pairs: int = 60, seed: int = 0,
                 short: int | None = None, colour_from: dict[str, Any] | None = None,
                 overrides: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit ``preset``'s ranges to ``pairs``; returns ``(settings for a preset file, fit record)``.

    ``noise_pairs`` pairs (the first by name) are simulated in full to fit the noise factor;
    ``short`` resizes every pair's shorter side first (``None``: native size). ``colour_from``
    (the settings of a preset already fitted to the same pairs with the same tone controls)
    supplies the exposure and white-balance ranges instead of steps 1-3. ``overrides`` are
    ``make_lowlight`` overrides applied to the starting preset (e.g. other highlight ranges).
    """
    overrides = dict(overrides or {})
    base = make_lowlight(preset, **overrides)
    desc = base.describe()
    settings: dict[str, Any] = dict(desc["ranges"])
    settings.update(desc["settings"])
    record: dict[str, Any] = {}
    if colour_from is not None:
        for key in ("exposure_ev", "temperature_k", "tint"):
            settings[key] = list(colour_from[key])
        record["colour_from"] = "a preset fitted to the same pairs"
    else:
        plain = make_lowlight(preset, **{**overrides, "camera_gain": None, "shot_noise": None,
                                         "read_noise": None, "jpeg_quality": None})
        fits = [fit_pair(plain, c, r) for _, c, r in track(iter_pairs(pairs, FIT_SHORT),
                                                        "fitting exposure and colour", total=len(pairs))]
        settings["exposure_ev"] = _span([f["exposure_ev"] for f in fits])
        settings["temperature_k"] = _span([f["temperature_k"] for f in fits], "mired")
        settings["tint"] = _span([f["tint"] for f in fits], digits=1)
        record["per_pair"] = {p.name: {k: round(v, 4) for k, v in f.items()} for p, f in zip(pairs, fits)}
    if base.ranges["shot_noise"] is not None:
        settings["shot_noise"], record["noise_factor"] = _fit_noise(settings, pairs[:noise_pairs], seed, short)
    return settings, record


def _with_noise_factor(settings: dict[str, Any], k: float) -> dict[str, Any]:
    shot = settings["shot_noise"]
    lo, hi = min(shot[0] * k, 0.1), min(shot[1] * k, 0.1)
    return {**settings, "shot_noise": [float(f"{lo:.4g}"), float(f"{hi:.4g}"), shot[2]]}


def _fit_noise(settings: dict[str, Any], pairs: list[Pair], seed: int, short: int | None) -> tuple[list, float]:
    """Bisection on ``log k`` so that the simulated flat-region noise matches the real one."""
    def ratio(k: float) -> float:
        ll = lowlight_from_settings("fit", _with_noise_factor(settings, k))
        res = measure(pairs, ll, short=short, seed=seed, progress=None)
        return res["compare"]["noise"]

    lo, hi = math.log(1e-2), math.log(1e3)
    for _ in track(range(9), "fitting noise"):
        mid = 0.5 * (lo + hi)
        if ratio(math.exp(mid)) > 1.0:
            hi = mid
        else:
            lo = mid
    k = math.exp(0.5 * (lo + hi))
    return _with_noise_factor(settings, k)["shot_noise"], float(f"{k:.4g}")
