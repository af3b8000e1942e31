"""``fer-bench``: the benchmark's command line."""

from __future__ import annotations

import sys

import rich_click as click

from fercore import __version__
from fercore.cli import FerGroup, open_source, source_options
from fercore.progress import console, out_console


@click.group(cls=FerGroup)
@click.version_option(__version__, prog_name="fer-bench")
def main() -> None:
    """Benchmark FER methods on clean and degraded datasets and regenerate the papers' tables.

    Datasets are licence-gated: bring your copy and point `--root` at it. Without data,
    everything runs on the embedded sample set.
    """


@main.group(cls=FerGroup)
def data() -> None:
    """Inspect and validate datasets (your copies of RAF-DB, FERPlus, KDEF, folders, the sample set)."""


@data.command("check")
@source_options(default_src="sample")
@click.option("--no-images", is_flag=True, help="Skip decoding every image (layout and labels only; much faster).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the full report (every problem) as JSON to this file.")
@click.option("--limit", default=50, show_default=True, help="Problems printed per kind.")
def data_check(src: str, root: str | None, src_opts: tuple[str, ...], no_images: bool,
               report_path: str | None, limit: int) -> None:
    """Compare a dataset copy with its manifest in `data_manifests/`.

    Prints images per split and class (with the expected counts) and every missing, extra,
    unreadable or corrupt file and every bad label line. Exit status 1 on any mismatch.

    Example: `fer-bench data check --src rafdb --root ~/data/RAF-DB`
    """
    from .datacheck import print_report, save_report

    source = open_source(src, root, src_opts)
    report = source.check(verify_images=not no_images)
    print_report(report, out_console, limit=limit)
    if report_path:
        save_report(report, report_path)
        console.print(f"full report written to {report_path}")
    sys.exit(0 if report.ok else 1)


@data.command("sources")
def data_sources() -> None:
    """List the dataset sources and their `--src-opt` options."""
    from rich.table import Table

    from fercore.sources import SOURCES

    t = Table(show_lines=True)
    t.add_column("--src")
    t.add_column("what")
    t.add_column("--src-opt KEY=VALUE (default)")
    for name, cls in SOURCES.items():
        opts = "\n".join(f"{k}={o.default}: {o.help}" for k, o in cls.options.items()) or "-"
        t.add_row(name, cls.description, opts)
    out_console.print(t)


@data.command("build-sample")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Where to build the set (default: the cache, $FER_CACHE or ~/.cache/fer-toolkit).")
@click.option("--seed", default=0, show_default=True, help="Seed of the generated set.")
@click.option("--force", is_flag=True, help="Rebuild even if the set exists.")
def data_build_sample(out: str | None, seed: int, force: bool) -> None:
    """Build the embedded sample set (rendered faces, 7 expressions, 1,680 train / 420 test).

    Example: `fer-bench data build-sample --out sample-set --seed 0`
    """
    from fercore.sample.build import build_sample, default_sample_root

    root = build_sample(out or default_sample_root(seed), seed, force=force)
    out_console.print(str(root))


@data.command("crop")
@click.option("--root", type=click.Path(file_okay=False, exists=True), required=True,
              help="Folder of unaligned photos (any layout: class folders, split folders, label files).")
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="New folder: the same layout with every image cropped to its largest face.")
@click.option("--margin", default=0.15, show_default=True, type=click.FloatRange(min=0),
              help="Share of the face's size added on each side of the square crop.")
def data_crop(root: str, out: str, margin: float) -> None:
    """Crop every image of a folder to its largest face (dlib's detector; the `landmarks` extra).

    For unaligned photos (JAFFE, CK+'s original frames, your own): the copy keeps the layout and
    file names, so read it with the same `--src` / `--src-opt`. Images without a face are copied
    unchanged and listed in `OUT/crop.json`. An interrupted crop resumes.

    Example: `fer-bench data crop --root ~/data/JAFFE --out ~/data/JAFFE-faces`
    """
    from fercore.facecrop import crop_folder

    report = crop_folder(root, out, margin=margin)
    missed = report["no_face"]
    console.print(f"{report['cropped']} of {report['images']} images cropped to their face"
                  + (f"; no face found in {len(missed)} (copied unchanged): {', '.join(missed[:5])}"
                     + (" ..." if len(missed) > 5 else "") if missed else ""))
    out_console.print(out)


@data.command("show")
@source_options(default_src="sample")
@click.option("--split", default=None, help="Only this split (train, val, test).")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="PNG file for the contact sheet.")
@click.option("--per-class", default=8, show_default=True, help="Images per class.")
def data_show(src: str, root: str | None, src_opts: tuple[str, ...], split: str | None, out: str,
              per_class: int) -> None:
    """Save a contact sheet (one row per class) to look at a dataset.

    Example: `fer-bench data show --src sample --out sheet.png`
    """
    from .contact_sheet import contact_sheet

    source = open_source(src, root, src_opts)
    contact_sheet(source, out, split=split, per_class=per_class)
    out_console.print(out)


@main.group(cls=FerGroup)
def weights() -> None:
    """Check pretrained weights files (MS-Celeb-1M, ImageNet, VGGFace2) before training with them."""


@weights.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--backbone", default=None, help="Backbone to load into (resnet18, resnet50, resnet50-caffe, ir50, ...).")
@click.option("--method", default=None, help="Or: a method (its backbone; MA-Net: the whole network).")
@click.option("--preset", default=None, help="Preset of --method (default: paper).")
@click.option("--all", "show_all", is_flag=True, help="List every tensor name, not the first few.")
def weights_check(path: str, backbone: str | None, method: str | None, preset: str | None, show_all: bool) -> None:
    """Show which tensors of a weights file load (name and shape match), which the backbone
    misses, which the file has in excess, and which differ in shape. Exit status 1 when a
    backbone tensor is missing.

    Example: `fer-bench weights check ~/weights/resnet18_msceleb.pth --backbone resnet18`
    """
    from .weights import check_weights, print_weights_report

    report = check_weights(path, backbone, method, preset)
    print_weights_report(report, out_console, show_all)
    sys.exit(1 if report.missing else 0)


@weights.command("convert")
@click.argument("src", type=click.Path(dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@click.option("--trust-code", is_flag=True,
              help="Required: loading SRC runs any code inside it, with your permissions.")
def weights_convert(src: str, dst: str, trust_code: bool) -> None:
    """Convert a legacy pickle that the safe loader refuses into a plain state dict.

    Every other command reads weights with `torch.load(weights_only=True)`: tensors, arrays and
    plain containers only, so no code inside a file ever runs. Old checkpoints that pickle
    whole modules or custom classes are refused there. This command unpickles SRC **with** code
    execution (only with `--trust-code`: use it only for a file whose origin you trust, never
    for a file you downloaded from a stranger) and writes its tensors to DST as
    `{"state_dict": {name: tensor}}`, which the safe loader reads. See docs/security.md.

    Example: `fer-bench weights convert old_model.pth.tar model-tensors.pt --trust-code`
    """
    from fercore.safeload import convert_untrusted

    res = convert_untrusted(src, dst, trust_code=trust_code)
    out_console.print(f"{src} -> {res['dst']}: {res['tensors']} tensors (a plain state dict; safe to load)")


def _add_benchmark_commands() -> None:
    """``run``, ``tables``, ``figures``, ``reproduce``, ``robustness`` (benchmark/commands.py) and
    ``report`` (benchmark/report.py); then ``--import MODULE`` on the group and every command
    (fercore/plugins.py)."""
    from fercore.plugins import add_import_option

    from .commands import COMMANDS
    from .report import report_cmd

    for cmd in COMMANDS:
        main.add_command(cmd)
    main.add_command(report_cmd)
    add_import_option(main)


_add_benchmark_commands()


if __name__ == "__main__":
    main()
