"""68-point facial landmarks on the data side: detection (dlib, optional), caching, flipping.

Landmarks are computed once per image and cached with the dataset (``landmarks_for``); the
data pipeline transforms them together with the image (a horizontal flip mirrors x and swaps
left/right points with :data:`FLIP_68`). Coordinates are ``(x, y)`` in [0, 1] of the image,
in the iBUG 300-W 68-point order; a face that could not be fitted is all ``NaN``.

dlib is an optional extra (``pip install -e ".[landmarks]"``: dlib-bin plus the
shape-predictor file from face-recognition-models). The datasets the papers use are aligned
crops, so by default the whole image is taken as the face box (``detect=False``); set
``detect=True`` for unaligned photos.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np

from .atomic import atomic_open
from .errors import ConfigError
from .progress import track

#: Index of each point's mirror image under a horizontal flip (iBUG 68-point scheme).
FLIP_68 = np.array(
    list(range(16, -1, -1))                                   # jaw 0..16
    + list(range(26, 21, -1)) + list(range(21, 16, -1))       # brows 17..21 <-> 22..26
    + [27, 28, 29, 30] + [35, 34, 33, 32, 31]                 # nose bridge, nostrils
    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]     # eyes 36..41 <-> 42..47
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]        # outer lips 48..59
    + [64, 63, 62, 61, 60, 67, 66, 65])                       # inner lips 60..67


def flip_landmarks(points: np.ndarray) -> np.ndarray:
    """Landmarks of the horizontally flipped image: ``x -> 1 - x`` and left/right swapped.

    ``points``: ``(..., 68, 2)`` in [0, 1].
    """
    out = points[..., FLIP_68, :].copy()
    out[..., 0] = 1.0 - out[..., 0]
    return out


def predictor_path() -> Path:
    """Path of dlib's 68-point shape predictor shipped by ``face-recognition-models``."""
    spec = importlib.util.find_spec("face_recognition_models")  # its __init__ needs pkg_resources
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("68-point landmarks need the optional extra: pip install -e '.[landmarks]' "
                          "(dlib-bin and face-recognition-models), or use landmarks='none'",
                          flag="landmarks")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    if not path.is_file():
        raise ConfigError(f"shape predictor not found at {path}; reinstall face-recognition-models",
                          flag="landmarks")
    return path


class Dlib68:
    """dlib's 68-point shape predictor on RGB ``uint8`` images.

    With ``detect=False`` the whole image is the face box (aligned crops); with
    ``detect=True`` dlib's HOG detector finds the largest face first (images without a face
    get ``NaN`` landmarks).
    """

    def __init__(self, detect: bool = False, model_path: str | Path | None = None):
        try:
            import dlib
        except ImportError:
            raise ConfigError("dlib is not installed: pip install -e '.[landmarks]', or use "
                              "landmarks='none'", flag="landmarks") from None
        self._dlib = dlib
        self.detect = detect
        self.predictor = dlib.shape_predictor(str(model_path or predictor_path()))
        self.detector = dlib.get_frontal_face_detector() if detect else None

    def __call__(self, img: np.ndarray) -> np.ndarray:
        """``(68, 2)`` landmarks in [0, 1] for one ``H x W x 3`` ``uint8`` RGB image."""
        h, w = img.shape[:2]
        img = np.ascontiguousarray(img)
        if self.detector is not None:
            faces = self.detector(img, 1)
            if not faces:
                return np.full((68, 2), np.nan, np.float32)
            box = max(faces, key=lambda r: r.width() * r.height())
        else:
            box = self._dlib.rectangle(0, 0, w - 1, h - 1)
        shape = self.predictor(img, box)
        pts = np.array([(p.x, p.y) for p in shape.parts()], np.float32)
        pts[:, 0] /= w
        pts[:, 1] /= h
        return pts


def landmarks_for(source, records, cache_dir: str | Path, *, detect: bool = False) -> np.ndarray:
    """Landmarks of ``records`` (``(N, 68, 2)``), computed once and cached as ``.npy``.

    The cache file is keyed by the source's description and the record ids, so a degraded copy
    (another root) gets its own file. Writes are atomic.
    """
    ids = [r.id for r in records]
    key = hashlib.sha256(json.dumps([source.describe(), ids, detect], sort_keys=True,
                                    default=str).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"landmarks-{source.name}-{key}.npy"
    if path.is_file():
        arr = np.load(path)
        if arr.shape == (len(ids), 68, 2):
            return arr
    model = Dlib68(detect=detect)
    # float32, as stored: a fresh computation returns what a later call reads from the cache
    arr = np.stack([model(source.load(r)) for r in track(records, f"landmarks ({source.name})")]).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as fh:
        np.save(fh, arr)
    return arr
