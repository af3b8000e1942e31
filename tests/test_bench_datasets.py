"""Dataset resolution: paths, --root rules, and the on-demand degraded copy through the degrade
API: once with a fake ``degrade.rebuild`` / ``degrade.lowlight`` that darkens a mirrored copy
(cheap and observable), once with the real simulators."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmark.datasets import DataSettings, READY_MARKER, resolve_datasets
from fercore.errors import ConfigError


class FakeLowlight:
    kind = "lowlight"

    def __init__(self, preset, **settings):
        self.preset, self.settings = preset, settings

    def describe(self):
        return {"kind": self.kind, "preset": self.preset, "settings": self.settings}


@pytest.fixture
def fake_degrade(monkeypatch):
    """``degrade.lowlight.make_lowlight`` and ``degrade.rebuild.rebuild_dataset`` stand-ins."""
    calls = []

    def rebuild_dataset(degradation, source, out, *, seed=0, device="cpu", batch_size=32, workers=2,
                        shard=(0, 1), split=None, on_error="stop", command=None):
        calls.append({"preset": degradation.preset, "seed": seed, "out": Path(out)})
        out = Path(out)
        for rec in source.records():
            img = source.load(rec)
            (out / rec.relpath).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out / rec.relpath), (img[..., ::-1] * 0.3).astype(np.uint8))
        source.mirror_labels(out)
        (out / "manifest.csv").write_text("id\n" + "\n".join(r.id for r in source.records()) + "\n")
        (out / "run.json").write_text(json.dumps({"seed": seed, "preset": degradation.preset}))

    low = types.ModuleType("degrade.lowlight")
    low.make_lowlight = lambda preset="lldif", **s: FakeLowlight(preset, **s)
    reb = types.ModuleType("degrade.rebuild")
    reb.rebuild_dataset = rebuild_dataset
    monkeypatch.setitem(sys.modules, "degrade.lowlight", low)
    monkeypatch.setitem(sys.modules, "degrade.rebuild", reb)
    return calls


def test_degraded_copy_built_on_demand_once_and_recorded(fake_degrade, folder_tree, tmp_path):
    settings = DataSettings(paths={"folder": str(folder_tree)}, degraded_dir=str(tmp_path / "deg"),
                            degrade_seed=4, ll_preset="dim", degrade_opts={"ll": {"noise": True}})
    ds, clean = resolve_datasets(["ll-folder", "folder"], settings)
    assert len(fake_degrade) == 1 and fake_degrade[0]["seed"] == 4 and fake_degrade[0]["preset"] == "dim"
    out = fake_degrade[0]["out"]
    assert (out / READY_MARKER).is_file() and Path(ds.source.root) == out.resolve()
    rec = ds.record
    assert rec["how"] == "built on demand" and rec["factory"] == {"preset": "dim", "noise": True}
    assert rec["seed"] == 4 and rec["manifest_sha256"] and rec["kind"] == "lowlight"
    assert ds.clean is not None and Path(ds.clean.root) == Path(folder_tree).resolve()
    assert ds.identity != clean.identity  # same ids and labels, but a manifest: another dataset
    img = ds.source.load(ds.source.records()[0])
    assert img.mean() < 0.5 * clean.source.load(clean.source.records()[0]).mean()
    (again, _) = resolve_datasets(["ll-folder", "folder"], settings)
    assert len(fake_degrade) == 1 and again.identity == ds.identity  # reused, not rebuilt
    other = DataSettings(**{**settings.to_dict(), "degrade_seed": 5})
    resolve_datasets(["ll-folder"], other)
    assert len(fake_degrade) == 2 and fake_degrade[1]["out"] != out  # another seed, another copy


def test_run_on_a_copy_built_on_demand(fake_degrade, folder_tree, tmp_path):
    from click.testing import CliRunner

    from benchmark.cli import main

    res = CliRunner().invoke(main, ["run", "--methods", "cnn", "--datasets", "ll-folder", "--root", str(folder_tree),
                                    "--degraded-dir", str(tmp_path / "deg"), "--epochs", "1", "--input-size", "32",
                                    "--workers", "0", "--no-report", "--out", str(tmp_path / "runs")],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (p,) = list((tmp_path / "runs").glob("ll-folder/*/seed0/result.json"))
    r = json.loads(p.read_text())
    assert r["dataset_copy"]["how"] == "built on demand" and r["clean_accuracy"] is not None


def test_real_simulators_build_copies_on_demand(folder_tree, tmp_path):
    """The real ``fer-degrade`` API behind ``udc-*`` and ``ll-*``: the copies mirror the source,
    verify against their manifests; the UDC copy is blurred (the camera gain restores its
    brightness), the low-light copy is darker."""
    from degrade.rebuild import verify_dataset

    settings = DataSettings(paths={"folder": str(folder_tree)}, degraded_dir=str(tmp_path / "deg"))
    udc, ll, clean = resolve_datasets(["udc-folder", "ll-folder", "folder"], settings)
    assert udc.record["kind"] == "udc" and ll.record["kind"] == "lowlight"
    clean_recs = clean.source.records()
    for ds in (udc, ll):
        assert ds.record["how"] == "built on demand"
        root = Path(ds.source.root)
        assert (root / READY_MARKER).is_file() and verify_dataset(root, progress=False) == []
        recs = ds.source.records()
        assert [(r.id, r.split, r.label) for r in recs] == [(r.id, r.split, r.label) for r in clean_recs]
        deg = np.stack([ds.source.load(r) for r in recs]).astype(np.float64)
        ref = np.stack([clean.source.load(r) for r in clean_recs]).astype(np.float64)
        if ds is udc:  # neighbouring pixels of the random test images become alike (a mild T-OLED blur)
            assert np.abs(np.diff(deg, axis=2)).mean() < 0.8 * np.abs(np.diff(ref, axis=2)).mean()
        else:
            assert deg.mean() < 0.8 * ref.mean()


def test_a_rebuilt_copy_given_by_path_records_how_it_was_built(folder_tree, tmp_path):
    """``--data udc-folder=PATH`` on a ``fer-degrade`` output: the run records the copy's seed,
    kind and degradation settings from its run.json."""
    from degrade.rebuild import rebuild_dataset
    from degrade.udc import make_udc
    from fercore.sources import get_source

    out = tmp_path / "udc-copy"
    rebuild_dataset(make_udc("toled"), get_source("folder", folder_tree), out, seed=7, workers=0)
    (ds,) = resolve_datasets(["udc-folder"], DataSettings(paths={"udc-folder": str(out), "folder": str(folder_tree)}))
    rec = ds.record
    assert rec["seed"] == 7 and rec["kind"] == "udc" and rec["record_file"] == "run.json"
    assert rec["degradation"]["display"]["name"] == "toled"


def test_root_and_source_option_rules(sample_root, folder_tree):
    (s,) = resolve_datasets(["sample"], DataSettings(root=str(sample_root)))
    assert Path(s.source.root) == Path(sample_root).resolve()
    with pytest.raises(ConfigError, match="--data names ll-sample"):
        resolve_datasets(["sample"], DataSettings(paths={"ll-sample": "x"}))
    with pytest.raises(ConfigError, match="--src-opt"):
        resolve_datasets(["sample"], DataSettings(src_opts={"*": {"classes": "7"}}))
    (f,) = resolve_datasets(["folder"], DataSettings(root=str(folder_tree), src_opts={"*": {"classes": "8"}}))
    assert len(f.classes) == 8 and f.record["options"]["classes"] == "8"


def test_same_names_other_pixels_is_other_data_with_its_own_degraded_copy(fake_degrade, folder_tree, tmp_path):
    """A face-cropped (or re-encoded) copy of a folder keeps its file names, ids and labels; it
    must still get its own identity and its own degraded copy, never the original's. A moved
    copy with the same bytes keeps both."""
    import shutil

    deg = str(tmp_path / "deg")
    moved = tmp_path / "moved"
    shutil.copytree(folder_tree, moved)
    edited = tmp_path / "edited"
    shutil.copytree(folder_tree, edited)
    first = sorted(p for p in edited.rglob("*.png"))[0]
    img = cv2.imread(str(first))
    cv2.imwrite(str(first), img[2:-2, 2:-2])  # one image cropped: same name, other pixels

    def resolve(root):
        return resolve_datasets(["ll-folder", "folder"], DataSettings(paths={"folder": str(root)}, degraded_dir=deg))

    ll, clean = resolve(folder_tree)
    ll_moved, clean_moved = resolve(moved)
    assert clean_moved.identity == clean.identity and len(fake_degrade) == 1  # same bytes: same data, copy reused
    ll_edit, clean_edit = resolve(edited)
    assert clean_edit.identity != clean.identity
    assert len(fake_degrade) == 2 and fake_degrade[1]["out"] != fake_degrade[0]["out"]
    assert ll_edit.identity != ll.identity
