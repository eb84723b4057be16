"""Reader for the IDX file format (MNIST, Fashion-MNIST), raw or gzip-compressed.

IDX layout (LeCun et al., http://yann.lecun.com/exdb/mnist/, "FILE FORMATS"): a 4-byte big-endian
magic number ``0x00 0x00 <dtype> <ndim>``, then ``ndim`` big-endian uint32 dimension sizes, then the
data in C order, big-endian. MNIST images carry magic 2051 (``0x00000803``: uint8, 3 dimensions),
labels 2049 (``0x00000801``: uint8, 1 dimension).

This module only parses and validates; it never unpickles and never touches the network. Every
failure raises :class:`DatasetError` naming the file and what was expected versus found.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = [
    "IDX_DTYPES",
    "MAGIC_IMAGES_U8",
    "MAGIC_LABELS_U8",
    "DatasetError",
    "is_gzip",
    "read_idx",
    "read_image_label_pair",
]

# gzip member header starts with these two bytes (RFC 1952, section 2.3.1): detection is by content,
# never by file extension, so a raw file named *.gz or a gzip file without the suffix both work.
GZIP_MAGIC = b"\x1f\x8b"

# IDX type codes (third magic byte) -> big-endian numpy dtype (format spec on the MNIST page).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

MAGIC_IMAGES_U8 = 0x00000803  # 2051: uint8, ndim 3 (N, rows, cols)
MAGIC_LABELS_U8 = 0x00000801  # 2049: uint8, ndim 1 (N,)

_READ_CHUNK_BYTES = 1 << 24  # 16 MiB per readinto call keeps peak extra memory small

# DEFLATE cannot expand data by more than about 1032:1 (RFC 1951 block limits; zlib's technical
# details, https://www.zlib.net/zlib_tech.html). A header declaring more than that is corrupt, and
# catching it before allocating avoids a MemoryError from a garbage dimension field.
_DEFLATE_MAX_RATIO = 1032


class DatasetError(ValueError):
    """A dataset file or folder is missing, malformed or fails verification.

    The message always names the file (or folder) and states what was expected and what was found.
    """


def is_gzip(path: str | os.PathLike[str]) -> bool:
    """True when the file starts with the gzip magic bytes ``1f 8b`` (content, not extension)."""
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def _describe_magic(magic: int) -> str:
    dtype_code, ndim = (magic >> 8) & 0xFF, magic & 0xFF
    dtype = IDX_DTYPES.get(dtype_code)
    kind = dtype.name if dtype is not None else f"unknown type 0x{dtype_code:02x}"
    return f"{magic} (0x{magic:08x}: {kind}, ndim {ndim})"


def _read_exactly(f: BinaryIO, n_bytes: int) -> bytes:
    """Read up to ``n_bytes``; shorter only at end of file."""
    parts = []
    remaining = n_bytes
    while remaining > 0:
        chunk = f.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _read_into(f: BinaryIO, out: np.ndarray) -> int:
    """Fill the flat uint8 array ``out`` from ``f``; return the number of bytes read."""
    view = memoryview(out)
    filled = 0
    while filled < len(view):
        n = f.readinto(view[filled : filled + _READ_CHUNK_BYTES])
        if not n:
            break
        filled += n
    return filled


def _parse(
    f: BinaryIO, name: str, expected_magic: int | None, max_bytes: int, max_bytes_why: str
) -> np.ndarray:
    header = _read_exactly(f, 4)
    if len(header) < 4:
        raise DatasetError(
            f"{name}: truncated IDX header: expected 4 bytes of magic number, found {len(header)}"
        )
    magic = int.from_bytes(header, "big")
    if header[:2] != b"\x00\x00":
        wanted = "" if expected_magic is None else f"; expected {_describe_magic(expected_magic)}"
        raise DatasetError(
            f"{name}: not an IDX file: the magic number must start with bytes 00 00, found "
            f"{header.hex(' ')} (magic {magic}){wanted}"
        )
    if expected_magic is not None and magic != expected_magic:
        raise DatasetError(
            f"{name}: wrong magic number: expected {_describe_magic(expected_magic)}, "
            f"found {_describe_magic(magic)}"
        )
    dtype_code, ndim = header[2], header[3]
    if dtype_code not in IDX_DTYPES:
        allowed = ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        raise DatasetError(
            f"{name}: unknown IDX data type byte 0x{dtype_code:02x}; allowed: {allowed}"
        )
    if ndim == 0:
        raise DatasetError(f"{name}: IDX header declares ndim 0; expected at least 1 dimension")
    dims_raw = _read_exactly(f, 4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise DatasetError(
            f"{name}: truncated IDX header: expected {4 * ndim} bytes of dimension sizes "
            f"(ndim {ndim}), found {len(dims_raw)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
    dtype = IDX_DTYPES[dtype_code]
    n_bytes = math.prod(shape) * dtype.itemsize  # Python ints: a corrupt header must not overflow
    header_bytes = 4 + 4 * ndim
    if header_bytes + n_bytes > max_bytes:
        raise DatasetError(
            f"{name}: truncated: header declares shape {shape} of {dtype.name}, i.e. "
            f"{header_bytes + n_bytes} bytes in total, found {max_bytes_why}"
        )

    data = np.empty(n_bytes, dtype=np.uint8)
    n_read = _read_into(f, data)
    if n_read < n_bytes:
        raise DatasetError(
            f"{name}: truncated: header declares shape {shape} of {dtype.name}, i.e. "
            f"{header_bytes + n_bytes} bytes in total, found {header_bytes + n_read}"
        )
    # Reading one more byte also drives a gzip stream to its end, which checks its CRC and length.
    trailing = f.read(1)
    if trailing:
        extra = 1 + len(_read_exactly(f, 1 << 20))
        more = "+" if extra > 1 << 20 else ""
        raise DatasetError(
            f"{name}: file longer than its header declares: expected {header_bytes + n_bytes} "
            f"bytes for shape {shape} of {dtype.name}, found {extra}{more} extra bytes"
        )
    array = data.view(dtype).reshape(shape)
    # Hand back native byte order so downstream arithmetic never pays for byte swapping.
    return array if dtype.itemsize == 1 else array.astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike[str], *, expected_magic: int | None = None) -> np.ndarray:
    """Read one IDX file (raw or gzip, detected by content) into a numpy array.

    Args:
        path: the file.
        expected_magic: when given (e.g. :data:`MAGIC_IMAGES_U8` = 2051), the magic number the file
            must carry.

    Returns:
        A writable array of the header's shape and dtype (native byte order). For MNIST images:
        uint8, shape (N, 28, 28); labels: uint8, shape (N,).

    Raises:
        DatasetError: missing file, not an IDX file, wrong magic number, unknown dtype byte,
            truncated data, trailing data, or a corrupt gzip stream. The message names the file.
    """
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise DatasetError(f"{name}: file not found")
    size_bytes = path.stat().st_size
    try:
        if is_gzip(path):
            with gzip.open(path, "rb") as f:
                max_bytes = _DEFLATE_MAX_RATIO * size_bytes
                why = f"a {size_bytes}-byte gzip file, which decompresses to at most {max_bytes}"
                return _parse(f, name, expected_magic, max_bytes, why)
        with open(path, "rb") as f:
            return _parse(f, name, expected_magic, size_bytes, f"{size_bytes} bytes")
    except EOFError as exc:
        raise DatasetError(f"{name}: truncated gzip stream ({exc})") from exc
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise DatasetError(f"{name}: corrupt gzip stream ({exc})") from exc


def read_image_label_pair(
    images_path: str | os.PathLike[str],
    labels_path: str | os.PathLike[str],
    *,
    image_shape: Sequence[int] = (28, 28),
    n_classes: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Read and cross-check an images file (magic 2051) and its labels file (magic 2049).

    Returns:
        ``(images, labels)``: uint8 arrays of shapes (N, *image_shape) and (N,).

    Raises:
        DatasetError: any :func:`read_idx` failure, image dimensions other than ``image_shape``,
            differing counts of images and labels, or a label outside ``[0, n_classes - 1]``.
    """
    images = read_idx(images_path, expected_magic=MAGIC_IMAGES_U8)
    labels = read_idx(labels_path, expected_magic=MAGIC_LABELS_U8)
    if tuple(images.shape[1:]) != tuple(image_shape):
        raise DatasetError(
            f"{images_path}: wrong image size: expected {tuple(image_shape)}, "
            f"found {tuple(images.shape[1:])}"
        )
    if images.shape[0] == 0:
        raise DatasetError(f"{images_path}: holds 0 images; expected at least one example")
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(
            f"image/label count mismatch: {images_path} holds {images.shape[0]} images, "
            f"{labels_path} holds {labels.shape[0]} labels"
        )
    if labels.size and int(labels.max()) >= n_classes:
        bad = int(np.argmax(labels >= n_classes))
        raise DatasetError(
            f"{labels_path}: label out of range: expected values in [0, {n_classes - 1}], "
            f"found {int(labels[bad])} at index {bad}"
        )
    return images, labels
