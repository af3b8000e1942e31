"""LLDif speed: inference latency against LRDif and without the diffusion steps, and the cost
of a training step in each of LLDif's stages against LRDif's stages (same run, same machine).

1. **Inference latency per image** (stage 2): LLDif, the same LLDif network and weights with
   its diffusion steps skipped (the prior straight from PNET_S2), and LRDif at the same preset
   (the same LLformer/UDCformer), timed alternately in one run so machine load affects all
   alike. The ratios are the figures (LLDif's PNET_S2 reads pixels, so inference runs without
   CLIP; LRDif's FPEN_S2 needs the CLIP image embedding).
2. **Training step time** at batch ``--train-batch`` (default 64, the recipe's) for LLDif's
   ``la-clip``, ``s1`` and ``s2`` against LRDif's ``s1`` and ``s2`` (alternated, medians), as
   ratios to LRDif's stage-1 step. CLIP runs without its embedding cache, as with augmented
   training views.
3. Parameters per part (CLIP, frozen and outside the state dict, listed apart).

CLIP has random weights here (``clip_pretrained=None``; same compute as real weights).
Memory: ``python scripts/bench_lrdif.py`` measures the shared LLformer; LLDif adds PNET_S2.

    python scripts/bench_lldif.py                                # tiny + paper latency, tiny steps
    python scripts/bench_lldif.py --presets paper --T 8 --train-presets none
    python scripts/bench_lldif.py --device cuda --threads 8 --train-presets tiny,paper
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from fercore.progress import out_console, track  # noqa: E402
from fercore.seeding import torch_generator  # noqa: E402
from models import StepContext  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_lrdif  # noqa: E402  (the shared model builder, batch and timing helpers)
from bench_lrdif import diffusion_skipped, sync  # noqa: E402

#: Low-light metadata rows LLDif's captions read.
META = {"exposure_ev": "-2.7", "temperature_k": "5200", "shadows": "-0.8"}


def build(method: str, preset: str, device: str, stage: str, **kw):
    return bench_lrdif.build(preset, device, method=method, stage=stage, **kw)


def make_batch(model, n: int, device: str, seed: int = 0) -> dict:
    return bench_lrdif.make_batch(model, n, device, seed, meta=META)


def timed(fn, device: str) -> tuple[float, float]:
    sync(device)
    t, c = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return time.perf_counter() - t, time.process_time() - c


def alternate(calls: dict, repeats: int, device: str, what: str, per: int) -> dict:
    """Median wall and CPU seconds (divided by ``per``) of each call, timed in turn."""
    wall = {k: [] for k in calls}
    cpu = {k: [] for k in calls}
    for fn in calls.values():  # warm-up
        fn()
    for _ in track(range(repeats), what):
        for k, fn in calls.items():
            w, c = timed(fn, device)
            wall[k].append(w / per)
            cpu[k].append(c / per)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in calls}


def latency(preset: str, device: str, batch: int, repeats: int, T: int | None) -> tuple[dict, int]:
    kw = {"T": T} if T else {}
    ll = build("lldif", preset, device, "s2", **kw).eval()
    lr = build("lrdif", preset, device, "s2", **kw).eval()
    b = make_batch(ll, batch, device)

    def skipped():
        with diffusion_skipped(ll):
            ll.predict(b)

    with torch.inference_mode():
        res = alternate({"LLDif": lambda: ll.predict(b), "LLDif, diffusion skipped": skipped,
                         "LRDif": lambda: lr.predict(b)}, repeats, device,
                        f"latency {preset} (T={ll.diffusion.steps}, batch {batch})", batch)
    return res, ll.diffusion.steps


def train_steps(preset: str, device: str, batch: int, repeats: int) -> dict:
    models = {f"LLDif {s}": build("lldif", preset, device, s) for s in ("la-clip", "s1", "s2")}
    models.update({f"LRDif {s}": build("lrdif", preset, device, s) for s in ("s1", "s2")})
    b = make_batch(models["LLDif s1"], batch, device)
    calls = {}
    for name, m in models.items():
        m.train()
        stage = name.split()[1]

        def step(m=m, stage=stage):
            m.zero_grad(set_to_none=True)
            out = m.training_step(b, StepContext(stage=stage, generator=torch_generator(0, "bench")))
            out.loss.backward()

        calls[name] = step
    return alternate(calls, repeats, device, f"training steps {preset} (batch {batch})", 1)


def parameters(preset: str) -> list[tuple[str, float]]:
    m = build("lldif", preset, "cpu", "s2")
    rows = [(name, sum(p.numel() for p in mod.parameters()) / 1e6) for name, mod in m.named_children()
            if any(True for _ in mod.parameters())]
    rows.append(("CLIP (frozen, not in the state dict)", sum(p.numel() for p in m.clip.clip.parameters()) / 1e6))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="tiny,paper", help="presets for the latency test ('none' to skip)")
    ap.add_argument("--train-presets", default="tiny", help="presets for the training-step test ('none' to skip)")
    ap.add_argument("--batch", type=int, default=1, help="images per predict call in the latency test")
    ap.add_argument("--train-batch", type=int, default=64, help="batch of the training-step test")
    ap.add_argument("--repeats", type=int, default=30, help="timed calls per path")
    ap.add_argument("--T", type=int, default=None, help="reverse steps (default: the preset's, 4)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (1: CPU time is then a load-independent measure)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from rich.table import Table

    def presets(text):
        return [p.strip() for p in text.split(",") if p.strip() and p.strip() != "none"]

    out_console.print(f"device: {args.device}, torch {torch.__version__}, {args.threads} CPU threads")
    for preset in presets(args.presets):
        res, T = latency(preset, args.device, args.batch, args.repeats, args.T)
        t = Table(title=f"stage-2 inference per image, preset {preset}, T={T}, batch {args.batch} (medians)")
        for c in ("model", "wall (ms)", "CPU (ms)", "CPU / LLDif", "CPU / LRDif"):
            t.add_column(c, justify="right")
        base, lr = res["LLDif"][1], res["LRDif"][1]
        for k, (w, c) in res.items():
            t.add_row(k, f"{1e3 * w:.2f}", f"{1e3 * c:.2f}", f"{c / base:.3f}", f"{c / lr:.3f}")
        out_console.print(t)
        add = 100 * (base / res["LLDif, diffusion skipped"][1] - 1)
        out_console.print(f"{preset}: the {T} diffusion steps add {add:+.1f}% to LLDif's inference (CPU time)")
    for preset in presets(args.train_presets):
        res = train_steps(preset, args.device, args.train_batch, args.repeats)
        t = Table(title=f"one training step (forward + backward), preset {preset}, batch {args.train_batch}")
        for c in ("stage", "wall (ms)", "CPU (ms)", "CPU / LRDif s1"):
            t.add_column(c, justify="right")
        base = res["LRDif s1"][1]
        for k, (w, c) in res.items():
            t.add_row(k, f"{1e3 * w:.1f}", f"{1e3 * c:.1f}", f"{c / base:.3f}")
        out_console.print(t)
    for preset in presets(args.presets) or ["tiny"]:
        t = Table(title=f"LLDif parameters, preset {preset}")
        t.add_column("part")
        t.add_column("M", justify="right")
        for name, n in parameters(preset):
            t.add_row(name, f"{n:.3f}")
        out_console.print(t)


if __name__ == "__main__":
    main()
