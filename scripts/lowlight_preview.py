"""Preview a low-light preset: contact sheet, luma histograms and mean-luminance figures.

Renders a split of a dataset (default: the embedded sample set's test split) through a
``LowLight`` preset, prints the mean luma of the originals and the degraded copies (per-image
mean, Rec. 709 on 8-bit sRGB values) and the share of dark pixels, and writes

* ``<out>/lowlight_<preset>_sheet.png``: per class, a row of originals above a row of copies;
* ``<out>/lowlight_<preset>_hist.png``: luma histograms before and after.

Example::

    python scripts/lowlight_preview.py --preset lldif --out /tmp/ll --per-class 6
    python scripts/lowlight_preview.py --preset lldif --set exposure_ev=-4:-3 --set shadows=-1:-0.5

Each batch goes through the rebuild's own :func:`degrade.rebuild.degrade_batch` (parameters and
noise seeded by (seed, kind, image id), the exact 8-bit path), so a preview shows exactly what a
rebuilt set with the same seed contains. Nothing is written besides the two PNGs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from degrade.lowlight import make_lowlight
from degrade.lowlight.colour import REC709
from degrade.rebuild import degrade_batch
from fercore.errors import FerError
from fercore.imageio import write_image
from fercore.options import parse_options
from fercore.progress import console, track
from fercore.sources import get_source


def degrade_records(ll, records, originals: np.ndarray, seed: int, batch_size: int = 64) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 degraded copies of ``originals`` (the decoded ``records``), as
    :func:`degrade.rebuild.rebuild_dataset` makes them."""
    out = []
    starts = range(0, len(records), batch_size)
    for i in track(starts, f"lowlight {ll.preset}"):
        y, _ = degrade_batch(records[i:i + batch_size], ll, list(originals[i:i + batch_size]), seed,
                             torch.device("cpu"))
        out.append(y)
    return np.concatenate(out)


def luma8(imgs: np.ndarray) -> np.ndarray:
    return imgs.astype(np.float32) @ np.asarray(REC709, np.float32)


def summary(name: str, imgs: np.ndarray) -> dict[str, float]:
    y = luma8(imgs)
    per_image = y.reshape(len(y), -1).mean(1)
    s = {"mean": float(per_image.mean()), "p5": float(np.percentile(per_image, 5)),
         "p50": float(np.percentile(per_image, 50)), "p95": float(np.percentile(per_image, 95)),
         "lt64": float((y < 64).mean()), "lt128": float((y < 128).mean())}
    console.print(f"{name:>10}: mean luma {s['mean']:.1f}/255 (per-image p5 {s['p5']:.1f}, median {s['p50']:.1f}, "
                  f"p95 {s['p95']:.1f}); pixels < 64: {100 * s['lt64']:.1f}%, < 128: {100 * s['lt128']:.1f}%")
    return s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="lldif")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="override a range or setting, e.g. exposure_ev=-4:-3 or pivot=0.45")
    ap.add_argument("--src", default="sample")
    ap.add_argument("--root", default=None)
    ap.add_argument("--split", default="test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-class", type=int, default=6)
    ap.add_argument("--out", type=Path, default=Path("."))
    a = ap.parse_args(argv)
    try:
        ll = make_lowlight(a.preset, **parse_options(a.set, flag="--set", form="NAME=VALUE"))
        source = get_source(a.src, a.root)
        recs = source.records(a.split)
        originals = np.stack([source.load(r) for r in recs])
        degraded = degrade_records(ll, recs, originals, a.seed)
    except FerError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2
    summary("original", originals)
    summary(a.preset, degraded)

    rows = []
    for label in range(len(source.classes)):
        idx = [i for i, r in enumerate(recs) if r.label == label][:a.per_class]
        pad = [np.zeros_like(originals[0])] * (a.per_class - len(idx))
        rows.append(np.concatenate([originals[i] for i in idx] + pad, 1))
        rows.append(np.concatenate([degraded[i] for i in idx] + pad, 1))
    a.out.mkdir(parents=True, exist_ok=True)
    sheet = a.out / f"lowlight_{a.preset}_sheet.png"
    write_image(sheet, np.concatenate(rows, 0))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=110)
    bins = np.arange(257)
    for imgs, lab in ((originals, "original"), (degraded, a.preset)):
        ax.hist(luma8(imgs).ravel(), bins=bins, histtype="step", density=True, label=lab)
    ax.set_xlabel("luma (8-bit sRGB, Rec. 709)")
    ax.set_ylabel("share of pixels")
    ax.set_xlim(0, 255)
    ax.legend()
    fig.tight_layout()
    hist = a.out / f"lowlight_{a.preset}_hist.png"
    fig.savefig(hist)
    console.print(f"wrote {sheet} and {hist}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
