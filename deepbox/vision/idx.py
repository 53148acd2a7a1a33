"""The IDX file format of MNIST and Fashion-MNIST: a reader (gzipped or raw) and a writer.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 size per dimension, then the values in C order,
big-endian. Type codes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
0x0E float64.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

__all__ = ["read_idx", "read_idx_header", "write_idx", "IDXFormatError"]

_CODE_TO_DTYPE = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
                  0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_DTYPE_TO_CODE = {np.dtype(d).newbyteorder("=") if d.itemsize > 1 else d: c for c, d in _CODE_TO_DTYPE.items()}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXFormatError(ValueError):
    """A file that is not a well-formed IDX file (wrong magic, truncated, corrupt gzip)."""


def _read_bytes(path: str | os.PathLike, limit: int | None = None) -> bytes:
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(2)
    if head == _GZIP_MAGIC:
        try:
            with gzip.open(path, "rb") as f:
                return f.read() if limit is None else f.read(limit)
        except (EOFError, OSError, zlib.error) as e:
            raise IDXFormatError(
                f"{path}: the gzip stream is truncated or corrupt ({e}); expected a complete gzipped IDX file"
            ) from None
    with open(path, "rb") as f:
        return f.read() if limit is None else f.read(limit)


def _parse_header(buf: bytes, path: str) -> tuple[np.dtype, tuple[int, ...], int]:
    if len(buf) < 4:
        raise IDXFormatError(f"{path}: {len(buf)} bytes is too short for an IDX header (expected at least 4)")
    zero1, zero2, code, ndim = buf[0], buf[1], buf[2], buf[3]
    if zero1 != 0 or zero2 != 0:
        raise IDXFormatError(
            f"{path}: not an IDX file (magic number starts with bytes {zero1:#04x} {zero2:#04x}, "
            "expected 0x00 0x00)"
        )
    if code not in _CODE_TO_DTYPE:
        known = ", ".join(f"{c:#04x} ({d.name})" for c, d in _CODE_TO_DTYPE.items())
        raise IDXFormatError(f"{path}: unknown IDX type code {code:#04x}; expected one of {known}")
    if ndim == 0:
        raise IDXFormatError(f"{path}: IDX header gives 0 dimensions; expected at least 1")
    header_len = 4 + 4 * ndim
    if len(buf) < header_len:
        raise IDXFormatError(f"{path}: truncated IDX header: {ndim} dimensions need {header_len} bytes, "
                             f"the file has {len(buf)}")
    shape = struct.unpack(f">{ndim}I", buf[4:header_len])
    return _CODE_TO_DTYPE[code], tuple(int(s) for s in shape), header_len


def read_idx_header(path: str | os.PathLike) -> tuple[np.dtype, tuple[int, ...]]:
    """The dtype and shape an IDX file declares, reading only its header."""
    buf = _read_bytes(path, limit=4 + 4 * 255)
    dtype, shape, _ = _parse_header(buf, os.fspath(path))
    return dtype.newbyteorder("="), shape


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzipped (detected by its magic bytes) or raw, into a NumPy array.

    Returns a writable, native-byte-order array of the file's dtype and shape.

    Raises:
        IDXFormatError: the file is not IDX, its gzip stream is corrupt, or its data is
            shorter or longer than its header declares.
    """
    path = os.fspath(path)
    buf = _read_bytes(path)
    dtype, shape, offset = _parse_header(buf, path)
    count = int(np.prod(shape, dtype=np.int64))
    expected = count * dtype.itemsize
    found = len(buf) - offset
    if found != expected:
        what = "truncated" if found < expected else "longer than its header says"
        raise IDXFormatError(
            f"{path}: IDX data is {what}: shape {shape} of {dtype.newbyteorder('=').name} needs {expected} bytes "
            f"after the {offset}-byte header, found {found}"
        )
    arr = np.frombuffer(buf, dtype=dtype, count=count, offset=offset).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | os.PathLike, array, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file; gzipped when ``compress`` is true (default: path ends in ``.gz``).

    Args:
        path: the file to write.
        array: an array (or deepbox tensor) of uint8, int8, int16, int32, float32 or float64, ndim >= 1.
        compress: gzip the file; ``None`` decides from the file name.
    """
    if hasattr(array, "_data"):
        array = array._data
    arr = np.asarray(array)
    key = arr.dtype.newbyteorder("=") if arr.dtype.itemsize > 1 else arr.dtype
    if key not in _DTYPE_TO_CODE:
        raise TypeError(f"write_idx: IDX has no type for dtype {arr.dtype}; "
                        "expected uint8, int8, int16, int32, float32 or float64")
    if arr.ndim == 0 or arr.ndim > 255:
        raise ValueError(f"write_idx: expected an array with 1 to 255 dimensions, got {arr.ndim}")
    code = _DTYPE_TO_CODE[key]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = header + np.ascontiguousarray(arr, dtype=_CODE_TO_DTYPE[code]).tobytes()
    path = os.fspath(path)
    if compress is None:
        compress = path.endswith(".gz")
    if compress:
        # no file name and mtime=0 in the gzip header: the same array gives the same bytes
        with open(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as f:
            f.write(payload)
    else:
        with open(path, "wb") as f:
            f.write(payload)
