"""Convolution layers: ``Conv1d``, ``Conv2d``, ``Conv3d``, ``ConvTranspose1d``, ``ConvTranspose2d``, ``Fold``,

Thin modules over ``deepbox.ops.conv``; parameters, default initialisation,
``extra_repr`` and state_dict keys are PyTorch's.
"""
from __future__ import annotations

import math

from deepbox import backend
from deepbox.nn import init
from deepbox.nn.modules.module import Module
from deepbox.nn.parameter import Parameter
from deepbox.ops import conv as C
from deepbox.tensor import _check_device, _make

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "Fold", "Unfold"]

xp = backend.xp
_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _check_int(name: str, v, cls: str, minimum: int = 1) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
        raise ValueError(f"{cls}: {name} must be an int >= {minimum}, got {v!r}")
    return v


class _ConvNd(Module):
    _nd = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                 padding_mode, output_padding=0, device=None, dtype=None) -> None:
        super().__init__()
        cls = type(self).__name__
        nd = self._nd
        _check_int("in_channels", in_channels, cls)
        _check_int("out_channels", out_channels, cls)
        _check_int("groups", groups, cls)
        if in_channels % groups:
            raise ValueError(f"{cls}: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"{cls}: out_channels ({out_channels}) must be divisible by groups ({groups})")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{cls}: padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        k = C._ntuple(kernel_size, nd, "kernel_size")
        s = C._ntuple(stride, nd, "stride")
        d = C._ntuple(dilation, nd, "dilation")
        C._positive(k, "kernel_size")
        C._positive(s, "stride")
        C._positive(d, "dilation")
        if isinstance(padding, str):
            if self._transposed:
                raise ValueError(f"{cls}: padding must be an int or a tuple, got {padding!r}")
            if padding not in ("same", "valid"):
                raise ValueError(f"{cls}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
            if padding == "same" and any(v != 1 for v in s):
                raise ValueError(f"{cls}: padding='same' is not supported for strided convolutions")
            p = padding
        else:
            p = C._ntuple(padding, nd, "padding")
            C._positive(p, "padding", allow_zero=True)
        if self._transposed and padding_mode != "zeros":
            raise ValueError(f"{cls}: only 'zeros' padding mode is supported, got {padding_mode!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = k
        self.stride = s
        self.padding = p
        self.dilation = d
        self.transposed = self._transposed
        self.output_padding = C._ntuple(output_padding, nd, "output_padding")
        self.groups = groups
        self.padding_mode = padding_mode
        if device is not None:
            _check_device(device)
        nd_dtype = backend.to_numpy_dtype(dtype) if dtype is not None else backend.default_float_np()
        if self._transposed:
            wshape = (in_channels, out_channels // groups) + k
        else:
            wshape = (out_channels, in_channels // groups) + k
        self.weight = Parameter(_make(xp.empty(wshape, dtype=nd_dtype)))
        if bias:
            self.bias = Parameter(_make(xp.empty((out_channels,), dtype=nd_dtype)))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        s = "{in_channels}, {out_channels}, kernel_size={kernel_size}, stride={stride}"
        if self.padding != (0,) * len(self.kernel_size):
            s += ", padding={padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += ", dilation={dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += ", output_padding={output_padding}"
        if self.groups != 1:
            s += ", groups={groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += ", padding_mode={padding_mode}"
        return s.format(**self.__dict__)

    def _conv_forward(self, input, weight, bias):
        if self.padding_mode != "zeros":
            return C._conv(input, weight, bias, self.stride, self.padding, self.dilation, self.groups, self._nd,
                           type(self).__name__, padding_mode=self.padding_mode)
        fn = C.conv2d if self._nd == 2 else C.conv1d
        return fn(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, input):
        return self._conv_forward(input, self.weight, self.bias)


class Conv2d(_ConvNd):
    """2-D convolution over ``(N, C_in, H, W)`` inputs (cross-correlation, as in PyTorch).

    Args:
        in_channels, out_channels: channel counts.
        kernel_size, stride, dilation: int or pair.
        padding: int, pair, ``'valid'`` or ``'same'``.
        groups: split channels into independent groups (``groups == in_channels`` is depthwise).
        bias: learn an additive bias (default True).
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.

    Shape:
        input ``(N, C_in, H, W)``, output ``(N, C_out, H_out, W_out)`` with
        ``H_out = (H + 2*padding - dilation*(kernel-1) - 1) // stride + 1``.

    Example::

        >>> import deepbox
        >>> from deepbox import nn
        >>> m = nn.Conv2d(1, 6, 5, padding=2)
        >>> m(deepbox.randn(8, 1, 28, 28)).shape
        deepbox.Size([8, 6, 28, 28])
    """

    _nd = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)


class Conv1d(_ConvNd):
    """1-D convolution over ``(N, C_in, L)`` inputs; arguments as ``Conv2d`` with ints.

    Shape: input ``(N, C_in, L)``, output ``(N, C_out, L_out)``.
    """

    _nd = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)


class _ConvTransposeNd(_ConvNd):
    _transposed = True

    def _output_padding(self, input, output_size):
        if output_size is None:
            return self.output_padding
        nd = self._nd
        size = tuple(int(v) for v in output_size)[-nd:]
        if len(size) != nd:
            raise ValueError(f"{type(self).__name__}: output_size must have {nd} or {nd + 2} elements, "
                             f"got {output_size!r}")
        pads = []
        for i in range(nd):
            lo = ((input.shape[-nd + i] - 1) * self.stride[i] - 2 * self.padding[i]
                  + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
            extra = size[i] - lo
            if extra < 0 or extra >= max(self.stride[i], self.dilation[i]):
                raise ValueError(f"{type(self).__name__}: requested output_size {size} is not reachable; "
                                 f"valid sizes along axis {i} are {lo} to "
                                 f"{lo + max(self.stride[i], self.dilation[i]) - 1}")
            pads.append(extra)
        return tuple(pads)

    def forward(self, input, output_size=None):
        op = self._output_padding(input, output_size)
        fn = C.conv_transpose2d if self._nd == 2 else C.conv_transpose1d
        return fn(input, self.weight, self.bias, self.stride, self.padding, op, self.groups, self.dilation)


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-D convolution (the gradient of ``Conv2d`` with respect to its input).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias: as ``Conv2d``.
        output_padding: extra rows/columns added to one side of the output (smaller than stride or dilation).

    Shape:
        input ``(N, C_in, H, W)``, output ``(N, C_out, H_out, W_out)`` with
        ``H_out = (H-1)*stride - 2*padding + dilation*(kernel-1) + output_padding + 1``.
        ``forward(input, output_size=...)`` picks the output_padding that reaches ``output_size``.
    """

    _nd = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None,
                 dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding=output_padding, device=device, dtype=dtype)


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-D convolution over ``(N, C_in, L)`` inputs; arguments as ``ConvTranspose2d``."""

    _nd = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None,
                 dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding=output_padding, device=device, dtype=dtype)


class Unfold(Module):
    """Extract sliding local blocks: ``(N, C, H, W)`` → ``(N, C*kH*kW, L)`` (see ``F.unfold``)."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input):
        return C.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return "kernel_size={kernel_size}, dilation={dilation}, padding={padding}, stride={stride}".format(
            **self.__dict__)


class Fold(Module):
    """Sum sliding blocks back into an image: ``(N, C*kH*kW, L)`` → ``(N, C, H, W)`` (see ``F.fold``)."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1) -> None:
        super().__init__()
        self.output_size = output_size
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input):
        return C.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return ("output_size={output_size}, kernel_size={kernel_size}, dilation={dilation}, padding={padding}, "
                "stride={stride}").format(**self.__dict__)


class Conv3d(_ConvNd):
    """3-D convolution over ``(N, C_in, D, H, W)`` inputs (see ``F.conv3d``); arguments as ``Conv2d`` with triples.

    Shape: input ``(N, C_in, D, H, W)``, output ``(N, C_out, D_out, H_out, W_out)``, each axis as in ``Conv2d``.

    Example::

        >>> import deepbox
        >>> from deepbox import nn
        >>> m = nn.Conv3d(2, 4, 3, padding=1)
        >>> m(deepbox.randn(1, 2, 5, 6, 7)).shape
        deepbox.Size([1, 4, 5, 6, 7])
    """

    _nd = 3

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)

    def _conv_forward(self, input, weight, bias):
        if self.padding_mode == "zeros":
            return C.conv3d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)
        # the other modes pad first (F.pad's reflect/replicate/circular), then convolve without padding
        from deepbox.ops.movement import pad

        if self.padding == "valid":
            return C.conv3d(input, weight, bias, self.stride, 0, self.dilation, self.groups)
        if self.padding == "same":
            total = [dd * (kk - 1) for dd, kk in zip(self.dilation, self.kernel_size)]
            pads = [(t // 2, t - t // 2) for t in total]
        else:
            pads = [(pp, pp) for pp in self.padding]
        flat = tuple(v for lo_hi in reversed(pads) for v in lo_hi)
        return C.conv3d(pad(input, flat, mode=self.padding_mode), weight, bias, self.stride, 0, self.dilation,
                        self.groups)
