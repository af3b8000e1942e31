"""fer-bench run under torchrun (2 CPU processes, gloo): the same training as one process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bench_testmodel import registered

ROOT = Path(__file__).resolve().parents[1]
# No BatchNorm, no dropout, no model noise, stage 1 only: two ranks averaging the gradients of
# two half-batches must train the same weights as one process on the whole batch. 8 steps of 32
# on 128 images: two epochs.
ARGS = ["run", "--methods", "benchtest@tiny+batchnorm=false+dropout=0.0", "--datasets", "sample", "--seeds", "1",
        "--recipe", 'stage_share={"s1": 1, "s2": 0}', "--budget", "8", "--recipe", "lr=0.01", "--input-size", "32",
        "--limit-train", "128", "--limit-test", "64", "--workers", "0", "--threads", "1", "--no-report",
        "--device", "cpu"]


@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="torchrun not installed")
def test_two_ranks_train_like_one_process(tmp_path, sample_root):
    """DistributedDataParallel on two gloo ranks, half a batch each, trains the weights one process
    trains on the whole batch: every weight within atol 1e-5 + rtol 1e-4, every epoch's mean
    training loss within rtol 1e-4, test accuracy within one image (of 64)."""
    import csv
    from benchmark.cli import main

    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}", "OMP_NUM_THREADS": "1", "FER_PROGRESS": "0"}
    torchrun = str(Path(sys.executable).parent / "torchrun") if (Path(sys.executable).parent / "torchrun").exists() \
        else "torchrun"
    with socket.socket() as sock:  # a free port: other test sessions may run torchrun too
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [torchrun, "--nproc_per_node=2", f"--master_port={port}", str(ROOT / "tests" / "bench_ddp_entry.py"),
           *ARGS, "--out", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with registered():
        res = CliRunner().invoke(main, [*ARGS, "--out", str(tmp_path / "one")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (rd,) = [p.parent for p in (tmp_path / "ddp").glob("*/*/seed1/result.json")]
    (r1,) = [p.parent for p in (tmp_path / "one").glob("*/*/seed1/result.json")]
    assert json.loads((rd / "run.json").read_text())["world_size"] == 2
    a = json.loads((rd / "result.json").read_text())
    b = json.loads((r1 / "result.json").read_text())
    assert a["config_hash"] == b["config_hash"]  # the same job, run two ways
    sa = torch.load(rd / "model.pt", weights_only=False)["state_dict"]
    sb = torch.load(r1 / "model.pt", weights_only=False)["state_dict"]
    assert all(torch.allclose(sa[k], sb[k], atol=1e-5, rtol=1e-4) for k in sa)
    assert abs(a["accuracy"] - b["accuracy"]) <= 100 / 64 + 1e-9  # at most one test image flips
    la = [float(r["train_loss"]) for r in csv.DictReader((rd / "epochs.csv").open())]
    lb = [float(r["train_loss"]) for r in csv.DictReader((r1 / "epochs.csv").open())]
    assert len(la) == len(lb) == 2 and la[1] != la[0]  # two epochs that trained
    assert a["steps"] == b["steps"] == 8 and a["images_seen"] == b["images_seen"] == 256
    assert la == pytest.approx(lb, rel=1e-4)
    assert json.loads((r1 / "run.json").read_text())["world_size"] == 1
