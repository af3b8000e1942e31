"""How hard is the embedded sample set? Train a small CNN and print test accuracy.

Prints the test accuracy after each epoch (a small CNN needs real training: it starts near
chance) and, at the end, on the test set degraded by blur, noise and darkness, each alone and
combined, so the README can show that degradation measurably lowers accuracy.

    python scripts/sample_difficulty.py --epochs 30 --seed 0

The first degradations are deliberately simple NumPy/OpenCV versions (Gaussian blur, Gaussian
noise, a dark exposure); then come the toolkit's own simulators, as ``fer-degrade`` rebuilds the
test split (UDC with the ``toled`` and ``poled`` displays, low light with the ``lldif`` and
``realistic`` presets; run seed 0).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from fercore.sources import get_source


def small_cnn(num_classes: int = 7) -> nn.Module:
    def block(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
                             nn.Conv2d(o, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True),
                             nn.MaxPool2d(2))
    return nn.Sequential(block(3, 24), block(24, 48), block(48, 96), block(96, 160),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(160, num_classes))


def blur(x: np.ndarray, rng) -> np.ndarray:
    return cv2.GaussianBlur(x, (0, 0), 2.0)


def noise(x: np.ndarray, rng) -> np.ndarray:
    return np.clip(x.astype(np.float32) + rng.normal(0, 25, x.shape), 0, 255).astype(np.uint8)


def dark(x: np.ndarray, rng) -> np.ndarray:
    lin = (x.astype(np.float32) / 255.0) ** 2.2 * 0.06          # about -4 EV in linear light
    return np.clip(np.round(lin ** (1 / 2.2) * 255), 0, 255).astype(np.uint8)


def dark_noisy(x, rng):
    return noise(dark(x, rng), rng)


def all_three(x, rng):
    return noise(dark(blur(x, rng), rng), rng)


def simulated_copies(src) -> list[tuple[str, list[np.ndarray]]]:
    """The test split as ``fer-degrade`` rebuilds it with each simulator preset (seed 0)."""
    from degrade.lowlight import make_lowlight
    from degrade.rebuild import rebuild_dataset
    from degrade.udc import make_udc

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, deg in [("UDC, toled display", make_udc("toled")), ("UDC, poled display", make_udc("poled")),
                          ("low light, lldif preset", make_lowlight("lldif")),
                          ("low light, realistic preset", make_lowlight("realistic"))]:
            root = Path(tmp) / name.replace(" ", "_").replace(",", "")
            rebuild_dataset(deg, src, root, split="test", workers=0, command="sample_difficulty")
            copy = get_source("sample", root)
            out.append((name, [copy.load(r) for r in copy.records("test")]))
    return out


def to_tensor(imgs: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float().div(255.0)


def evaluate(model, x, y) -> float:
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 256]).argmax(1) for i in range(0, len(x), 256)])
    return (pred == y).float().mean().item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample-seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    src = get_source("sample", seed=args.sample_seed)
    tr, te = src.records("train"), src.records("test")
    xtr = to_tensor([src.load(r) for r in tr])
    ytr = torch.tensor([r.label for r in tr])
    te_imgs = [src.load(r) for r in te]
    yte = torch.tensor([r.label for r in te])
    xte = to_tensor(te_imgs)
    model = small_cnn(len(src.classes))
    opt = torch.optim.Adam(model.parameters(), 1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    g = torch.Generator().manual_seed(args.seed)
    print(f"train {len(tr)} / test {len(te)} images, {sum(p.numel() for p in model.parameters())} params")
    t0 = time.time()
    for ep in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(perm), 64):
            idx = perm[i:i + 64]
            xb = xtr[idx]
            flip = torch.rand(len(idx), generator=g) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            dx, dy = (int(v) for v in torch.randint(-6, 7, (2,), generator=g))
            xb = torch.roll(xb, (dy, dx), (2, 3))
            loss = nn.functional.cross_entropy(model(xb), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        print(f"epoch {ep:3d}  loss {loss.item():.3f}  test acc {100 * evaluate(model, xte, yte):.1f}%  "
              f"({time.time() - t0:.0f}s)", flush=True)
    print("\ncondition            test accuracy")
    for name, fn in [("clean", None), ("blur (sigma 2 px)", blur), ("noise (sigma 25/255)", noise),
                     ("dark (-4 EV)", dark), ("dark + noise", dark_noisy), ("blur + dark + noise", all_three)]:
        rng = np.random.default_rng(1234)
        imgs = te_imgs if fn is None else [fn(im, rng) for im in te_imgs]
        print(f"{name:20s} {100 * evaluate(model, to_tensor(imgs), yte):6.1f}%")
    for name, imgs in simulated_copies(src):
        print(f"{name:28s} {100 * evaluate(model, to_tensor(imgs), yte):6.1f}%")


if __name__ == "__main__":
    main()
