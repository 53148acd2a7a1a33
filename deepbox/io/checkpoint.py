"""Checkpoints: ``deepbox.save(obj, f)`` and ``deepbox.load(f)``, one safetensors file, never pickle.

A checkpoint is a standard safetensors file. Its tensors are the tensors and arrays of ``obj``,
named by their place in it (``model.fc.weight``, ``optimizer.state.0.exp_avg``); everything else
(the nesting of dicts, lists and tuples, numbers, strings, bools, None, dtypes) is kept as JSON in
the file's ``__metadata__`` header under ``deepbox.structure``, next to a CRC-32 of every tensor
(``deepbox.crc32``) and the format version (``deepbox.format``). A flat dict of named tensors (a
model's ``state_dict()``) therefore makes a file that any safetensors reader opens, and ``load``
also reads safetensors files written by other programs (as a dict of tensors).

JSON structure: JSON null, booleans, strings and lists stand for themselves, integers and finite
floats are JSON numbers; every other value is a one-key object tagged with ``$``:
``{"$float": "inf"|"-inf"|"nan"}``, ``{"$tuple": [...]}``, ``{"$map": {str: value}}`` (a dict with
string keys), ``{"$dict": [[key, value], ...]}`` (other keys, e.g. the integer keys of an optimiser
state), either with ``"type": "OrderedDict"|"Counter"`` when not a plain dict,
``{"$tensor": name}`` (``"requires_grad": true`` and ``"parameter": true`` when they apply),
``{"$ndarray": name}``, ``{"$npscalar": name}`` and ``{"$dtype": "float32"}``.

Tensors that share memory (tied weights) are stored once and load as one array again.

Writing goes to a temporary file in the destination's folder, which is flushed, fsynced and then
renamed over the destination with ``os.replace`` (``deepbox/io/atomic.py``): a crash leaves either
the old file or the new one, never a half-written one, and the temporary files of killed writers
are removed by the next save of the same file. The safetensors package writes the file when it is
installed, otherwise a small writer here does. Reading is always done here: the file is opened
once, read whole through that handle, and its header checked exactly as the safetensors package
checks it (tensors tiling the data without gaps or overlaps, integer shapes, a string-to-string
``__metadata__``); then every malformation of deepbox's own metadata raises ``CheckpointError``
naming the file.
"""
from __future__ import annotations

import io
import json
import math
import os
import struct
import zlib
from collections import Counter, OrderedDict

from deepbox import backend
from deepbox.io.atomic import write_atomically
from deepbox.io.errors import CheckpointError
from deepbox.tensor import Tensor, _make, device

xp = backend.xp

FORMAT_VERSION = "1"
_KEY_FORMAT = "deepbox.format"
_KEY_STRUCTURE = "deepbox.structure"
_KEY_CRC = "deepbox.crc32"

try:  # the safetensors package is optional: deepbox's own reader and writer below are the fallback
    import safetensors.numpy as _st_numpy
except ImportError:  # pragma: no cover - exercised by forcing _USE_PACKAGE off in the tests
    _st_numpy = None

_USE_PACKAGE = _st_numpy is not None

# safetensors dtype names <-> NumPy dtypes (little-endian, as the format prescribes)
_ST_TO_NP = {
    "BOOL": xp.dtype("bool"), "U8": xp.dtype("<u1"), "I8": xp.dtype("<i1"), "I16": xp.dtype("<i2"),
    "U16": xp.dtype("<u2"), "I32": xp.dtype("<i4"), "U32": xp.dtype("<u4"), "I64": xp.dtype("<i8"),
    "U64": xp.dtype("<u8"), "F16": xp.dtype("<f2"), "F32": xp.dtype("<f4"), "F64": xp.dtype("<f8"),
}
_NP_TO_ST = {v.newbyteorder("="): k for k, v in _ST_TO_NP.items()}
_MAX_HEADER = 100 * 1024 * 1024  # the safetensors package's own limit

__all__ = ["save", "load", "CheckpointError"]


# ---------------------------------------------------------------------------------------------- encode
class _Encoder:
    """Turns an object into a JSON-able structure and a dict of named contiguous arrays."""

    def __init__(self):
        self.arrays: dict[str, object] = {}
        self._by_memory: dict[tuple, str] = {}

    def _name_for(self, path: list) -> str:
        base = ".".join(str(p) for p in path) or "tensor"
        name, n = base, 1
        while name in self.arrays:
            name = f"{base}#{n}"
            n += 1
        return name

    def _store(self, arr, path: list) -> str:
        if arr.dtype.newbyteorder("=") not in _NP_TO_ST:
            raise TypeError(
                f"deepbox.save cannot store an array of dtype {arr.dtype} at {_where(path)}; supported dtypes: "
                "float16/32/64, int8/16/32/64, uint8/16/32/64 and bool"
            )
        # tensors that are the same memory (tied weights, or one tensor saved twice) are stored once
        key = (arr.__array_interface__["data"][0], arr.shape, arr.strides, arr.dtype.str)
        if arr.size and key in self._by_memory:
            return self._by_memory[key]
        name = self._name_for(path)
        self.arrays[name] = _contiguous(arr)
        if arr.size:
            self._by_memory[key] = name
        return name

    def encode(self, obj, path: list):
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            if math.isfinite(obj):
                return float(obj)
            return {"$float": "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")}
        if isinstance(obj, Tensor):
            node = {"$tensor": self._store(obj._data, path)}
            if obj.requires_grad:
                node["requires_grad"] = True
            if type(obj).__name__ == "Parameter":
                node["parameter"] = True
            return node
        if isinstance(obj, xp.ndarray):
            return {"$ndarray": self._store(obj, path)}
        if isinstance(obj, xp.generic):
            return {"$npscalar": self._store(xp.asarray(obj), path)}
        if isinstance(obj, backend.dtype):
            return {"$dtype": obj.name}
        if isinstance(obj, list):
            return [self.encode(v, path + [i]) for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            return {"$tuple": [self.encode(v, path + [i]) for i, v in enumerate(obj)]}
        if isinstance(obj, dict):
            kind = "Counter" if isinstance(obj, Counter) else "OrderedDict" if isinstance(obj, OrderedDict) else None
            if all(isinstance(k, str) for k in obj):
                node = {"$map": {k: self.encode(v, path + [k]) for k, v in obj.items()}}
            else:
                node = {"$dict": [[self.encode_key(k, path), self.encode(v, path + [k])] for k, v in obj.items()]}
            if kind:
                node["type"] = kind
            return node
        hint = " (save its state_dict() instead)" if hasattr(obj, "state_dict") else ""
        raise TypeError(
            f"deepbox.save cannot store a {type(obj).__name__} at {_where(path)}{hint}: a checkpoint holds tensors, "
            "NumPy arrays, numbers, strings, bools, None, dtypes and lists, tuples and dicts of them "
            "(deepbox never pickles objects)"
        )

    def encode_key(self, key, path):
        if isinstance(key, (Tensor, xp.ndarray, list, dict)):
            raise TypeError(f"deepbox.save cannot store a dict key of type {type(key).__name__} at {_where(path)}")
        return self.encode(key, path)


def _where(path: list) -> str:
    return "obj" + "".join(f"[{p!r}]" for p in path)


# ---------------------------------------------------------------------------------------------- decode
class _Decoder:
    def __init__(self, arrays: dict, source: str):
        self.arrays = arrays
        self.source = source
        self._objs: dict = {}

    def _array(self, name):
        try:
            return self.arrays[name]
        except (KeyError, TypeError):
            raise CheckpointError(
                f"{self.source}: corrupt checkpoint: the structure refers to tensor {name!r}, which the file "
                "does not hold"
            ) from None

    def _bad(self, node, expected: str):
        return CheckpointError(f"{self.source}: corrupt checkpoint structure: {node!r:.80} where {expected} was "
                               "expected")

    def decode(self, node):
        if node is None or isinstance(node, (bool, str, int, float)):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict) or not node:
            raise CheckpointError(f"{self.source}: corrupt checkpoint structure: unexpected node {node!r:.80}")
        tag = next(iter(node))
        value = node[tag]
        if tag in ("$tensor", "$ndarray", "$npscalar") and not isinstance(value, str):
            raise self._bad(node, "a tensor name (a string)")
        if tag == "$tensor":
            key = (value, node.get("requires_grad", False) is True, node.get("parameter", False) is True)
            t = self._objs.get(key)
            if t is None:
                t = _make(self._array(value))
                if key[2]:
                    from deepbox.nn.parameter import Parameter

                    t = Parameter(t, requires_grad=key[1])
                elif key[1]:
                    t.requires_grad = True
                self._objs[key] = t
            return t
        if tag == "$ndarray":
            return self._array(value)
        if tag == "$npscalar":
            return self._array(value)[()]
        if tag == "$float":
            if value not in ("inf", "-inf", "nan"):
                raise self._bad(node, "'inf', '-inf' or 'nan'")
            return float(value)
        if tag == "$dtype":
            if not isinstance(value, str):
                raise self._bad(node, "a dtype name")
            return backend._dtype_by_name(value)
        if tag == "$tuple":
            if not isinstance(value, list):
                raise self._bad(node, "a list of items")
            return tuple(self.decode(v) for v in value)
        if tag == "$map":
            if not isinstance(value, dict):
                raise self._bad(node, "a map of strings to items")
            d = {k: self.decode(v) for k, v in value.items()}
        elif tag == "$dict":
            if not isinstance(value, list) or not all(isinstance(kv, list) and len(kv) == 2 for kv in value):
                raise self._bad(node, "a list of [key, value] pairs")
            d = {}
            for k, v in value:
                key = self.decode(k)
                try:
                    hash(key)
                except TypeError:
                    raise self._bad(k, "a hashable dict key") from None
                d[key] = self.decode(v)
        else:
            raise CheckpointError(f"{self.source}: corrupt checkpoint structure: unknown tag {tag!r:.80}")
        kind = node.get("type")
        if kind == "OrderedDict":
            return OrderedDict(d)
        if kind == "Counter":
            return Counter(d)
        if kind is not None:
            raise self._bad(node.get("type"), "'OrderedDict' or 'Counter'")
        return d


# ---------------------------------------------------------------------------------------------- the format
def _header_for(arrays: dict, metadata: dict) -> tuple[bytes, list]:
    """The safetensors header (length prefix included) and the arrays in file order."""
    # larger items first, as the safetensors package orders them, so every tensor stays aligned
    order = sorted(arrays, key=lambda k: (-arrays[k].dtype.itemsize, k))
    header: dict = {"__metadata__": dict(sorted(metadata.items()))}  # sorted: the same object, the same bytes
    offset = 0
    for name in order:
        a = arrays[name]
        header[name] = {"dtype": _NP_TO_ST[a.dtype.newbyteorder("=")], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw, [arrays[n] for n in order]


def _write_array_bytes(f, arr) -> None:
    """Write one array's bytes, little-endian (a seam the crash tests patch)."""
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and not _little_endian()):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    if arr.size:
        f.write(memoryview(arr).cast("B"))


def _little_endian() -> bool:
    import sys

    return sys.byteorder == "little"


def _own_write(f, arrays: dict, metadata: dict) -> None:
    head, ordered = _header_for(arrays, metadata)
    f.write(head)
    for a in ordered:
        _write_array_bytes(f, a)


def _write_to_path(tmp_path: str, arrays: dict, metadata: dict) -> None:
    if _USE_PACKAGE:
        _st_numpy.save_file(arrays, tmp_path, metadata=metadata)
    else:
        with open(tmp_path, "wb") as f:
            _own_write(f, arrays, metadata)


def _atomic_write(path: str, arrays: dict, metadata: dict) -> None:
    try:
        write_atomically(path, lambda tmp: _write_to_path(tmp, arrays, metadata))
    except (IsADirectoryError, FileNotFoundError) as e:
        if e.filename is not None:  # raised by the file system, not by the path checks
            raise
        raise type(e)(f"deepbox.save: {e}") from None


def _contiguous(arr):
    # not xp.ascontiguousarray: it turns a 0-d array into a 1-d one
    return arr if arr.flags.c_contiguous else arr.copy(order="C")


def _crc(arr) -> int:
    return zlib.crc32(memoryview(_contiguous(arr)).cast("B")) if arr.size else 0


# ---------------------------------------------------------------------------------------------- reading
_FOREIGN = [
    (b"PK\x03\x04", "a zip archive (the format torch.save writes by default); deepbox never unpickles. Convert "
                    "it once with safetensors: safetensors.torch.save_file(torch.load(f), 'x.safetensors')"),
    (b"PK\x05\x06", "an empty zip archive, not a checkpoint"),
    (b"\x93NUMPY", "a NumPy .npy file; read it with numpy.load and wrap it with deepbox.from_numpy"),
    (b"\x89HDF", "an HDF5 file, not a safetensors checkpoint"),
    (b"\x1f\x8b", "a gzip-compressed file; decompress it first"),
]


def _foreign_kind(head: bytes) -> str | None:
    for magic, what in _FOREIGN:
        if head.startswith(magic):
            return what
    if len(head) >= 2 and head[0] == 0x80 and 1 <= head[1] <= 5:
        return ("a pickle file (as written by pickle or by torch.save); deepbox never unpickles, since that can "
                "run arbitrary code. Convert it once with safetensors")
    return None


def _parse_header(buf, total: int, source: str):
    """Validate the header of a safetensors file of ``total`` bytes whose start is ``buf``."""
    if total < 8:
        raise CheckpointError(
            f"{source}: not a checkpoint: the file is {total} bytes long, too short for a safetensors header "
            "(empty or truncated)"
        )
    n = struct.unpack("<Q", bytes(buf[:8]))[0]
    # a JSON header follows the length, or nothing does because the file was cut right there
    looks_safetensors = 2 <= n <= _MAX_HEADER and (buf[8:9] == b"{" or (total == 8 and n % 8 == 0))
    if not looks_safetensors:
        # the 8-byte length prefix can look like a magic number, so foreign formats are named only here
        foreign = _foreign_kind(bytes(buf[:8]))
        if foreign:
            raise CheckpointError(f"{source}: not a safetensors checkpoint: it is {foreign}")
        raise CheckpointError(
            f"{source}: not a safetensors checkpoint: its first 8 bytes give a header length of {n} bytes "
            "and no JSON header follows (a foreign or corrupt file)"
        )
    if 8 + n > total:
        raise CheckpointError(
            f"{source}: truncated checkpoint: the header should be {n} bytes but the file ends after "
            f"{total - 8} (the file is {total} bytes long)"
        )
    try:
        header = json.loads(bytes(buf[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(f"{source}: corrupt checkpoint: its header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{source}: corrupt checkpoint: its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{source}: corrupt checkpoint: its __metadata__ is not a map of strings to strings")
    entries = {name: _tensor_entry(name, info, source) for name, info in header.items()}
    # as the safetensors package requires: the tensors, in offset order, tile the data exactly (no gaps, no
    # overlaps, nothing after the last one), each taking the bytes its dtype and shape need
    data_size = total - 8 - n
    end = 0
    for name, (dtype, shape, begin, stop) in sorted(entries.items(), key=lambda kv: (kv[1][2], kv[1][3])):
        nbytes = dtype.itemsize * math.prod(shape)
        if stop - begin != nbytes:
            raise CheckpointError(
                f"{source}: corrupt checkpoint: tensor {name!r} of shape {list(shape)} and dtype {dtype.name} "
                f"needs {nbytes} bytes, but its data offsets are [{begin}, {stop}]"
            )
        if stop > data_size:
            raise CheckpointError(
                f"{source}: truncated checkpoint: tensor {name!r} ends at byte {8 + n + stop} but the file is only "
                f"{total} bytes long"
            )
        if begin != end:
            what = "overlaps the tensor before it" if begin < end else "leaves a gap after the tensor before it"
            raise CheckpointError(
                f"{source}: corrupt checkpoint: tensor {name!r} starts at data offset {begin}, where {end} was "
                f"expected (it {what}); a safetensors file lays its tensors end to end"
            )
        end = stop
    if end != data_size:
        raise CheckpointError(
            f"{source}: corrupt checkpoint: the tensors fill {end} bytes but the file holds {data_size} bytes of "
            "tensor data"
        )
    return n, entries, metadata


def _is_count(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _tensor_entry(name: str, info, source: str) -> tuple:
    """(dtype, shape, begin, end) of one header entry, typed as the safetensors package requires."""
    ok = (isinstance(info, dict) and isinstance(info.get("dtype"), str) and isinstance(info.get("shape"), list)
          and all(_is_count(s) for s in info["shape"]) and isinstance(info.get("data_offsets"), list)
          and len(info["data_offsets"]) == 2 and all(_is_count(x) for x in info["data_offsets"])
          and info["data_offsets"][0] <= info["data_offsets"][1])
    if not ok:
        raise CheckpointError(
            f"{source}: corrupt checkpoint: the header entry of tensor {name!r} is malformed: {info!r:.120}; expected "
            "{'dtype': str, 'shape': [non-negative ints], 'data_offsets': [begin, end]}"
        )
    if info["dtype"] not in _ST_TO_NP:
        raise CheckpointError(
            f"{source}: tensor {name!r} has dtype {info['dtype']!r}, which deepbox does not read; expected one of "
            f"{', '.join(_ST_TO_NP)}"
        )
    return _ST_TO_NP[info["dtype"]], tuple(info["shape"]), info["data_offsets"][0], info["data_offsets"][1]


def _arrays_from_buffer(buf, header_len: int, entries: dict) -> dict:
    start = 8 + header_len
    out = {}
    for name, (dtype, shape, begin, stop) in entries.items():
        arr = xp.frombuffer(buf, dtype=dtype, count=(stop - begin) // dtype.itemsize, offset=start + begin)
        arr = arr.reshape(shape)
        if (start + begin) % dtype.itemsize:  # a header length not a multiple of 8, written elsewhere
            arr = arr.copy()
        if not dtype.isnative:
            arr = arr.astype(dtype.newbyteorder("="))
        out[name] = arr
    return out


def _read_all(f) -> bytearray:
    """Every byte of an open binary file, read through that one handle (a file replaced on disk meanwhile
    does not mix into what is read)."""
    try:
        size = os.fstat(f.fileno()).st_size - f.tell()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        data = f.read()
        return data if isinstance(data, bytearray) else bytearray(data)
    buf = bytearray(size)
    got = f.readinto(buf) if size else 0
    rest = f.read()  # the file grew after fstat: take what is there now
    if got < size:
        del buf[got:]
    if rest:
        buf += rest
    return buf


def _read(f, source: str):
    """Return (arrays by name, metadata) of a safetensors file, checking it on the way.

    One reader for every file, whether or not the safetensors package is installed: the header is
    checked as the package checks it (``_parse_header``), then each tensor is a view of the bytes read.
    """
    buf = _read_all(f)
    n, entries, metadata = _parse_header(buf, len(buf), source)
    return _arrays_from_buffer(buf, n, entries), metadata


def _decode(arrays: dict, metadata: dict, source: str):
    """The object a checkpoint's metadata describes, or CheckpointError naming ``source`` for any malformation."""
    if _KEY_FORMAT not in metadata:
        # a safetensors file from elsewhere: its tensors by name, in file order
        return {name: _make(a) for name, a in arrays.items()}
    version = metadata[_KEY_FORMAT]
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{source}: checkpoint format version {version!r} is not supported by this deepbox "
            f"(it reads version {FORMAT_VERSION})"
        )
    try:
        structure = json.loads(metadata[_KEY_STRUCTURE])
        crcs = json.loads(metadata.get(_KEY_CRC, "{}"))
    except (KeyError, json.JSONDecodeError, RecursionError) as e:
        what = "is too deeply nested" if isinstance(e, RecursionError) else f"is unreadable ({e})"
        raise CheckpointError(f"{source}: corrupt checkpoint: its structure metadata {what}") from None
    if not isinstance(crcs, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in crcs.values()):
        raise CheckpointError(f"{source}: corrupt checkpoint: its checksums ({_KEY_CRC}) are not a map of tensor "
                              "names to integers")
    for name, a in arrays.items():
        if name in crcs and _crc(a) != crcs[name]:
            raise CheckpointError(
                f"{source}: corrupt checkpoint: the data of tensor {name!r} does not match its checksum"
            )
    try:
        return _Decoder(arrays, source).decode(structure)
    except CheckpointError:
        raise
    except RecursionError:
        raise CheckpointError(f"{source}: corrupt checkpoint structure: nested too deeply to read") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise CheckpointError(f"{source}: corrupt checkpoint structure ({type(e).__name__}: {e})") from None


# ---------------------------------------------------------------------------------------------- API
def save(obj, f, pickle_module=None, pickle_protocol: int = 2, _use_new_zipfile_serialization: bool = True,
         format: str | None = None) -> None:
    """Save ``obj`` (state dicts and other nests of tensors, arrays and plain values) to one file.

    ``format="torch"``, or a path ending in ``.pt``/``.pth`` when ``format`` is not given, writes
    PyTorch's zip format instead, which ``torch.load(f, weights_only=True)`` reads
    (``deepbox/io/torch_format.py``). A whole ``Module`` (alone or inside ``obj``) is stored as
    its structure, in deepbox's format whatever the suffix (``deepbox/io/module_state.py``).

    Args:
        obj: tensors, NumPy arrays, numbers, strings, bools, None, dtypes, and lists, tuples and dicts
            of them (dict keys: strings, numbers, bools, None or tuples of them), nested freely.
        f: a path (``str`` or ``os.PathLike``), or a binary file object with ``write``.
        pickle_module, pickle_protocol, _use_new_zipfile_serialization: accepted so that PyTorch code
            runs; deepbox never pickles.

    Raises:
        TypeError: ``obj`` holds something else (the message names where), checked before any
            file is touched.
    """
    from deepbox.io import module_state, torch_format

    if _save_format(f, format, obj) == "torch":
        torch_format.save(obj, f)
        return
    obj = module_state.encode(obj)
    enc = _Encoder()
    structure = enc.encode(obj, [])
    arrays = enc.arrays
    metadata = {
        _KEY_FORMAT: FORMAT_VERSION,
        _KEY_STRUCTURE: json.dumps(structure, separators=(",", ":"), ensure_ascii=False, allow_nan=False),
        _KEY_CRC: json.dumps({k: _crc(a) for k, a in arrays.items()}, separators=(",", ":")),
    }
    if isinstance(f, (str, os.PathLike)):
        _atomic_write(f, arrays, metadata)
    elif hasattr(f, "write"):
        if _USE_PACKAGE:
            f.write(_st_numpy.save(arrays, metadata=metadata))
        else:
            _own_write(f, arrays, metadata)
    else:
        raise TypeError(f"deepbox.save expects a path or a binary file object, got {type(f).__name__}")


def _save_format(f, format, obj) -> str:
    if format not in (None, "torch", "deepbox", "safetensors"):
        raise ValueError(f"deepbox.save: format must be 'deepbox' (safetensors) or 'torch', got {format!r}")
    if format is None:
        from deepbox.io import module_state

        suffix = os.path.splitext(os.fspath(f))[1].lower() if isinstance(f, (str, os.PathLike)) else ""
        format = "torch" if suffix in (".pt", ".pth") and not module_state.contains_module(obj) else "deepbox"
    return format


def _load_torch_file(f, source: str, legacy_check: bool):
    """Read a PyTorch zip file if the open file ``f`` is one (restricted unpickling); None otherwise."""
    from deepbox.io import torch_format

    if not (hasattr(f, "seek") and hasattr(f, "tell")):
        return None
    pos = f.tell()
    head = f.read(64)
    f.seek(pos)
    if torch_format.is_torch_zip(head[:4]):
        return (torch_format.load(f, source),)
    if legacy_check and len(head) >= 2 and head[0] == 0x80 and head[1] in (2, 3, 4, 5):
        if b"\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19" in head:  # torch's legacy magic number (a pickled long)
            raise torch_format.legacy_error(source)
    return None


def _load_open_file(f, source: str, is_path: bool):
    torch_file = _load_torch_file(f, source, legacy_check=is_path)
    if torch_file is not None:
        return torch_file[0]
    arrays, metadata = _read(f, source)
    if _KEY_FORMAT not in metadata:
        # a safetensors file from elsewhere: its tensors by name, in file order
        return {name: _make(a) for name, a in arrays.items()}
    from deepbox.io import module_state

    return module_state.decode(_decode(arrays, metadata, source), source)


def load(f, map_location=None, pickle_module=None, *, weights_only: bool | None = None, mmap: bool | None = None):
    """Load what ``save`` stored, or the tensors of any safetensors file (as a dict name -> tensor).

    Args:
        f: a path or a binary file object with ``read``.
        map_location: accepted for PyTorch code; every tensor loads on the CPU ('cpu', a cpu device,
            a dict or a function are accepted; another device is refused).
        pickle_module, weights_only, mmap: accepted for PyTorch code; nothing is ever unpickled, so
            loading is always "weights only".

    Raises:
        deepbox.io.CheckpointError (a ValueError): the file is truncated, corrupt (a tensor's
            checksum differs) or not a safetensors file (a pickle, a zip archive, ...); the message
            names the file and the problem.
    """
    if isinstance(map_location, (str, device)):
        device(map_location)  # refuses anything but the CPU, with deepbox's message
    if isinstance(f, (str, os.PathLike)):
        source = os.fspath(f)
        # opened once: every read below goes through this handle, so a file replaced meanwhile cannot mix in
        with open(source, "rb") as fh:
            return _load_open_file(fh, source, is_path=True)
    if hasattr(f, "read"):
        return _load_open_file(f, str(getattr(f, "name", None) or f"<{type(f).__name__}>"), is_path=False)
    raise TypeError(f"deepbox.load expects a path or a binary file object, got {type(f).__name__}")
