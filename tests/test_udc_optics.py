"""UDC optics: Fraunhofer PSFs, display presets, the PSF cache and measured PSF files (values)."""

from __future__ import annotations

import numpy as np
import pytest

from degrade.udc.displays import PANELS, load_display_mask
from degrade.udc.optics import (PEAK_RGB_UM, bin_to_pixels, energy_radius, fraunhofer_psf, next_fast_len,
                                open_aperture, sensor_sampling)
from degrade.udc.psf import PsfSettings, compute_display_psf, display_psf, load_psf_file, psf_summary
from fercore.errors import ConfigError
from fercore.imageio import write_image


@pytest.fixture(scope="module")
def toled_psf() -> np.ndarray:
    return display_psf(PANELS["toled"])


@pytest.mark.parametrize("lam, aperture_mm, focal_mm", [(0.53, 4.0, 10.0), (0.61, 3.0, 8.0)])
def test_open_aperture_airy_ring(lam, aperture_mm, focal_mm):
    """First dark ring of an open circular aperture at 1.22 lambda f / D, within one sample."""
    sample = 0.2
    psf = fraunhofer_psf(open_aperture, lam, focal_mm=focal_mm, aperture_mm=aperture_mm,
                         sample_um=sample, size=512)
    assert psf.sum() == pytest.approx(1.0)
    c = 256
    assert psf.argmax() == c * 512 + c  # peak on the optical axis
    for row in (psf[c, c:], psf[c:, c], psf[c, c::-1]):  # right, down, left
        first_min = next(i for i in range(1, 60) if row[i] < row[i - 1] and row[i] <= row[i + 1])
        expected = 1.22 * lam * focal_mm / aperture_mm
        assert abs(first_min * sample - expected) <= sample
        assert row[first_min] < 0.01 * row[0]


def test_channels_sum_to_one_and_red_is_wider(toled_psf):
    assert toled_psf.shape[0] == 3 and toled_psf.shape[1] == toled_psf.shape[2] and toled_psf.shape[1] % 2 == 1
    np.testing.assert_allclose(toled_psf.sum(axis=(1, 2)), 1.0, atol=1e-5)
    assert (toled_psf >= 0).all()
    rms = psf_summary(toled_psf)["rms_radius_px"]
    assert rms[0] > rms[1] > rms[2]  # diffraction angles scale with the wavelength
    # The same holds for an open aperture's Airy pattern on a fine grid.
    widths = []
    for lam in PEAK_RGB_UM:
        p = fraunhofer_psf(open_aperture, lam, focal_mm=10, aperture_mm=4, sample_um=0.1, size=512)
        yy, xx = np.mgrid[0:512, 0:512] - 256
        inner = (yy ** 2 + xx ** 2) <= 60 ** 2
        widths.append(np.sqrt((p * (yy ** 2 + xx ** 2) * inner).sum() / (p * inner).sum()))
    assert widths[0] > widths[1] > widths[2]


def test_toled_slit_grid_has_side_lobes_along_both_axes(toled_psf):
    """Diffraction orders of the 168 um slit grid at lambda f / p along x and y, not on the diagonal."""
    d = PANELS["toled"]
    m = toled_psf.shape[-1] // 2
    for c, lam in enumerate(PEAK_RGB_UM):
        spacing = lam * d.focal_mm * 1e3 / d.pitch_um / d.pixel_um  # first order, in pixels
        near = [int(np.floor(spacing)), int(np.ceil(spacing))]
        k = toled_psf[c]
        for line in (k[m, m:], k[m:, m], k[m, m::-1], k[m::-1, m]):  # +x, +y, -x, -y
            lobe = max(line[i] for i in near)
            assert lobe > 10 * line[2]  # a side lobe well above the gap before it
            diag = max(k[m + i, m + i] for i in near)
            assert lobe > 10 * diag  # the lobes lie on the axes


def test_poled_is_darker_and_yellower_than_toled():
    t, p = PANELS["toled"].nominal_transmittance(), PANELS["poled"].nominal_transmittance()
    assert 0.18 < np.mean(t) < 0.22  # ~20 % (Zhou et al. 2021)
    assert 0.02 < np.mean(p) < 0.035  # ~2.9 %
    assert p[2] < p[1] < p[0]  # blue absorbed most: a yellow cast
    assert PANELS["toled"].open_fraction == pytest.approx(0.2072, abs=0.002)


def test_sampling_keeps_intensity_unaliased():
    d2, n = sensor_sampling(8.0, [0.47, 0.61], 10.0, 4.0)
    assert n % 2 == 1 and d2 * n == pytest.approx(8.0)
    assert d2 <= 0.47 * 10e3 / (2 * 4e3)
    with pytest.raises(ValueError, match="alias"):
        fraunhofer_psf(open_aperture, 0.5, focal_mm=10, aperture_mm=4, sample_um=1.0, size=256)


def test_bin_to_pixels_and_energy_radius():
    fine = np.zeros((45, 45))
    fine[22, 22] = 1.0
    fine[22, 22 + 5] = 1.0  # lands in the next 5-sample pixel to the right
    k = bin_to_pixels(fine, 5, 2)
    assert k.shape == (5, 5) and k[2, 2] == 1 and k[2, 3] == 1 and k.sum() == 2
    kern = np.zeros((3, 9, 9))
    kern[:, 4, 4] = 0.9
    kern[:, 4, 7] = 0.1
    assert energy_radius(kern, 0.85) == 0 and energy_radius(kern, 0.95) == 3
    assert next_fast_len(154) == 160 and next_fast_len(278, (2, 3, 5, 7)) == 280


def test_energy_crop_and_max_px():
    small = compute_display_psf(PANELS["toled"], PsfSettings(energy=0.9, max_px=31))
    big = compute_display_psf(PANELS["toled"], PsfSettings(energy=0.995, max_px=31))
    assert small.shape[-1] < big.shape[-1] <= 31
    np.testing.assert_allclose(small.sum(axis=(1, 2)), 1.0, atol=1e-5)


def test_psf_is_cached_on_disk(monkeypatch, toled_psf):
    import degrade.udc.psf as psf_mod

    def boom(*a, **k):
        raise AssertionError("recomputed instead of read from the cache")

    monkeypatch.setattr(psf_mod, "compute_display_psf", boom)
    again = display_psf(PANELS["toled"])
    np.testing.assert_array_equal(again, toled_psf)


def test_display_mask_png(tmp_path):
    """A fully open cell is no display: the PSF is the lens's own, nearly a single pixel."""
    png = tmp_path / "open.png"
    write_image(png, np.full((16, 16, 3), 255, np.uint8))
    d = load_display_mask(png, PANELS["toled"])
    assert d.open_fraction == 1.0 and d.mask_sha256
    k = compute_display_psf(d, PsfSettings(max_px=15))
    assert k[:, k.shape[1] // 2, k.shape[2] // 2].min() > 0.9
    # The T-OLED cell drawn as a PNG gives the preset's PSF.
    cell = (PANELS["toled"].cell_bitmap() * 255).astype(np.uint8)
    write_image(tmp_path / "toled.png", np.repeat(cell[:, :, None], 3, axis=2))
    dm = load_display_mask(tmp_path / "toled.png", PANELS["toled"])
    s = PsfSettings(max_px=15, energy=1.0)
    np.testing.assert_allclose(compute_display_psf(dm, s), compute_display_psf(PANELS["toled"], s), atol=1e-6)
    black = tmp_path / "black.png"
    write_image(black, np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ConfigError, match="--display-mask"):
        load_display_mask(black, PANELS["toled"])


def test_measured_psf_file(tmp_path):
    arr = np.zeros((20, 20, 3))
    arr[10, 10] = [2.0, 4.0, 8.0]
    arr[10, 12] = [2.0, 0.0, 0.0]
    np.save(tmp_path / "psf.npy", arr)
    k = load_psf_file(tmp_path / "psf.npy", PsfSettings(energy=1.0))
    assert k.shape[1] % 2 == 1
    np.testing.assert_allclose(k.sum(axis=(1, 2)), 1.0, atol=1e-6)
    m = k.shape[1] // 2
    assert k[0, m, m] == pytest.approx(0.5) and k[0, m, m + 2] == pytest.approx(0.5)
    assert k[2, m, m] == pytest.approx(1.0)
    np.save(tmp_path / "bad.npy", np.ones((5, 5)))
    with pytest.raises(ConfigError, match="--psf.*H x W x 3"):
        load_psf_file(tmp_path / "bad.npy")
    with pytest.raises(ConfigError, match="not found"):
        load_psf_file(tmp_path / "missing.npy")


def test_semi_transparent_closed_areas_strengthen_the_core():
    """Light through the closed areas raises the zero order: (mean amplitude)^2 / mean T."""
    from dataclasses import replace

    s = PsfSettings(max_px=31, energy=1.0)
    base = compute_display_psf(PANELS["toled"], s)
    semi_d = replace(PANELS["toled"], opaque_transmittance=0.1)
    semi = compute_display_psf(semi_d, s)
    m = 15
    assert semi[1, m, m] > 2 * base[1, m, m]
    assert semi_d.open_fraction == pytest.approx(0.2072 + 0.7928 * 0.1, abs=0.002)
