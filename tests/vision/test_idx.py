"""The IDX reader and writer: round trips, gzip detection, and bad files."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from deepbox.vision.idx import IDXFormatError, read_idx, read_idx_header, write_idx


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_round_trip(tmp_path, dtype, name):
    rng = np.random.default_rng(0)
    arr = (rng.standard_normal((5, 3, 4)) * 100).astype(dtype)
    path = tmp_path / name
    write_idx(path, arr)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.shape == arr.shape and out.flags.writeable
    np.testing.assert_array_equal(out, arr)
    assert read_idx_header(path) == (np.dtype(dtype), (5, 3, 4))


def test_header_bytes_by_hand(tmp_path):
    # magic 0x00000803 (uint8, 3 dims), sizes big-endian, then the pixels
    path = tmp_path / "x"
    write_idx(path, np.arange(6, dtype=np.uint8).reshape(1, 2, 3))
    assert path.read_bytes() == bytes([0, 0, 8, 3]) + struct.pack(">3I", 1, 2, 3) + bytes(range(6))
    write_idx(path, np.array([1, -2], dtype=np.int32))
    assert path.read_bytes() == bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 2) + struct.pack(">2i", 1, -2)
    # gzip is recognised by content, not by name
    (tmp_path / "y").write_bytes(gzip.compress(path.read_bytes()))
    np.testing.assert_array_equal(read_idx(tmp_path / "y"), [1, -2])


def test_truncated_data(tmp_path):
    path = tmp_path / "t.idx"
    write_idx(path, np.zeros((4, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(IDXFormatError, match=r"t\.idx.*truncated.*3136 bytes.*found 3126"):
        read_idx(path)


def test_extra_data(tmp_path):
    path = tmp_path / "e.idx"
    write_idx(path, np.zeros(3, np.uint8))
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(IDXFormatError, match="longer than its header"):
        read_idx(path)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "t.idx.gz"
    write_idx(path, np.arange(5000, dtype=np.int32))
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(IDXFormatError, match=r"t\.idx\.gz.*gzip stream is truncated or corrupt"):
        read_idx(path)


@pytest.mark.parametrize("content,match", [
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "not an IDX file"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "unknown IDX type code 0x07"),
    (b"\x00\x00", "too short"),
    (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
])
def test_bad_headers(tmp_path, content, match):
    path = tmp_path / "bad"
    path.write_bytes(content)
    with pytest.raises(IDXFormatError, match=match):
        read_idx(path)


def test_writer_refuses_unsupported(tmp_path):
    with pytest.raises(TypeError, match="no type for dtype"):
        write_idx(tmp_path / "x", np.zeros(3, np.uint16))
    with pytest.raises(ValueError, match="1 to 255 dimensions"):
        write_idx(tmp_path / "x", np.zeros((), np.uint8))
