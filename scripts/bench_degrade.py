"""Speed of a dataset rebuild: the full pipeline against its I/O bound and a per-image NumPy version.

For ``--kind K`` (``udc``, ``lowlight``, ...) it uses ``degrade.K.make_K(preset)`` and the
per-image reference ``scripts/numpy_K.py`` (``reference_for(degradation)`` or
``degrade_one(img, params, rng)``), on the embedded sample set (100x100 PNG) and on a 224x224
copy of it (bicubic resize). For each size, all in one run, it times:

(a) **I/O bound** -- the shared runner with an identity degradation: decode, encode, hash,
    atomic write, journal and manifest, no maths;
(b) **full pipeline** -- the same runner with the degradation (batched torch);
(c) **per-image NumPy** -- a plain loop: decode, ``degrade_one`` (NumPy/OpenCV), encode, write.

It also times the maths alone, one thread each (batched ``apply_uint8`` vs ``degrade_one`` per
image). ``--format jpg`` re-encodes the inputs as JPEG (like RAF-DB and KDEF): much cheaper
I/O than the sample set's PNG, so a harder I/O bound to keep up with. Each
measurement is repeated ``--repeats`` times, interleaved, and the best is kept (the machine is
shared); figures are printed as images/s and as the ratios b/a (target >= 0.7) and b/c
(target >= 5).

Example: ``python scripts/bench_degrade.py --kind udc --images 420 --format png``
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("FER_PROGRESS", "0")

from degrade.base import Degradation  # noqa: E402
from degrade.rebuild import rebuild_dataset  # noqa: E402
from fercore.imageio import read_image, write_image  # noqa: E402
from fercore.seeding import numpy_rng, torch_generator  # noqa: E402
from fercore.sources import get_source  # noqa: E402


class Identity(Degradation):
    """No degradation: the runner's I/O alone."""

    kind = "identity"

    def describe(self):
        return {"kind": "identity"}

    def param_names(self):
        return []

    def sample_params(self, rng):
        return {}

    def apply(self, images, params, generators):
        return images

    def apply_uint8(self, images, params, generators):
        return images


def load_kind(kind: str, preset: str | None):
    mod = importlib.import_module(f"degrade.{kind}")
    maker = getattr(mod, f"make_{kind}")
    deg = maker(preset) if preset else maker()
    ref_path = ROOT / "scripts" / f"numpy_{kind}.py"
    spec = importlib.util.spec_from_file_location(f"numpy_{kind}", ref_path)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    fn = ref.reference_for(deg) if hasattr(ref, "reference_for") else ref.degrade_one
    return deg, fn


def make_inputs(tmp: Path, n: int, sizes: list[int], fmt: str) -> dict[int, object]:
    """The first ``n`` sample images (100x100 PNG), resized (bicubic) and/or re-encoded as ``fmt``."""
    import cv2

    src = get_source("sample")
    recs = src.records()[:n]
    out = {}
    for size in sizes:
        if size == 100 and fmt == "png":
            out[size] = src
            continue
        root = tmp / f"sample{size}-{fmt}"
        rows = ["id,split,label,class,path"]
        for r in recs:
            img = src.load(r)
            if size != img.shape[0]:
                img = cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC)
            rel = str(Path(r.relpath).with_suffix("." + fmt))
            write_image(root / rel, img)
            rows.append(f"{r.id},{r.split},{r.label},{r.class_name},{rel}")
        (root / "labels.csv").write_text("\n".join(rows) + "\n")
        out[size] = get_source("sample", root)
    return out


def time_runner(deg, src, out: Path, n: int, batch: int, workers: int) -> float:
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    res = rebuild_dataset(deg, src, out, seed=0, batch_size=batch, workers=workers, limit=n)
    dt = time.perf_counter() - t
    assert len(res.written) == n, res.counts
    return dt


def time_numpy_loop(deg, fn, src, out: Path, n: int) -> float:
    shutil.rmtree(out, ignore_errors=True)
    recs = src.records()[:n]
    t = time.perf_counter()
    for r in recs:
        img = read_image(r.path)
        params = deg.sample_params(numpy_rng(0, deg.kind, "params", r.id))
        y = fn(img, params, numpy_rng(0, deg.kind, "noise-np", r.id))
        write_image(out / r.relpath, y)
    return time.perf_counter() - t


def time_maths(deg, fn, src, n: int, batch: int) -> tuple[float, float]:
    """The maths alone, one thread each: batched ``apply_uint8`` vs ``degrade_one`` per image."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _time_maths(deg, fn, src, n, batch)
    finally:
        torch.set_num_threads(old)


def _time_maths(deg, fn, src, n: int, batch: int) -> tuple[float, float]:
    recs = src.records()[:n]
    imgs = [read_image(r.path) for r in recs]
    rows = [deg.sample_params(numpy_rng(0, deg.kind, "params", r.id)) for r in recs]
    t = time.perf_counter()
    with torch.no_grad():
        for i in range(0, n, batch):
            x = torch.from_numpy(np.stack(imgs[i:i + batch])).permute(0, 3, 1, 2)
            gens = [torch_generator(0, deg.kind, "noise", r.id) for r in recs[i:i + batch]]
            deg.apply_uint8(x, deg.stack_params(rows[i:i + batch], "cpu"), gens)
    batched = time.perf_counter() - t
    t = time.perf_counter()
    for img, p, r in zip(imgs, rows, recs):
        fn(img, p, numpy_rng(0, deg.kind, "noise-np", r.id))
    return batched, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kind", default="udc",
                    help="degradation kind: degrade.<kind>.make_<kind> and scripts/numpy_<kind>.py")
    ap.add_argument("--preset", default=None, help="first argument of make_<kind> (e.g. toled, poled)")
    ap.add_argument("--images", type=int, default=420, help="images per measurement")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--sizes", default="100,224")
    ap.add_argument("--format", choices=["png", "jpg"], default="png",
                    help="file format of the inputs (and so of the outputs): png like the sample set, "
                         "jpg like RAF-DB and KDEF")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()

    deg, fn = load_kind(args.kind, args.preset)
    ident = Identity()
    results = []
    with tempfile.TemporaryDirectory(prefix="fer-bench-degrade-") as tmpd:
        tmp = Path(tmpd)
        sizes = [int(v) for v in args.sizes.split(",")]
        sources = make_inputs(tmp, args.images, sizes, args.format)
        for size in sizes:
            src = sources[size]
            n = args.images
            best = {"io": np.inf, "full": np.inf, "numpy": np.inf, "maths_batched": np.inf, "maths_numpy": np.inf}
            for _ in range(args.repeats):
                best["io"] = min(best["io"], time_runner(ident, src, tmp / "io", n, args.batch_size, args.workers))
                best["full"] = min(best["full"], time_runner(deg, src, tmp / "full", n, args.batch_size, args.workers))
                best["numpy"] = min(best["numpy"], time_numpy_loop(deg, fn, src, tmp / "np", n))
                mb, mn = time_maths(deg, fn, src, min(n, 256), args.batch_size)
                best["maths_batched"] = min(best["maths_batched"], mb / min(n, 256) * n)
                best["maths_numpy"] = min(best["maths_numpy"], mn / min(n, 256) * n)
            ips = {k: n / v for k, v in best.items()}
            row = {"size": size, "format": args.format, "images": n,
                   "images_per_s": {k: round(v, 1) for k, v in ips.items()},
                   "full_over_io": round(ips["full"] / ips["io"], 3),
                   "full_over_numpy": round(ips["full"] / ips["numpy"], 2),
                   "maths_batched_over_numpy": round(ips["maths_batched"] / ips["maths_numpy"], 2)}
            results.append(row)
            print(f"{size}x{size} {args.format}: (a) I/O bound {ips['io']:.0f} img/s | "
                  f"(b) full pipeline {ips['full']:.0f} img/s | (c) per-image NumPy {ips['numpy']:.0f} img/s")
            print(f"    b/a = {row['full_over_io']:.2f} (target >= 0.7)   b/c = {row['full_over_numpy']:.1f}x "
                  f"(target >= 5)   maths alone: batched {ips['maths_batched']:.0f} img/s vs NumPy "
                  f"{ips['maths_numpy']:.0f} img/s ({row['maths_batched_over_numpy']:.1f}x, one thread each)")
    meta = {"kind": args.kind, "preset": args.preset, "batch_size": args.batch_size, "workers": args.workers,
            "runner_torch_threads": 1, "cpus": os.cpu_count(), "torch": torch.__version__,
            "degradation": deg.describe().get("preset", None), "results": results}
    print(f"kind={args.kind} preset={meta['degradation']} batch={args.batch_size} workers={args.workers} "
          f"(runner: 1 torch thread per batch) cpus={meta['cpus']} torch={torch.__version__}")
    if args.json:
        Path(args.json).write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
