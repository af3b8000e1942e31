"""Build (and cache) the embedded sample set: rendered faces with the 7 basic expressions.

Layout of a built set (the ``folder`` layout, so any loader reads it)::

    <root>/train/<class>/<id>.png    100x100 RGB, lossless
    <root>/test/<class>/<id>.png
    <root>/labels.csv                id,split,label,class,path (label = index in BASIC7)
    <root>/meta.csv                  id,person,intensity,yaw,pitch,roll,AU1..AU26 (what was rendered)
    <root>/sample.json               build settings, counts and the toolkit version

Defaults (``data_manifests/sample.json``): 60 people, 5 photos of each person per
expression, people 1..48 in train and 49..60 in test (a split by identity), so 1,680 train and
420 test images, 240 / 60 per class. Built from ``seed`` alone: the same seed gives
byte-identical files, another seed a different set. Building takes a few seconds; the result
is cached under ``$FER_CACHE`` (default ``~/.cache/fer-toolkit``).
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
from contextlib import closing, contextmanager
from pathlib import Path

from data_manifests import load_manifest

from ..atomic import atomic_write_text, current_umask, remove_stale_temps, temp_prefix
from ..cache import cache_dir
from ..classes import BASIC7
from ..errors import ConfigError
from ..imageio import encode_image
from ..progress import make_progress
from ..seeding import numpy_rng
from .render import AU_NAMES, random_identity, random_shot, render_face

GENERATOR_VERSION = 1


def default_sample_root(seed: int = 0) -> Path:
    return cache_dir() / "sample" / f"v{GENERATOR_VERSION}-seed{seed}"


def sample_settings() -> dict:
    m = load_manifest("sample")
    return m["generator"]


def _rows_for(seed: int, settings: dict):
    people, per = settings["people"], settings["photos_per_expression"]
    n_train = settings["train_people"]
    for person in range(1, people + 1):
        ident = random_identity(numpy_rng(seed, "sample-identity", person))
        split = "train" if person <= n_train else "test"
        for label, cls in enumerate(BASIC7):
            for k in range(per):
                yield person, split, label, cls, f"p{person:02d}_{cls}_{k}", ident


def build_sample(root: str | Path | None = None, seed: int = 0, *, force: bool = False,
                 overrides: dict | None = None) -> Path:
    """Build the sample set into ``root`` (default: the cache) unless it is already there.

    ``overrides`` changes generator settings (e.g. ``{"people": 6}`` for a small set); the
    default cache is only used for the standard settings. The set is written into a
    temporary folder and renamed into place, so an interrupted build never leaves a
    half-built set behind.
    """
    settings = sample_settings()
    if overrides:
        unknown = set(overrides) - set(settings)
        if unknown:
            raise ConfigError(f"unknown sample setting(s) {sorted(unknown)}; known: {', '.join(settings)}")
        settings.update(overrides)
        if root is None:
            raise ConfigError("a sample set with non-default settings needs an explicit folder", flag="--out")
    if not 0 < settings["train_people"] < settings["people"]:
        raise ConfigError("train_people must be between 1 and people-1")
    root = Path(root) if root is not None else default_sample_root(seed)
    if (root / "sample.json").is_file() and not force:
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(root.parent, recursive=False)  # left by a build that was SIGKILLed
    with _terminate_cleanly():
        return _build_into(root, seed, settings, force)


@contextmanager
def _terminate_cleanly():
    """Turn SIGTERM into an exception while building (main thread only), so a killed build
    stops its worker processes and removes its temporary folder instead of leaving both."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _build_into(root: Path, seed: int, settings: dict, force: bool) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(root.name), suffix=".tmp", dir=root.parent))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp's 0700 would hide the set from lab-mates
        rows = list(_rows_for(seed, settings))
        labels, meta = [], []
        with closing(_render_all(rows, seed, settings)) as rendered:  # closed (workers stopped) on any exit
            for rel, data, lab, met in rendered:
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / rel).write_bytes(data)
                labels.append(lab)
                meta.append(met)
        _write_csv(tmp / "labels.csv", ["id", "split", "label", "class", "path"], labels)
        _write_csv(tmp / "meta.csv", ["id", "person", "intensity", "yaw", "pitch", "roll", *AU_NAMES], meta)
        from .. import __version__

        info = {"name": "sample", "generator_version": GENERATOR_VERSION, "seed": seed,
                "toolkit_version": __version__, "settings": settings, "classes": list(BASIC7),
                "counts": {s: {c: sum(1 for r in labels if r[1] == s and r[3] == c) for c in BASIC7}
                           for s in ("train", "test")}}
        atomic_write_text(tmp / "sample.json", json.dumps(info, indent=2) + "\n")
        if root.exists():
            if not force:  # another process finished first
                shutil.rmtree(tmp)
                return root
            shutil.rmtree(root)
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def _render_chunk(args) -> list[tuple[str, bytes, list, list]]:
    rows, seed, settings = args
    out = []
    for person, split, label, cls, rid, ident in rows:
        rng = numpy_rng(seed, "sample-shot", rid)
        shot = random_shot(rng, cls, ident, intensity=tuple(settings["intensity"]),
                           au_jitter=settings["au_jitter"], distractor=settings["distractor"])
        img = render_face(ident, shot, rng, size=settings["size"])
        rel = f"{split}/{cls}/{rid}.png"
        out.append((rel, encode_image(img, ".png"), [rid, split, label, cls, rel],
                    [rid, person, f"{shot.intensity:.4f}", f"{shot.yaw:.4f}", f"{shot.pitch:.4f}",
                     f"{shot.roll:.3f}"] + [f"{shot.aus[a]:.4f}" for a in AU_NAMES]))
    return out


def _render_all(rows, seed: int, settings: dict, chunk: int = 70):
    """Render in worker processes (each image depends only on its own seed, so the result
    is the same for any number of workers); yields results in input order."""
    chunks = [(rows[i:i + chunk], seed, settings) for i in range(0, len(rows), chunk)]
    workers = min(len(chunks), os.cpu_count() or 1, int(os.environ.get("FER_SAMPLE_WORKERS", "8")))
    with make_progress() as prog:
        task = prog.add_task("building sample set", total=len(rows))
        if workers <= 1:
            results = map(_render_chunk, chunks)
            pool = None
        else:
            pool = multiprocessing.get_context("spawn").Pool(workers)
            results = pool.imap(_render_chunk, chunks)
        try:
            for res in results:
                yield from res
                prog.advance(task, len(res))
        finally:
            if pool is not None:  # also when interrupted: no worker outlives the build
                pool.terminate()
                pool.join()


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
