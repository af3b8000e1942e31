"""Image I/O used by every command: 8-bit RGB in, 8-bit RGB out.

* :func:`read_image` decodes any file OpenCV reads (JPEG, PNG, BMP, TIFF, ...) into an
  ``H x W x 3`` ``uint8`` RGB array. Grey images are promoted to RGB, an alpha channel is
  dropped, 16-bit images are reduced to 8 bits. A missing, empty or undecodable file raises
  :class:`~fercore.errors.ImageReadError` naming the file.
* :func:`write_image` encodes by file extension and writes atomically, so an interrupted run
  never leaves half an image behind. Encoding is deterministic: the same array, extension and
  quality give the same bytes with the same OpenCV build.
* :func:`verify_image` is the strict check used by ``fer-bench data check``: besides decoding,
  it rejects truncated JPEG/PNG files that lenient decoders would silently pad with grey.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .atomic import atomic_write_bytes
from .errors import ImageReadError

#: Extensions recognised as images when scanning folders (lower case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

#: Default JPEG quality for written JPEG files (the degraded copies of RAF-DB and KDEF).
JPEG_QUALITY = 95
#: zlib level of every PNG the toolkit writes (recorded in rebuilt sets' run records).
PNG_COMPRESSION = 6


def to_rgb8(img: np.ndarray, *, name: str = "<array>") -> np.ndarray:
    """Normalise a decoded array to contiguous ``H x W x 3`` ``uint8`` RGB.

    Accepts grey (``H x W`` or ``H x W x 1``), RGB and RGBA (alpha dropped); ``uint16`` is
    scaled to 8 bits. Colour order is assumed RGB already.
    """
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageReadError(f"unsupported pixel type {img.dtype}; expected 8- or 16-bit", name)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.ndim == 3 and img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    elif not (img.ndim == 3 and img.shape[2] == 3):
        raise ImageReadError(f"unsupported image shape {img.shape}", name)
    return np.ascontiguousarray(img)


def decode_image(data: bytes, name: str | Path = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes to ``H x W x 3`` ``uint8`` RGB."""
    if not data:
        raise ImageReadError("file is empty", name)
    arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageReadError("cannot decode image (corrupt or not an image)", name)
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
    return to_rgb8(arr, name=str(name))


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as ``H x W x 3`` ``uint8`` RGB (see module docstring)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError("file not found", path) from None
    except OSError as exc:
        raise ImageReadError(f"cannot read file ({exc.strerror or exc})", path) from None
    return decode_image(data, path)


def encode_image(img: np.ndarray, ext: str, *, jpeg_quality: int = JPEG_QUALITY) -> bytes:
    """Encode an ``H x W x 3`` ``uint8`` RGB array by extension (``.png``, ``.jpg``, ...)."""
    ext = ext.lower() if ext.startswith(".") else "." + ext.lower()
    img = to_rgb8(np.asarray(img))
    params: list[int] = []
    if ext in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    elif ext == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]
    ok, buf = cv2.imencode(ext, cv2.cvtColor(img, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ImageReadError(f"OpenCV cannot encode {ext} images", ext)
    return buf.tobytes()


def write_image(path: str | Path, img: np.ndarray, *, jpeg_quality: int = JPEG_QUALITY) -> bytes:
    """Encode ``img`` by the extension of ``path`` and write it atomically. Returns the bytes."""
    path = Path(path)
    data = encode_image(img, path.suffix, jpeg_quality=jpeg_quality)
    atomic_write_bytes(path, data, fsync=False)
    return data


def verify_image(path: str | Path) -> np.ndarray:
    """Strictly decode ``path``: also reject truncated files. Returns the RGB array.

    OpenCV decodes a truncated JPEG with a warning and grey padding; Pillow's full decode
    raises instead, so a data check reports such files as corrupt.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    img = read_image(path)
    try:
        with Image.open(path) as im:
            im.load()
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise ImageReadError(f"corrupt image ({exc})", path) from None
    return img
