"""fer-bench run / tables / figures end to end on the sample set, at tiny settings.

One module-scoped run (2 methods x 2 datasets x 1 seed) feeds most tests; the resume tests
train their own small jobs. The degraded dataset is a "degraded by path" copy of the sample
set made here with a simple local transform (darkening), as a fer-degrade copy would be.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bench_testmodel import registered

TINY = ["--input-size", "32", "--limit-train", "224", "--limit-test", "112", "--workers", "0",
        "--threads", "1", "--eval-batch-size", "64"]


def invoke(args, expect: int = 0):
    from benchmark.cli import main

    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == expect, res.output
    return res


#: People of the sample set kept in the degraded copy (12 train, 6 test: 420 + 210 images).
KEEP_PEOPLE = set(range(1, 13)) | set(range(49, 55))


def darkened_copy(sample_root: Path, out: Path, factor: float = 0.35) -> Path:
    """A 'low-light' copy of part of the sample set mirroring its layout (labels.csv + images)."""
    if (out / "labels.csv").is_file():
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for f in ("labels.csv", "sample.json"):
        (tmp / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sample_root / f, tmp / f)
    rows = []
    with open(sample_root / "labels.csv", newline="") as fh:
        for r in csv.DictReader(fh):  # plain cv2 writes: no per-file fsync, this is test data
            if int(r["id"][1:3]) not in KEEP_PEOPLE:
                continue
            img = cv2.imread(str(sample_root / r["path"]), cv2.IMREAD_COLOR)
            (tmp / r["path"]).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp / r["path"]), np.round(img.astype(np.float32) * factor).astype(np.uint8))
            rows.append(r["id"])
    with open(sample_root / "labels.csv", newline="") as fh:
        lines = fh.read().splitlines()
    (tmp / "labels.csv").write_text("\n".join([lines[0]] + [ln for ln in lines[1:]
                                                            if int(ln.split(",")[0][1:3]) in KEEP_PEOPLE]) + "\n")
    (tmp / "manifest.csv").write_text("id\n" + "\n".join(rows) + "\n")
    (tmp / "run.json").write_text(json.dumps({"seed": 7, "preset": "test-darken"}))
    tmp.rename(out)
    return out


@pytest.fixture(scope="module")
def bench_models():
    with registered():
        yield


@pytest.fixture(scope="module")
def dark_root(sample_root, tmp_path_factory):
    return darkened_copy(sample_root, tmp_path_factory.mktemp("dark") / "ll-sample")


@pytest.fixture(scope="module")
def main_run(bench_models, dark_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    invoke(["run", "--methods", "cnn,benchtest+use_landmarks=true", "--datasets", "sample,ll-sample",
            "--allow-unverified-data",
            "--data", f"ll-sample={dark_root}", "--epochs", "1", "--seeds", "0", "--out", str(out), *TINY])
    return out


def _results(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*/*/seed*/result.json"))]


def test_run_writes_records_and_results_table(main_run):
    res = _results(main_run)
    assert sorted((r["label"], r["dataset"]) for r in res) == [
        ("benchtest+use_landmarks=true", "ll-sample"), ("benchtest+use_landmarks=true", "sample"),
        ("cnn", "ll-sample"), ("cnn", "sample")]
    with open(main_run / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    for r in res:
        row = next(x for x in rows if x["label"] == r["label"] and x["dataset"] == r["dataset"])
        assert float(row["accuracy"]) == pytest.approx(r["accuracy"], abs=1e-12)
        assert float(row["macro_f1"]) == pytest.approx(r["macro_f1"], abs=1e-12)
        assert row["config_hash"] == r["config_hash"] and float(row["train_time_s"]) > 0
        # accuracy is the diagonal of the confusion matrix; per-class accuracy its rows
        cm = np.array(r["confusion"])
        assert r["accuracy"] == pytest.approx(100 * np.trace(cm) / cm.sum())
        assert cm.sum() == r["n_test"] == 112 and r["n_train"] == 224
        for i, c in enumerate(r["classes"]):
            assert float(row[f"acc_{c}"]) == pytest.approx(100 * cm[i, i] / cm[i].sum())
        # per-epoch log: one row per epoch of every stage, last test accuracy = final accuracy
        with open(Path(r["run_dir"]) / "epochs.csv", newline="") as fh:
            ep = list(csv.DictReader(fh))
        assert len(ep) == r["epochs"] == (2 if r["method"] == "benchtest" else 1)
        assert float(ep[-1]["test_acc"]) == pytest.approx(r["accuracy"])
        # the best accuracy is taken over the final stage only (not over stage 1's epochs)
        assert r["best_epoch"] == len(ep) and r["best_accuracy"] == pytest.approx(r["accuracy"])
        assert not (Path(r["run_dir"]) / "checkpoint.pt").exists() and (Path(r["run_dir"]) / "model.pt").is_file()


def test_degraded_copy_is_recorded_and_clean_test_evaluated(main_run, dark_root):
    from benchmark.results import load_predictions
    from fercore.hashing import sha256_file

    for r in _results(main_run):
        run = json.loads((Path(r["run_dir"]) / "run.json").read_text())
        assert run["status"] == "done" and run["seed"] == 0
        if r["dataset"] != "ll-sample":
            assert r["clean_accuracy"] is None
            continue
        d = run["dataset"]
        assert d["how"] == "path" and Path(d["root"]) == dark_root.resolve()
        assert d["manifest_sha256"] == sha256_file(dark_root / "manifest.csv")
        assert d["seed"] == 7 and d["preset"] == "test-darken"
        pred = load_predictions(r["run_dir"])
        assert list(pred["ids"]) == list(pred["clean_ids"])
        assert pred["clean_logits"].shape == pred["logits"].shape
        acc = 100 * float((pred["clean_logits"].argmax(1) == pred["clean_labels"]).mean())
        assert r["clean_accuracy"] == pytest.approx(acc)
        assert not np.array_equal(pred["clean_logits"], pred["logits"])  # other images, other logits


def test_tables_rows_equal_run_records(main_run, tmp_path):
    invoke(["tables", "--runs", str(main_run), "--out", str(tmp_path),
            "--fill", "SCN=cnn", "--fill", "LLDif=benchtest+use_landmarks=true"])
    res = {(r["label"], r["dataset"]): r for r in _results(main_run)}
    with open(tmp_path / "summary.csv", newline="") as fh:
        summary = list(csv.DictReader(fh))
    assert {(s["label"], s["dataset"]) for s in summary} == set(res)
    for s in summary:
        assert float(s["mean"]) == pytest.approx(res[(s["label"], s["dataset"])]["accuracy"], abs=1e-9)
        assert s["n"] == "1" and s["std"] == "" and s["other_configs"] == "0"
    # the stand-in LLDif Table 2 (LL-RAF-DB -> ll-sample) takes SCN from cnn, LLDif from benchtest
    with open(tmp_path / "sample-lldif-table2.csv", newline="") as fh:
        t2 = {r["row"]: r for r in csv.DictReader(fh)}
    assert float(t2["SCN"]["mean"]) == pytest.approx(res[("cnn", "ll-sample")]["accuracy"])
    assert float(t2["LLDif"]["mean"]) == pytest.approx(res[("benchtest+use_landmarks=true", "ll-sample")]["accuracy"])
    assert t2["SCN"]["paper_value"] == "75.2" and t2["SCN"]["diff"] == ""  # stand-in: no difference
    assert t2["DAN"]["status"] == "missing" and t2["DAN"]["mean"] == ""
    md = (tmp_path / "sample-lldif-table2.md").read_text()
    assert f"{res[('cnn', 'll-sample')]['accuracy']:.2f} (n=1)" in md and "| DAN | missing |" in md
    # every cell has its bootstrap interval (from predictions.npz), around the mean
    for r in (t2["SCN"], t2["LLDif"]):
        assert float(r["ci_low"]) <= float(r["mean"]) <= float(r["ci_high"])
    assert "LLDif" in t2 and t2["LLDif"]["mcnemar_vs"] == "SCN" and 0 < float(t2["LLDif"]["mcnemar_p"]) <= 1
    # the real-data tables have no runs: not written (nothing is invented), named as skipped
    assert not (tmp_path / "lrdif-table2.csv").exists()
    index = json.loads((tmp_path / "index.json").read_text())
    assert "lrdif-table2" in index["skipped"] and "sample-lldif-table2" in index["tables"]
    assert "lrdif-table2" in (tmp_path / "summary.md").read_text()
    tex = (tmp_path / "sample-lldif-table2.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex and "--" in tex


def test_figures_written_and_not_empty(main_run, tmp_path):
    """The run wrote its figures (the `figures` command's code); the command itself too."""
    fig_dir = main_run / "figures"
    idx = json.loads((fig_dir / "index.json").read_text())
    names = set(idx["figures"])
    for stem in ("tsne-sample", "tsne-ll-sample", "confidence-ll-sample", "classes-sample"):
        assert f"{stem}.png" in names and f"{stem}.pdf" in names
    assert sum(n.startswith("confusion-") for n in names) == 8  # 4 runs x (png, pdf)
    for n in names:
        data = (fig_dir / n).read_bytes()
        assert len(data) > 2000
        assert data[:4] == (b"\x89PNG" if n.endswith(".png") else b"%PDF")
    assert any("tstudy" in s for s in idx["skipped"])  # no T sweep in this run: said, not drawn
    assert (main_run / "tables" / "all.md").is_file()
    invoke(["figures", "--runs", str(main_run), "--out", str(tmp_path), "--only", "classes"])
    assert json.loads((tmp_path / "index.json").read_text())["figures"] == ["classes-sample.pdf",
                                                                              "classes-sample.png"]
    assert (tmp_path / "classes-sample.png").read_bytes() == (fig_dir / "classes-sample.png").read_bytes()


def test_finished_jobs_are_skipped(main_run):
    from benchmark.cli import main

    before = {p: p.stat().st_mtime_ns for p in main_run.glob("*/*/seed*/result.json")}
    res = CliRunner().invoke(main, ["run", "--methods", "cnn", "--datasets", "sample", "--epochs", "1",
                                    "--out", str(main_run), "--no-report", *TINY], catch_exceptions=False)
    assert res.exit_code == 0 and "skipped" in res.output
    assert {p: p.stat().st_mtime_ns for p in before} == before


def _state(run_dir: Path) -> dict:
    return torch.load(run_dir / "model.pt", map_location="cpu", weights_only=False)["state_dict"]


def test_interrupted_run_resumes_to_the_same_bits(bench_models, tmp_path):
    """Stopped after epoch 1 (mid stage 1) and after epoch 2 (the stage boundary), then resumed:
    same accuracy, same labels, same weights as an uninterrupted run."""
    args = ["run", "--methods", "benchtest@tiny", "--datasets", "sample", "--seeds", "3", "--no-report",
            "--epochs", "2", *TINY]
    invoke([*args, "--out", str(tmp_path / "a")])
    res1 = invoke([*args, "--out", str(tmp_path / "b"), "--stop-after-epochs", "1"])
    assert "stopped" in res1.output
    ck = next((tmp_path / "b").glob("*/*/seed3/checkpoint.pt"))
    state = torch.load(ck, map_location="cpu", weights_only=False)
    assert (state["stage"], state["epoch_done"], len(state["history"])) == ("s1", 1, 1)
    assert not list((tmp_path / "b").glob("*/*/seed3/result.json"))
    invoke([*args, "--out", str(tmp_path / "b"), "--stop-after-epochs", "1"])  # ends stage 1
    state = torch.load(ck, map_location="cpu", weights_only=False)
    assert (state["stage"], state["epoch_done"]) == ("s1", 2)
    invoke([*args, "--out", str(tmp_path / "b")])
    (ra,), (rb,) = _results(tmp_path / "a"), _results(tmp_path / "b")
    assert ra["config_hash"] == rb["config_hash"]
    assert rb["accuracy"] == ra["accuracy"] and rb["macro_f1"] == ra["macro_f1"]
    assert rb["confusion"] == ra["confusion"]
    sa, sb = _state(Path(ra["run_dir"])), _state(Path(rb["run_dir"]))
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    ea = (Path(ra["run_dir"]) / "epochs.csv").read_text().splitlines()
    eb = (Path(rb["run_dir"]) / "epochs.csv").read_text().splitlines()
    drop_time = lambda lines: [ln.rsplit(",", 1)[0] for ln in lines]  # noqa: E731 -- epoch_time_s differs
    assert drop_time(ea) == drop_time(eb) and len(ea) == 5


def test_a_failed_job_is_recorded_and_the_others_run(bench_models, tmp_path):
    res = invoke(["run", "--methods", "broken,cnn", "--datasets", "sample", "--epochs", "1", "--no-report",
                  "--out", str(tmp_path), *TINY], expect=1)
    assert "always fails" in res.output
    (run,) = [json.loads(p.read_text()) for p in tmp_path.glob("sample/broken*/seed0/run.json")]
    assert run["status"] == "failed" and "always fails" in run["error"]
    assert [r["method"] for r in _results(tmp_path)] == ["cnn"]


@pytest.mark.parametrize("args, needle", [
    (["--datasets", "udc-nowhere"], "--datasets: unknown dataset 'udc-nowhere'"),
    (["--datasets", "rafdb,kdef", "--root", "."], "--root names one dataset folder"),
    (["--datasets", "ll-sample", "--data", "ll-sample=/does/not/exist"], "/does/not/exist"),
    (["--datasets", "rafdb"], "--root: dataset 'rafdb' needs its folder"),
    (["--methods", "cnn:nope", "--datasets", "sample"], "--methods: cnn has no variant 'nope'"),
    (["--methods", "cnn+depth=3", "--datasets", "sample"], "--model-opt: cnn takes no option(s) ['depth']"),
    (["--methods", "cnn", "--datasets", "sample", "--seeds", "a,b"], "--seeds"),
])
def test_bad_input_gets_a_clear_error(args, needle, tmp_path):
    from benchmark.cli import main

    full = ["run", *(["--methods", "cnn"] if "--methods" not in args else []), *args, "--out", str(tmp_path)]
    res = CliRunner().invoke(main, full)
    assert res.exit_code == 2, res.output
    assert needle in " ".join(res.output.split())


def test_reproduce_runs_what_a_table_needs(bench_models, dark_root, tmp_path, monkeypatch):
    """`reproduce table5` on stand-in data with a stand-in method: one job per printed row, each
    with the row's variant; the T study trains one configuration per T and plots them."""
    import benchmark.tables as tables

    monkeypatch.setitem(tables.PAPER_METHODS, "LRDif", "benchtest")
    monkeypatch.setitem(tables.OWN_VARIANT, "benchtest", ["S2-V3", "V3"])
    common = ["--stand-in", "sample", "--data", f"udc-sample={dark_root}", "--allow-unverified-data",
              "--seeds", "0", "--epochs", "1",
              "--out", str(tmp_path), *TINY]
    invoke(["reproduce", "table5", "--paper", "lrdif", "--no-report", *common])
    invoke(["tables", "--runs", str(tmp_path), "--table", "lrdif-table5"])
    res = _results(tmp_path)
    assert sorted(r["variant"] for r in res) == ["S1", "S2-V1", "S2-V2", "S2-V3", "S2-V4"]
    assert {r["dataset"] for r in res} == {"udc-sample"} and {r["preset"] for r in res} == {"paper"}
    with open(tmp_path / "tables" / "sample-lrdif-table5.csv", newline="") as fh:
        t5 = {r["row"]: r for r in csv.DictReader(fh)}
    for r in res:
        assert float(t5[f"LRDif-{r['variant']}"]["mean"]) == pytest.approx(r["accuracy"])
    invoke(["reproduce", "tstudy", "--paper", "lrdif", "--t-values", "1,4", "--no-report", *common])
    invoke(["figures", "--runs", str(tmp_path), "--only", "tstudy"])
    ts = [r for r in _results(tmp_path) if r["options"]]
    assert sorted(r["options"]["T"] for r in ts) == [1, 4]
    assert (tmp_path / "figures" / "tstudy-udc-sample-benchtest.png").stat().st_size > 2000


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_result(tmp_path, sample_root):
    """SIGKILL a real `fer-bench run` process after its first checkpoint, run it again."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[1]
    args = ["run", "--methods", "cnn", "--datasets", "sample", "--epochs", "4", "--no-report", *TINY]
    env = {**os.environ, "PYTHONPATH": str(root), "FER_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "benchmark.cli", *args, "--out", str(tmp_path / "b")],
                            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        cks = list((tmp_path / "b").glob("*/*/seed0/checkpoint.pt"))
        if cks:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before its first checkpoint"
    state = torch.load(cks[0], map_location="cpu", weights_only=False)
    assert 1 <= state["epoch_done"] < 4
    invoke([*args, "--out", str(tmp_path / "b")])
    invoke([*args, "--out", str(tmp_path / "a")])
    (ra,), (rb,) = _results(tmp_path / "a"), _results(tmp_path / "b")
    assert rb["accuracy"] == ra["accuracy"] and rb["confusion"] == ra["confusion"]
    sa, sb = _state(Path(ra["run_dir"])), _state(Path(rb["run_dir"]))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
