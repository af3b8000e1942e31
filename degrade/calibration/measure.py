"""Side-by-side figures: the real pairs, and the simulator applied to the same clean images."""

from __future__ import annotations

from typing import Any

from fercore.progress import track

from .metrics import BANDS, NOISE_BINS, PairStats, compare, histogram_distance
from .pairs import Pair, iter_pairs, simulate


def measure(pairs: list[Pair], degradation=None, *, short: int | None = None, seed: int = 0,
            progress: str | None = "measuring") -> dict[str, Any]:
    """Figures of the real pairs and, with a ``degradation``, of the simulator on their clean
    images (parameters seeded by (``seed``, pair name), as a rebuild seeds by image id).

    Returns ``{"real": summary, "sim": summary, "compare": ratios, "sim_vs_real_hist": W1}``
    (the last three only with a degradation); summaries are :meth:`PairStats.summary`.
    """
    real, sim = PairStats(), PairStats()
    it = iter_pairs(pairs, short)
    if progress:
        it = track(it, progress, total=len(pairs))
    for p, clean, degraded in it:
        real.add(clean, degraded)
        if degradation is not None:
            sim.add(clean, simulate(degradation, clean, p.name, seed))
    out: dict[str, Any] = {"pairs": [p.name for p in pairs], "size": short, "real": real.summary()}
    if degradation is not None:
        out["sim"] = sim.summary()
        out["compare"] = compare(out["sim"], out["real"])
        out["sim_vs_real_hist"] = round(histogram_distance(sim.hist_degraded / len(sim),
                                                           real.hist_degraded / len(real)), 4)
    return out


#: Rows of the printed table: (label, how to read the value from a summary).
ROWS: list[tuple[str, Any]] = [
    ("brightness ratio (median)", lambda s: s["brightness"]["median"]),
    ("brightness ratio (p10..p90)", lambda s: f"{s['brightness']['p10']:.3g}..{s['brightness']['p90']:.3g}"),
    ("darkening clean/degraded (median)", lambda s: s["darkening"]["median"]),
    ("darkening (p10..p90)", lambda s: f"{s['darkening']['p10']:.3g}..{s['darkening']['p90']:.3g}"),
    ("darkening share in 3.5..16", lambda s: s["darkening"]["share_3.5_16"]),
    ("colour cast R/G", lambda s: s["rg"]),
    ("colour cast B/G", lambda s: s["bg"]),
    *[(f"contrast {lo:g}-{hi:g} cyc/px", (lambda i: lambda s: s["contrast"][i])(i))
      for i, (lo, hi) in enumerate(BANDS)],
    *[(f"noise sd, luma {lo:g}-{hi:g}", (lambda i: lambda s: s["noise"][i])(i))
      for i, (lo, hi) in enumerate(zip(NOISE_BINS[:-1], NOISE_BINS[1:]))],
    ("histogram distance to clean", lambda s: s["hist_distance"]),
    ("ghost copies (kernel side peak)", lambda s: s["ghost"]),
]


def report_rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(measure, real, simulator)`` rows of a :func:`measure` result, formatted."""
    def fmt(v: Any) -> str:
        if isinstance(v, str):
            return v
        if v is None or v != v:
            return "-"
        return f"{v:.3g}"

    rows = []
    for label, get in ROWS:
        rows.append((label, fmt(get(result["real"])), fmt(get(result["sim"])) if "sim" in result else ""))
    if "sim_vs_real_hist" in result:
        rows.append(("histogram distance sim vs real", "", fmt(result["sim_vs_real_hist"])))
    return rows
