"""Degradations as augmentations: kornia-style UDCAugment / LowLightAugment and the per-item
``--aug udc:p=...`` step of the benchmark's Augmenter; the shared tensor checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from degrade.augment import DegradationAugment, ItemDegradation, noise_source
from degrade.lowlight import LowLightAugment, make_lowlight
from degrade.udc import UDCAugment, make_udc
from fercore.checks import TensorError, check_images, per_sample, set_value_checks
from fercore.errors import ConfigError
from fercore.seeding import numpy_rng
from fercore.transform import standard_normal


@pytest.fixture(scope="module")
def udc():
    return make_udc("toled")


@pytest.fixture(scope="module")
def images():
    return torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(3))


def _augs(udc):
    return [UDCAugment(udc, p=1.0, seed=0), LowLightAugment("realistic", p=1.0, seed=0)]


def test_p0_is_identity_and_p1_equals_the_functional_form(udc, images):
    for cls, deg in ((UDCAugment, udc), (LowLightAugment, make_lowlight("realistic"))):
        assert torch.equal(cls(deg, p=0.0, seed=0)(images), images)
        aug = cls(deg, p=1.0, seed=5)
        out = aug(images)
        p = aug._params
        assert not torch.allclose(out, images, atol=1e-2)
        ref = deg.apply(images, {k: p[k] for k in deg.param_names()}, noise_source(deg, p["noise_seed"], images))
        assert torch.equal(out, ref)
        # per-sample parameters: the four samples got different ones
        assert len(set(p[deg.param_names()[0]].tolist())) == 4


def test_p_gates_samples_and_keeps_the_others(udc, images):
    aug = UDCAugment(udc, p=0.5, seed=1)
    out = aug(images)
    on = aug._params["batch_prob"] > 0.5
    assert 0 < int(on.sum()) < 4  # seed 1 gates some, not all, of the four
    assert torch.equal(out[~on], images[~on])
    assert (out[on] - images[on]).abs().mean() > 0.01


def test_same_on_batch_shares_parameters_and_noise(udc):
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)).expand(3, 3, 32, 32).contiguous()
    for aug in (UDCAugment(udc, p=1.0, same_on_batch=True, seed=2),
                LowLightAugment("realistic", p=1.0, same_on_batch=True, seed=2)):
        out = aug(x)
        for name in aug.degradation.param_names():
            assert len(set(aug._params[name].tolist())) == 1, name
        assert torch.equal(out[0], out[1]) and torch.equal(out[0], out[2])
    plain = UDCAugment(udc, p=1.0, seed=2)(x)
    assert not torch.equal(plain[0], plain[1])


def test_reproducible_with_seed_or_generator(udc, images):
    a, b = UDCAugment(udc, p=0.7, seed=11), UDCAugment(udc, p=0.7, seed=11)
    first = a(images)
    assert torch.equal(first, b(images))
    assert not torch.equal(first, a(images))  # the generator advances: a new draw each call
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert torch.equal(LowLightAugment("lldif", p=1.0, generator=g1)(images),
                       LowLightAugment("lldif", p=1.0, generator=g2)(images))
    torch.manual_seed(0)
    g = UDCAugment(udc, p=1.0)(images)
    torch.manual_seed(0)
    assert torch.equal(g, UDCAugment(udc, p=1.0)(images))  # no seed: torch's global generator


def test_composes_in_kornia_torch_and_torchvision_containers(udc, images):
    import kornia.augmentation as K

    from fercore.compat import import_torchvision

    import_torchvision()
    from torchvision.transforms import v2

    expected = [a(images) for a in _augs(udc)]
    for wrap in (lambda a: K.AugmentationSequential(a), lambda a: nn.Sequential(a),
                 lambda a: v2.Compose([a])):
        got = [wrap(a)(images) for a in _augs(udc)]
        for e, g in zip(expected, got):
            assert torch.equal(e, g)
    # with a geometric augmentation in the same kornia pipeline: flip, then degrade
    seq = K.AugmentationSequential(K.RandomHorizontalFlip(p=1.0), UDCAugment(udc, p=1.0, seed=0))
    assert torch.equal(seq(images), UDCAugment(udc, p=1.0, seed=0)(images.flip(-1)))
    # a (3, H, W) image with keepdim keeps its shape
    assert UDCAugment(udc, p=1.0, keepdim=True, seed=0)(images[0]).shape == (3, 32, 32)


def test_bad_arguments_are_named(udc):
    with pytest.raises(ConfigError, match="p"):
        UDCAugment(udc, p=1.5)
    with pytest.raises(ConfigError, match="degradation"):
        DegradationAugment(object())
    with pytest.raises(TensorError, match="generator"):  # noise is drawn where the images are
        standard_normal(torch.Generator(), (3, 2, 2), "meta", batch=1)


def test_item_degradation_is_per_item_and_leaves_generic_draws_alone():
    from benchmark.augment import AugmentConfig, Augmenter, parse_augment, stack_params

    plain = Augmenter(("hflip", "color"), 32)
    aug = Augmenter(("hflip", "color"), 32, parse_augment(["ll:p=0.5,preset=realistic"]))
    assert aug.cfg.ll_p == 0.5 and aug.cfg.ll_preset == "realistic"
    rows = [aug.draw(numpy_rng(0, "augment", i)) for i in range(6)]
    base = [plain.draw(numpy_rng(0, "augment", i)) for i in range(6)]
    for r, b in zip(rows, base):
        assert {k: r[k] for k in b} == b  # the generic values do not change
    gates = [r["ll"] for r in rows]
    assert 0 < sum(gates) < 6
    imgs = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    out, _ = aug(imgs, stack_params(rows))
    ref, _ = plain(imgs, stack_params(base))
    for i, on in enumerate(gates):
        assert torch.equal(out[i], ref[i]) != bool(on)
    alone, _ = aug(imgs[2:5], stack_params(rows[2:5]))  # an item's result does not depend on its batch
    torch.testing.assert_close(alone, out[2:5], atol=1e-6, rtol=0)
    ev, _ = aug(imgs, stack_params(aug.eval_rows(6)))
    assert torch.equal(ev, plain(imgs, stack_params(plain.eval_rows(6)))[0])
    # the job identity of a config without degradation is what it was
    assert "udc_p" not in AugmentConfig().to_dict() and parse_augment(["udc:p=0.25"]).to_dict()["udc_p"] == 0.25
    assert parse_augment(["udc:p=0.5,display=poled", "rotate_deg=5"]).udc_display == "poled"


@pytest.mark.parametrize("pairs, match", [
    (["udc:display=poled"], "give p="), (["udc:p=0.5,photons=3"], "unknown option"),
    (["ll:p=0"], r"\(0, 1\]"), (["ll:p=2"], "probability"), (["blur:p=1"], "unknown augmentation setting"),
])
def test_parse_augment_errors_name_the_flag(pairs, match):
    from benchmark.augment import parse_augment

    with pytest.raises(ConfigError, match=match) as e:
        parse_augment(pairs)
    assert "aug" in e.value.flag  # --aug, or the augment.<field> it sets


def test_item_degradation_udc_gate_and_noise_seed(udc):
    step = ItemDegradation("udc", udc, 1.0)
    row = step.sample_params(numpy_rng(0, "x"))
    assert row["udc"] == 1.0 and set(row) == set(step.param_names())
    assert float(row["udc.seed"]).is_integer()


def test_tensor_checks_one_error_type_and_skippable_value_checks():
    x = torch.rand(2, 3, 4, 4)
    with pytest.raises(TensorError, match=r"x\[None\]") as e:
        check_images(x[0])
    assert e.value.flag == "images" and isinstance(e.value, ValueError)
    with pytest.raises(TensorError, match="divide 8-bit images by 255"):
        check_images(x * 255)
    with pytest.raises(TensorError, match="sample 1.*in \\(0, 1\\]") as e:
        per_sample(torch.tensor([0.5, 0.0]), 2, "gain", x, lo=0.0, hi=1.0, lo_open=True)
    assert e.value.flag == "gain"
    old = set_value_checks("never")
    try:
        check_images(x * 255)  # values not looked at: no device sync in a hot path
        assert per_sample(torch.tensor([0.5, 0.0]), 2, "gain", x, lo=0.0, lo_open=True).tolist() == [0.5, 0.0]
        with pytest.raises(TensorError, match="shape"):  # structure is always checked
            per_sample(torch.ones(3), 2, "gain", x)
    finally:
        set_value_checks(old)
    assert per_sample(2.0, 3, "g", x).tolist() == [2.0, 2.0, 2.0]


def test_severity_zero_augmentations_are_the_identity_and_draw_no_noise():
    """Severity 0 is the Identity degradation: both augmentations build from it, return the
    images unchanged at p=1 and draw no noise field."""
    from degrade.lowlight import LowLightAugment
    from degrade.udc import UDCAugment

    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for aug in (UDCAugment("toled", p=1.0, severity=0, seed=0), LowLightAugment("lldif", p=1.0, severity=0, seed=0)):
        assert aug.degradation.noise_kind() == "none"
        assert torch.equal(aug(x), x), type(aug).__name__
