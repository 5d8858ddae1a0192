"""Decoding one item's pixels: checks before decoding, EXIF rotation, what was converted.

Every failure is a one-line `DataError` naming the file: empty, unreadable (permissions), not
an image, truncated or corrupt, larger than `max_pixels` (checked from the header, before any
pixel is decoded), smaller than `MIN_SIZE`. What was changed to make a gray 8-bit image is
returned as notes (``"16-bit scaled to 8-bit"``, ``"EXIF rotation applied"``, ...), which
``usgan data info`` counts.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from ...errors import DataError
from ..preprocess import MAX_PIXELS_ENV, MIN_SIZE, max_pixels, to_gray

if TYPE_CHECKING:
    from .base import Item

# Formats PIL may open (by content, whatever the extension); others (EPS, ...) are refused.
WANTED_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "GIF", "WEBP", "PPM")
SUFFIX_FORMATS = {
    ".png": {"PNG"},
    ".jpg": {"JPEG", "MPO"},
    ".jpeg": {"JPEG", "MPO"},
    ".bmp": {"BMP"},
    ".tif": {"TIFF"},
    ".tiff": {"TIFF"},
}
NOTE_EXIF = "EXIF rotation applied"
NOTE_FORMAT = "format differs from extension (read by content)"
NOTE_FRAMES = "first frame of a multi-frame file"
NOTE_ARRAY = "non-uint8 array clipped to 8-bit"


def too_large(where: object, width: int, height: int, limit: int) -> DataError:
    """The error for an image declaring more than ``limit`` pixels."""
    return DataError(
        f"{where} declares {width}x{height} pixels ({width * height:,}), more than the limit of "
        f"{limit:,}; refused before decoding (raise it with {MAX_PIXELS_ENV} if the image is real)"
    )


def _formats() -> tuple[str, ...]:
    """`WANTED_FORMATS` that this PIL build can open (WEBP may be missing)."""
    Image.init()
    return tuple(f for f in WANTED_FORMATS if f in Image.OPEN)


def _open_file(path: Path, notes: list[str]) -> np.ndarray:
    try:
        size = path.stat().st_size
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err.strerror or err})") from None
    if size == 0:
        raise DataError(f"{path} is empty (0 bytes)")
    limit = max_pixels()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=_formats()) as img:
                width, height = img.size
                if width * height > limit:
                    raise too_large(path, width, height, limit)
                img.load()
                if getattr(img, "n_frames", 1) > 1:
                    notes.append(NOTE_FRAMES)
                wanted = SUFFIX_FORMATS.get(path.suffix.lower())
                if wanted is not None and img.format not in wanted:
                    notes.append(NOTE_FORMAT)
                try:
                    orientation = int(img.getexif().get(ExifTags.Base.Orientation, 1))
                except Exception:  # an unreadable EXIF block: the pixels are still fine
                    orientation = 1
                if orientation in range(2, 9):
                    rotated = ImageOps.exif_transpose(img)
                    notes.append(NOTE_EXIF)
                    return to_gray(rotated, notes)
                return to_gray(img, notes)
    except DataError:
        raise
    except Image.DecompressionBombError as err:
        raise DataError(f"{path} is too large to decode ({err})") from None
    except UnidentifiedImageError:
        raise DataError(f"{path} is not a readable image (corrupt or not an image)") from None
    except OSError as err:
        if err.errno is not None:  # permissions, I/O errors: the file, not its contents
            raise DataError(f"{path}: cannot read the file ({err.strerror or err})") from None
        raise DataError(f"{path} is truncated or corrupt ({err})") from None
    except (SyntaxError, ValueError, EOFError) as err:
        raise DataError(f"{path} is truncated or corrupt ({err})") from None
    except MemoryError:
        raise DataError(f"{path} is too large to decode in memory") from None
    except Exception as err:  # PIL's decoders raise many types on malformed files
        raise DataError(
            f"{path} could not be decoded ({type(err).__name__}: {err})"
        ) from None


def _from_array(item: Item, notes: list[str]) -> np.ndarray:
    a = np.asarray(item.array)
    where = item.origin or item.id
    if a.ndim != 2 or a.dtype.kind not in "biuf":
        raise DataError(
            f"{where}: pixels are a {a.dtype} array of shape {a.shape}; expected a 2-D numeric "
            "array (height x width)"
        )
    limit = max_pixels()
    if a.size > limit:
        raise too_large(where, a.shape[1], a.shape[0], limit)
    if a.dtype != np.uint8:
        notes.append(NOTE_ARRAY)
        a = np.clip(np.nan_to_num(a.astype(np.float64, copy=False)), 0, 255).astype(np.uint8)
    return a


def decode_noted(item: Item) -> tuple[np.ndarray, list[str]]:
    """The item's pixels as a 2-D uint8 array, and notes on what was converted."""
    notes: list[str] = []
    if item.array is not None:
        gray = _from_array(item, notes)
    else:
        assert item.path is not None
        gray = _open_file(item.path, notes)
    h, w = gray.shape[:2]
    if min(h, w) < MIN_SIZE:
        where = item.path if item.path is not None else (item.origin or item.id)
        raise DataError(f"{where} is {w}x{h}; images must be at least {MIN_SIZE} px on each side")
    return gray, notes


def decode(item: Item) -> np.ndarray:
    """The item's pixels as a 2-D uint8 array; a bad file is a `DataError` naming it."""
    return decode_noted(item)[0]
