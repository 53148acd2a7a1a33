"""Input checks shared by the estimators and the metrics: arrays from tensors, shapes, labels."""
from __future__ import annotations

from deepbox import backend
from deepbox.tensor import Tensor, _make

xp = backend.xp


def to_array(a, name: str = "X"):
    """The NumPy array behind a tensor, array or nested list (no copy where possible)."""
    if isinstance(a, Tensor):
        return a.detach()._data
    arr = xp.asarray(a)
    if arr.dtype == object:
        raise TypeError(f"{name} must be numeric (an array or tensor), got an object array")
    return arr


def check_X(X, name: str = "X", n_features: int | None = None):
    """``X`` as a 2-D float array: float32/float64 keep their dtype, anything else becomes float64."""
    arr = to_array(X, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has no samples (shape {arr.shape})")
    if arr.dtype not in (xp.float32, xp.float64):
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
        arr = arr.astype(xp.float64)
    if not xp.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features, but the estimator was fitted with {n_features}")
    return arr


def check_y(y, n_samples: int, name: str = "y", allow_2d: bool = False):
    arr = to_array(y, name)
    if arr.ndim == 2 and arr.shape[1] == 1 and not allow_2d:
        arr = arr[:, 0]
    if arr.ndim != 1 and not (allow_2d and arr.ndim == 2):
        raise ValueError(f"{name} must be 1-D (n_samples,){' or 2-D' if allow_2d else ''}, got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"X and {name} have different numbers of samples: {n_samples} and {arr.shape[0]}")
    return arr


def encode_labels(y):
    """``(classes, codes)``: the sorted distinct labels and each sample's index into them."""
    classes, codes = xp.unique(y, return_inverse=True)
    return classes, codes.reshape(-1).astype(xp.int64)


def like_input(result, X):
    """Return ``result`` (an array) as a tensor when ``X`` was a tensor."""
    return _make(xp.ascontiguousarray(result)) if isinstance(X, Tensor) else result
