"""deepbox: deep learning from first principles on NumPy, with PyTorch's API.

``import deepbox as torch`` runs PyTorch code for every feature deepbox has.
"""
from __future__ import annotations

import importlib as _importlib
import math as _math

from deepbox import backend as _backend
from deepbox.autograd.grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401
from deepbox.backend import (  # noqa: F401
    Generator,
    default_generator,
    dtype,  # noqa: F401
    finfo,
    get_default_dtype,
    get_rng_state,
    iinfo,
    initial_seed,
    manual_seed,
    promote_types,
    seed,
    set_default_dtype,
    set_rng_state,
)
from deepbox.creation import (  # noqa: F401
    arange,
    as_tensor,
    asarray,
    bernoulli,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    logspace,
    meshgrid,
    multinomial,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    scalar_tensor,
    tensor,
    tril_indices,
    triu_indices,
    zeros,
    zeros_like,
)
from deepbox.creation import range_ as range  # noqa: F401,A004
from deepbox.kernels import families as _kernel_families  # noqa: F401  (fast twins register for kernels.choose)
from deepbox.ops import *  # noqa: F401,F403
from deepbox.tensor import Size, Tensor, device, set_printoptions  # noqa: F401
from deepbox.tensor_types import (  # noqa: F401
    BoolTensor,
    ByteTensor,
    CharTensor,
    DoubleTensor,
    FloatTensor,
    HalfTensor,
    IntTensor,
    LongTensor,
    ShortTensor,
)

__version__ = "0.1.0"

float32 = _backend.float32
float64 = _backend.float64
float16 = _backend.float16
int8 = _backend.int8
int16 = _backend.int16
int32 = _backend.int32
int64 = _backend.int64
uint8 = _backend.uint8
uint16 = _backend.uint16
uint32 = _backend.uint32
uint64 = _backend.uint64
bool = _backend.bool_  # noqa: A001
complex64 = cfloat = _backend.complex64
complex128 = cdouble = _backend.complex128
float = float32  # noqa: A001
double = float64
half = float16
int = int32  # noqa: A001
long = int64
short = int16

inf = _math.inf
nan = _math.nan
pi = _math.pi
e = _math.e

# the subpackages that exist; a name missing here (``hub``, ``export``) is an AttributeError, so that
# hasattr(deepbox, "hub") is False as it is for any attribute deepbox lacks
_SUBMODULES = {"nn", "optim", "utils", "data", "vision", "models", "train", "io", "viz", "linalg", "ml", "tune",
               "distributed", "cuda", "backends", "cli", "autograd", "ops", "special", "distributions", "inspect",
               "kernels", "accelerator", "amp", "onnx", "profiler", "fft"}


def __getattr__(name):
    # subpackages load on first use, so `import deepbox` stays light
    if name in _SUBMODULES:
        return _importlib.import_module(f"deepbox.{name}")
    if name == "autocast":
        from deepbox.amp import autocast

        return autocast
    if name == "save":
        from deepbox.io import save

        return save
    if name == "load":
        from deepbox.io import load

        return load
    raise AttributeError(f"module 'deepbox' has no attribute {name!r}")


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def is_floating_point(input) -> bool:
    return input.is_floating_point()


def is_complex(input) -> bool:
    return input.is_complex()


def numel(input) -> int:
    return input.numel()


def get_num_threads() -> int:
    """Threads used by BLAS (via threadpoolctl when installed)."""
    try:
        from threadpoolctl import threadpool_info

        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        return info[0]["num_threads"] if info else 1
    except ImportError:
        import os

        return os.cpu_count() or 1


_thread_limiter = None


def set_num_threads(n: int) -> None:
    """Threads for BLAS (needs threadpoolctl) and for deepbox's own split kernels (``deepbox.kernels.threads``)."""
    global _thread_limiter
    from deepbox.kernels import threads

    threads.set_num_threads(n)
    threads.blas_multi()          # forget a convolution's single-threaded BLAS: the limit below rules
    try:
        from threadpoolctl import threadpool_limits

        _thread_limiter = threadpool_limits(limits=n, user_api="blas")
    except ImportError:
        pass


def get_num_interop_threads() -> int:
    return 1


def set_num_interop_threads(n: int) -> None:
    pass


def set_default_device(device) -> None:
    """Accepted for ``"cpu"`` (and None); any other device is refused, since deepbox computes on the CPU."""
    if device is not None:
        from deepbox.tensor import _check_device

        _check_device(device)


def get_default_device() -> device:
    return device("cpu")


def compile(model=None, **kwargs):  # noqa: A001
    """Accepted for portability: deepbox runs eagerly, so this returns ``model`` unchanged."""
    if model is None:
        return lambda m: m
    return model


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """deepbox's algorithms are deterministic on the CPU; accepted for portability."""


