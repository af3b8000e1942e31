"""``fer-degrade udc / psf / verify`` end to end (tiny runs)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from degrade.cli import main
from fercore.imageio import read_image


def test_help_has_examples():
    for cmd in ("udc", "psf", "verify"):
        res = CliRunner().invoke(main, [cmd, "--help"])
        assert res.exit_code == 0 and "Example" in res.output
    assert "--shard" in CliRunner().invoke(main, ["udc", "--help"]).output


def test_udc_on_the_sample_set_then_verify(sample_root, tmp_path):
    out = tmp_path / "udc-sample"
    res = CliRunner().invoke(main, ["udc", "--out", str(out), "--limit", "12", "--split", "test",
                                    "--display", "poled", "--batch-size", "5"])
    assert res.exit_code == 0, res.output
    assert "12 written" in res.output
    assert (out / "labels.csv").is_file() and (out / "manifest.csv").is_file()
    rows = (out / "manifest.csv").read_text().splitlines()
    assert len(rows) == 13 and rows[1].split(",")[1] == "test"
    img = read_image(out / rows[1].split(",")[4])
    assert img.shape == (100, 100, 3)
    ok = CliRunner().invoke(main, ["verify", "--out", str(out)])
    assert ok.exit_code == 0 and "matches" in ok.output
    (out / rows[2].split(",")[4]).write_bytes(b"x")
    bad = CliRunner().invoke(main, ["verify", "--out", str(out)])
    assert bad.exit_code == 1 and "changed" in bad.output


def test_psf_command_and_round_trip(tmp_path):
    out = tmp_path / "psf"
    res = CliRunner().invoke(main, ["psf", "--display", "toled", "--out", str(out), "--set", "psf_max_px=31",
                                    "--set", "psf_energy=1"])
    assert res.exit_code == 0, res.output
    for name in ("psf.npy", "psf.png", "mtf.png", "psf.json"):
        assert (out / name).stat().st_size > 0
    arr = np.load(out / "psf.npy")
    assert arr.ndim == 3 and arr.shape[2] == 3 and arr.shape[0] <= 31
    np.testing.assert_allclose(arr.sum(axis=(0, 1)), 1.0, atol=1e-5)
    assert read_image(out / "psf.png").shape[0] == 4 * arr.shape[0]
    # The saved PSF, read back as a measured PSF, gives the same kernel.
    from degrade.udc import make_udc

    a = make_udc("toled", psf_max_px=31, psf_energy=1.0)
    b = make_udc("toled", psf=str(out / "psf.npy"), psf_max_px=31, psf_energy=1.0)
    np.testing.assert_allclose(a.psf_np, b.psf_np, rtol=1e-5, atol=1e-9)  # scatter included once


@pytest.mark.parametrize("args, flag", [
    (["--device", "cuda:7"], "--device"),
    (["--shard", "3/2"], "--shard"),
    (["--set", "photons=100"], "--set"),
    (["--set", "bogus=1"], "--set"),
])
def test_bad_options_are_clean_errors(args, flag, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    res = CliRunner().invoke(main, ["udc", "--out", str(tmp_path / "o"), "--limit", "1", *args])
    assert res.exit_code == 2 and flag in res.output and "Traceback" not in res.output


def test_dry_run_prints_settings(sample_root):
    res = CliRunner().invoke(main, ["udc", "--dry-run", "--set", "exposure=0.5:0.7"])
    assert res.exit_code == 0, res.output
    assert "(0.5, 0.7)" in res.output and "trans_r" in res.output
