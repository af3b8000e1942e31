"""Labelled contact sheets of the simulators (``fer-degrade preview``).

Two kinds of sheet, both built from pure functions that return ``H x W x 3`` uint8 RGB arrays:

* :func:`contact_sheet` -- the same faces, clean and through each degradation (columns), at
  several input sizes (row groups). Each face is resized to a size *first* and degraded at
  that size, so a UDC PSF that scales with the image (``reference_px``) shows at its true
  extent; every tile is then shown at one display size, magnified nearest-neighbour (the
  pixels stay visible) or reduced by area averaging.
* :func:`real_vs_sim_sheet` -- paired real captures: ``clean | real capture | simulator`` for
  each pair (:mod:`degrade.calibration.pairs`).

Every degraded tile comes from :func:`degrade.rebuild.degrade_batch` with the image's id and
the run seed, so a tile at an image's own size holds exactly the pixels a rebuild writes.
Labels are drawn with OpenCV's Hershey font (no font files; the same bytes on every run).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np

from fercore.errors import ConfigError
from fercore.seeding import derive_seed

#: Default input sizes (px) of the faces: FERPlus, RAF-DB / the sample set, a large crop.
DEFAULT_SIZES = (48, 100, 256)
#: Default display size (px) of one tile.
DEFAULT_TILE = 160

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK = (20, 20, 20)
_GREY = (110, 110, 110)
_PAPER = 255
#: Gap between tiles, extra gap between groups of rows, column-label band, title band (px).
PAD, GROUP_GAP, HEAD_H, TITLE_H = 4, 14, 28, 30


@dataclass(frozen=True)
class Column:
    """One column of a sheet: its label and the degradation (``None``: the clean image)."""

    label: str
    degradation: Any = None


# --------------------------------------------------------------------------- parsing
def parse_sizes(text: str | Sequence[int], flag: str = "--sizes") -> tuple[int, ...]:
    """``"48,100,256"`` -> ``(48, 100, 256)``; each size must be in 8..2048."""
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            sizes = tuple(int(p) for p in parts)
        except ValueError:
            raise ConfigError(f"expected comma-separated pixel sizes such as 48,100,256, got {text!r}",
                              flag=flag) from None
    else:
        sizes = tuple(int(s) for s in text)
    if not sizes:
        raise ConfigError("give at least one size, e.g. 100", flag=flag)
    bad = [s for s in sizes if not 8 <= s <= 2048]
    if bad:
        raise ConfigError(f"sizes must be between 8 and 2048 px, got {bad[0]}", flag=flag)
    return sizes


def parse_names(text: str | None) -> list[str]:
    """``"toled,poled"`` -> ``["toled", "poled"]``; ``""`` / ``"none"`` -> ``[]``."""
    if text is None:
        return []
    names = [p.strip() for p in text.split(",") if p.strip()]
    return [] if names in (["none"], ["off"]) else names


def preset_label(name: str) -> str:
    """A preset's short name for a label: the file stem for a ``.json`` path, else the name."""
    return Path(name).stem if name.lower().endswith(".json") else name


@contextlib.contextmanager
def flag_errors(flag: str) -> Iterator[None]:
    """Re-raise a :class:`ConfigError` (e.g. an unknown preset, reported under the simulator's
    own flag such as ``--display``) under ``flag``, the option the user typed."""
    try:
        yield
    except ConfigError as exc:
        msg = str(exc)
        if exc.flag and msg.startswith(f"{exc.flag}: "):
            msg = msg[len(exc.flag) + 2:]
        raise ConfigError(msg, flag=flag) from None


# ------------------------------------------------------------------------- choosing
def pick_records(records: Sequence[Any], n: int, seed: int) -> list[Any]:
    """``n`` records spread over the classes, chosen by ``seed``.

    The classes are put in an order drawn from the seed and visited round-robin; within a
    class the records are ranked by ``derive_seed(seed, "preview", id)``. The choice depends
    only on the records' ids and labels (not their order); the result is in pick order.
    """
    if n < 1:
        raise ConfigError(f"need at least one face, got {n}", flag="--n")
    if not records:
        raise ConfigError("the source has no images in this split", flag="--split")
    by_class: dict[int, list[Any]] = {}
    for r in sorted(records, key=lambda r: derive_seed(seed, "preview", str(r.id))):
        by_class.setdefault(int(r.label), []).append(r)
    order = sorted(by_class, key=lambda c: derive_seed(seed, "preview-class", c))
    out: list[Any] = []
    k = 0
    while len(out) < min(n, len(records)):
        for c in order:
            if k < len(by_class[c]) and len(out) < n:
                out.append(by_class[c][k])
        k += 1
    return out


# ------------------------------------------------------------------------- resizing
def square_resize(img: np.ndarray, size: int) -> np.ndarray:
    """The largest centred square of ``img``, resized to ``size x size`` (area when reducing,
    cubic when enlarging). A square image of that size is returned unchanged."""
    h, w = img.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    img = img[y0:y0 + s, x0:x0 + s]
    if s == size:
        return np.ascontiguousarray(img)
    interp = cv2.INTER_AREA if size < s else cv2.INTER_CUBIC
    return cv2.resize(img, (size, size), interpolation=interp)


def display_resize(img: np.ndarray, height: int) -> np.ndarray:
    """``img`` shown ``height`` px high (aspect kept): nearest-neighbour when enlarging, so the
    pixels stay visible; area averaging when reducing."""
    h, w = img.shape[:2]
    width = max(1, round(w * height / h))
    if (h, w) == (height, width):
        return img
    interp = cv2.INTER_NEAREST if height > h else cv2.INTER_AREA
    return cv2.resize(img, (width, height), interpolation=interp)


# ----------------------------------------------------------------------- degrading
def degrade_images(degradation, images: Sequence[np.ndarray], ids: Sequence[str], seed: int) -> list[np.ndarray]:
    """Each image through ``degradation`` exactly as a rebuild degrades the image with that id
    (:func:`degrade.rebuild.degrade_batch`, CPU). Images of one size go through as one batch."""
    import torch

    from .rebuild import degrade_batch

    if len(images) != len(ids):
        raise ValueError(f"{len(images)} images but {len(ids)} ids")
    out: list[np.ndarray | None] = [None] * len(images)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, img in enumerate(images):
        by_shape.setdefault(tuple(img.shape), []).append(i)
    for idx in by_shape.values():
        y, _ = degrade_batch([SimpleNamespace(id=ids[i]) for i in idx], degradation,
                             [np.ascontiguousarray(images[i]) for i in idx], seed, torch.device("cpu"))
        for j, i in enumerate(idx):
            out[i] = y[j]
    return out  # type: ignore[return-value]


def preview_tiles(images: Sequence[np.ndarray], columns: Sequence[Column], sizes: Sequence[int], *,
                  ids: Sequence[str] | None = None, seed: int = 0) -> list[list[list[np.ndarray]]]:
    """``tiles[s][i][c]``: face ``i`` resized to ``sizes[s]`` (:func:`square_resize`), then
    through column ``c``'s degradation at that size (the clean column: the resized face).

    ``ids`` are the images' ids (they key each image's random draws; default ``"0"``, ``"1"``...).
    """
    ids = [str(i) for i in range(len(images))] if ids is None else [str(i) for i in ids]
    out = []
    for size in sizes:
        resized = [square_resize(img, size) for img in images]
        per_col = [resized if col.degradation is None else degrade_images(col.degradation, resized, ids, seed)
                   for col in columns]
        out.append([[per_col[c][i] for c in range(len(columns))] for i in range(len(images))])
    return out


# ------------------------------------------------------------------------ drawing
def _text_size(text: str, scale: float, thickness: int) -> tuple[int, int, int]:
    (w, h), base = cv2.getTextSize(text, _FONT, scale, thickness)
    return w, h, base


def _fit_scale(text: str, width: int, scale: float, thickness: int) -> float:
    """The largest scale up to ``scale`` at which ``text`` fits ``width`` px."""
    w, _, _ = _text_size(text, scale, thickness)
    return scale if w <= width else max(0.3, scale * width / max(w, 1))


def _put(canvas: np.ndarray, text: str, x: int, y: int, scale: float, thickness: int = 1,
         colour=_INK, centre_width: int | None = None) -> None:
    """Draw ``text`` with its baseline at ``y``; centred in ``[x, x + centre_width)`` if given."""
    if centre_width is not None:
        scale = _fit_scale(text, centre_width - 4, scale, thickness)
        w, _, _ = _text_size(text, scale, thickness)
        x = x + (centre_width - w) // 2
    cv2.putText(canvas, text, (int(x), int(y)), _FONT, scale, colour, thickness, cv2.LINE_AA)


@dataclass(frozen=True)
class Layout:
    """Where :func:`render_grid` puts everything: the canvas size and each tile's top-left
    corner ``boxes[r][c] = (y, x)`` (a tile is centred in its cell)."""

    height: int
    width: int
    label_width: int
    column_x: tuple[int, ...]
    column_width: tuple[int, ...]
    row_y: tuple[int, ...]
    boxes: tuple[tuple[tuple[int, int], ...], ...]


def grid_layout(shapes: Sequence[Sequence[tuple[int, int]]], *, tile: int, n_groups: Sequence[int],
                title: bool, label_width: int) -> Layout:
    """The layout of a grid whose displayed tiles (``tile`` px high) have ``shapes[r][c] = (h, w)``,
    rows in groups of ``n_groups`` rows: ``TITLE_H`` (if ``title``) + ``HEAD_H`` + every row's
    ``tile + PAD`` + ``GROUP_GAP`` between groups + ``PAD`` high; ``label_width`` + every
    column's ``width + PAD`` + ``PAD`` wide."""
    n_cols = len(shapes[0])
    col_w = tuple(max(r[c][1] for r in shapes) for c in range(n_cols))
    xs = tuple(label_width + PAD + sum(w + PAD for w in col_w[:c]) for c in range(n_cols))
    ys = []
    y = (TITLE_H if title else 0) + HEAD_H
    for g, n in enumerate(n_groups):
        if g:
            y += GROUP_GAP
        for _ in range(n):
            ys.append(y)
            y += tile + PAD
    boxes = tuple(tuple((ys[r], xs[c] + (col_w[c] - shapes[r][c][1]) // 2) for c in range(n_cols))
                  for r in range(len(shapes)))
    return Layout(y + PAD, label_width + sum(w + PAD for w in col_w) + PAD, label_width, xs, col_w,
                  tuple(ys), boxes)


def render_grid(rows: Sequence[Sequence[np.ndarray]], column_labels: Sequence[str], row_labels: Sequence[str], *,
                tile: int = DEFAULT_TILE, groups: Sequence[tuple[str, int]] | None = None,
                title: str | None = None, label_width: int | None = None) -> np.ndarray:
    """Lay out ``rows`` of tiles (each ``rows[r][c]`` an ``h x w x 3`` uint8 image) on white.

    Every tile is shown ``tile`` px high (:func:`display_resize`) in a cell as wide as the
    widest tile of its column (:func:`grid_layout`). ``column_labels`` head the columns,
    ``row_labels`` sit left of each row; ``groups`` (``(label, number of rows)`` in order) adds
    a bold label at the start of each group of rows and a gap between groups; ``title`` a line
    on top.
    """
    if not rows:
        raise ValueError("nothing to draw")
    n_cols = len(column_labels)
    if any(len(r) != n_cols for r in rows):
        raise ValueError(f"every row needs {n_cols} tiles (one per column label)")
    if len(row_labels) != len(rows):
        raise ValueError(f"{len(rows)} rows but {len(row_labels)} row labels")
    groups = list(groups) if groups else [("", len(rows))]
    if sum(n for _, n in groups) != len(rows):
        raise ValueError("the groups' row counts must add up to the number of rows")
    shown = [[display_resize(np.asarray(t, np.uint8), tile) for t in r] for r in rows]
    if label_width is None:
        label_width = default_label_width(row_labels, [g for g, _ in groups])
    lay = grid_layout([[t.shape[:2] for t in r] for r in shown], tile=tile, n_groups=[n for _, n in groups],
                      title=bool(title), label_width=label_width)
    canvas = np.full((lay.height, lay.width, 3), _PAPER, np.uint8)
    title_h = TITLE_H if title else 0
    if title:
        _put(canvas, title, 8, 21, _fit_scale(title, lay.width - 16, 0.55, 1), 1, _INK)
    for c, lab in enumerate(column_labels):
        _put(canvas, lab, lay.column_x[c], title_h + HEAD_H - 9, 0.55, 1, _INK, centre_width=lay.column_width[c])
    r = 0
    for g, (glabel, n) in enumerate(groups):
        if g:
            yl = lay.row_y[r] - GROUP_GAP // 2 - 1
            cv2.line(canvas, (4, yl), (lay.width - 5, yl), (200, 200, 200), 1)
        for k in range(n):
            y = lay.row_y[r]
            if k == 0 and glabel:
                _put(canvas, glabel, 6, y + 22, _fit_scale(glabel, label_width - 10, 0.6, 2), 2, _INK)
            if row_labels[r]:
                lines = row_labels[r].split("\n")
                top = y + tile // 2 + (12 if glabel else 5) - 9 * (len(lines) - 1)
                for j, line in enumerate(lines):
                    _put(canvas, line, 6, top + 18 * j, _fit_scale(line, label_width - 10, 0.45, 1), 1, _GREY)
            for c in range(n_cols):
                t = shown[r][c]
                by, bx = lay.boxes[r][c]
                canvas[by:by + t.shape[0], bx:bx + t.shape[1]] = t
            r += 1
    return canvas


def default_label_width(row_labels: Sequence[str], group_labels: Sequence[str] = ()) -> int:
    """Width (px) of the label margin: the widest label plus a margin, at most 200."""
    need = [_text_size(line, 0.45, 1)[0] for t in row_labels if t for line in t.split("\n")]
    need += [_text_size(g, 0.6, 2)[0] for g in group_labels if g]
    return min(max(need + [40]) + 12, 200)


def contact_sheet(images: Sequence[np.ndarray], columns: Sequence[Column], sizes: Sequence[int] = DEFAULT_SIZES, *,
                  ids: Sequence[str] | None = None, names: Sequence[str] | None = None, seed: int = 0,
                  tile: int = DEFAULT_TILE, title: str | None = None) -> np.ndarray:
    """The labelled sheet: for every size (a group of rows labelled ``"<size> px"``) one row per
    face (labelled with ``names``, e.g. the class) and one column per :class:`Column`.

    ``images`` are clean ``H x W x 3`` uint8 faces; ``ids`` key their random draws (default:
    their positions). The same inputs and seed give the same array.
    """
    if not images:
        raise ConfigError("no faces to show", flag="--n")
    if not columns:
        raise ConfigError("no columns to show", flag="--udc")
    tiles = preview_tiles(images, columns, sizes, ids=ids, seed=seed)
    rows = [row for per_size in tiles for row in per_size]
    names = [""] * len(images) if names is None else list(names)
    return render_grid(rows, [c.label for c in columns], names * len(sizes), tile=tile,
                       groups=[(f"{s} px", len(images)) for s in sizes], title=title)


def real_vs_sim_tiles(pairs: Sequence[Any], degradation, *, size: int | None = 100,
                      seed: int = 0) -> list[list[np.ndarray]]:
    """``[clean, real, simulated]`` for each pair: both images resized so the shorter side is
    ``size`` (:func:`degrade.calibration.pairs.load_pair`), the simulator applied to the clean
    one with the pair's name as its id (:func:`degrade.calibration.pairs.simulate`)."""
    from .calibration.pairs import load_pair, simulate

    out = []
    for p in pairs:
        clean, real = load_pair(p, size)
        out.append([clean, real, simulate(degradation, clean, p.name, seed)])
    return out


def real_vs_sim_sheet(pairs: Sequence[Any], degradation, *, sim_label: str, size: int | None = 100, seed: int = 0,
                      tile: int = DEFAULT_TILE, title: str | None = None) -> np.ndarray:
    """The labelled ``clean | real capture | simulator`` sheet, one row per pair (labelled
    with its name)."""
    if not pairs:
        raise ConfigError("no pairs to show", flag="--real")
    rows = real_vs_sim_tiles(pairs, degradation, size=size, seed=seed)
    return render_grid(rows, ["clean", "real capture", sim_label], [_short(p.name) for p in pairs],
                       tile=tile, title=title)


def _short(name: str, width: int = 14, lines: int = 3) -> str:
    """``name`` broken into lines of at most ``width`` characters (after ``_``, ``-``, ``.`` or
    a space where possible), at most ``lines`` lines (the start dropped, marked ``...``)."""
    out: list[str] = []
    rest = name
    while rest:
        if len(rest) <= width:
            out.append(rest)
            break
        cut = max(rest.rfind(ch, 0, width) for ch in "_-. ")
        cut = cut + 1 if cut > 0 else width
        out.append(rest[:cut])
        rest = rest[cut:]
    if len(out) > lines:
        out = ["..." + out[-lines][-(width - 3):]] + out[-lines + 1:]
    return "\n".join(out)


def save_png(path: str | Path, sheet: np.ndarray) -> Path:
    """Encode ``sheet`` as PNG and write it atomically; returns the path."""
    from fercore.atomic import atomic_write_bytes
    from fercore.imageio import encode_image

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"the sheet is written as PNG; name the file *.png, got {path.name!r}", flag="--out")
    atomic_write_bytes(path, encode_image(sheet, ".png"), fsync=False)
    return path
