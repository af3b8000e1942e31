"""The shared LRDif / LLDif / POSTER++ blocks: values, not just shapes."""

from __future__ import annotations

import pytest
import torch

from fercore.errors import ConfigError
from models.blocks import (ChannelLayerNorm, DTNetwork, PriorDenoiser, PriorDiffusion, PriorModulation,
                           WindowCrossAttention, WindowCrossAttentionBlock, make_betas, relative_position_index,
                           window_partition, window_reverse)
from models.clip_encoders import FrozenCLIP, class_prompts
from models.landmarks import (FACE_PARTS_68, MobileFaceNet, build_landmark_encoder, heatmap_groups,
                              render_heatmaps)


pytestmark = pytest.mark.usefixtures("one_thread")


# -- diffusion --------------------------------------------------------------------------------

def test_linear_schedule_is_diffirs_and_reaches_noise_for_every_T():
    betas = make_betas("linear", 4)
    expected = torch.linspace(0.1 ** 0.5, 0.99 ** 0.5, 4, dtype=torch.float64) ** 2
    assert torch.allclose(betas, expected) and betas[0].item() == pytest.approx(0.1)
    assert make_betas("linear", 1).tolist() == [0.99]
    for T in (1, 2, 4, 8, 16, 32):
        for schedule in ("linear", "cosine"):
            abar_T = torch.cumprod(1 - make_betas(schedule, T), 0)[-1].item()
            assert abar_T < 0.011, (schedule, T, abar_T)   # Z_T is (almost) pure noise
    with pytest.raises(ConfigError, match="T"):
        make_betas("linear", 0)


class Oracle(torch.nn.Module):
    """A perfect denoiser that knows the clean prior."""

    def __init__(self, diffusion_ref, z0, parameterization):
        super().__init__()
        self.ref, self.z0, self.param = diffusion_ref, z0, parameterization

    def forward(self, z_t, t, cond):
        if self.param == "x0":
            return self.z0
        d = self.ref[0]
        i = int(t[0])
        return (z_t - d.sqrt_alphas_cumprod[i] * self.z0) / d.sqrt_one_minus_alphas_cumprod[i]


@pytest.mark.parametrize("parameterization", ["x0", "eps"])
@pytest.mark.parametrize("insert_noise", [False, True])
def test_reverse_chain_with_a_perfect_denoiser_returns_the_clean_prior(parameterization, insert_noise):
    g = torch.Generator().manual_seed(0)
    z0, cond = torch.randn(3, 8, generator=g), torch.randn(3, 8, generator=g)
    ref: list = []
    d = PriorDiffusion(Oracle(ref, z0, parameterization), steps=4, parameterization=parameterization)
    ref.append(d)
    assert d.posterior_c1[0].item() == pytest.approx(1.0) and d.posterior_c2[0].item() == 0.0
    start = torch.randn(3, 8, generator=g)
    steps = torch.randn(4, 3, 8, generator=g) if insert_noise else None
    out = d.train_chain(z0, cond, start, steps)
    assert torch.allclose(out, z0, atol=1e-5)
    # q_sample is Eq. 14
    zt = d.q_sample(z0, 3, start)
    assert torch.allclose(zt, d.alphas_cumprod[3].sqrt() * z0 + (1 - d.alphas_cumprod[3]).sqrt() * start)


def test_inserted_noise_changes_the_chain_and_the_denoiser_sees_t_and_condition():
    torch.manual_seed(0)
    den = PriorDenoiser(8, steps=4)
    d = PriorDiffusion(den, steps=4)
    g = torch.Generator().manual_seed(1)
    z, c, n = torch.randn(2, 8, generator=g), torch.randn(2, 8, generator=g), torch.randn(4, 2, 8, generator=g)
    assert not torch.allclose(d.reverse(z, c), d.reverse(z, c, n))
    assert torch.equal(d.reverse(z, c, n), d.reverse(z, c, n))
    t0, t3 = torch.zeros(2, dtype=torch.long), torch.full((2,), 3)
    assert not torch.allclose(den(z, t0, c), den(z, t3, c))
    assert not torch.allclose(den(z, t0, c), den(z, t0, c + 1))


# -- DT network ----------------------------------------------------------------------------------

def test_prior_modulation_is_eq2():
    torch.manual_seed(0)
    mod = PriorModulation(6, 4)
    x, z = torch.randn(2, 6, 3, 5), torch.randn(2, 4)
    w1, w2 = mod.to_scale_shift.weight[:6], mod.to_scale_shift.weight[6:]
    ln = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (6,)).permute(0, 3, 1, 2)
    expected = (z @ w1.T)[:, :, None, None] * ln + (z @ w2.T)[:, :, None, None]
    assert torch.allclose(mod(x, z), expected, atol=1e-5)
    normed = ChannelLayerNorm(6)(x)
    assert torch.allclose(normed.mean(1), torch.zeros(2, 3, 5), atol=1e-5)
    assert torch.allclose(normed.var(1, unbiased=False), torch.ones(2, 3, 5), atol=1e-3)


def test_dt_network_scales_and_prior_dependence():
    torch.manual_seed(0)
    net = DTNetwork((8, 16, 32), (1, 1, 1), (1, 2, 2), prior_dim=5, stem_stride=4)
    x = torch.randn(2, 3, 32, 32)
    z = torch.randn(2, 5)
    f = net(x, z)
    assert [t.shape for t in f] == [(2, 8, 8, 8), (2, 16, 4, 4), (2, 32, 2, 2)]
    assert not torch.allclose(net(x, z)[2], net(x, z * 2)[2])   # the prior modulates the features


# -- window cross-attention ------------------------------------------------------------------

def test_window_partition_round_trip_and_relative_index():
    x = torch.arange(2 * 8 * 8 * 3, dtype=torch.float32).reshape(2, 8, 8, 3)
    win = window_partition(x, 4)
    assert win.shape == (8, 16, 3)
    assert torch.equal(win[1, 0], x[0, 0, 4])              # second window starts at column 4
    assert torch.equal(window_reverse(win, 4, 8, 8), x)
    idx = relative_position_index(3)
    centre = 2 * 5 + 2
    assert idx.shape == (9, 9) and idx.min() == 0 and idx.max() == 24
    assert (idx.diagonal() == centre).all() and (idx + idx.T == 2 * centre).all()
    assert len(idx.unique()) == 25                         # every table entry is used


def test_position_bias_can_make_each_query_attend_to_its_own_position():
    torch.manual_seed(0)
    attn = WindowCrossAttention(4, heads=1, window=2)
    with torch.no_grad():
        attn.bias_table.zero_()
        attn.bias_table[relative_position_index(2)[0, 0]] = 1e4     # offset (0, 0)
    windows, query = torch.randn(3, 4, 4), torch.randn(3, 4, 4)
    v = windows @ attn.kv.weight[4:].T + attn.kv.bias[4:]
    assert torch.allclose(attn(windows, query), attn.proj(v), atol=1e-4)


def test_cross_attention_block_shares_the_landmark_query_over_windows():
    torch.manual_seed(0)
    blk = WindowCrossAttentionBlock(8, heads=2, window=4)
    half = torch.randn(1, 8, 8, 4)
    img = torch.cat([half, half], dim=-1)                   # left and right windows hold equal content
    lmk = torch.randn(1, 8, 8, 8)                           # pooled to one 4x4 window
    out = blk(img, lmk)
    assert out.shape == img.shape
    assert torch.allclose(out[..., :4], out[..., 4:], atol=1e-5)
    assert not torch.allclose(out, blk(img, lmk.flip(-1)))


# -- landmarks ----------------------------------------------------------------------------------

def test_heatmaps_peak_on_the_points_and_skip_missing_faces():
    pts = torch.tensor([[[0.25, 0.75], [0.5, 0.5]], [[float("nan")] * 2] * 2])  # (2, 2, 2)
    maps = render_heatmaps(pts, size=8, sigma=1.0)
    assert maps.shape == (2, 2, 8, 8)
    # x = 0.25 of 8 px -> pixel coordinate 1.5 (between columns 1 and 2); y = 0.75 -> 5.5
    assert maps[0, 0, 5, 1] == pytest.approx(maps[0, 0, 6, 2]) and maps[0, 0].argmax() // 8 in (5, 6)
    centre = render_heatmaps(torch.tensor([[[0.5625, 0.5625]]]), size=8)   # exactly pixel (4, 4)
    assert centre[0, 0, 4, 4].item() == pytest.approx(1.0) and centre.max().item() == pytest.approx(1.0)
    assert maps[1].abs().sum() == 0
    grouped = render_heatmaps(pts, 8, 1.0, [(0, 1)])
    assert torch.equal(grouped[:, 0], maps.amax(1))
    assert sum(len(v) for v in FACE_PARTS_68.values()) == 68 and len(heatmap_groups("parts")) == 9


def test_mobilefacenet_loads_from_a_path_frozen_and_reports_keys(tmp_path):
    torch.manual_seed(0)
    net = MobileFaceNet()
    state = {f"module.{k}": v for k, v in net.state_dict().items()}
    state["module.extra.weight"] = torch.zeros(3)
    torch.save({"state_dict": state, "epoch": 10}, tmp_path / "mfn.pth.tar")
    enc = build_landmark_encoder("mobilefacenet", (16, 32, 64), 64, 4, mobilefacenet_path=str(tmp_path / "mfn.pth.tar"))
    rep = enc.load_report
    assert len(rep.matched) == len(net.state_dict()) and rep.missing == [] and rep.unexpected == ["extra.weight"]
    assert torch.equal(enc.net.conv1.conv.weight, net.conv1.conv.weight)
    assert not any(p.requires_grad for p in enc.net.parameters())
    enc.train()
    assert not enc.net.training and enc.adapters.training
    enc.requires_grad_(True)          # what a model does to its trainable parts in each stage
    assert not any(p.requires_grad for p in enc.net.parameters())
    assert all(p.requires_grad for p in enc.adapters.parameters())
    feats = enc(torch.rand(2, 3, 64, 64))
    assert [f.shape for f in feats] == [(2, 16, 16, 16), (2, 32, 8, 8), (2, 64, 4, 4)]
    assert net.landmarks(torch.rand(2, 3, 112, 112)).shape == (2, 136)
    with pytest.raises(ConfigError, match="nope.pth"):
        build_landmark_encoder("mobilefacenet", (16, 32, 64), 64, 4, mobilefacenet_path=str(tmp_path / "nope.pth"))
    torch.save({"state_dict": {"foo": torch.zeros(1)}}, tmp_path / "other.pth")
    with pytest.raises(ConfigError, match="no key"):
        build_landmark_encoder("mobilefacenet", (16, 32, 64), 64, 4, mobilefacenet_path=str(tmp_path / "other.pth"))


# -- CLIP ------------------------------------------------------------------------------------------

def test_prompts_and_cached_text_embeddings():
    assert class_prompts(["happiness", "neutral", "Pout"]) == [
        "a photo of a happy face.", "a photo of a neutral face.", "a photo of a Pout face."]
    with pytest.raises(ConfigError, match="clip_template"):
        class_prompts(["fear"], "no slot")
    clip = FrozenCLIP(["fear", "happiness", "anger"], model="tiny", pretrained=None)
    te = clip.text_embeddings
    assert te.shape == (3, 32) and torch.allclose(te.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.cdist(te, te).triu(1)[torch.triu_indices(3, 3, 1).unbind()].min() > 1e-3   # distinct classes
    assert torch.equal(clip.encode_labels(torch.tensor([2, 0])), te[[2, 0]])
    # the same seed gives the same random CLIP in any process (so checkpoints can leave it out)
    again = FrozenCLIP(["fear", "happiness", "anger"], model="tiny", pretrained=None)
    assert torch.equal(again.text_embeddings, te)
    # centring removes the prompt's shared direction: raw prompts are nearly parallel, centred ones are not
    raw = FrozenCLIP(["fear", "happiness", "anger"], model="tiny", pretrained=None, center_text=False).text_embeddings
    off = ~torch.eye(3, dtype=torch.bool)
    assert (raw @ raw.T)[off].min() > 0.8 and (te @ te.T)[off].max() < 0.5
    assert torch.allclose(te, torch.nn.functional.normalize(raw - raw.mean(0), dim=1), atol=1e-6)


def test_image_embedding_cache_hits_only_on_identical_inputs(tmp_path):
    clip = FrozenCLIP(["a", "b"], model="tiny", pretrained=None, cache_dir=tmp_path)
    calls = []
    encode = clip._encode
    clip._encode = lambda x: calls.append(len(x)) or encode(x)
    x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    e1 = clip.encode_images(x, ["a", "b", "c"])
    e2 = clip.encode_images(x, ["a", "b", "c"])
    assert calls == [3] and torch.equal(e1, e2)
    flipped = x.clone()
    flipped[1] = flipped[1].flip(-1)                      # an augmented view of "b"
    e3 = clip.encode_images(flipped, ["a", "b", "c"])
    assert calls == [3, 1] and torch.equal(e3[0], e1[0]) and not torch.allclose(e3[1], e1[1])
    assert torch.allclose(e3[1], encode(flipped[1:2])[0])
    clip.encode_images(x, None)                           # no ids: never cached
    assert calls == [3, 1, 3]
    path = clip.save_cache()
    fresh = FrozenCLIP(["a", "b"], model="tiny", pretrained=None, cache_dir=tmp_path)
    assert path.is_file() and len(fresh.cache) == 3
    assert torch.equal(fresh.encode_images(x[[0, 2]], ["a", "c"]), e1[[0, 2]]) and fresh.cache.hits == 2
    other = FrozenCLIP(["a", "b"], model="tiny", pretrained=None, init_seed=1, cache_dir=tmp_path)
    assert len(other.cache) == 0                          # another CLIP never reads this cache
