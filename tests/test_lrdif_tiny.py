"""The tiny preset's opt-in settings (docs/lrdif.md, "The tiny preset on the sample set"):
unit-scale priors, the conv encoder's alignment and predicted label embedding, grey input,
FPEN_S2 started from FPEN_S1, the condition-skip denoiser; plus the runner fixes found on the
way (list-valued method options, best accuracy of the final stage) and the ``cnn-tiny`` trunk."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fercore.errors import ConfigError
from models import create_model
from models.backbones import create_backbone
from models.blocks.prior_diffusion import PriorDenoiser, PriorDiffusion
from models.lrdif import FPEN
from model_helpers import step_ctx


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**kw):
    torch.manual_seed(0)
    return create_model("lrdif", preset="tiny", num_classes=7, **kw)


def batch(n=6, seed=0, label=True):
    g = torch.Generator().manual_seed(seed)
    b = {"image": torch.rand(n, 3, 64, 64, generator=g), "id": [f"t{seed}_{i}" for i in range(n)]}
    if label:
        b["label"] = torch.arange(n) % 7
    return b


def ctx(i=0, stage="s1"):
    return step_ctx(i, stage, "tiny-test")


def test_prior_norm_gives_unit_scale_priors_without_parameters():
    torch.manual_seed(0)
    plain, normed = FPEN(64, 32, 2), FPEN(64, 32, 2, out_norm=True)
    normed.load_state_dict(plain.state_dict())             # same parameters, same checkpoint keys
    x = torch.randn(5, 64)
    z_plain, z = plain(x), normed(x)
    assert z_plain.std().item() < 0.5                       # the paper's FPEN: small priors
    assert torch.allclose(z.mean(1), torch.zeros(5), atol=1e-5)
    assert torch.allclose(z.var(1, unbiased=False), torch.ones(5), atol=5e-3)    # LayerNorm's eps 1e-5
    ref = (z_plain - z_plain.mean(1, keepdim=True)) / (z_plain.var(1, unbiased=False, keepdim=True) + 1e-5).sqrt()
    assert torch.allclose(z, ref, atol=1e-5)
    m = tiny()
    assert m.prior_s1(torch.arange(4), torch.randn(4, m.clip.embed_dim)).var(1, unbiased=False).allclose(
        torch.ones(4), atol=5e-3)


@pytest.mark.parametrize("insert_noise", [False, True])
def test_cond_skip_denoiser_starts_as_the_identity_on_the_condition(insert_noise):
    g = torch.Generator().manual_seed(0)
    z0, cond, start = (torch.randn(3, 16, generator=g) for _ in range(3))
    noise = torch.randn(4, 3, 16, generator=g) if insert_noise else None
    skip = PriorDiffusion(PriorDenoiser(16, 4, cond_skip=True), 4)
    assert torch.equal(skip.reverse(start, cond, noise), cond)          # x0 = c at every step, c1_0 = 1
    assert torch.equal(skip.train_chain(z0, cond, start, noise), cond)
    torch.manual_seed(0)
    plain = PriorDiffusion(PriorDenoiser(16, 4), 4)
    assert not torch.allclose(plain.reverse(start, cond, noise), cond, atol=1e-2)
    # it still learns: one gradient step moves the output away from c
    skip.denoiser.out.weight.data += 0.1
    assert not torch.allclose(skip.reverse(start, cond, noise), cond)


def test_fpen_s2_starts_from_fpen_s1_with_the_image_embedding_in_both_slots():
    m = tiny()
    e = F.normalize(torch.randn(5, m.clip.embed_dim), dim=-1)
    m.begin_stage("s2")
    with torch.no_grad():
        assert torch.allclose(m.fpen_s2(e), m.fpen_s1(torch.cat([e, e], 1)), atol=1e-5)
    # resuming (begin_stage again) does not re-initialise a trained FPEN_S2
    with torch.no_grad():
        m.fpen_s2.body[0].bias.add_(1.0)
        before = m.fpen_s2(e)
    m.begin_stage("s2")
    with torch.no_grad():
        assert torch.equal(m.fpen_s2(e), before)
    fresh = tiny(fpen_s2_init="fresh")
    fresh.begin_stage("s2")
    with torch.no_grad():
        assert not torch.allclose(fresh.fpen_s2(e), fresh.fpen_s1(torch.cat([e, e], 1)), atol=1e-2)


def test_label_embedding_and_alignment_loss_have_their_formulas():
    m = tiny()
    b = batch()
    img = m._images(b)
    emb, logits = m._encode(img, b)
    text = m.clip.text_embeddings
    assert logits.shape == (6, 7)
    assert torch.allclose(emb, logits.softmax(-1) @ text, atol=1e-6)           # LLDif's f_l^I
    assert m.align_temperature == 0.07
    assert logits.abs().max().item() <= 1 / m.align_temperature + 1e-4         # cosine / temperature
    out = m.training_step(b, ctx())
    assert torch.allclose(out.losses["align"], F.cross_entropy(logits, b["label"]), atol=1e-5)
    assert set(out.losses) == {"ce", "align"}
    m.begin_stage("s2")
    assert set(m.training_step(b, ctx(stage="s2")).losses) == {"ce", "kl", "l1", "align"}
    feats = tiny(encoder_output="features")
    emb_f, logits_f = feats._encode(img, b)
    assert torch.allclose(emb_f.norm(dim=-1), torch.ones(6), atol=1e-5)       # CLIP's scale


def test_grey_encoder_ignores_colour_of_equal_luminance_but_the_former_does_not():
    m = tiny()
    m.eval()
    g = torch.Generator().manual_seed(0)
    base = torch.rand(2, 3, 64, 64, generator=g) * 0.5 + 0.25
    w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    tint = torch.tensor([0.1, -0.1, 0.1 * (0.587 - 0.299) / 0.114]).view(1, 3, 1, 1)
    assert abs(float((tint * w).sum())) < 1e-7                                 # keeps luminance
    tinted = base + tint
    with torch.no_grad():
        a, _ = m._encode(base, {})
        b, _ = m._encode(tinted, {})
        assert torch.allclose(a, b, atol=1e-5)
        m.begin_stage("s2")
        la = m.predict({"image": base, "id": ["a", "b"]}).logits
        lb = m.predict({"image": tinted, "id": ["a", "b"]}).logits
    assert not torch.allclose(la, lb, atol=1e-4)
    colour = tiny(encoder_gray=False)
    with torch.no_grad():
        assert not torch.allclose(colour._encode(base, {})[0], colour._encode(tinted, {})[0], atol=1e-4)


def test_tiny_preset_starts_stage2_from_the_predicted_label_prior():
    """With the label embedding, FPEN_S2 from FPEN_S1 and the skip denoiser, a freshly begun
    stage 2 predicts (label-free) with the stage-1 prior of the encoder's own label guess."""
    m = tiny()
    m.begin_stage("s2")
    m.eval()
    b = batch(label=False)
    with torch.no_grad():
        out = m.predict(b)
        emb = m.image_embedding(m._images(b), b)
        expected = m.fpen_s1(torch.cat([emb, emb], 1))
    assert torch.allclose(out.extras["prior"], expected, atol=1e-5)


@pytest.mark.parametrize("kw, flag", [
    ({"encoder_output": "label", "image_encoder": "clip", "encoder_align_weight": 0.0}, "encoder_output"),
    ({"encoder_output": "logits"}, "encoder_output"),
    ({"image_encoder": "clip", "encoder_output": "features"}, "encoder_align_weight"),
    ({"encoder_align_temperature": 0.0}, "encoder_align_temperature"),
    ({"encoder_align_weight": -1.0}, "encoder_align_weight"),
    ({"denoiser_skip": True, "parameterization": "eps"}, "denoiser_skip"),
    ({"fpen_s2_init": "copy"}, "fpen_s2_init"),
    ({"encoder_widths": (8, 0)}, "encoder_widths"),
])
def test_impossible_tiny_settings_name_the_flag(kw, flag):
    with pytest.raises(ConfigError, match=flag):
        tiny(**kw)


def test_paper_preset_keeps_the_paper_design():
    from models.registry import resolve_config

    kwargs, recipe = resolve_config("lrdif", "paper", None)
    for key in ("image_encoder", "encoder_output", "encoder_align_weight", "encoder_gray", "fpen_s2_init",
                "denoiser_skip", "prior_norm", "l1_weight"):
        assert key not in kwargs                              # constructor defaults = the paper
    assert recipe.lr == 3.5e-4 and recipe.batch_size == 64 and recipe.schedule == "none"


#: the tiny preset's departures from the paper's design (docs/lrdif.md, "Presets")
TINY_DEPARTURES = {"image_encoder": "conv", "encoder_widths": (8, 16, 32, 64), "encoder_output": "label",
                   "encoder_align_weight": 1.0, "encoder_gray": True, "fpen_s2_init": "s1", "denoiser_skip": True,
                   "prior_norm": True, "l1_weight": 5.0}


def test_tiny_paper_is_the_tiny_preset_without_its_departures():
    from models.priordiff import flat_settings
    from models.registry import resolve_config

    tiny_kw, tiny_recipe = resolve_config("lrdif", "tiny")
    paper_kw, paper_recipe = resolve_config("lrdif", "tiny-paper")
    assert {k: v for k, v in tiny_kw.items() if k not in paper_kw or paper_kw[k] != v} == TINY_DEPARTURES
    assert set(paper_kw) - set(tiny_kw) == set()
    assert paper_recipe == tiny_recipe.replace(lr_mult={})     # the same budget, one learning rate
    s = create_model("lrdif", "tiny-paper").settings
    assert (s.encoder.kind, s.prior.norm, s.prior.s2_init, s.diffusion.denoiser_skip, s.losses.l1_weight) == (
        "clip", False, "fresh", False, 0.0)
    assert flat_settings(s)["dims"] == (16, 32, 64) and flat_settings(s)["prior_dim"] == 32


def test_settings_are_flat_dotted_or_nested_and_unknown_names_say_so():
    from models.lrdif import LRDif, LRDifConfig
    from models.priordiff import build_config, flat_settings

    flat = build_config(LRDifConfig, {"T": 8, "diffusion": False, "dims": (8, 16, 32), "landmarks": "none"})
    dotted = build_config(LRDifConfig, {"diffusion.steps": 8, "diffusion.enabled": False,
                                        "former.dims": (8, 16, 32), "landmarks.kind": "none"})
    nested = build_config(LRDifConfig, {"diffusion": {"steps": 8, "enabled": False}, "former": {"dims": (8, 16, 32)},
                                        "landmarks": {"kind": "none"}})
    assert flat == dotted == nested and flat.diffusion.steps == 8 and not flat.diffusion.enabled
    assert flat.diffusion.schedule == "linear" and flat.former.blocks == (4, 6, 6)     # the rest: defaults
    assert flat_settings(flat)["T"] == 8 and flat_settings(LRDifConfig())["clip_model"] == "ViT-B-32"
    with pytest.raises(ConfigError, match="takes no setting 'Tee'"):
        build_config(LRDifConfig, {"Tee": 8})
    with pytest.raises(ConfigError, match="diffusion.stepz"):
        build_config(LRDifConfig, {"diffusion": {"stepz": 8}})
    # the constructor shows its flat settings (what --model-opt and the benchmark plans read)
    import inspect

    params = inspect.signature(LRDif.__init__).parameters
    assert params["T"].default == 4 and params["encoder_output"].default == "features" and len(params) == 54
    # a config instance plus settings on top
    base = build_config(LRDifConfig, {"image_size": 64, "clip_model": "tiny", "clip_pretrained": None})
    m = LRDif(config=base, landmarks="none", **{"diffusion.steps": 2}, former={"dims": (16, 32, 64), "blocks": (1, 1, 1),
                                                                           "embed_dim": 64, "vit_heads": 2})
    assert m.diffusion.steps == 2 and m.image_size == 64 and m.former.dims == (16, 32, 64)
    assert base.diffusion.steps == 4 and base.former.dims == (64, 128, 256)     # the given config is not changed


def test_method_specs_with_list_options_plan_jobs():
    from benchmark.specs import parse_method

    a, b = parse_method("cnn+widths=[8,16,32,64]"), parse_method("cnn+widths=[8,16,32,64]")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert parse_method("cnn+widths=[8,16]") != a
    assert a.options_dict == {"widths": [8, 16, 32, 64]}


def test_cnn_tiny_trunk_shapes():
    net = create_backbone("cnn-tiny")
    assert net.num_features == 64
    assert net.forward_features(torch.rand(2, 3, 64, 64)).shape == (2, 64, 4, 4)
    scn = create_model("scn", "tiny", 7)
    assert scn.recipe.epochs == 6 and scn.predict({"image": torch.rand(2, 3, 64, 64)}).logits.shape == (2, 7)
