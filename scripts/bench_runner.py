"""Speed of the benchmark's data pipeline and runner, as ratios measured in one run.

    python scripts/bench_runner.py --size 64 --repeats 5   (or: python -m scripts.bench_runner ...)

Prints images per second of

(a) the I/O bound: decoding and resizing the sample set's training images (what any pipeline
    must do once);
(b) our batched augmentation (``benchmark.augment.Augmenter``: flip, random resized crop,
    rotation, colour jitter, erasing, per-item parameters from per-item generators), on
    batches of 64;
(c) the same augmentations as a per-image torchvision ``transforms.v2`` pipeline (the usual
    way FER code does it);

and the time of one training epoch of the tiny CNN

(d) through ``fer-bench``'s runner (``JobRunner.train_epoch``: seeded order, per-item
    augmentation draws, the batch contract; evaluation and checkpoint excluded),
(e) in a bare loop over the same cached batches without augmentation.

Targets: (b) >= 3x (c); the runner's epoch (d) <= 1.25x the bare loop (e). Wall-clock times
on a shared machine are noisy: the five measurements take turns in each of ``--repeats``
rounds and the best of each is kept; only the ratios mean something.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch


def interleaved_best(fns: dict, repeats: int) -> dict[str, float]:
    """Best time of each function over ``repeats`` rounds, the functions taking turns within
    a round, so a change in machine load affects all of them alike."""
    best = {k: float("inf") for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=64, help="input side")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--images", type=int, default=640, help="training images used")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from benchmark.augment import Augmenter, stack_params
    from benchmark.distributed import DistInfo
    from benchmark.data import ImageTable, epoch_batches, load_resized
    from fercore.compat import import_torchvision
    from fercore.seeding import numpy_rng
    from fercore.sources import get_source

    src = get_source("sample")
    recs = src.records("train")[: args.images]
    n = len(recs)
    size = args.size

    # (a) I/O bound
    def io_bound():
        for r in recs:
            load_resized(src, r, size)

    table = ImageTable(src, recs, size, workers=0)
    ids = table.ids
    names = ("hflip", "rrc", "rotate", "color", "erase")
    aug = Augmenter(names, size)
    batches = [np.arange(i, min(n, i + 64)) for i in range(0, n, 64)]

    # (b) batched, with the per-item parameter draws
    def ours():
        for pos, imgs in table.iter_batches(batches):
            rows = [aug.draw(numpy_rng(0, "augment", "main", 0, ids[i])) for i in pos]
            aug(imgs.float().div(255), stack_params(rows))


    # (c) per-image torchvision v2
    tv = import_torchvision()
    from torchvision.transforms import v2

    pipe = v2.Compose([v2.RandomHorizontalFlip(), v2.RandomResizedCrop(size, scale=(0.8, 1.0), antialias=True),
                       v2.RandomRotation(10), v2.ColorJitter(0.2, 0.2, 0.2, 0.02), v2.RandomErasing(0.5, (0.02, 0.25))])
    del tv

    def per_image():
        for pos, imgs in table.iter_batches(batches):
            x = imgs.float().div(255)
            torch.stack([pipe(x[i]) for i in range(len(pos))])


    # (d) / (e): one epoch of the tiny CNN through the runner vs a bare loop
    from models import create_model
    from models.base import StepContext
    from models.train import build_optimizer, train_step

    from benchmark.datasets import DataSettings, resolve_datasets
    from benchmark.runner import Job, JobRunner, RunSettings
    from benchmark.specs import MethodSpec, RecipeOverrides, plan_model

    import tempfile

    (ds,) = resolve_datasets(["sample"], DataSettings())
    plan = plan_model(MethodSpec("cnn"), RecipeOverrides(input_size=size), "tiny")
    settings = RunSettings(Path(tempfile.mkdtemp()), device="cpu", workers=0, limit_train=n, limit_test=64)
    runner = JobRunner(Job(plan, ds, 0), settings, DistInfo())
    torch.manual_seed(0)
    model = create_model("cnn", "tiny", 7, recipe={"input_size": size})
    runner.build_data(model)
    opt = build_optimizer(model)
    labels = torch.as_tensor(runner.train.labels).clone()
    train_batches = epoch_batches(len(runner.train), 64, 0, "main", 0)

    def runner_epoch():
        runner.train_epoch(model, opt, "main", 0, labels)

    def bare_epoch():
        model.train()
        for pos, imgs in runner.train.iter_batches(train_batches):
            batch = {"image": imgs.float().div(255), "label": labels[torch.as_tensor(pos)]}
            train_step(model, opt, batch, StepContext())

    runner_epoch()  # warm-up (first-touch allocations, lazy imports)
    t = interleaved_best({"io": io_bound, "ours": ours, "tv": per_image, "run": runner_epoch, "bare": bare_epoch},
                         args.repeats)
    t_io, t_ours, t_tv, t_run, t_bare = t["io"], t["ours"], t["tv"], t["run"], t["bare"]

    print(f"sample set, {n} images at {size}x{size}, {args.threads} thread(s), best of {args.repeats}")
    print(f"(a) decode + resize (I/O bound)          {n / t_io:9.0f} img/s")
    print(f"(b) batched augmentation (ours)          {n / t_ours:9.0f} img/s")
    print(f"(c) per-image torchvision v2             {n / t_tv:9.0f} img/s")
    print(f"    ours / per-image                     {t_tv / t_ours:9.2f}x   (target >= 3x)")
    print(f"    ours / I/O bound                     {t_io / t_ours:9.2f}x")
    print(f"(d) runner epoch (tiny CNN)              {t_run:9.2f} s")
    print(f"(e) bare loop epoch, no augmentation     {t_bare:9.2f} s")
    print(f"    runner / bare                        {t_run / t_bare:9.2f}x   (target <= 1.25x)")


if __name__ == "__main__":
    main()
