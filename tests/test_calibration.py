"""Calibration against real captures: the measures, the new UDC physics, the fits, the presets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from degrade.calibration import metrics
from degrade.calibration.report import figures_markdown
from degrade.presetfile import load_preset
from degrade.udc import make_udc
from degrade.udc.ops import psf_convolve
from degrade.udc.psf import add_scatter, psf_summary


def _scene(seed: int = 0, h: int = 64, w: int = 96) -> np.ndarray:
    """A textured RGB test scene: smooth gradients, edges and a flat patch."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.5 + 0.3 * np.sin(7 * xx + seed), 0.4 + 0.3 * np.cos(5 * yy), 0.3 + 0.2 * xx], axis=2)
    img[h // 4:h // 2, w // 4:w // 2] = rng.uniform(0.2, 0.9, 3)
    img[:, (w * 3) // 4:] = 0.6
    return np.clip(img * 255, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------ measures
def test_brightness_colour_and_histogram_by_value():
    a = np.full((32, 32, 3), 200, np.uint8)
    b = np.full((32, 32, 3), 100, np.uint8)
    assert metrics.brightness_ratio(a, b) == pytest.approx(0.5)
    c = a.copy()
    c[..., 2] = 100  # blue halved
    rg, bg = metrics.colour_cast(a, c)
    assert rg == pytest.approx(1.0) and bg == pytest.approx(0.5)
    black, white = np.zeros_like(a), np.full_like(a, 255)
    assert metrics.histogram_distance(metrics.luma_histogram(black), metrics.luma_histogram(white)) == pytest.approx(1.0)
    assert metrics.histogram_distance(metrics.luma_histogram(a), metrics.luma_histogram(a)) == 0.0


def test_contrast_transfer_is_one_for_a_copy_and_falls_with_blur():
    import cv2

    img = _scene()
    np.testing.assert_allclose(metrics.contrast_transfer(img, img), 1.0)
    dim = (img.astype(np.float64) * 0.5).round().astype(np.uint8)  # darker, same structure
    assert np.abs(metrics.contrast_transfer(img, dim)[:3] - 1.0).max() < 0.1  # brightness factored out
    blur = cv2.GaussianBlur(img, (0, 0), 2.0)
    c = metrics.contrast_transfer(img, blur)
    assert c[0] > 0.9 and c[3] < 0.3 and np.all(np.diff(c[:4]) < 0)


def test_flat_noise_recovers_added_gaussian_noise():
    rng = np.random.default_rng(0)
    clean = np.full((128, 128, 3), 120, np.uint8)
    grey = np.repeat(rng.normal(0, 5.0, clean.shape[:2])[..., None], 3, axis=2)  # the same in every channel
    sd = metrics.flat_noise(clean, np.clip(120 + grey, 0, 255).round().astype(np.uint8))
    assert sd[4] == pytest.approx(5.0, rel=0.08)  # bin 64-128 holds level 120
    assert np.isnan(sd[0])
    colour = np.clip(120 + rng.normal(0, 5.0, clean.shape), 0, 255).round().astype(np.uint8)
    luma_sd = 5.0 * float(np.sqrt((np.array([0.2126, 0.7152, 0.0722]) ** 2).sum()))  # independent channels
    assert metrics.flat_noise(clean, colour)[4] == pytest.approx(luma_sd, rel=0.08)


def test_ghost_score_separates_a_grating_from_a_smooth_blur():
    k = np.zeros((31, 31))
    k[15, 15] = 1.0
    smooth = add_scatter(np.repeat(k[None], 3, 0), 0.5, 3.0)[1]
    grating = k.copy()
    grating[15, [11, 19]] = grating[[11, 19], 15] = 0.4
    assert metrics.ghost_score(smooth) < 0.02 < 0.3 < metrics.ghost_score(grating)


# ------------------------------------------------------------------------------ physics
def test_scatter_conserves_energy():
    rng = np.random.default_rng(1)
    k = rng.random((3, 9, 9))
    k /= k.sum(axis=(1, 2), keepdims=True)
    mixed = add_scatter(k, 0.4, 5.0)
    np.testing.assert_allclose(mixed.sum(axis=(1, 2)), 1.0, rtol=1e-6)
    assert mixed.shape[-1] == 2 * 15 + 1  # the veil's 3-sigma support
    # A point of light keeps its energy through the blur (dark surround, nothing leaves the frame).
    x = torch.zeros(1, 3, 96, 96)
    x[..., 40:56, 40:56] = 1.0
    y = psf_convolve(x, torch.from_numpy(mixed), border="zeros")
    np.testing.assert_allclose(y.sum().item(), x.sum().item(), rtol=1e-4)
    assert (y[..., 30, 48] > 0).all()  # the veil reaches beyond the diffraction kernel's support


def test_psf_scales_with_image_size():
    udc = make_udc("toled-binary", reference_px=100, spectral="peak", pixel_um=16.0)
    r = {n: np.mean(psf_summary(udc.kernel_for(n, n))["rms_radius_px"]) for n in (50, 100, 200)}
    assert r[50] / r[100] == pytest.approx(0.5, rel=0.12)
    assert r[200] / r[100] == pytest.approx(2.0, rel=0.12)
    # The face's size counts, not the frame's: a face half as wide as a 200 px frame = a 100 px face.
    half = make_udc("toled-binary", reference_px=100, spectral="peak", pixel_um=16.0, face_fraction=0.5)
    np.testing.assert_array_equal(half.kernel_for(200, 300), udc.kernel_for(100, 100))


def test_binary_presets_keep_the_v01_psf():
    from degrade.udc.displays import PANELS
    from degrade.udc.psf import PsfSettings, compute_display_psf

    udc = make_udc("toled-binary")
    np.testing.assert_array_equal(udc.kernel_for(48, 48), udc.kernel_for(256, 256))  # fixed in image pixels
    np.testing.assert_allclose(udc.psf_np, compute_display_psf(PANELS["toled"], PsfSettings()), atol=1e-7)


def test_calibrated_udc_presets_blur_relative_to_the_face():
    for name in ("toled", "poled"):
        udc = make_udc(name)
        s48 = psf_summary(udc.kernel_for(48, 48))["rms_radius_px"]
        s100 = psf_summary(udc.kernel_for(100, 100))["rms_radius_px"]
        assert np.mean(s48) / np.mean(s100) == pytest.approx(0.48, rel=0.15)


# ------------------------------------------------------------------------------ the shipped presets
def _after(kind: str, name: str) -> dict:
    return load_preset(kind, name, flag="--preset")["calibration"]["after"]


def test_lowlight_presets_match_real_darkening_and_noise_on_held_out_pairs():
    for name in ("lldif", "realistic"):
        test = _after("lowlight", name)["test"]["sim"]
        assert 5.5 <= test["darkening"]["median"] <= 10.0
        assert test["darkening"]["share_3.5_16"] >= 0.8
    cmp = _after("lowlight", "realistic")["test"]["compare"]
    assert 0.5 <= cmp["noise"] <= 2.0


def test_udc_presets_match_real_captures_on_held_out_pairs():
    toled = _after("udc", "toled")["test"]
    assert 0.8 <= toled["sim"]["brightness"]["median"] <= 1.15
    for s, r in zip(toled["sim"]["contrast"][:4], toled["real"]["contrast"][:4]):
        assert abs(s / r - 1.0) <= 0.25
    poled = _after("udc", "poled")["test"]["sim"]
    assert 0.35 <= poled["brightness"]["median"] <= 0.75
    assert 0.9 <= poled["rg"] <= 1.1 and 0.5 <= poled["bg"] <= 0.75


def test_calibrated_psfs_paint_no_ghost_copies():
    from degrade.calibration.metrics import psf_ghost

    for name in ("toled", "poled"):
        ghost = psf_ghost(make_udc(name).kernel_for(100, 100))
        assert ghost < 0.05
        assert ghost == pytest.approx(load_preset("udc", name, flag="--display")["calibration"]["after"]["psf_ghost"],
                                      abs=1e-3)
    assert psf_ghost(make_udc("toled-binary").kernel_for(100, 100)) > 0.2  # the grating's orders, v0.1


def test_figures_doc_matches_the_presets():
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / "docs" / "calibration-figures.md"
    assert doc.read_text() == figures_markdown(), "run: python scripts/calibrate_presets.py --docs"


# ------------------------------------------------------------------------------ fits (round trip)
def _write_pairs(tmp_path, degradation, n=5, size=(64, 96)):
    from degrade.calibration.pairs import simulate
    from fercore.imageio import write_image

    (tmp_path / "clean").mkdir()
    (tmp_path / "real").mkdir()
    for i in range(n):
        img = _scene(i, *size)
        write_image(tmp_path / "clean" / f"{i}.png", img)
        write_image(tmp_path / "real" / f"{i}.png", simulate(degradation, img, f"{i}", seed=7))
    return tmp_path / "clean", tmp_path / "real"


def test_lowlight_fit_recovers_known_exposure_and_white_balance(tmp_path):
    from degrade.calibration.fit_lowlight import fit_lowlight
    from degrade.calibration.pairs import find_pairs
    from degrade.lowlight import make_lowlight

    truth = make_lowlight("lldif-v1", exposure_ev=-5.0, temperature_k=5000, tint=10, highlights=-0.75, shadows=-0.7)
    clean, real = _write_pairs(tmp_path, truth)
    settings, record = fit_lowlight(find_pairs(clean, real), "lldif-v1")
    lo, hi, _ = settings["exposure_ev"]
    assert -5.2 <= lo <= hi <= -4.8
    t_lo, t_hi, scale = settings["temperature_k"]
    assert scale == "mired" and 4500 <= t_lo <= t_hi <= 5600
    assert 0 <= settings["tint"][0] <= settings["tint"][1] <= 20
    assert len(record["per_pair"]) == 5


def test_udc_fit_recovers_a_known_blur(tmp_path, monkeypatch):
    from degrade.calibration import fit_udc as fu
    from degrade.calibration.measure import measure
    from degrade.calibration.pairs import find_pairs
    from degrade.udc.degradation import udc_from_settings

    monkeypatch.setattr(fu, "PIXEL_UM", (8.0, 24.0))
    monkeypatch.setattr(fu, "OPAQUE", (0.0, 0.25))
    monkeypatch.setattr(fu, "SCATTER", (0.0, 0.3, 0.6))
    monkeypatch.setattr(fu, "SCATTER_PX", (3.0, 12.0))
    common = {"spectral": "peak", "reference_px": 64.0, "noise": "none"}
    truth = make_udc("toled-binary", **common, pixel_um=24.0, opaque_transmittance=0.25, scatter=0.3,
                     scatter_px=12.0, exposure=(0.5, 0.5), material_transmittance=(1.0, 0.9, 0.6))
    clean, real = _write_pairs(tmp_path, truth)
    pairs = find_pairs(clean, real)
    settings, _ = fu.fit_udc(pairs, "toled-binary", short=64, overrides=common)
    assert (settings["pixel_um"], settings["opaque_transmittance"], settings["scatter"], settings["scatter_px"]) == \
        (24.0, 0.25, 0.3, 12.0)
    assert settings["exposure"][0] == pytest.approx(0.5, abs=0.05)
    fitted = measure(pairs, udc_from_settings("fit", settings, noise="none"), short=64, progress=None)
    assert fitted["compare"]["bg"] == pytest.approx(1.0, abs=0.03)
    np.testing.assert_allclose(fitted["compare"]["contrast"][:4], 1.0, atol=0.05)


def test_calibrate_cli_writes_a_preset_that_reproduces_its_figures(tmp_path):
    from degrade.cli import main
    from degrade.lowlight import make_lowlight

    clean, real = _write_pairs(tmp_path, make_lowlight("lldif-v1", exposure_ev=-4.0), n=4)
    out = tmp_path / "fitted.json"
    r = CliRunner().invoke(main, ["calibrate", "--kind", "lowlight", "--clean", str(clean), "--real", str(real),
                                  "--preset", "lldif-v1", "--fit", "--write-preset", str(out)])
    assert r.exit_code == 0, r.output
    stored = json.loads(out.read_text())
    assert stored["kind"] == "lowlight" and "darkening" in stored["calibration"]["figures"]["sim"]
    report = tmp_path / "again.json"
    r = CliRunner().invoke(main, ["calibrate", "--kind", "lowlight", "--clean", str(clean), "--real", str(real),
                                  "--preset", str(out), "--report", str(report)])
    assert r.exit_code == 0, r.output
    again = json.loads(report.read_text())
    assert again["sim"] == stored["calibration"]["figures"]["sim"]
    # The file is a preset the rebuild command takes by path.
    r = CliRunner().invoke(main, ["lowlight", "--preset", str(out), "--dry-run"])
    assert r.exit_code == 0 and "exposure_ev" in r.output


def test_calibrate_cli_rejects_folders_without_common_names(tmp_path):
    from degrade.cli import main

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"")
    r = CliRunner().invoke(main, ["calibrate", "--kind", "udc", "--clean", str(tmp_path / "a"),
                                  "--real", str(tmp_path / "b")])
    assert r.exit_code == 2 and "no image names in common" in r.output


@pytest.mark.slow
def test_shipped_presets_reproduce_their_figures_on_the_real_data():
    """With the real data at $FER_REAL_DATA (see scripts/calibrate_presets.py), every shipped
    preset re-measures to the figures its file records (within 2 %)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    data = os.environ.get("FER_REAL_DATA")
    if not data or not Path(data, "lol").is_dir() or not Path(data, "udc").is_dir():
        pytest.skip("set FER_REAL_DATA to the real LOL / UDC pairs (docs/calibration.md)")
    script = Path(__file__).resolve().parents[1] / "scripts" / "calibrate_presets.py"
    res = subprocess.run([sys.executable, str(script), "--data", data, "--check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
