"""``fer-degrade``: the degradation command line."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import rich_click as click

from fercore import __version__
from fercore.cli import FerGroup, source_options
from fercore.errors import ConfigError


@click.group(cls=FerGroup)
@click.version_option(__version__, prog_name="fer-degrade")
def main() -> None:
    """Rebuild degraded FER datasets: under-display-camera (UDC) and low-light copies.

    Outputs mirror the source layout, carry a manifest with the sha256 of every image, resume
    after an interruption and reproduce the same bytes for the same seed.
    """


# ------------------------------------------------------------------ shared options
@dataclass(frozen=True)
class RebuildOptions:
    """The options every rebuild command shares (see :func:`rebuild_options`)."""

    src: str
    root: str | None
    src_opts: tuple[str, ...]
    out: str | None
    seed: int
    device: str
    batch_size: int
    workers: int
    shard: str
    split: str | None
    on_error: str
    limit: int | None
    threads: int

    def out_dir(self, kind: str, preset: str) -> str:
        """``--out``, or the default ``degraded/<kind>-<preset>-<src>-seed<seed>``."""
        if self.out:
            return self.out
        safe = preset.replace(":", "-").replace("/", "-")
        return f"degraded/{kind}-{safe}-{self.src}-seed{self.seed}"


def rebuild_options(fn):
    """Add the shared rebuild options and pass them to the command as ``rebuild=RebuildOptions``.

    ``--src/--root/--src-opt`` (default: the embedded sample set), ``--out``, ``--seed``,
    ``--device``, ``--batch-size``, ``--workers``, ``--threads``, ``--shard I/N``, ``--split``,
    ``--on-error skip|stop`` and ``--limit``.
    """
    names = ("src", "root", "src_opts", "out", "seed", "device", "batch_size", "workers", "shard", "split",
             "on_error", "limit", "threads")

    @source_options(default_src="sample")
    @click.option("--out", type=click.Path(file_okay=False), default=None,
                  help="Output folder (default: `degraded/<kind>-<preset>-<src>-seed<seed>` in the current "
                       "folder). Re-running into it resumes.")
    @click.option("--seed", type=int, default=0, show_default=True,
                  help="Run seed; with each image's id it fixes every random draw.")
    @click.option("--device", default="cpu", show_default=True, help="`cpu`, `cuda` or `cuda:N`.")
    @click.option("--batch-size", type=int, default=32, show_default=True,
                  help="Images per batch (same size only). Does not change the output.")
    @click.option("--workers", type=int, default=2, show_default=True,
                  help="Threads that decode, degrade, encode and write (0 = none). Does not change the output.")
    @click.option("--threads", type=int, default=1, show_default=True,
                  help="torch intra-op threads per batch on the CPU; more contend with --workers.")
    @click.option("--shard", default="0/1", show_default=True, metavar="I/N",
                  help="Process shard I of N (by a hash of the image id); run all N into one --out.")
    @click.option("--split", type=click.Choice(["train", "val", "test", "all"]), default="all",
                  show_default=True, help="Which split to rebuild.")
    @click.option("--on-error", type=click.Choice(["stop", "skip"]), default="stop", show_default=True,
                  help="At an unreadable input: stop (finished images are kept) or skip it "
                       "(listed in run.json).")
    @click.option("--limit", type=int, default=None,
                  help="Only the first N images (by id) -- for a quick look.")
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        vals = {k: kwargs.pop(k) for k in names}
        vals["split"] = None if vals["split"] == "all" else vals["split"]
        return fn(*args, rebuild=RebuildOptions(**vals), **kwargs)

    return wrapper


def run_rebuild(degradation, opts: RebuildOptions, preset: str, source=None, rebuild_fn=None) -> None:
    """Open the source (unless given), run ``rebuild_fn`` (default :func:`degrade.rebuild.rebuild_dataset`)
    and print a summary."""
    import shlex
    import sys

    from fercore.cli import open_source
    from fercore.progress import out_console

    from .rebuild import rebuild_dataset

    source = source or open_source(opts.src, opts.root, opts.src_opts)
    out = opts.out_dir(degradation.kind, preset)
    res = (rebuild_fn or rebuild_dataset)(degradation, source, out, seed=opts.seed, device=opts.device,
                          batch_size=opts.batch_size, workers=opts.workers, shard=opts.shard,
                          split=opts.split, on_error=opts.on_error, limit=opts.limit, threads=opts.threads,
                          command=shlex.join(["fer-degrade", *sys.argv[1:]]))
    c = res.counts
    out_console.print(f"{degradation.kind} -> {res.out}: {c['written']} written, {c['skipped']} already done, "
                      f"{c['failed']} unreadable (skipped) of {c['selected']} in shard {opts.shard}; "
                      f"manifest {'complete' if res.complete else 'partial (other shards or failures pending)'}",
                      soft_wrap=True)
    for f in res.failed[:20]:
        out_console.print(f"  unreadable: {f['path']}: {f['error']}", soft_wrap=True)


# ----------------------------------------------------------------------- udc
def udc_settings_options(fn):
    """Options that configure the UDC simulator (shared by `udc`, `psf` and `calibrate`).

    Only the options the user gives are passed on, so everything else comes from the preset.
    """
    from .presetfile import shipped_presets

    @click.option("--display", default="toled", show_default=True, metavar="PRESET|FILE.json",
                  help="UDC preset: " + ", ".join(shipped_presets("udc")) + " (`toled`/`poled` are calibrated "
                       "against real T-OLED / P-OLED captures, `*-binary` are the v0.1 presets), or a preset "
                       "file written by `fer-degrade calibrate --write-preset`.")
    @click.option("--display-mask", type=click.Path(dir_okay=False), default=None,
                  help="PNG of one unit cell of another panel (white = open); tiled with `--pitch-um`.")
    @click.option("--pitch-um", type=float, default=None, help="Unit-cell pitch in micrometres (preset's by default).")
    @click.option("--pixel-um", type=float, default=None,
                  help="Sensor size of one image pixel of a face `reference_px` wide, in micrometres "
                       "(preset's by default): sets the PSF's size.")
    @click.option("--psf", "psf_file", type=click.Path(dir_okay=False), default=None,
                  help="Measured PSF (H x W x 3 .npy) to use instead of the computed one.")
    @click.option("--psf-scale", type=float, default=None,
                  help="Resize factor for --psf at the reference size (e.g. 0.25 for a PSF measured at 4x).")
    @click.option("--spectral", type=click.Choice(["peak", "band"]), default=None,
                  help="One wavelength per channel, or 5 weighted by a Gaussian sensor response (preset's by default).")
    @click.option("--noise", type=click.Choice(["normal", "poisson", "none"]), default=None,
                  help="Sensor noise: Poisson-Gaussian in Gaussian form (default), exact Poisson, or off.")
    @click.option("--flare/--no-flare", default=None,
                  help="Boost clipped highlights before the blur (flare; off by default).")
    @click.option("--set", "set_pairs", multiple=True, metavar="KEY=VALUE",
                  help="Any other setting, repeatable, e.g. `--set photons=2000:20000 --set exposure=0.5:0.8`. "
                       "See docs/udc.md or `--dry-run` for the list.")
    @functools.wraps(fn)
    def wrapper(*args, display, display_mask, pitch_um, pixel_um, psf_file, psf_scale, spectral, noise,
                flare, set_pairs, **kwargs):
        from .settings import parse_set
        from .udc import UDCSettings

        for flag, value in (("--pitch-um", pitch_um), ("--pixel-um", pixel_um), ("--psf-scale", psf_scale)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ConfigError(f"must be a positive finite number, got {value}", flag=flag)
        given = {"display_mask": display_mask, "pitch_um": pitch_um, "pixel_um": pixel_um, "psf": psf_file,
                 "psf_scale": psf_scale, "spectral": spectral, "noise": noise, "flare": flare}
        settings = {k: v for k, v in given.items() if v is not None}
        settings.update(parse_set(set_pairs, UDCSettings))
        if "display" in settings:
            display = settings.pop("display")
        return fn(*args, display=display, udc_settings=settings, **kwargs)

    return wrapper


@main.command("udc")
@rebuild_options
@udc_settings_options
@click.option("--severity", type=click.IntRange(0, 5), default=None, metavar="0..5",
              help="Severity level: 0 = the clean image, 3 = the calibrated preset, 5 = the harshest; "
                   "see docs/udc.md for each level's physical parameters. Default: the preset as it is.")
@click.option("--dry-run", is_flag=True, help="Print the settings, PSF and image count, then stop.")
def udc(rebuild: RebuildOptions, display: str, udc_settings: dict, severity: int | None, dry_run: bool) -> None:
    """Rebuild a dataset as seen through an under-display camera (UDC).

    Physically based: sRGB to linear light, the panel's transmittance (brightness and colour
    cast), its diffraction PSF (Fraunhofer, per colour), optional flare, Poisson-Gaussian sensor
    noise at the light that is left, the camera's gain, back to 8-bit sRGB. Every image's
    parameters come from (seed, image id), so the same command gives the same bytes.

    Examples:

    `fer-degrade udc` (the embedded sample set, T-OLED, into `degraded/udc-toled-sample-seed0`)

    `fer-degrade udc --src rafdb --root ~/data/RAF-DB --out udc-rafdb --display poled --seed 0`

    `fer-degrade udc --src kdef --root ~/data/KDEF --out udc-kdef --shard 0/2` (then `--shard 1/2`)

    `fer-degrade udc --severity 5` (the harshest level, into `degraded/udc-toled-s5-sample-seed0`)
    """
    from fercore.progress import out_console

    from fercore.cli import open_source

    from .severity import label
    from .udc import make_udc

    source = open_source(rebuild.src, rebuild.root, rebuild.src_opts)
    udc_settings.setdefault("face_fraction", source.face_fraction)
    deg = make_udc(display, severity=severity, **udc_settings)
    if severity == 0:
        name = label(deg.preset, severity)
        if dry_run:
            n = len(source.records(rebuild.split))
            out_console.print(f"severity 0: the clean images, unchanged; {n} -> {rebuild.out_dir('udc', name)}")
            return
        run_rebuild(deg, rebuild, name, source)
        return
    if dry_run:
        from .settings import settings_table

        for k, v in settings_table(deg.settings):
            out_console.print(f"{k:24s} {v}")
        out_console.print(f"{'nominal transmittance':24s} {[round(t, 4) for t in deg.nominal]}")
        out_console.print(f"{'psf':24s} {deg.describe()['psf']}")
        out_console.print(f"{'per-image parameters':24s} {deg.param_names()}")
        n = len(source.records(rebuild.split))
        out_console.print(f"{'images':24s} {n} -> {rebuild.out_dir('udc', label(deg.display.name, severity))}")
        return
    run_rebuild(deg, rebuild, label(deg.display.name, severity), source)


@main.command("psf")
@udc_settings_options
@click.option("--out", type=click.Path(file_okay=False), default="psf", show_default=True,
              help="Folder for psf.npy, psf.png, mtf.png and psf.json.")
def psf(display: str, udc_settings: dict, out: str) -> None:
    """Compute a display's PSF and save it with its MTF plot.

    Writes `psf.npy` (H x W x 3, the format `--psf` reads), `psf.png` (log-scaled, each
    channel in its colour), `mtf.png` (MTF along x and y per channel) and `psf.json` (the
    display's parameters and PSF statistics).

    Example: `fer-degrade psf --display toled --out psf-toled`
    """
    from fercore.progress import out_console

    from .udc import make_udc
    from .udc.plots import save_psf_figures

    deg = make_udc(display, **udc_settings)
    files = save_psf_figures(deg, out)
    d = deg.describe()
    out_console.print(f"{deg.display.name}: PSF {d['psf']['size_px']} px, RMS radius {d['psf']['rms_radius_px']} px, "
                      f"transmittance {d['nominal_transmittance']}")
    for f in files:
        out_console.print(f"  {f}")


@main.command("lowlight")
@rebuild_options
@click.option("--preset", default="lldif", show_default=True, metavar="PRESET|FILE.json",
              help="`lldif`: the paper's four controls (exposure, white balance, highlights, shadows), "
                   "calibrated to real low/normal-light pairs; `realistic`: plus sensor noise and JPEG; "
                   "`lldif-v1` / `realistic-v1`: the first presets; or a preset file "
                   "(`fer-degrade calibrate --write-preset`).")
@click.option("--set", "set_pairs", multiple=True, metavar="KEY=VALUE",
              help="Override a range or setting, repeatable: `--set exposure_ev=-4:-3`, `--set tint=0`, "
                   "`--set jpeg_quality=off`, `--set pivot=0.45`. See docs/lowlight.md or `--dry-run`.")
@click.option("--severity", type=click.IntRange(0, 5), default=None, metavar="0..5",
              help="Severity level: 0 = the clean image, 3 = the calibrated preset, 5 = the harshest; "
                   "see docs/lowlight.md for each level's physical parameters. Default: the preset as it is.")
@click.option("--dry-run", is_flag=True, help="Print the ranges, settings and image count, then stop.")
def lowlight(rebuild: RebuildOptions, preset: str, set_pairs: tuple[str, ...], severity: int | None,
             dry_run: bool) -> None:
    """Rebuild a dataset as a low-light copy (Lightroom-style edits, as LLDif made its sets).

    Exposure (EV, in linear light), white balance (temperature and tint on the Planckian
    locus), highlights and shadows (luminance-masked tone curves), drawn per image from the
    preset's ranges with (seed, image id); `realistic` adds shot/read sensor noise and JPEG.

    Examples:

    `fer-degrade lowlight` (the embedded sample set, preset lldif, into `degraded/lowlight-lldif-sample-seed0`)

    `fer-degrade lowlight --src rafdb --root ~/data/RAF-DB --out ll-rafdb --seed 0`

    `fer-degrade lowlight --src kdef --root ~/data/KDEF --preset realistic --set exposure_ev=-4:-2.5`

    `fer-degrade lowlight --severity 1` (the mildest level, into `degraded/lowlight-lldif-s1-sample-seed0`)
    """
    from fercore.options import parse_options
    from fercore.progress import out_console

    from .lowlight import make_lowlight
    from .severity import label

    deg = make_lowlight(preset, severity=severity, **parse_options(set_pairs, flag="--set"))
    preset = label(deg.preset, severity)
    if dry_run and severity == 0:
        from fercore.cli import open_source

        n = len(open_source(rebuild.src, rebuild.root, rebuild.src_opts).records(rebuild.split))
        out_console.print(f"severity 0: the clean images, unchanged; {n} -> {rebuild.out_dir('lowlight', preset)}")
        return
    if dry_run:
        from fercore.cli import open_source

        d = deg.describe()
        for k, v in d["ranges"].items():
            out_console.print(f"{k:20s} {v if v is not None else 'off'}")
        for k, v in d["settings"].items():
            out_console.print(f"{k:20s} {v}")
        n = len(open_source(rebuild.src, rebuild.root, rebuild.src_opts).records(rebuild.split))
        out_console.print(f"{'images':20s} {n} -> {rebuild.out_dir('lowlight', preset)}")
        return
    run_rebuild(deg, rebuild, preset)


@main.command("rebuild")
@click.argument("name")
@rebuild_options
@click.option("--preset", default=None, metavar="PRESET",
              help="Preset of the degradation (its default when not given).")
@click.option("--set", "set_pairs", multiple=True, metavar="KEY=VALUE",
              help="A setting of the degradation's factory, repeatable (JSON values: `--set sigma=2.5`).")
def rebuild_cmd(name: str, rebuild: RebuildOptions, preset: str | None, set_pairs: tuple[str, ...]) -> None:
    """Rebuild a dataset with any registered degradation: the toolkit's (`udc`, `ll`) or a
    plugin's (`--import MODULE`, docs/plugins.md).

    NAME is the degradation's registered name, the prefix of its dataset names in `fer-bench`
    (`blur` -> `blur-rafdb`). Same outputs, seeding, resume and records as `udc` and `lowlight`.

    Example: `fer-degrade rebuild blur --import mylab_fer.plugin --preset strong --out blur-sample`
    """
    from benchmark.datasets import parse_value
    from fercore.options import parse_options

    from .registry import get_degradation

    entry = get_degradation(name, flag="NAME")
    settings = {k: parse_value(v) for k, v in parse_options(set_pairs, flag="--set").items()}
    source = None
    if entry.from_source is not None:
        from fercore.cli import open_source

        source = open_source(rebuild.src, rebuild.root, rebuild.src_opts)
        for k, v in entry.from_source(source).items():
            settings.setdefault(k, v)
    deg = entry.create(preset, **settings)
    label = str(preset or entry.default_preset or entry.name)
    run_rebuild(deg, rebuild, label, source, rebuild_fn=entry.rebuild_fn())


@main.command("calibrate")
@click.option("--kind", type=click.Choice(["udc", "lowlight"]), required=True,
              help="Which simulator to compare with (and fit to) the real pairs.")
@click.option("--clean", "clean_dir", type=click.Path(file_okay=False), required=True,
              help="Folder of clean images (references).")
@click.option("--real", "real_dir", type=click.Path(file_okay=False), required=True,
              help="Folder of real degraded captures of the same scenes, under the same file names.")
@click.option("--preset", default=None, metavar="PRESET|FILE.json",
              help="Preset to measure (and start the fit from): a UDC `--display` preset or a low-light "
                   "`--preset`, or a preset file. Default: `toled` / `lldif`.")
@click.option("--set", "set_pairs", multiple=True, metavar="KEY=VALUE", help="Override a setting of the preset.")
@click.option("--size", type=int, default=None,
              help="Resize every pair so its shorter side is N px (area) before measuring. Default: 100 for "
                   "`udc` (its presets are defined at the face scale `reference_px` = 100), native for `lowlight`.")
@click.option("--limit", type=int, default=None, help="Only the first N pairs (by name).")
@click.option("--exclude", multiple=True, metavar="NAME", help="Leave out a pair (file name without extension).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the simulator's draws (with each name).")
@click.option("--fit", is_flag=True, help="Fit the preset's free parameters to these pairs first.")
@click.option("--noise-real", type=click.Path(file_okay=False), default=None,
              help="UDC fit: folder of real captures (no reference needed) whose flat-region noise the fit matches.")
@click.option("--write-preset", type=click.Path(dir_okay=False), default=None,
              help="Write the (fitted) preset, with these figures, as a preset file the simulators load by path.")
@click.option("--report", type=click.Path(dir_okay=False), default=None, help="Write every figure as JSON.")
def calibrate(kind: str, clean_dir: str, real_dir: str, preset: str | None, set_pairs: tuple[str, ...],
              size: int | None, limit: int | None, exclude: tuple[str, ...], seed: int, fit: bool,
              noise_real: str | None, write_preset: str | None, report: str | None) -> None:
    """Compare a simulator with real degraded captures, side by side; optionally fit it.

    Given paired folders of clean and really-degraded images of the same scenes (same names),
    prints for the real pairs and for the simulator applied to the clean images: brightness
    ratio, colour cast (R/G, B/G), contrast transfer per frequency band with brightness factored
    out, noise in flat regions against brightness, luminance-histogram distance, and a
    ghost-copy score. With `--fit` it first fits the preset's free parameters (exposure,
    white balance, noise for low light; exposure, colour, PSF scale, opaque transmittance,
    scatter, photons for UDC) to the pairs. Fit on training pairs; re-run without `--fit` on
    pairs you held out, with `--preset` the written file.

    Examples:

    `fer-degrade calibrate --kind lowlight --clean LOL/our485/high --real LOL/our485/low --fit --write-preset ll.json`

    `fer-degrade calibrate --kind lowlight --clean LOL/eval15/high --real LOL/eval15/low --preset ll.json`

    `fer-degrade calibrate --kind udc --preset poled --clean udc/poled/hq --real udc/poled/lq --size 100`
    """
    from rich.table import Table

    from fercore.atomic import atomic_write_text
    from fercore.options import parse_options
    from fercore.progress import out_console

    from .calibration.measure import measure, report_rows
    from .calibration.pairs import find_pairs
    from .settings import parse_set

    pairs = find_pairs(clean_dir, real_dir, limit=limit, exclude=exclude)
    preset = preset or ("toled" if kind == "udc" else "lldif")
    # UDC presets are defined at the face scale (reference_px 100): measure and fit there.
    size = size if size is not None else (100 if kind == "udc" else None)
    fitted: dict | None = None
    record: dict = {}
    if kind == "udc":
        from .udc import UDCSettings, make_udc

        over = parse_set(set_pairs, UDCSettings)
        if fit:
            from .calibration.fit_udc import fit_udc
            from .calibration.pairs import read_folder
            from .udc.degradation import udc_from_settings

            noise = read_folder(noise_real, "--noise-real") if noise_real else None
            fitted, record = fit_udc(pairs, preset, short=size, overrides=over, noise_real=noise, seed=seed)
            deg = udc_from_settings(preset, fitted)
        else:
            deg = make_udc(preset, **over)
    else:
        from .lowlight import make_lowlight

        over = parse_options(set_pairs, flag="--set")
        if fit:
            from .calibration.fit_lowlight import fit_lowlight
            from .lowlight.degradation import lowlight_from_settings

            fitted, record = fit_lowlight(pairs, preset, seed=seed, short=size, overrides=over)
            deg = lowlight_from_settings(preset, fitted)
        else:
            deg = make_lowlight(preset, **over)
    result = measure(pairs, deg, short=size, seed=seed)
    table = Table(title=f"{kind}: {len(pairs)} real pairs vs the simulator ({'fitted ' if fit else ''}{preset})")
    for col in ("measure", "real", "simulator"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for row in report_rows(result):
        table.add_row(*row)
    out_console.print(table)
    if fitted is not None:
        out_console.print("fitted: " + ", ".join(f"{k}={v}" for k, v in fitted.items()
                                                  if k not in ("per_pair",)), soft_wrap=True)
    if write_preset:
        from pathlib import Path

        from .presetfile import write_preset as _write

        settings = fitted if fitted is not None else deg.preset_settings()
        cal = {"clean": str(clean_dir), "real": str(real_dir), "size": size, "seed": seed,
               "fitted_on": result["pairs"] if fit else [], "figures": {k: result[k] for k in ("real", "sim", "compare")},
               "fit": {k: v for k, v in record.items() if k != "per_pair"}}
        path = _write(write_preset, kind, Path(write_preset).stem, settings,
                      description=f"{'fitted' if fit else 'measured'} with fer-degrade calibrate from {preset}",
                      calibration=cal)
        out_console.print(f"preset written to {path}")
    if report:
        from .presetfile import dumps, json_safe

        atomic_write_text(report, dumps(json_safe({**result, "fit": record, "fitted": fitted})) + "\n")


@main.command("preview")
@source_options(default_src="sample")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True,
              help="Split the faces are picked from.")
@click.option("--n", "n", type=int, default=4, show_default=True,
              help="Faces to show (picked by --seed, spread over the classes); with --real, the first N pairs.")
@click.option("--udc", "udc_presets", default="toled,poled", show_default=True, metavar="PRESET[,PRESET...]",
              help="UDC columns: display presets by name or preset .json files; `none` for no UDC column.")
@click.option("--lowlight", "ll_presets", default="lldif", show_default=True, metavar="PRESET[,PRESET...]",
              help="Low-light columns: presets by name or .json files; `none` for no low-light column.")
@click.option("--sizes", default="48,100,256", show_default=True, metavar="PX[,PX...]",
              help="Input sizes: each face is resized to a size first, then degraded at that size (one group "
                   "of rows per size).")
@click.option("--tile", type=int, default=160, show_default=True,
              help="Display size of every tile in px (nearest-neighbour when enlarging, area when reducing).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Picks the faces and, with each image's id, fixes every random draw (as a rebuild's seed).")
@click.option("--real-clean", type=click.Path(file_okay=False), default=None,
              help="Folder of clean images of real pairs: draw `clean | real capture | simulator` instead.")
@click.option("--real", "real_dir", type=click.Path(file_okay=False), default=None,
              help="Folder of the real degraded captures of the --real-clean scenes (same file names).")
@click.option("--kind", type=click.Choice(["udc", "lowlight"]), default=None,
              help="With --real: which simulator to compare with the captures.")
@click.option("--preset", default=None, metavar="PRESET|FILE.json",
              help="With --real: the simulator's preset (default: `toled` for udc, `lldif` for lowlight).")
@click.option("--size", type=int, default=100, show_default=True,
              help="With --real: resize each pair so its shorter side is N px before simulating.")
@click.option("--out", type=click.Path(dir_okay=False), default="preview.png", show_default=True,
              help="PNG file to write (atomically).")
def preview(src: str, root: str | None, src_opts: tuple[str, ...], split: str, n: int, udc_presets: str,
            ll_presets: str, sizes: str, tile: int, seed: int, real_clean: str | None, real_dir: str | None,
            kind: str | None, preset: str | None, size: int, out: str) -> None:
    """Draw a labelled contact sheet of the simulators on the same faces.

    Columns `clean | UDC toled | UDC poled | low light (lldif)`, one group of rows per input
    size: each face is resized to the size first (area / cubic) and then degraded at that
    size exactly as a rebuild does, so a PSF that scales with the image shows at its true
    extent; tiles are then shown at `--tile` px, enlarged nearest-neighbour.

    With `--real-clean DIR --real DIR --kind udc|lowlight` it draws `clean | real capture |
    simulator` for paired real captures instead (each pair resized to `--size`).

    Examples:

    `fer-degrade preview --out degradations.png` (4 test faces of the sample set at 48, 100 and 256 px)

    `fer-degrade preview --src rafdb --root ~/data/RAF-DB --n 6 --udc poled --lowlight lldif,realistic --sizes 100`

    `fer-degrade preview --real-clean LOL/eval15/high --real LOL/eval15/low --kind lowlight --preset lldif --out ll.png`
    """
    from fercore.errors import ConfigError
    from fercore.progress import out_console

    from . import preview as pv

    if tile < 16 or tile > 1024:
        raise ConfigError(f"must be between 16 and 1024 px, got {tile}", flag="--tile")
    if n < 1:
        raise ConfigError(f"must be at least 1, got {n}", flag="--n")
    if real_clean or real_dir:
        if not (real_clean and real_dir):
            raise ConfigError("give both --real-clean (clean images) and --real (real captures, same names)",
                              flag="--real" if real_clean else "--real-clean")
        if kind is None:
            raise ConfigError("say which simulator the real captures are compared with: --kind udc or "
                              "--kind lowlight", flag="--kind")
        if size < 8:
            raise ConfigError(f"must be at least 8 px, got {size}", flag="--size")
        from .calibration.pairs import find_pairs

        preset = preset or ("toled" if kind == "udc" else "lldif")
        with pv.flag_errors("--preset"):
            if kind == "udc":
                from .udc import make_udc

                deg = make_udc(preset)
                label = f"UDC {pv.preset_label(preset)}"
            else:
                from .lowlight import make_lowlight

                deg = make_lowlight(preset)
                label = f"low light ({pv.preset_label(preset)})"
        pairs = find_pairs(real_clean, real_dir, limit=n)
        sheet = pv.real_vs_sim_sheet(pairs, deg, sim_label=label, size=size, seed=seed, tile=tile,
                                     title=f"real {kind} captures vs simulator {pv.preset_label(preset)}: "
                                           f"shorter side {size} px, seed {seed}")
        what = f"{len(pairs)} pairs"
    else:
        if kind or preset:
            raise ConfigError("--kind and --preset go with --real-clean/--real; for the face sheet use "
                              "--udc and --lowlight", flag="--kind" if kind else "--preset")
        from fercore.cli import open_source

        from .lowlight import make_lowlight
        from .udc import make_udc

        size_list = pv.parse_sizes(sizes)
        source = open_source(src, root, src_opts)
        columns = [pv.Column("clean")]
        for p in pv.parse_names(udc_presets):
            with pv.flag_errors("--udc"):
                columns.append(pv.Column(f"UDC {pv.preset_label(p)}", make_udc(p, face_fraction=source.face_fraction)))
        for p in pv.parse_names(ll_presets):
            with pv.flag_errors("--lowlight"):
                columns.append(pv.Column(f"low light ({pv.preset_label(p)})", make_lowlight(p)))
        recs = pv.pick_records(source.records(split), n, seed)
        sheet = pv.contact_sheet([source.load(r) for r in recs], columns, size_list, ids=[r.id for r in recs],
                                 names=[r.class_name for r in recs], seed=seed, tile=tile,
                                 title=f"{src} {split} split, seed {seed}: resized to each size, then degraded")
        what = f"{len(recs)} faces x {len(size_list)} sizes x {len(columns)} columns"
    path = pv.save_png(out, sheet)
    out_console.print(f"{path}: {what}, {sheet.shape[1]} x {sheet.shape[0]} px", soft_wrap=True)


@main.command("verify")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="A folder written by a rebuild command.")
def verify(out: str) -> None:
    """Check a rebuilt set against its records; exit status 1 on any difference.

    Checks that run.json says the set is complete; that manifest.csv and the label files have
    the hashes run.json records (no edited row, label, class or parameter, no deleted row); that
    every image lies inside the folder and has its sha256; that the copy's label files give the
    manifest's labels; and that no other file is there. Reads nothing outside the folder.
    Two labs that rebuilt the same set with the same seed hold identical manifests
    (compare `manifest_sha256` in run.json); this confirms the files on disk still match theirs.

    Example: `fer-degrade verify --out degraded/udc-toled-sample-seed0`
    """
    import sys

    from fercore.progress import out_console

    from .rebuild import verify_dataset

    bad = verify_dataset(out)
    if not bad:
        out_console.print(f"{out}: complete; every image matches manifest.csv, and manifest.csv and the label "
                          "files match run.json", soft_wrap=True)
        return
    for m in bad[:50]:
        if m.detail:
            out_console.print(f"{m.problem}: {m.path}: {m.detail}", soft_wrap=True)
        else:
            out_console.print(f"{m.problem}: {m.path}" + (f" (expected {m.expected[:12]}..., got {m.actual[:12]}...)"
                                                          if m.actual else ""), soft_wrap=True)
    out_console.print(f"{len(bad)} mismatch(es)")
    sys.exit(1)



def _add_plugin_option() -> None:
    """``--import MODULE`` on the group and every command (fercore/plugins.py)."""
    from fercore.plugins import add_import_option

    add_import_option(main)


_add_plugin_option()


if __name__ == "__main__":
    main()
