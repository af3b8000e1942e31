"""The batched augmentations and the data pipeline's determinism (values, no training)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.augment import (IMAGENET_MEAN, AugmentConfig, Augmenter, affine_theta, color_jitter, erase,
                               eval_params, sample_params, stack_params, warp, warp_points)
from fercore.landmarks import FLIP_68
from fercore.seeding import numpy_rng

ALL = ("hflip", "crop", "rrc", "rotate", "color", "erase")


def _ones(b):
    return torch.ones(b)


def test_identity_and_flip_are_exact():
    x = torch.rand(3, 3, 20, 20)
    z = torch.zeros(3)
    ident = warp(x, affine_theta(z, z, z, _ones(3), _ones(3), z))
    assert torch.allclose(ident, x, atol=1e-6)
    flipped = warp(x, affine_theta(_ones(3), z, z, _ones(3), _ones(3), z))
    assert torch.allclose(flipped, torch.flip(x, dims=[-1]), atol=1e-6)


def test_crop_window_maps_to_the_right_pixels():
    """A half-size window centred on the top-left quadrant shows exactly that quadrant."""
    x = torch.arange(16.0).view(1, 1, 4, 4)
    t = affine_theta(torch.zeros(1), torch.tensor([-0.5]), torch.tensor([-0.5]), torch.tensor([0.5]),
                     torch.tensor([0.5]), torch.zeros(1))
    out = warp(x, t, size=2)
    assert torch.allclose(out, x[..., :2, :2], atol=1e-5)


def test_landmarks_follow_the_image():
    """A bright dot at each landmark position lands where warp_points moves the landmark."""
    cfg = AugmentConfig(rotate_deg=25)
    size = 64
    rng = np.random.default_rng(0)
    pts = torch.tensor(rng.uniform(0.3, 0.7, (6, 1, 2)), dtype=torch.float32)
    img = torch.zeros(6, 3, size, size)
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    for i in range(6):
        d2 = (xx - pts[i, 0, 0] * size) ** 2 + (yy - pts[i, 0, 1] * size) ** 2
        img[i] = torch.exp(-d2 / 4.0)
    rows = [sample_params(numpy_rng(1, "aug", i), ("hflip", "rrc", "rotate"), cfg) for i in range(6)]
    rows[0]["flip"] = 1.0
    p = stack_params(rows)
    theta = affine_theta(p["flip"], p["cx"], p["cy"], p["sx"], p["sy"], p["angle"])
    out = warp(img, theta)[:, 0]
    moved = warp_points(pts, theta, p["flip"]) * size
    for i in range(6):
        flat = int(out[i].argmax())
        peak = torch.tensor([flat % size + 0.5, flat // size + 0.5])
        assert torch.linalg.norm(peak - moved[i, 0]) < 1.5, (i, peak, moved[i, 0])


def test_flipped_landmarks_swap_left_and_right():
    pts = torch.rand(1, 68, 2)
    t = affine_theta(torch.ones(1), torch.zeros(1), torch.zeros(1), torch.ones(1), torch.ones(1), torch.zeros(1))
    out = warp_points(pts, t, torch.ones(1))
    assert torch.allclose(out[0, 36, 0], 1 - pts[0, 45, 0], atol=1e-6)  # right eye corner <- left's mirror
    assert torch.allclose(out[0, :, 1], pts[0, FLIP_68, 1], atol=1e-6)
    nan = torch.full((1, 68, 2), float("nan"))
    assert torch.isnan(warp_points(nan, t, torch.ones(1))).all()


def test_color_jitter_and_erase_values():
    x = torch.rand(2, 3, 8, 8) * 0.8
    one, zero = torch.ones(2), torch.zeros(2)
    half = color_jitter(x, torch.tensor([0.5, 1.0]), one, one, zero)
    assert torch.allclose(half[0], x[0] * 0.5, atol=1e-6) and torch.allclose(half[1], x[1], atol=1e-6)
    grey = color_jitter(x, one, one, zero, zero)
    assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-5) and torch.allclose(grey[:, 1], grey[:, 2], atol=1e-5)
    # contrast and saturation are torchvision's; hue rotation keeps grey grey and r+g+b fixed
    from fercore.compat import import_torchvision

    import_torchvision()
    import torchvision.transforms.functional as TF

    c, s = torch.tensor([0.7, 1.3]), torch.tensor([1.25, 0.4])
    assert torch.allclose(color_jitter(x, one, c, one, zero),
                          torch.stack([TF.adjust_contrast(x[i], float(c[i])) for i in range(2)]), atol=1e-4)
    assert torch.allclose(color_jitter(x, one, one, s, zero),
                          torch.stack([TF.adjust_saturation(x[i], float(s[i])) for i in range(2)]), atol=1e-4)
    g = torch.full((2, 3, 4, 4), 0.4)
    assert torch.allclose(color_jitter(g, one, one, one, torch.tensor([0.3, -0.1])), g, atol=1e-6)
    mid = 0.3 + 0.4 * x  # away from 0 and 1, where nothing clips
    hued = color_jitter(mid, one, one, one, torch.tensor([0.1, 0.05]))
    assert torch.allclose(hued.sum(1), mid.sum(1), atol=1e-5) and not torch.allclose(hued, mid, atol=1e-3)
    out = erase(x, torch.tensor([1.0, 0.0]), torch.tensor([0.25, 0.25]), torch.tensor([0.5, 0.5]),
                torch.tensor([0.5, 0.5]), torch.tensor([0.25, 0.25]))
    region = out[0, :, 4:6, 2:6]
    assert torch.allclose(region, torch.tensor(IMAGENET_MEAN).view(3, 1, 1).expand_as(region))
    mask = torch.ones(8, 8, dtype=torch.bool)
    mask[4:6, 2:6] = False
    assert torch.equal(out[0][:, mask], x[0][:, mask]) and torch.equal(out[1], x[1])


def test_params_depend_only_on_the_item_generator():
    cfg = AugmentConfig()
    a = sample_params(numpy_rng(0, "augment", "main", 3, "img7"), ALL, cfg)
    b = sample_params(numpy_rng(0, "augment", "main", 3, "img7"), ALL, cfg)
    c = sample_params(numpy_rng(0, "augment", "main", 4, "img7"), ALL, cfg)
    assert a == b and a != c
    for k, (lo, hi) in {"angle": (-10, 10), "brightness": (0.8, 1.2), "sx": (0, 1), "hue": (-0.02, 0.02)}.items():
        assert lo <= a[k] <= hi
    assert eval_params(("crop",), cfg)["sx"] == 0.9 and eval_params(("rrc",), cfg)["sx"] == 1.0


def test_an_item_is_augmented_the_same_alone_or_in_a_batch():
    aug = Augmenter(ALL, 24)
    imgs = torch.rand(5, 3, 24, 24)
    rows = [aug.draw(numpy_rng(0, "augment", "main", 0, f"id{i}")) for i in range(5)]
    batch, _ = aug(imgs, stack_params(rows))
    alone, _ = aug(imgs[2:3], stack_params(rows[2:3]))
    assert torch.allclose(batch[2:3], alone, atol=1e-6)
    assert batch.shape == (5, 3, 24, 24) and 0 <= float(batch.min()) and float(batch.max()) <= 1


def test_unknown_augmentation_is_rejected():
    from fercore.errors import ConfigError

    with pytest.raises(ConfigError, match="recipe.augment"):
        Augmenter(("hflip", "mixup"), 32)
    with pytest.raises(ConfigError, match="crop_scale"):
        AugmentConfig(crop_scale=1.5)


def test_batches_do_not_depend_on_workers(sample_root):
    """Streaming with 0 or 2 decoding processes, or from the in-memory cache: same pixels."""
    from benchmark.data import ImageTable, epoch_batches
    from fercore.sources import get_source

    src = get_source("sample", sample_root)
    recs = src.records("test")[:40]
    batches = epoch_batches(len(recs), 16, 0, "main", 1)
    assert [len(b) for b in batches] == [16, 16]  # the partial batch of 8 is dropped
    got = []
    for workers, cache_mb in ((0, 0), (2, 0), (0, 100)):
        t = ImageTable(src, recs, 28, workers=workers, cache_mb=cache_mb)
        assert t.cached == (cache_mb > 0)
        got.append(torch.cat([imgs for _, imgs in t.iter_batches(batches)]))
    assert torch.equal(got[0], got[1]) and torch.equal(got[0], got[2])
    again = epoch_batches(len(recs), 16, 0, "main", 1)
    other = epoch_batches(len(recs), 16, 0, "main", 2)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other))


def test_limit_records_is_balanced_and_stable(sample_root):
    from benchmark.data import limit_records
    from fercore.sources import get_source

    recs = get_source("sample", sample_root).records("train")
    sub = limit_records(recs, 70)
    assert len(sub) == 70 and np.bincount([r.label for r in sub]).tolist() == [10] * 7
    assert [r.id for r in sub] == [r.id for r in limit_records(list(reversed(recs)), 70)]


def test_shard_covers_the_batch_once():
    from benchmark.data import shard

    b = np.arange(10)
    parts = [shard(b, r, 3) for r in range(3)]
    assert np.array_equal(np.concatenate(parts), b) and [len(p) for p in parts] == [4, 3, 3]
