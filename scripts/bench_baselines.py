"""What the baselines cost and whether they learn: two measurements, ratios within one run.

``speed``: median time of one training step (forward, backward, optimiser step, with the method's
in-batch augmentation) and of one prediction for each method, divided by the same for a plain
``backbone + linear + cross-entropy`` model measured in the same run (wall-clock time on a shared
machine is noisy; the ratios are what to read). Also parameter counts.

    PYTHONPATH=. python scripts/bench_baselines.py speed --preset paper --size 112 --batch 8 --steps 5
    PYTHONPATH=. python scripts/bench_baselines.py speed --preset tiny --size 64 --batch 32

``sample``: train each method's ``tiny`` preset for a few epochs on the embedded sample set
(64x64, horizontal flips, each method's own optimiser family and in-batch augmentation, SCN's
relabelling applied to the label table) and print test accuracy next to the toolkit's ``cnn``
and ``plain`` (the tiny ResNet-18 with a linear head, cross-entropy only, Adam 1e-3) trained the
same way. A smoke figure ("does it learn at all"), not the benchmark: the runner
(``fer-bench run``) trains with the full recipes.

    PYTHONPATH=. python scripts/bench_baselines.py sample --epochs 5 --seed 0
    PYTHONPATH=. python scripts/bench_baselines.py sample --warm-start 8 --epochs 4   # from a trained backbone
    PYTHONPATH=. python scripts/bench_baselines.py sample --methods posterpp,posterpp-heatmap --epochs 12

Methods needing landmarks (``posterpp-heatmap`` = POSTER++ tiny with ``landmarks="heatmap"``) get
dlib's 68 points of the sample images (``fercore.landmarks.landmarks_for``, cached under
``$FER_CACHE``), flipped with the image. With ``--warm-start`` every backbone family the tiny
presets use (``cnn-tiny``, the tiny ResNet-18 / IR-50) gets its own plain model trained first.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.table import Table
from torch import nn

from fercore.progress import out_console, track
from fercore.seeding import torch_generator
from models import create_model
from models.backbones import create_backbone, load_pretrained
from models.base import FERModel, Normalize, StepContext, StepOutput
from models.recipe import Recipe
from models.train import build_optimizer, build_scheduler, train_step

METHODS = ["scn", "rul", "eac", "dan", "arm", "manet", "dacl", "posterpp"]
#: extra names for ``sample``: registry name and constructor overrides
VARIANTS = {"posterpp-heatmap": ("posterpp", {"landmarks": "heatmap"})}


class PlainBackbone(FERModel):
    """The reference: backbone, global average pooling, linear classifier, cross-entropy."""

    def __init__(self, backbone: str, num_classes: int = 7):
        super().__init__(num_classes)
        self.norm = Normalize()
        self.backbone = create_backbone(backbone, verbose=False)
        self.fc = nn.Linear(self.backbone.num_features, num_classes)

    def training_step(self, batch, ctx):
        f = self.backbone.forward_features(self.norm(batch["image"])).mean((2, 3))
        logits = self.fc(f)
        return StepOutput(logits, {"ce": F.cross_entropy(logits, batch["label"])}, f)

    def predict(self, batch, ctx=None):
        f = self.backbone.forward_features(self.norm(batch["image"])).mean((2, 3))
        return StepOutput(self.fc(f), {}, f)


def _median_ratio(fn, ref, rounds: int) -> tuple[float, float]:
    """Median over ``rounds`` of time(fn) / time(ref), the two run back to back in each round so
    both see the same machine load; also the median time of ``fn`` in seconds."""
    fn(), ref()  # warm-up
    ratios, times = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        ref()
        t1 = time.perf_counter()
        fn()
        t2 = time.perf_counter()
        ratios.append((t2 - t1) / (t1 - t0))
        times.append(t2 - t1)
    return float(np.median(ratios)), float(np.median(times))


def speed(args) -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    batch = {"image": torch.rand(args.batch, 3, args.size, args.size, generator=g),
             "label": torch.arange(args.batch) % 7, "index": torch.arange(args.batch),
             "landmarks": torch.rand(args.batch, 68, 2, generator=g) * 0.6 + 0.2}  # for POSTER++'s heatmaps

    def runners(model):
        opt = torch.optim.SGD(model.trainable_parameters(), lr=1e-4)  # same optimiser cost for all
        ctx = StepContext(generator=torch_generator(0, "bench"))

        def train():
            train_step(model, opt, batch, ctx)

        def pred():
            model.eval()
            with torch.no_grad():
                model.predict(batch)
        return train, pred

    rows = []
    for name in track(args.methods or METHODS, "timing"):
        bb = _preset_backbone(name, args.preset)
        model, ref = create_model(name, preset=args.preset), PlainBackbone(bb)
        (mt, mp), (rt, rp) = runners(model), runners(ref)
        r_train, t_train = _median_ratio(mt, rt, args.steps)
        r_pred, _ = _median_ratio(mp, rp, args.steps)
        n, rn = (sum(p.numel() for p in m.parameters()) for m in (model, ref))
        rows.append((name, bb, r_train, r_pred, n / 1e6, rn / 1e6, t_train * 1e3))
    t = Table(title=f"{args.preset} presets, {args.size}x{args.size}, batch {args.batch}, "
                    f"{torch.get_num_threads()} thread(s), median of {args.steps} rounds: "
                    "ratios to backbone + linear + CE timed alternately in this run")
    for c in ("method", "backbone", "train step x", "predict x", "params (M)", "backbone+fc (M)", "train step ms"):
        t.add_column(c, justify="right" if c != "method" else "left")
    for name, bb, a, b, n, rn, ms in rows:
        t.add_row(name, bb, f"{a:.2f}", f"{b:.2f}", f"{n:.2f}", f"{rn:.2f}", f"{ms:.0f}")
    out_console.print(t)


def _preset_backbone(name: str, preset: str) -> str:
    from models import get_entry

    return get_entry(name).presets[preset].get("backbone", "resnet18")


def _load_split(src, split: str, size: int):
    recs = src.records(split)
    x = torch.from_numpy(np.stack([src.load(r) for r in recs])).permute(0, 3, 1, 2).float().div(255)
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x, torch.tensor([r.label for r in recs])


def _load_landmarks(src, split: str) -> torch.Tensor:
    """dlib's 68 points of a split, ``(N, 68, 2)`` in [0, 1] (cached)."""
    from fercore.landmarks import landmarks_for
    from fercore.cache import cache_dir

    return torch.from_numpy(landmarks_for(src, src.records(split), cache_dir() / "landmarks"))


def _flip_points(points: torch.Tensor) -> torch.Tensor:
    from fercore.landmarks import flip_landmarks

    return torch.from_numpy(flip_landmarks(points.numpy()))


def _plain_backbone(name: str) -> str:
    """The backbone of the plain reference a method warm-starts from: its tiny preset's trunk."""
    from models.registry import resolve_config

    method, opts = VARIANTS.get(name, (name, {}))
    kwargs, _ = resolve_config(method, "tiny", None, **opts)
    return kwargs.get("backbone", "resnet18-tiny")


def train_on_sample(name: str, xtr, ytr, xte, yte, epochs: int, seed: int, batch: int,
                    pretrained: str | None = None, keep: list | None = None,
                    landmarks: tuple | None = None) -> tuple[float, float]:
    """Train ``name`` (``plain``, ``plain:<backbone>``, a method or a :data:`VARIANTS` name) and
    return (test accuracy, seconds). ``landmarks`` = (train, test) points for models needing them."""
    torch.manual_seed(seed)
    if name.startswith("plain"):  # a tiny backbone with a linear head and CE only
        model = PlainBackbone(name.partition(":")[2] or "resnet18-tiny")
        if pretrained:
            load_pretrained(model.backbone, pretrained, verbose=False)
        model.recipe = Recipe(optimizer="adam", lr=1e-3, weight_decay=1e-4, schedule="exponential",
                              schedule_args={"gamma": 0.9}, epochs=epochs, batch_size=batch, augment=("hflip",))
    else:
        method, opts = VARIANTS.get(name, (name, {}))
        extra = {"pretrained": pretrained} if pretrained else {}
        model = create_model(method, preset="tiny", recipe={"epochs": epochs, "batch_size": batch}, **opts, **extra)
    needs = "landmarks" in model.requires
    if needs and landmarks is None:
        raise SystemExit(f"{name} needs landmarks")
    if keep is not None:
        keep.append(model)
    r = model.recipe
    opt = build_optimizer(model, r)
    sched = build_scheduler(opt, r, epochs)
    labels = ytr.clone()  # the label table (SCN may relabel)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(len(xtr), generator=torch_generator(seed, "shuffle", epoch))
        for step, i in enumerate(range(0, len(order) - batch + 1, batch)):
            idx = order[i:i + batch]
            x = xtr[idx]
            pts = landmarks[0][idx] if needs else None
            if "hflip" in r.augment:
                flip = torch.rand(len(idx), generator=torch_generator(seed, "flip", epoch, step)) < 0.5
                x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
                if pts is not None:
                    pts = torch.where(flip.view(-1, 1, 1), _flip_points(pts), pts)
            ctx = StepContext(epoch=epoch, step=step, generator=torch_generator(seed, name, epoch, step))
            b = {"image": x, "label": labels[idx], "index": idx}
            if pts is not None:
                b["landmarks"] = pts
            out = train_step(model, opt, b, ctx, r.grad_clip)
            if "new_labels" in out.extras:
                labels[idx] = out.extras["new_labels"]
        sched.step()
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model.predict({"image": xte[i:i + 210], **({"landmarks": landmarks[1][i:i + 210]}
                                                                     if needs else {})}).logits.argmax(1)
                          for i in range(0, len(xte), 210)])
    return (pred == yte).float().mean().item(), time.perf_counter() - t0


def sample(args) -> None:
    import tempfile

    from fercore.sources import get_source

    src = get_source("sample", seed=0)
    xtr, ytr = _load_split(src, "train", 64)
    xte, yte = _load_split(src, "test", 64)
    methods = args.methods or METHODS
    lmk = None
    if any(_needs_landmarks(m) for m in methods):
        lmk = (_load_landmarks(src, "train"), _load_landmarks(src, "test"))
    start = ""
    weights: dict[str, str] = {}
    backbones = list(dict.fromkeys(_plain_backbone(m) for m in methods))
    if args.warm_start:
        accs = []
        for bb in backbones:
            kept: list = []
            acc, _ = train_on_sample(f"plain:{bb}", xtr, ytr, xte, yte, args.warm_start, args.seed, args.batch,
                                     keep=kept)
            weights[bb] = str(Path(tempfile.mkdtemp(prefix="fer-warm-")) / f"plain_{bb}.pth")
            torch.save({"state_dict": kept[0].backbone.state_dict()}, weights[bb])
            accs.append(f"{bb} {acc:.3f}")
        start = (f", every model starts from a plain backbone trained {args.warm_start} epochs "
                 f"(test {', '.join(accs)})")
    t = Table(title=f"sample set, tiny presets, 64x64, {args.epochs} epochs, batch {args.batch}, seed {args.seed}{start}")
    for c in ("method", "test accuracy", "train time ratio to cnn"):
        t.add_column(c)
    results = {}
    plains = [f"plain:{bb}" for bb in backbones]
    names = (plains if weights else ["cnn", *plains]) + list(methods)
    for name in track(names, "training on the sample set"):
        pre = weights.get(name.partition(":")[2] if name.startswith("plain") else _plain_backbone(name))
        results[name] = train_on_sample(name, xtr, ytr, xte, yte, args.epochs, args.seed, args.batch,
                                        pre if name != "cnn" else None, landmarks=lmk)
    ref_name = plains[0] if weights else "cnn"
    ref = results[ref_name][1]
    for name, (acc, secs) in results.items():
        t.add_row(name, f"{acc:.3f}", f"{secs / ref:.2f}")
    t.columns[2].header = f"train time ratio to {ref_name}"
    out_console.print(t)
    out_console.print(f"chance = {1 / 7:.3f}; 420 test images of 12 unseen people")


def _needs_landmarks(name: str) -> bool:
    method, opts = VARIANTS.get(name, (name, {}))
    return "landmarks" in create_model(method, preset="tiny", **opts).requires


def _methods(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in METHODS and n not in VARIANTS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown method(s) {bad}; choose from {', '.join(METHODS + list(VARIANTS))}")
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("speed", help="step-time ratios against a plain backbone (same run)")
    s.add_argument("--preset", default="tiny", choices=["tiny", "paper"])
    s.add_argument("--size", type=int, default=64)
    s.add_argument("--batch", type=int, default=16)
    s.add_argument("--steps", type=int, default=5, help="rounds (median)")
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--methods", type=_methods, default=None, help="comma-separated subset (default: all)")
    m = sub.add_parser("sample", help="short training of the tiny presets on the sample set")
    m.add_argument("--epochs", type=int, default=5)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--batch", type=int, default=32)
    m.add_argument("--threads", type=int, default=1)
    m.add_argument("--methods", type=_methods, default=None,
                   help=f"comma-separated subset of {', '.join(METHODS + list(VARIANTS))} (default: the methods)")
    m.add_argument("--warm-start", type=int, default=0, metavar="EPOCHS",
                   help="first train the plain tiny ResNet this long and start every model from its "
                        "backbone (pretrained=PATH), as the official methods start from face-pretrained weights")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out_console.width = max(out_console.width, 130)  # tables wider than a pipe's 80 columns
    speed(args) if args.cmd == "speed" else sample(args)


if __name__ == "__main__":
    main()
