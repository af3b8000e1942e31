"""``fer-bench robustness``: one row per (method, degradation, severity), severity 0 is the
clean test accuracy of the same model, mCE by hand, re-runs reuse models and evaluations, the
summary holds the CSV's numbers, same seed -> same bytes.

The end-to-end runs use a small labelled folder cut from the sample set (7 classes, 12 train /
4 test images each, copied byte for byte) so that the degraded copies at each severity build in
a second; the full sample-set run is the README's ``Robustness curves`` command.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from benchmark.metrics import mean_class_accuracy
from benchmark.robustness import ROBUSTNESS_COLUMNS, summarize, summary_table
from benchmark.robustness_plots import curves, read_robustness
from fercore.errors import ConfigError, DataError

TINY = ["--limit-train", "84", "--limit-test", "28", "--workers", "0", "--threads", "1", "--input-size", "32",
        "--epochs", "2", "--seeds", "0"]


def invoke(args, expect: int = 0):
    from benchmark.cli import main

    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == expect, res.output
    return res


@pytest.fixture(scope="module")
def small_folder(sample_root, tmp_path_factory) -> Path:
    """``split/class/image.png`` with the first 12 train and 4 test images of each class."""
    root = tmp_path_factory.mktemp("small") / "faces"
    for split, n in (("train", 12), ("test", 4)):
        for cls_dir in sorted((sample_root / split).iterdir()):
            for p in sorted(cls_dir.glob("*.png"))[:n]:
                (root / split / cls_dir.name).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, root / split / cls_dir.name / p.name)
    return root


def robust_args(root: Path, out: Path, *extra: str) -> list[str]:
    return ["robustness", "--methods", "cnn,scn", "--severities", "1,2", "--degradations", "udc,ll",
            "--datasets", "folder", "--root", str(root), "--degraded-dir", str(out.parent / "degraded"),
            "--out", str(out), "--no-report", *TINY, *extra]


@pytest.fixture(scope="module")
def robust_run(small_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("robust") / "runs"
    invoke(robust_args(small_folder, out))
    return out


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "robustness.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _results(out: Path) -> dict[str, dict]:
    return {json.loads(p.read_text())["label"]: json.loads(p.read_text())
            for p in out.glob("*/*/seed*/result.json")}


def test_one_row_per_method_degradation_severity(robust_run):
    rows = _rows(robust_run)
    assert list(rows[0]) == list(ROBUSTNESS_COLUMNS)
    keys = [(r["method"], r["test_degradation"], int(r["severity"])) for r in rows]
    assert keys == [(m, d, s) for m in ("cnn", "scn") for d in ("udc", "ll") for s in (0, 1, 2)]
    assert {r["train_set"] for r in rows} == {"folder"} and {r["n_test"] for r in rows} == {"28"}
    for r in rows:
        assert float(r["ci_low"]) <= float(r["accuracy"]) <= float(r["ci_high"])
        assert 0 <= float(r["mean_class_accuracy"]) <= 100


def test_severity_zero_is_the_clean_test_accuracy_of_the_same_model(robust_run):
    res = _results(robust_run)
    for r in _rows(robust_run):
        if r["severity"] == "0":
            # evaluated again from model.pt: the job's own final test pass, to the float
            assert float(r["accuracy"]) == pytest.approx(res[r["method"]]["accuracy"], abs=1e-6)
            mca = 100 * mean_class_accuracy(np.array(res[r["method"]]["confusion"]))
            assert float(r["mean_class_accuracy"]) == pytest.approx(mca, abs=1e-6)
    # the degraded copies differ from the clean set: some evaluation differs from severity 0
    by = {(r["method"], r["test_degradation"], r["severity"]): r["accuracy"] for r in _rows(robust_run)}
    assert any(by[(m, d, "2")] != by[(m, d, "0")] for m in ("cnn", "scn") for d in ("udc", "ll"))


def test_rerun_reuses_models_and_evaluations(robust_run, small_folder):
    stamps = {p: p.stat().st_mtime_ns for p in robust_run.glob("*/*/seed*/*.pt")}
    evals = {p: p.stat().st_mtime_ns for p in robust_run.glob("*/*/seed*/robustness/*.json")}
    assert len(stamps) == 2 and len(evals) == 2 * 5  # clean + udc s1,s2 + ll s1,s2 per model
    before = (robust_run / "robustness.csv").read_bytes()
    res = invoke(robust_args(small_folder, robust_run))
    assert "10 cached" in res.output and "0 evaluated" in res.output
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # no retraining
    assert {p: p.stat().st_mtime_ns for p in evals} == evals  # no re-evaluation
    assert (robust_run / "robustness.csv").read_bytes() == before


def test_same_seed_same_bytes_in_a_fresh_folder(robust_run, small_folder, tmp_path):
    out = tmp_path / "again"
    invoke(robust_args(small_folder, out, "--degradations", "udc"))
    fresh = [r for r in _rows(out)]
    assert fresh == [r for r in _rows(robust_run) if r["test_degradation"] == "udc"]


def test_summary_files_hold_the_csv_numbers(robust_run):
    rows = read_robustness(robust_run / "robustness.csv")
    with open(robust_run / "robustness-summary.csv", newline="") as fh:
        summ = {r["method"]: r for r in csv.DictReader(fh)}
    assert list(summ) == ["cnn", "scn"]
    md = (robust_run / "robustness-summary.md").read_text()
    tex = (robust_run / "robustness-summary.tex").read_text()
    for m in ("cnn", "scn"):
        acc = {(r["test_degradation"], r["severity"]): r["accuracy"] for r in rows if r["method"] == m}
        mean_udc = (acc[("udc", 1)] + acc[("udc", 2)]) / 2
        mean_ll = (acc[("ll", 1)] + acc[("ll", 2)]) / 2
        assert float(summ[m]["clean_accuracy"]) == pytest.approx(acc[("udc", 0)], abs=1e-5)
        assert float(summ[m]["mean_accuracy_udc"]) == pytest.approx(mean_udc, abs=1e-5)
        assert float(summ[m]["mean_accuracy"]) == pytest.approx((mean_udc + mean_ll) / 2, abs=1e-5)
        line = next(x for x in md.splitlines() if x.startswith(f"| {m} |"))
        assert f"| {acc[('udc', 0)]:.1f} | {mean_udc:.1f} | {mean_ll:.1f} |" in line
        assert f"{mean_udc:.1f}" in next(x for x in tex.splitlines() if x.startswith(f"{m} &"))
    assert float(summ["cnn"]["mce"]) == pytest.approx(100.0)  # the default reference: the first method


def test_train_on_each_trains_one_model_per_severity(small_folder, tmp_path):
    out = tmp_path / "each"
    invoke(robust_args(small_folder, out, "--degradations", "ll", "--methods", "cnn", "--train-on", "each"))
    rows = _rows(out)
    assert [(r["train_set"], r["severity"]) for r in rows] == [("folder", "0"), ("ll-folder-s1", "1"),
                                                               ("ll-folder-s2", "2")]
    res = {json.loads(p.read_text())["dataset"]: json.loads(p.read_text()) for p in out.glob("*/*/seed*/result.json")}
    assert len(list(out.glob("*/*/seed*/model.pt"))) == 3
    # each model is tested where it was trained: its own test accuracy
    assert float(rows[0]["accuracy"]) == pytest.approx(res["folder"]["accuracy"], abs=1e-6)
    with open(out / "robustness-summary.csv", newline="") as fh:
        assert next(csv.DictReader(fh))["train_set"] == "each"
    line = curves(read_robustness(out / "robustness.csv"))["ll"]
    assert list(line) == [("cnn", "each")] and [p[0] for p in line[("cnn", "each")]] == [0, 1, 2]


# ------------------------------------------------------------------------- mCE by hand
def _fake(method, deg, accs, train="sample", seed=0):
    return [{"method": method, "train_set": train, "test_degradation": deg, "severity": s, "seed": seed,
             "accuracy": a, "mean_class_accuracy": a, "ci_low": a - 1, "ci_high": a + 1, "n_test": 100}
            for s, a in enumerate(accs)]


def test_mce_by_hand():
    # errors: ref udc 10 | 20 30 (sum 50); A udc 20 | 25 35 (sum 60); ref ll 10 | 40 60 (100); A ll 20 | 30 50 (80)
    rows = (_fake("ref", "udc", [90, 80, 70]) + _fake("ref", "ll", [90, 60, 40])
            + _fake("A", "udc", [80, 75, 65]) + _fake("A", "ll", [80, 70, 50]))
    ref, a = summarize(rows)
    assert ref["reference"] == "ref" and ref["mce"] == pytest.approx(100) and ref["relative_mce"] == pytest.approx(100)
    assert a["ce_udc"] == pytest.approx(100 * 60 / 50) and a["ce_ll"] == pytest.approx(100 * 80 / 100)
    assert a["mce"] == pytest.approx((120 + 80) / 2)
    # relative: A udc (5 + 15) / ref (10 + 20) ; A ll (10 + 30) / ref (30 + 50)
    assert a["relative_ce_udc"] == pytest.approx(100 * 20 / 30) and a["relative_ce_ll"] == pytest.approx(100 * 40 / 80)
    assert a["relative_mce"] == pytest.approx((200 / 3 + 50) / 2)
    assert a["clean_accuracy"] == 80 and a["mean_accuracy_udc"] == 70 and a["mean_accuracy"] == pytest.approx(65)
    # against A instead: ref's CE is the inverse ratio
    ref2 = summarize(rows, reference="A")[0]
    assert ref2["ce_udc"] == pytest.approx(100 * 50 / 60)


def test_summary_averages_seeds_and_marks_a_flat_reference():
    rows = (_fake("ref", "udc", [90, 90, 90]) + _fake("A", "udc", [80, 70, 60], seed=0)
            + _fake("A", "udc", [80, 60, 40], seed=1))
    ref, a = summarize(rows)
    assert a["mean_accuracy_udc"] == pytest.approx((65 + 50) / 2 / 1)  # seed means 65, 50 at s1, s2 -> 57.5
    assert a["ce_udc"] == pytest.approx(100 * (35 + 50) / 20)
    assert math.isnan(a["relative_ce_udc"])  # the reference loses nothing: no relative figure
    md = summary_table([ref, a]).grid
    assert md[1][-1] == "n/a"


def test_summary_refuses_missing_severities_and_unknown_reference():
    rows = _fake("ref", "udc", [90, 80, 70]) + _fake("A", "udc", [80, 75])
    with pytest.raises(DataError, match="A has no result on udc at severity 2"):
        summarize(rows)
    with pytest.raises(ConfigError, match="reference"):
        summarize(_fake("ref", "udc", [90, 80]), reference="nope")


def test_bad_flags_name_themselves(small_folder, tmp_path):
    for extra, flag in ((["--severities", "7"], "--severities"), (["--degradations", "fog"], "--degradations"),
                        (["--train-on", "udc-s9"], "--train-on"), (["--reference", "lrdif"], "--reference"),
                        (["--degrade-opt", "udc.severity=2"], "--degrade-opt")):
        res = invoke(robust_args(small_folder, tmp_path / "bad", *extra), expect=2)
        assert flag in res.output, res.output


# ------------------------------------------------------------------------- README
def _readme_script():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "readme_figures.py"
    spec = importlib.util.spec_from_file_location("readme_figures", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_committed_summary_is_what_the_committed_rows_give():
    """docs/results/robustness-summary.csv (the README block's second table; tests/test_readme.py
    checks the block against the files) is what summarize() makes of docs/results/robustness.csv."""
    mod = _readme_script()
    rows = read_robustness(mod.RESULTS / "robustness.csv")
    with open(mod.RESULTS / "robustness-summary.csv", newline="") as fh:
        committed = list(csv.DictReader(fh))
    for got, want in zip(summarize(rows, committed[0]["reference"]), committed):
        assert got["method"] == want["method"]
        assert got["mce"] == pytest.approx(float(want["mce"]), abs=1e-5)
        assert got["mean_accuracy"] == pytest.approx(float(want["mean_accuracy"]), abs=1e-5)
