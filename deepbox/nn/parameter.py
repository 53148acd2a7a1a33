"""``Parameter``: a tensor that a ``Module`` registers as one of its learnable weights."""
from __future__ import annotations

from deepbox.tensor import Tensor, _to_array


class Parameter(Tensor):
    """A leaf tensor that requires grad and that modules collect in ``parameters()``.

    Shares the array of the tensor it wraps, as ``torch.nn.Parameter`` does.
    """

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            arr = _to_array([], None)
        elif isinstance(data, Tensor):
            arr = data._data
        else:
            arr = _to_array(data)
        Tensor.__init__(self, 0)
        self._data = arr
        if requires_grad and arr.dtype.kind != "f":
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients, got {arr.dtype}")
        self.requires_grad = requires_grad

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        return (Parameter, (self.detach(), self.requires_grad))


class UninitializedParameter(Parameter):
    """Accepted for portability; deepbox has no lazy modules."""


class Buffer(Tensor):
    """``nn.Buffer(tensor, persistent=True)``: marks a tensor to register as a module buffer."""

    def __init__(self, data, persistent: bool = True):
        Tensor.__init__(self, 0)
        self._data = data._data if isinstance(data, Tensor) else _to_array(data)
        self.persistent = persistent
