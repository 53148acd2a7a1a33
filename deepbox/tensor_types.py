"""PyTorch's legacy tensor types: ``torch.LongTensor(3)``, ``torch.FloatTensor([1, 2])``, ``isinstance(t,
torch.LongTensor)``.

Each is a constructor for a ``Tensor`` of one dtype (sizes give an uninitialised tensor, data a
copy) and an ``isinstance`` check for that dtype, as in PyTorch; older examples still use them.
"""
from __future__ import annotations

from deepbox import backend
from deepbox.tensor import Tensor

__all__ = ["FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor", "ShortTensor", "CharTensor",
           "ByteTensor", "BoolTensor"]


class _LegacyType(type):
    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and obj.dtype == cls.dtype

    def __call__(cls, *args, **kwargs):
        if kwargs.pop("dtype", None) is not None:
            raise TypeError(f"{cls.__name__}() takes no dtype: it is always {cls.dtype}")
        return Tensor(*args, dtype=cls.dtype, **kwargs)


def _legacy(name: str, dtype) -> type:
    return _LegacyType(name, (), {"dtype": dtype, "__doc__": f"``{name}(*sizes)`` or ``{name}(data)``: a {dtype} "
                                                            "tensor (PyTorch's legacy constructor)."})


FloatTensor = _legacy("FloatTensor", backend.float32)
DoubleTensor = _legacy("DoubleTensor", backend.float64)
HalfTensor = _legacy("HalfTensor", backend.float16)
LongTensor = _legacy("LongTensor", backend.int64)
IntTensor = _legacy("IntTensor", backend.int32)
ShortTensor = _legacy("ShortTensor", backend.int16)
CharTensor = _legacy("CharTensor", backend.int8)
ByteTensor = _legacy("ByteTensor", backend.uint8)
BoolTensor = _legacy("BoolTensor", backend.bool_)
