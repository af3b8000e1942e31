"""LRDif as a registered model: stages, variants, determinism, checkpoints, losses (tiny preset)."""

from __future__ import annotations

import pytest
import torch

from fercore.errors import ConfigError
from fercore.seeding import torch_generator
from models import StepContext, create_model, model_info
from models.blocks.prior_diffusion import prior_kl
from models.train import build_optimizer, train_step
from model_helpers import balanced_sample, checkpoint_round_trip, no_grad_params, stage2_denoiser_calls
from model_helpers import step_ctx as ctx

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(preset="tiny", **kw):
    torch.manual_seed(0)
    return create_model("lrdif", preset=preset, num_classes=7, **kw)


def tiny_paper(**kw):
    """The tiny sizes with the paper's design: frozen (random tiny) CLIP image tower, FPENs
    ending in LeakyReLU, fresh FPEN_S2 and denoiser, CE (+ KL) only."""
    return tiny("tiny-paper", **kw)


def random_batch(n=6, size=64, seed=0, label=True):
    g = torch.Generator().manual_seed(seed)
    b = {"image": torch.rand(n, 3, size, size, generator=g), "id": [f"img{seed}_{i}" for i in range(n)]}
    if label:
        b["label"] = torch.randint(0, 7, (n,), generator=g)
    return b


@pytest.fixture(scope="module")
def sample32(sample_root):
    """32 training images of the sample set (4-5 per class) as a batch."""
    pick, x = balanced_sample(sample_root, 5, 32)
    return {"image": x, "label": torch.tensor([r.label for r in pick]), "id": [r.id for r in pick]}


def test_tiny_builds_offline_with_recipe_stages_and_variants():
    m = tiny()
    assert m.stages == ("s1", "s2") and m.stage == "s1"
    assert m.recipe.optimizer == "adam" and m.recipe.stage_epochs == {"s1": 1, "s2": 6}
    assert m.requires == frozenset()                      # tiny uses landmarks="none"
    paper = model_info("lrdif")
    assert paper["recipe"]["lr"] == 3.5e-4 and paper["recipe"]["weight_decay"] == 1e-4
    assert paper["recipe"]["batch_size"] == 64 and paper["recipe"]["stage_epochs"] == {"s1": 100, "s2": 100}
    assert paper["variants"] == ["S1", "S2-V1", "S2-V2", "S2-V3", "S2-V4"]
    # stage 1 trains FPEN_S1 + UDCformer (+ tiny's conv image encoder); CLIP is not even a
    # parameter of the model
    trainable = {n.split(".")[0] for n, p in m.named_parameters() if p.requires_grad}
    assert trainable == {"fpen_s1", "landmark_encoder", "former", "image_encoder"}
    m.begin_stage("s2")
    trainable = {n.split(".")[0] for n, p in m.named_parameters() if p.requires_grad}
    assert trainable == {"fpen_s2", "diffusion", "landmark_encoder", "former", "image_encoder"}
    assert not any(p.requires_grad for p in m.image_encoder_s1.parameters())   # the teacher's copy
    with_clip = tiny_paper()
    assert {n.split(".")[0] for n, p in with_clip.named_parameters() if p.requires_grad} == {
        "fpen_s1", "landmark_encoder", "former"}
    assert not any(k.startswith("clip.") for k in m.state_dict())


def test_stage1_overfits_32_sample_images_and_every_parameter_learns(sample32):
    m = tiny()
    opt = build_optimizer(m)                               # the tiny recipe: Adam 1e-3, wd 1e-4
    first = train_step(m, opt, sample32, ctx(0))
    assert first.losses.keys() == {"ce", "align"}
    assert no_grad_params(m) == []
    acc = 0.0
    for i in range(1, 60):
        train_step(m, opt, sample32, ctx(i))
        if i % 10 == 9:
            m.eval()
            with torch.no_grad():
                acc = (m.predict(sample32).logits.argmax(1) == sample32["label"]).float().mean().item()
            m.train()
            if acc > 0.95:
                break
    assert acc > 0.95, f"training accuracy {acc:.2f} after {i + 1} steps"


@pytest.mark.parametrize("T", [4, 2])
def test_stage2_runs_without_label_and_calls_the_denoiser_T_times(T):
    m = tiny_paper(T=T)
    n_pred, pred, n_train, out = stage2_denoiser_calls(m, random_batch(label=False), random_batch(), ctx(stage="s2"))
    assert n_pred == T and pred.logits.shape == (6, 7) and pred.extras["prior"].shape == (6, 32)
    assert n_train == T and set(out.losses) == {"ce", "kl"}
    out.loss.backward()                                   # gradients through the whole chain
    assert no_grad_params(m) == []


def test_variants_follow_table5():
    v1 = tiny_paper(variant="S2-V1")
    assert v1.diffusion is None
    v1.begin_stage("s2")
    assert set(v1.training_step(random_batch(), ctx(stage="s2")).losses) == {"ce"}
    v2, v4 = tiny_paper(variant="S2-V2"), tiny_paper(variant="S2-V4")
    kl = [v.settings.losses.kl_weight for v in (v2, v4)]
    assert (v2.insert_noise, kl[0], v4.insert_noise, kl[1]) == (False, 0.0, False, 1.0)
    assert tiny(variant="S2-V3").insert_noise and tiny().insert_noise     # V3 is the default
    s1 = tiny(variant="S1")
    assert s1.stages == ("s1",)
    with pytest.raises(ValueError, match="unknown stage"):
        s1.begin_stage("s2")
    s1.eval()
    with pytest.raises(ConfigError, match="true label"):
        s1.predict(random_batch(label=False))
    assert s1.predict(random_batch()).logits.shape == (6, 7)              # the oracle row


def test_two_inferences_with_one_seed_agree_exactly_and_per_item():
    m = tiny_paper()       # a fresh cond-skip denoiser (tiny) ignores the noise: see below
    m.begin_stage("s2")
    m.eval()
    b = random_batch(n=5, label=False)
    with torch.no_grad():
        a1, a2 = m.predict(b), m.predict(b)
        assert torch.equal(a1.logits, a2.logits) and torch.equal(a1.extras["prior"], a2.extras["prior"])
        # the noise is keyed by record id: an image gets the same prior alone or in a batch
        alone = m.predict({"image": b["image"][2:3], "id": b["id"][2:3]})
        assert torch.allclose(alone.extras["prior"][0], a1.extras["prior"][2], atol=1e-6)
        # no ids: keyed by the image content instead
        n1 = m.predict({"image": b["image"]})
        n2 = m.predict({"image": b["image"][[4, 3, 2, 1, 0]]})
        assert torch.allclose(n1.extras["prior"], n2.extras["prior"][[4, 3, 2, 1, 0]], atol=1e-6)
        # the same generator seed in a context reproduces too; another predict_seed differs
        c1 = m.predict(b, StepContext(generator=torch_generator(3, "eval")))
        c2 = m.predict(b, StepContext(generator=torch_generator(3, "eval")))
        assert torch.equal(c1.logits, c2.logits)
        m.predict_seed = 1
        assert not torch.equal(m.predict(b).extras["prior"], a1.extras["prior"])


def test_checkpoint_round_trip_reproduces_logits(tmp_path):
    m = tiny(T=2)
    opt = build_optimizer(m)
    train_step(m, opt, random_batch(), ctx(0))
    m.begin_stage("s2")
    opt = build_optimizer(m)
    train_step(m, opt, random_batch(seed=1), ctx(1, "s2"))
    m2, ckpt, before, after = checkpoint_round_trip(m, random_batch(seed=2, label=False), tmp_path / "lrdif.pt")
    assert m2.stage == "s2" and m2.diffusion.steps == 2 and ckpt["config"]["preset"] == "tiny"
    assert torch.equal(after, before)


def test_kl_is_zero_for_equal_priors_and_positive_otherwise():
    z = torch.randn(4, 16, generator=torch.Generator().manual_seed(0))
    other = torch.randn(4, 16, generator=torch.Generator().manual_seed(1))
    assert prior_kl(z, z).item() == 0.0
    assert prior_kl(z, z + 3.0).abs().item() < 1e-6       # softmax ignores a constant shift
    for tau in (1.0, 0.15):
        for d in ("s1||s2", "s2||s1"):
            assert prior_kl(z, other, tau, d).item() > 1e-3
    # the direction matters, and it is KL(p1 || p2) by default
    p1, p2 = z.softmax(-1), other.softmax(-1)
    manual = (p1 * (p1.log() - p2.log())).sum(-1).mean()
    assert torch.allclose(prior_kl(z, other), manual, atol=1e-6)
    assert not torch.allclose(prior_kl(z, other, direction="s2||s1"), manual)
    with pytest.raises(ConfigError, match="kl_temperature"):
        prior_kl(z, other, temperature=0)


def test_heatmap_landmarks_are_required_and_used():
    m = tiny(landmarks="heatmap")
    assert m.requires == frozenset({"landmarks"})
    b = random_batch(n=3)
    with pytest.raises(ConfigError, match="landmarks"):
        m.training_step(b, ctx())
    pts = torch.rand(3, 68, 2, generator=torch.Generator().manual_seed(0)) * 0.6 + 0.2
    pts[1] = float("nan")                                  # no face found in image 1
    m.eval()
    with torch.no_grad():
        out1 = m.predict({**b, "landmarks": pts}).logits
        out2 = m.predict({**b, "landmarks": pts.flip(1)}).logits
    assert torch.isfinite(out1).all()
    assert not torch.allclose(out1[0], out2[0]) and torch.allclose(out1[1], out2[1])


@pytest.mark.parametrize("kw, flag", [({"T": 0}, "T"), ({"landmarks": "eyes"}, "landmarks"),
                                       ({"windows": (5, 8, 4)}, "windows"), ({"image_size": 60}, "image_size"),
                                       ({"kl_temperature": -1.0}, "kl_temperature"),
                                       ({"schedule": "quadratic"}, "schedule"),
                                       ({"clip_pretrained": "/nope/clip.bin", "clip_model": "ViT-B-32"},
                                        "clip_pretrained"),
                                       ({"train_stages": ("s2",)}, "train_stages"),
                                       ({"landmarks": "mobilefacenet"}, "mobilefacenet_path")])
def test_impossible_settings_name_the_flag(kw, flag):
    with pytest.raises(ConfigError, match=flag):
        tiny(**kw)


def test_other_input_sizes_are_resized_and_ids_cache_clip_embeddings():
    m = tiny_paper()
    m.eval()
    b = random_batch(n=4, size=100, label=False)
    m.begin_stage("s2")
    with torch.no_grad():
        first = m.predict(b).logits
        hits = m.clip.cache.hits
        second = m.predict(b).logits
    assert m.clip.cache.hits == hits + 4 and torch.equal(first, second)
