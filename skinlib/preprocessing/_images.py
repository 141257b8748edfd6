"""Decoding image files: any file name, 16-bit and CMYK images, fast reduced JPEG decoding,
and a pixel limit read from the file's header before anything is decoded.

:func:`read_image` is how every part of the project reads an image file; a file that
cannot be used raises :class:`ImageReadError` naming it, which the dataset-wide
functions turn into a skipped file with its reason.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import cv2
import numpy as np

from skinlib._shared.errors import ImageReadError
from skinlib._shared.checks import is_whole_number
from skinlib._shared.files import file_kind, irregular_file

__all__ = ["read_image", "ImageReadError", "image_size", "max_image_pixels", "MAX_IMAGE_PIXELS",
           "MAX_PIXELS_VARIABLE"]


# --------------------------------------------------------------------------- reading


#: Default largest image, in pixels (width x height from the file header), that
#: :func:`read_image` decodes: 100 megapixels, twice a full-resolution dermatoscope
#: image (8000 x 6000), about 300 MB decoded in colour. The environment variable
#: ``SKINLIB_MAX_IMAGE_PIXELS`` or ``read_image(..., max_pixels=...)`` changes it.
MAX_IMAGE_PIXELS = 100_000_000
MAX_PIXELS_VARIABLE = "SKINLIB_MAX_IMAGE_PIXELS"


def max_image_pixels(max_pixels: int | None = None) -> int:
    """The pixel limit of :func:`read_image`.

    It is ``max_pixels`` if given, else the environment variable ``SKINLIB_MAX_IMAGE_PIXELS``
    (when set and not blank), else :data:`MAX_IMAGE_PIXELS`.

    Raises ``ValueError`` naming the setting and its value when that is not a whole
    number of pixels, at least 1.

    Parameters
    ----------
    max_pixels : int, optional
        The limit, in pixels (a float with a whole value is taken too); the default None reads
        the environment variable.

    Returns
    -------
    int
        The limit, in pixels (width x height).

    Examples
    --------
    >>> max_image_pixels(), max_image_pixels(5_000_000)
    (100000000, 5000000)
    """
    where, value = "max_pixels", max_pixels
    if value is None:
        text = os.environ.get(MAX_PIXELS_VARIABLE, "").strip()
        if not text:
            return MAX_IMAGE_PIXELS
        where, value = MAX_PIXELS_VARIABLE, text
        try:
            value = float(text)
        except ValueError:
            pass
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    if not is_whole_number(value) or value < 1:
        shown = text if where == MAX_PIXELS_VARIABLE else value
        raise ValueError(f"{where}={shown!r}: expected a whole number of pixels, at least 1 (default {MAX_IMAGE_PIXELS})")
    return int(value)


def _jpeg_size(data: np.ndarray) -> tuple[int, int] | None:
    """(height, width) from a JPEG's start-of-frame marker, without decoding it.

    Walks the marker segments from the start of the file, however long the segments
    before the frame header are (EXIF and ICC blocks of hundreds of kB); None if the
    data is no JPEG or holds no frame header before its first scan.
    """
    buf = memoryview(np.ascontiguousarray(data, dtype=np.uint8)).cast("B")
    if bytes(buf[:2]) != b"\xff\xd8":
        return None
    i = 2
    while i + 9 < len(buf):
        if buf[i] != 0xFF:
            i += 1
            continue
        marker = buf[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        if marker == 0xDA:  # start of scan: the frame header should have come before
            return None
        seg_len = int.from_bytes(buf[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(buf[i + 5 : i + 7], "big"), int.from_bytes(buf[i + 7 : i + 9], "big")
        i += 2 + seg_len
    return None


def _png_size(buf: bytes) -> tuple[int, int] | None:
    # The IHDR chunk comes first: 8-byte signature, length, "IHDR", width, height.
    if len(buf) < 24 or buf[12:16] != b"IHDR":
        return None
    return int.from_bytes(buf[20:24], "big"), int.from_bytes(buf[16:20], "big")


def _bmp_size(buf: bytes) -> tuple[int, int] | None:
    if len(buf) < 26:
        return None
    header = int.from_bytes(buf[14:18], "little")
    if header == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sides
        return int.from_bytes(buf[20:22], "little"), int.from_bytes(buf[18:20], "little")
    # Height is negative for top-down bitmaps.
    return abs(int.from_bytes(buf[22:26], "little", signed=True)), abs(int.from_bytes(buf[18:22], "little", signed=True))


def _tiff_size(data: np.ndarray) -> tuple[int, int] | None:
    """(height, width) of a TIFF's first image (the one OpenCV decodes), classic or BigTIFF."""
    buf = memoryview(np.ascontiguousarray(data, dtype=np.uint8)).cast("B")
    order = {b"II": "little", b"MM": "big"}.get(bytes(buf[:2]))
    if order is None or len(buf) < 16:
        return None

    def num(at: int, n: int) -> int:
        if at + n > len(buf):
            raise IndexError
        return int.from_bytes(buf[at : at + n], order)

    try:
        big = num(2, 2) == 43
        ifd = num(8, 8) if big else num(4, 4)
        count = num(ifd, 8 if big else 2)
        entry, first, value_at = (20, ifd + 8, 12) if big else (12, ifd + 2, 8)
        sides = {}
        for k in range(min(count, 4096)):
            at = first + k * entry
            tag, kind = num(at, 2), num(at + 2, 2)
            if tag in (256, 257):
                width = {3: 2, 4: 4, 16: 8}.get(kind)  # SHORT, LONG, LONG8
                if width is None:
                    return None
                sides[tag] = num(at + value_at, width)
                if len(sides) == 2:
                    return sides[257], sides[256]
    except IndexError:
        return None
    return None


def image_size(data: np.ndarray) -> tuple[str, tuple[int, int] | None] | None:
    """``(format, (height, width))`` of encoded JPEG, PNG, BMP or TIFF bytes, read from the header.

    The size is None when the format is known but its header gives no size; the whole
    result is None for data of any other format. Nothing is decoded.

    Parameters
    ----------
    data : numpy.ndarray
        The encoded file, as a 1-D uint8 array (as ``numpy.fromfile`` reads it).

    Returns
    -------
    tuple of (str, tuple of (int, int) or None), or None
        ``(format, (height, width))``, the format one of ``"jpeg"``, ``"png"``, ``"bmp"`` and
        ``"tiff"``; ``(format, None)`` or None as above.

    Examples
    --------
    >>> ok, png = cv2.imencode(".png", np.zeros((3, 5), np.uint8))
    >>> image_size(png)
    ('png', (3, 5))
    """
    head = bytes(data[:32])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg", _jpeg_size(data)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png", _png_size(head)
    if head.startswith(b"BM"):
        return "bmp", _bmp_size(head)
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff", _tiff_size(data)
    return None


def _read_regular_file(path: Path) -> np.ndarray:
    """The bytes of ``path`` as uint8; :class:`ImageReadError` if it turns out no regular file.

    Opened without blocking and checked again on the open file: a FIFO put in the file's
    place after :func:`skinlib._shared.files.irregular_file` looked would otherwise block here.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with open(fd, "rb") as fh:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ImageReadError(f"{path}: not a regular file ({file_kind(mode)})")
        return np.fromfile(fh, dtype=np.uint8)


_REDUCED = {
    True: {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8},
    False: {
        1: cv2.IMREAD_GRAYSCALE,
        2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
        4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
        8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
    },
}


def read_image(
    path: str | os.PathLike, *, color: bool = False, min_side: int | None = None, max_pixels: int | None = None
) -> np.ndarray:
    """Decode an image file to uint8: (H, W) grayscale or (H, W, 3) BGR.

    Reads the bytes with NumPy and decodes them with ``cv2.imdecode``, so any file
    name works (``cv2.imread`` fails on some non-ASCII paths). 16-bit images are
    scaled to 8 bits, alpha is dropped, CMYK JPEGs are converted. When
    ``min_side`` is given and the file is a JPEG whose shorter side is at least twice
    that, it is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, many times
    faster) while the shorter side stays at least ``min_side``.

    The width and height are read from the file header before anything is decoded:
    an image of more than ``max_pixels`` pixels (default :func:`max_image_pixels`:
    the ``SKINLIB_MAX_IMAGE_PIXELS`` environment variable, else 100 megapixels) is
    refused with :class:`ImageReadError`. A few hundred kB of PNG or JPEG can decode
    to gigabytes (a decompression bomb), and each decoding thread holds one image.
    The limit counts the file's own size, also when a JPEG is decoded at reduced
    scale (progressive JPEGs need memory for the full size even then). OpenCV's own
    limit of 2**30 pixels still applies above it.

    Raises :class:`ImageReadError` naming the file when it is empty, missing, larger
    than the limit, not JPEG, PNG, BMP or TIFF data, or does not decode, and when it is no
    regular file (a FIFO, a device, a directory; links are followed): those are never
    opened, as reading a FIFO waits for a writer and a device such as ``/dev/zero`` never ends.

    Parameters
    ----------
    path : str or path-like
        The image file.
    color : bool
        Decode in colour, BGR (default False: grayscale).
    min_side : int, optional
        For a JPEG, the shorter side, in pixels, that a reduced decoding must keep; the
        default None decodes at full size.
    max_pixels : int, optional
        The largest image decoded, in pixels (width x height); the default None takes
        :func:`max_image_pixels`.

    Returns
    -------
    numpy.ndarray
        The uint8 image, (H, W) grayscale or, with ``color``, (H, W, 3) BGR; at full size,
        or at 1/2, 1/4 or 1/8 of it for a JPEG read with ``min_side``.

    Raises
    ------
    ImageReadError
        As above.
    ValueError
        When ``max_pixels`` (or the environment variable) is not a whole number of pixels,
        at least 1 (:func:`max_image_pixels`).

    Examples
    --------
    >>> read_image("scan.png", max_pixels=10_000_000)  # doctest: +SKIP
    Traceback (most recent call last):
    ...
    ImageReadError: scan.png: image is 20000 x 20000 pixels (400 megapixels), more than the limit of 10 megapixels; ...
    """
    path = Path(path)
    irregular = irregular_file(path)
    if irregular:
        raise ImageReadError(f"{path}: {irregular}")
    try:
        data = _read_regular_file(path)
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if data.size == 0:
        raise ImageReadError(f"{path}: file is empty (0 bytes), expected an image")
    limit = max_image_pixels(max_pixels)
    found = image_size(data)
    if found is None:
        raise ImageReadError(f"{path}: not a decodable image (expected JPEG, PNG, BMP or TIFF data)")
    kind, size = found
    if size is None:
        raise ImageReadError(f"{path}: not a decodable image (its {kind.upper()} header gives no image size)")
    if size[0] * size[1] > limit:
        raise ImageReadError(
            f"{path}: image is {size[1]} x {size[0]} pixels ({size[0] * size[1] / 1e6:.0f} megapixels), more than "
            f"the limit of {limit / 1e6:g} megapixels; if it is a genuine image, raise the limit with the "
            f"{MAX_PIXELS_VARIABLE} environment variable or read_image(..., max_pixels=...)"
        )
    factor = 1
    if min_side is not None and kind == "jpeg":
        while factor < 8 and min(size) // (factor * 2) >= min_side:
            factor *= 2
    img = cv2.imdecode(data, _REDUCED[color][factor])
    if img is None:
        raise ImageReadError(f"{path}: not a decodable image (expected JPEG, PNG, BMP or TIFF data)")
    if img.dtype != np.uint8:  # IMREAD_COLOR/GRAYSCALE already convert, but be safe
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(1, int(np.iinfo(img.dtype).max)))
    return img
