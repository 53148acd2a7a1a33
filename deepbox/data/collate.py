"""Collation: turning a list of samples into a batch (PyTorch's ``default_collate``).

Tensors and NumPy arrays are stacked into one deepbox tensor along a new first
dimension; Python ints become an int64 tensor, floats a float64 tensor (as in
PyTorch), bools a bool tensor; strings and bytes stay a list; dicts, named tuples,
tuples and lists are collated field by field (a tuple of fields gives a *list* of
batches, PyTorch's backward-compatible choice).
"""
from __future__ import annotations

import collections.abc
import copy
import re
from collections.abc import Callable

from deepbox import backend
from deepbox.data.dataset import BatchedSamples
from deepbox.tensor import Tensor, _make

xp = backend.xp

__all__ = ["collate", "default_collate", "default_convert", "default_collate_fn_map"]

np_str_obj_array_pattern = re.compile(r"[SaUO]")

default_collate_err_msg_format = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
)


def _as_array(x):
    """The array of a NumPy array or scalar, refusing dtypes deepbox has no tensor for."""
    arr = xp.asarray(x)
    backend.from_numpy_dtype(arr.dtype)  # raises TypeError naming the unsupported dtype
    return arr


def _stack_arrays(arrays, what: str):
    first = arrays[0].shape
    for k, a in enumerate(arrays):
        if a.shape != first:
            raise RuntimeError(
                f"stack expects each {what} to be equal size, but got {list(first)} at entry 0 "
                f"and {list(a.shape)} at entry {k}"
            )
    return xp.stack(arrays, 0)


def collate_tensor_fn(batch, *, collate_fn_map=None):
    if any(t.requires_grad for t in batch):
        # keeps the graph, as torch.stack would
        import deepbox

        return deepbox.stack(list(batch), 0)
    return _make(_stack_arrays([t._data for t in batch], "tensor"))


def collate_numpy_array_fn(batch, *, collate_fn_map=None):
    elem = batch[0]
    if np_str_obj_array_pattern.search(elem.dtype.str) is not None:
        raise TypeError(default_collate_err_msg_format.format(elem.dtype))
    return _make(_stack_arrays([_as_array(b) for b in batch], "array"))


def collate_numpy_scalar_fn(batch, *, collate_fn_map=None):
    return _make(_as_array(batch))


def collate_float_fn(batch, *, collate_fn_map=None):
    return _make(xp.asarray(batch, dtype=xp.float64))


def collate_int_fn(batch, *, collate_fn_map=None):
    arr = xp.asarray(batch)
    if arr.dtype.kind == "f":  # ints mixed with floats: torch.tensor gives the default float dtype
        arr = arr.astype(backend.default_float_np())
    elif arr.dtype.kind in "iu":
        arr = arr.astype(xp.int64)
    return _make(arr)


def collate_str_fn(batch, *, collate_fn_map=None):
    return batch


default_collate_fn_map: dict = {
    Tensor: collate_tensor_fn,
    xp.ndarray: collate_numpy_array_fn,
    (xp.bool_, xp.number, xp.object_): collate_numpy_scalar_fn,
    float: collate_float_fn,
    int: collate_int_fn,
    str: collate_str_fn,
    bytes: collate_str_fn,
}


def collate(batch, *, collate_fn_map: dict[type | tuple[type, ...], Callable] | None = None):
    """Collate ``batch`` (a list of samples) with per-type functions from ``collate_fn_map``.

    ``collate_fn_map`` maps a type (or tuple of types) to ``fn(batch, *, collate_fn_map)``;
    an exact type match wins, then the first ``isinstance`` match in insertion order.
    Containers (mappings, named tuples, sequences) are collated element-wise.
    """
    if type(batch) is BatchedSamples:
        if collate_fn_map is default_collate_fn_map:
            return _collate_batched(batch, collate_fn_map)
        batch = list(batch)  # a custom map sees the samples one by one
    if len(batch) == 0:
        raise ValueError("default_collate: cannot collate an empty batch")
    elem = batch[0]
    elem_type = type(elem)

    if collate_fn_map is not None:
        if elem_type in collate_fn_map:
            return collate_fn_map[elem_type](batch, collate_fn_map=collate_fn_map)
        for collate_type in collate_fn_map:
            if isinstance(elem, collate_type):
                return collate_fn_map[collate_type](batch, collate_fn_map=collate_fn_map)

    if isinstance(elem, collections.abc.Mapping):
        try:
            if isinstance(elem, collections.abc.MutableMapping):
                clone = copy.copy(elem)
                clone.update({key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map) for key in elem})
                return clone
            return elem_type({key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map) for key in elem})
        except TypeError:
            return {key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return elem_type(*(collate(samples, collate_fn_map=collate_fn_map) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        it = iter(batch)
        elem_size = len(next(it))
        if not all(len(e) == elem_size for e in it):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = list(zip(*batch))
        if isinstance(elem, tuple):
            return [collate(samples, collate_fn_map=collate_fn_map) for samples in transposed]
        try:
            if isinstance(elem, collections.abc.MutableSequence):
                clone = copy.copy(elem)
                for i, samples in enumerate(transposed):
                    clone[i] = collate(samples, collate_fn_map=collate_fn_map)
                return clone
            return elem_type([collate(samples, collate_fn_map=collate_fn_map) for samples in transposed])
        except TypeError:
            return [collate(samples, collate_fn_map=collate_fn_map) for samples in transposed]

    raise TypeError(default_collate_err_msg_format.format(elem_type))


def _collate_batched(batch: BatchedSamples, collate_fn_map):
    """The fast path: each field is already the stacked batch of that field."""
    out = []
    for field in batch.fields:
        if isinstance(field, Tensor):
            out.append(field)
        elif isinstance(field, xp.ndarray):
            if np_str_obj_array_pattern.search(field.dtype.str) is not None:
                raise TypeError(default_collate_err_msg_format.format(field.dtype))
            out.append(_make(_as_array(field)))
        else:  # an unusual field type: collate it sample by sample
            out.append(collate([field[i] for i in range(len(batch))], collate_fn_map=collate_fn_map))
    return out


def default_collate(batch):
    """Stack a list of samples into a batch, PyTorch's ``default_collate``.

    Mapping of element types to results:

    * ``Tensor`` -> ``Tensor`` with a new first dimension (the batch)
    * NumPy array -> ``Tensor``; NumPy scalar -> ``Tensor`` of its dtype
    * ``float`` -> float64 ``Tensor``; ``int`` -> int64 ``Tensor``; ``bool`` -> bool ``Tensor``
    * ``str``/``bytes`` -> unchanged list
    * ``Mapping[K, V_i]`` -> ``Mapping[K, default_collate([V_1, V_2, ...])]``
    * ``NamedTuple`` -> the same named tuple of collated fields
    * ``Sequence[V1_i, V2_i, ...]`` -> ``[default_collate([V1_1, V1_2, ...]), ...]`` (a list
      for tuples, the same sequence type otherwise)

    Example:
        >>> default_collate([(1, "a"), (2, "b")])
        [tensor([1, 2]), ('a', 'b')]
    """
    return collate(batch, collate_fn_map=default_collate_fn_map)


def default_convert(data):
    """Turn NumPy arrays (also inside mappings and sequences) into tensors; the rest is unchanged.

    It is the DataLoader's collate function when automatic batching is off (``batch_size=None``).
    """
    elem_type = type(data)
    if isinstance(data, Tensor):
        return data
    if elem_type.__module__ == "numpy" and elem_type.__name__ not in ("str_", "string_", "bytes_"):
        if elem_type.__name__ == "ndarray" and np_str_obj_array_pattern.search(data.dtype.str) is not None:
            return data
        return _make(_as_array(data))
    if type(data) is BatchedSamples:
        return [default_convert(f) for f in data.fields]
    if isinstance(data, collections.abc.Mapping):
        try:
            if isinstance(data, collections.abc.MutableMapping):
                clone = copy.copy(data)
                clone.update({key: default_convert(data[key]) for key in data})
                return clone
            return elem_type({key: default_convert(data[key]) for key in data})
        except TypeError:
            return {key: default_convert(data[key]) for key in data}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return elem_type(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            if isinstance(data, collections.abc.MutableSequence):
                clone = copy.copy(data)
                for i, d in enumerate(data):
                    clone[i] = default_convert(d)
                return clone
            return elem_type([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data
