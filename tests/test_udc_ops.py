"""UDC image-formation stages and the UDC degradation (values, exactness, errors)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from degrade.udc import make_udc, ops
from fercore.errors import ConfigError
from fercore.seeding import numpy_rng, torch_generator


def _delta_psf(tmp_path: Path, k: int = 9) -> str:
    arr = np.zeros((k, k, 3))
    arr[k // 2, k // 2] = 1.0
    np.save(tmp_path / "delta.npy", arr)
    return str(tmp_path / "delta.npy")


def _batch(udc, ids, device="cpu"):
    rows = [udc.sample_params(numpy_rng(0, "udc", "params", i)) for i in ids]
    return udc.stack_params(rows, device), [torch_generator(0, "udc", "noise", i) for i in ids]


def test_delta_psf_leaves_image_unchanged():
    x = torch.rand(2, 3, 37, 41)
    delta = torch.zeros(3, 7, 7)
    delta[:, 3, 3] = 1
    for border in ("reflect", "replicate", "zeros"):
        y = ops.psf_convolve(x, delta, border=border)
        assert y.shape == x.shape
        torch.testing.assert_close(y, x, atol=1e-6, rtol=0)


def test_psf_convolve_is_linear_convolution_without_wraparound():
    x = torch.rand(3, 3, 50, 60)
    psf = torch.rand(3, 11, 11)
    psf /= psf.sum(dim=(1, 2), keepdim=True)
    y = ops.psf_convolve(x, psf)
    ref = F.conv2d(F.pad(x, (5, 5, 5, 5), mode="reflect"), psf.flip(-1, -2)[:, None], groups=3)
    torch.testing.assert_close(y, ref, atol=2e-6, rtol=0)
    # A bright point at the left edge must not leak to the right edge (no circular wrap).
    pt = torch.zeros(1, 3, 50, 60)
    pt[..., 25, 0] = 1
    blur = ops.psf_convolve(pt, psf, border="zeros")
    assert blur[..., :, -5:].abs().max() < 1e-6
    # Per-sample kernels.
    per = torch.stack([psf, psf.flip(-1)])
    y2 = ops.psf_convolve(x[:2], per)
    torch.testing.assert_close(y2[0], y[0], atol=2e-6, rtol=0)
    with pytest.raises(ValueError, match="k odd"):
        ops.psf_convolve(x, torch.ones(3, 4, 4) / 16)


def test_attenuation_scales_linear_light():
    x = torch.rand(2, 3, 8, 8)
    t = torch.tensor([[0.2, 0.1, 0.05], [0.5, 0.5, 0.5]])
    y = ops.attenuate(x, t)
    torch.testing.assert_close(y, x * t[:, :, None, None], atol=0, rtol=0)
    assert torch.allclose(y[0, 0] / x[0, 0], torch.tensor(0.2))
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        ops.attenuate(x, torch.tensor([[1.5, 1, 1], [1, 1, 1]]))
    with pytest.raises(ValueError, match="shape"):
        ops.attenuate(x, torch.ones(3, 3))


@pytest.mark.parametrize("model", ["normal", "poisson"])
def test_noise_variance_of_a_flat_patch(model):
    """Poisson-Gaussian model: var = (L x + read^2) / L^2 for light x and photon level L."""
    level, L, read = 0.3, 800.0, 4.87
    x = torch.full((2, 3, 200, 200), level)
    photons = torch.tensor([L, 4 * L])
    gens = [torch_generator(0, "noise-test", i) for i in range(2)]
    if model == "normal":
        y = ops.sensor_noise(x, photons, ops.standard_normal(gens, (3, 200, 200)), read_noise_e=read)
    else:
        y = ops.sensor_noise_poisson(x, photons, gens, read_noise_e=read)
    for i, Li in enumerate(photons.tolist()):
        expected = (Li * level + read ** 2) / Li ** 2
        assert y[i].mean().item() == pytest.approx(level, rel=0.01)
        assert y[i].var().item() == pytest.approx(expected, rel=0.03)
    # The camera gain amplifies the noise with the signal.
    g = ops.camera_gain(y * 0.5, torch.tensor([2.0, 2.0]))
    assert g[0].var().item() == pytest.approx(y[0].var().item(), rel=1e-4)


def test_srgb8_tables_are_exact():
    codes = torch.arange(256, dtype=torch.uint8).view(1, 1, 1, 256).expand(1, 3, 1, 256)
    lin = ops.srgb8_to_linear(codes)
    torch.testing.assert_close(lin, ops.srgb_to_linear(codes.float() / 255), atol=1e-6, rtol=0)
    assert torch.equal(ops.linear_to_srgb8(lin), codes)  # every code round-trips
    x = torch.rand(1, 3, 300, 300) * 1.2 - 0.1
    ref = torch.round(ops.linear_to_srgb(x) * 255)
    diff = (ops.linear_to_srgb8(x).float() - ref).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-4  # only at float ties


def test_flare_boosts_large_clipped_blobs_only():
    x = torch.full((1, 3, 40, 40), 0.5)
    x[..., 5:20, 5:20] = 1.0  # a large clipped area
    x[..., 30, 30] = 1.0  # a single clipped pixel
    y = ops.flare_boost(x, torch.tensor([50.0]), threshold=0.9, blob_px=9)
    assert torch.equal(y[..., 25, 10], x[..., 25, 10])  # unclipped: unchanged
    assert y[0, 0, 12, 12] == pytest.approx(50.0)  # inside the blob: the full gain
    assert 1.0 < y[0, 0, 30, 30] < 2.0  # a speck barely
    with pytest.raises(ValueError, match=">= 1"):
        ops.flare_boost(x, torch.tensor([0.5]))


def test_udc_identity_with_delta_psf_and_no_noise(tmp_path, sample_like):
    """No blur, no noise, a neutral panel and full exposure: the bytes come back unchanged."""
    udc = make_udc("toled", psf=_delta_psf(tmp_path), noise="none", transmittance_jitter=0.0,
                   exposure=(1.0, 1.0), material_transmittance=(1.0, 1.0, 1.0))
    assert udc.settings.scatter > 0  # a measured PSF is the whole PSF: the preset's veil is not added
    x = sample_like
    params, gens = _batch(udc, range(x.shape[0]))
    assert torch.equal(udc.apply_uint8(x, params, gens), x)


@pytest.fixture
def sample_like() -> torch.Tensor:
    rng = np.random.default_rng(3)
    return torch.from_numpy(rng.integers(0, 256, (4, 3, 30, 34), dtype=np.uint8))


def test_udc_output_is_batch_invariant(sample_like):
    udc = make_udc("toled", flare=True)
    ids = [f"img{i}" for i in range(7)]
    x = torch.cat([sample_like, sample_like[:3].flip(-1)])
    params, gens = _batch(udc, ids)
    full = udc.apply_uint8(x, params, gens)
    singles = []
    for i in range(7):
        p, g = _batch(udc, ids[i:i + 1])
        singles.append(udc.apply_uint8(x[i:i + 1], p, g))
    assert torch.equal(full, torch.cat(singles))
    assert not torch.equal(full, x)


def test_udc_params_ranges_and_darkening(sample_like):
    udc = make_udc("poled-binary")
    p = udc.sample_params(numpy_rng(0, "x"))
    assert set(p) == set(udc.param_names()) == {"trans_r", "trans_g", "trans_b", "photons", "exposure"}
    assert p["trans_b"] < p["trans_r"] and 1e4 <= p["photons"] <= 2e5 and 0.45 <= p["exposure"] <= 0.85
    assert p == udc.sample_params(numpy_rng(0, "x"))  # same generator seed, same draw
    x = torch.full((1, 3, 32, 32), 180, dtype=torch.uint8)
    params, gens = _batch(udc, ["a"])
    y = udc.apply_uint8(x, params, gens).float()
    assert y.mean() < 180  # exposure < 1: darker
    assert y[0, 2].mean() < y[0, 0].mean()  # yellow cast


def test_float_path_is_differentiable():
    udc = make_udc("toled")
    x = torch.rand(2, 3, 24, 24, requires_grad=True)
    params, gens = _batch(udc, ["a", "b"])
    y = udc.apply(x, params, gens)
    y.mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    q = ops.quantize_8bit(y, straight_through=True)
    assert torch.allclose(q * 255, torch.round(q * 255), atol=1e-4)


def test_augment_module_is_reproducible():
    from degrade.udc import UDCAugment

    udc = make_udc("toled")
    x = torch.rand(2, 3, 20, 20, requires_grad=True)
    y = UDCAugment(udc, p=1.0, seed=1)(x)  # no keys: parameters per sample from the seed
    assert torch.equal(y, UDCAugment(udc, p=1.0, seed=1)(x))
    assert not torch.equal(y, UDCAugment(udc, p=1.0, seed=2)(x))
    y.mean().backward()  # the float path: gradients reach the input
    assert x.grad.abs().sum() > 0


def test_bad_settings_name_the_setting():
    with pytest.raises(ConfigError, match="unknown udc setting.*photon"):
        make_udc("toled", photon=(1, 2))
    with pytest.raises(ConfigError, match="--display"):
        make_udc("lcd")
    with pytest.raises(ConfigError, match="photons"):
        make_udc("toled", photons=(5000.0, 100.0))
    with pytest.raises(ConfigError, match="--noise"):
        make_udc("toled", noise="gauss")


def test_numpy_reference_agrees(tmp_path):
    """scripts/numpy_udc.py (the per-image benchmark baseline) computes the same maths."""
    spec = importlib.util.spec_from_file_location("numpy_udc", Path(__file__).parents[1] / "scripts" / "numpy_udc.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    udc = make_udc("toled", noise="none")
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)
    params, gens = _batch(udc, ["a"])
    ours = udc.apply_uint8(torch.from_numpy(img).permute(2, 0, 1)[None], params, gens)[0].permute(1, 2, 0).numpy()
    ref = mod.degrade_one(img, {k: float(v[0]) for k, v in params.items()}, np.random.default_rng(0),
                          psf=udc.kernel_for(40, 44), settings=udc.settings)
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1


def test_cpu_fast_paths_match_the_torch_paths(sample_like):
    """OpenCV DFT vs torch.fft, NumPy vs torch table look-ups: the same maths."""
    cv = make_udc("toled")
    tt = make_udc("toled", fft_backend="torch")
    ids = [f"i{k}" for k in range(4)]
    pa, ga = _batch(cv, ids)
    pb, gb = _batch(tt, ids)
    a, b = cv.apply_uint8(sample_like, pa, ga), tt.apply_uint8(sample_like, pb, gb)
    assert (a.int() - b.int()).abs().max() <= 1 and (a != b).float().mean() < 1e-3
    x = torch.rand(2, 3, 40, 40) * 1.1 - 0.05
    assert torch.equal(ops.linear_to_srgb8(x), ops.linear_to_srgb8(x.clone().requires_grad_()))
    codes = sample_like
    lut = ops._srgb8_lut("cpu")
    assert torch.equal(ops.srgb8_to_linear(codes), lut[codes.long()])
    assert torch.equal(ops.srgb8_to_linear(codes.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)),
                       lut[codes.long()])
