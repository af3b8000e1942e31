"""The shared rebuilding runner: layout, determinism, shards, resume, errors, verify."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from degrade.rebuild import (MANIFEST, RUN_RECORD, parse_shard, rebuild_dataset, resolve_device, shard_of,
                             verify_dataset)
from degrade.udc import make_udc
from fercore.errors import ConfigError, ImageReadError
from fercore.imageio import read_image, write_image
from fercore.sources import get_source

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def udc():
    return make_udc("toled")


@pytest.fixture
def mixed_tree(tmp_path: Path) -> Path:
    """A folder dataset of 11 images in two sizes and two formats."""
    root = tmp_path / "mixed"
    rng = np.random.default_rng(5)
    for i in range(11):
        size = (40, 36) if i % 3 else (28, 30)
        cls = ("happy", "sad")[i % 2]
        split = "test" if i % 4 == 0 else "train"
        ext = ".jpg" if i % 5 == 0 else ".png"
        write_image(root / split / cls / f"im{i:02d}{ext}", rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return root


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and ".rebuild" not in p.parts and p.name != RUN_RECORD}


def test_batch_size_workers_and_shards_do_not_change_bytes(udc, mixed_tree, tmp_path):
    src = get_source("folder", mixed_tree)
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    ra = rebuild_dataset(udc, src, a, seed=3, batch_size=1, workers=0)
    rebuild_dataset(udc, src, b, seed=3, batch_size=7, workers=2)
    r0 = rebuild_dataset(udc, src, c, seed=3, batch_size=7, workers=2, shard="0/2")
    assert not r0.complete
    r1 = rebuild_dataset(udc, src, c, seed=3, batch_size=2, workers=1, shard=(1, 2))
    assert ra.complete and r1.complete and len(ra.written) == 11
    assert 0 < len(r0.written) < 11 and len(r0.written) + len(r1.written) == 11
    fa = _files(a)
    assert fa == _files(b) == _files(c)
    assert sum(k.endswith(".jpg") for k in fa) == 3  # JPEGs stay JPEG
    for rec in src.records():  # same names, same sizes
        assert read_image(a / rec.relpath).shape == src.load(rec).shape
    other = rebuild_dataset(udc, src, tmp_path / "d", seed=4, workers=0)
    assert other.complete and _files(tmp_path / "d")[MANIFEST] != fa[MANIFEST]


def test_manifest_and_run_record(udc, mixed_tree, tmp_path):
    src = get_source("folder", mixed_tree)
    out = tmp_path / "out"
    rebuild_dataset(udc, src, out, seed=0, workers=0, command="fer-degrade udc --test")
    header, *lines = (out / MANIFEST).read_text().splitlines()
    assert header.split(",") == ["id", "split", "label", "class", "path", *udc.param_names(), "sha256"]
    assert len(lines) == 11 and lines == sorted(lines)
    rec = json.loads((out / RUN_RECORD).read_text())
    assert rec["identity"]["seed"] == 0 and rec["identity"]["kind"] == "udc"
    assert rec["identity"]["degradation"]["psf"]["sha256"]
    assert rec["shards"]["0/1"]["command"] == "fer-degrade udc --test" and rec["complete"]
    assert rec["version"]
    assert verify_dataset(out, progress=False) == []


def test_rerun_skips_finished_and_redoes_changed(udc, mixed_tree, tmp_path):
    src = get_source("folder", mixed_tree)
    out = tmp_path / "out"
    rebuild_dataset(udc, src, out, workers=0)
    before = _files(out)
    again = rebuild_dataset(udc, src, out, workers=0)
    assert again.written == [] and len(again.skipped) == 11
    victim = out / src.records()[0].relpath
    victim.write_bytes(b"tampered")
    bad = verify_dataset(out, progress=False)
    assert [(m.path, m.problem) for m in bad] == [(src.records()[0].relpath, "changed")]
    fixed = rebuild_dataset(udc, src, out, workers=0)
    assert fixed.written == [src.records()[0].id]
    assert _files(out) == before
    (out / src.records()[1].relpath).unlink()
    assert verify_dataset(out, progress=False)[0].problem == "missing"


def test_other_settings_into_same_out_are_refused(udc, mixed_tree, tmp_path):
    src = get_source("folder", mixed_tree)
    out = tmp_path / "out"
    rebuild_dataset(udc, src, out, workers=0, limit=2)
    with pytest.raises(ConfigError, match="--out.*seed"):
        rebuild_dataset(udc, src, out, seed=9, workers=0, limit=2)


def test_impossible_threads_are_refused_before_anything_is_written(udc, mixed_tree, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="--threads"):
        rebuild_dataset(udc, get_source("folder", mixed_tree), out, workers=0, threads=0)
    assert not out.exists()


def test_corrupt_input_is_named_and_skipped_or_stops(udc, rafdb_tree, tmp_path):
    bad = rafdb_tree / "basic" / "Image" / "aligned" / "train_00002_aligned.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    src = get_source("rafdb", rafdb_tree)
    with pytest.raises(ImageReadError, match="train_00002_aligned.jpg"):
        rebuild_dataset(udc, src, tmp_path / "stop", workers=2, batch_size=1)
    assert not list((tmp_path / "stop").rglob("*.tmp"))
    res = rebuild_dataset(udc, src, tmp_path / "skip", workers=2, on_error="skip")
    assert [f["id"] for f in res.failed] == ["train_00002"] and "train_00002_aligned.jpg" in res.failed[0]["error"]
    assert len(res.written) == 4 and not res.complete
    rec = json.loads((tmp_path / "skip" / RUN_RECORD).read_text())
    assert rec["shards"]["0/1"]["failed_inputs"][0]["path"].endswith("train_00002_aligned.jpg")
    assert "train_00002" not in (tmp_path / "skip" / MANIFEST).read_text()


def test_mirrored_copies_read_like_the_originals(udc, rafdb_tree, ferplus_tree, kdef_tree, tmp_path):
    for name, root in (("rafdb", rafdb_tree), ("ferplus", ferplus_tree), ("kdef", kdef_tree)):
        src = get_source(name, root)
        out = tmp_path / name
        assert rebuild_dataset(udc, src, out, workers=0).complete
        copy = get_source(name, out)
        orig, new = src.records(), copy.records()
        assert [(r.id, r.split, r.label) for r in orig] == [(r.id, r.split, r.label) for r in new]
        for r, n in zip(orig, new):
            assert n.relpath == r.relpath and copy.load(n).shape[:2] == src.load(r).shape[:2]
    assert (tmp_path / "ferplus" / "fer2013new.csv").read_bytes() == (ferplus_tree / "fer2013new.csv").read_bytes()


def test_interrupted_run_resumes_to_the_same_bytes(udc, mixed_tree, tmp_path, monkeypatch):
    import degrade.rebuild as rb

    src = get_source("folder", mixed_tree)
    ref = tmp_path / "ref"
    rebuild_dataset(udc, src, ref, workers=0, batch_size=2)
    out = tmp_path / "out"
    real = rb._encode_write
    calls = {"n": 0}

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt  # the user pressed Ctrl-C mid-run
        return real(*a, **k)

    monkeypatch.setattr(rb, "_encode_write", dying)
    with pytest.raises(KeyboardInterrupt):
        rebuild_dataset(udc, src, out, workers=0, batch_size=2)
    monkeypatch.setattr(rb, "_encode_write", real)
    partial = (out / MANIFEST).read_text().splitlines()
    assert 1 < len(partial) < 12
    res = rebuild_dataset(udc, src, out, workers=2, batch_size=3)
    assert res.complete and len(res.skipped) >= 4
    assert _files(out) == _files(ref)


def test_killed_process_resumes_to_the_same_manifest(udc, tmp_path):
    """SIGKILL a real run mid-way, resume it, compare with an uninterrupted run."""
    root = tmp_path / "many"
    rng = np.random.default_rng(0)
    for i in range(120):
        write_image(root / "neutral" / f"im{i:03d}.png", rng.integers(0, 256, (24, 24, 3), dtype=np.uint8))
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "degrade.cli", "udc", "--src", "folder", "--root", str(root), "--out", str(out),
           "--batch-size", "1", "--workers", "0"]
    env = dict(os.environ, FER_PROGRESS="0")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = out / ".rebuild" / "journal-0-of-1.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if journal.is_file() and journal.read_text().count("\n") >= 10:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert journal.read_text().count("\n") < 120  # it really was killed mid-way
    src = get_source("folder", root)
    res = rebuild_dataset(udc, src, out, workers=2, batch_size=16)
    assert res.complete and len(res.skipped) >= 10
    ref = tmp_path / "ref"
    rebuild_dataset(udc, src, ref, workers=2, batch_size=16)
    assert (out / MANIFEST).read_bytes() == (ref / MANIFEST).read_bytes()
    assert verify_dataset(out, progress=False) == []


def test_shard_function_and_arguments():
    ids = [f"img{i}" for i in range(400)]
    counts = np.bincount([shard_of(i, 4) for i in ids], minlength=4)
    assert counts.min() > 70  # balanced
    assert shard_of("img1", 4) == shard_of("img1", 4)
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "x", "1/0", "-1/2"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad)


def test_cuda_request_without_cuda_is_a_clear_error(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="--device.*CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="--device"):
        resolve_device("tpu")


def test_partial_copies_list_only_their_images(udc, rafdb_tree, ferplus_tree, tmp_path):
    """--split / --limit copies stay readable: their label files name only images that exist."""
    for name, root in (("rafdb", rafdb_tree), ("ferplus", ferplus_tree)):
        src = get_source(name, root)
        out = tmp_path / name
        res = rebuild_dataset(udc, src, out, workers=0, split="test")
        assert res.complete
        copy = get_source(name, out)
        assert [r.id for r in copy.records()] == [r.id for r in src.records("test")]
    # FERPlus keeps its row order (row index = image index): names of the others are blanked
    lines = (tmp_path / "ferplus" / "fer2013new.csv").read_text().splitlines()
    assert len(lines) == len((ferplus_tree / "fer2013new.csv").read_text().splitlines())
