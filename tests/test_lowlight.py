"""Low-light degradation (issue 4): values of the operations, presets, determinism, errors."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from degrade.base import Degradation
from degrade.presetfile import load_preset
from degrade.lowlight import (LowLight, contrast, exposure, highlights, highlights_shadows, jpeg_recompress,
                              linear_to_srgb, low_light, luma, make_lowlight, planckian_xy, sensor_noise,
                              shadows, srgb_to_linear, white_balance, white_balance_gains, whites_blacks)
from fercore.errors import ConfigError
from fercore.seeding import numpy_rng, torch_generator
from fercore.sources import get_source

TOL = 1 / 255
#: The documented range of the lldif preset's mean luma on the sample set (docs/lowlight.md).
LLDIF_MEAN_LUMA = (11.0, 21.0)  # calibrated lldif: darkening ~6-11 of the clean ~124 (docs/lowlight.md)


def _rand(b=4, h=16, w=16, seed=0) -> torch.Tensor:
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _sample_images(sample_root, n=None, split="test"):
    src = get_source("sample", sample_root)
    recs = src.records(split)[:n]
    imgs = np.stack([src.load(r) for r in recs])
    return recs, torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255.0


def _run(ll: LowLight, recs, x: torch.Tensor, seed: int, batch: int) -> bytes:
    """Degrade in batches of ``batch`` with per-item generators; return the uint8 bytes."""
    out = []
    for i in range(0, len(recs), batch):
        ids = [r.id for r in recs[i:i + batch]]
        rows = [ll.sample_params(numpy_rng(seed, k, "lowlight")) for k in ids]
        gens = [torch_generator(seed, k, "lowlight-noise") for k in ids]
        y = ll.apply(x[i:i + batch], ll.stack_params(rows, "cpu"), gens)
        out.append(torch.round(y * 255).to(torch.uint8))
    return torch.cat(out).numpy().tobytes()


# --- exposure and white balance -----------------------------------------------------------

def test_exposure_minus_one_ev_halves_linear_light():
    lin = _rand()
    assert torch.allclose(exposure(lin, -1.0), lin / 2, atol=1e-7)
    assert torch.allclose(exposure(lin, torch.tensor([1.0, 0.0, -2.0, 3.0])),
                          lin * torch.tensor([2.0, 1.0, 0.25, 8.0]).view(-1, 1, 1, 1), atol=1e-6)
    # through the whole pipeline (sRGB in, sRGB out), everything else neutral
    x = _rand(seed=1)
    y = low_light(x, exposure_ev=-1.0)
    assert torch.allclose(srgb_to_linear(y), srgb_to_linear(x) / 2, atol=1e-5)


def test_neutral_white_balance_is_identity():
    gains = white_balance_gains(torch.tensor([6500.0]), torch.tensor([0.0]))
    assert torch.equal(gains, torch.ones(1, 3))
    x = _rand()
    assert (low_light(x, temperature_k=6500.0, tint=0.0) - x).abs().max() <= TOL
    lin = srgb_to_linear(x)
    assert (white_balance(lin, 6500.0, 0.0) - lin).abs().max() <= 1e-6


def test_white_balance_directions_and_grey_luminance():
    g = white_balance_gains(torch.tensor([3200.0, 10000.0, 6500.0, 6500.0]), torch.tensor([0.0, 0.0, 60.0, -60.0]))
    cool, warm, magenta, green = g
    assert cool[2] > 1.5 and cool[0] < 0.8          # Temp below 6500: bluer, as in Lightroom
    assert warm[0] > 1.05 and warm[2] < 0.85        # above: warmer
    assert magenta[1] < min(magenta[0], magenta[2])  # + tint: magenta
    assert green[1] > max(green[0], green[2])        # - tint: green
    lum = g @ torch.tensor([0.2126, 0.7152, 0.0722])
    assert torch.allclose(lum, torch.ones(4), atol=1e-6)  # a grey keeps its luminance


def test_planckian_locus_values():
    # CIE 1931 chromaticities of black bodies (CIE 15; illuminant A is 2856 K)
    x, y = planckian_xy(torch.tensor([2856.0, 6500.0], dtype=torch.float64))
    assert x.tolist() == pytest.approx([0.4476, 0.3135], abs=1.5e-3)
    assert y.tolist() == pytest.approx([0.4074, 0.3236], abs=1.5e-3)


# --- highlights, shadows and the extras ---------------------------------------------------

def test_highlights_and_shadows_act_only_on_their_range():
    x = _rand(8, 32, 32)
    L = luma(x)
    below, above = (L < 0.5).expand_as(x), (L > 0.5).expand_as(x)
    for amount in (-1.0, -0.4, 1.0):
        h = highlights(x, amount)
        assert (h - x)[below].abs().max() <= TOL
        s = shadows(x, amount)
        assert (s - x)[above].abs().max() <= TOL
    # and they do act on their own range: full sliders move mid-highlights/mid-shadows a lot
    bright, dark = (L > 0.75).expand_as(x), ((L < 0.25) & (L > 0.05)).expand_as(x)
    assert (x - highlights(x, -1.0))[bright].mean() > 0.05
    assert (x - shadows(x, -1.0))[dark].mean() > 0.03
    assert (shadows(x, 1.0) - x)[dark].mean() > 0.03


def test_fused_highlights_shadows_equals_the_two_controls():
    x = _rand(4, 24, 24, seed=3)
    h, s = torch.tensor([-1.0, -0.5, 0.3, 1.0]), torch.tensor([-1.0, 0.6, -0.2, 1.0])
    assert torch.allclose(highlights_shadows(x, h, s), shadows(highlights(x, h), s), atol=1e-6)


def test_tone_curves_keep_black_white_and_stay_monotonic():
    ramp = torch.linspace(0, 1, 1001).view(1, 1, 1, -1).expand(1, 3, 1, 1001).contiguous()
    for op in (highlights, shadows):
        for amount in (-1.0, 1.0):
            y = op(ramp, amount)[0, 0, 0]
            assert y[0].item() == pytest.approx(0.0, abs=1e-6) and y[-1].item() == pytest.approx(1.0, abs=1e-6)
            assert bool((y[1:] >= y[:-1] - 1e-6).all())


def test_contrast_whites_blacks_values():
    ramp = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]).view(1, 1, 1, -1).expand(1, 3, 1, 5)
    c = contrast(ramp, 1.0)[0, 0, 0]
    assert c[[0, 2, 4]].tolist() == pytest.approx([0.0, 0.5, 1.0], abs=1e-5)
    assert c[1] < 0.25 and c[3] > 0.75              # steeper about mid-grey
    assert torch.allclose(contrast(ramp, 0.0), ramp, atol=1e-5)
    w = whites_blacks(ramp, 1.0, 0.0)[0, 0, 0]
    assert w[3].item() == pytest.approx(1.0)         # Whites +100 moves white to 0.75
    b = whites_blacks(torch.full((1, 3, 1, 1), 0.1), 0.0, -1.0)
    assert b.abs().max().item() == pytest.approx(0.0, abs=1e-7)  # Blacks -100 crushes 0.1 to black


# --- sensor noise, JPEG, gradients ---------------------------------------------------------

def test_realistic_noise_variance_matches_shot_read_model():
    g, shot, read = 4.0, 1e-3, 1e-5
    ll = make_lowlight("realistic", exposure_ev=-2, temperature_k=6500, tint=0, highlights=0, shadows=0,
                       camera_gain=g, shot_noise=shot, read_noise=read, jpeg_quality="off")
    for v in (0.8, 0.6):
        x = torch.full((2, 3, 128, 128), v)
        rows = [ll.sample_params(numpy_rng(0, i, "lowlight")) for i in range(2)]
        gens = [torch_generator(0, i, "lowlight-noise") for i in range(2)]
        lin = srgb_to_linear(ll.apply(x, ll.stack_params(rows, "cpu"), gens))
        y = srgb_to_linear(torch.full((1, 3, 1, 1), v)).mean().item() / 4
        expected = g * shot * y + g * g * read
        assert lin.mean().item() == pytest.approx(y, rel=0.01)
        assert lin.var().item() == pytest.approx(expected, rel=0.03)


def test_brooks_read_noise_follows_shot_noise():
    ll = make_lowlight("realistic")
    rows = [ll.sample_params(numpy_rng(3, i, "lowlight")) for i in range(400)]
    shot = np.log([r["shot_noise"] for r in rows])
    resid = np.log([r["read_noise"] for r in rows]) - (2.18 * shot + 1.20)
    assert abs(resid.mean()) < 0.05 and resid.std() == pytest.approx(0.26, rel=0.15)
    lo, hi, scale = load_preset("lowlight", "realistic", flag="--preset")["settings"]["shot_noise"]
    assert scale == "log" and np.exp(shot).min() >= lo * (1 - 1e-3) and np.exp(shot).max() <= hi * (1 + 1e-3)


def test_noise_does_not_depend_on_device_batch_or_neighbours():
    lin = torch.full((3, 3, 8, 8), 0.1)
    gens = lambda: [torch_generator(0, k, "n") for k in ("a", "b", "c")]  # noqa: E731
    full = sensor_noise(lin, 1e-3, 1e-5, 2.0, gens())
    alone = sensor_noise(lin[1:2], 1e-3, 1e-5, 2.0, [torch_generator(0, "b", "n")])
    assert torch.equal(full[1:2], alone)
    assert not torch.equal(full[0], full[1])


def test_jpeg_recompression_is_deterministic_and_lossy():
    x = _rand(2, 32, 32)
    a, b = jpeg_recompress(x, torch.tensor([20.0, 95.0])), jpeg_recompress(x, torch.tensor([20.0, 95.0]))
    assert torch.equal(a, b)
    assert torch.equal(torch.round(a * 255) / 255, a)
    assert (a[0] - x[0]).abs().mean() > (a[1] - x[1]).abs().mean() > 0
    xg = x.clone().requires_grad_(True)
    jpeg_recompress(xg, 50.0).sum().backward()       # straight-through gradient
    assert torch.equal(xg.grad, torch.ones_like(x))


def test_gradients_flow_through_the_differentiable_ops():
    x = (_rand(2, 16, 16) * 0.9 + 0.05).requires_grad_(True)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in dict(
        exposure_ev=[-2.0, -1.0], temperature_k=[5000.0, 8000.0], tint=[10.0, -10.0],
        highlights_amount=[-0.8, 0.5], shadows_amount=[-0.6, 0.4], contrast_amount=[0.3, -0.3],
        shot_noise=[1e-3, 2e-3]).items()}
    y = low_light(x, **p, read_noise=1e-5, camera_gain=2.0, whites=0.2, blacks=-0.2,
                  generators=[torch_generator(0, i) for i in range(2)])
    y.square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, t in p.items():
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0, name


# --- presets, sampling, determinism --------------------------------------------------------

def test_lowlight_is_a_degradation_with_the_paper_parameters():
    ll = make_lowlight("lldif")
    assert isinstance(ll, Degradation) and ll.kind == "lowlight"
    assert ll.param_names() == ["exposure_ev", "temperature_k", "tint", "highlights", "shadows"]
    assert make_lowlight("realistic").param_names()[-4:] == ["camera_gain", "shot_noise", "read_noise",
                                                             "jpeg_quality"]
    d = json.loads(json.dumps(ll.describe()))
    assert d["preset"] == "lldif" and d["ranges"]["shot_noise"] is None
    assert d["ranges"]["exposure_ev"] == load_preset("lowlight", "lldif", flag="--preset")["settings"]["exposure_ev"]
    v1 = json.loads(json.dumps(make_lowlight("lldif-v1").describe()))  # the first preset, kept
    assert v1["preset"] == "lldif-v1" and v1["ranges"]["exposure_ev"] == [-3.5, -2.0, "linear"]


def test_sample_params_depend_on_seed_and_id_only():
    ll = make_lowlight("lldif-v1")
    a = ll.sample_params(numpy_rng(0, "img1", "lowlight"))
    assert a == ll.sample_params(numpy_rng(0, "img1", "lowlight"))
    assert a != ll.sample_params(numpy_rng(0, "img2", "lowlight"))
    assert -3.5 <= a["exposure_ev"] <= -2.0 and 4500 <= a["temperature_k"] <= 9000
    # overriding one range or switching extras on leaves the other draws alone
    b = make_lowlight("lldif-v1", exposure_ev=-4.0).sample_params(numpy_rng(0, "img1", "lowlight"))
    c = make_lowlight("realistic-v1").sample_params(numpy_rng(0, "img1", "lowlight"))
    assert b["exposure_ev"] == -4.0
    for k in ("temperature_k", "tint", "highlights", "shadows"):
        assert a[k] == b[k] == c[k]


def test_one_seed_same_bytes_with_batch_sizes_1_and_7(sample_root):
    recs, x = _sample_images(sample_root, 14)
    for preset in ("lldif", "realistic"):
        ll = make_lowlight(preset)
        one, seven = _run(ll, recs, x, 5, 1), _run(ll, recs, x, 5, 7)
        assert one == seven, preset
        assert _run(ll, recs, x, 6, 7) != seven      # and the seed matters


def test_lldif_mean_luminance_on_the_sample_set(sample_root):
    recs, x = _sample_images(sample_root)
    ll = make_lowlight("lldif")
    y = torch.round(torch.cat([
        ll.apply(x[i:i + 140], ll.stack_params([ll.sample_params(numpy_rng(0, r.id, "lowlight"))
                                                for r in recs[i:i + 140]], "cpu"))
        for i in range(0, len(recs), 140)]) * 255)
    lum = luma(y)
    lo, hi = LLDIF_MEAN_LUMA
    assert lo <= lum.mean().item() <= hi
    assert (lum < 128).float().mean().item() > 0.99   # crowded at the dark end
    assert luma(torch.round(x * 255)).mean().item() > 100  # the originals are not


def test_numpy_reference_agrees_with_batched_torch(sample_root):
    spec = importlib.util.spec_from_file_location(
        "numpy_lowlight", Path(__file__).resolve().parents[1] / "scripts" / "numpy_lowlight.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    recs, x = _sample_images(sample_root, 12)
    imgs = torch.round(x * 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    wide = dict(exposure_ev=(-3, 1), temperature_k=(2000, 20000), tint=(-150, 150), highlights=(-1, 1),
                shadows=(-1, 1), contrast=(-1, 1), whites=(-1, 1), blacks=(-1, 1))
    for ll in (make_lowlight("lldif"), make_lowlight("lldif", **wide)):
        rows = [ll.sample_params(numpy_rng(1, r.id, "lowlight")) for r in recs]
        y = torch.round(ll.apply(x, ll.stack_params(rows, "cpu")) * 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        z = np.stack([mod.degrade_one(im, row, np.random.default_rng(0)) for im, row in zip(imgs, rows)])
        assert np.abs(y.astype(int) - z).max() <= 1


# --- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, flag", [
    (dict(temperature_k=-3000.0), "temperature_k"),
    (dict(temperature_k=0.0), "temperature_k"),
    (dict(temperature_k=float("nan")), "temperature_k"),
    (dict(exposure_ev=torch.tensor([-1.0, float("nan")])), "exposure_ev"),
    (dict(tint=400.0), "tint"),
    (dict(highlights_amount=1.5), "highlights"),
    (dict(shadows_amount=torch.tensor([0.0, 0.0, 0.0])), "shadows"),
    (dict(shot_noise=1e-3), "read_noise"),
    (dict(shot_noise=1e-3, read_noise=1e-5, generators=[torch.Generator()]), "generators"),
    (dict(jpeg_quality=0.0), "jpeg_quality"),
    (dict(pivot=1.0), "pivot"),
    (dict(shadows_stops=3.0), "shadows_stops"),
])
def test_impossible_parameters_are_named(kwargs, flag):
    with pytest.raises(ConfigError) as e:
        low_light(_rand(2, 4, 4), **kwargs)
    assert e.value.flag == flag and flag in str(e.value)


@pytest.mark.parametrize("overrides, flag", [
    (dict(temperature_k=-6500), "temperature_k"),
    (dict(exposure_ev=float("nan")), "exposure_ev"),
    (dict(exposure_ev="-2:-4"), "exposure_ev"),
    (dict(exposure_ev="dark"), "exposure_ev"),
    (dict(shadows=None), "shadows"),
    (dict(brightness=0.5), "brightness"),
    (dict(shot_noise=1e-3), "camera_gain"),
    (dict(temperature_k="0:9000:mired"), "temperature_k"),
    (dict(pivot="nan"), "pivot"),
    (dict(highlights_stops=2.0), "highlights_stops"),
])
def test_make_lowlight_rejects_bad_overrides(overrides, flag):
    with pytest.raises(ConfigError) as e:
        make_lowlight("lldif", **overrides)
    assert e.value.flag == flag


def test_bad_images_and_presets_get_clear_errors():
    with pytest.raises(ConfigError, match="preset"):
        make_lowlight("moonlight")
    with pytest.raises(ConfigError, match="divide 8-bit images by 255"):
        low_light(_rand() * 255)
    with pytest.raises(ConfigError, match="B, 3, H, W"):
        low_light(torch.rand(3, 8, 8))
    ll = make_lowlight("lldif")
    with pytest.raises(ConfigError) as e:
        ll.apply(_rand(1), {"exposure_ev": torch.tensor([-2.0])})
    assert e.value.flag == "temperature_k"


def test_overrides_parse_strings_and_switch_steps():
    ll = make_lowlight("realistic", exposure_ev="-4:-3", temperature_k="3000:5000:mired", jpeg_quality="off",
                       shadows_stops="1.2")
    assert "jpeg_quality" not in ll.param_names()
    p = ll.sample_params(numpy_rng(0, "x"))
    assert -4 <= p["exposure_ev"] <= -3 and 3000 <= p["temperature_k"] <= 5000
    assert ll.settings["shadows_stops"] == 1.2
    with pytest.raises(ConfigError) as e:
        make_lowlight("realistic", shot_noise=0)        # Brooks' fit needs log(shot)
    assert e.value.flag == "shot_noise"
    quiet = make_lowlight("realistic", shot_noise=0, read_noise=1e-6)
    assert quiet.sample_params(numpy_rng(0, "x"))["read_noise"] == 1e-6
    assert math.isclose(linear_to_srgb(torch.full((1, 3, 1, 1), 0.5)).mean().item(), 0.7354, abs_tol=1e-3)


def test_8bit_path_matches_float_path_and_ignores_the_batch_at_odd_sizes():
    """The runner's apply_uint8: same bytes as apply() and as any other batching, even for image
    sizes whose planes do not fill whole SIMD vectors (where torch's vector and scalar pow/exp2
    differ in the last bit)."""
    from fercore.seeding import numpy_rng

    x = (torch.rand(9, 3, 37, 23, generator=torch.Generator().manual_seed(0)) * 255).round().to(torch.uint8)
    for preset, extra in (("lldif", {}), ("realistic", {"jpeg_quality": "off"})):
        ll = make_lowlight(preset, **extra)
        p = ll.stack_params([ll.sample_params(numpy_rng(1, i, "ll")) for i in range(9)], "cpu")
        gens = lambda: [torch_generator(1, i, "noise") for i in range(9)]  # noqa: E731
        whole = ll.apply_uint8(x, p, gens())
        g = gens()
        parts = torch.cat([ll.apply_uint8(x[i:i + 7], {k: v[i:i + 7] for k, v in p.items()}, g[i:i + 7])
                           for i in (0, 7)])
        assert torch.equal(whole, parts), preset
        ref = torch.round(ll.apply(x.float() / 255, p, gens()).clamp(0, 1) * 255).to(torch.uint8)
        assert torch.equal(whole, ref), preset
