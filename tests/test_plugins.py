"""Plugins end to end: docs/plugins.md's example package (built here from the page's code
blocks) loaded with ``--import`` and as an installed entry point, run through ``fer-bench run``
and ``fer-degrade rebuild``; code fingerprints re-run a job whose model code changed."""

from __future__ import annotations

import csv
import importlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "plugins.md"
TINY = ["--epochs", "1", "--limit-train", "70", "--limit-test", "35", "--workers", "0", "--threads", "1",
        "--eval-batch-size", "35"]


def doc_files() -> dict[str, str]:
    """``{relative path: code}`` of the docs' Python blocks whose first line is ``# <path>.py``."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    return {m.group(1): b for b in blocks if (m := re.match(r"# (\S+\.py)\n", b))}


def invoke(prog: str, args: list[str], expect: int = 0):
    from benchmark.cli import main as bench
    from degrade.cli import main as degrade

    res = CliRunner().invoke(bench if prog == "fer-bench" else degrade, args, catch_exceptions=False)
    assert res.exit_code == expect, res.output
    return res


def _forget(prefix: str, models=(), degradations=()) -> None:
    """Undo a plugin's import and registrations (tests share one process)."""
    from degrade.registry import unregister_degradation
    from fercore import plugins
    from models.registry import _REGISTRY

    for m in list(sys.modules):
        if m == prefix or m.startswith(prefix + "."):
            del sys.modules[m]
    for m in list(plugins._LOADED):
        if m.startswith(prefix):
            del plugins._LOADED[m]
    for n in models:
        _REGISTRY.pop(n, None)
    for n in degradations:
        unregister_degradation(n)


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """docs/plugins.md's package ``mylab_fer`` written to a folder on sys.path (= PYTHONPATH)."""
    root = tmp_path / "plugin"
    files = doc_files()
    assert set(files) == {"mylab_fer/__init__.py", "mylab_fer/models.py", "mylab_fer/blur.py",
                          "mylab_fer/plugin.py"}
    for rel, code in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(code, encoding="utf-8")
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    yield root
    _forget("mylab_fer", models=("myresnet",), degradations=("blur",))


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _check_bench_run(out: Path, deg: Path, base: str, n_images: int) -> None:
    """results.csv and the tables have the plugin's rows; the on-demand copy is blurred."""
    rows = {r["dataset"]: r for r in _rows(out / "results.csv")}
    assert set(rows) == {base, f"blur-{base}"}
    for r in rows.values():
        assert r["method"] == "myresnet" and r["n_test"] and 0.0 <= float(r["accuracy"]) <= 100.0
    summary = (out / "tables" / "summary.csv").read_text()
    assert "myresnet" in summary and f"blur-{base}" in summary
    run = json.loads(next((out / f"blur-{base}").glob("*/seed0/run.json")).read_text())
    assert run["dataset"]["kind"] == "blur" and run["dataset"]["factory"] == {"preset": "mild"}
    assert run["plugins"]["mylab_fer.plugin"] == "--import"
    assert run["config"]["code"]["model"]["modules"]["mylab_fer.models"]
    assert run["config"]["code"]["degradation"]["modules"]["mylab_fer.blur"]
    # every image's sigma is in the preset's range, and its high frequencies are weaker
    copy = next(deg.glob(f"blur-{base}-*"))
    man = _rows(copy / "manifest.csv")
    sig = np.array([float(r["sigma"]) for r in man])
    assert len(man) == n_images and sig.min() >= 0.5 and sig.max() <= 1.5 and sig.std() > 0.1
    from fercore.sources import get_source

    clean = get_source(base, run["dataset"]["clean_root"] if base != "sample" else None)
    blurred = get_source(base, copy)
    rec = clean.records("test")[0]
    rec_b = next(r for r in blurred.records("test") if r.id == rec.id)
    a, b = clean.load(rec).astype(float), blurred.load(rec_b).astype(float)
    assert np.abs(np.diff(b, axis=1)).mean() < 0.8 * np.abs(np.diff(a, axis=1)).mean()


def _check_degrade_rebuild(tmp_path: Path, src_args: list[str], n: int) -> None:
    fixed = tmp_path / "blur-strong"
    res = invoke("fer-degrade", ["rebuild", "blur", "--import", "mylab_fer.plugin", "--preset", "strong",
                                 "--out", str(fixed), "--workers", "0", *src_args])
    assert f"{n} written" in res.output
    assert json.loads((fixed / "run.json").read_text())["identity"]["kind"] == "blur"
    sig = np.array([float(r["sigma"]) for r in _rows(fixed / "manifest.csv")])
    assert len(sig) == n and sig.min() >= 1.5 and sig.max() <= 3.0
    invoke("fer-degrade", ["verify", "--out", str(fixed)])


def test_docs_example_runs_through_both_clis(plugin_dir, folder_tree, tmp_path):
    """The example on a 16-image folder dataset (fast); the next test runs the docs' sample command."""
    out, deg = tmp_path / "runs", tmp_path / "deg"
    invoke("fer-bench", ["run", "--import", "mylab_fer.plugin", "--methods", "myresnet",
                         "--datasets", "folder,blur-folder", "--data", f"folder={folder_tree}", "--out", str(out),
                         "--degraded-dir", str(deg), "--input-size", "32", *TINY])
    _check_bench_run(out, deg, "folder", 16)
    _check_degrade_rebuild(tmp_path, ["--src", "folder", "--root", str(folder_tree)], 16)


@pytest.mark.slow
def test_docs_example_on_the_sample_set(plugin_dir, tmp_path):
    out, deg = tmp_path / "runs", tmp_path / "deg"
    invoke("fer-bench", ["run", "--import", "mylab_fer.plugin", "--methods", "myresnet",
                         "--datasets", "sample,blur-sample", "--out", str(out), "--degraded-dir", str(deg), *TINY])
    _check_bench_run(out, deg, "sample", 2100)
    _check_degrade_rebuild(tmp_path, ["--limit", "40"], 40)


def test_entry_point_loads_an_installed_plugin(plugin_dir, folder_tree, tmp_path, monkeypatch):
    """A dist-info with entry_points.txt on sys.path is what `pip install` leaves behind."""
    from fercore.plugins import ENTRY_POINT_GROUP, entry_point_modules, load_plugins
    from models import list_models

    site = tmp_path / "site"
    info = site / "mylab_fer-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mylab-fer\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nmylab = mylab_fer.plugin\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    assert ("mylab", "mylab_fer.plugin") in entry_point_modules()
    assert "myresnet" not in list_models()
    # the CLI loads it with no flag: the method and the dataset prefix are known
    res = invoke("fer-bench", ["run", "--methods", "myresnet", "--datasets", "folder,blur-folder", "--dry-run",
                               "--data", f"folder={folder_tree}", "--out", str(tmp_path / "runs"),
                               "--degraded-dir", str(tmp_path / "deg")])
    assert "myresnet" in res.output and "blur-folder" in res.output
    assert "myresnet" in list_models() and "mylab_fer.plugin" in load_plugins()


def test_a_failing_plugin_is_one_line_naming_it(tmp_path, monkeypatch):
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('no licence file')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for prog, args in (("fer-bench", ["--import", "broken_plugin", "run", "--dry-run"]),
                       ("fer-degrade", ["rebuild", "ll", "--import", "no_such_plugin_module"])):
        res = invoke(prog, args, expect=2)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and "--import" in lines[0], res.output
    assert "'broken_plugin'" in invoke("fer-bench", ["--import", "broken_plugin", "data", "sources"], 2).output
    assert "no licence file" in invoke("fer-bench", ["--import", "broken_plugin", "data", "sources"], 2).output
    sys.modules.pop("broken_plugin", None)


def test_udc_and_ll_are_registered_like_plugins_and_sources_are_open():
    from benchmark.datasets import parse_dataset_name
    from degrade.registry import get_degradation, list_degradations
    from fercore.sources import SOURCES, register_source
    from fercore.sources.folder import Folder

    assert list_degradations()[:2] == ["udc", "ll"]
    assert get_degradation("lowlight").name == "ll" and get_degradation("udc").preset_arg == "display"
    assert parse_dataset_name("LL-RAF-DB") == parse_dataset_name("ll-rafdb")
    assert parse_dataset_name("LL-RAF-DB").kind == "lowlight"

    class MyFaces(Folder):
        name = "myfaces"

    register_source(MyFaces, aliases=("my-faces",))
    try:
        d = parse_dataset_name("UDC-My-Faces")
        assert (d.name, d.base, d.kind) == ("udc-myfaces", "myfaces", "udc")
        assert "myfaces" in invoke("fer-bench", ["data", "sources"]).output
        with pytest.raises(ValueError, match="registered twice"):
            register_source(type("Other", (Folder,), {"name": "myfaces"}))
    finally:
        from fercore.sources import SOURCE_ALIASES

        SOURCES.pop("myfaces", None)
        SOURCE_ALIASES.pop("my-faces", None)


MODEL = '''
import torch.nn.functional as F
from torch import nn

from models import FERModel, Recipe, StepOutput, register_model


@register_model("fpnet", recipe=Recipe(epochs=1, batch_size=35, input_size=32), presets={{"paper": {{}}, "tiny": {{}}}})
class FPNet(FERModel):
    def __init__(self, num_classes=7):
        super().__init__(num_classes)
        self.conv = nn.Conv2d(3, {width}, 3, 2, 1)
        self.head = nn.Linear({width}, num_classes)

    def training_step(self, batch, ctx):
        logits = self.head(self.conv(batch["image"]).mean((2, 3)))
        return StepOutput(logits, {{"ce": F.cross_entropy(logits, batch["label"])}})

    def predict(self, batch, ctx=None):
        return StepOutput(self.head(self.conv(batch["image"]).mean((2, 3))))
'''


def test_editing_a_models_code_reruns_its_job(folder_tree, tmp_path, monkeypatch):
    mod = tmp_path / "fp_plugin.py"
    mod.write_text(MODEL.format(width=4))
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "runs"
    args = ["run", "--import", "fp_plugin", "--methods", "fpnet", "--datasets", "folder", "--data", f"folder={folder_tree}",
            "--out", str(out),
            "--no-report", *TINY]
    try:
        invoke("fer-bench", args)
        first = sorted((out / "folder").iterdir())
        assert len(first) == 1
        again = invoke("fer-bench", args)
        assert "skipped" in again.output and sorted((out / "folder").iterdir()) == first
        mod.write_text(MODEL.format(width=4) + "\n# a change to the model's code\n")
        invoke("fer-bench", args)
        jobs = sorted((out / "folder").iterdir())
        assert len(jobs) == 2  # a new config hash: trained again, not "skipped"
        codes = {json.loads((j / "seed0" / "run.json").read_text())["config"]["code"]["model"]["modules"]
                 ["fp_plugin"] for j in jobs}
        assert len(codes) == 2
    finally:
        _forget("fp_plugin", models=("fpnet",))


def test_builtin_fingerprints_hash_file_bytes_only(tmp_path):
    from benchmark.fingerprint import model_fingerprint, module_digest
    import hashlib

    fp = model_fingerprint("cnn")
    assert set(fp["modules"]) == {"models.cnn", "models.base"}
    assert fp["modules"]["models.cnn"] == hashlib.sha256((ROOT / "models" / "cnn.py").read_bytes()).hexdigest()
    assert module_digest("json") is not None and module_digest("no.such.module") is None
