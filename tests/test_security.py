"""The trust model (docs/security.md): no code runs from a weights file, nothing is written
outside --out, verify checks everything a set is made of."""

from __future__ import annotations

import io
import json
import os
import pickle

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fercore.errors import DataError


class _Payload:
    """Unpickling this runs ``os.system`` (what a malicious weights file does)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_torch(path, marker, **extra):
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "args": _Payload(marker), **extra}, path)


def _evil_pickle(path, marker):
    with open(path, "wb") as fh:
        pickle.dump({"conv1.weight": np.zeros(1), "x": _Payload(marker)}, fh)


# ------------------------------------------------------------------ 1. weights files
@pytest.mark.parametrize("kind", ["torch", "pickle"])
def test_pretrained_loader_never_runs_a_payload(tmp_path, kind):
    from models.backbones import create_backbone, load_pretrained

    marker, path = tmp_path / "PWNED", tmp_path / "evil.pth"
    (_evil_torch if kind == "torch" else _evil_pickle)(path, marker)
    with pytest.raises(DataError, match=r"evil\.pth: .*posix\.system.*refused.*weights convert"):
        load_pretrained(create_backbone("resnet18-tiny"), path, verbose=False)
    assert not marker.exists()


def test_weights_check_command_refuses_a_payload(tmp_path):
    from benchmark.cli import main

    marker, path = tmp_path / "PWNED", tmp_path / "evil.pth"
    _evil_torch(path, marker)
    res = CliRunner().invoke(main, ["weights", "check", str(path), "--backbone", "resnet18-tiny"])
    assert res.exit_code == 2 and "refused" in res.output and not marker.exists()


def test_checkpoint_la_clip_and_landmark_loaders_refuse_a_payload(tmp_path):
    from fercore.errors import ConfigError
    from models import load_checkpoint
    from models.la_clip import la_clip_state_from_checkpoint
    from models.landmarks import load_state_from_path

    marker, path = tmp_path / "PWNED", tmp_path / "model.pt"
    _evil_torch(path, marker, config={"name": "lldif"})
    with pytest.raises(DataError, match="refused"):
        load_checkpoint(path)
    with pytest.raises(DataError, match="refused"):
        la_clip_state_from_checkpoint(path)
    with pytest.raises(ConfigError, match="refused"):
        load_state_from_path(torch.nn.Linear(1, 1), path, flag="landmark_checkpoint")
    assert not marker.exists()


def test_safe_globals_of_old_face_checkpoints_still_load(tmp_path):
    """NumPy scalars/arrays and argparse.Namespace (old training scripts) stay loadable."""
    import argparse

    from fercore.safeload import torch_load

    path = tmp_path / "old.pth.tar"
    torch.save({"state_dict": {"w": torch.ones(2)}, "epoch": np.int64(7), "best": np.float64(0.5),
                "mean": np.array([1.0, 2.0]), "args": argparse.Namespace(lr=0.1)}, path)
    obj = torch_load(path)
    assert obj["epoch"] == 7 and obj["args"].lr == 0.1 and obj["mean"].tolist() == [1.0, 2.0]


def test_convert_untrusted_is_an_explicit_opt_in(tmp_path):
    from benchmark.cli import main
    from fercore.safeload import torch_load

    src, dst = tmp_path / "legacy.pth", tmp_path / "plain.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "args": io.StringIO("custom object")}, src)
    with pytest.raises(DataError, match="refused"):
        torch_load(src)
    res = CliRunner().invoke(main, ["weights", "convert", str(src), str(dst)])
    assert res.exit_code == 2 and "--trust-code" in res.output and not dst.exists()
    res = CliRunner().invoke(main, ["weights", "convert", str(src), str(dst), "--trust-code"])
    assert res.exit_code == 0, res.output
    assert torch.equal(torch_load(dst)["state_dict"]["w"], torch.ones(2))


def test_run_refuses_a_planted_checkpoint(tmp_path):
    """A checkpoint.pt planted in a shared runs folder is refused, not resumed (and not run)."""
    from benchmark.cli import main

    args = ["run", "--methods", "cnn", "--datasets", "sample", "--epochs", "2", "--no-report", "--seeds", "0",
            "--input-size", "32", "--limit-train", "56", "--limit-test", "28", "--workers", "0", "--threads", "1",
            "--out", str(tmp_path / "runs")]
    res = CliRunner().invoke(main, [*args, "--stop-after-epochs", "1"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (ck,) = (tmp_path / "runs").glob("*/*/seed0/checkpoint.pt")
    from fercore.safeload import torch_load

    real = torch_load(ck)
    marker = tmp_path / "PWNED"
    torch.save({**real, "history": [_Payload(marker)]}, ck)
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 1 and "refused" in " ".join(res.output.split()), res.output
    assert not marker.exists() and not list((tmp_path / "runs").glob("*/*/seed0/result.json"))


# ------------------------------------------------------------- 2. paths from label files
def _mini_sample(sample_root, dst, n=6):
    """A sample-layout copy of the first ``n`` test images of the sample set (labels.csv + images)."""
    import shutil

    lines = (sample_root / "labels.csv").read_text().splitlines()
    rows = [ln for ln in lines[1:] if ln.split(",")[1] == "test"][:n]
    for ln in rows:
        rel = ln.split(",")[4]
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sample_root / rel, dst / rel)
    (dst / "labels.csv").write_text("\n".join([lines[0], *rows]) + "\n")
    return dst


def _degrade(args):
    from degrade.cli import main

    return CliRunner().invoke(main, args)


def test_ferplus_name_that_climbs_out_is_refused(ferplus_tree, tmp_path):
    from benchmark.cli import main as bench

    votes = ferplus_tree / "fer2013new.csv"
    lines = votes.read_text().splitlines()
    usage, name, rest = lines[1].split(",", 2)
    lines[1] = f"{usage},../../../ESCAPED.png,{rest}"
    votes.write_text("\n".join(lines) + "\n")
    out = tmp_path / "a" / "b" / "out"
    res = _degrade(["lowlight", "--src", "ferplus", "--root", str(ferplus_tree), "--out", str(out), "--workers", "0"])
    assert res.exit_code == 2 and "line 2" in res.output and "fer0000000.png" in res.output, res.output
    assert not list(tmp_path.rglob("ESCAPED.png"))
    chk = CliRunner().invoke(bench, ["data", "check", "--src", "ferplus", "--root", str(ferplus_tree), "--no-images"])
    assert chk.exit_code == 1 and "ESCAPED" in chk.output


def test_sample_labels_with_an_absolute_path_cannot_overwrite_it(sample_root, tmp_path):
    src = _mini_sample(sample_root, tmp_path / "src")
    victim = tmp_path / "victim" / "ESCAPED.png"
    victim.parent.mkdir()
    first = (src / "labels.csv").read_text().splitlines()[1].split(",")
    victim.write_bytes((src / first[4]).read_bytes())
    before = victim.read_bytes()
    with open(src / "labels.csv", "a") as fh:
        fh.write(f"p60_fear_9,test,1,fear,{victim}\n")
    res = _degrade(["lowlight", "--src", "sample", "--root", str(src), "--out", str(tmp_path / "out"), "--workers", "0"])
    assert res.exit_code == 2 and "line 8" in res.output, res.output
    assert victim.read_bytes() == before and [p.name for p in victim.parent.iterdir()] == ["ESCAPED.png"]


def test_rebuild_refuses_an_output_that_resolves_outside_out(sample_root, tmp_path):
    from degrade.lowlight import make_lowlight
    from degrade.rebuild import rebuild_dataset
    from fercore.sources import get_source

    src = get_source("sample", _mini_sample(sample_root, tmp_path / "src"))
    elsewhere, out = tmp_path / "elsewhere", tmp_path / "out"
    elsewhere.mkdir()
    out.mkdir()
    (out / "test").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(DataError, match="outside the folder"):
        rebuild_dataset(make_lowlight("lldif"), src, out, workers=0)
    assert list(elsewhere.iterdir()) == []


def test_verify_never_reads_outside_the_set(sample_root, tmp_path):
    from degrade.lowlight import make_lowlight
    from degrade.rebuild import rebuild_dataset, verify_dataset
    from fercore.sources import get_source

    out = tmp_path / "out"
    rebuild_dataset(make_lowlight("lldif"), get_source("sample", _mini_sample(sample_root, tmp_path / "src")),
                    out, workers=0)
    (tmp_path / "secret.png").write_bytes(b"secret")
    text = (out / "manifest.csv").read_text().splitlines()
    first = text[1].split(",")
    first[4] = "../secret.png"
    (out / "manifest.csv").write_text("\n".join([text[0], ",".join(first), *text[2:]]) + "\n")
    bad = {(m.path, m.problem) for m in verify_dataset(out, progress=False)}
    assert ("../secret.png", "outside") in bad and ("manifest.csv", "changed") in bad
    assert not any(p == "../secret.png" and k in ("changed", "missing") for p, k in bad)


# ------------------------------------------------------------------- 3. resume identity
def test_resume_from_another_root_or_edited_inputs_is_refused(sample_root, tmp_path):
    import shutil

    a = _mini_sample(sample_root, tmp_path / "rootA")
    b = tmp_path / "rootB"
    shutil.copytree(a, b)
    out = str(tmp_path / "out")
    common = ["lowlight", "--src", "sample", "--out", out, "--workers", "0"]
    assert _degrade([*common, "--root", str(a)]).exit_code == 0
    assert _degrade([*common, "--root", str(a)]).exit_code == 0  # same input: resumes
    res = _degrade([*common, "--root", str(b)])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and str(a) in text and str(b) in text, res.output
    img = next((a / "test").rglob("*.png"))
    img.write_bytes(img.read_bytes() + b"\0")  # an edited source image (a different size)
    res = _degrade([*common, "--root", str(a)])
    assert res.exit_code == 2 and "changed" in res.output, res.output


# ---------------------------------------------------------------------- 4. verify
@pytest.fixture
def built_set(sample_root, tmp_path):
    from degrade.lowlight import make_lowlight
    from degrade.rebuild import rebuild_dataset
    from fercore.sources import get_source

    out = tmp_path / "set"
    rebuild_dataset(make_lowlight("lldif"), get_source("sample", _mini_sample(sample_root, tmp_path / "src")),
                    out, workers=0)
    return out


def _problems(out):
    from degrade.rebuild import verify_dataset

    return sorted({(m.path, m.problem) for m in verify_dataset(out, progress=False)})


def _edit_row(out, index, column, value):
    lines = (out / "manifest.csv").read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[index].split(",")
    cells[header.index(column)] = value
    lines[index] = ",".join(cells)
    (out / "manifest.csv").write_text("\n".join(lines) + "\n")


def test_verify_checks_manifest_labels_extra_files_and_completeness(built_set):
    import shutil

    assert _problems(built_set) == []
    cases = {}
    for name in ("label", "param", "deleted", "extra", "swapped", "incomplete"):
        cases[name] = built_set.with_name(name)
        shutil.copytree(built_set, cases[name])
    _edit_row(cases["label"], 1, "label", "5")
    _edit_row(cases["param"], 2, "exposure_ev", "-1.0")
    lines = (cases["deleted"] / "manifest.csv").read_text().splitlines()
    (cases["deleted"] / "manifest.csv").write_text("\n".join(lines[:-1]) + "\n")
    (cases["extra"] / "test" / "fear" / "intruder.png").parent.mkdir(parents=True, exist_ok=True)
    (cases["extra"] / "test" / "fear" / "intruder.png").write_bytes(b"x")
    labels = (cases["swapped"] / "labels.csv").read_text().splitlines()
    a, b = labels[1].split(","), labels[-1].split(",")
    a[2], b[2], a[3], b[3] = b[2], a[2], b[3], a[3]
    labels[1], labels[-1] = ",".join(a), ",".join(b)
    (cases["swapped"] / "labels.csv").write_text("\n".join(labels) + "\n")
    rec = json.loads((cases["incomplete"] / "run.json").read_text())
    rec["complete"] = False
    (cases["incomplete"] / "run.json").write_text(json.dumps(rec))
    found = {k: _problems(v) for k, v in cases.items()}
    assert ("manifest.csv", "changed") in found["label"] and any(p == "label" for _, p in found["label"])
    assert found["param"] == [("manifest.csv", "changed")]
    assert {("manifest.csv", "changed"), ("manifest.csv", "rows")} <= set(found["deleted"])
    assert found["extra"] == [("test/fear/intruder.png", "extra")]
    assert ("labels.csv", "changed") in found["swapped"] and any(p in ("label", "labels") for _, p in found["swapped"])
    assert found["incomplete"] == [("run.json", "incomplete")]
    res = _degrade(["verify", "--out", str(cases["deleted"])])
    assert res.exit_code == 1 and "rows: manifest.csv" in res.output


# ------------------------------------------------------- 5. training on a half-built copy
def test_run_refuses_an_incomplete_copy_unless_asked(sample_root, tmp_path):
    from benchmark.datasets import DataSettings, resolve_datasets
    from degrade.lowlight import make_lowlight
    from degrade.rebuild import rebuild_dataset
    from fercore.sources import get_source

    out = tmp_path / "half"
    res = rebuild_dataset(make_lowlight("lldif"), get_source("sample", _mini_sample(sample_root, tmp_path / "src", 12)),
                          out, workers=0, shard="0/2")
    assert not res.complete and 0 < len(res.written) < 12
    with pytest.raises(DataError, match="incomplete.*--allow-unverified-data"):
        resolve_datasets(["ll-sample"], DataSettings(paths={"ll-sample": str(out)}))
    (ds,) = resolve_datasets(["ll-sample"], DataSettings(paths={"ll-sample": str(out)}, allow_unverified=True))
    assert ds.record["verified"] is False and "incomplete: run.json" in ds.record["verify_problems"][0]
    from benchmark.cli import main

    cli = CliRunner().invoke(main, ["run", "--methods", "cnn", "--datasets", "ll-sample", "--data",
                                    f"ll-sample={out}", "--out", str(tmp_path / "runs"), "--no-report"])
    assert cli.exit_code == 2 and "incomplete" in cli.output, cli.output


# ---------------------------------------------------------- 6. duplicate ids in data check
def test_data_check_reports_duplicate_ids(folder_tree, ferplus_tree):
    from benchmark.cli import main
    from fercore.imageio import write_image

    img = np.zeros((8, 8, 3), np.uint8)
    write_image(folder_tree / "train" / "Happy" / "img0.jpg", img)  # img0.png is there too
    res = CliRunner().invoke(main, ["data", "check", "--src", "folder", "--root", str(folder_tree), "--no-images"])
    assert res.exit_code == 1 and "duplicate ids ['train/Happy/img0']" in res.output, res.output
    votes = ferplus_tree / "fer2013new.csv"
    lines = votes.read_text().splitlines()
    first, second = lines[1].split(","), lines[2].split(",")
    second[1] = first[1]  # the first image's name listed twice
    lines[2] = ",".join(second)
    votes.write_text("\n".join(lines) + "\n")
    res = CliRunner().invoke(main, ["data", "check", "--src", "ferplus", "--root", str(ferplus_tree), "--no-images"])
    assert res.exit_code == 1 and "duplicate" in res.output, res.output
