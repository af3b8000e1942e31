"""``fer-degrade preview`` and :mod:`degrade.preview`: labelled contact sheets of the simulators.

The UDC column uses ``toled-binary`` with the PSF scaled to the face (``reference_px=100``) and
one wavelength per channel, so its PSFs compute in about a second in the tests' empty cache.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from degrade import preview as pv
from degrade.cli import main
from degrade.lowlight import make_lowlight
from degrade.rebuild import degrade_batch
from degrade.udc import make_udc
from fercore.errors import ConfigError
from fercore.imageio import read_image, write_image


def _face(seed: int, size=(100, 100)) -> np.ndarray:
    """A smooth random image with some edges (a face stand-in)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    import cv2

    img = cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    img[size[0] // 3: size[0] // 3 + 3] = 255  # a bright bar: something for the PSF to spread
    return img


@pytest.fixture(scope="module")
def udc():
    return make_udc("toled-binary", reference_px=100, spectral="peak")


@pytest.fixture(scope="module")
def lowlight():
    return make_lowlight("lldif")


@pytest.fixture(scope="module")
def faces():
    return [_face(i) for i in range(3)]


# ------------------------------------------------------------------- resizing, picking
def test_square_resize_crops_the_centre_and_keeps_a_same_size_square():
    img = _face(0, (120, 80))
    out = pv.square_resize(img, 80)
    assert out.shape == (80, 80, 3)
    np.testing.assert_array_equal(out, img[20:100])  # centred 80x80 crop, no resampling
    assert pv.square_resize(img, 40).shape == (40, 40, 3)
    assert pv.square_resize(img, 200).shape == (200, 200, 3)


def test_display_resize_enlarges_nearest_neighbour():
    img = _face(1, (48, 48))
    big = pv.display_resize(img, 144)  # 3x
    assert big.shape == (144, 144, 3)
    np.testing.assert_array_equal(big, np.repeat(np.repeat(img, 3, 0), 3, 1))
    assert pv.display_resize(img, 48) is img


def test_pick_records_spreads_over_classes_and_depends_only_on_seed_ids_labels():
    recs = [SimpleNamespace(id=f"p{i}_{c}", label=c) for c in range(7) for i in range(10)]
    a = pv.pick_records(recs, 4, seed=0)
    assert len(a) == 4 and len({r.label for r in a}) == 4
    assert [r.id for r in pv.pick_records(list(reversed(recs)), 4, seed=0)] == [r.id for r in a]
    assert [r.id for r in pv.pick_records(recs, 9, seed=0)][:4] == [r.id for r in a]
    assert len({r.label for r in pv.pick_records(recs, 9, seed=0)}) == 7
    assert [r.id for r in pv.pick_records(recs, 4, seed=1)] != [r.id for r in a]
    assert len(pv.pick_records(recs[:3], 10, seed=0)) == 3


def test_parse_sizes_and_names():
    assert pv.parse_sizes("48, 100,256") == (48, 100, 256)
    for bad in ("", "48,x", "4", "5000"):
        with pytest.raises(ConfigError, match="--sizes"):
            pv.parse_sizes(bad)
    assert pv.parse_names("toled,poled") == ["toled", "poled"]
    assert pv.parse_names("none") == []
    assert pv.preset_label("/x/y/my-panel.json") == "my-panel"
    assert pv.preset_label("poled") == "poled"


# ------------------------------------------------------------------------------ tiles
def test_tiles_clean_equals_resized_input_and_degraded_equals_the_rebuild(faces, udc, lowlight):
    cols = [pv.Column("clean"), pv.Column("UDC", udc), pv.Column("LL", lowlight)]
    ids = ["a", "b", "c"]
    tiles = pv.preview_tiles(faces, cols, (48, 100), ids=ids, seed=3)
    assert len(tiles) == 2 and len(tiles[0]) == 3 and len(tiles[0][0]) == 3
    for s, size in enumerate((48, 100)):
        for i, face in enumerate(faces):
            resized = pv.square_resize(face, size)
            np.testing.assert_array_equal(tiles[s][i][0], resized)
            for c in (1, 2):
                t = tiles[s][i][c]
                assert t.shape == (size, size, 3) and t.dtype == np.uint8
                assert np.abs(t.astype(int) - resized.astype(int)).mean() > 1.0  # visibly degraded
    # at the images' own size the tiles are exactly what a rebuild with that seed writes
    rebuilt, _ = degrade_batch([SimpleNamespace(id=i) for i in ids], udc, faces, 3, torch.device("cpu"))
    for i in range(3):
        np.testing.assert_array_equal(tiles[1][i][1], rebuilt[i])
    # another seed, other draws
    other = pv.preview_tiles(faces[:1], cols, (100,), ids=ids[:1], seed=4)
    assert not np.array_equal(other[0][0][1], tiles[1][0][1])
    np.testing.assert_array_equal(other[0][0][0], tiles[1][0][0])


def test_udc_psf_scales_with_the_input_size(udc):
    """The PSF is fixed at the face scale: a bright bar spreads over ~2.56x more pixels at 256 px
    than at 100 px, so the blur's width relative to the image stays about the same."""
    k100, k256 = udc.kernel_for(100, 100), udc.kernel_for(256, 256)
    assert k256.shape[-1] > 2 * k100.shape[-1]

    def rms(k):
        g = k[1]
        yy, xx = np.mgrid[:g.shape[0], :g.shape[1]] - g.shape[0] // 2
        return float(np.sqrt((g * (xx ** 2 + yy ** 2)).sum()))

    assert rms(k256) / rms(k100) == pytest.approx(2.56, rel=0.15)


# ------------------------------------------------------------------------------ sheets
def test_contact_sheet_size_positions_and_determinism(faces, udc, lowlight):
    cols = [pv.Column("clean"), pv.Column("UDC toled", udc), pv.Column("low light (lldif)", lowlight)]
    sizes, tile = (48, 100), 96
    sheet = pv.contact_sheet(faces, cols, sizes, ids=["a", "b", "c"], names=["x", "y", "z"], seed=0, tile=tile,
                             title="t")
    rows = len(faces) * len(sizes)
    lw = pv.default_label_width(["x", "y", "z"] * 2, ["48 px", "100 px"])
    assert sheet.dtype == np.uint8
    assert sheet.shape == (pv.TITLE_H + pv.HEAD_H + rows * (tile + pv.PAD) + pv.GROUP_GAP * (len(sizes) - 1) + pv.PAD,
                           lw + len(cols) * (tile + pv.PAD) + pv.PAD, 3)
    lay = pv.grid_layout([[(tile, tile)] * len(cols)] * rows, tile=tile, n_groups=[3, 3], title=True, label_width=lw)
    assert (lay.height, lay.width) == sheet.shape[:2]
    tiles = pv.preview_tiles(faces, cols, sizes, ids=["a", "b", "c"], seed=0)
    for s in range(len(sizes)):
        for i in range(len(faces)):
            for c in range(len(cols)):
                y, x = lay.boxes[s * len(faces) + i][c]
                shown = pv.display_resize(tiles[s][i][c], tile)
                np.testing.assert_array_equal(sheet[y:y + tile, x:x + tile], shown)
    # the clean 48 px tile is the resized input, enlarged 2x nearest-neighbour
    y, x = lay.boxes[0][0]
    small = pv.square_resize(faces[0], 48)
    np.testing.assert_array_equal(sheet[y:y + tile, x:x + tile], np.repeat(np.repeat(small, 2, 0), 2, 1))
    # labels are drawn: the margin and header hold dark pixels
    assert (sheet[:, :lw] < 128).any() and (sheet[:pv.TITLE_H + pv.HEAD_H, lw:] < 128).any()
    again = pv.contact_sheet(faces, cols, sizes, ids=["a", "b", "c"], names=["x", "y", "z"], seed=0, tile=tile,
                             title="t")
    np.testing.assert_array_equal(sheet, again)


def test_contact_sheet_rejects_empty_inputs(faces):
    with pytest.raises(ConfigError):
        pv.contact_sheet([], [pv.Column("clean")], (48,))
    with pytest.raises(ConfigError):
        pv.contact_sheet(faces, [], (48,))


def _pairs(tmp_path: Path, n: int = 3, shape=(60, 90)) -> tuple[Path, Path]:
    clean, real = tmp_path / "clean", tmp_path / "real"
    for i in range(n):
        img = _face(10 + i, shape)
        write_image(clean / f"{i}.png", img)
        write_image(real / f"{i}.png", (img // 4).astype(np.uint8))
    write_image(clean / "only-clean.png", _face(99, shape))
    return clean, real


def test_real_vs_sim_sheet_columns_are_clean_real_and_simulator(tmp_path, lowlight):
    from degrade.calibration.pairs import find_pairs, load_pair, simulate

    clean_dir, real_dir = _pairs(tmp_path)
    pairs = find_pairs(clean_dir, real_dir)
    assert [p.name for p in pairs] == ["0", "1", "2"]
    rows = pv.real_vs_sim_tiles(pairs, lowlight, size=40, seed=0)
    clean, real = load_pair(pairs[1], 40)
    assert clean.shape == (40, 60, 3)
    np.testing.assert_array_equal(rows[1][0], clean)
    np.testing.assert_array_equal(rows[1][1], real)
    np.testing.assert_array_equal(rows[1][2], simulate(lowlight, clean, "1", 0))
    assert not np.array_equal(rows[1][2], clean)
    tile = 80
    sheet = pv.real_vs_sim_sheet(pairs, lowlight, sim_label="low light (lldif)", size=40, tile=tile, title="t")
    lw = pv.default_label_width(["0", "1", "2"])
    assert sheet.shape == (pv.TITLE_H + pv.HEAD_H + 3 * (tile + pv.PAD) + pv.PAD, lw + 3 * (120 + pv.PAD) + pv.PAD, 3)
    lay = pv.grid_layout([[(tile, 120)] * 3] * 3, tile=tile, n_groups=[3], title=True, label_width=lw)
    y, x = lay.boxes[1][1]
    np.testing.assert_array_equal(sheet[y:y + tile, x:x + 120], np.repeat(np.repeat(real, 2, 0), 2, 1))


def test_save_png_writes_the_sheet_and_needs_png(tmp_path):
    sheet = _face(5, (30, 40))
    path = pv.save_png(tmp_path / "a" / "s.png", sheet)
    np.testing.assert_array_equal(read_image(path), sheet)
    assert not list((tmp_path / "a").glob(".*tmp"))
    with pytest.raises(ConfigError, match="--out"):
        pv.save_png(tmp_path / "s.jpg", sheet)


# ------------------------------------------------------------------------------- CLI
@pytest.fixture
def folder_tree(tmp_path: Path) -> Path:
    """A `folder` source: train/test split folders, 3 classes x 2 faces each."""
    root = tmp_path / "faces"
    k = 0
    for split in ("train", "test"):
        for cls in ("happy", "sad", "angry"):
            for i in range(2):
                write_image(root / split / cls / f"{cls}{i}.png", _face(k, (64, 64)))
                k += 1
    return root


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_preview_folder_source_same_seed_same_bytes(tmp_path, folder_tree):
    args = ["preview", "--src", "folder", "--root", str(folder_tree), "--n", "3", "--sizes", "48,64",
            "--udc", "toled-binary", "--lowlight", "lldif", "--tile", "64"]
    r1 = CliRunner().invoke(main, args + ["--out", str(tmp_path / "a.png")])
    assert r1.exit_code == 0, r1.output
    assert "3 faces x 2 sizes x 3 columns" in r1.output
    r2 = CliRunner().invoke(main, args + ["--out", str(tmp_path / "b.png")])
    assert r2.exit_code == 0, r2.output
    assert _sha(tmp_path / "a.png") == _sha(tmp_path / "b.png")
    sheet = read_image(tmp_path / "a.png")
    lay_h = pv.TITLE_H + pv.HEAD_H + 6 * (64 + pv.PAD) + pv.GROUP_GAP + pv.PAD
    assert sheet.shape[0] == lay_h
    r3 = CliRunner().invoke(main, args + ["--seed", "1", "--out", str(tmp_path / "c.png")])
    assert r3.exit_code == 0, r3.output
    assert _sha(tmp_path / "c.png") != _sha(tmp_path / "a.png")


def test_cli_preview_real_pairs(tmp_path):
    clean_dir, real_dir = _pairs(tmp_path, n=3)
    out = tmp_path / "real.png"
    r = CliRunner().invoke(main, ["preview", "--real-clean", str(clean_dir), "--real", str(real_dir), "--kind",
                                  "lowlight", "--preset", "lldif", "--size", "40", "--n", "2", "--tile", "80",
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "2 pairs" in r.output
    assert read_image(out).shape[0] == pv.TITLE_H + pv.HEAD_H + 2 * (80 + pv.PAD) + pv.PAD


@pytest.mark.parametrize("extra, flag", [
    (["--real-clean", "X"], "--real"),
    (["--kind", "udc"], "--kind"),
    (["--sizes", "48,abc"], "--sizes"),
    (["--n", "0"], "--n"),
    (["--udc", "no-such-panel"], "--udc"),
    (["--lowlight", "no-such-preset"], "--lowlight"),
])
def test_cli_preview_errors_are_one_line(tmp_path, folder_tree, extra, flag):
    r = CliRunner().invoke(main, ["preview", "--src", "folder", "--root", str(folder_tree),
                                  "--out", str(tmp_path / "x.png"), *extra])
    assert r.exit_code == 2
    assert "Traceback" not in r.output
    assert flag in r.output
    assert not (tmp_path / "x.png").exists()


def test_cli_preview_real_needs_kind(tmp_path):
    clean_dir, real_dir = _pairs(tmp_path, n=1)
    r = CliRunner().invoke(main, ["preview", "--real-clean", str(clean_dir), "--real", str(real_dir),
                                  "--out", str(tmp_path / "x.png")])
    assert r.exit_code == 2 and "--kind" in r.output
