"""Write a small labelled face folder (150-250 images) the way researchers keep JAFFE or CK+.

The benchmark's claim that small real sets train (``fer-bench run --datasets folder``) is checked
on folders kept as researchers keep them: one folder per class, file names that start with the
subject, no split given. Three sources:

* ``--from sample`` (default, no download): JAFFE-sized, from the embedded sample set's rendered
  faces (people 51-60, 3 photos per person and expression: 210 images), JAFFE-style class
  folders (``1 - Happy``), files ``S051_happy_2.png``;
* ``--from ckplus48 --src DIR``: a subset of your copy of CK+48 (the 48x48 crops of CK+'s last
  three frames per sequence, ``DIR/<class>/S010_004_00000017.png``; 981 images, 118 subjects):
  the largest evenly spaced set of subjects whose images fit ``--max-images``, with the last frame
  of each sequence (``--frames last``) or all three (``--frames all``);
* ``--from jaffe --src DIR``: your copy of JAFFE (213 files ``KA.AN1.39.tiff`` in one folder,
  10 subjects), sorted into JAFFE-style class folders (``1 - Angry`` ...).

Then::

    python scripts/make_small_folder.py --out /tmp/small-fer
    fer-bench run --datasets folder --root /tmp/small-fer --src-opt "subject=^(S\\d+)_" --methods cnn,scn
    # JAFFE's subjects are the two letters before the first dot:
    fer-bench run --datasets folder --root /tmp/jaffe --src-opt "subject=^([A-Z]{2})\\." --methods cnn,scn

Files are copied byte for byte; the same arguments give the same folder. Neither CK+ nor JAFFE is
in this repository (their licences do not allow redistribution); docs/benchmark.md names where the
measured copies came from.
"""

from __future__ import annotations

import csv
import re
import shutil
import sys
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: JAFFE-style class folder names (numeric prefix, capitalised, adjective forms).
FOLDER_NAMES = {"surprise": "1 - Surprised", "fear": "2 - Fearful", "disgust": "3 - Disgusted",
                "happiness": "4 - Happy", "sadness": "5 - Sad", "anger": "6 - Angry", "neutral": "7 - Neutral"}

#: JAFFE's expression codes (``KA.AN1.39.tiff``) and the class folders they go to.
JAFFE_CODES = {"AN": "1 - Angry", "DI": "2 - Disgust", "FE": "3 - Fear", "HA": "4 - Happy",
               "NE": "5 - Neutral", "SA": "6 - Sad", "SU": "7 - Surprise"}
JAFFE_FILE = re.compile(r"^([A-Z]{2})\.([A-Z]{2})\d*\.\d+\.tiff?$", re.I)
CKPLUS_FILE = re.compile(r"^(S\d+)_(\d+)_(\d+)\.png$", re.I)


def from_sample(out: Path, people: str, per_class: int, seed: int) -> list[tuple[Path, Path]]:
    """(source, destination) pairs of the sample-set export."""
    from fercore.errors import ConfigError
    from fercore.sample.build import build_sample

    try:
        if "-" in people:
            a, b = (int(x) for x in people.split("-", 1))
            wanted = set(range(a, b + 1))
        else:
            wanted = {int(x) for x in people.split(",") if x.strip()}
    except ValueError:
        raise click.BadParameter(f"not a people list: {people!r} (use 51-60 or 1,5,9)", param_hint="--people") from None
    if not wanted:
        raise click.BadParameter(f"{people!r} selects nobody (use 51-60 or 1,5,9)", param_hint="--people")
    if not 1 <= per_class <= 5:
        raise click.BadParameter("must be 1-5 (the sample set has 5 photos per person and expression)",
                                 param_hint="--per-class")
    root = build_sample(seed=seed)
    with open(root / "meta.csv", newline="") as fh:
        person = {r["id"]: int(r["person"]) for r in csv.DictReader(fh)}
    pairs = []
    with open(root / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            p = person[row["id"]]
            shot = int(row["id"].rsplit("_", 1)[1])
            if p not in wanted or shot >= per_class:
                continue
            if row["class"] not in FOLDER_NAMES:
                raise ConfigError(f"unexpected class {row['class']!r} in {root / 'labels.csv'}")
            pairs.append((root / row["path"], out / FOLDER_NAMES[row["class"]] / f"S{p:03d}_{row['class']}_{shot}.png"))
    return pairs


def from_ckplus48(src: Path, out: Path, max_images: int, frames: str) -> list[tuple[Path, Path]]:
    """The largest evenly spaced subset of CK+48's subjects whose chosen frames fit ``max_images``."""
    by_subject: dict[str, dict[tuple[str, str], list[Path]]] = {}
    for class_dir in sorted(p for p in src.iterdir() if p.is_dir()):
        for f in sorted(class_dir.iterdir()):
            m = CKPLUS_FILE.match(f.name)
            if m:
                by_subject.setdefault(m[1], {}).setdefault((class_dir.name, m[2]), []).append(f)
    if not by_subject:
        raise click.BadParameter(f"{src}: no CK+48 files (<class>/S010_004_00000017.png) found", param_hint="--src")

    def chosen_files(subject: str) -> list[tuple[str, Path]]:
        return [(c, f) for (c, _seq), fs in sorted(by_subject[subject].items())
                for f in (fs[-1:] if frames == "last" else fs)]

    subjects = sorted(by_subject)
    for k in range(len(subjects), 0, -1):
        picked = [subjects[round(i * (len(subjects) - 1) / max(k - 1, 1))] for i in range(k)]
        if sum(len(chosen_files(s)) for s in picked) <= max_images:
            break
    else:
        raise click.BadParameter(f"{max_images} is smaller than one subject's images", param_hint="--max-images")
    return [(f, out / c / f.name) for s in picked for c, f in chosen_files(s)]


def from_jaffe(src: Path, out: Path) -> list[tuple[Path, Path]]:
    """JAFFE's flat folder sorted into class folders (file names unchanged: they start with the subject)."""
    pairs = []
    for f in sorted(src.rglob("*")):
        m = JAFFE_FILE.match(f.name)
        if m and f.is_file() and m[2].upper() in JAFFE_CODES:
            pairs.append((f, out / JAFFE_CODES[m[2].upper()] / f.name))
    if not pairs:
        raise click.BadParameter(f"{src}: no JAFFE files (KA.AN1.39.tiff) found", param_hint="--src")
    return pairs


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write (must not exist, or be empty).")
@click.option("--from", "source", type=click.Choice(["sample", "ckplus48", "jaffe"]), default="sample",
              show_default=True, help="Where the images come from.")
@click.option("--src", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="With --from ckplus48|jaffe: your copy of the data set.")
@click.option("--people", default="51-60", show_default=True, help="--from sample: people, e.g. `51-60` or `1,5,9`.")
@click.option("--per-class", default=3, show_default=True, help="--from sample: photos per person and expression (1-5).")
@click.option("--seed", default=0, show_default=True, help="--from sample: seed of the sample set.")
@click.option("--max-images", default=220, show_default=True, help="--from ckplus48: at most this many images.")
@click.option("--frames", type=click.Choice(["last", "all"]), default="last", show_default=True,
              help="--from ckplus48: each sequence's last frame, or all three.")
def main(out: Path, source: str, src: Path | None, people: str, per_class: int, seed: int,
         max_images: int, frames: str) -> None:
    if out.exists() and any(out.iterdir()):
        raise click.BadParameter(f"{out} is not empty", param_hint="--out")
    if source != "sample" and src is None:
        raise click.BadParameter(f"--from {source} needs --src DIR (your copy of the data set)", param_hint="--src")
    if source == "sample":
        pairs = from_sample(out, people, per_class, seed)
    elif source == "ckplus48":
        pairs = from_ckplus48(src, out, max_images, frames)
    else:
        pairs = from_jaffe(src, out)
    for a, b in pairs:
        b.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(a, b)
    subjects = {re.split(r"[._]", b.name, maxsplit=1)[0] for _, b in pairs}
    click.echo(f"wrote {len(pairs)} images of {len(subjects)} subjects in {len({b.parent for _, b in pairs})} "
               f"classes to {out}")


if __name__ == "__main__":
    main()
