"""The array backend: the only module of deepbox that imports NumPy directly.

Everything above this layer asks ``backend`` for its array module (``xp``), its
dtypes and its random generator, so that another array module with NumPy's API
could slot in here without touching the ops.
"""
from __future__ import annotations

import os
import sys

import numpy as np

xp = np  # the array module every op computes with
ndarray = np.ndarray


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def tune_allocator(mmap_threshold: int = 64 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Keep freed array memory in the process for reuse (glibc only); True when applied.

    By default glibc serves every allocation above about 128 KB-32 MB with a fresh ``mmap`` and
    returns it on free, so each new activation or gradient array of a training step costs one
    page fault per 4 KB page (a 2.4 MB ReLU output: about 1 ms of faults for 0.1 ms of work).
    Raising the mmap threshold to ``mmap_threshold`` and the trim threshold to ``trim_threshold``
    lets a step reuse the previous step's freed memory, as PyTorch's caching allocator does:
    LeNet-5's training step 15.5 -> 11.3 ms on 2 cores. The price is that up to
    ``trim_threshold`` bytes of freed memory stay mapped. ``DEEPBOX_MALLOC=0`` in the
    environment turns this off at import.
    """
    for name, v in (("mmap_threshold", mmap_threshold), ("trim_threshold", trim_threshold)):
        if not isinstance(v, int) or not 0 <= v < 2 ** 31:
            raise ValueError(f"tune_allocator: {name} must be a byte count in [0, 2**31), got {v!r}")
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):   # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) and mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))


# whether the setting above is in effect (``deepbox info`` reports it)
allocator_tuned = os.environ.get("DEEPBOX_MALLOC", "1") != "0" and tune_allocator()


def array_module(*arrays):
    """Return the array module of ``arrays`` (NumPy on the CPU)."""
    return np


class dtype:
    """A deepbox dtype: a named wrapper around a NumPy dtype, like ``torch.dtype``."""

    __slots__ = ("name", "np", "is_floating_point", "is_complex", "is_signed", "itemsize", "_category")

    def __init__(self, name: str, np_dtype, category: int):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = category == 2
        self.is_complex = category == 3
        self.is_signed = self.np.kind in "ifc"
        self.itemsize = self.np.itemsize
        self._category = category  # 0 bool, 1 integer, 2 floating point, 3 complex

    def __repr__(self) -> str:
        return f"deepbox.{self.name}"

    def __reduce__(self):
        return (_dtype_by_name, (self.name,))

    def to_numpy(self):
        return self.np


float32 = dtype("float32", np.float32, 2)
float64 = dtype("float64", np.float64, 2)
float16 = dtype("float16", np.float16, 2)
int8 = dtype("int8", np.int8, 1)
int16 = dtype("int16", np.int16, 1)
int32 = dtype("int32", np.int32, 1)
int64 = dtype("int64", np.int64, 1)
uint8 = dtype("uint8", np.uint8, 1)
# PyTorch's "shell" unsigned types: storage, conversion, indexing and comparisons, but no promotion
# with other integer types (PyTorch refuses it; see _promote)
uint16 = dtype("uint16", np.uint16, 1)
uint32 = dtype("uint32", np.uint32, 1)
uint64 = dtype("uint64", np.uint64, 1)
bool_ = dtype("bool", np.bool_, 0)
# complex numbers: a pair of float32 (float64) values, real part first, as in PyTorch and NumPy
complex64 = dtype("complex64", np.complex64, 3)
complex128 = dtype("complex128", np.complex128, 3)


ALL_DTYPES = (float32, float64, float16, int8, int16, int32, int64, uint8, uint16, uint32, uint64, bool_,
              complex64, complex128)
_SHELL_UINTS = (np.dtype(np.uint16), np.dtype(np.uint32), np.dtype(np.uint64))
_BY_NP = {d.np: d for d in ALL_DTYPES}
_BY_NAME = {d.name: d for d in ALL_DTYPES}


def _dtype_by_name(name: str) -> dtype:
    return _BY_NAME[name]


def from_numpy_dtype(np_dtype) -> dtype:
    """The deepbox dtype of a NumPy dtype; raises TypeError for unsupported ones."""
    try:
        return _BY_NP[np_dtype]
    except KeyError:
        d = np.dtype(np_dtype)
        if d in _BY_NP:
            return _BY_NP[d]
        raise TypeError(
            f"deepbox has no dtype for NumPy dtype {d}; supported: "
            + ", ".join(x.name for x in ALL_DTYPES)
        ) from None


def to_numpy_dtype(d) -> np.dtype:
    """Accept a deepbox dtype, a NumPy dtype, a Python type or a name; return a NumPy dtype."""
    if isinstance(d, dtype):
        return d.np
    if d is None:
        return _default_float.np
    if d is builtins_float:
        return _default_float.np
    if d is builtins_int:
        return np.dtype(np.int64)
    if d is builtins_bool:
        return np.dtype(np.bool_)
    if d is builtins_complex:
        return complex_of(_default_float.np)
    if isinstance(d, str) and d in _BY_NAME:
        return _BY_NAME[d].np
    try:
        nd = np.dtype(d)
    except TypeError:
        raise TypeError(f"expected a deepbox dtype such as deepbox.float32, got {d!r}") from None
    from_numpy_dtype(nd)  # validates
    return nd


builtins_float = float
builtins_int = int
builtins_bool = bool
builtins_complex = complex

_default_float = float32


def get_default_dtype() -> dtype:
    return _default_float


def set_default_dtype(d) -> None:
    global _default_float
    nd = to_numpy_dtype(d)
    if nd.kind != "f":
        raise TypeError(f"set_default_dtype expects a floating point dtype, got {d!r}")
    _default_float = from_numpy_dtype(nd)


def default_float_np() -> np.dtype:
    return _default_float.np


def complex_of(d: np.dtype) -> np.dtype:
    """The complex dtype whose parts have float dtype ``d`` (float32 -> complex64, float64 -> complex128).

    PyTorch's float16 pairs with complex32, which NumPy lacks: deepbox computes it in complex64."""
    return np.dtype(np.complex128) if np.dtype(d) == np.float64 else np.dtype(np.complex64)


def real_of(d: np.dtype) -> np.dtype:
    """The float dtype of a complex dtype's parts (complex64 -> float32); a real dtype is its own."""
    d = np.dtype(d)
    return d if d.kind != "c" else np.dtype(np.float64) if d == np.complex128 else np.dtype(np.float32)


# ---------------------------------------------------------------------------
# type promotion, PyTorch's rules
#
# Operands fall into three priority groups: tensors with dimensions, zero-dim
# tensors, and Python scalars. The result's category (bool < integer < float <
# complex) is the highest among all operands; its dtype comes from the
# highest-priority group that reaches that category. A Python float therefore
# keeps a float32 tensor float32, and an integer tensor divided by a float gives
# the default float. One exception: a complex operand of lower priority meeting a
# float tensor takes that tensor's precision (float64 tensor * 1j is complex128).
# ---------------------------------------------------------------------------

def _category_np(d: np.dtype) -> int:
    k = d.kind
    return 2 if k == "f" else (0 if k == "b" else 3 if k == "c" else 1)


def _scalar_category(x) -> int:
    if isinstance(x, bool) or isinstance(x, np.bool_):
        return 0
    if isinstance(x, (int, np.integer)):
        return 1
    if isinstance(x, (complex, np.complexfloating)):
        return 3
    return 2


def result_dtype(*operands) -> np.dtype:
    """The NumPy dtype PyTorch would give an elementwise op over ``operands``.

    Operands are NumPy arrays (tensor data) or Python scalars.
    """
    dim_t = None
    zero_t = None
    scalar_cat = -1
    for o in operands:
        if isinstance(o, np.ndarray):
            if o.ndim:
                dim_t = o.dtype if dim_t is None else _promote(dim_t, o.dtype)
            else:
                zero_t = o.dtype if zero_t is None else _promote(zero_t, o.dtype)
        else:
            scalar_cat = max(scalar_cat, _scalar_category(o))
    result = dim_t
    if zero_t is not None:
        if result is None or _category_np(zero_t) > _category_np(result):
            result = _lower_wins(result, zero_t)
    if scalar_cat >= 0:
        if result is None or scalar_cat > _category_np(result):
            default = (np.dtype(np.bool_), np.dtype(np.int64), _default_float.np, complex_of(_default_float.np))
            result = _lower_wins(result, default[scalar_cat])
    return result


def _lower_wins(higher, lower):
    """The dtype when an operand of lower priority (``lower``) brings a higher category than ``higher``:
    its own, except that a complex one takes a float tensor's precision (PyTorch's combine_categories)."""
    if higher is not None and lower.kind == "c" and higher.kind == "f":
        return complex_of(higher)
    return lower


def _promote(a: np.dtype, b: np.dtype) -> np.dtype:
    if a == b:
        return a
    ca, cb = _category_np(a), _category_np(b)
    if ca != cb:
        if {ca, cb} == {2, 3}:  # complex64 with float64 is complex128
            return np.promote_types(a, b)
        return a if ca > cb else b
    if a in _SHELL_UINTS or b in _SHELL_UINTS:
        raise RuntimeError(f"Promotion for uint16, uint32, uint64 types is not supported, attempted to promote "
                           f"{a} and {b}")
    return np.promote_types(a, b)


def promote_types(a, b) -> dtype:
    """``deepbox.promote_types``: the dtype of an op over tensors of dtypes a and b."""
    return from_numpy_dtype(_promote(to_numpy_dtype(a), to_numpy_dtype(b)))


# ---------------------------------------------------------------------------
# random numbers
# ---------------------------------------------------------------------------

class Generator:
    """A random number generator, like ``torch.Generator``.

    Wraps a NumPy ``Generator`` (PCG64). ``manual_seed`` makes its stream
    reproducible; ``get_state``/``set_state`` save and restore it exactly.
    """

    def __init__(self, device=None):
        self._seed = int(np.random.SeedSequence().entropy % (2**63))
        self.rng = np.random.Generator(np.random.PCG64(self._seed))

    def manual_seed(self, seed: int) -> Generator:
        if not isinstance(seed, (int, np.integer)):
            raise TypeError(f"manual_seed expects an int, got {type(seed).__name__}")
        self._seed = int(seed) % (2**64)
        self.rng = np.random.Generator(np.random.PCG64(self._seed))
        return self

    def seed(self) -> int:
        s = int(np.random.SeedSequence().entropy % (2**63))
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        """The generator's state as a JSON-serialisable dict."""
        st = self.rng.bit_generator.state
        return {"seed": self._seed, "bit_generator": st["bit_generator"],
                "state": {"state": str(st["state"]["state"]), "inc": str(st["state"]["inc"])},
                "has_uint32": st["has_uint32"], "uinteger": st["uinteger"]}

    def set_state(self, state: dict) -> Generator:
        if not isinstance(state, dict) or "state" not in state:
            raise TypeError("Generator.set_state expects a dict from Generator.get_state()")
        self._seed = state.get("seed", self._seed)
        self.rng.bit_generator.state = {
            "bit_generator": state["bit_generator"],
            "state": {"state": int(state["state"]["state"]), "inc": int(state["state"]["inc"])},
            "has_uint32": state["has_uint32"], "uinteger": state["uinteger"],
        }
        return self


default_generator = Generator()
default_generator.manual_seed(np.random.SeedSequence().entropy % (2**63))


def manual_seed(seed: int) -> Generator:
    """Seed deepbox's default generator (``torch.manual_seed``)."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> dict:
    return default_generator.get_state()


def set_rng_state(state: dict) -> None:
    default_generator.set_state(state)


def rng(generator: Generator | None = None) -> np.random.Generator:
    """The NumPy generator to draw from: ``generator``'s or the default one."""
    return (generator or default_generator).rng


class finfo:  # noqa: N801 - PyTorch's name
    """Machine limits of a floating-point dtype, as ``torch.finfo``: eps, max, min, tiny, resolution, bits."""

    def __init__(self, type=None):  # noqa: A002 - PyTorch's argument name
        nd = real_of(to_numpy_dtype(type))  # a complex dtype's limits are those of its parts, as in PyTorch
        if nd.kind != "f":
            raise TypeError(f"finfo expects a floating point dtype, got {from_numpy_dtype(nd)!r}")
        info = np.finfo(nd)
        self.dtype = from_numpy_dtype(nd).name
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = self.smallest_normal = float(info.tiny)
        self.resolution = 10.0 ** -int(info.precision)

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.tiny:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:  # noqa: N801 - PyTorch's name
    """Limits of an integer dtype, as ``torch.iinfo``: min, max, bits."""

    def __init__(self, type):  # noqa: A002 - PyTorch's argument name
        nd = to_numpy_dtype(type)
        if nd.kind not in "iub":
            raise TypeError(f"iinfo expects an integer dtype, got {from_numpy_dtype(nd)!r}")
        info = np.iinfo(nd) if nd.kind != "b" else None
        self.dtype = from_numpy_dtype(nd).name
        self.bits = 8 if info is None else int(info.bits)
        self.min = 0 if info is None else int(info.min)
        self.max = 1 if info is None else int(info.max)

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"
