"""Paper tables from run results: structure, statistics, missing cells, renderers (no training)."""

from __future__ import annotations

import csv
import io
import json
import statistics

import pytest

from benchmark.tables import (build_paper_table, build_summary, get_table, paper_tables, row_target, to_latex,
                              to_markdown, write_tables)


def _r(method, dataset, seed, acc, variant=None, options=None, h=None, preset="paper", label=None):
    lab = label or (method + (f":{variant}" if variant else ""))
    return {"method": method, "variant": variant, "options": options or {}, "dataset": dataset, "seed": seed,
            "accuracy": acc, "macro_f1": acc - 10, "best_accuracy": acc + 1, "clean_accuracy": None,
            "config_hash": h or f"{lab}-{dataset}", "label": lab, "preset": preset}


def test_all_published_numbers_are_in_the_tables():
    tables = paper_tables()
    assert list(tables) == [f"{p}-table{i}" for p in ("lrdif", "lldif") for i in range(1, 6)]
    from importlib import resources

    text = (resources.files("benchmark") / "data" / "paper_tables.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 78
    for r in rows:
        t = tables[f"{r['paper'].lower()}-table{r['table']}"]
        assert t.numbers[(r["method"], r["dataset"])][0] == float(r["accuracy"])
    t1 = tables["lrdif-table1"]
    assert t1.datasets == ["RAF-DB", "FERPlus", "KDEF"] and t1.rows[-1].label == "LRDif"
    assert [r.label for r in tables["lrdif-table5"].rows] == ["LRDif-S1", "LRDif-S2-V1", "LRDif-S2-V2",
                                                               "LRDif-S2-V3", "LRDif-S2-V4"]
    ll1 = tables["lldif-table1"]
    assert ll1.rows[-1].label == "LLDif" and ll1.numbers[("DAN", "FERPlus")][0] == 85.48
    assert tables["lldif-table4"].numbers[("SCN", "LL-KDEF")][0] is None  # only a range in the text
    assert get_table("table3", "lldif").datasets == ["LL-FERPlus"]


def test_row_targets():
    assert row_target("POSTER++").method == "posterpp"
    assert row_target("LRDif-S2-V1").variants == ("S2-V1", "V1")
    assert row_target("LRDif-S2-V3").variants == ("S2-V3", "V3", None)
    assert row_target("LRDif").variants == (None, "S2-V3", "V3")
    assert row_target("LLDif").variants == (None, "S2-V4", "V4")


def test_cells_are_mean_std_with_paper_and_difference():
    accs = [85.0, 86.5, 88.0]
    res = [_r("scn", "udc-rafdb", s, a) for s, a in enumerate(accs)]
    res.append(_r("lrdif", "udc-rafdb", 0, 90.0))
    out = build_paper_table(get_table("table2", "lrdif"), res)
    rows = {r["row"]: r for r in out.tidy}
    scn = rows["SCN"]
    assert scn["n"] == 3 and scn["mean"] == pytest.approx(statistics.mean(accs))
    assert scn["std"] == pytest.approx(statistics.stdev(accs))
    assert scn["paper_value"] == 85.89 and scn["diff"] == pytest.approx(statistics.mean(accs) - 85.89)
    assert rows["LRDif"]["mean"] == 90.0 and rows["LRDif"]["std"] is None
    assert rows["ARM"]["status"] == "missing" and rows["ARM"]["mean"] is None
    md = to_markdown(out)
    assert "| SCN | 86.50 ± 1.50 (n=3) | 85.89 | +0.61 |" in md
    assert "| ARM | missing | 86.44 |  |" in md
    tex = to_latex(out)
    assert r"86.50 $\pm$ 1.50 (n=3) & 85.89 & +0.61 \\" in tex and r"ARM & -- & 86.44 &  \\" in tex


def test_variants_options_and_choice_of_configuration():
    t5 = get_table("table5", "lldif")
    res = [_r("lldif", "ll-kdef", 0, 91.0, variant="V1"),
           _r("lldif", "ll-kdef", 0, 93.0),                                          # default = V4 (Ours)
           _r("lldif", "ll-kdef", 0, 50.0, variant="V2", options={"T": 1}),          # a T sweep: not Table 5
           _r("lldif", "ll-kdef", 0, 92.0, variant="V3", h="a"),                     # one seed ...
           _r("lldif", "ll-kdef", 0, 92.4, variant="V3", h="b"),                     # ... two seeds win
           _r("lldif", "ll-kdef", 1, 92.6, variant="V3", h="b")]
    rows = {r["row"]: r for r in build_paper_table(t5, res).tidy}
    assert rows["LLDif-S2-V1"]["mean"] == 91.0
    assert rows["LLDif-S2-V4"]["mean"] == 93.0
    assert rows["LLDif-S2-V2"]["status"] == "missing"
    assert rows["LLDif-S2-V3"]["mean"] == pytest.approx(92.5) and rows["LLDif-S2-V3"]["other_configs"] == 1


def test_fill_and_stand_in():
    t1 = get_table("table1", "lrdif")
    res = [_r("cnn", "sample", 0, 40.0), _r("cnn", "sample", 1, 42.0)]
    out = build_paper_table(t1, res, stand_in="sample", fill={"SCN": "cnn"})
    rows = [r for r in out.tidy if r["row"] == "SCN"]
    assert {r["run_dataset"] for r in rows} == {"sample"} and all(r["mean"] == 41.0 for r in rows)
    assert all(r["diff"] is None for r in rows)  # stand-in data: no difference to the paper
    grid = {line[0]: line for line in out.grid}
    assert grid["SCN"][1] == "41.00 ± 1.41 (n=2)" and grid["SCN"][2:] == ["87.03", "83.11", "89.55"]
    assert grid["ARM"][1] == "missing"


def test_summary_and_written_files(tmp_path):
    res = [_r("cnn", "sample", 0, 40.0), _r("cnn", "ll-sample", 0, 30.0), _r("cnn", "ll-sample", 1, 32.0)]
    s = build_summary(res)
    assert s.grid == [["cnn", "40.00 (n=1)", "31.00 ± 1.41 (n=2)"]]
    (tmp_path / "lrdif-table2.md").write_text("stale")  # from an earlier call: removed, not left stale
    written = write_tables(res, tmp_path, fill={"SCN": "cnn"})
    keys = [t.key for t in written]
    # only tables with a measured cell: the stand-in tables whose SCN row the sample runs fill
    assert keys == ["summary", "sample-lrdif-table1", "sample-lldif-table1", "sample-lldif-table2",
                    "sample-lldif-table3", "sample-lldif-table4"]
    for k in keys:
        for ext in ("csv", "md", "tex"):
            assert (tmp_path / f"{k}.{ext}").stat().st_size > 0
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["tables"] == keys and len(index["skipped"]) == 20 - 5
    assert "lrdif-table2" in index["skipped"] and "sample-lrdif-table2" in index["skipped"]
    assert not (tmp_path / "lrdif-table2.md").exists() and not (tmp_path / "lldif-table1.csv").exists()
    assert "Not written (no measured cell): lrdif-table1, " in (tmp_path / "summary.md").read_text()
    md = (tmp_path / "sample-lldif-table4.md").read_text()
    assert "| SCN | 31.00 ± 1.41 (n=2) | n/p |" in md and "| DAN | missing |" in md
    assert write_tables([], tmp_path / "none") and json.loads((tmp_path / "none" / "index.json").read_text())[
        "tables"] == ["summary"]
