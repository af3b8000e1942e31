"""scripts/make_small_folder.py: the small real folders of docs/benchmark.md (CK+48 subset, JAFFE
sorted into class folders) are rebuilt exactly from a user's copy, and load through the folder
source with a subject split."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fercore.imageio import write_image
from fercore.sources import get_source

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("make_small_folder", ROOT / "scripts" / "make_small_folder.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def fake_ckplus48(root: Path, n_subjects: int = 12) -> Path:
    """CK+48's layout: <class>/S<subject>_<sequence>_<frame>.png, three frames per sequence, two
    sequences per subject (in two classes chosen by the subject number)."""
    classes = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")
    for s in range(n_subjects):
        for q in range(2):
            cls = classes[(s + 3 * q) % len(classes)]
            for frame in (10, 11, 12):
                write_image(root / cls / f"S{s + 10:03d}_{q + 1:03d}_{frame:08d}.png",
                            np.full((8, 8, 3), s * 7 + frame, np.uint8))
    return root


def fake_jaffe(root: Path) -> Path:
    for person in ("KA", "KL", "KM", "KR", "MK"):
        for k, code in enumerate(("AN", "DI", "FE", "HA", "NE", "SA", "SU")):
            for shot in (1, 2):
                write_image(root / f"{person}.{code}{shot}.{40 + 2 * k + shot}.tiff", np.full((8, 8), k, np.uint8))
    (root / "README.txt").write_text("not an image")
    return root


def run(args):
    return CliRunner().invoke(_script().main, [str(a) for a in args])


def test_ckplus48_subset_is_evenly_spaced_fits_the_cap_and_is_reproducible(tmp_path):
    src = fake_ckplus48(tmp_path / "ck")
    res = run(["--from", "ckplus48", "--src", src, "--out", tmp_path / "a", "--max-images", 15])
    assert res.exit_code == 0, res.output
    files = sorted(p.relative_to(tmp_path / "a").as_posix() for p in (tmp_path / "a").rglob("*.png"))
    # 2 sequences x last frame = 2 images per subject: 7 subjects fit 15, evenly spaced over 12
    subjects = sorted({re.match(r".*/(S\d+)_", f)[1] for f in files})
    assert subjects == ["S010", "S012", "S014", "S016", "S017", "S019", "S021"]
    assert len(files) == 14 and all(f.endswith("_00000012.png") for f in files)
    assert "7 subjects" in res.output
    assert run(["--from", "ckplus48", "--src", src, "--out", tmp_path / "b", "--max-images", 15]).exit_code == 0
    assert files == sorted(p.relative_to(tmp_path / "b").as_posix() for p in (tmp_path / "b").rglob("*.png"))
    # all three frames: 6 per subject
    assert run(["--from", "ckplus48", "--src", src, "--out", tmp_path / "c", "--max-images", 15,
                "--frames", "all"]).exit_code == 0
    assert len(list((tmp_path / "c").rglob("*.png"))) == 12


def test_jaffe_is_sorted_into_class_folders_that_the_folder_source_reads_by_subject(tmp_path):
    src = fake_jaffe(tmp_path / "raw")
    res = run(["--from", "jaffe", "--src", src, "--out", tmp_path / "j"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "j").iterdir()) == [
        "1 - Angry", "2 - Disgust", "3 - Fear", "4 - Happy", "5 - Neutral", "6 - Sad", "7 - Surprise"]
    source = get_source("folder", tmp_path / "j", subject=r"^([A-Z]{2})\.", test_fraction="0.4")
    train = {r.relpath.split("/")[-1][:2] for r in source.records("train")}
    test = {r.relpath.split("/")[-1][:2] for r in source.records("test")}
    assert len(test) == 2 and not train & test and len(train | test) == 5
    assert {r.label for r in source.records()} == set(range(7))


@pytest.mark.parametrize("args, message", [
    (["--from", "jaffe"], "needs --src"),
    (["--from", "ckplus48", "--src", "{empty}"], "no CK+48 files"),
    (["--from", "jaffe", "--src", "{empty}"], "no JAFFE files"),
])
def test_bad_input_names_the_flag(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    res = run([a.format(empty=tmp_path / "empty") for a in args] + ["--out", tmp_path / "o"])
    assert res.exit_code == 2 and message in res.output


def test_ckplus48_cap_below_one_subject_is_an_error(tmp_path):
    res = run(["--from", "ckplus48", "--src", fake_ckplus48(tmp_path / "ck"), "--out", tmp_path / "o",
               "--max-images", 1])
    assert res.exit_code == 2 and "--max-images" in res.output
