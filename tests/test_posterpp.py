"""POSTER++ (``posterpp``): value tests as for the other baselines (builds offline, its loss has
gradients, SAM steps lower it, eval is deterministic) and behavioural tests of its mechanism
(window cross-attention of landmark queries on image keys/values, stochastic depth from the step
generator, the IR-50 and MobileFaceNet key reports). Tiny preset at 64x64, batches of 8."""

from __future__ import annotations

import math

import pytest
import torch

from fercore.errors import ConfigError
from fercore.seeding import torch_generator
from models import create_model, get_entry
from model_helpers import loss_before_after_fit, predict_twice
from models.base import StepContext
from models.train import fit_batch


def make_batch(n: int = 8, size: int = 64, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.rand(n, 3, size, size, generator=g), "label": torch.arange(n) % 7,
            "index": torch.arange(n), "id": [f"s{i}" for i in range(n)],
            "landmarks": torch.rand(n, 68, 2, generator=g) * 0.6 + 0.2}


def ctx(seed: int = 0, step: int = 0) -> StepContext:
    return StepContext(step=step, generator=torch_generator(seed, "test", step))


def tiny(**kw):
    torch.manual_seed(0)
    return create_model("posterpp", preset="tiny", num_classes=7, **kw)


# -- recipe and presets ------------------------------------------------------------------------

def test_registered_with_the_official_recipe():
    r = get_entry("posterpp").recipe
    assert (r.optimizer, r.lr, r.weight_decay, r.sam_rho) == ("sam-adam", 3.5e-5, 0.0, 0.05)
    assert (r.schedule, dict(r.schedule_args), r.epochs, r.batch_size) == ("exponential", {"gamma": 0.98}, 200, 144)
    assert r.input_size == 224 and r.augment == ("hflip",) and "POSTER_V2" in r.source
    paper = get_entry("posterpp").presets["paper"]
    assert paper["drop_path"] == (0.0, 0.125, 0.25) and paper["layer_scale"] == 1e-5
    assert (paper["erase_p"], paper["erase_scale"]) == (0.5, (0.02, 0.1))


def test_paper_preset_builds_offline_with_the_official_shapes():
    torch.manual_seed(0)
    m = create_model("posterpp", num_classes=7)
    assert m.config["preset"] == "paper" and m.requires == frozenset({"landmarks"})
    assert len(m.backbone.body) == 3 + 4 + 14 and m.backbone.stage_channels == (64, 128, 256)
    m.eval()
    batch = make_batch(2, 224)
    with torch.no_grad():
        x = m._resize(m.norm(batch["image"]))
        assert x.shape[-2:] == (112, 112)
        image_maps = m.image_features(x)
        lmk_maps = m.landmark_encoder(x, batch["landmarks"])
        expect = [(2, 64, 28, 28), (2, 128, 14, 14), (2, 256, 7, 7)]
        assert [tuple(f.shape) for f in image_maps] == expect == [tuple(f.shape) for f in lmk_maps]
        tokens = m.tokenizer(m.cross(image_maps, lmk_maps))
        assert tuple(tokens.shape) == (2, 147, 768)
        out = m.predict(batch)
    assert out.logits.shape == (2, 7) and torch.isfinite(out.logits).all() and out.features.shape == (2, 768)
    assert len(m.vit.blocks) == 2 and m.vit.gate is not None


# -- training and evaluation -------------------------------------------------------------------

def test_loss_nonzero_with_gradients_in_both_streams():
    m = tiny(landmarks="heatmap")
    m.train()
    out = m.training_step(make_batch(), ctx())
    assert float(out.losses["ce"].detach()) > 0 and torch.isfinite(out.loss)
    out.loss.backward()
    for prefix in ("backbone.", "image_convs.", "landmark_encoder.", "cross.", "tokenizer.", "vit."):
        grads = [p.grad for n, p in m.named_parameters() if n.startswith(prefix)]
        assert grads and any(g is not None and g.abs().sum() > 0 for g in grads), f"no gradient reaches {prefix}"


def test_tiny_preset_is_the_plain_trunk_with_adam():
    m = tiny()
    assert type(m.backbone).__name__ == "PlainCNN" and m.backbone.stage_channels == (8, 16, 32)
    assert (m.recipe.optimizer, m.recipe.lr) == ("adam", 3e-4)
    assert (m.erase_p, m.cross.scales[2].drop_rate) == (0.0, 0.0)


def test_sam_steps_lower_the_loss_on_a_fixed_batch():
    m = tiny(backbone="ir50-tiny", landmarks="heatmap")
    m.recipe = m.recipe.replace(optimizer="sam-adam", lr=1e-3)  # the official optimiser and trunk
    batch = make_batch()

    before, after, losses = loss_before_after_fit(m, batch, 6, ctx(seed=99, step=10**6))
    assert all(math.isfinite(v) for v in losses)
    assert after < 0.8 * before, (before, after, losses)


def test_eval_is_deterministic_and_label_free():
    m = tiny()
    fit_batch(m, make_batch(), 1)  # move BN statistics away from their initial values
    a, b = predict_twice(m, make_batch(seed=1)["image"])
    assert torch.equal(a.logits, b.logits) and a.logits.shape == (8, 7) and a.features.shape == (8, 64)


def test_randomness_comes_from_the_step_generator():
    batch = make_batch()
    kw = {"erase_p": 0.5, "drop_path": (0.0, 0.125, 0.25)}  # the official draws (off in the tiny preset)
    m1, m2 = tiny(**kw), tiny(**kw)
    m1.train(), m2.train()
    o1 = m1.training_step(batch, ctx(seed=5))
    torch.manual_seed(1234)  # the global generator must not matter
    o2 = m2.training_step(batch, ctx(seed=5))
    assert torch.equal(o1.loss, o2.loss) and torch.equal(o1.logits, o2.logits)
    o3 = m2.training_step(batch, ctx(seed=6))  # other erasing boxes / drop-path masks
    assert not torch.equal(o1.logits, o3.logits)


def test_checkpoint_round_trip(tmp_path):
    from models import load_checkpoint, save_checkpoint

    m = tiny(landmarks="heatmap")
    fit_batch(m, make_batch(), 1)
    save_checkpoint(m, tmp_path / "m.pt")
    m2, _ = load_checkpoint(tmp_path / "m.pt")
    batch = make_batch(seed=4)
    m.eval(), m2.eval()
    with torch.no_grad():
        assert torch.equal(m.predict(batch).logits, m2.predict(batch).logits)


# -- the mechanism -----------------------------------------------------------------------------

def test_official_cross_attention_block_values():
    """POSTER++'s block: raw landmark tokens are the queries, keys/values come from LN(image),
    the residual starts from LN(image): ``LN(X) + g1 * O``, then ``+ g2 * MLP(LN(.))``."""
    from models.blocks.window_cross_attention import WindowCrossAttentionBlock

    torch.manual_seed(0)
    c, heads, w = 8, 2, 3
    blk = WindowCrossAttentionBlock(c, heads, w, layer_scale=0.5, query_norm=False, query_proj=False,
                                    norm_residual=True).eval()
    img, lmk = torch.randn(2, c, w, w), torch.randn(2, c, w, w)
    with torch.no_grad():
        out = blk(img, lmk)
        x = blk.norm_image(img.permute(0, 2, 3, 1).reshape(2, w * w, c))
        q = lmk.permute(0, 2, 3, 1).reshape(2, w * w, c)
        k, v = blk.attn.kv(x).chunk(2, dim=-1)
        hd = c // heads
        split = lambda t: t.reshape(2, w * w, heads, hd).transpose(1, 2)  # noqa: E731
        logits = split(q) @ split(k).transpose(-2, -1) / math.sqrt(hd) + blk.attn.position_bias()
        o = blk.attn.proj((logits.softmax(-1) @ split(v)).transpose(1, 2).reshape(2, w * w, c))
        y = x + 0.5 * o
        y = y + 0.5 * blk.mlp(blk.norm_mlp(y))
    assert torch.allclose(out, y.reshape(2, w, w, c).permute(0, 3, 1, 2), atol=1e-5)


def test_cross_attention_depends_on_the_landmark_and_the_image_stream():
    m = tiny(landmarks="heatmap")
    m.eval()
    batch = make_batch()
    moved = dict(batch, landmarks=batch["landmarks"].roll(1, dims=0))  # other faces' points
    other_image = dict(batch, image=batch["image"].roll(1, dims=0))

    def cross_outputs(b):
        with torch.no_grad():
            x = m.norm(b["image"])
            return m.cross(m.image_features(x), m.landmark_encoder(x, b["landmarks"]))

    base, by_landmarks, by_image = cross_outputs(batch), cross_outputs(moved), cross_outputs(other_image)
    for o, o_l, o_i in zip(base, by_landmarks, by_image):
        # the landmark change moves only the attention branch (scaled by layer scale 1e-5)
        assert (o - o_l).abs().max() > 1e-9 and (o - o_i).abs().max() > 1e-2
    # the same with plain residuals: the attention output itself depends on both streams
    blk = m.cross.scales[0]
    blk.gamma_attn.data.fill_(1.0)
    with torch.no_grad():
        x = m.norm(batch["image"])
        img = m.image_features(x)[0]
        q1, q2 = m.landmark_encoder(x, batch["landmarks"])[0], m.landmark_encoder(x, moved["landmarks"])[0]
        d_landmarks = (blk(img, q1) - blk(img, q2)).abs().mean()
        d_image = (blk(img, q1) - blk(img.roll(1, dims=0), q1)).abs().mean()
    assert d_landmarks > 1e-4 and d_image > 1e-3  # untrained: near-uniform attention, yet not constant
    # logits of the whole model follow the landmarks too
    with torch.no_grad():
        assert not torch.equal(m.predict(batch).logits, m.predict(moved).logits)


def test_heatmap_landmarks_are_required():
    m = tiny(landmarks="heatmap")
    assert m.requires == frozenset({"landmarks"}) and tiny().requires == frozenset()
    batch = make_batch()
    del batch["landmarks"]
    with pytest.raises(ConfigError, match="landmarks"):
        m.predict(batch)


def test_stochastic_depth_drops_whole_samples_from_the_generator():
    from models.batch_augment import drop_path, sample_drop_path
    from models.blocks.window_cross_attention import WindowCrossAttentionBlock

    x = torch.ones(4, 2, 3)
    keep = torch.tensor([True, False, True, False])
    assert torch.equal(drop_path(x, keep, 0.5), x * torch.tensor([2.0, 0, 2, 0]).view(4, 1, 1))
    assert torch.equal(drop_path(x, keep, 0.0), x)
    with pytest.raises(ConfigError):
        sample_drop_path(4, 1.0, None)
    many = sample_drop_path(20000, 0.25, torch.Generator().manual_seed(0))
    assert abs(many.float().mean().item() - 0.75) < 0.02

    torch.manual_seed(0)
    blk = WindowCrossAttentionBlock(4, 1, 2, layer_scale=1.0, drop_path=0.5, query_norm=False, query_proj=False,
                                    norm_residual=True)
    img, lmk = torch.randn(16, 4, 2, 2), torch.randn(16, 4, 2, 2)
    g = torch.Generator().manual_seed(3)
    state = g.get_state()
    out = blk(img, lmk, g)
    g.set_state(state)
    keep_attn, keep_mlp = sample_drop_path(16, 0.5, g), sample_drop_path(16, 0.5, g)
    both = ~keep_attn & ~keep_mlp  # both branches dropped: the output is LN(image)
    assert both.any() and (keep_attn & keep_mlp).any()
    normed = blk.norm_image(img.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    assert torch.allclose(out[both], normed[both], atol=1e-6)
    assert not torch.allclose(out[keep_attn], normed[keep_attn])
    g.set_state(state)
    assert torch.equal(blk(img, lmk, g), out)  # same generator state, same masks
    blk.eval()
    assert torch.equal(blk(img, lmk), blk(img, lmk))


def test_feature_gate_before_the_head():
    from models.blocks.vit import FeatureGate

    gate = FeatureGate(4)
    for p in gate.parameters():
        torch.nn.init.zeros_(p)
    f = torch.randn(3, 4)
    assert torch.allclose(gate(f), 0.5 * f)  # sigmoid(0) = 1/2
    m = tiny()
    m.eval()
    tokens = torch.randn(2, 3 * 4 * 4, 64)
    with torch.no_grad():
        logits, feat = m.vit(tokens)
        cls = m.vit.norm(m.vit.blocks(torch.cat([m.vit.cls_token.expand(2, -1, -1), tokens], 1) + m.vit.pos_embed))[:, 0]
        assert torch.allclose(feat, m.vit.gate(cls)) and torch.allclose(logits, m.vit.head(feat))


# -- weights from a path -----------------------------------------------------------------------

def test_ir50_weights_load_with_a_key_report(tmp_path):
    from models.backbones import create_backbone

    torch.manual_seed(1)
    full = create_backbone("ir50-tiny", verbose=False)  # all four stages, as face.evoLVe / ir50.pth
    path = tmp_path / "ir50_ms1m.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in full.state_dict().items()}, "epoch": 20}, path)
    m = tiny(backbone="ir50-tiny", pretrained=str(path))
    report = m.backbone.pretrained_report
    assert report.missing == [] and report.mismatched == []
    assert sorted(report.unexpected) == sorted(k for k in full.state_dict() if k.startswith("body.3."))
    for k, v in m.backbone.state_dict().items():
        assert torch.equal(v, full.state_dict()[k]), k

    # a checkpoint saved from the model's own (three-stage) IR-50, in POSTER++'s body1/2/3 layout
    own = {k.replace("body.0.", "body1.0.").replace("body.1.", "body2.0.").replace("body.2.", "body3.0."): v
           for k, v in m.backbone.state_dict().items()}
    torch.save(own, tmp_path / "new_ir50.pth")
    m2 = tiny(backbone="ir50-tiny", pretrained=str(tmp_path / "new_ir50.pth"))
    r2 = m2.backbone.pretrained_report
    assert (len(r2.loaded), r2.missing, r2.unexpected) == (len(m.backbone.state_dict()), [], [])
    x = torch.rand(2, 3, 64, 64)
    m.eval(), m2.eval()
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(m.backbone.forward_stages(x), m2.backbone.forward_stages(x)))
    with pytest.raises(Exception, match="not found"):
        tiny(pretrained=str(tmp_path / "missing.pth"))


def test_mobilefacenet_from_a_path_is_frozen_with_the_official_adapters(tmp_path):
    from models.landmarks import MobileFaceNet, build_landmark_encoder

    torch.manual_seed(2)
    path = tmp_path / "mobilefacenet_model_best.pth.tar"
    torch.save({"state_dict": MobileFaceNet().state_dict()}, path)
    m = tiny(landmarks="mobilefacenet", mobilefacenet_path=str(path))
    enc = m.landmark_encoder
    assert m.requires == frozenset() and enc.load_report.missing == [] and enc.load_report.unexpected == []
    m.train()
    assert not enc.net.training and not any(p.requires_grad for p in enc.net.parameters())
    m.training_step(make_batch(), ctx()).loss.backward()
    assert all(p.grad is None for p in enc.net.parameters())
    assert all(p.grad is not None for p in enc.adapters.parameters())
    # paper dims: the 64- and 128-channel maps go in unchanged, 512 -> 256 through a 3x3 conv
    paper = build_landmark_encoder("mobilefacenet", (64, 128, 256), 112, 4, mobilefacenet_path=str(path),
                                   mobilefacenet_adapter="posterpp")
    kinds = [type(a).__name__ for a in paper.adapters]
    assert kinds == ["Identity", "Identity", "Conv2d"] and paper.adapters[2].kernel_size == (3, 3)
    with pytest.raises(ConfigError, match="mobilefacenet"):
        tiny(mobilefacenet_path=str(path))  # a path that would be ignored


@pytest.mark.parametrize("bad, flag", [({"image_size": 100}, "image_size"), ({"windows": (5, 4, 4)}, "windows"),
                                       ({"heads": (3, 2, 4)}, "heads"), ({"backbone": "resnet18"}, "backbone"),
                                       ({"landmarks": "dlib"}, "landmarks"), ({"resize_mode": "cubic"}, "resize_mode")])
def test_impossible_settings_name_the_setting(bad, flag):
    with pytest.raises(ConfigError) as exc:
        tiny(**bad)
    assert exc.value.flag == flag, exc.value
