"""Paired folders of clean and really-degraded images of the same scenes, and the simulator
applied to the clean ones exactly as a rebuild would apply it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import torch

from fercore.errors import ConfigError
from fercore.imageio import IMAGE_EXTENSIONS, read_image

#: Image file extensions a pair folder may hold.


@dataclass(frozen=True)
class Pair:
    """One scene: its name (the file stem both folders share) and the two images' paths."""

    name: str
    clean: Path
    real: Path


def _images(folder: Path, flag: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a folder", flag=flag)
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
            if p.stem in out:
                raise ConfigError(f"{folder}: two images named {p.stem!r} ({out[p.stem].name}, {p.name})", flag=flag)
            out[p.stem] = p
    return out


def read_folder(folder: str | Path, flag: str) -> list[np.ndarray]:
    """Every image of a folder (sorted by name), decoded to uint8 RGB."""
    return [read_image(p) for p in _images(Path(folder), flag).values()]


def find_pairs(clean_dir: str | Path, real_dir: str | Path, *, limit: int | None = None,
               exclude: tuple[str, ...] = ()) -> list[Pair]:
    """The scenes both folders hold (matched by file name without extension), sorted by name.

    ``exclude`` drops named scenes (e.g. pairs known not to show the same scene). An empty
    match is an error naming both folders.
    """
    clean = _images(Path(clean_dir), "--clean")
    real = _images(Path(real_dir), "--real")
    names = sorted((set(clean) & set(real)) - set(exclude), key=_natural)
    if not names:
        raise ConfigError(f"no image names in common between {clean_dir} and {real_dir}; the two folders "
                          "must hold the same scenes under the same file names", flag="--real")
    if limit is not None:
        names = names[:limit]
    return [Pair(n, clean[n], real[n]) for n in names]


def _natural(name: str):
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def resize_short(img: np.ndarray, short: int | None) -> np.ndarray:
    """Resize so the shorter side is ``short`` pixels (area interpolation); ``None`` keeps it."""
    if short is None:
        return img
    h, w = img.shape[:2]
    s = short / min(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    if size == (w, h):
        return img
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)


def load_pair(pair: Pair, short: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(clean, real)`` uint8 RGB arrays of one size (the real capture resized to the clean
    image's size if they differ), then both resized to ``short`` (shorter side), if given."""
    clean, real = read_image(pair.clean), read_image(pair.real)
    if real.shape != clean.shape:
        real = cv2.resize(real, (clean.shape[1], clean.shape[0]), interpolation=cv2.INTER_AREA)
    return resize_short(clean, short), resize_short(real, short)


def iter_pairs(pairs: list[Pair], short: int | None = None) -> Iterator[tuple[Pair, np.ndarray, np.ndarray]]:
    for p in pairs:
        clean, real = load_pair(p, short)
        yield p, clean, real


def simulate(degradation, clean: np.ndarray, name: str, seed: int = 0) -> np.ndarray:
    """The simulator applied to one clean ``H x W x 3`` uint8 image, with the parameters and
    noise a rebuild would draw for an image whose id is ``name`` (:func:`degrade.rebuild.degrade_batch`)."""
    from ..rebuild import degrade_batch

    out, _ = degrade_batch([SimpleNamespace(id=name)], degradation, [clean], seed, torch.device("cpu"))
    return out[0]
