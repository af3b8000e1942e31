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


def test_run_refuses_a_planted_checkpoint(sample_root, tmp_path):
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


# ------------------------------------------------------------- 7. decompression bombs
def _bomb_png(path, side=15000):
    """A valid 1-bit grey PNG of side x side pixels that is only ~30 KB on disk."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\0" * (1 + (side + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def test_an_over_limit_image_is_a_named_skippable_error(folder_tree, tmp_path):
    from benchmark.cli import main as bench
    from degrade.lowlight import make_lowlight
    from degrade.rebuild import rebuild_dataset
    from fercore.imageio import MAX_PIXELS
    from fercore.sources import get_source

    bomb = _bomb_png(folder_tree / "train" / "Happy" / "bomb.png")
    assert bomb.stat().st_size < 300_000 and MAX_PIXELS == 64_000_000
    res = CliRunner().invoke(bench, ["data", "check", "--src", "folder", "--root", str(folder_tree)])
    assert res.exit_code == 1 and "bomb.png: image is too large (225.0 megapixels" in res.output, res.output
    assert "Traceback" not in res.output
    out = rebuild_dataset(make_lowlight("lldif"), get_source("folder", folder_tree), tmp_path / "out",
                          workers=0, on_error="skip")
    assert [f["id"] for f in out.failed] == ["train/Happy/bomb"] and "megapixels" in out.failed[0]["error"]
    assert len(out.written) == 16


# ------------------------------------------------------- 8. OS and decoding errors
@pytest.mark.parametrize("code", ["ENOSPC", "EROFS", "EFBIG", "EACCES"])
def test_os_errors_are_one_line_with_exit_2(sample_root, tmp_path, monkeypatch, code):
    """A full or read-only disk, a file too large, no permission: one line naming the file."""
    import errno

    import fercore.atomic as atomic

    real = atomic.os.replace
    number = getattr(errno, code)

    def failing(src, dst):
        raise OSError(number, os.strerror(number), str(dst))

    monkeypatch.setattr(atomic.os, "replace", failing)
    res = _degrade(["lowlight", "--out", str(tmp_path / "out"), "--limit", "2", "--workers", "0"])
    monkeypatch.setattr(atomic.os, "replace", real)
    assert res.exit_code == 2 and os.strerror(number) in res.output and str(tmp_path / "out") in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1, res.output


def test_binary_files_and_nan_flags_are_one_line_errors(sample_root, tmp_path):
    from benchmark.cli import main as bench

    out = tmp_path / "set"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"identity": {"source": {"source": "sample"}}}))
    (out / "manifest.csv").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00binary")
    res = _degrade(["verify", "--out", str(out)])
    assert res.exit_code == 2 and "manifest.csv" in res.output and "UTF-8" in res.output, res.output
    bad = tmp_path / "bin"
    bad.mkdir()
    (bad / "labels.csv").write_bytes(b"\xff\xfe\x00\x01binary")
    res = CliRunner().invoke(bench, ["data", "check", "--src", "sample", "--root", str(bad)])
    assert res.exit_code in (1, 2) and "labels.csv" in res.output and "Traceback" not in res.output, res.output
    res = _degrade(["udc", "--psf-scale", "nan", "--out", str(tmp_path / "u"), "--limit", "1"])
    assert res.exit_code == 2 and "--psf-scale" in res.output, res.output
    res = _degrade(["lowlight", "--set", "exposure_ev=nan:-2", "--out", str(tmp_path / "l"), "--limit", "1"])
    assert res.exit_code == 2 and "exposure_ev" in res.output, res.output


def test_a_non_numeric_accuracy_in_result_json_is_a_clear_error(tmp_path):
    from benchmark.cli import main as bench

    job = tmp_path / "runs" / "sample" / "cnn--abc" / "seed0"
    job.mkdir(parents=True)
    (job / "result.json").write_text(json.dumps({"dataset": "sample", "label": "cnn", "config_hash": "abc",
                                                 "seed": 0, "accuracy": "high"}))
    res = CliRunner().invoke(bench, ["tables", "--runs", str(tmp_path / "runs")])
    assert res.exit_code == 2 and "result.json" in res.output and "'accuracy'" in res.output, res.output


# --------------------------------------------------------------- 9. non-finite loss
def test_non_finite_lr_is_rejected_and_a_nan_loss_fails_the_job(sample_root, tmp_path, monkeypatch):
    from benchmark.cli import main as bench

    args = ["run", "--methods", "cnn", "--datasets", "sample", "--epochs", "2", "--no-report", "--seeds", "0",
            "--input-size", "32", "--limit-train", "56", "--limit-test", "28", "--workers", "0", "--threads", "1",
            "--out", str(tmp_path / "runs")]
    for lr in ("inf", "nan"):
        res = CliRunner().invoke(bench, [*args, "--lr", lr])
        assert res.exit_code == 2 and "--lr" in res.output, res.output
    import benchmark.runner as runner

    train_epoch = runner.JobRunner.train_epoch

    def nan_in_epoch_2(self, model, optimizer, stage, epoch, labels, *args, **kwargs):
        row = train_epoch(self, model, optimizer, stage, epoch, labels, *args, **kwargs)
        return {**row, "train_loss": float("nan")} if epoch == 1 else row

    monkeypatch.setattr(runner.JobRunner, "train_epoch", nan_in_epoch_2)
    res = CliRunner().invoke(bench, args)
    assert res.exit_code == 1 and "epoch 2" in res.output, res.output
    (run,) = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("sample/*/seed0/run.json")]
    assert run["status"] == "failed" and "nan" in run["error"]
    assert not list((tmp_path / "runs").glob("sample/*/seed0/result.json"))


# ------------------------------------------------------------------ 10. FERPlus votes
def test_ferplus_votes_must_be_finite_and_non_negative(ferplus_tree):
    from fercore.sources import get_source, majority_label

    with pytest.raises(ValueError):
        majority_label([float("nan")] * 10)
    with pytest.raises(ValueError):
        majority_label([10, -3, 0, 0, 0, 0, 0, 0, 0, 0])
    votes = ferplus_tree / "fer2013new.csv"
    lines = votes.read_text().splitlines()
    usage, name, *_ = lines[1].split(",")
    for bad in (["nan"] * 10, ["inf", *["0"] * 9], ["-5", "9", *["0"] * 8]):
        votes.write_text("\n".join([lines[0], ",".join([usage, name, *bad]), *lines[2:]]) + "\n")
        report = get_source("ferplus", ferplus_tree).check(verify_images=False)
        assert [(ln, reason) for _, ln, _, reason in report.bad_lines] == [(2, "vote counts must be finite numbers >= 0")]


# ---------------------------------------------------------------- 11. file modes
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_honour_the_umask(tmp_path, umask, mode):
    from fercore.atomic import atomic_write_bytes
    from fercore.imageio import write_image

    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        write_image(tmp_path / "b.png", np.zeros((4, 4, 3), np.uint8))
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == mode
    assert (tmp_path / "b.png").stat().st_mode & 0o777 == mode


def test_a_built_sample_set_is_readable_by_the_group(tmp_path):
    from fercore.sample.build import build_sample

    old = os.umask(0o022)
    try:
        root = build_sample(tmp_path / "s", 0, overrides={"people": 2, "train_people": 1,
                                                         "photos_per_expression": 1})
    finally:
        os.umask(old)
    assert root.stat().st_mode & 0o777 == 0o755
    assert (root / "sample.json").stat().st_mode & 0o777 == 0o644


# ------------------------------------------------------- 12. leftovers of killed processes
def _dead_pid():
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_killed_writes_temporary_is_removed_and_never_verifies(built_set, sample_root, tmp_path):
    from degrade.lowlight import make_lowlight
    from degrade.rebuild import rebuild_dataset
    from fercore.sources import get_source

    img = next((built_set / "test").rglob("*.png"))
    stale = img.with_name(f".{img.name}.{_dead_pid()}.abcd1234.tmp")
    stale.write_bytes(b"half an image")
    live = img.with_name(f".{img.name}.{os.getpid()}.abcd1234.tmp")  # a write in progress: kept
    live.write_bytes(b"in flight")
    assert (stale.relative_to(built_set).as_posix(), "extra") in _problems(built_set)
    rebuild_dataset(make_lowlight("lldif"), get_source("sample", tmp_path / "src"), built_set, workers=0)
    assert not stale.exists() and live.exists()
    live.unlink()
    assert _problems(built_set) == []


def test_a_terminated_build_sample_leaves_no_workers_or_temp_folder(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "FER_PROGRESS": "0", "FER_SAMPLE_WORKERS": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "benchmark.cli", "data", "build-sample", "--out",
                             str(tmp_path / "s"), "--seed", "5"], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: set[int] = set()
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        children |= {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                     and _ppid(p) == proc.pid}
        if len(children) >= 2 and list(tmp_path.glob(".s.*.tmp/train")):
            break
        time.sleep(0.05)
    assert proc.poll() is None and children, "the build finished before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    time.sleep(0.5)
    alive = [pid for pid in children if Path(f"/proc/{pid}").exists() and _state(pid) != "Z"]
    assert alive == [] and list(tmp_path.iterdir()) == []


def _ppid(proc_dir):
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def _state(pid):
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


# ---------------------------------------------------------------------- 13. odds and ends
def test_a_242_byte_name_is_rebuilt(tmp_path):
    from degrade.lowlight import make_lowlight
    from degrade.rebuild import rebuild_dataset
    from fercore.imageio import write_image
    from fercore.sources import get_source

    name = "a" * 241 + ".png"
    write_image(tmp_path / "src" / "happy" / name, np.full((8, 8, 3), 90, np.uint8))
    write_image(tmp_path / "src" / "sad" / "b.png", np.full((8, 8, 3), 90, np.uint8))
    res = rebuild_dataset(make_lowlight("lldif"), get_source("folder", tmp_path / "src"), tmp_path / "out",
                          workers=0, on_error="skip")
    assert res.complete and res.failed == [] and (tmp_path / "out" / "happy" / name).is_file()


def test_rafdb_label_file_with_a_bom(rafdb_tree):
    from fercore.sources import get_source

    lf = rafdb_tree / "basic" / "EmoLabel" / "list_patition_label.txt"
    lf.write_bytes(b"\xef\xbb\xbf" + lf.read_bytes())
    src = get_source("rafdb", rafdb_tree)
    assert src.check(verify_images=False).bad_lines == []
    first = lf.read_text(encoding="utf-8-sig").split()[0].rsplit(".", 1)[0]
    assert first in {r.id for r in src.records()}


def test_folder_honours_exif_orientation_by_default(tmp_path):
    from PIL import Image, ImageOps

    from fercore.sources import get_source

    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)
    for orientation in range(1, 9):
        im = Image.fromarray(arr)
        exif = im.getexif()
        exif[0x0112] = orientation
        (tmp_path / "src" / "happy").mkdir(parents=True, exist_ok=True)
        im.save(tmp_path / "src" / "happy" / f"o{orientation}.png", exif=exif)
    src, raw = get_source("folder", tmp_path / "src"), get_source("folder", tmp_path / "src", exif="false")
    for rec in src.records():
        with Image.open(rec.path) as im:
            want = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        assert np.array_equal(src.load(rec), want), rec.id
        assert np.array_equal(raw.load(rec), arr)
    assert src.load(next(r for r in src.records() if r.id.endswith("o6"))).shape == (10, 6, 3)


def test_udc_mask_and_psf_file_checks(tmp_path):
    from fercore.errors import ConfigError
    from fercore.imageio import write_image

    from degrade.udc import make_udc

    write_image(tmp_path / "wide.png", np.full((16, 32, 3), 255, np.uint8))
    with pytest.raises(ConfigError, match="--display-mask.*32x16.*square"):
        make_udc("toled", display_mask=str(tmp_path / "wide.png"))
    write_image(tmp_path / "white.png", np.full((16, 16, 3), 255, np.uint8))
    with pytest.raises(ConfigError, match=r"^--display-mask: .*white.png.*less open") as exc:
        make_udc("toled", display_mask=str(tmp_path / "white.png"))
    assert "--set transmittance_scale" not in str(exc.value).split(":")[0]
    psf = np.zeros((5, 5, 3), np.complex128)
    psf[2, 2] = 1 + 1j
    np.save(tmp_path / "psf.npy", psf)
    with pytest.raises(ConfigError, match="--psf.*real numbers.*complex128"):
        make_udc("toled", psf=str(tmp_path / "psf.npy"))


def test_verify_does_not_follow_a_symlink_out_of_the_set(built_set, tmp_path):
    import shutil

    outside = tmp_path / "outside-labels.csv"
    shutil.move(built_set / "labels.csv", outside)
    (built_set / "labels.csv").symlink_to(outside)
    assert ("labels.csv", "outside") in _problems(built_set)
    assert not any(k in ("label", "labels") for _, k in _problems(built_set))


def test_an_unreadable_weights_file_never_suggests_an_unsafe_load(tmp_path):
    from fercore.safeload import torch_load

    for name, data in (("junk.pt", b"not a pickle at all"), ("junk.pth", b"PK\x03\x04broken zip")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError, match=f"{name}: cannot read weights file") as exc:
            torch_load(tmp_path / name)
        assert "weights_only" not in str(exc.value)
