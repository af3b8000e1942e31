"""fer-bench data crop (fercore/facecrop.py): square face crops of unaligned photos, the folder's
layout and other files kept, atomic and resumable, deterministic, refusing to mix settings."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from fercore.errors import ConfigError
from fercore.facecrop import PARTIAL, REPORT, crop_folder, square_box
from fercore.imageio import read_image, write_image


class BrightSquare:
    """A stand-in detector: the bounding box of the pixels above 200 (None when there are none)."""

    name = "bright-square"

    def __init__(self, fail_after: int | None = None):
        self.calls, self.fail_after = 0, fail_after

    def __call__(self, img):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt
        ys, xs = np.nonzero(img[:, :, 0] > 200)
        return None if len(xs) == 0 else (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def photo(x0, y0, size=40, shape=(120, 160)):
    img = np.full((*shape, 3), 60, np.uint8)
    img[y0:y0 + size, x0:x0 + size] = 230
    img[y0 + 5, x0 + 5] = (250, 10, 10)  # a marker that must survive the crop at the right place
    return img


def folder(root):
    write_image(root / "happy" / "S001_a.png", photo(20, 30))
    write_image(root / "happy" / "S002_b.png", photo(100, 70))      # near the right/bottom edges
    write_image(root / "sad" / "S001_c.png", np.full((80, 80, 3), 60, np.uint8))  # no face
    (root / "labels.txt").write_text("S001_a.png 1\n")
    return root


def test_square_box_is_centred_square_and_inside_the_image():
    assert square_box((100, 60, 180, 160), 256, 256, 0.25) == (65, 35, 215, 185)
    assert square_box((20, 10, 80, 70), 256, 200, 0.5) == (0, 0, 120, 120)         # shifted, not cut
    assert square_box((-10, -20, 300, 280), 256, 200, 0.1) == (45, 0, 245, 200)   # shrunk to the short side
    with pytest.raises(ConfigError, match="margin"):
        square_box((0, 0, 10, 10), 20, 20, -0.1)


def test_crop_folder_crops_faces_keeps_layout_and_files(tmp_path):
    src = folder(tmp_path / "src")
    report = crop_folder(src, tmp_path / "out", margin=0.25, detector=BrightSquare())
    assert (report["images"], report["cropped"], report["no_face"]) == (3, 2, ["sad/S001_c.png"])
    a = read_image(tmp_path / "out" / "happy" / "S001_a.png")
    assert a.shape == (60, 60, 3)                       # 40 px face x 1.5
    assert tuple(a[15, 15]) == (250, 10, 10)            # face at 30..70 -> box 20..80: marker at 5 + 10
    assert report["boxes"]["happy/S002_b.png"] == [90, 60, 150, 120]  # shifted inside 160x120
    assert tuple(read_image(tmp_path / "out" / "happy" / "S002_b.png")[15, 15]) == (250, 10, 10)
    assert (tmp_path / "out" / "sad" / "S001_c.png").read_bytes() == (src / "sad" / "S001_c.png").read_bytes()
    assert (tmp_path / "out" / "labels.txt").read_text() == "S001_a.png 1\n"
    assert json.loads((tmp_path / "out" / REPORT).read_text()) == report
    assert not (tmp_path / "out" / PARTIAL).exists()


def test_crop_resumes_reruns_identically_and_refuses_other_settings(tmp_path):
    src = folder(tmp_path / "src")
    with pytest.raises(KeyboardInterrupt):
        crop_folder(src, tmp_path / "out", detector=BrightSquare(fail_after=1))
    assert (tmp_path / "out" / PARTIAL).is_file() and not (tmp_path / "out" / REPORT).exists()
    resumed = crop_folder(src, tmp_path / "out", detector=BrightSquare())
    clean = crop_folder(src, tmp_path / "clean", detector=BrightSquare())
    files = sorted(p.relative_to(tmp_path / "clean") for p in (tmp_path / "clean").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*") if p.is_file())
    for f in files:
        if f.name != REPORT:
            assert (tmp_path / "out" / f).read_bytes() == (tmp_path / "clean" / f).read_bytes(), f
    assert resumed["boxes"] == clean["boxes"]
    again = BrightSquare()
    assert crop_folder(src, tmp_path / "out", detector=again) == resumed and again.calls == 0  # finished: nothing to do
    with pytest.raises(ConfigError, match="other settings"):
        crop_folder(src, tmp_path / "out", margin=0.5, detector=BrightSquare())
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        crop_folder(src, tmp_path / "busy", detector=BrightSquare())
    with pytest.raises(ConfigError, match="inside the folder"):
        crop_folder(src, src / "faces", detector=BrightSquare())


def test_dlib_finds_a_face_placed_in_a_larger_photo(sample_root, tmp_path):
    """The real detector (the landmarks extra) on sample-set faces pasted into 300x300 photos:
    the crop is centred on the pasted face, whatever the offset."""
    pytest.importorskip("dlib")
    from benchmark.cli import main

    with open(sample_root / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))[:4]
    offsets = [(20, 30), (150, 40), (60, 170), (180, 180)]
    for r, (x, y) in zip(rows, offsets):
        canvas = np.full((300, 300, 3), 128, np.uint8)
        canvas[y:y + 100, x:x + 100] = read_image(sample_root / r["path"])
        write_image(tmp_path / "src" / r["class"] / f"{r['id']}.png", canvas)
    res = CliRunner().invoke(main, ["data", "crop", "--root", str(tmp_path / "src"), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "4 of 4 images cropped" in res.output
    boxes = json.loads((tmp_path / "out" / REPORT).read_text())["boxes"]
    for r, (x, y) in zip(rows, offsets):
        x0, y0, x1, y1 = boxes[f"{r['class']}/{r['id']}.png"]
        assert 60 <= x1 - x0 <= 130 and x1 - x0 == y1 - y0
        assert abs((x0 + x1) / 2 - (x + 50)) < 15 and abs((y0 + y1) / 2 - (y + 55)) < 20
