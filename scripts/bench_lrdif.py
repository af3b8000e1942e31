"""LRDif speed and memory: what do the diffusion steps cost, and how much memory at batch 64?

1. **Latency.** Per-image inference latency of stage 2 (``T`` reverse steps on the prior)
   against the *same* network and weights with the diffusion steps skipped (the prior taken
   straight from FPEN_S2, as variant S2-V1 does). The two are timed alternately in one run,
   so machine load affects both alike; the figure that matters is the ratio (target: the
   diffusion adds < 10%).
2. **Peak memory** at batch 64 for the paper preset: inference (``predict`` under
   ``torch.inference_mode``) and one stage-2 training step (forward + backward through the
   4-step chain). Measured with the PyTorch profiler's memory timeline
   (``export_memory_timeline``), which works on CPU and CUDA alike: the peak of live tensor
   memory allocated *during* the measured call (weights that existed before are reported
   separately). On CUDA ``torch.cuda.max_memory_allocated`` is printed as a cross-check.

CLIP runs with random weights here (``clip_pretrained=None``; same compute as the real
weights) and without the embedding cache (a cache hit would skip CLIP).

    python scripts/bench_lrdif.py                       # tiny + paper latency, paper memory
    python scripts/bench_lrdif.py --presets tiny --no-memory --repeats 50
    python scripts/bench_lrdif.py --device cuda --threads 8
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from fercore.progress import out_console, track  # noqa: E402
from models import StepContext, create_model  # noqa: E402
from models.stage2 import predicted_prior  # noqa: E402


@contextlib.contextmanager
def diffusion_skipped(model):
    """The same model with its diffusion module removed (prior = FPEN_S2 output)."""
    saved = model.diffusion
    model.diffusion = None
    try:
        yield model
    finally:
        model.diffusion = saved


def build(preset: str, device: str, method: str = "lrdif", stage: str = "s2", **kw):
    """``method`` at ``preset`` with random CLIP weights and no embedding cache, in ``stage``
    (also used by ``bench_lldif.py``)."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = create_model(method, preset=preset, num_classes=7, clip_pretrained=None, clip_cache=False, **kw)
    m.begin_stage(stage)
    return m.to(device)


def make_batch(model, n: int, device: str, seed: int = 0, meta: dict | None = None) -> dict:
    """A random batch of ``n`` images (and landmarks / ``meta`` rows where the model reads them)."""
    g = torch.Generator().manual_seed(seed)
    s = model.image_size
    b = {"image": torch.rand(n, 3, s, s, generator=g).to(device),
         "label": torch.randint(0, 7, (n,), generator=g).to(device),
         "id": [f"bench_{seed}_{i}" for i in range(n)]}
    if meta is not None:
        b["meta"] = [dict(meta)] * n
    if "landmarks" in model.requires:
        b["landmarks"] = (torch.rand(n, 68, 2, generator=g) * 0.6 + 0.2).to(device)
    return b


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def latency(preset: str, device: str, batch: int, repeats: int, T: int | None) -> dict:
    """Median wall and CPU (process) time per image, with and without the diffusion steps."""
    model = build(preset, device, **({"T": T} if T else {})).eval()
    b = make_batch(model, batch, device)
    wall: dict[str, list[float]] = {"with": [], "without": []}
    cpu: dict[str, list[float]] = {"with": [], "without": []}
    with torch.inference_mode():
        for _ in range(3):  # warm-up both paths
            model.predict(b)
            with diffusion_skipped(model):
                model.predict(b)
        for _ in track(range(repeats), f"latency {preset} (T={model.diffusion.steps}, batch {batch})"):
            for key in ("with", "without"):
                ctx = contextlib.nullcontext(model) if key == "with" else diffusion_skipped(model)
                with ctx:
                    sync(device)
                    t, c = time.perf_counter(), time.process_time()
                    model.predict(b)
                    sync(device)
                    wall[key].append((time.perf_counter() - t) / batch)
                    cpu[key].append((time.process_time() - c) / batch)
        # the diffusion steps alone (start/inserted noise + T denoiser calls), CPU time
        cond = model.fpen_s2(model.image_embedding(model._images(b), b))   # the condition predict() uses
        alone = []
        for _ in range(repeats):
            sync(device)
            c = time.process_time()
            predicted_prior(model.diffusion, cond, b, b["image"], model.predict_seed, "lrdif-predict", None,
                            model.insert_noise)
            sync(device)
            alone.append((time.process_time() - c) / batch)
    med = {f"{k}_{kind}": 1e3 * statistics.median(v[k]) for kind, v in (("wall", wall), ("cpu", cpu)) for k in v}
    med["alone_cpu"] = 1e3 * statistics.median(alone)
    return {"preset": preset, "T": model.diffusion.steps, "batch": batch, **med}


def profiled_peak(fn, device: str) -> float:
    """Peak bytes of tensor memory allocated during ``fn()`` (profiler memory timeline)."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with profile(activities=acts, profile_memory=True, record_shapes=True, with_stack=True) as prof:
        fn()
        sync(device)
    dev = "cpu" if device == "cpu" else (device if ":" in device else f"{device}:0")
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = os.path.join(tmp, "timeline.json.gz")
        prof.export_memory_timeline(path, device=dev)
        with gzip.open(path, "rt") as fh:
            _, sizes = json.load(fh)
    return float(max((sum(row) for row in sizes), default=0))


def memory(preset: str, device: str, batch: int, train: bool) -> list[dict]:
    model = build(preset, device)
    weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    weights += sum(t.numel() * t.element_size() for t in [*model.clip.clip.parameters(), *model.clip.clip.buffers()])
    b = make_batch(model, batch, device)
    rows = []
    model.eval()

    def infer():
        with torch.inference_mode():
            model.predict(b)

    def measure(fn, what: str) -> None:
        fn()  # warm-up (lazy initialisations); on CUDA the peak then counts only the measured call
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        out_console.print(f"[dim]profiling {what}, {preset} ...[/]")
        peak = profiled_peak(fn, device)
        cuda = (torch.cuda.max_memory_allocated() - base) if device.startswith("cuda") else None
        rows.append({"what": what, "peak": peak, "cuda": cuda, "weights": weights})

    measure(infer, f"inference (predict), batch {batch}")
    if train:
        model.train()

        def step():
            model.zero_grad(set_to_none=True)
            out = model.training_step(b, StepContext(stage="s2", generator=torch.Generator().manual_seed(0)))
            out.loss.backward()

        measure(step, f"stage-2 training step, batch {batch}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="tiny,paper", help="comma-separated presets for the latency test")
    ap.add_argument("--batch", type=int, default=1, help="images per predict call in the latency test")
    ap.add_argument("--repeats", type=int, default=50, help="timed calls per path")
    ap.add_argument("--T", type=int, default=None, help="reverse steps (default: the preset's, 4)")
    ap.add_argument("--memory-batch", type=int, default=64)
    ap.add_argument("--memory-preset", default="paper")
    ap.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    ap.add_argument("--no-train-memory", action="store_true", help="measure inference memory only")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (1: CPU time is then a load-independent latency measure)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from rich.table import Table

    out_console.print(f"device: {args.device}, torch {torch.__version__}, {args.threads} CPU threads")
    t = Table(title="LRDif stage-2 inference latency per image (medians; both paths alternated in one run)")
    for c in ("preset", "T", "batch", "clock", "with diffusion (ms)", "without (ms)", "ratio", "diffusion adds"):
        t.add_column(c, justify="right")
    alone = []
    for preset in [p.strip() for p in args.presets.split(",") if p.strip()]:
        r = latency(preset, args.device, args.batch, args.repeats, args.T)
        for clock in ("wall", "cpu"):
            ratio = r[f"with_{clock}"] / r[f"without_{clock}"]
            add = 100 * (ratio - 1)
            t.add_row(preset, str(r["T"]), str(r["batch"]), clock, f"{r[f'with_{clock}']:.2f}",
                      f"{r[f'without_{clock}']:.2f}", f"{ratio:.3f}",
                      f"[{'green' if add < 10 else 'red'}]{add:+.1f}%[/]")
        alone.append(f"{preset}: the {r['T']} diffusion steps alone take {r['alone_cpu']:.3f} ms CPU per image = "
                     f"{100 * r['alone_cpu'] / r['without_cpu']:.1f}% of the network without them")
    out_console.print(t)
    for line in alone:
        out_console.print(line)
    if args.no_memory:
        return
    rows = memory(args.memory_preset, args.device, args.memory_batch, not args.no_train_memory)
    t = Table(title=f"LRDif peak memory, preset {args.memory_preset} (profiler memory timeline, {args.device})")
    for c in ("measured call", "peak in call (MiB)", "weights+CLIP (MiB)", "cuda max_alloc (MiB)"):
        t.add_column(c, justify="right")
    for r in rows:
        t.add_row(r["what"], f"{r['peak'] / 2**20:.0f}", f"{r['weights'] / 2**20:.0f}",
                  "-" if r["cuda"] is None else f"{r['cuda'] / 2**20:.0f}")
    out_console.print(t)


if __name__ == "__main__":
    main()
