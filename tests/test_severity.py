"""Severity levels 0..5 of both simulators: identity, monotone PSNR per image, the preset at
level 3, the CLI flag, the run record and the on-demand hook fer-bench uses."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from degrade.cli import main
from degrade.lowlight import make_lowlight
from degrade.rebuild import RUN_RECORD, rebuild_dataset
from degrade.severity import Identity
from degrade.udc import make_udc, udc_severity
from fercore.errors import ConfigError
from fercore.imageio import read_image
from fercore.sources import get_source

N_IMAGES = 36


@pytest.fixture(scope="module")
def sample_batch():
    src = get_source("sample", None)
    recs = src.records("test")[:N_IMAGES]
    x = torch.from_numpy(np.stack([src.load(r) for r in recs])).permute(0, 3, 1, 2).contiguous()
    return x, [r.id for r in recs]


def _degrade(deg, x, ids, seed=0):
    rows, gens = deg.draws(seed, ids)
    return deg.apply_uint8(x, deg.stack_params(rows, "cpu"), gens)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    mse = (a.double() - b.double()).pow(2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(255.0 ** 2 / mse)


FACTORIES = {"udc": lambda k: make_udc("toled", severity=k), "lowlight": lambda k: make_lowlight("lldif", severity=k)}


@pytest.mark.parametrize("kind", ["udc", "lowlight"])
def test_psnr_falls_with_severity_for_every_image(kind, sample_batch):
    x, ids = sample_batch
    assert torch.equal(_degrade(FACTORIES[kind](0), x, ids), x)  # severity 0: the identity
    psnr = torch.stack([_psnr(x, _degrade(FACTORIES[kind](k), x, ids)) for k in range(1, 6)])
    steps = psnr[:-1] - psnr[1:]  # (4, N): level k's PSNR minus level k+1's
    assert bool((steps > 0).all()), f"PSNR rose with the level for {int((steps <= 0).sum())} image-steps"
    assert float(psnr[0].mean()) - float(psnr[-1].mean()) > (5.0 if kind == "udc" else 3.0)


def test_level_3_is_the_calibrated_preset(sample_batch):
    x, ids = sample_batch
    x, ids = x[:6], ids[:6]
    assert torch.equal(_degrade(make_udc("toled", severity=3), x, ids), _degrade(make_udc("toled"), x, ids))
    assert torch.equal(_degrade(make_lowlight("lldif", severity=3), x, ids), _degrade(make_lowlight("lldif"), x, ids))


def test_level_settings_are_physical_and_monotone():
    levels = [udc_severity(k) for k in range(1, 6)]
    scatter = [lv["scatter"] for lv in levels]
    assert scatter == sorted(scatter) and scatter[2] == 0.1 and scatter[0] > 0
    assert [lv["photons"][0] for lv in levels] == [93810.0] * 3 + [93810.0 / 4, 93810.0 / 16]
    for a, b in zip(levels, levels[1:]):
        assert b["exposure"][0] <= a["exposure"][0] and b["exposure"][1] <= a["exposure"][1]
    evs = [make_lowlight(severity=k).ranges["exposure_ev"] for k in range(1, 6)]
    assert [r.lo for r in evs] == [-1.47, -2.94, -5.88, -7.35, -8.82]
    assert make_lowlight(severity=2).ranges["shot_noise"] is None
    assert make_lowlight(severity=5).ranges["camera_gain"].lo == 8.0
    # a preset with noise keeps its noise shape, with the level's gain
    assert make_lowlight("realistic", severity=4).ranges["camera_gain"].hi == 32.0


def test_severity_is_recorded_and_explicit_settings_win():
    d = make_udc("toled", severity=4, scatter=0.3).describe()
    assert d["severity"] == 4 and d["settings"]["scatter"] == 0.3 and d["settings"]["photons"][0] == 93810.0 / 4
    assert make_lowlight(severity=2, exposure_ev=-1).describe()["ranges"]["exposure_ev"] == [-1.0, -1.0, "linear"]
    assert "severity" not in make_udc("toled").describe() and "severity" not in make_lowlight().describe()
    assert isinstance(make_udc(severity=0), Identity) and make_lowlight(severity=0).describe()["severity"] == 0


@pytest.mark.parametrize("bad", [6, -1, "x", 2.5, True])
def test_bad_severity_is_a_clear_error(bad):
    with pytest.raises(ConfigError, match="severity"):
        make_udc(severity=bad)
    with pytest.raises(ConfigError, match="severity"):
        make_lowlight(severity=bad)


def test_lowlight_severity_needs_a_darkening_preset():
    from degrade.lowlight import lowlight_severity
    from degrade.lowlight.presets import Range

    with pytest.raises(ConfigError, match="exposure_ev"):
        lowlight_severity(2, {"exposure_ev": Range(-1.0, 1.0), "camera_gain": None})


def test_identity_rebuild_copies_pixels_and_records_the_level(tmp_path):
    src = get_source("sample", None)
    out = tmp_path / "s0"
    res = rebuild_dataset(make_udc(severity=0), src, out, seed=0, limit=4, split="test", workers=0)
    assert res.complete and len(res.written) == 4
    for rec in src.records("test")[:4]:
        assert np.array_equal(read_image(out / rec.relpath), src.load(rec))
    ident = json.loads((out / RUN_RECORD).read_text())["identity"]
    assert ident["degradation"]["severity"] == 0 and ident["degradation"]["identity"] is True


def test_cli_severity_flag(tmp_path):
    out = tmp_path / "ll4"
    res = CliRunner().invoke(main, ["lowlight", "--severity", "4", "--out", str(out), "--limit", "3",
                                    "--split", "test", "--workers", "0"])
    assert res.exit_code == 0, res.output
    ident = json.loads((out / RUN_RECORD).read_text())["identity"]
    assert ident["degradation"]["severity"] == 4 and ident["degradation"]["ranges"]["camera_gain"][0] == 4.0
    dry = CliRunner().invoke(main, ["udc", "--severity", "2", "--dry-run"])
    assert dry.exit_code == 0 and "udc-toled-s2-sample-seed0" in dry.output.replace("\n", "")
    bad = CliRunner().invoke(main, ["udc", "--severity", "6", "--dry-run"])
    assert bad.exit_code != 0 and "--severity" in bad.output


def test_fer_bench_on_demand_hook():
    """fer-bench's ``--degrade-opt udc.severity=K`` reaches the factory through degradation_settings."""
    from benchmark.datasets import DataSettings, degradation_settings, make_degradation

    settings = DataSettings(degrade_opts={"udc": {"severity": 4}, "ll": {"severity": 1}})
    udc = make_degradation("udc", degradation_settings("udc", settings))
    ll = make_degradation("lowlight", degradation_settings("lowlight", settings))
    assert udc.describe()["severity"] == 4 and ll.describe()["severity"] == 1
