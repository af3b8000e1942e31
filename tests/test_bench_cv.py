"""K-fold cross-validation in one command: ``--src-opt folds=K --src-opt fold=all``.

fold=all plans the K jobs fold=I would (same hashes, folders, one shared degraded copy); the
tables put a configuration's K folds into one cell (per-seed mean over all K folds, never over
fewer); intervals and McNemar's test pool the folds' test predictions.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from benchmark.datasets import DataSettings, resolve_datasets
from benchmark.plan import plan_jobs
from benchmark.runner import RunSettings
from benchmark.specs import RecipeOverrides, parse_methods
from benchmark.stats import bootstrap_ci, mcnemar, runs_interval, seedwise_mcnemar
from benchmark.tables import _group, build_summary, fmt_cell
from fercore.errors import ConfigError
from fercore.imageio import write_image
from test_bench_datasets import fake_degrade  # noqa: F401 -- the fixture (a darkening stand-in rebuild)

CLASSES = ("anger", "happiness", "sadness")
PEOPLE = [f"S{p:03d}" for p in range(5)]
SUBJECT = r"subject=^(S\d+)_"


def cv_tree(root: Path) -> Path:
    """CK+-like root/<class>/S000_001_00000000.png: 5 people x 3 classes x 2 images (30)."""
    for j, cls in enumerate(CLASSES):
        for i, p in enumerate(PEOPLE):
            for k in range(2):
                img = np.full((16, 16, 3), 40 * j + 5 * i + k, np.uint8)
                img[: 4 + 4 * j] = 255  # the class shows: a model can learn it
                write_image(root / cls / f"{p}_{k + 1:03d}_{k:08d}.png", img)
    return root


def settings_for(root: Path, *opts: str, **kw) -> DataSettings:
    src: dict[str, dict[str, str]] = {}
    for o in opts:
        key, _, value = o.partition("=")
        src.setdefault("*", {})[key] = value
    return DataSettings(root=str(root), src_opts=src, **kw)


def plan(root: Path, out: Path, *opts: str, seeds=(0,)):
    datasets = resolve_datasets(["folder"], settings_for(root, *opts))
    jobs = plan_jobs(parse_methods("cnn"), datasets, list(seeds), RecipeOverrides.from_cli(epochs=1), None)
    return jobs, RunSettings(out=out)


def test_fold_all_plans_the_by_hand_fold_jobs(tmp_path):
    root = cv_tree(tmp_path / "ck")
    jobs, s = plan(root, tmp_path / "runs", "folds=3", "fold=all", SUBJECT, seeds=(0, 1))
    assert [(j.dataset.fold.fold, j.seed) for j in jobs] == [(f, sd) for f in range(3) for sd in (0, 1)]
    for fold in range(3):
        hand, _ = plan(root, tmp_path / "runs", "folds=3", f"fold={fold}", SUBJECT, seeds=(0, 1))
        mine = [j for j in jobs if j.dataset.fold.fold == fold]
        assert [j.hash(s) for j in mine] == [j.hash(s) for j in hand]
        assert [j.run_dir(s) for j in mine] == [j.run_dir(s) for j in hand]
        assert [j.cv_hash(s) for j in mine] == [j.cv_hash(s) for j in hand]
    # K distinct folders per seed; one cv_hash for the K folds of a seed's configuration
    assert len({j.run_dir(s) for j in jobs}) == 6
    assert len({j.cv_hash(s) for j in jobs}) == 1 and jobs[0].cv_hash(s) not in {j.hash(s) for j in jobs}
    assert jobs[0].title == "cnn on folder fold 0 of 3, seed 0"
    # another split of the same images is another cross-validation
    other, _ = plan(root, tmp_path / "runs", "folds=3", "fold=all", SUBJECT, "split_seed=1")
    assert other[0].cv_hash(s) != jobs[0].cv_hash(s)
    # without folds: no cross-validation fields
    (plain,), _ = plan(root, tmp_path / "runs", SUBJECT)
    assert plain.dataset.fold is None and plain.cv_hash(s) is None and plain.title == "cnn on folder, seed 0"


@pytest.mark.parametrize("subject", [True, False])
def test_every_image_is_tested_in_exactly_one_fold(tmp_path, subject):
    root = cv_tree(tmp_path / "ck")
    opts = ["folds=4", "fold=all"] + ([SUBJECT] if subject else [])
    datasets = resolve_datasets(["folder"], settings_for(root, *opts))
    assert [d.fold.fold for d in datasets] == [0, 1, 2, 3] and {d.fold.folds for d in datasets} == {4}
    tested = [r.id for d in datasets for r in d.source.records("test")]
    assert sorted(tested) == sorted(r.id for r in datasets[0].source.records()) and len(tested) == 30
    for d in datasets:
        assert len(d.source.records("train")) + len(d.source.records("test")) == 30
        if subject:  # group K-fold: nobody is in both splits
            people = {split: {r.id.split("/")[-1][:4] for r in d.source.records(split)} for split in ("train", "test")}
            assert not people["train"] & people["test"]
    assert len({d.fold.identity for d in datasets}) == 1 and len({d.identity for d in datasets}) == 4


def test_degraded_copy_is_built_once_for_all_folds(fake_degrade, tmp_path):  # noqa: F811
    root = cv_tree(tmp_path / "ck")
    s = settings_for(root, "folds=3", "fold=all", SUBJECT, degraded_dir=str(tmp_path / "deg"))
    datasets = resolve_datasets(["ll-folder", "folder"], s)
    assert [(d.name.name, d.fold.fold) for d in datasets] == [("ll-folder", f) for f in range(3)] + [
        ("folder", f) for f in range(3)]
    assert len(fake_degrade) == 1  # one copy, whatever the fold
    ll = datasets[:3]
    assert len({Path(d.source.root) for d in ll}) == 1 and len({d.fold.identity for d in ll}) == 1
    for d, clean in zip(ll, datasets[3:]):  # each fold reads the copy with its own split
        assert {r.id for r in d.source.records("test")} == {r.id for r in clean.source.records("test")}
        assert d.clean is not None
    # the copy is the one a run without folds builds (same key): nothing new is built
    (plain,) = resolve_datasets(["ll-folder"], settings_for(root, SUBJECT, degraded_dir=str(tmp_path / "deg")))
    assert len(fake_degrade) == 1 and Path(plain.source.root) == Path(ll[0].source.root)
    # by hand, fold=1 finds the same copy and the same identity as fold=all's fold 1
    (hand,) = resolve_datasets(["ll-folder"], settings_for(root, "folds=3", "fold=1", SUBJECT,
                                                           degraded_dir=str(tmp_path / "deg")))
    assert len(fake_degrade) == 1 and hand.identity == ll[1].identity and hand.fold == ll[1].fold


@pytest.mark.parametrize("opts, needle", [
    (("fold=all",), "fold=all needs folds=K"),
    (("folds=1", "fold=all"), "K >= 2, got folds=1"),
    (("folds=0", "fold=all"), "K >= 2, got folds=0"),
    (("folds=x", "fold=all"), "folds='x' is not a whole number"),
])
def test_bad_fold_options_name_the_flag(tmp_path, opts, needle):
    root = cv_tree(tmp_path / "ck")
    with pytest.raises(ConfigError, match=needle) as e:
        resolve_datasets(["folder"], settings_for(root, *opts))
    assert e.value.flag == "--src-opt"
    from benchmark.cli import main

    args = ["run", "--methods", "cnn", "--datasets", "folder", "--root", str(root), "--dry-run",
            "--out", str(tmp_path / "runs")]
    for o in opts:
        args += ["--src-opt", o]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--src-opt" in lines[0] and needle in lines[0], res.output


# ------------------------------------------------------------------ tables and statistics
def _fake_runs(tmp_path: Path, label: str, k: int, seeds, correct) -> list[dict]:
    """Result dicts (and predictions.npz files) of a K-fold configuration on 12 images: fold f
    tests images f, f+k, ...; ``correct(seed, i)`` says whether image i is classified right."""
    out = []
    cv = f"cv-{label}"
    for s in seeds:
        for f in range(k):
            idx = np.arange(f, 12, k)[::-1]  # not in id order: pooling must pair by id
            labels = idx % 3
            pred = np.where([correct(s, i) for i in idx], labels, (labels + 1) % 3)
            d = tmp_path / label / f"f{f}" / f"seed{s}"
            d.mkdir(parents=True)
            logits = np.eye(3, dtype=np.float32)[pred]
            np.savez(d / "predictions.npz", ids=np.array([f"img{i:02d}" for i in idx]), labels=labels, logits=logits)
            out.append({"dataset": "folder", "label": label, "method": label, "seed": s, "fold": f, "folds": k,
                        "cv_hash": cv, "config_hash": f"{label}-{f}", "classes": ["a", "b", "c"],
                        "accuracy": 100.0 * float((pred == labels).mean()), "run_dir": str(d)})
    return out


def test_cv_cell_is_the_mean_over_folds_with_pooled_statistics(tmp_path):
    runs = _fake_runs(tmp_path, "m", 3, (0, 1), lambda s, i: (i + s) % 4 != 0)
    (cell,) = _group(runs, "accuracy")
    by = {(r["seed"], r["fold"]): r["accuracy"] for r in runs}
    per_seed = [sum(by[(s, f)] for f in range(3)) / 3 for s in (0, 1)]
    assert cell.folds == 3 and cell.seeds == [0, 1] and cell.values == pytest.approx(per_seed)
    assert cell.mean == pytest.approx(sum(per_seed) / 2) and cell.n == 2 and not cell.incomplete
    # the interval: a bootstrap over the pooled folds (every image once), seeds' mean
    labels = np.arange(12) % 3
    preds = np.stack([np.where([(i + s) % 4 != 0 for i in range(12)], labels, (labels + 1) % 3) for s in (0, 1)])
    want = bootstrap_ci(labels, preds, 3, key=("folder", "accuracy", 0, 1))
    assert cell.ci == pytest.approx(want) and runs_interval(runs) == pytest.approx(want)
    text = fmt_cell(cell)
    assert text.startswith(f"{cell.mean:.2f} ± ") and "(n=2, 3-fold)" in text
    summary = build_summary(runs)
    (row,) = summary.tidy
    assert row["mean"] == pytest.approx(cell.mean) and row["folds"] == 3 and row["n"] == 2
    assert any("K-fold cells" in n for n in summary.notes)


def test_a_missing_fold_is_never_averaged(tmp_path):
    runs = _fake_runs(tmp_path, "m", 3, (0, 1), lambda s, i: i % (2 + s) != 0)
    partial = [r for r in runs if not (r["seed"] == 1 and r["fold"] == 2)]
    (cell,) = _group(partial, "accuracy")
    seed0 = sum(r["accuracy"] for r in runs if r["seed"] == 0) / 3
    assert cell.seeds == [0] and cell.values == pytest.approx([seed0]) and cell.incomplete == ((1, 2),)
    assert "(incomplete: seed 1: 2/3 folds)" in fmt_cell(cell)
    assert all(r["seed"] == 0 for r in cell.runs)  # the interval uses complete seeds only
    (none,) = _group([r for r in partial if r["fold"] != 0], "accuracy")
    assert none.n == 0 and none.mean is None and none.ci is None
    assert fmt_cell(none) == "missing (seed 0: 2/3 folds; seed 1: 1/3 folds)"
    (row,) = build_summary([r for r in partial if r["fold"] != 0]).tidy
    assert row["mean"] is None and row["incomplete_folds"] == "seed 0: 2/3 folds; seed 1: 1/3 folds"


def test_mcnemar_pairs_the_pooled_folds_by_image(tmp_path):
    a = _fake_runs(tmp_path, "a", 3, (0,), lambda s, i: i not in (0, 1))
    b = _fake_runs(tmp_path, "b", 4, (0,), lambda s, i: i < 9)  # other folds, same images
    (t_seed, t), = seedwise_mcnemar(a, b)
    ca = np.array([i not in (0, 1) for i in range(12)])
    cb = np.array([i < 9 for i in range(12)])
    want = mcnemar(ca, cb)
    assert t_seed == 0 and (t.b, t.c) == (want.b, want.c) == (3, 2) and t.p == pytest.approx(want.p)


# ------------------------------------------------------------------ one command, end to end
TINY = ["--epochs", "1", "--input-size", "32", "--workers", "0", "--threads", "1", "--batch-size", "8",
        "--eval-batch-size", "32"]


def _invoke(args):
    from benchmark.cli import main

    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


def test_one_command_runs_every_fold_and_tables_average_them(tmp_path):
    root = cv_tree(tmp_path / "ck")
    out = tmp_path / "runs"
    cv = ["--src-opt", "folds=3", "--src-opt", SUBJECT]
    _invoke(["run", "--methods", "cnn", "--datasets", "folder", "--root", str(root), *cv, "--src-opt", "fold=all",
             "--seeds", "0", "--out", str(out), *TINY])
    results = sorted((json.loads(p.read_text()) for p in out.glob("folder/*/seed0/result.json")),
                     key=lambda r: r["fold"])  # fold order (the folders sort by hash)
    assert [r["fold"] for r in results] == [0, 1, 2] and {r["folds"] for r in results} == {3}
    assert len({r["cv_hash"] for r in results}) == 1 and len({r["config_hash"] for r in results}) == 3
    assert sum(r["n_test"] for r in results) == 30  # every image tested once
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["fold"]) for r in rows] == [0, 1, 2] and {r["cv_hash"] for r in rows} == {results[0]["cv_hash"]}
    with open(out / "tables" / "summary.csv", newline="") as fh:
        (cell,) = list(csv.DictReader(fh))
    mean = sum(r["accuracy"] for r in results) / 3
    assert float(cell["mean"]) == pytest.approx(mean) and cell["folds"] == "3" and cell["n"] == "1"
    assert float(cell["ci_low"]) <= mean <= float(cell["ci_high"])
    assert "3-fold" in (out / "tables" / "summary.md").read_text()
    config = json.loads((Path(results[1]["run_dir"]) / "config.json").read_text())
    assert config["job"]["fold"] == 1
    from benchmark.config_file import replay_options

    opts, _ = replay_options(results[1]["run_dir"])  # --from a job folder replays its one fold
    assert [o for o in opts["src_opts"] if o.startswith("fold")] == ["folds=3", "fold=1"]
    # a re-run skips all folds; fold=1 by hand is the same job
    stamps = {r["run_dir"]: (Path(r["run_dir"]) / "result.json").stat().st_mtime_ns for r in results}
    res = _invoke(["run", "--methods", "cnn", "--datasets", "folder", "--root", str(root), *cv, "--src-opt",
                   "fold=all", "--seeds", "0", "--out", str(out), "--no-report", *TINY])
    assert res.output.count("skipped") == 3
    _invoke(["run", "--methods", "cnn", "--datasets", "folder", "--root", str(root), *cv, "--src-opt", "fold=1",
             "--seeds", "0", "--out", str(out), "--no-report", *TINY])
    assert {d: (Path(d) / "result.json").stat().st_mtime_ns for d in stamps} == stamps
    assert len(list(out.glob("folder/*/seed0/result.json"))) == 3
