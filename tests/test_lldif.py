"""LLDif as a registered model: LA-CLIP, captions, PNETs, stages, variants, determinism,
checkpoints, and the runner's per-item metadata (tiny preset)."""

from __future__ import annotations

import math

import pytest
import torch

from fercore.errors import ConfigError, DataError
from fercore.seeding import numpy_rng
from fercore.sources import get_source
from models import create_model, load_checkpoint, model_info, save_checkpoint
from models.captions import CaptionRules, batch_captions, degradation_words, make_caption
from models.la_clip import caption_alignment_loss, caption_groups, label_alignment_loss, label_logits
from models.train import build_optimizer, fit_batch, train_step
from model_helpers import balanced_sample, checkpoint_round_trip, no_grad_params, stage2_denoiser_calls
from model_helpers import step_ctx as ctx


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(design="paper", **kw):
    """Most tests here check the paper's mechanics at tiny sizes (the ``tiny-paper`` preset);
    ``tiny(design="tiny")`` is the ``tiny`` preset as shipped."""
    torch.manual_seed(0)
    return create_model("lldif", preset="tiny-paper" if design == "paper" else "tiny", num_classes=7, **kw)


DARK = {"exposure_ev": "-3.2", "temperature_k": "5000.0", "tint": "12.5", "highlights": "-0.8", "shadows": "-0.9"}


def random_batch(n=6, size=64, seed=0, label=True, meta=True):
    g = torch.Generator().manual_seed(seed)
    b = {"image": torch.rand(n, 3, size, size, generator=g), "id": [f"img{seed}_{i}" for i in range(n)]}
    if label:
        b["label"] = torch.randint(0, 7, (n,), generator=g)
    if meta:
        b["meta"] = [DARK if i % 2 else {} for i in range(n)]
    return b


@pytest.fixture(scope="module")
def lowlight64(sample_root):
    """64 sample training images (9-10 per class) darkened by fer-degrade's lowlight preset,
    with each image's parameters as a manifest row would give them (strings)."""
    from degrade.lowlight import make_lowlight

    pick, x = balanced_sample(sample_root, 10, 64)
    ll = make_lowlight("lldif")
    rows = [ll.sample_params(numpy_rng(0, "lowlight", "params", r.id)) for r in pick]
    x = ll.apply(x, ll.stack_params(rows, x.device))
    return {"image": x, "label": torch.tensor([r.label for r in pick]), "id": [r.id for r in pick],
            "meta": [{k: str(v) for k, v in row.items()} for row in rows]}


def head(batch, n):
    return {k: v[:n] for k, v in batch.items()}


# ------------------------------------------------------------------------- registry and stages
def test_tiny_paper_is_the_tiny_preset_without_its_departures():
    from models.registry import resolve_config

    tiny_kw, tiny_recipe = resolve_config("lldif", "tiny")
    paper_kw, paper_recipe = resolve_config("lldif", "tiny-paper")
    departures = {k: v for k, v in tiny_kw.items() if k not in paper_kw or paper_kw[k] != v}
    assert departures == {"image_encoder": "conv", "encoder_widths": (8, 16, 32, 64), "encoder_gray": True,
                          "pnet_s2_input": "pnet-s1", "prior_norm": True, "denoiser_skip": True, "l1_weight": 5.0}
    assert set(paper_kw) <= set(tiny_kw) and paper_recipe == tiny_recipe
    s = tiny().settings
    assert (s.la_clip.hidden, s.prior.dim, s.prior.heads, s.former.stem_stride, s.losses.kl_weight) == (64, 32, 2, 4, 0.0)


def test_tiny_builds_offline_with_recipe_stages_and_variants():
    m = tiny()
    assert m.stages == ("la-clip", "s1", "s2") and m.stage == "la-clip"
    assert m.recipe.stage_epochs == {"la-clip": 8, "s1": 1, "s2": 3}
    assert m.requires == frozenset({"meta"})               # captions read the degradation
    info = model_info("lldif")
    r = info["recipe"]
    assert (r["optimizer"], r["lr"], r["weight_decay"], r["batch_size"]) == ("adam", 3.5e-4, 1e-4, 64)
    assert r["epochs"] == 200 and sum(r["stage_epochs"].values()) == 200
    assert info["presets"] == ["paper", "tiny-paper", "tiny"]
    assert info["variants"] == ["LA-CLIP", "S1", "V1", "V2", "V3", "V4"]
    trainable = lambda: {n.split(".")[0] for n, p in m.named_parameters() if p.requires_grad}  # noqa: E731
    assert trainable() == {"la_clip"}
    m.begin_stage("s1")
    assert trainable() == {"pnet_s1", "landmark_encoder", "former"}
    m.begin_stage("s2")
    assert trainable() == {"pnet_s2", "diffusion", "landmark_encoder", "former"}
    m.train()
    assert not m.la_clip.training                          # frozen LA-CLIP keeps its statistics
    assert not any(k.startswith("clip.") for k in m.state_dict())


def test_every_trainable_parameter_gets_a_gradient_in_every_stage():
    m = tiny()
    for stage in m.stages:
        m.begin_stage(stage)
        m.zero_grad(set_to_none=True)
        m.train()
        out = m.training_step(random_batch(), ctx(stage=stage))
        out.loss.backward()
        assert no_grad_params(m) == [], stage
        assert set(out.losses) == {"la-clip": {"caption", "label"}, "s1": {"ce"}, "s2": {"ce"}}[stage]


def test_tiny_overfits_32_images_label_free_in_stage2(sample_root, lowlight64):
    m = tiny()
    batch = head(lowlight64, 32)
    m.begin_stage("s2")
    opt = build_optimizer(m)                               # the recipe: Adam 3.5e-4, wd 1e-4
    first = train_step(m, opt, batch, ctx(0, "s2"))
    assert no_grad_params(m) == [] and set(first.losses) == {"ce"}
    acc, i = 0.0, 0
    for i in range(1, 80):
        train_step(m, opt, batch, ctx(i, "s2"))
        if i % 10 == 9:
            m.eval()
            with torch.no_grad():   # inference: no label, no meta, the prior from noise
                acc = (m.predict({"image": batch["image"], "id": batch["id"]}).logits.argmax(1)
                       == batch["label"]).float().mean().item()
            m.train()
            if acc > 0.95:
                break
    assert acc > 0.95, f"accuracy {acc:.2f} after {i + 1} steps"


# ----------------------------------------------------------------------------------- LA-CLIP
def test_la_clip_alignment_loss_falls_on_the_sample_set(lowlight64):
    m = tiny()
    assert m.stage == "la-clip"

    def eval_losses():
        m.eval()
        with torch.no_grad():
            out = m.training_step(lowlight64, ctx(stage="la-clip"))
            acc = (m.predict(lowlight64).logits.argmax(1) == lowlight64["label"]).float().mean().item()
        m.train()
        return {k: float(v) for k, v in out.losses.items()}, acc

    losses = fit_batch(m, lowlight64, 60, lr=3e-3, stage="la-clip")
    assert losses[-1] < 0.5 * losses[0], losses
    after, acc = eval_losses()                             # eval mode: the learnt statistics
    assert after["caption"] < 0.6 * math.log(64) and after["label"] < 0.5 * math.log(7), after
    assert acc > 0.9
    assert m.la_clip.trained_steps == 60


def test_alignment_losses_by_hand():
    e = torch.nn.functional.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    distinct = torch.arange(4)
    # equal similarities: chance level log B; a perfect, sharp match: ~0
    assert torch.isclose(caption_alignment_loss(e, e, distinct, 0.0), torch.tensor(math.log(4)))
    assert caption_alignment_loss(e, e, distinct, 100.0) < 1e-3 < caption_alignment_loss(e, e.roll(1, 0), distinct, 100.0)
    # two items sharing one caption: both are targets, so the loss is log 2 for them, not log B
    cap = e.clone()
    cap[1] = cap[0]
    groups = caption_groups(["a", "a", "b", "c"])
    assert groups.tolist() == [0, 0, 1, 2]
    logits = 100.0 * e @ cap.t()
    assert torch.isclose(caption_alignment_loss(e, cap, groups, 100.0),
                         0.5 * (-(torch.tensor([[.5, .5, 0, 0], [.5, .5, 0, 0], [0, 0, 1., 0], [0, 0, 0, 1.]])
                                  * logits.log_softmax(1)).sum(1).mean()
                                - (torch.tensor([[.5, .5, 0, 0], [.5, .5, 0, 0], [0, 0, 1., 0], [0, 0, 0, 1.]])
                                   * logits.t().log_softmax(1)).sum(1).mean()), atol=1e-5)
    classes = e[:3]
    assert label_alignment_loss(e[:3], classes, torch.tensor([0, 1, 2]), 100.0) < 1e-3
    assert label_alignment_loss(e[:3], classes, torch.tensor([1, 2, 0]), 100.0) > 10


# ---------------------------------------------------------------------------------- captions
def test_captions_from_templates_and_thresholds():
    assert make_caption("happiness", DARK) == ("a very dark photo of a happy face with a cool blue cast, "
                                               "a magenta tint, crushed shadows and muted highlights.")
    assert make_caption("happiness", {}) == "a photo of a happy face."        # clean data
    assert make_caption("anger", {"exposure_ev": "-2.5"}) == "a dark photo of an angry face."
    light = [degradation_words({"exposure_ev": v})[0] for v in (-3.5, -3.0, -2.5, -1.5, 0.0, 1.5, "n/a")]
    assert light == ["very dark", "dark", "dark", "dim", "", "bright", ""]
    casts = [degradation_words({"temperature_k": k})[1] for k in (4500, 6500, 9000)]
    assert casts == [["a cool blue cast"], [], ["a warm orange cast"]]      # low K turns the image blue
    assert degradation_words({"tint": "-12"})[1] == ["a green tint"]
    assert degradation_words({"camera_gain": "6", "jpeg_quality": "70"})[1] == ["visible grain",
                                                                                 "compression artefacts"]
    assert make_caption("sadness", DARK, content="label") == "a photo of a sad face."
    assert make_caption("sadness", DARK, content="degradation").startswith("a very dark photo of a face with")
    assert make_caption("fear", DARK, "{expression}face, {light}light") == "a fearful face, very dark light"
    rules = CaptionRules.from_settings({"very_dark_ev": -3.5})
    assert degradation_words({"exposure_ev": "-3.2"}, rules)[0] == "dark"
    # deterministic and per item
    metas = [DARK, {}, DARK]
    assert batch_captions([3, 3, 4], ["c"] * 3 + ["happiness", "sadness"], metas) == \
        batch_captions([3, 3, 4], ["c"] * 3 + ["happiness", "sadness"], metas)
    with pytest.raises(ConfigError, match="caption_rules"):
        CaptionRules.from_settings({"darkness": 1})
    with pytest.raises(ConfigError, match="meta"):
        batch_captions([0, 1], ["a", "b"], [{}])
    with pytest.raises(ConfigError, match="caption_template"):
        tiny(caption_template="a {mood} face")


def test_caption_text_embeddings_do_not_depend_on_the_batch():
    m = tiny()
    texts = ["a photo of a happy face.", "a dark photo of a sad face."]
    both = m.clip.encode_texts(texts)
    m.clip._text_cache.clear()
    alone = m.clip.encode_texts(texts[1:])
    assert torch.equal(both[1], alone[0]) and not torch.equal(both[0], both[1])


# ------------------------------------------------------------------------- stage 2, variants
@pytest.mark.parametrize("T", [4, 2])
def test_stage2_runs_without_label_and_calls_the_denoiser_T_times(T):
    m = tiny(T=T)
    n_pred, pred, n_train, out = stage2_denoiser_calls(m, random_batch(label=False, meta=False), random_batch(),
                                                       ctx(stage="s2"))
    assert n_pred == T and pred.logits.shape == (6, 7) and pred.extras["prior"].shape == (6, 32)
    assert n_train == T and set(out.losses) == {"ce"}      # V4, the paper's own: CE only


def test_prior_norm_gives_unit_scale_priors_and_denoiser_skip_starts_at_the_condition():
    b = random_batch()
    for norm in (False, True):
        m = tiny(prior_norm=norm, denoiser_skip=True, insert_noise=False).eval()
        with torch.no_grad():
            z1 = m.prior_s1(m.la_clip_embeddings(prepare(m, b), b), b["label"], m.captions(b["label"], b))
            cond = m.condition(prepare(m, b), None)
        for z in (z1, cond):
            if norm:   # zero mean, unit variance over the C entries of every prior
                assert z.mean(1).abs().max() < 1e-5 and (z.var(1, unbiased=False) - 1).abs().max() < 1e-2
            else:      # the paper's LeakyReLU outputs: nowhere near unit scale
                assert z.std(1).max() < 0.5
        m.begin_stage("s2")
        m.eval()
        with torch.no_grad():   # a fresh chain with the skip returns its condition exactly
            out = m.predict({k: v for k, v in b.items() if k != "label"})
        assert torch.equal(out.extras["prior"], cond)
    with pytest.raises(ConfigError, match="denoiser_skip"):
        tiny(denoiser_skip=True, parameterization="eps")


def test_tiny_preset_la_clip_tower_trains_with_la_clip_and_loads_with_it(tmp_path):
    la = tiny(design="tiny", variant="LA-CLIP")
    tower = la.la_clip.tower
    assert tower is not None and all(p.requires_grad for p in tower.parameters())
    before = {k: v.clone() for k, v in tower.state_dict().items()}
    la.train()
    out = la.training_step(random_batch(), ctx(stage="la-clip"))
    out.loss.backward()
    assert no_grad_params(la) == []                         # the tower gets gradients too
    fit_batch(la, random_batch(n=8), 3, stage="la-clip")
    assert any(not torch.equal(before[k], v) for k, v in tower.state_dict().items())
    la.eval()
    save_checkpoint(la, tmp_path / "la.pt")
    m = tiny(design="tiny", la_clip_checkpoint=str(tmp_path / "la.pt"))
    b = random_batch()
    img = prepare(m, b)
    m.eval()
    assert torch.equal(m._image_embeddings(img, b), la._image_embeddings(img, b))
    m.train()
    assert not m.la_clip.tower.training and not any(p.requires_grad for p in m.la_clip.tower.parameters())
    with pytest.raises(ConfigError, match="la_clip_checkpoint"):     # a conv tower is not CLIP's
        tiny(la_clip_checkpoint=str(tmp_path / "la.pt"))


def test_tiny_preset_grey_tower_ignores_colour_of_equal_luminance():
    from kornia.color import rgb_to_grayscale

    m = tiny(design="tiny").eval()
    b = random_batch(n=2)
    img = prepare(m, b)
    tinted = img + torch.tensor([0.0, 0.0, 0.05]).view(1, 3, 1, 1)
    tinted = tinted - (rgb_to_grayscale(tinted) - rgb_to_grayscale(img))   # same luma, another colour
    assert not torch.allclose(tinted, img)
    with torch.no_grad():
        assert torch.allclose(m._image_embeddings(tinted, b), m._image_embeddings(img, b), atol=1e-5)


def test_tiny_preset_starts_stage2_from_the_stage1_prior_of_the_predicted_label():
    """``pnet_s2_input="pnet-s1"``: PNET_S2 is PNET_S1 (copied when stage 2 starts) with
    LA-CLIP's predicted label embedding and caption-aligned embedding as keys/values, so a
    correct, confident LA-CLIP gives the stage-1 prior of the true label from the start."""
    m = tiny(design="tiny")
    m.begin_stage("s1")
    fit_batch(m, random_batch(n=8), 2, stage="s1")          # PNET_S1 moves away from its init
    m.begin_stage("s2")
    assert all(torch.equal(a, b) for a, b in zip(m.pnet_s2.state_dict().values(), m.pnet_s1.state_dict().values()))
    m.eval()
    b = random_batch(n=6)
    img = prepare(m, b)
    with torch.no_grad():
        la = m.la_clip_embeddings(img, b)
        f_c, f_l = la
        text = m.clip.text_embeddings.to(f_l)
        predicted = (label_logits(f_l, text, m.la_clip.scales()[1]).softmax(-1) @ text)
        ref = m.pnet_s1(torch.stack([f_c, f_l], 1), torch.stack([predicted, f_c], 1))
        assert torch.allclose(m.condition(img, la), ref, atol=1e-6)
        # the fresh condition-skip chain returns that condition as the prior
        assert torch.allclose(m.predict({"image": b["image"], "id": b["id"]}).extras["prior"],
                              m.condition(img, la), atol=1e-6)
    m.train()
    m.zero_grad(set_to_none=True)
    out = m.training_step(random_batch(), ctx(stage="s2"))
    assert set(out.losses) == {"ce", "l1"}
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.pnet_s2.parameters())


def prepare(m, b):
    from models.batch_inputs import prepare_images

    return prepare_images(b, m.image_size)


def test_variants_follow_table5():
    v1, v2, v3, v4 = (tiny(variant=v) for v in ("V1", "V2", "V3", "V4"))
    assert v1.diffusion is None
    assert (v2.settings.losses.kl_weight, v2.insert_noise, v3.settings.losses.kl_weight, v3.insert_noise) == (1.0, True, 0.0, False)
    assert (v4.settings.losses.kl_weight, v4.insert_noise) == (tiny().settings.losses.kl_weight, tiny().insert_noise) == (0.0, True)
    for m, losses in ((v1, {"ce"}), (v2, {"ce", "kl"}), (v3, {"ce"})):
        m.begin_stage("s2")
        assert set(m.training_step(random_batch(), ctx(stage="s2")).losses) == losses
    # inserted noise (V4): sampled noise enters every reverse step; V3 takes the posterior means
    for m, inserted in ((v4, True), (v3, False)):
        seen = []
        step = m.diffusion.reverse_step

        def spy(z, t, c, noise=None, _step=step):
            seen.append(noise is not None)
            return _step(z, t, c, noise)

        m.diffusion.reverse_step = spy
        m.begin_stage("s2")
        m.eval()
        m.predict(random_batch(label=False))
        assert seen == [inserted] * 4
    la = tiny(variant="LA-CLIP")
    assert la.stages == ("la-clip",)
    s1 = tiny(variant="S1")
    assert s1.stages == ("la-clip", "s1")
    s1.begin_stage("s1")
    s1.eval()
    with pytest.raises(ConfigError, match="true label"):
        s1.predict(random_batch(label=False))
    assert s1.predict(random_batch()).logits.shape == (6, 7)                 # the oracle
    img_ctx = tiny(pnet_s1_context="image")
    img_ctx.begin_stage("s1")
    img_ctx.eval()
    assert img_ctx.predict(random_batch(label=False, meta=False)).logits.shape == (6, 7)


# ------------------------------------------------------------------ determinism, checkpoints
def train_all_stages(m, steps=2):
    for stage in m.stages:
        m.begin_stage(stage)
        opt = build_optimizer(m)
        for i in range(steps):
            train_step(m, opt, random_batch(seed=i), ctx(i, stage))
    m.eval()
    return m


def test_one_seed_reproduces_training_and_inference_exactly():
    a, b = train_all_stages(tiny()), train_all_stages(tiny())
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa if isinstance(sa[k], torch.Tensor))
    batch = random_batch(n=5, seed=9, label=False, meta=False)
    with torch.no_grad():
        la, lb = a.predict(batch), b.predict(batch)
        assert torch.equal(la.logits, lb.logits) and torch.equal(la.logits, a.predict(batch).logits)
        # inference noise is keyed by the record id: the same prior alone or in a batch
        alone = a.predict({"image": batch["image"][2:3], "id": batch["id"][2:3]})
        assert torch.allclose(alone.extras["prior"][0], la.extras["prior"][2], atol=1e-6)
        a.predict_seed = 1
        assert not torch.equal(a.predict(batch).extras["prior"], la.extras["prior"])


def test_checkpoint_round_trip_reproduces_logits(tmp_path):
    m = train_all_stages(tiny(T=2), steps=1)
    m2, ckpt, before, after = checkpoint_round_trip(m, random_batch(seed=2, label=False, meta=False),
                                                    tmp_path / "lldif.pt")
    assert m2.stage == "s2" and m2.diffusion.steps == 2 and ckpt["config"]["preset"] == "tiny-paper"
    assert m2.la_clip.trained_steps == m.la_clip.trained_steps == 1
    assert torch.equal(after, before)


def test_la_clip_trains_and_loads_on_its_own(tmp_path):
    la = tiny(variant="LA-CLIP")
    fit_batch(la, random_batch(n=8), 3, stage="la-clip")
    la.eval()
    save_checkpoint(la, tmp_path / "la.pt")
    m = tiny(la_clip_checkpoint=str(tmp_path / "la.pt"))
    assert m.stages == ("s1", "s2") and m.stage == "s1"
    e = la.clip.encode_images(random_batch()["image"])
    m.eval()
    assert all(torch.equal(x, y) for x, y in zip(la.la_clip(e), m.la_clip(e)))
    assert m.la_clip.trained_steps == 3
    # the runner's plan skips the loaded stage; the checkpointed model reloads (file still there)
    from benchmark.specs import stage_plan

    assert stage_plan(m.recipe, m.stages, type(m).stages) == [("s1", 1), ("s2", 3)]
    assert stage_plan(la.recipe, la.stages, type(la).stages) == [("la-clip", 8)]
    save_checkpoint(m, tmp_path / "m.pt")
    assert load_checkpoint(tmp_path / "m.pt")[0].stages == ("s1", "s2")
    with pytest.raises(ConfigError, match="la_clip_checkpoint"):    # trained for other classes
        tiny(la_clip_checkpoint=str(tmp_path / "la.pt"), class_names=["a", "b", "c", "d", "e", "f", "g"])
    save_checkpoint(tiny(variant="LA-CLIP"), tmp_path / "untrained.pt")
    with pytest.raises(DataError, match="never trained"):
        tiny(la_clip_checkpoint=str(tmp_path / "untrained.pt"))
    with pytest.raises(DataError, match="not found"):
        tiny(la_clip_checkpoint=str(tmp_path / "nope.pt"))


@pytest.mark.parametrize("kw, flag", [({"T": 0}, "T"), ({"pnet_s1_context": "both"}, "pnet_s1_context"),
                                       ({"pnet_s2_input": "clip"}, "pnet_s2_input"),
                                       ({"train_start": "zero"}, "train_start"),
                                       ({"caption_content": "all"}, "caption_content"),
                                       ({"pnet_heads": 3}, "pnet_heads"), ({"pnet_s2_stride": 3}, "pnet_s2_stride"),
                                       ({"train_stages": ("s1", "s2")}, "train_stages"),
                                       ({"caption_weight": 0.0, "label_weight": 0.0}, "caption_weight"),
                                       ({"kl_weight": -1.0}, "kl_weight")])
def test_impossible_settings_name_the_flag(kw, flag):
    with pytest.raises(ConfigError, match=flag):
        tiny(**kw)


# ------------------------------------------------------------------- the runner's item metadata
@pytest.fixture(scope="module")
def ll_copy(sample_root, tmp_path_factory):
    """A fer-degrade lowlight copy (manifest with per-image parameters) of 3 people of the
    sample set: 2 in train (70 images), 1 in test (35)."""
    import shutil

    from degrade.lowlight import make_lowlight
    from degrade.rebuild import rebuild_dataset

    keep = ("p01_", "p02_", "p49_")
    mini = tmp_path_factory.mktemp("mini") / "sample"
    mini.mkdir()
    shutil.copy(sample_root / "sample.json", mini / "sample.json")
    lines = (sample_root / "labels.csv").read_text().splitlines()
    rows = [ln for ln in lines[1:] if ln.startswith(keep)]
    (mini / "labels.csv").write_text("\n".join([lines[0], *rows]) + "\n")
    for ln in rows:
        rel = ln.split(",")[4]
        (mini / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sample_root / rel, mini / rel)
    out = mini.parent / "ll-sample"
    rebuild_dataset(make_lowlight("lldif"), get_source("sample", mini), out, workers=0, command="test")
    return out


def test_item_meta_gives_manifest_rows_without_the_answer(ll_copy, sample_root):
    from benchmark.data import item_meta
    from degrade.presetfile import load_preset

    src = get_source("sample", ll_copy)
    ids = [r.id for r in src.records("test")][:3] + ["not-there"]
    meta = item_meta(src, ids)
    assert set(meta[0]) == {"exposure_ev", "temperature_k", "tint", "highlights", "shadows"}
    lo, hi, _ = load_preset("lowlight", "lldif", flag="--preset")["settings"]["exposure_ev"]
    assert lo <= float(meta[0]["exposure_ev"]) <= hi and meta[3] == {}
    assert item_meta(get_source("sample", sample_root), ids[:2]) == [{}, {}]      # clean: no manifest


def test_runner_trains_lldif_stages_with_captions_from_the_manifest(ll_copy, tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    from benchmark.cli import main
    from models.lldif import LLDif

    seen: list[str] = []
    captions = LLDif.captions
    monkeypatch.setattr(LLDif, "captions", lambda self, y, b: seen.extend(captions(self, y, b)) or seen[-len(y):])
    args = ["run", "--methods", "lldif", "--datasets", "ll-sample", "--data", f"ll-sample={ll_copy}",
            "--preset", "tiny", "--epochs", "1", "--batch-size", "35", "--workers", "0", "--threads", "1",
            "--no-report", "--out", str(tmp_path / "runs")]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (result,) = tmp_path.glob("runs/ll-sample/*/seed0/result.json")
    assert json.loads(result.read_text())["clean_accuracy"] is not None
    epochs = (result.parent / "epochs.csv").read_text().splitlines()
    assert [ln.split(",")[0] for ln in epochs[1:]] == ["la-clip", "s1", "s2"]
    assert "loss_caption" in epochs[0] and "loss_label" in epochs[0]
    # every training caption names the darkness the manifest recorded (-3.5 .. -2 EV)
    assert seen and all(c.startswith(("a dark photo", "a very dark photo")) for c in seen)


def test_stage_plan_skips_stages_a_configuration_leaves_out():
    from benchmark.specs import stage_plan

    s1 = create_model("lrdif", preset="tiny", variant="S1")       # was refused before
    assert stage_plan(s1.recipe, s1.stages, type(s1).stages) == [("s1", s1.recipe.stage_epochs["s1"])]
    with pytest.raises(ConfigError, match="stage_epochs"):
        stage_plan(s1.recipe.replace(stage_epochs={"s1": 1, "s3": 1}), s1.stages, type(s1).stages)
