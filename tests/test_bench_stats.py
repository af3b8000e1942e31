"""Statistics: mean class accuracy, macro-F1 over present classes, bootstrap intervals,
McNemar's test, and how results.csv and the tables carry them (fake runs, no training)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from benchmark.metrics import classification_metrics, macro_f1, mean_class_accuracy
from benchmark.stats import bootstrap_ci, format_p, mcnemar


def test_mean_class_accuracy_and_macro_f1_by_hand():
    # rows = true class; class 2 has no test image but is predicted once
    cm = np.array([[7, 2, 1], [1, 3, 0], [0, 0, 0]])
    assert mean_class_accuracy(cm) == pytest.approx((7 / 10 + 3 / 4) / 2)
    f1_0 = 2 * 7 / (2 * 7 + 1 + 3)   # FP 1 (class 1 called 0), FN 3
    f1_1 = 2 * 3 / (2 * 3 + 2 + 1)
    assert macro_f1(cm) == pytest.approx((f1_0 + f1_1) / 2)  # the absent class never enters
    labels = np.array([0] * 10 + [1] * 4)
    pred = np.array([0] * 7 + [1, 1, 2] + [0, 1, 1, 1])
    m = classification_metrics(np.eye(3)[pred], labels, ["a", "b", "c"])
    assert m["mean_class_accuracy"] == pytest.approx(100 * (0.7 + 0.75) / 2)
    assert m["macro_f1"] == pytest.approx(100 * (f1_0 + f1_1) / 2)
    assert m["per_class_accuracy"]["c"] is None and m["accuracy"] == pytest.approx(100 * 10 / 14)


def test_mcnemar_exact_and_chi_square_by_hand():
    a = np.array([True] * 10 + [False] * 2 + [True] * 5 + [False] * 3)
    b = np.array([False] * 10 + [True] * 2 + [True] * 5 + [False] * 3)
    t = mcnemar(a, b)
    assert (t.b, t.c, t.test) == (10, 2, "exact")
    assert t.p == pytest.approx(2 * (1 + 12 + 66) / 2 ** 12) and round(t.p, 4) == 0.0386
    assert mcnemar(b, a).p == t.p and mcnemar(a, a).p == 1.0
    big = mcnemar(np.array([True] * 30 + [False] * 10), np.array([False] * 30 + [True] * 10))
    assert big.test == "chi2" and big.p == pytest.approx(math.erfc(math.sqrt((20 - 1) ** 2 / 40 / 2)))
    assert big.p == pytest.approx(0.0026631, abs=1e-6)
    assert format_p(t.p) == "p=0.039*" and format_p(big.p) == "p=0.003**" and format_p(0.2) == "p=0.200"
    assert format_p(1e-5) == "p<0.001**"


def test_bootstrap_interval_contains_accuracy_narrows_with_n_and_is_seeded():
    def case(n):
        labels = np.arange(n) % 4
        pred = np.where(np.arange(n) % 10 < 7, labels, (labels + 1) % 4)  # 70% right
        return labels, pred

    lo, hi = bootstrap_ci(*case(100), 4)
    assert lo < 70.0 < hi and 55 < lo and hi < 85
    lo2, hi2 = bootstrap_ci(*case(2000), 4)
    assert lo2 < 70.0 < hi2
    assert (hi2 - lo2) < 0.4 * (hi - lo)  # ~ 1/sqrt(20) of the width
    assert bootstrap_ci(*case(100), 4) == (lo, hi)  # same key, same resamples
    assert bootstrap_ci(*case(2000), 4, key=("other",)) != (lo2, hi2)  # another job, other resamples
    mlo, mhi = bootstrap_ci(*case(400), 4, metric="mean_class_accuracy")
    assert mlo < 70.0 < mhi
    labels, pred = case(100)
    assert bootstrap_ci(labels, np.stack([pred, pred]), 4) == (lo, hi)  # the mean of two equal seeds


# ---------------------------------------------------------------- runs on disk
N = 40
LABELS = np.arange(N) % 3
CORRECT = {"scn": set(range(24)),                                   # 60 %
           "arm": set(range(20)),                                   # 50 %
           "lrdif": set(range(22)) | set(range(24, 34))}            # 80 %: b = 10, c = 2 against SCN


def _job(runs, method, seed, correct, dataset="udc-sample"):
    pred = np.array([y if i in correct else (y + 1) % 3 for i, y in enumerate(LABELS)])
    d = runs / dataset / f"{method}--abc" / f"seed{seed}"
    d.mkdir(parents=True)
    ids = np.array([f"img{i:03d}" for i in range(N)])
    order = np.random.default_rng(seed).permutation(N)  # each job stores its own order
    np.savez(d / "predictions.npz", ids=ids[order], labels=LABELS[order], logits=np.eye(3)[pred][order])
    m = classification_metrics(np.eye(3)[pred], LABELS, ("surprise", "fear", "disgust"))
    (d / "result.json").write_text(json.dumps({
        "method": method, "variant": None, "options": {}, "label": method, "dataset": dataset, "seed": seed,
        "preset": "tiny", "config_hash": f"{method}-hash", "classes": ["surprise", "fear", "disgust"],
        "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "per_class_accuracy": m["per_class_accuracy"],
        "confusion": m["confusion"], "best_accuracy": m["accuracy"], "clean_accuracy": None,
        "mean_confidence": 1.0, "train_time_s": 1.0, "n_test": N}))


@pytest.fixture()
def runs(tmp_path):
    runs = tmp_path / "runs"
    for method, correct in CORRECT.items():
        _job(runs, method, 0, correct)
    _job(runs, "scn", 1, CORRECT["scn"])
    _job(runs, "lrdif", 1, CORRECT["scn"])  # seed 1: the same answers as SCN, p = 1
    return runs


def test_results_csv_carries_intervals_and_mean_class_accuracy(runs):
    from benchmark.results import find_results, write_results_table

    path = write_results_table(runs)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5
    for row in rows:
        acc, lo, hi = float(row["accuracy"]), float(row["ci_low"]), float(row["ci_high"])
        assert lo < acc < hi and hi - lo < 40
        assert float(row["mean_class_accuracy"]) == pytest.approx(
            np.mean([float(row[f"acc_{c}"]) for c in ("surprise", "fear", "disgust")]))
    again = {(r["label"], r["seed"]): (r["ci_low"], r["ci_high"]) for r in find_results(runs)}
    assert again == {(r["label"], int(r["seed"])): (float(r["ci_low"]), float(r["ci_high"])) for r in rows}


def test_tables_show_intervals_and_mcnemar_against_the_best_baseline(runs, tmp_path):
    from benchmark.results import find_results
    from benchmark.tables import write_tables

    out = tmp_path / "tables"
    written = {t.key: t for t in write_tables(find_results(runs), out)}
    # the UDC tables (2-4: udc-sample stands in) and the ablation (its S2-V3 row is LRDif's default)
    assert set(written) == {"summary", *(f"sample-lrdif-table{i}" for i in (2, 3, 4, 5))}
    with open(out / "sample-lrdif-table2.csv", newline="") as fh:
        rows = {r["row"]: r for r in csv.DictReader(fh)}
    own = rows["LRDif"]
    assert own["mcnemar_vs"] == "SCN"  # the best measured baseline, not ARM
    assert float(own["mcnemar_p"]) == 1.0  # the largest p over the common seeds 0 and 1
    assert own["mcnemar_seeds"] == "seed 0: b=10 c=2 p=0.03857 (exact); seed 1: b=0 c=0 p=1 (exact)"
    assert float(own["ci_low"]) < float(own["mean"]) < float(own["ci_high"])
    assert rows["SCN"]["mcnemar_vs"] == "" and rows["DAN"]["status"] == "missing"
    md = (out / "sample-lrdif-table2.md").read_text()
    lrdif = next(line for line in md.splitlines() if line.startswith("| LRDif |"))
    assert lrdif.startswith("| LRDif | 70.00 ± 14.14 (n=2) [") and lrdif.split(" | ")[1].endswith("p=1.000")
    assert "McNemar's test against the best baseline (SCN)" in md and "bootstrap interval" in md
    tex = (out / "sample-lrdif-table2.tex").read_text()
    body = [line for line in tex.splitlines() if line.endswith(r"\\")]
    assert all(line.count("&") == body[0].count("&") for line in body)
    assert r"70.00 $\pm$ 14.14 (n=2) [" in tex and "p=1.000" in tex
    # one seed: the cell's interval is that job's, and seed 0's test is significant
    only0 = [r for r in find_results(runs) if r["seed"] == 0]
    t = write_tables(only0, tmp_path / "t0")[1]
    cell = next(line for line in t.grid if line[0] == "LRDif")[1]
    r0 = next(r for r in only0 if r["label"] == "lrdif")
    assert cell == f"80.00 (n=1) [{r0['ci_low']:.1f}, {r0['ci_high']:.1f}] p=0.039*"
