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
* Every decode first reads the image's size from its header and refuses an image of more than
  :func:`max_pixels` pixels (default :data:`MAX_PIXELS`, 64 megapixels; environment variable
  ``FER_MAX_IMAGE_PIXELS``) with an :class:`~fercore.errors.ImageReadError` naming the file,
  which ``--on-error skip`` skips like any unreadable input: a small, highly compressed file
  (a "decompression bomb") cannot exhaust memory.
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


#: Largest image (width x height) any command decodes; see :func:`max_pixels`.
MAX_PIXELS = 64_000_000


def max_pixels() -> int:
    """The pixel limit: ``$FER_MAX_IMAGE_PIXELS`` when set (a positive integer), else :data:`MAX_PIXELS`."""
    import os

    text = os.environ.get("FER_MAX_IMAGE_PIXELS", "").strip()
    if not text:
        return MAX_PIXELS
    try:
        value = int(text)
        if value <= 0:
            raise ValueError(text)
    except ValueError:
        from .errors import ConfigError

        raise ConfigError(f"must be a positive integer, got {text!r}", flag="FER_MAX_IMAGE_PIXELS") from None
    return value


def header_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from an encoded image's header without decoding it (``None``: a format
    Pillow does not know; OpenCV's own limit then applies)."""
    import io
    import re
    import warnings

    from PIL import Image, UnidentifiedImageError

    limit = max_pixels()
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < limit:
        Image.MAX_IMAGE_PIXELS = limit  # a raised FER_MAX_IMAGE_PIXELS also raises Pillow's own check
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Image.DecompressionBombError as exc:  # far over any limit: Pillow refused the header
        m = re.search(r"\((\d+) pixels\)", str(exc))
        n = int(m.group(1)) if m else 2 * limit + 1
        return (n, 1)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return None


def check_pixels(data: bytes, name: str | Path) -> None:
    """Refuse an image whose header declares more than :func:`max_pixels` pixels."""
    size = header_size(data)
    limit = max_pixels()
    if size is not None and size[0] * size[1] > limit:
        w, h = size
        dims = f"{w}x{h}, " if h > 1 else ""
        raise ImageReadError(f"image is too large ({dims}{w * h / 1e6:.1f} megapixels; the limit is "
                             f"{limit / 1e6:g} megapixels, set FER_MAX_IMAGE_PIXELS to raise it)", name)


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
    check_pixels(data, name)
    arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageReadError("cannot decode image (corrupt or not an image)", name)
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
    return to_rgb8(arr, name=str(name))


def read_image(path: str | Path, *, exif: bool = False) -> np.ndarray:
    """Read an image file as ``H x W x 3`` ``uint8`` RGB (see module docstring).

    With ``exif``, the EXIF orientation tag (a phone photo stored sideways) is applied, so the
    array is upright as a photo viewer shows it (:func:`exif_orientation`).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError("file not found", path) from None
    except OSError as exc:
        raise ImageReadError(f"cannot read file ({exc.strerror or exc})", path) from None
    img = decode_image(data, path)
    return apply_orientation(img, exif_orientation(data)) if exif else img


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1..8) of an encoded image; 1 (upright) when absent or unreadable."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            value = int(im.getexif().get(0x0112, 1))
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, TypeError):
        return 1
    return value if 1 <= value <= 8 else 1


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a decoded ``H x W x C`` array upright for an EXIF orientation (1..8)."""
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],                          # mirrored
        3: lambda a: a[::-1, ::-1],                       # rotated 180
        4: lambda a: a[::-1],                             # flipped
        5: lambda a: a.transpose(1, 0, 2),                # transposed
        6: lambda a: np.rot90(a, -1),                     # rotated 90 clockwise to view
        7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],    # transversed
        8: lambda a: np.rot90(a, 1),                      # rotated 90 counter-clockwise to view
    }
    return np.ascontiguousarray(ops.get(orientation, ops[1])(img))


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
