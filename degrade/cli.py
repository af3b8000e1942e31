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


def run_rebuild(degradation, opts: RebuildOptions, preset: str) -> None:
    """Open the source, run :func:`degrade.rebuild.rebuild_dataset` and print a summary."""
    import shlex
    import sys

    from fercore.cli import open_source
    from fercore.progress import out_console

    from .rebuild import rebuild_dataset

    source = open_source(opts.src, opts.root, opts.src_opts)
    out = opts.out_dir(degradation.kind, preset)
    res = rebuild_dataset(degradation, source, out, seed=opts.seed, device=opts.device,
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
    """Options that configure the UDC simulator (shared by `udc` and `psf`)."""
    from .udc.displays import PRESETS

    @click.option("--display", type=click.Choice(list(PRESETS)), default="toled", show_default=True,
                  help="Display preset: transparent OLED (`toled`) or phone pentile OLED (`poled`).")
    @click.option("--display-mask", type=click.Path(dir_okay=False), default=None,
                  help="PNG of one unit cell of another panel (white = open); tiled with `--pitch-um`.")
    @click.option("--pitch-um", type=float, default=None, help="Unit-cell pitch in micrometres (preset's by default).")
    @click.option("--pixel-um", type=float, default=None,
                  help="Sensor size of one image pixel in micrometres (default 8): sets the PSF's size in pixels.")
    @click.option("--psf", "psf_file", type=click.Path(dir_okay=False), default=None,
                  help="Measured PSF (H x W x 3 .npy) to use instead of the computed one.")
    @click.option("--psf-scale", type=float, default=1.0, show_default=True,
                  help="Resize factor for --psf (e.g. 0.25 for a PSF measured at 4x the images' scale).")
    @click.option("--spectral", type=click.Choice(["peak", "band"]), default="peak", show_default=True,
                  help="One wavelength per channel, or 5 weighted by a Gaussian sensor response.")
    @click.option("--noise", type=click.Choice(["normal", "poisson", "none"]), default="normal", show_default=True,
                  help="Sensor noise: Poisson-Gaussian in Gaussian form, exact Poisson, or off.")
    @click.option("--flare/--no-flare", default=False, show_default=True,
                  help="Boost clipped highlights before the blur (flare).")
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
        settings = {"display_mask": display_mask, "pitch_um": pitch_um, "pixel_um": pixel_um, "psf": psf_file,
                    "psf_scale": psf_scale, "spectral": spectral, "noise": noise, "flare": flare}
        settings.update(parse_set(set_pairs, UDCSettings))
        if "display" in settings:
            display = settings.pop("display")
        return fn(*args, display=display, udc_settings=settings, **kwargs)

    return wrapper


@main.command("udc")
@rebuild_options
@udc_settings_options
@click.option("--dry-run", is_flag=True, help="Print the settings, PSF and image count, then stop.")
def udc(rebuild: RebuildOptions, display: str, udc_settings: dict, dry_run: bool) -> None:
    """Rebuild a dataset as seen through an under-display camera (UDC).

    Physically based: sRGB to linear light, the panel's transmittance (brightness and colour
    cast), its diffraction PSF (Fraunhofer, per colour), optional flare, Poisson-Gaussian sensor
    noise at the light that is left, the camera's gain, back to 8-bit sRGB. Every image's
    parameters come from (seed, image id), so the same command gives the same bytes.

    Examples:

    `fer-degrade udc` (the embedded sample set, T-OLED, into `degraded/udc-toled-sample-seed0`)

    `fer-degrade udc --src rafdb --root ~/data/RAF-DB --out udc-rafdb --display poled --seed 0`

    `fer-degrade udc --src kdef --root ~/data/KDEF --out udc-kdef --shard 0/2` (then `--shard 1/2`)
    """
    from fercore.progress import out_console

    from .udc import make_udc

    deg = make_udc(display, **udc_settings)
    if dry_run:
        from fercore.cli import open_source

        from .settings import settings_table

        for k, v in settings_table(deg.settings):
            out_console.print(f"{k:24s} {v}")
        out_console.print(f"{'nominal transmittance':24s} {[round(t, 4) for t in deg.nominal]}")
        out_console.print(f"{'psf':24s} {deg.describe()['psf']}")
        out_console.print(f"{'per-image parameters':24s} {deg.param_names()}")
        n = len(open_source(rebuild.src, rebuild.root, rebuild.src_opts).records(rebuild.split))
        out_console.print(f"{'images':24s} {n} -> {rebuild.out_dir('udc', deg.display.name)}")
        return
    run_rebuild(deg, rebuild, deg.display.name)


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
@click.option("--preset", type=click.Choice(["lldif", "realistic"]), default="lldif", show_default=True,
              help="`lldif`: the paper's four controls (exposure, white balance, highlights, shadows); "
                   "`realistic`: plus sensor noise and JPEG re-compression.")
@click.option("--set", "set_pairs", multiple=True, metavar="KEY=VALUE",
              help="Override a range or setting, repeatable: `--set exposure_ev=-4:-3`, `--set tint=0`, "
                   "`--set jpeg_quality=off`, `--set pivot=0.45`. See docs/lowlight.md or `--dry-run`.")
@click.option("--dry-run", is_flag=True, help="Print the ranges, settings and image count, then stop.")
def lowlight(rebuild: RebuildOptions, preset: str, set_pairs: tuple[str, ...], dry_run: bool) -> None:
    """Rebuild a dataset as a low-light copy (Lightroom-style edits, as LLDif made its sets).

    Exposure (EV, in linear light), white balance (temperature and tint on the Planckian
    locus), highlights and shadows (luminance-masked tone curves), drawn per image from the
    preset's ranges with (seed, image id); `realistic` adds shot/read sensor noise and JPEG.

    Examples:

    `fer-degrade lowlight` (the embedded sample set, preset lldif, into `degraded/lowlight-lldif-sample-seed0`)

    `fer-degrade lowlight --src rafdb --root ~/data/RAF-DB --out ll-rafdb --seed 0`

    `fer-degrade lowlight --src kdef --root ~/data/KDEF --preset realistic --set exposure_ev=-4:-2.5`
    """
    from fercore.progress import out_console
    from fercore.sources import parse_options

    from .lowlight import make_lowlight

    deg = make_lowlight(preset, **parse_options(set_pairs, flag="--set"))
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


if __name__ == "__main__":
    main()
