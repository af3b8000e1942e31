"""The seven baselines (SCN, RUL, EAC, DAN, ARM, MA-Net, DACL): value tests for every method and
one behavioural test per mechanism. Tiny presets at 64x64, a batch of 8, a few steps."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from fercore.seeding import torch_generator
from models import create_model, get_entry, list_models
from model_helpers import loss_before_after_fit, predict_twice
from models.base import StepContext
from models.train import build_optimizer, fit_batch, train_step

METHODS = ["scn", "rul", "eac", "dan", "arm", "manet", "dacl"]

#: the method's own loss terms and a parameter-name prefix its mechanism owns (must get gradients)
OWN = {
    "scn": (["rank"], "alpha."),
    "rul": (["add_up"], "log_var."),
    "eac": (["consistency"], "backbone."),
    "dan": (["affinity", "partition"], "heads."),
    "arm": (["ce"], "arm.de_albino."),
    "manet": (["ce_local", "ce_global"], "layer3_1_p1."),
    "dacl": (["sparse_center"], "attention."),
}

#: the official recipes (optimizer, lr, weight decay, schedule, schedule args, epochs, batch)
OFFICIAL = {
    "scn": ("adam", 1e-3, 1e-4, "exponential", {"gamma": 0.9}, 70, 64),
    "rul": ("adam", 2e-4, 1e-4, "exponential", {"gamma": 0.9}, 60, 64),
    "eac": ("adam", 1e-4, 1e-4, "exponential", {"gamma": 0.9}, 60, 32),
    "dan": ("sgd", 0.1, 1e-4, "step", {"step_size": 10, "gamma": 0.1}, 40, 256),
    "arm": ("adam", 1e-3, 1e-4, "exponential", {"gamma": 0.9}, 70, 256),
    "manet": ("sgd", 0.01, 1e-4, "step", {"step_size": 15, "gamma": 0.1}, 100, 128),
    "dacl": ("sgd", 0.01, 5e-4, "step", {"step_size": 20, "gamma": 0.1}, 60, 64),
}


def make_batch(n: int = 8, size: int = 64, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.rand(n, 3, size, size, generator=g),
            "label": torch.arange(n) % 7, "index": torch.arange(n), "id": [f"s{i}" for i in range(n)]}


def ctx(seed: int = 0, epoch: int = 0, step: int = 0) -> StepContext:
    return StepContext(epoch=epoch, step=step, generator=torch_generator(seed, "test", epoch, step))


def tiny(name: str, **kw):
    torch.manual_seed(0)
    return create_model(name, preset="tiny", num_classes=7, **kw)


# -- every method ----------------------------------------------------------------------------

def test_all_registered_with_official_recipe():
    assert set(METHODS) <= set(list_models())
    for name, (opt, lr, wd, sched, args, epochs, bs) in OFFICIAL.items():
        r = get_entry(name).recipe
        assert (r.optimizer, r.lr, r.weight_decay, r.schedule, dict(r.schedule_args), r.epochs, r.batch_size) == \
            (opt, lr, wd, sched, args, epochs, bs), name
        assert r.input_size == 224 and r.source
    assert dict(get_entry("rul").recipe.lr_mult) == {"fc.": 10.0}
    assert get_entry("manet").recipe.augment == ("rrc", "hflip")


@pytest.mark.parametrize("name", METHODS)
def test_paper_preset_builds_offline_and_runs_at_224(name):
    torch.manual_seed(0)
    m = create_model(name, num_classes=7)  # default preset = the paper's configuration
    assert m.config["preset"] == "paper"
    if name == "eac":  # ResNet-50: build only (a 224 forward is slow on 2 CPU cores)
        assert m.backbone.num_features == 2048 and m.backbone.layer2[0].conv1.stride == (2, 2)
        return
    m.eval()
    with torch.no_grad():
        out = m.predict({"image": torch.rand(2, 3, 224, 224)})
    assert out.logits.shape == (2, 7) and torch.isfinite(out.logits).all()


@pytest.mark.parametrize("name", METHODS)
def test_own_loss_nonzero_with_gradients(name):
    m = tiny(name)
    m.train()
    out = m.training_step(make_batch(), ctx())
    terms, prefix = OWN[name]
    own = sum(out.losses[t] for t in terms)
    assert all(float(out.losses[t].detach()) > 0 for t in terms), out.losses
    assert torch.isfinite(out.loss)
    m.zero_grad()
    own.backward()
    grads = [p.grad for n, p in m.named_parameters() if n.startswith(prefix)]
    assert grads and any(g is not None and g.abs().sum() > 0 for g in grads), f"no gradient reaches {prefix}"


@pytest.mark.parametrize("name", METHODS)
def test_training_steps_lower_the_loss(name):
    m = tiny(name)
    batch = make_batch()

    before, after, losses = loss_before_after_fit(m, batch, 8, ctx(seed=99, step=10**6))
    assert all(math.isfinite(v) for v in losses)
    assert after < 0.8 * before, (name, before, after, losses)


@pytest.mark.parametrize("name", METHODS)
def test_eval_is_deterministic_and_label_free(name):
    m = tiny(name)
    fit_batch(m, make_batch(), 2)  # move BN statistics away from their initial values
    a, b = predict_twice(m, make_batch(seed=1)["image"])
    assert torch.equal(a.logits, b.logits) and a.logits.shape == (8, 7)
    assert a.features is not None and a.features.shape[0] == 8


@pytest.mark.parametrize("name", METHODS)
def test_model_randomness_comes_from_the_step_generator(name):
    batch = make_batch()
    m1, m2 = tiny(name), tiny(name)
    m1.train(), m2.train()
    o1 = m1.training_step(batch, ctx(seed=5))
    torch.manual_seed(1234)  # the global generator must not matter
    o2 = m2.training_step(batch, ctx(seed=5))
    assert torch.allclose(o1.loss, o2.loss) and torch.allclose(o1.logits, o2.logits)


def test_pretrained_path_loads_into_the_method_backbone(tmp_path):
    src = tiny("scn", backbone="resnet18-tiny")   # the tiny preset uses cnn-tiny
    path = tmp_path / "msceleb_like.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in src.backbone.state_dict().items()}, "epoch": 40}, path)
    m = tiny("dan", backbone="resnet18-tiny", pretrained=str(path))
    assert m.backbone.pretrained_report.missing == []
    for k, v in src.backbone.state_dict().items():
        assert torch.equal(m.backbone.state_dict()[k], v), k


# -- SCN -------------------------------------------------------------------------------------

def test_scn_relabels_only_when_the_margin_is_beaten():
    from models.scn import relabel

    p = torch.tensor([[0.70, 0.20, 0.10],    # label 1: 0.70 - 0.20 = 0.5 > 0.2 -> relabel to 0
                      [0.45, 0.35, 0.20],    # label 1: 0.10 <= 0.2 -> keep
                      [0.10, 0.80, 0.10],    # label 1 is the top class -> keep
                      [0.30, 0.09, 0.61]])   # label 1: 0.52 > 0.2 -> relabel to 2
    labels = torch.tensor([1, 1, 1, 1])
    new, changed = relabel(p.log(), labels, margin=0.2)
    assert new.tolist() == [0, 1, 1, 2] and changed.tolist() == [True, False, False, True]
    assert new.dtype == torch.long


def test_scn_rank_regularisation_values():
    from models.scn import rank_regularization

    w = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    # top 7: mean 0.6; low 3: mean 0.11667 -> gap 0.4833 > 0.15 -> 0
    assert float(rank_regularization(w, 0.7, 0.15)) == 0.0
    flat = torch.full((10,), 0.5)
    assert float(rank_regularization(flat, 0.7, 0.15)) == pytest.approx(0.15)


def test_scn_relabelling_starts_at_the_official_epoch():
    m = tiny("scn")
    m.train()
    batch = make_batch()
    assert "new_labels" not in m.training_step(batch, ctx(epoch=8)).extras   # 9th epoch (1-based)
    out = m.training_step(batch, ctx(epoch=9))                               # 10th epoch
    new = out.extras["new_labels"]
    assert new.shape == (8,) and new.dtype == torch.long
    changed = out.extras["relabelled"]
    assert torch.equal(new[~changed], batch["label"][~changed])
    assert torch.equal(new[changed], out.logits.argmax(1)[changed])


# -- RUL -------------------------------------------------------------------------------------

def test_rul_mixing_weights_sum_to_one_and_follow_relative_uncertainty():
    from models.rul import uncertainty_mixup

    mu = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    # uncertainties s = mean(exp(log_var)) = 1, 3, 2
    log_var = torch.log(torch.tensor([[1.0, 1.0], [2.0, 4.0], [2.0, 2.0]]))
    perm = torch.tensor([1, 0, 2])
    mixed, w_self, w_partner = uncertainty_mixup(mu, log_var, perm)
    assert torch.allclose(w_self + w_partner, torch.ones(3, 1))
    assert w_self.squeeze(1).tolist() == pytest.approx([0.25, 0.75, 0.5])
    # the more uncertain member of the pair (sample 1, s=3) dominates the mix (official weighting)
    assert torch.allclose(mixed[0], 0.25 * mu[0] + 0.75 * mu[1])
    assert torch.allclose(mixed[2], mu[2])


def test_rul_add_up_loss_is_the_mean_of_both_labels():
    from models.rul import add_up_loss

    logits = torch.randn(4, 7, generator=torch.Generator().manual_seed(0))
    ya, yb = torch.tensor([0, 1, 2, 3]), torch.tensor([3, 2, 1, 0])
    expect = 0.5 * (F.cross_entropy(logits, ya) + F.cross_entropy(logits, yb))
    assert torch.allclose(add_up_loss(logits, ya, yb), expect)
    assert torch.allclose(add_up_loss(logits, ya, ya), F.cross_entropy(logits, ya))


# -- EAC -------------------------------------------------------------------------------------

def test_eac_consistency_is_zero_for_mirrored_attention_and_positive_otherwise():
    from models.eac import flip_consistency_loss

    g = torch.Generator().manual_seed(0)
    cam = torch.randn(2, 7, 5, 5, generator=g)
    assert float(flip_consistency_loss(cam, cam.flip(-1))) == 0.0
    symmetric = cam + cam.flip(-1)  # a flip-symmetric map: its flip is itself
    assert float(flip_consistency_loss(symmetric, symmetric)) == 0.0
    assert float(flip_consistency_loss(cam, cam)) > 0.0  # not mirrored


def test_eac_cams_average_to_the_logits_and_do_not_train_the_classifier():
    m = tiny("eac")
    m.eval()
    with torch.no_grad():
        out = m.predict({"image": make_batch()["image"]})
    assert torch.allclose(out.extras["cam"].mean((2, 3)) + m.fc.bias, out.logits, atol=1e-5)
    m.train()
    m.zero_grad()
    m.training_step(make_batch(), ctx()).losses["consistency"].backward()
    assert m.fc.weight.grad is None or m.fc.weight.grad.abs().sum() == 0  # CAM weights are detached


# -- DAN -------------------------------------------------------------------------------------

def test_dan_affinity_loss_values():
    from models.dan import affinity_loss

    centers = torch.tensor([[0.0, 0.0], [2.0, 4.0]])  # var over classes per dim: 2, 8 -> 10
    labels = torch.tensor([0, 1])
    assert float(affinity_loss(centers[labels], labels, centers)) < 1e-10
    f = torch.tensor([[1.0, 0.0], [2.0, 6.0]])  # squared distances 1 and 4
    assert float(affinity_loss(f, labels, centers)) == pytest.approx((1 + 4) / 10 / 2)
    # normalised by the centres' spread: scaling features and centres together changes nothing
    assert float(affinity_loss(3 * f, labels, 3 * centers)) == pytest.approx(float(affinity_loss(f, labels, centers)))


def test_dan_partition_loss_rewards_diverse_heads():
    from models.dan import partition_loss

    same = torch.ones(4, 3, 8)
    diverse = torch.stack([torch.zeros(4, 8), torch.ones(4, 8), 2 * torch.ones(4, 8)], 1)  # var over heads = 1
    assert float(partition_loss(diverse)) == pytest.approx(math.log(1 + 3 / 1.0), rel=1e-6)
    assert float(partition_loss(same)) > float(partition_loss(diverse))
    assert float(partition_loss(torch.randn(4, 1, 8))) == 0.0


# -- ARM -------------------------------------------------------------------------------------

def test_arm_de_albino_kernel_is_shared_by_both_maps():
    from models.arm import de_albino

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 2, 16, 16, generator=g)
    k = torch.randn(1, 1, 4, 4, generator=g)
    out = de_albino(x, k, stride=2)
    assert out.shape == (2, 2, 7, 7)
    assert torch.allclose(out[:, 1:], F.conv2d(x[:, 1:], k, stride=2), atol=1e-6)
    assert torch.allclose(de_albino(x.flip(1), k, 2), out.flip(1))


def test_arm_affinity_sharing_uses_the_batch_mean():
    m = tiny("arm")
    fit_batch(m, make_batch(), 2)
    images = make_batch(seed=2)["image"]
    other = images.clone()
    other[1:] = torch.rand(7, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    m.eval()
    with torch.no_grad():
        a, b = m.predict({"image": images}).logits[0], m.predict({"image": other}).logits[0]
        assert not torch.allclose(a, b)  # sample 0's prediction sees the rest of the batch
        m.arm.eval_affinity = "running"
        a, b = m.predict({"image": images}).logits[0], m.predict({"image": other}).logits[0]
        assert torch.allclose(a, b)      # running mean: batch-independent
    from models.arm import affinity_share

    maps = torch.randn(3, 2, 4, 4)
    out = affinity_share(maps, torch.tensor([0.5]))
    assert torch.allclose(out, maps.mean(1, keepdim=True) + 0.5 * maps.mean((0, 1)))


# -- MA-Net ----------------------------------------------------------------------------------

def test_manet_mixes_the_two_branches_with_beta():
    from models.manet import join_quadrants, split_quadrants

    m = tiny("manet")
    batch = make_batch()
    m.train()
    step = m.training_step(batch, ctx())
    with torch.no_grad():
        o1, o2, _ = m.branches(m.norm(batch["image"]))  # train mode: batch statistics, same outputs
    y = batch["label"]
    assert torch.allclose(step.logits, 0.6 * o1 + 0.4 * o2, atol=1e-6)
    assert torch.allclose(step.losses["ce_local"], 0.6 * F.cross_entropy(o1, y), atol=1e-6)
    assert torch.allclose(step.losses["ce_global"], 0.4 * F.cross_entropy(o2, y), atol=1e-6)
    m.eval()
    with torch.no_grad():
        out = m.predict(batch)
    assert torch.allclose(out.logits, 0.6 * out.extras["local"] + 0.4 * out.extras["global"])
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    parts = split_quadrants(x)
    assert [p.shape[-2:] for p in parts] == [torch.Size([4, 4])] * 4
    assert torch.equal(join_quadrants(parts), x)


# -- DACL ------------------------------------------------------------------------------------

def test_dacl_sparse_center_loss_zero_at_the_centres_and_weighted_elsewhere():
    from models.dacl import sparse_center_loss

    centers = torch.tensor([[1.0, 2.0], [-1.0, 0.5]])
    labels = torch.tensor([0, 1, 1])
    att = torch.tensor([[0.2, 0.8], [0.5, 0.5], [1.0, 0.0]])
    assert float(sparse_center_loss(centers[labels], att, labels, centers)) == 0.0
    f = centers[labels] + torch.tensor([[1.0, 1.0], [2.0, 0.0], [0.0, 3.0]])
    expect = (0.2 * 1 + 0.8 * 1 + 0.5 * 4 + 0.0 * 9) / 2 / 3
    assert float(sparse_center_loss(f, att, labels, centers)) == pytest.approx(expect)


def test_dacl_centres_move_towards_their_class_once_per_step():
    from models.dacl import center_update

    centers = torch.zeros(3, 2)
    f = torch.tensor([[2.0, 2.0], [4.0, 0.0]])
    a = torch.ones(2, 2)
    delta = center_update(f, a, torch.tensor([0, 0]), centers, alpha=0.5)
    assert torch.allclose(delta[0], 0.5 * torch.tensor([6.0, 2.0]) / 3)  # sum / (1 + n_k)
    assert torch.equal(delta[1:], torch.zeros(2, 2))                      # absent classes stay
    batch = make_batch()
    once = tiny("dacl")                                    # one pass per step (plain SGD)
    c0 = once.centers.clone()
    train_step(once, build_optimizer(once), batch, StepContext(step=3, generator=torch_generator(0, "sam")))
    c1 = once.centers.clone()
    m = tiny("dacl", recipe={"optimizer": "sam-sgd"})     # SAM runs the step twice (replay)
    calls = []
    m.fc.register_forward_hook(lambda *a: calls.append(1))
    train_step(m, build_optimizer(m), batch, StepContext(step=3, generator=torch_generator(0, "sam")))
    assert len(calls) == 2
    assert not torch.equal(c0, c1) and torch.equal(m.centers, c1)


def test_dacl_attention_weights_are_probabilities():
    m = tiny("dacl")
    m.eval()
    with torch.no_grad():
        a = m.predict({"image": make_batch()["image"]}).extras["attention"]
    assert a.shape == (8, m.backbone.num_features) and (a > 0).all() and (a < 1).all()


def test_sam_optimizer_works_with_a_baseline():
    m = tiny("dan", recipe={"optimizer": "sam-sgd"})
    opt = build_optimizer(m)
    out = train_step(m, opt, make_batch(), ctx())
    assert torch.isfinite(out.loss)


@pytest.mark.parametrize("name", METHODS)
def test_checkpoint_round_trip(name, tmp_path):
    from models import load_checkpoint, save_checkpoint

    m = tiny(name)
    fit_batch(m, make_batch(), 1)
    save_checkpoint(m, tmp_path / "m.pt")
    m2, _ = load_checkpoint(tmp_path / "m.pt")
    images = make_batch(seed=4)["image"]
    m.eval(), m2.eval()
    with torch.no_grad():
        assert torch.equal(m.predict({"image": images}).logits, m2.predict({"image": images}).logits)
