"""`fer-bench data check` names every missing, corrupt, malformed and unknown thing."""

from __future__ import annotations

from click.testing import CliRunner

from benchmark.cli import main as bench
from fercore.imageio import encode_image


def run(*args):
    res = CliRunner().invoke(bench, list(args), catch_exceptions=False)
    return res.exit_code, res.output


def test_sample_passes(sample_root):
    code, out = run("data", "check", "--src", "sample")
    assert code == 0, out
    assert "OK" in out and "1680" in out and "420" in out


def test_rafdb_problems_are_each_named(rafdb_tree):
    import numpy as np

    lab = rafdb_tree / "basic/EmoLabel/list_patition_label.txt"
    lab.write_text(lab.read_text() + "train_00009.jpg nine\nonly-one-token\n")
    (rafdb_tree / "basic/Image/aligned/train_00002_aligned.jpg").unlink()           # missing
    good = encode_image(np.zeros((100, 100, 3), np.uint8) + 128, ".jpg")
    (rafdb_tree / "basic/Image/aligned/test_00001_aligned.jpg").write_bytes(good[:200])  # corrupt
    (rafdb_tree / "basic/Image/aligned/stray_aligned.jpg").write_bytes(good)        # extra
    code, out = run("data", "check", "--src", "rafdb", "--root", str(rafdb_tree))
    assert code == 1
    assert "train_00002_aligned.jpg" in out and "missing" in out
    assert "test_00001_aligned.jpg" in out and "corrupt" in out
    assert "stray_aligned.jpg" in out
    assert "train_00009.jpg nine" in out and "label must be an integer 1..7" in out
    assert "only-one-token" in out
    # the fake set is far smaller than RAF-DB: the counts are flagged against the manifest
    assert "expected 12271" in out


def test_unknown_class_folder_is_named(folder_tree):
    (folder_tree / "train" / "bored").mkdir()
    code, out = run("data", "check", "--src", "folder", "--root", str(folder_tree))
    assert code == 1 and "bored" in out


def test_kdef_missing_files_listed(kdef_tree):
    code, out = run("data", "check", "--src", "kdef", "--root", str(kdef_tree), "--no-images", "--limit", "3")
    assert code == 1
    assert "missing files" in out and "more" in out  # thousands missing, list is capped


def test_report_file_has_everything(rafdb_tree, tmp_path):
    import json

    (rafdb_tree / "basic/Image/aligned/train_00002_aligned.jpg").unlink()
    rep = tmp_path / "report.json"
    code, _ = run("data", "check", "--src", "rafdb", "--root", str(rafdb_tree), "--report", str(rep))
    data = json.loads(rep.read_text())
    assert code == 1 and not data["ok"]
    assert any("train_00002_aligned.jpg" in m for m in data["missing"])
