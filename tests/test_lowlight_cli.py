"""``fer-degrade lowlight`` on the shared runner: mirrored copy, darker, resumable, verifiable."""

from __future__ import annotations

import csv

import numpy as np
from click.testing import CliRunner

from degrade.cli import main
from degrade.presetfile import load_preset
from fercore.imageio import read_image
from fercore.sources import get_source


def test_lowlight_rebuild_resume_verify(sample_root, tmp_path):
    out = tmp_path / "ll-sample"
    args = ["lowlight", "--out", str(out), "--limit", "14", "--split", "test", "--batch-size", "4"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "14 written" in res.output
    with open(out / "manifest.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 14
    assert {"exposure_ev", "temperature_k", "tint", "highlights", "shadows", "sha256"} <= set(rows[0])
    lo, hi, _ = load_preset("lowlight", "lldif", flag="--preset")["settings"]["exposure_ev"]
    assert all(lo <= float(r["exposure_ev"]) <= hi for r in rows)
    # the copy reads like the original, and is much darker
    src, ll = get_source("sample", sample_root), get_source("sample", out)
    clean = {r.id: r for r in src.records()}
    dark = ll.records()
    assert len(dark) == 14 and all(r.label == clean[r.id].label for r in dark)
    ratio = np.mean([read_image(r.path).mean() / src.load(clean[r.id]).mean() for r in dark])
    assert ratio < 0.45
    # a second run skips everything; verify passes
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and "0 written, 14 already done" in again.output
    assert CliRunner().invoke(main, ["verify", "--out", str(out)]).exit_code == 0


def test_lowlight_realistic_preset_and_bad_override(sample_root, tmp_path):
    out = tmp_path / "ll-real"
    res = CliRunner().invoke(main, ["lowlight", "--preset", "realistic", "--out", str(out), "--limit", "3",
                                    "--set", "jpeg_quality=off"])
    assert res.exit_code == 0, res.output
    header = (out / "manifest.csv").read_text().splitlines()[0]
    assert "shot_noise" in header and "jpeg_quality" not in header
    bad = CliRunner().invoke(main, ["lowlight", "--out", str(out), "--set", "temperature_k=-100:5000"])
    assert bad.exit_code == 2 and "temperature_k" in bad.output


def test_lowlight_help_has_examples():
    res = CliRunner().invoke(main, ["lowlight", "--help"])
    assert res.exit_code == 0 and "Example" in res.output and "--preset" in res.output
