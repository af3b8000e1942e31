"""The trust model (docs/security.md): no code runs from a weights file, nothing is written
outside --out, verify checks everything a set is made of."""

from __future__ import annotations

import io
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
