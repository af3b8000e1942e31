"""Face crops of unaligned photos: the step between a folder as researchers keep it and a set
the methods can learn from.

RAF-DB, FERPlus and KDEF come as aligned face crops; JAFFE (256x256 with hair and background),
the original CK+ frames (640x490) and one's own photos do not. At the ``tiny`` presets' 64-px
input a JAFFE face is ~35 px wide uncropped, and the subject-independent accuracy of every method
falls (docs/benchmark.md, "Small real folders"). :func:`crop_folder` copies a folder, replacing
every image by a square crop around its largest face:

* the detector is dlib's HOG frontal-face detector (the ``landmarks`` extra: dlib-bin; no model
  file needed), run on the image, then once on the image upsampled 2x when it finds nothing;
* the box (:func:`square_box`) is a square of side ``(1 + 2 * margin) * max(face width, height)``
  centred on the face, moved inside the image (shrunk to the image's short side if larger);
* an image without a detected face is copied unchanged and listed in the report;
* every other file (label files, manifests) is copied byte for byte, so the copy is read with
  the same ``--src`` and ``--src-opt`` as the original. Cropped images keep their file name and
  format (JPEGs are re-encoded at quality 95; grey images are written as 3-channel grey).

The copy ends with ``crop.json`` (settings, detector, and per image its box or ``null``). Writes
are atomic; an interrupted crop resumes (``crop-partial.json`` marks a copy in progress with its
settings); re-running on a finished copy with the same settings does nothing, with other settings
it is refused. dlib's detector is deterministic: the same folder gives the same bytes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write_bytes, atomic_write_text
from .errors import ConfigError, DataError
from .imageio import IMAGE_EXTENSIONS, read_image, write_image
from .progress import track

#: ``(left, top, right, bottom)`` in pixels, right and bottom exclusive.
Box = tuple[int, int, int, int]
#: A face detector: ``H x W x 3`` ``uint8`` RGB -> the largest face's box, or ``None``.
Detector = Callable[[np.ndarray], "Box | None"]

REPORT, PARTIAL = "crop.json", "crop-partial.json"
#: Bumped when a change gives other crops of the same settings.
CROP_VERSION = 1


def square_box(face: Box, width: int, height: int, margin: float) -> Box:
    """A square around ``face``, ``margin`` of its size added on each side, inside the image.

    Args:
        face: ``(left, top, right, bottom)`` of the detected face (may reach outside the image).
        width, height: the image's size.
        margin: share of the face's larger side added on each side (``0.15``: side 1.3x the face).

    Returns:
        ``(left, top, right, bottom)`` with ``right - left == bottom - top`` (at most the image's
        short side), centred on the face, shifted (not cut) where it would leave the image.

    >>> square_box((100, 60, 180, 160), 256, 256, 0.25)
    (65, 35, 215, 185)
    >>> square_box((20, 10, 80, 70), 256, 200, 0.5)  # moved right and down to stay inside
    (0, 0, 120, 120)
    """
    if margin < 0:
        raise ConfigError(f"the crop margin must be >= 0, got {margin}", flag="--margin")
    left, top, right, bottom = face
    side = min(round(max(right - left, bottom - top) * (1 + 2 * margin)), width, height)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    x0 = int(min(max(round(cx - side / 2), 0), width - side))
    y0 = int(min(max(round(cy - side / 2), 0), height - side))
    return x0, y0, x0 + side, y0 + side


class DlibFaceDetector:
    """dlib's HOG frontal-face detector: the largest face of an RGB ``uint8`` image.

    Tries the image as it is, then upsampled once (2x) for small faces.
    """

    name = "dlib HOG frontal_face_detector (largest face; upsample 0, then 1)"

    def __init__(self):
        try:
            import dlib
        except ImportError:
            raise ConfigError("face detection needs dlib: pip install -e '.[landmarks]' (dlib-bin)",
                              flag="--detector") from None
        self.version = getattr(dlib, "__version__", "?")
        self._detect = dlib.get_frontal_face_detector()

    def __call__(self, img: np.ndarray) -> Box | None:
        img = np.ascontiguousarray(img)
        for upsample in (0, 1):
            faces = self._detect(img, upsample)
            if len(faces):
                r = max(faces, key=lambda r: (r.width() * r.height(), -r.left(), -r.top()))
                return r.left(), r.top(), r.right() + 1, r.bottom() + 1
        return None


def _settings(margin: float, detector: Any) -> dict[str, Any]:
    return {"version": CROP_VERSION, "margin": margin, "detector": getattr(detector, "name", type(detector).__name__)}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"unreadable crop record ({exc}); delete the folder and crop again", path) from None


def crop_folder(root: str | Path, out: str | Path, *, margin: float = 0.15,
                detector: Detector | None = None) -> dict[str, Any]:
    """Copy ``root`` to ``out`` with every image cropped to its largest face (module docstring).

    Returns the report written to ``out/crop.json``: ``settings``, ``images``, ``cropped``,
    ``no_face`` (paths relative to ``root``) and ``boxes`` (path -> ``[left, top, right,
    bottom]`` or ``None``).
    """
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise DataError("folder not found", root)
    if out.resolve() == root.resolve() or root.resolve() in out.resolve().parents:
        raise ConfigError(f"{out} is inside the folder it crops ({root}); choose another --out", flag="--out")
    detector = detector or DlibFaceDetector()
    settings = _settings(margin, detector)
    if (out / REPORT).is_file():
        report = _read_json(out / REPORT)
        if report.get("settings") != settings:
            raise ConfigError(f"{out} holds a crop with other settings ({report.get('settings')}); "
                              "choose another --out", flag="--out")
        return report
    if (out / PARTIAL).is_file():
        if _read_json(out / PARTIAL) != settings:
            raise ConfigError(f"{out} holds an interrupted crop with other settings; choose another --out",
                              flag="--out")
    elif out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty; choose a new folder", flag="--out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / PARTIAL, json.dumps(settings, sort_keys=True))

    inside = root.resolve()
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()
                   and inside in p.resolve().parents and p.relative_to(root).as_posix() not in (REPORT, PARTIAL))
    boxes: dict[str, list[int] | None] = {}
    for src in track(files, "cropping faces"):
        rel = src.relative_to(root).as_posix()
        dst = out / rel
        if src.suffix.lower() not in IMAGE_EXTENSIONS:
            if not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(dst, src.read_bytes(), fsync=False)
            continue
        img = read_image(src, exif=True)
        face = detector(img)
        box = None if face is None else square_box(face, img.shape[1], img.shape[0], margin)
        boxes[rel] = None if box is None else list(box)
        if dst.exists():
            continue  # written by the interrupted run (writes are atomic, so it is whole)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if box is None:
            shutil.copyfile(src, dst)
        else:
            x0, y0, x1, y1 = box
            write_image(dst, img[y0:y1, x0:x1])
    report = {"settings": settings, "root": str(root), "images": len(boxes),
              "cropped": sum(b is not None for b in boxes.values()),
              "no_face": sorted(k for k, b in boxes.items() if b is None), "boxes": boxes}
    atomic_write_text(out / REPORT, json.dumps(report, indent=1, sort_keys=True))
    (out / PARTIAL).unlink()
    return report
