"""``fer-bench run --config FILE`` (flags win), the job folder's config.json, ``--from`` replays
to identical results, and run.json's provenance (git commit, package versions)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench_testmodel import registered

TINY = ["--input-size", "32", "--limit-train", "16", "--limit-test", "8", "--workers", "0", "--threads", "1",
        "--no-report"]


def invoke(args, expect: int = 0):
    from benchmark.cli import main

    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == expect, res.output
    return res


def _results(out: Path) -> dict[tuple[str, str, str], float]:
    with open(out / "results.csv", newline="") as fh:
        return {(r["label"], r["dataset"], r["seed"]): float(r["accuracy"]) for r in csv.DictReader(fh)}


@pytest.fixture
def bench_model():
    with registered():
        yield


def test_config_file_with_flags_winning(bench_model, folder_tree, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'''
methods = ["benchtest@tiny", "broken"]
datasets = "folder"
data = ["folder={folder_tree}"]
seeds = "0"
epochs = 2
model-opt = {{"benchtest.noise" = 0.0}}
limit_train = 16
''')
    out = tmp_path / "runs"
    # --methods and --epochs on the command line win over the file
    invoke(["run", "--config", str(cfg), "--methods", "benchtest@tiny", "--epochs", "1", "--out", str(out), *TINY])
    (job,) = (out / "folder").iterdir()
    run = json.loads((job / "seed0" / "run.json").read_text())
    assert run["recipe"]["epochs"] == 1 and run["options"] == {"noise": 0.0}
    assert run["label"] == "benchtest@tiny+noise=0.0"
    cfg_json = json.loads((job / "seed0" / "config.json").read_text())
    assert cfg_json["options"]["epochs"] == 1 and cfg_json["options"]["methods"] == "benchtest@tiny"
    assert cfg_json["options"]["data_paths"] == [f"folder={folder_tree.resolve()}"]
    assert cfg_json["job"] == {"method": "benchtest@tiny+noise=0.0", "dataset": "folder", "seed": 0}
    # provenance
    assert run["versions"]["packages"]["torch"] and run["versions"]["packages"]["numpy"]
    assert run["versions"]["toolkit"]
    assert run["git"] is None or (len(run["git"]["commit"]) == 40 and isinstance(run["git"]["dirty"], bool))


def test_yaml_config_and_bad_keys(bench_model, folder_tree, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('methods = "benchtest"\nepochz = 3\n')
    res = invoke(["run", "--config", str(bad)], expect=2)
    assert "bad.toml" in res.output and "'epochz'" in res.output
    broken = tmp_path / "broken.toml"
    broken.write_text("methods = [\n")
    assert "not valid TOML" in invoke(["run", "--config", str(broken)], expect=2).output
    y = tmp_path / "run.yaml"
    y.write_text(f"methods: benchtest@tiny\ndatasets: folder\ndata: ['folder={folder_tree}']\nepochs: 1\n")
    res = invoke(["run", "--config", str(y), "--dry-run", "--out", str(tmp_path / "r"), *TINY])
    method_column = "".join(line.split("│")[2].strip() for line in res.output.splitlines() if line.startswith("│"))
    assert method_column == "benchtest@tiny" and "1 jobs" in res.output  # cells fold, never cut


def test_replay_from_a_job_and_a_runs_folder_gives_identical_results(bench_model, folder_tree, tmp_path):
    out = tmp_path / "runs"
    invoke(["run", "--methods", "benchtest@tiny", "--model-opt", "benchtest.width=4", "--sweep",
            "benchtest.noise=0.0,0.2", "--datasets", "folder", "--data", f"folder={folder_tree}", "--seeds", "0,1",
            "--epochs", "1", "--out", str(out), *TINY])
    first = _results(out)
    assert len(first) == 4
    # a whole runs folder: the same invocation, into a new folder
    invoke(["run", "--from", str(out), "--out", str(tmp_path / "replay")])
    assert _results(tmp_path / "replay") == first
    # one job folder: that job only
    job = next(p for p in (out / "folder").iterdir() if "noise-0.2" in p.name) / "seed1"
    invoke(["run", "--from", str(job), "--out", str(tmp_path / "one")])
    (key,) = _results(tmp_path / "one")
    assert key[2] == "1" and _results(tmp_path / "one")[key] == first[key]
    # replaying into the original folder finds every job finished
    assert "skipped" in invoke(["run", "--from", str(out)]).output
    # two invocations in one folder: replay one job folder instead
    invoke(["run", "--methods", "benchtest@tiny", "--datasets", "folder", "--data", f"folder={folder_tree}",
            "--epochs", "1", "--out", str(out), *TINY])
    assert "different" in invoke(["run", "--from", str(out)], expect=2).output
