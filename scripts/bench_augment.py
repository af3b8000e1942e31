"""Speed of a degradation as an augmentation: noise drawn per sample on the CPU vs on the device.

Times, in one run and interleaved (the best of ``--repeats`` is kept; the machine is shared):

(a) **CPU noise** -- the previous ``UDCAugment`` path: one CPU ``torch.Generator`` per sample
    (``degradation.draws``), normals drawn on the CPU per sample, stacked and copied to the
    images' device (what a rebuilt set does, so its bytes do not depend on the device);
(b) **device noise** -- :class:`degrade.udc.UDCAugment` / :class:`degrade.lowlight.LowLightAugment`:
    one generator on the images' device, one draw for the batch.

Each is timed for the noise alone and for the whole augmentation (parameters, noise, simulator),
and the ratios a/b are printed. On a CPU-only machine both draw on the CPU, so the ratio shows
only the per-sample overhead; on CUDA (b) also saves the host-to-device copy of the noise.

Example: ``python scripts/bench_augment.py --batch 256 --size 224 --device cpu``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from degrade.augment import noise_source  # noqa: E402
from degrade.lowlight import LowLightAugment, make_lowlight  # noqa: E402
from degrade.udc import UDCAugment, make_udc  # noqa: E402
from fercore.transform import standard_normal  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_of(fn, repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads on the CPU")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    x = torch.rand(args.batch, 3, args.size, args.size, device=device)
    ids = list(range(args.batch))
    shape = (3, args.size, args.size)
    print(f"batch {args.batch} x 3 x {args.size} x {args.size} on {device}, best of {args.repeats}")
    for name, deg, aug in (("udc toled", make_udc("toled"), UDCAugment("toled", p=1.0, seed=0)),
                           ("lowlight realistic", make_lowlight("realistic"), LowLightAugment("realistic", p=1.0,
                                                                                               seed=0))):
        aug.to(device)
        rows, _ = deg.draws(0, ids, tag="bench")
        params = deg.stack_params(rows, device)

        def cpu_noise():
            _, gens = deg.draws(0, ids, tag="bench")
            return standard_normal(gens, shape, device)

        def device_noise():
            return standard_normal(torch.Generator(device=device).manual_seed(0), shape, device, batch=args.batch)

        def cpu_full():
            _, gens = deg.draws(0, ids, tag="bench")
            return deg.apply(x, params, gens)

        def device_full():
            return deg.apply(x, params, noise_source(deg, torch.tensor([0]), x))

        aug(x)  # warm up: PSF / OTF caches, kernels
        cpu_full()
        t = {k: [] for k in ("cpu_noise", "dev_noise", "cpu_full", "dev_full", "module")}
        for _ in range(args.repeats):  # interleaved
            t["cpu_noise"].append(best_of(cpu_noise, 1, device))
            t["dev_noise"].append(best_of(device_noise, 1, device))
            t["cpu_full"].append(best_of(cpu_full, 1, device))
            t["dev_full"].append(best_of(device_full, 1, device))
            t["module"].append(best_of(lambda: aug(x), 1, device))
        b = {k: min(v) * 1000 for k, v in t.items()}
        print(f"{name:20s} noise: CPU per sample {b['cpu_noise']:8.1f} ms, device {b['dev_noise']:8.1f} ms, "
              f"ratio {b['cpu_noise'] / b['dev_noise']:5.2f}")
        print(f"{'':20s} whole: CPU noise    {b['cpu_full']:8.1f} ms, device {b['dev_full']:8.1f} ms, "
              f"ratio {b['cpu_full'] / b['dev_full']:5.2f}  (module call {b['module']:.1f} ms)")


if __name__ == "__main__":
    main()
