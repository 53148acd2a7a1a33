"""PyTorch's checkpoint format, read and written without unpickling anything.

``torch.save`` writes a zip archive: ``<name>/data.pkl`` is a pickle of the saved object in which
every tensor is a call of ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``
and every storage a *persistent id* ``('storage', torch.FloatStorage, key, location, numel)``
whose bytes are the archive entry ``<name>/data/<key>``; ``<name>/byteorder`` says ``little``.

Reading (``load``). A pickle is a small stack-machine program, and ``pickle.load`` runs it: any
``GLOBAL`` opcode can name any function and ``REDUCE`` calls it, which is how a malicious
checkpoint runs ``os.system``. Here the program is never handed to ``pickle``: ``pickletools``
only *decodes* its opcodes, and the interpreter below executes them itself with an allow-list.
A global resolves only to deepbox's own stand-ins for what state dicts and training checkpoints
hold (``OrderedDict``, the tensor and parameter rebuild functions, storage types, dtypes,
``torch.Size``, ``torch.device``, ``_codecs.encode`` for bytes); ``REDUCE`` calls only those
stand-ins; containers are built only as lists, tuples, dicts and sets. Any other global or opcode
(``INST``, ``OBJ``, ``NEWOBJ``, ``EXT*``, out-of-band buffers, ...) raises ``CheckpointError``.
Before any tensor memory is allocated, the archive is checked: entries must be stored, not
compressed (no zip bombs); storage keys must name existing ``data/`` entries; a storage's
declared size must match its entry; a tensor's offset, shape and strides must stay inside its
storage and be non-negative. Storages are then read once each with ``np.frombuffer`` and tensors
are strided views of them, so views and tied weights share memory as in PyTorch.

Writing (``save``) emits the same pickle opcodes by hand (protocol 2) for state dicts and
other nests of tensors, numbers, strings and containers, so ``torch.load(f, weights_only=True)``
reads the file into the same structure.
"""
from __future__ import annotations

import io
import math
import os
import pickletools
import re
import struct
import zipfile
from collections import OrderedDict

from deepbox import backend
from deepbox.io.errors import CheckpointError
from deepbox.tensor import Size, Tensor, _make, device

xp = backend.xp

__all__ = ["is_torch_zip", "load", "save"]

_MAX_PICKLE = 256 * 1024 * 1024     # a data.pkl larger than this is refused before it is read
_MAX_OVERLAP_BYTES = 256 * 1024 * 1024  # an expanded (stride-0) tensor may not exceed this


def _error(source, reason):
    return CheckpointError(f"{source}: refused PyTorch checkpoint: {reason}")


# ---------------------------------------------------------------------------------------------- dtypes
# PyTorch's typed storage classes and dtypes -> (NumPy dtype as stored, how deepbox holds it)
_STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool",
}
_NP_OF = {
    "float32": "<f4", "float64": "<f8", "float16": "<f2", "bfloat16": "<u2", "int64": "<i8", "int32": "<i4",
    "int16": "<i2", "int8": "i1", "uint8": "u1", "bool": "?", "uint16": "<u2", "uint32": "<u4", "uint64": "<u8",
}
_TORCH_DTYPE_NAMES = {  # torch.<name> -> canonical name; aliases included
    **{n: n for n in _NP_OF}, "float": "float32", "double": "float64", "half": "float16", "long": "int64",
    "int": "int32", "short": "int16",
}


class _DType:
    """A dtype named in the pickle (``torch.float32``); becomes a deepbox dtype where deepbox has one."""

    def __init__(self, name):
        self.name = name


class _StorageType:
    def __init__(self, name):  # a dtype name, or None for UntypedStorage (bytes)
        self.name = name


class _Storage:
    """One ``data/<key>`` entry, checked but not yet read."""

    def __init__(self, key, info, np_dtype_name, numel):
        self.key, self.info, self.np_dtype_name, self.numel = key, info, np_dtype_name, numel
        self.array = None


class _Device:
    def __init__(self, *args):
        self.args = args


def _codecs_encode(text, encoding="latin1"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise ValueError("_codecs.encode is allowed only for str -> latin1 bytes")
    return text.encode("latin1")


def _size(dims=()):
    return Size(tuple(dims))


# ---------------------------------------------------------------------------------------------- reading
class _Reader:
    def __init__(self, zf: zipfile.ZipFile, prefix: str, source: str, total_size: int):
        self.zf, self.prefix, self.source, self.total_size = zf, prefix, source, total_size
        self.storages: dict[str, _Storage] = {}
        self.globals = {
            ("collections", "OrderedDict"): OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor_v2,
            ("torch._utils", "_rebuild_tensor_v3"): self._rebuild_tensor_v3,
            ("torch._utils", "_rebuild_parameter"): self._rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): self._rebuild_parameter_with_state,
            ("torch", "Size"): _size,
            ("torch", "device"): _Device,
            ("torch.storage", "UntypedStorage"): _StorageType(None),
            ("_codecs", "encode"): _codecs_encode,
            ("builtins", "set"): set,
            ("builtins", "frozenset"): frozenset,
            ("__builtin__", "set"): set,  # protocol 2 spells the module as Python 2 did
            ("__builtin__", "frozenset"): frozenset,
        }
        for cls, name in _STORAGE_DTYPES.items():
            self.globals[("torch", cls)] = _StorageType(name)
        for alias, name in _TORCH_DTYPE_NAMES.items():
            self.globals[("torch", alias)] = _DType(name)
        # what REDUCE may call: the functions and classes above, never a storage type or dtype stand-in
        self._callables = {id(v) for v in self.globals.values() if callable(v)}

    def fail(self, reason):
        return _error(self.source, reason)

    # -------------------------------------------------------------- persistent ids: storages
    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise self.fail(f"persistent reference {pid!r:.100} is not a storage")
        _, stype, key, location, numel = pid
        if not isinstance(stype, _StorageType):
            raise self.fail(f"storage type {stype!r:.60} is not a PyTorch storage class")
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z0-9_]{1,64}", key):
            raise self.fail(f"storage key {key!r:.80} is not a plain name (keys must stay inside the archive)")
        if not isinstance(numel, int) or isinstance(numel, bool) or numel < 0:
            raise self.fail(f"storage {key} declares an invalid size {numel!r:.40}")
        if key in self.storages:
            return self.storages[key]
        name = f"{self.prefix}data/{key}"
        try:
            info = self.zf.getinfo(name)
        except KeyError:
            raise self.fail(f"storage {key} refers to the entry {name!r}, which the archive does not hold") from None
        if info.compress_type != zipfile.ZIP_STORED:
            raise self.fail(f"the entry {name!r} is compressed; PyTorch stores storages uncompressed")
        dtype_name = stype.name or "uint8"  # untyped storages count bytes
        itemsize = xp.dtype(_NP_OF[dtype_name]).itemsize
        if numel * itemsize != info.file_size:
            raise self.fail(f"storage {key} declares {numel} elements of {dtype_name} ({numel * itemsize} bytes) "
                            f"but its entry holds {info.file_size} bytes")
        if info.file_size > self.total_size:
            raise self.fail(f"the entry {name!r} claims {info.file_size} bytes, more than the whole file")
        st = _Storage(key, info, dtype_name, numel)
        self.storages[key] = st
        return st

    def _storage_array(self, st: _Storage):
        if st.array is None:
            buf = bytearray(st.info.file_size)
            try:
                with self.zf.open(st.info) as fh:
                    n = fh.readinto(buf)
            except (zipfile.BadZipFile, OSError, ValueError) as e:
                raise self.fail(f"the entry {st.info.filename!r} is unreadable ({e})") from None
            if n != len(buf):
                raise self.fail(f"the entry {st.info.filename!r} is truncated")
            st.array = xp.frombuffer(buf, dtype=xp.uint8)
        return st.array

    # -------------------------------------------------------------- tensors
    def _tensor(self, storage, offset, size, stride, dtype_name):
        if not isinstance(storage, _Storage):
            raise self.fail("a tensor is rebuilt from something that is not a storage")
        if dtype_name not in _NP_OF:
            raise self.fail(f"dtype {dtype_name} is not supported")
        dims = tuple(size) if isinstance(size, (tuple, list)) else None
        strides = tuple(stride) if isinstance(stride, (tuple, list)) else None
        ints = dims is not None and strides is not None and len(dims) == len(strides) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in (*dims, *strides, offset))
        if not ints:
            raise self.fail(f"tensor with size {size!r:.60}, stride {stride!r:.60} and offset {offset!r:.20} "
                            "is malformed")
        if any(d < 0 for d in dims) or any(s < 0 for s in strides) or offset < 0:
            raise self.fail(f"tensor with negative size, stride or offset: size {list(dims)}, stride "
                            f"{list(strides)}, offset {offset}")
        np_dtype = xp.dtype(_NP_OF[dtype_name])
        itemsize = np_dtype.itemsize
        storage_items = storage.info.file_size // itemsize
        numel = math.prod(dims)
        if numel:
            last = offset + sum((d - 1) * s for d, s in zip(dims, strides))
            if last >= storage_items:
                raise self.fail(f"tensor of size {list(dims)}, stride {list(strides)} and offset {offset} reaches "
                                f"element {last} of a storage of {storage_items} {dtype_name} elements")
            if numel > storage_items and numel * itemsize > _MAX_OVERLAP_BYTES:
                raise self.fail(f"tensor of size {list(dims)} has {numel} elements, far more than its storage's "
                                f"{storage_items}; expanded tensors that large are refused")
        raw = self._storage_array(storage)
        flat = raw[: storage_items * itemsize].view(np_dtype)
        if numel == 0:
            arr = xp.zeros(dims, np_dtype)
        else:
            arr = xp.lib.stride_tricks.as_strided(flat[offset:], shape=dims,
                                                  strides=tuple(s * itemsize for s in strides))
        return self._to_deepbox(arr, dtype_name)

    def _to_deepbox(self, arr, dtype_name):
        if dtype_name == "bfloat16":  # the top half of a float32; NumPy has no bfloat16
            arr = (arr.astype(xp.uint32) << 16).view(xp.float32)
        elif dtype_name == "uint16":
            arr = arr.astype(xp.int32)
        elif dtype_name == "uint32":
            arr = arr.astype(xp.int64)
        elif dtype_name == "uint64":
            if arr.size and arr.max() >= 2 ** 63:
                raise self.fail("a uint64 tensor holds values above int64's range (deepbox has no uint64)")
            arr = arr.astype(xp.int64)
        elif not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        return _make(arr)

    def _rebuild_tensor_v2(self, storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
        if not isinstance(storage, _Storage):
            raise self.fail("a tensor is rebuilt from something that is not a storage")
        t = self._tensor(storage, offset, size, stride, storage.np_dtype_name)
        t.requires_grad = bool(requires_grad) and t._data.dtype.kind == "f"
        return t

    def _rebuild_tensor_v3(self, storage, offset, size, stride, requires_grad, hooks, dtype, metadata=None):
        if not isinstance(dtype, _DType):
            raise self.fail(f"tensor dtype {dtype!r:.40} is not a PyTorch dtype")
        t = self._tensor(storage, offset, size, stride, dtype.name)
        t.requires_grad = bool(requires_grad) and t._data.dtype.kind == "f"
        return t

    def _rebuild_parameter(self, data, requires_grad, hooks=None):
        from deepbox.nn.parameter import Parameter

        if not isinstance(data, Tensor):
            raise self.fail("a parameter is rebuilt from something that is not a tensor")
        return Parameter(data, requires_grad=bool(requires_grad))

    def _rebuild_parameter_with_state(self, data, requires_grad, hooks, state):
        return self._rebuild_parameter(data, requires_grad, hooks)

    # -------------------------------------------------------------- the pickle interpreter
    def run(self, data: bytes):
        stack: list = []
        marks: list = []
        memo: dict = {}

        def pop_mark():
            if not marks:
                raise self.fail("corrupt pickle: a MARK is missing")
            start = marks.pop()
            items = stack[start:]
            del stack[start:]
            return items

        try:
            ops = pickletools.genops(io.BytesIO(data))
            for op, arg, _pos in ops:
                name = op.name
                if name in ("PROTO", "FRAME"):
                    continue
                if name == "STOP":
                    if len(stack) != 1:
                        raise self.fail("corrupt pickle: the stack does not end with one object")
                    return self._finish(stack[0])
                if name == "MARK":
                    marks.append(len(stack))
                elif name in _PUSH_ARG:
                    stack.append(arg)
                elif name == "NONE":
                    stack.append(None)
                elif name in ("NEWTRUE", "NEWFALSE"):
                    stack.append(name == "NEWTRUE")
                elif name == "EMPTY_LIST":
                    stack.append([])
                elif name == "EMPTY_TUPLE":
                    stack.append(())
                elif name == "EMPTY_DICT":
                    stack.append({})
                elif name == "EMPTY_SET":
                    stack.append(set())
                elif name == "LIST":
                    stack.append(pop_mark())
                elif name == "TUPLE":
                    stack.append(tuple(pop_mark()))
                elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                    n = int(name[-1])
                    items = tuple(stack[-n:])
                    del stack[-n:]
                    stack.append(items)
                elif name == "DICT":
                    items = pop_mark()
                    stack.append(dict(zip(items[::2], items[1::2])))
                elif name == "FROZENSET":
                    stack.append(frozenset(pop_mark()))
                elif name == "APPEND":
                    v = stack.pop()
                    self._list(stack[-1]).append(v)
                elif name == "APPENDS":
                    items = pop_mark()
                    self._list(stack[-1]).extend(items)
                elif name == "SETITEM":
                    v = stack.pop()
                    k = stack.pop()
                    self._dict(stack[-1])[k] = v
                elif name == "SETITEMS":
                    items = pop_mark()
                    d = self._dict(stack[-1])
                    for k, v in zip(items[::2], items[1::2]):
                        d[k] = v
                elif name == "ADDITEMS":
                    items = pop_mark()
                    s = stack[-1]
                    if type(s) is not set:
                        raise self.fail("corrupt pickle: ADDITEMS on something that is not a set")
                    s.update(items)
                elif name == "POP":
                    stack.pop()
                elif name == "POP_MARK":
                    pop_mark()
                elif name == "DUP":
                    stack.append(stack[-1])
                elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                    memo[arg] = stack[-1]
                elif name == "MEMOIZE":
                    memo[len(memo)] = stack[-1]
                elif name in ("GET", "BINGET", "LONG_BINGET"):
                    if arg not in memo:
                        raise self.fail(f"corrupt pickle: memo entry {arg} is missing")
                    stack.append(memo[arg])
                elif name == "GLOBAL":
                    module, _, qual = arg.partition(" ")
                    stack.append(self._global(module, qual))
                elif name == "STACK_GLOBAL":
                    qual = stack.pop()
                    module = stack.pop()
                    if not (isinstance(module, str) and isinstance(qual, str)):
                        raise self.fail("corrupt pickle: STACK_GLOBAL without two strings")
                    stack.append(self._global(module, qual))
                elif name == "REDUCE":
                    args = stack.pop()
                    func = stack.pop()
                    if id(func) not in self._callables or not isinstance(args, tuple):
                        raise self.fail(f"the pickle calls {func!r:.60}, which is not an allowed function")
                    stack.append(func(*args))
                elif name == "BUILD":
                    state = stack.pop()
                    self._build(stack[-1], state)
                elif name == "BINPERSID":
                    stack.append(self.persistent_load(stack.pop()))
                else:
                    raise self.fail(f"the pickle opcode {name} is not allowed (only plain containers, numbers, "
                                    "strings and allowed functions are)")
        except IndexError:
            raise self.fail("corrupt pickle: the stack ran empty") from None
        except RecursionError:
            raise self.fail("the pickle nests containers too deeply") from None
        except (ValueError, TypeError) as e:
            if isinstance(e, CheckpointError):
                raise
            raise self.fail(f"corrupt pickle ({type(e).__name__}: {e})") from None
        raise self.fail("corrupt pickle: it has no STOP opcode")

    def _global(self, module, qual):
        try:
            return self.globals[(module, qual)]
        except (KeyError, TypeError):
            raise self.fail(f"the pickle names the global {module}.{qual}, which is not on the allow-list "
                            "(tensors, storages, dtypes, torch.Size, OrderedDict and plain containers)") from None

    def _list(self, obj):
        if type(obj) is not list:
            raise self.fail(f"corrupt pickle: APPEND to a {type(obj).__name__}")
        return obj

    def _dict(self, obj):
        if type(obj) not in (dict, OrderedDict):
            raise self.fail(f"corrupt pickle: SETITEM on a {type(obj).__name__}")
        return obj

    def _build(self, obj, state):
        # a state dict's OrderedDict carries a ``_metadata`` attribute (module versions)
        if type(obj) is OrderedDict and isinstance(state, dict) and all(isinstance(k, str) for k in state):
            for k, v in state.items():
                if k.startswith("__"):
                    raise self.fail(f"the pickle sets the attribute {k!r}, which is not allowed")
                setattr(obj, k, v)
            return
        raise self.fail(f"the pickle sets the state of a {type(obj).__name__}, which is not allowed")

    def _finish(self, obj):
        """Turn the stand-ins (dtypes, devices) into deepbox objects."""
        seen: dict = {}

        def conv(o):
            if isinstance(o, _DType):
                try:
                    return backend._dtype_by_name(o.name)
                except KeyError:
                    raise self.fail(f"dtype torch.{o.name} has no deepbox counterpart") from None
            if isinstance(o, _Device):
                return device("cpu")
            if isinstance(o, (_StorageType, _Storage)):
                raise self.fail("the checkpoint holds a bare storage; deepbox reads tensors")
            if type(o) in (list, dict, OrderedDict) or type(o) is tuple or type(o) is Size:
                if id(o) in seen:
                    return seen[id(o)]
                if type(o) is list:
                    out = []
                    seen[id(o)] = out
                    out.extend(conv(v) for v in o)
                    return out
                if type(o) in (dict, OrderedDict):
                    out = type(o)()
                    seen[id(o)] = out
                    for k, v in o.items():
                        out[conv(k)] = conv(v)
                    if hasattr(o, "_metadata"):
                        out._metadata = o._metadata
                    return out
                return type(o)(conv(v) for v in o)
            return o

        return conv(obj)


_PUSH_ARG = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "BINUNICODE", "SHORT_BINUNICODE",
             "BINUNICODE8", "UNICODE", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "FLOAT", "BINFLOAT"}


def is_torch_zip(head: bytes) -> bool:
    return head.startswith(b"PK\x03\x04")


def load(f, source: str):
    """Read a PyTorch zip checkpoint from a path or a seekable binary file object."""
    try:
        zf = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError) as e:
        raise _error(source, f"not a readable zip archive ({e})") from None
    with zf:
        if isinstance(f, (str, os.PathLike)):
            total = os.path.getsize(f)
        else:
            pos = f.tell()
            total = f.seek(0, 2)
            f.seek(pos)
        names = zf.namelist()
        pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pkls:
            if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
                raise _error(source, "it is a TorchScript archive (torch.jit.save); deepbox reads state dicts and "
                                     "checkpoints saved with torch.save")
            raise _error(source, "the zip archive has no <name>/data.pkl entry, so torch.save did not write it")
        prefix = pkls[0][: -len("data.pkl")]
        if any(n.startswith(prefix) and (n.endswith("constants.pkl") or n.startswith(prefix + "code/"))
               for n in names):
            raise _error(source, "it is a TorchScript archive (torch.jit.save); deepbox reads state dicts and "
                                 "checkpoints saved with torch.save")
        if prefix + "byteorder" in names:
            order = zf.read(prefix + "byteorder")
            if order.strip() != b"little":
                raise _error(source, f"its byte order is {order.strip().decode('ascii', 'replace')!r}; only "
                                     "little-endian files are read")
        info = zf.getinfo(pkls[0])
        if info.compress_type != zipfile.ZIP_STORED:
            raise _error(source, "its data.pkl entry is compressed; PyTorch stores entries uncompressed")
        if info.file_size > min(_MAX_PICKLE, total):
            raise _error(source, f"its data.pkl entry claims {info.file_size} bytes, more than the file holds")
        try:
            data = zf.read(info)
        except (zipfile.BadZipFile, OSError) as e:
            raise _error(source, f"its data.pkl entry is unreadable ({e})") from None
        return _Reader(zf, prefix, source, total).run(data)


def legacy_error(source: str):
    return _error(source, "it is in PyTorch's legacy (pre-1.6, non-zip) format, which deepbox does not read; "
                          "re-save it with a current torch.save (the default zip format)")


# ---------------------------------------------------------------------------------------------- writing
class _Writer:
    """Emit protocol-2 pickle opcodes for a nest of tensors and plain values (no memo needed)."""

    def __init__(self):
        self.out = io.BytesIO()
        self.storages: list = []          # contiguous arrays, in key order
        self._storage_of: dict = {}       # (id(root), dtype) -> key

    def w(self, b: bytes):
        self.out.write(b)

    def global_(self, module, name):
        self.w(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def string(self, s: str):
        b = s.encode("utf-8")
        self.w(b"X" + struct.pack("<I", len(b)) + b)

    def int_(self, v: int):
        if 0 <= v < 256:
            self.w(b"K" + bytes([v]))
        elif -(2 ** 31) <= v < 2 ** 31:
            self.w(b"J" + struct.pack("<i", v))
        else:
            raw = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
            self.w(b"\x8a" + bytes([len(raw)]) + raw)

    def tuple_(self, items, path):
        self.w(b"(")
        for i, v in enumerate(items):
            self.obj(v, path + [i])
        self.w(b"t")

    def empty_ordered_dict(self):
        self.global_("collections", "OrderedDict")
        self.w(b")R")

    def obj(self, o, path):
        from deepbox.nn.modules.module import Module

        if o is None:
            self.w(b"N")
        elif o is True or o is False:
            self.w(b"\x88" if o else b"\x89")
        elif isinstance(o, int):
            self.int_(int(o))
        elif isinstance(o, float):
            self.w(b"G" + struct.pack(">d", o))
        elif isinstance(o, str):
            self.string(o)
        elif isinstance(o, bytes):
            self.global_("_codecs", "encode")
            self.string(o.decode("latin1"))
            self.string("latin1")
            self.w(b"\x86R")
        elif isinstance(o, backend.dtype):
            self.global_("torch", o.name)
        elif isinstance(o, device):
            self.global_("torch", "device")
            self.string("cpu")
            self.w(b"\x85R")
        elif isinstance(o, Size):
            self.global_("torch", "Size")
            self.tuple_(tuple(int(v) for v in o), path)
            self.w(b"\x85R")
        elif isinstance(o, Tensor):
            self.tensor(o, path)
        elif isinstance(o, xp.ndarray):
            self.tensor(_make(o), path)
        elif isinstance(o, xp.generic):
            self.obj(o.item(), path)
        elif isinstance(o, tuple):
            self.tuple_(o, path)
        elif isinstance(o, list):
            self.w(b"](")
            for i, v in enumerate(o):
                self.obj(v, path + [i])
            self.w(b"e")
        elif isinstance(o, dict):
            if isinstance(o, OrderedDict):
                self.empty_ordered_dict()
            else:
                self.w(b"}")
            if o:
                self.w(b"(")
                for k, v in o.items():
                    if isinstance(k, (Tensor, xp.ndarray, list, dict)):
                        raise TypeError(f"deepbox.save(format='torch') cannot store a dict key of type "
                                        f"{type(k).__name__} at {_where(path)}")
                    self.obj(k, path)
                    self.obj(v, path + [k])
                self.w(b"u")
        else:
            hint = (" (save its state_dict() instead, or the whole model in deepbox's format)"
                    if isinstance(o, Module) or hasattr(o, "state_dict") else "")
            raise TypeError(f"deepbox.save(format='torch') cannot store a {type(o).__name__} at {_where(path)}"
                            f"{hint}: a PyTorch weights-only checkpoint holds tensors, numbers, strings, bools, "
                            "None, dtypes and lists, tuples and dicts of them")

    def tensor(self, t, path):
        arr = t._data
        name = _TORCH_NAME.get(arr.dtype.newbyteorder("=").str)
        if name is None:
            raise TypeError(f"deepbox.save(format='torch') cannot store dtype {arr.dtype} at {_where(path)}")
        key, offset, strides = self.storage_for(arr)
        is_param = type(t).__name__ == "Parameter"
        if is_param:
            self.global_("torch._utils", "_rebuild_parameter")
            self.w(b"(")
        self.global_("torch._utils", "_rebuild_tensor_v2")
        self.w(b"((")
        self.string("storage")
        self.global_("torch", name)
        self.string(key)
        self.string("cpu")
        self.int_(int(self.storages[int(key)].size))
        self.w(b"tQ")  # the persistent id tuple, then BINPERSID
        self.int_(offset)
        self.tuple_(tuple(int(d) for d in arr.shape), path)
        self.tuple_(strides, path)
        self.w(b"\x88" if (t.requires_grad and not is_param) else b"\x89")
        self.empty_ordered_dict()
        self.w(b"tR")
        if is_param:
            self.w(b"\x88" if t.requires_grad else b"\x89")
            self.empty_ordered_dict()
            self.w(b"tR")

    def storage_for(self, arr):
        """The storage key, element offset and element strides of ``arr`` (views share their base's storage)."""
        root = arr
        while isinstance(root.base, xp.ndarray):
            root = root.base
        item = arr.dtype.itemsize
        if (root is not arr and root.flags.c_contiguous and root.dtype == arr.dtype and arr.size
                and all(s >= 0 and s % item == 0 for s in arr.strides)):
            start = arr.__array_interface__["data"][0] - root.__array_interface__["data"][0]
            if start >= 0 and start % item == 0:
                rkey = (id(root), arr.dtype.str)
                if rkey not in self._storage_of:
                    self._storage_of[rkey] = str(len(self.storages))
                    self.storages.append(root.reshape(-1))
                return self._storage_of[rkey], start // item, tuple(s // item for s in arr.strides)
        rkey = (id(arr), arr.dtype.str, arr.shape, arr.strides)
        if rkey not in self._storage_of:
            self._storage_of[rkey] = str(len(self.storages))
            self.storages.append(xp.ascontiguousarray(arr).reshape(-1))
        contiguous_strides, acc = [], 1
        for d in reversed(arr.shape):
            contiguous_strides.append(acc)
            acc *= d
        return self._storage_of[rkey], 0, tuple(reversed(contiguous_strides))


_TORCH_NAME = {"<f4": "FloatStorage", "<f8": "DoubleStorage", "<f2": "HalfStorage", "<i8": "LongStorage",
               "<i4": "IntStorage", "<i2": "ShortStorage", "|i1": "CharStorage", "|u1": "ByteStorage",
               "|b1": "BoolStorage"}


def _where(path):
    return "obj" + "".join(f"[{p!r}]" for p in path)


def dumps(obj) -> bytes:
    """The bytes of a PyTorch zip checkpoint holding ``obj`` (checked fully before anything is written)."""
    wr = _Writer()
    wr.w(b"\x80\x02")
    wr.obj(obj, [])
    wr.w(b".")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        _write_entry(zf, "archive/data.pkl", wr.out.getvalue())
        _write_entry(zf, "archive/byteorder", b"little")
        for i, arr in enumerate(wr.storages):
            if arr.dtype.byteorder == ">":
                arr = arr.astype(arr.dtype.newbyteorder("<"))
            _write_entry(zf, f"archive/data/{i}", memoryview(xp.ascontiguousarray(arr)).cast("B").tobytes())
        _write_entry(zf, "archive/version", b"3\n")
    return buf.getvalue()


def _write_entry(zf, name, data: bytes):
    # PyTorch aligns each entry's data to 64 bytes (it can then map storages); pad the local header's extra field
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    header_end = zf.fp.tell() + 30 + len(name.encode())
    pad = (-(header_end + 4)) % 64
    info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad  # an unknown extra id, as PyTorch's writer uses
    zf.writestr(info, data)


def save(obj, f) -> None:
    """Write ``obj`` as a PyTorch zip checkpoint to a path (atomically) or a binary file object."""
    data = dumps(obj)
    if isinstance(f, (str, os.PathLike)):
        _atomic_write_bytes(os.fspath(f), data)
    elif hasattr(f, "write"):
        f.write(data)
    else:
        raise TypeError(f"deepbox.save expects a path or a binary file object, got {type(f).__name__}")


def _atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` through deepbox's one atomic writer (``deepbox/io/atomic.py``)."""
    from deepbox.io.atomic import write_atomically

    def fill(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    try:
        write_atomically(path, fill)
    except (IsADirectoryError, FileNotFoundError) as e:
        if e.filename is not None:  # raised by the file system, not by the path checks
            raise
        raise type(e)(f"deepbox.save: {e}") from None
