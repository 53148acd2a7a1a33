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
renamed over the destination with ``os.replace``: a crash leaves either the old file or the new
one, never a half-written one. The safetensors package writes and reads the file when it is
installed; otherwise a small reader and writer of the format here do, so deepbox needs only NumPy.
"""
from __future__ import annotations

import json
import math
import os
import struct
import tempfile
import zlib
from collections import Counter, OrderedDict

from deepbox import backend
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


class CheckpointError(ValueError):
    """A file that is not a readable deepbox/safetensors checkpoint (truncated, corrupt or foreign)."""


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

    def decode(self, node):
        if node is None or isinstance(node, (bool, str, int, float)):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict) or not node:
            raise CheckpointError(f"{self.source}: corrupt checkpoint structure: unexpected node {node!r:.80}")
        tag = next(iter(node))
        if tag == "$tensor":
            key = (node["$tensor"], node.get("requires_grad", False), node.get("parameter", False))
            t = self._objs.get(key)
            if t is None:
                t = _make(self._array(node["$tensor"]))
                if key[2]:
                    from deepbox.nn.parameter import Parameter

                    t = Parameter(t, requires_grad=key[1])
                elif key[1]:
                    t.requires_grad = True
                self._objs[key] = t
            return t
        if tag == "$ndarray":
            return self._array(node["$ndarray"])
        if tag == "$npscalar":
            return self._array(node["$npscalar"])[()]
        if tag == "$float":
            return float(node["$float"])
        if tag == "$dtype":
            return backend._dtype_by_name(node["$dtype"])
        if tag == "$tuple":
            return tuple(self.decode(v) for v in node["$tuple"])
        if tag == "$map":
            d = {k: self.decode(v) for k, v in node["$map"].items()}
        elif tag == "$dict":
            d = {self.decode(k): self.decode(v) for k, v in node["$dict"]}
        else:
            raise CheckpointError(f"{self.source}: corrupt checkpoint structure: unknown tag {tag!r}")
        kind = node.get("type")
        if kind == "OrderedDict":
            return OrderedDict(d)
        if kind == "Counter":
            return Counter(d)
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
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
    else:
        with open(tmp_path, "wb") as f:
            _own_write(f, arrays, metadata)
            f.flush()
            os.fsync(f.fileno())


def _atomic_write(path: str, arrays: dict, metadata: dict) -> None:
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"deepbox.save: {path} is a directory, expected a file path")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"deepbox.save: the folder {folder} does not exist (saving to {path})")
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        _write_to_path(tmp, arrays, metadata)
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)


def _file_mode(path: str) -> int:
    # mkstemp makes a private file; give the checkpoint the permissions a plain open() would
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _fsync_folder(folder: str) -> None:
    # make the rename itself durable; not every platform can open a directory
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{source}: corrupt checkpoint: its header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{source}: corrupt checkpoint: its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    data_size = total - 8 - n
    end = 0
    for name, info in header.items():
        try:
            dtype = _ST_TO_NP[info["dtype"]]
            shape = tuple(int(s) for s in info["shape"])
            begin, stop = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(
                f"{source}: corrupt checkpoint: the header entry of tensor {name!r} is malformed or has an "
                f"unsupported dtype: {info!r:.120}"
            ) from None
        nbytes = dtype.itemsize * math.prod(shape)
        if min(shape, default=0) < 0 or stop - begin != nbytes or begin < 0:
            raise CheckpointError(
                f"{source}: corrupt checkpoint: tensor {name!r} of shape {list(shape)} and dtype {info['dtype']} "
                f"needs {nbytes} bytes, but its data offsets are [{begin}, {stop}]"
            )
        if stop > data_size:
            raise CheckpointError(
                f"{source}: truncated checkpoint: tensor {name!r} ends at byte {8 + n + stop} but the file is only "
                f"{total} bytes long"
            )
        header[name] = (dtype, shape, begin, stop)
        end = max(end, stop)
    if end != data_size:
        raise CheckpointError(
            f"{source}: corrupt checkpoint: the tensors fill {end} bytes but the file holds {data_size} bytes of "
            "tensor data"
        )
    return n, header, metadata


def _arrays_from_buffer(buf, header_len: int, entries: dict) -> dict:
    start = 8 + header_len
    out = {}
    for name, (dtype, shape, begin, stop) in entries.items():
        arr = xp.frombuffer(buf, dtype=dtype, count=(stop - begin) // dtype.itemsize, offset=start + begin)
        arr = arr.reshape(shape)
        if not dtype.isnative:
            arr = arr.astype(dtype.newbyteorder("="))
        out[name] = arr
    return out


def _read(f, source: str, path: str | None):
    """Return (arrays by name, metadata) of a safetensors file, checking it on the way."""
    if path is not None and _USE_PACKAGE:
        total = os.fstat(f.fileno()).st_size
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
        buf = head + (f.read(min(n, _MAX_HEADER)) if len(head) == 8 and n <= _MAX_HEADER else b"")
        _, entries, metadata = _parse_header(buf, total, source)
        try:
            arrays = _st_numpy.load_file(path)
        except Exception as e:  # the header checks above should have caught it; name the file anyway
            raise CheckpointError(f"{source}: unreadable checkpoint: {e}") from None
        arrays = {name: arrays[name] for name in entries}
        return arrays, metadata
    data = f.read()
    buf = bytearray(data) if not isinstance(data, bytearray) else data
    n, entries, metadata = _parse_header(buf, len(buf), source)
    if _USE_PACKAGE:
        try:
            loaded = _st_numpy.load(bytes(buf))
        except Exception as e:
            raise CheckpointError(f"{source}: unreadable checkpoint: {e}") from None
        return {name: loaded[name] for name in entries}, metadata
    return _arrays_from_buffer(buf, n, entries), metadata


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


def _load_torch_file(f, source: str):
    """Read a PyTorch zip file if ``f`` is one (restricted unpickling); None otherwise."""
    from deepbox.io import torch_format

    if hasattr(f, "read"):
        if not (hasattr(f, "seek") and hasattr(f, "tell")):
            return None
        pos = f.tell()
        head = f.read(4)
        f.seek(pos)
    else:
        with open(f, "rb") as fh:
            head = fh.read(4)
    if torch_format.is_torch_zip(head):
        return (torch_format.load(f, source),)
    if len(head) >= 2 and head[0] == 0x80 and head[1] in (2, 3, 4, 5) and not hasattr(f, "read"):
        with open(f, "rb") as fh:
            start = fh.read(64)
        if b"\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19" in start:  # torch's legacy magic number (a pickled long)
            raise torch_format.legacy_error(source)
    return None


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
    from deepbox.io import module_state

    source = os.fspath(f) if isinstance(f, (str, os.PathLike)) else str(getattr(f, "name", None) or
                                                                        f"<{type(f).__name__}>")
    torch_file = _load_torch_file(f, source) if isinstance(f, (str, os.PathLike)) or hasattr(f, "read") else None
    if torch_file is not None:
        return torch_file[0]
    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        source = path
        with open(path, "rb") as fh:
            arrays, metadata = _read(fh, source, path)
    elif hasattr(f, "read"):
        source = getattr(f, "name", None) or f"<{type(f).__name__}>"
        arrays, metadata = _read(f, str(source), None)
    else:
        raise TypeError(f"deepbox.load expects a path or a binary file object, got {type(f).__name__}")

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
    except (KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{source}: corrupt checkpoint: its structure metadata is unreadable ({e})") from None
    for name, a in arrays.items():
        if name in crcs and _crc(a) != crcs[name]:
            raise CheckpointError(
                f"{source}: corrupt checkpoint: the data of tensor {name!r} does not match its checksum"
            )
    try:
        result = _Decoder(arrays, source).decode(structure)
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{source}: corrupt checkpoint structure ({type(e).__name__}: {e})") from None
    return module_state.decode(result, source)
