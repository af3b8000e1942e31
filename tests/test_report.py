"""``fer-bench report``: the page's tables hold the files' numbers, every image is embedded,
robustness curves render; built from a small fake runs folder (fast)."""

from __future__ import annotations

import base64
import csv
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.report import write_html_report
from benchmark.results import write_results_table
from benchmark.robustness_plots import COLUMNS, curves, read_robustness
from fercore.errors import DataError
from fercore.imageio import write_image

CLASSES = ["happy", "sad"]


class Page(HTMLParser):
    """Tables (id -> header, rows of (text, data-value)) and image sources of a page."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, dict] = {}
        self.images: list[str] = []
        self.scripts_src: list[str] = []
        self._table = self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(a.get("id", f"t{len(self.tables)}"), {"head": [], "rows": []})
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ["", a.get("data-value"), tag]
        elif tag == "img":
            self.images.append(a.get("src", ""))
        elif tag in ("script", "link") and (a.get("src") or a.get("href")):
            self.scripts_src.append(a.get("src") or a.get("href"))

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row and self._row[0][2] == "th":
                self._table["head"] = [c[0] for c in self._row]
            else:
                self._table["rows"].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None


def _job(runs: Path, dataset: str, method: str, acc: float, ds_record: dict) -> None:
    d = runs / dataset / f"{method}--{method}hash"[:40] / "seed0"
    d.mkdir(parents=True)
    result = {"dataset": dataset, "label": method, "method": method, "config_hash": f"{method}{dataset}"[:12],
              "seed": 0, "accuracy": acc, "best_accuracy": acc + 1.5, "best_epoch": 3, "macro_f1": acc - 4.25,
              "clean_accuracy": None, "mean_confidence": 0.5, "clean_mean_confidence": None, "train_time_s": 2.0,
              "n_train": 8, "n_test": 4, "epochs": 3, "options": {}}
    (d / "result.json").write_text(json.dumps(result))
    (d / "run.json").write_text(json.dumps({"status": "done", "method": method, "label": method, "seed": 0,
                                            "dataset": ds_record, "config": {"epochs": 3, "lr": 0.001}}))
    (d / "epochs.csv").write_text("epoch,train_loss,train_acc,test_acc\n1,2.0,30,25\n2,1.5,45,40\n3,1.2,55,"
                                  f"{acc}\n")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    from degrade.lowlight import make_lowlight
    from degrade.rebuild import rebuild_dataset
    from fercore.sources import get_source

    tmp = tmp_path_factory.mktemp("report")
    clean = tmp / "clean"
    rng = np.random.default_rng(0)
    for i in range(6):
        write_image(clean / ("test" if i < 4 else "train") / CLASSES[i % 2] / f"im{i}.png",
                    rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    src = get_source("folder", clean)
    copy = tmp / "ll-copy"
    rebuild_dataset(make_lowlight(severity=2), src, copy, seed=0, workers=0)
    runs = tmp / "runs"
    clean_rec = {"name": "folder", "kind": "clean", "base": "folder", "root": str(clean)}
    ll_rec = {"name": "ll-folder", "kind": "lowlight", "base": "folder", "root": str(copy), "clean_root": str(clean),
              "options": {}}
    _job(runs, "folder", "cnn", 62.5, clean_rec)
    _job(runs, "folder", "scn", 75.0, clean_rec)
    _job(runs, "ll-folder", "cnn", 37.5, ll_rec)
    write_results_table(runs)
    (runs / "tables").mkdir()
    (runs / "tables" / "demo-table1.csv").write_text("table,method,dataset,mean,paper_value,diff\n"
                                                     "demo-table1,cnn,RAF-DB,62.5,88.01,-25.51\n")
    (runs / "figures").mkdir()
    write_image(runs / "figures" / "demo.png", rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
    with open(runs / "robustness.csv", "w", newline="") as fh:  # synthetic numbers: the page's input only
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for method, base in (("cnn", 0.8), ("scn", 0.9)):
            for sev in range(6):
                a = round(base - 0.07 * sev, 4)
                w.writerow([method, "clean", "udc", sev, a, a - 0.02, a - 0.05, a + 0.05])
    return runs


@pytest.fixture(scope="module")
def page(runs, tmp_path_factory) -> tuple[Page, Path]:
    out = tmp_path_factory.mktemp("report-out")
    res = CliRunner().invoke(main, ["report", "--runs", str(runs), "--out", str(out)])
    assert res.exit_code == 0, res.output
    p = Page()
    p.feed((out / "index.html").read_text(encoding="utf-8"))
    return p, out


def test_results_table_holds_the_results_file(runs, page):
    p, _ = page
    with open(runs / "results.csv", newline="") as fh:
        expected = list(csv.DictReader(fh))
    t = p.tables["results"]
    rows = [dict(zip(t["head"], r)) for r in t["rows"]]
    assert len(rows) == len(expected) == 3
    for want, got in zip(expected, rows):
        assert got["dataset"][0] == want["dataset"] and got["method"][0] == want["method"]
        for col in ("accuracy", "best_accuracy", "macro_f1"):
            assert float(got[col][1]) == float(want[col])  # exact, in data-value
            assert got[col][0] == f"{float(want[col]):.2f}"  # shown rounded
    assert [r["accuracy"][0] for r in rows] == ["62.50", "75.00", "37.50"]


def test_paper_and_robustness_tables(runs, page):
    p, _ = page
    demo = p.tables["table-demo-table1"]
    assert demo["head"] == ["table", "method", "dataset", "mean", "paper_value", "diff"]
    assert [c[0] for c in demo["rows"][0]] == ["demo-table1", "cnn", "RAF-DB", "62.50", "88.01", "-25.51"]
    rob = p.tables["robustness"]
    assert rob["head"] == list(COLUMNS) and len(rob["rows"]) == 12
    acc = {(r[0][0], int(r[3][1])): float(r[4][1]) for r in rob["rows"]}
    assert acc[("scn", 5)] == pytest.approx(0.55) and acc[("cnn", 0)] == 0.8


def test_every_image_is_embedded_and_nothing_is_fetched(page):
    p, out = page
    # results: none; robustness 1; figures 1; training curves 3; contact sheet 1 (the low-light copy)
    assert len(p.images) == 6
    for src in p.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert p.scripts_src == [] and sorted(x.name for x in out.iterdir()) == ["index.html"]


def test_robustness_reader_groups_and_checks(runs, tmp_path):
    rows = read_robustness(runs / "robustness.csv")
    c = curves(rows)
    assert list(c) == ["udc"] and [p[0] for p in c["udc"][("cnn", "clean")]] == [0, 1, 2, 3, 4, 5]
    bad = tmp_path / "bad.csv"
    bad.write_text("method,severity\ncnn,1\n")
    with pytest.raises(DataError, match="accuracy"):
        read_robustness(bad)


def test_missing_runs_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="runs folder"):
        write_html_report(tmp_path / "nope")


def test_report_renders_in_headless_chromium(page, tmp_path):
    """scripts/screenshot_report.sh opens the page in a real browser (skips where none can be had)."""
    import shutil
    import subprocess

    if not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")):
        pytest.skip("no chromium here (scripts/screenshot_report.sh installs it with apt-get as root)")
    from fercore.imageio import read_image

    _, out = page
    shot = tmp_path / "shot.png"
    script = Path(__file__).parents[1] / "scripts" / "screenshot_report.sh"
    res = subprocess.run([str(script), str(out / "index.html"), str(shot), "1000x1400"], capture_output=True,
                         text=True, timeout=150)
    assert res.returncode == 0, res.stderr
    img = read_image(shot)
    assert img.shape == (1400, 1000, 3)
    assert img.std() > 10  # text, tables and figures: not a blank page
