"""``Tensor``: an n-dimensional array that records the operations made on it.

A tensor holds a NumPy array (``_data``), whether it ``requires_grad``, the
graph node that made it (``grad_fn``) and a version counter shared with its
views, which in-place operations bump so that backward can refuse saved values
that changed under it. Its methods are PyTorch's; the math lives in
``deepbox.ops`` and is attached to the class at import time.
"""
from __future__ import annotations

import weakref

from deepbox import backend

xp = backend.xp
_ndarray = backend.ndarray


class Tensor:
    __slots__ = ("_data", "_grad", "requires_grad", "_ctx", "_out_idx", "_version", "_hooks",
                 "_post_accumulate_hooks", "__weakref__")

    def __init__(self, *args, dtype=None, device=None, requires_grad=False):
        # torch.Tensor(2, 3) makes an uninitialised tensor; torch.Tensor(data) a float copy of data
        if len(args) == 1 and not isinstance(args[0], int):
            arr = _to_array(args[0], dtype or backend.get_default_dtype(), copy=True)
        else:
            shape = args[0] if len(args) == 1 and isinstance(args[0], tuple) else args
            arr = xp.empty(tuple(int(s) for s in shape), backend.to_numpy_dtype(dtype))
        self._data = arr
        self._grad = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self._out_idx = 0
        self._version = [0]
        self._hooks = None
        self._post_accumulate_hooks = None

    # ------------------------------------------------------------------ attributes
    @property
    def data(self) -> Tensor:
        """A tensor sharing this one's array (and version counter) outside the graph."""
        t = _make(self._data)
        t._version = self._version
        return t

    @data.setter
    def data(self, value) -> None:
        arr = value._data if isinstance(value, Tensor) else xp.asarray(value)
        self._data = arr

    @property
    def grad(self):
        if self._grad is None and self._ctx is not None and not (
            self._ctx._retained and self._out_idx in self._ctx._retained
        ):
            import warnings

            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its "
                ".grad attribute won't be populated during backward(). Call .retain_grad() on the "
                "non-leaf Tensor if you want its gradient.",
                UserWarning,
                stacklevel=2,
            )
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got {type(value).__name__}")
            if value.shape != self.shape:
                raise RuntimeError(f"assigned grad has shape {tuple(value.shape)}, expected {tuple(self.shape)}")
        self._grad = value

    @property
    def grad_fn(self):
        return self._ctx

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def shape(self):
        return Size(self._data.shape)

    def size(self, dim: int | None = None):
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_wrap_dim(dim, self._data.ndim)]

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    ndimension = dim

    def numel(self) -> int:
        return self._data.size

    nelement = numel

    @property
    def dtype(self):
        return backend.from_numpy_dtype(self._data.dtype)

    @property
    def device(self):
        return device("cpu")

    @property
    def is_cuda(self) -> bool:
        return False

    @property
    def itemsize(self) -> int:
        return self._data.itemsize

    def element_size(self) -> int:
        return self._data.itemsize

    @property
    def nbytes(self) -> int:
        return self._data.nbytes

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    def is_complex(self) -> bool:
        return self._data.dtype.kind == "c"

    def is_contiguous(self) -> bool:
        return self._data.flags.c_contiguous

    def stride(self, dim: int | None = None):
        st = tuple(s // self._data.itemsize for s in self._data.strides)
        return st if dim is None else st[_wrap_dim(dim, self._data.ndim)]

    def data_ptr(self) -> int:
        return self._data.__array_interface__["data"][0]

    @property
    def version(self) -> int:
        """How many in-place changes this tensor (or a view of its storage) has seen."""
        return self._version[0]

    # ------------------------------------------------------------------ conversion
    def numpy(self, *, force: bool = False):
        """The tensor's array, sharing memory (``torch.Tensor.numpy``)."""
        if self.requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self._data

    def __array__(self, dtype=None, copy=None):
        a = self._data
        return a if dtype is None else a.astype(dtype)

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted to Scalar")
        return self._data.reshape(()).item()

    def tolist(self):
        return self._data.tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with more than one value is ambiguous (shape {tuple(self.shape)})"
            )
        return bool(self._data.reshape(()).item())

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __hash__(self):
        return id(self)

    def __reduce_ex__(self, protocol):
        # lets DataLoader workers send tensors between processes (never used for checkpoints)
        return (_rebuild, (self._data, self.requires_grad))

    def __deepcopy__(self, memo):
        if self._ctx is not None:
            raise RuntimeError(
                "Only Tensors created explicitly by the user (graph leaves) support the deepcopy protocol")
        t = type(self).__new__(type(self))
        Tensor.__init__(t, 0)
        t._data = self._data.copy()
        t.requires_grad = self.requires_grad
        if self._grad is not None:
            t._grad = _make(self._grad._data.copy())
        if hasattr(self, "__dict__"):
            import copy

            for k, v in self.__dict__.items():
                setattr(t, k, copy.deepcopy(v, memo))
        memo[id(self)] = t
        return t

    def to(self, *args, **kwargs) -> Tensor:
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)`` or ``to(other)``; devices other than cpu are refused."""
        dtype = to_arguments(args, kwargs)
        copy = kwargs.get("copy", False)
        if dtype is None:
            return self.clone() if copy else self
        nd = backend.to_numpy_dtype(dtype)
        if nd == self._data.dtype and not copy:
            return self
        return self._cast(nd)  # ops/_common.py's differentiable cast, bound by deepbox/ops/__init__.py

    def type(self, dtype=None):
        if dtype is None:
            d = self._data.dtype
            if d.kind == "c":
                return "deepbox." + ("ComplexDouble" if d.itemsize == 16 else "ComplexFloat") + "Tensor"
            return "deepbox." + {"f": "Float", "i": "Long", "u": "Byte", "b": "Bool"}[d.kind] + "Tensor"
        return self.to(dtype)

    def float(self):
        return self.to(backend.float32)

    def double(self):
        return self.to(backend.float64)

    def half(self):
        return self.to(backend.float16)

    def long(self):
        return self.to(backend.int64)

    def int(self):
        return self.to(backend.int32)

    def short(self):
        return self.to(backend.int16)

    def bool(self):
        return self.to(backend.bool_)

    def byte(self):
        return self.to(backend.uint8)

    def cpu(self):
        return self

    def cuda(self, *args, **kwargs):
        raise RuntimeError("deepbox runs on the CPU only; .cuda() is not available (use .to('cpu') or leave it out)")

    def pin_memory(self):
        return self

    def share_memory_(self):
        return self

    # ------------------------------------------------------------------ autograd
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if self._ctx is not None and not requires_grad:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach()."
            )
        if requires_grad and self._data.dtype.kind not in "fc":
            raise RuntimeError(f"only Tensors of floating point and complex dtype can require gradients, got "
                               f"{self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's array and version counter, outside the graph."""
        t = _make(self._data)
        t._version = self._version
        return t

    def detach_(self) -> Tensor:
        self._ctx = None
        self._out_idx = 0
        self.requires_grad = False
        return self

    def retain_grad(self) -> None:
        if self._ctx is None:
            return
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        ctx = self._ctx
        if ctx._retained is None:
            ctx._retained = {}
        ctx._retained[self._out_idx] = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        return self._ctx is not None and bool(self._ctx._retained) and self._out_idx in self._ctx._retained

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor replaces it."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._ctx is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            ctx = self._ctx
            if ctx._hooks is None:
                ctx._hooks = {}
            hooks = ctx._hooks.setdefault(self._out_idx, [])
        hooks.append(hook)
        return _RemovableHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        if self._ctx is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        if self._post_accumulate_hooks is None:
            self._post_accumulate_hooks = []
        eager_leaf_hooks[0] = True
        self._post_accumulate_hooks.append(hook)
        return _RemovableHandle(self._post_accumulate_hooks, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``; first-order only."""
        _backward_engine(self, gradient, retain_graph, create_graph, inputs)

    # ------------------------------------------------------------------ printing
    def __repr__(self) -> str:
        return _format(self)

    __str__ = __repr__

    def __format__(self, spec):
        # a 0-d tensor formats as its number, as in PyTorch (f"{loss}" prints 0.6931471824645996)
        if self._data.ndim == 0:
            return self.item().__format__(spec)
        return repr(self) if not spec else object.__format__(self, spec)


class Size(tuple):
    """The shape of a tensor: a tuple that prints like ``torch.Size``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"deepbox.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n


class device:
    """``deepbox.device('cpu')``: deepbox computes on the CPU; other devices are refused."""

    __slots__ = ("type", "index")

    def __init__(self, type="cpu", index=None):
        if isinstance(type, device):
            type, index = type.type, type.index
        _check_device(type)
        self.type = "cpu"
        self.index = index

    def __repr__(self) -> str:
        return "device(type='cpu')"

    def __str__(self) -> str:
        return "cpu"

    def __eq__(self, other):
        return str(other) == "cpu" if isinstance(other, (str, device)) else NotImplemented

    def __hash__(self):
        return hash("cpu")


def to_arguments(args, kwargs):
    """The dtype that ``Tensor.to`` / ``Module.to`` were asked for (None: keep), from any of PyTorch's forms:
    ``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other_tensor)``, keywords; a device other than
    the CPU is refused."""
    dtype = kwargs.get("dtype")
    dev = kwargs.get("device")
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype
        elif isinstance(a, (str, device)):
            dev = a
        elif a is not None:
            dtype = a
    if dev is not None:
        _check_device(dev)
    return dtype


def _check_device(dev) -> None:
    name = dev.type if isinstance(dev, device) else str(dev)
    if name.split(":")[0] != "cpu":
        raise RuntimeError(
            f"deepbox runs on the CPU only; device {name!r} is not available. Use 'cpu' "
            "(code that picks 'cuda' if deepbox.cuda.is_available() else 'cpu' works unchanged)."
        )


class _RemovableHandle:
    def __init__(self, container, item):
        self._container = container
        self._item = item

    def remove(self) -> None:
        try:
            self._container.remove(self._item)
        except ValueError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


_new = object.__new__

# Tensor.backward runs deepbox/autograd/engine.py's tensor_backward, which puts itself here when it loads:
# the engine sits a layer above this file, and a lower layer never imports a higher one.
_backward_engine = None
# set once any tensor has a post-accumulate hook; until then the engine skips counting the edges into them
eager_leaf_hooks = [False]


def _make(arr) -> Tensor:
    """Wrap an array in a new leaf tensor that does not require grad (the fast path).

    A NumPy scalar (what NumPy returns for an op on 0-d arrays) becomes a 0-d array: a tensor's data
    is always an ndarray, so that in-place updates (``zero_()``, an optimiser's buffers) work on it.
    """
    t = _new(Tensor)
    t._data = arr if type(arr) is _ndarray else xp.asarray(arr)
    t._grad = None
    t.requires_grad = False
    t._ctx = None
    t._out_idx = 0
    t._version = [0]
    t._hooks = None
    t._post_accumulate_hooks = None
    return t


def _rebuild(arr, requires_grad):
    t = _make(arr)
    t.requires_grad = requires_grad
    return t


def _wrap_dim(dim: int, ndim: int) -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim % n


def _to_array(data, dtype=None, copy=False):
    """Turn nested lists, scalars, arrays or tensors into an array with PyTorch's default dtypes."""
    if isinstance(data, Tensor):
        arr = data._data
    elif isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in _flat_first(data)):
        arr = xp.asarray(_tensors_to_lists(data))
    else:
        arr = xp.asarray(data)
    if dtype is not None:
        nd = backend.to_numpy_dtype(dtype)
        if arr.dtype != nd:
            return arr.astype(nd)
    elif not isinstance(data, (Tensor, _ndarray, xp.generic)):  # a NumPy scalar keeps its dtype, as in PyTorch
        k = arr.dtype.kind
        if k == "f" and arr.dtype != backend.default_float_np():
            return arr.astype(backend.default_float_np())
        if k in "iu" and arr.dtype != xp.int64:
            return arr.astype(xp.int64)
        if k == "c" and arr.dtype != backend.complex_of(backend.default_float_np()):
            return arr.astype(backend.complex_of(backend.default_float_np()))
        if k not in "fiubc":
            raise ValueError(f"can't convert {type(data).__name__} of dtype {arr.dtype} to a tensor")
    elif arr.dtype.kind not in "fiubc" or arr.dtype not in backend._BY_NP:
        raise TypeError(
            f"can't convert a NumPy array of dtype {arr.dtype}; the only supported types are: complex128, "
            "complex64, float64, float32, float16, int64, int32, int16, int8, uint8, uint16, uint32, uint64, and bool."
        )
    return arr.copy() if copy else arr


def _flat_first(data):
    while isinstance(data, (list, tuple)) and data:
        yield data[0]
        data = data[0]


def _tensors_to_lists(data):
    if isinstance(data, Tensor):
        return data._data.tolist()
    if isinstance(data, (list, tuple)):
        return [_tensors_to_lists(x) for x in data]
    return data


PRINT_OPTIONS = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80, "sci_mode": None}
_PRINT_PROFILES = {"default": {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80},
                   "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
                   "full": {"precision": 4, "threshold": float("inf"), "edgeitems": 3, "linewidth": 80}}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None):
    """How tensors print (``torch.set_printoptions``): digits after the point, how many elements before
    summarising with ``...``, the items kept at each edge, the line width; ``profile`` is "default", "short"
    or "full"; ``sci_mode`` True/False forces or forbids scientific notation (None: NumPy decides)."""
    if profile is not None:
        if profile not in _PRINT_PROFILES:
            raise ValueError(f"set_printoptions: profile must be one of {sorted(_PRINT_PROFILES)}, got {profile!r}")
        PRINT_OPTIONS.update(_PRINT_PROFILES[profile])
    for key, value in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                       ("linewidth", linewidth)):
        if value is not None:
            PRINT_OPTIONS[key] = value
    PRINT_OPTIONS["sci_mode"] = sci_mode


def _format(t: Tensor) -> str:
    a = t._data
    prefix = "tensor("
    opts = PRINT_OPTIONS
    kw = {}
    if a.dtype.kind in "fc":
        parts = a if a.dtype.kind == "f" else xp.concatenate([a.real.ravel(), a.imag.ravel()])
        finite = parts[xp.isfinite(parts)]
        integral = finite.size == 0 or bool((finite == xp.round(finite)).all())
        amax = float(xp.abs(finite).max()) if finite.size else 0.0
        kw = {"floatmode": "fixed", "precision": 0 if integral and amax < 1e8 else opts["precision"],
              "suppress_small": opts["sci_mode"] is False}
        if opts["sci_mode"]:
            p = opts["precision"]
            kw["formatter"] = {"float_kind": lambda v: f"{v:.{p}e}",
                               "complex_kind": lambda v: f"{v.real:.{p}e}{v.imag:+.{p}e}j"}
    threshold = opts["threshold"]
    threshold = xp.iinfo(xp.int64).max if threshold == float("inf") else int(threshold)
    body = xp.array2string(a, separator=", ", prefix=prefix, threshold=threshold, edgeitems=opts["edgeitems"],
                           max_line_width=opts["linewidth"], **kw)
    body = body.replace(", ...,", ",  ...,")  # PyTorch pads the summary marker with one more space
    extras = []
    default = {backend.default_float_np(), backend.complex_of(backend.default_float_np()), xp.dtype(xp.int64),
               xp.dtype(xp.bool_)}
    if a.dtype not in default or a.size == 0:
        if a.size == 0 and a.ndim > 1:
            extras.append(f"size={tuple(a.shape)}")
        if a.dtype not in default:
            extras.append(f"dtype={t.dtype}")
    if t._ctx is not None:
        extras.append(f"grad_fn=<{t._ctx.name()}>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    return prefix + body + "".join(", " + e for e in extras) + ")"


Tensor.__array_ufunc__ = None  # NumPy defers to Tensor's reflected operators (ndarray + Tensor -> Tensor)
