"""Export a JAFFE-sized labelled folder (10 people, ~210 images) from the embedded sample set.

The benchmark's claim that small real sets train is checked on a folder kept the way researchers
keep JAFFE or CK+: one folder per class with a numeric prefix (``1 - Happy``), file names that
start with the subject (``S051_happy_2.png``), no split given. This script writes such a folder
from the sample set (people 51-60 by default, 3 photos per person and expression: 210 images),
so that

    python scripts/make_small_folder.py --out /tmp/small-fer
    fer-bench run --datasets folder --root /tmp/small-fer --src-opt "subject=^(S\\d+)_" --methods cnn,scn

runs without any data download. Files are copied byte for byte (lossless PNG); the same
arguments give the same folder.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: JAFFE-style class folder names (numeric prefix, capitalised, adjective forms).
FOLDER_NAMES = {"surprise": "1 - Surprised", "fear": "2 - Fearful", "disgust": "3 - Disgusted",
                "happiness": "4 - Happy", "sadness": "5 - Sad", "anger": "6 - Angry", "neutral": "7 - Neutral"}


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write (must not exist, or be empty).")
@click.option("--people", default="51-60", show_default=True, help="Sample-set people, e.g. `51-60` or `1,5,9`.")
@click.option("--per-class", default=3, show_default=True, help="Photos per person and expression (1-5).")
@click.option("--seed", default=0, show_default=True, help="Seed of the sample set.")
def main(out: Path, people: str, per_class: int, seed: int) -> None:
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
    if out.exists() and any(out.iterdir()):
        raise click.BadParameter(f"{out} is not empty", param_hint="--out")
    root = build_sample(seed=seed)
    with open(root / "meta.csv", newline="") as fh:
        person = {r["id"]: int(r["person"]) for r in csv.DictReader(fh)}
    n = 0
    with open(root / "labels.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            p = person[row["id"]]
            shot = int(row["id"].rsplit("_", 1)[1])
            if p not in wanted or shot >= per_class:
                continue
            if row["class"] not in FOLDER_NAMES:
                raise ConfigError(f"unexpected class {row['class']!r} in {root / 'labels.csv'}")
            dst = out / FOLDER_NAMES[row["class"]] / f"S{p:03d}_{row['class']}_{shot}.png"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / row["path"], dst)
            n += 1
    click.echo(f"wrote {n} images of {len(wanted)} people to {out}")


if __name__ == "__main__":
    main()
