"""Shared backbones, the pretrained-weights loader and the in-batch augmentations of the baselines."""

from __future__ import annotations

import pickle

import pytest
import torch

from fercore.errors import ConfigError, DataError
from models import batch_augment as aug
from models.backbones import create_backbone, list_backbones, load_pretrained


@pytest.mark.parametrize("name,channels,stride", [("resnet18-tiny", 128, 32), ("resnet50-tiny", 256, 32),
                                                   ("resnet50-caffe-tiny", 256, 32), ("ir50-tiny", 128, 16)])
def test_tiny_backbones_shapes(name, channels, stride):
    net = create_backbone(name)
    y = net.forward_features(torch.rand(2, 3, 64, 64))
    assert net.num_features == channels and y.shape == (2, channels, 64 // stride, 64 // stride)


def test_full_backbones_listed_and_unknown_rejected():
    assert {"resnet18", "resnet50", "resnet50-caffe", "ir50"} <= set(list_backbones())
    with pytest.raises(ConfigError, match="resnet34.*resnet18"):
        create_backbone("resnet34")
    with pytest.raises(ConfigError, match="choose one of resnet18"):
        create_backbone("ir50-tiny", choices=("resnet18",))


def test_ir50_has_the_face_evolve_layout():
    from models.backbones import IR50

    net = IR50()
    assert len(net.body) == 24 and net.stage_ends == [3, 7, 21, 24]
    assert "body.0.res_layer.1.weight" in net.state_dict() and "input_layer.0.weight" in net.state_dict()
    tiny = create_backbone("ir50-tiny")
    outs = tiny.forward_stages(torch.rand(1, 3, 112, 112))
    assert [tuple(o.shape[1:]) for o in outs] == [(16, 56, 56), (32, 28, 28), (64, 14, 14), (128, 7, 7)]


def test_caffe_resnet50_moves_the_stride_to_the_1x1_conv():
    std, caffe = create_backbone("resnet50-tiny"), create_backbone("resnet50-caffe-tiny")
    assert std.layer3[0].conv2.stride == (2, 2) and std.layer3[0].conv1.stride == (1, 1)
    assert caffe.layer3[0].conv1.stride == (2, 2) and caffe.layer3[0].conv2.stride == (1, 1)
    assert set(std.state_dict()) == set(caffe.state_dict())  # same keys: VGGFace2 weights load


def _trunk_state(name="resnet18-tiny", seed=0):
    torch.manual_seed(seed)
    return create_backbone(name).state_dict()


def test_load_msceleb_style_checkpoint_reports_keys(tmp_path):
    state = _trunk_state()
    wrapped = {f"module.{k}": v for k, v in state.items()}
    wrapped["module.fc.weight"] = torch.zeros(12666, 128)  # MS-Celeb identity classifier
    wrapped["module.fc.bias"] = torch.zeros(12666)
    path = tmp_path / "resnet18_msceleb.pth"
    torch.save({"state_dict": wrapped, "epoch": 30, "arch": "resnet18"}, path)
    torch.manual_seed(1)
    net = create_backbone("resnet18-tiny")
    report = load_pretrained(net, path, verbose=False)
    assert report.missing == [] and report.mismatched == []
    assert sorted(report.unexpected) == ["fc.bias", "fc.weight"]
    assert len(report.loaded) == len(state)
    for k, v in state.items():
        assert torch.equal(net.state_dict()[k], v)
    assert "loaded" in report.summary() and "fc.weight" in report.summary()


def test_load_sequential_children_numbering_and_partial_file(tmp_path):
    state = _trunk_state()
    names = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}
    seq = {}
    for k, v in state.items():
        head, rest = k.split(".", 1)
        if head == "layer4":  # a file without the last stage
            continue
        seq[f"features.{names[head]}.{rest}"] = v
    path = tmp_path / "trimmed.pth"
    torch.save(seq, path)
    net = create_backbone("resnet18-tiny")
    report = load_pretrained(net, path, verbose=False)
    assert report.missing and all(k.startswith("layer4.") for k in report.missing)
    assert torch.equal(net.state_dict()["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])


def test_load_vggface2_pickle_of_arrays(tmp_path):
    state = _trunk_state("resnet50-caffe-tiny")
    path = tmp_path / "resnet50_ft_weight.pkl"
    with open(path, "wb") as fh:
        pickle.dump({k: v.numpy() for k, v in state.items()}, fh)
    net = create_backbone("resnet50-caffe-tiny")
    report = load_pretrained(net, path, verbose=False)
    assert report.missing == [] and torch.equal(net.state_dict()["conv1.weight"], state["conv1.weight"])


def test_load_posterpp_split_ir50_keys(tmp_path):
    src = create_backbone("ir50-tiny")
    starts = {1: 0, 2: 1, 3: 2, 4: 3}  # one unit per stage in the tiny IR-50
    renamed = {}
    for k, v in src.state_dict().items():
        if k.startswith("body."):
            i, rest = k[5:].split(".", 1)
            stage = next(s for s, b in starts.items() if int(i) == b)
            if stage == 4:  # POSTER++ keeps three stages only
                continue
            k = f"body{stage}.{int(i) - starts[stage]}.{rest}"
        renamed[k] = v
    path = tmp_path / "new_ir50.pth"
    torch.save(renamed, path)
    net = create_backbone("ir50-tiny")
    report = load_pretrained(net, path, verbose=False)
    assert report.unexpected == [] and all(k.startswith("body.3.") for k in report.missing)
    assert torch.equal(net.state_dict()["body.2.res_layer.1.weight"], src.state_dict()["body.2.res_layer.1.weight"])


def test_load_errors_name_the_file(tmp_path):
    net = create_backbone("resnet18-tiny")
    with pytest.raises(DataError, match="not found"):
        load_pretrained(net, tmp_path / "nope.pth")
    bad = tmp_path / "corrupt.pth"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(DataError, match="corrupt.pth.*cannot read"):
        load_pretrained(net, bad)
    other = tmp_path / "other.pth"
    torch.save({"encoder.w": torch.zeros(3, 3)}, other)
    with pytest.raises(DataError, match="no tensor in the file matches"):
        load_pretrained(net, other)


# -- in-batch augmentations ----------------------------------------------------------------------

def test_erasing_boxes_follow_torchvision_ranges_and_erase_exactly():
    g = torch.Generator().manual_seed(0)
    boxes = aug.sample_erasing(2000, 64, 64, g, p=1.0, scale=(0.02, 0.25))
    area = (boxes[:, 2] * boxes[:, 3]).float() / (64 * 64)
    applied = area > 0
    assert applied.float().mean() > 0.9
    assert area[applied].min() >= 0.015 and area[applied].max() <= 0.27  # rounding of h, w
    assert (boxes[:, 0] + boxes[:, 2] <= 64).all() and (boxes[:, 1] + boxes[:, 3] <= 64).all()
    assert (aug.sample_erasing(100, 64, 64, g, p=0.0)[:, 2:] == 0).all()
    x = torch.ones(2, 3, 8, 8)
    out = aug.erase(x, torch.tensor([[1, 2, 3, 4], [0, 0, 0, 0]]), value=0.0)
    assert out[0, :, 1:4, 2:6].abs().sum() == 0 and out[0].sum() == 3 * (64 - 12)
    assert torch.equal(out[1], x[1])
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(aug.sample_erasing(9, 32, 32, g1), aug.sample_erasing(9, 32, 32, g2))


def test_flip_or_noise_never_does_both():
    g = torch.Generator().manual_seed(0)
    flip, noise = aug.sample_flip_or_noise(4000, g, p=0.5)
    assert not (flip & noise).any()
    assert abs(flip.float().mean() - 0.25) < 0.03 and abs(noise.float().mean() - 0.25) < 0.03
    x = torch.rand(3, 3, 8, 8)
    assert torch.equal(aug.flip_or_noise(x, g, p=0.0), x)
    assert torch.equal(aug.hflip(x, torch.tensor([True, False, False]))[0], x[0].flip(-1))
    noisy = aug.add_gaussian_noise(x, torch.ones_like(x) * 100)
    assert torch.equal(noisy, torch.ones_like(x))  # clamped to [0, 1]


def test_rotate_shift_identity_and_integer_shift():
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(aug.rotate_shift(x, torch.zeros(2), torch.zeros(2, 2)), x)
    moved = aug.rotate_shift(x, torch.zeros(2), torch.tensor([[2.0, 0.0], [0.0, -3.0]]))
    assert torch.allclose(moved[0, :, :, 2:], x[0, :, :, :-2]) and moved[0, :, :, :2].abs().sum() == 0
    assert torch.allclose(moved[1, :, :-3, :], x[1, :, 3:, :])
    g = torch.Generator().manual_seed(0)
    angle, shift = aug.sample_rotate_shift(1000, 224, g, p=0.2)
    on = (angle != 0) | (shift != 0).any(1)
    assert abs(on.float().mean() - 0.2) < 0.04 and angle.abs().max() <= 20 and shift.abs().max() == 32


def test_five_crop_and_center_crop():
    x = torch.rand(5, 3, 28, 28)
    assert torch.allclose(aug.five_crop(x, torch.full((5,), 4), scale=1.0), x)
    crops = aug.five_crop(x, torch.arange(5), scale=32 / 28)
    assert crops.shape == x.shape
    assert torch.equal(aug.center_crop_zoom(x, 32 / 28)[4], crops[4])
    big = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    assert torch.equal(crops[0], big[0, :, :28, :28]) and torch.equal(crops[3], big[3, :, 4:, 4:])


def test_generator_dropout():
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    x = torch.ones(1000)
    a, b = aug.dropout(x, 0.4, g1), aug.dropout(x, 0.4, g2)
    assert torch.equal(a, b) and torch.allclose(a[a != 0], torch.tensor(1 / 0.6))
    assert abs((a == 0).float().mean() - 0.4) < 0.05
    assert torch.equal(aug.dropout(x, 0.0, None), x)
    with pytest.raises(ConfigError, match="drop_rate"):
        aug.dropout(x, 1.0, None)


def test_weights_check_command(tmp_path):
    from click.testing import CliRunner

    from benchmark.cli import main as bench

    state = _trunk_state()
    full, part = tmp_path / "full.pth", tmp_path / "part.pth"
    torch.save({"state_dict": state}, full)
    torch.save({k: v for k, v in state.items() if not k.startswith("layer4.")}, part)
    res = CliRunner().invoke(bench, ["weights", "check", str(full), "--backbone", "resnet18-tiny"])
    assert res.exit_code == 0, res.output
    assert f"{len(state)}" in res.output
    res = CliRunner().invoke(bench, ["weights", "check", str(part), "--backbone", "resnet18-tiny"])
    assert res.exit_code == 1 and "layer4.0.conv1.weight" in res.output
    res = CliRunner().invoke(bench, ["weights", "check", str(tmp_path / "none.pth"), "--backbone", "resnet18"])
    assert res.exit_code == 2 and "none.pth" in res.output and "Traceback" not in res.output


def test_checkpoint_reloads_without_the_pretrained_file(tmp_path):
    """A model built with pretrained=PATH reloads from its checkpoint after PATH is deleted."""
    import torch

    from models import create_model, load_checkpoint, save_checkpoint

    donor = create_model("scn", "tiny")
    weights = tmp_path / "backbone.pth"
    torch.save({"state_dict": donor.backbone.state_dict()}, weights)
    model = create_model("scn", "tiny", pretrained=str(weights)).eval()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    ref = model(x)
    save_checkpoint(model, tmp_path / "ckpt.pt")
    weights.unlink()
    again, _ = load_checkpoint(tmp_path / "ckpt.pt")
    assert torch.equal(again.eval()(x), ref)
