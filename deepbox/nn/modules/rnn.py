"""Recurrent layers: ``RNN``, ``LSTM``, ``GRU`` and their single-step cells, as in ``torch.nn``.

Parameter names, shapes, gate order and initialisation are PyTorch's, so a state dict
moves between the frameworks unchanged. Each layer and direction runs as one fused
graph node (``deepbox.ops.rnn``): the input projection of all steps is one GEMM and
backpropagation through time is written by hand.
"""
from __future__ import annotations

import math
import warnings

import deepbox
from deepbox import backend
from deepbox.nn import functional as F
from deepbox.nn import init
from deepbox.nn.modules.module import Module
from deepbox.nn.parameter import Parameter
from deepbox.nn.utils.rnn import PackedSequence
from deepbox.ops.rnn import gru_layer, lstm_layer, rnn_layer
from deepbox.tensor import Tensor, _check_device, _make

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

xp = backend.xp


def _param(shape, dtype=None, device=None) -> Parameter:
    if device is not None:
        _check_device(device)
    nd = backend.to_numpy_dtype(dtype) if dtype is not None else backend.default_float_np()
    return Parameter(_make(xp.empty(shape, dtype=nd)))


def _check_positive_int(owner, name, v):
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise ValueError(f"{owner}: {name} must be a positive int, got {v!r}")


class RNNBase(Module):
    """The shared machinery of ``RNN``, ``LSTM`` and ``GRU``: parameters, checks and the layer loop."""

    _GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None) -> None:
        super().__init__()
        name = type(self).__name__
        if mode not in self._GATES:
            raise ValueError(f"Unrecognized RNN mode: {mode}")
        _check_positive_int(name, "input_size", input_size)
        _check_positive_int(name, "hidden_size", hidden_size)
        _check_positive_int(name, "num_layers", num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                             f"element being zeroed, got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                          stacklevel=2)
        if not isinstance(proj_size, int) or proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        num_directions = 2 if bidirectional else 1
        gate_size = self._GATES[mode] * hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size
        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        for layer in range(num_layers):
            for direction in range(num_directions):
                layer_in = input_size if layer == 0 else real_hidden * num_directions
                sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = [("weight_ih", (gate_size, layer_in)), ("weight_hh", (gate_size, real_hidden))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size > 0:
                    shapes += [("weight_hr", (proj_size, hidden_size))]
                names = []
                for base, shape in shapes:
                    setattr(self, base + sfx, _param(shape, dtype, device))
                    names.append(base + sfx)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def flatten_parameters(self) -> None:
        """Accepted for portability: deepbox's weights need no flattening."""

    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self):
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    # ------------------------------------------------------------------ forward
    def _layer_weights(self, layer, direction):
        sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        g = lambda n: getattr(self, n + sfx) if hasattr(self, n + sfx) else None
        return g("weight_ih"), g("weight_hh"), g("bias_ih"), g("bias_hh"), g("weight_hr")

    def _run_direction(self, x, weights, h0, c0, reverse, batch_first, batch_sizes):
        w_ih, w_hh, b_ih, b_hh, w_hr = weights
        if self.mode == "LSTM":
            return lstm_layer(x, w_ih, w_hh, b_ih, b_hh, h0, c0, w_hr, reverse=reverse, batch_first=batch_first,
                              batch_sizes=batch_sizes)
        if self.mode == "GRU":
            out, h = gru_layer(x, w_ih, w_hh, b_ih, b_hh, h0, reverse=reverse, batch_first=batch_first,
                               batch_sizes=batch_sizes)
        else:
            nl = "tanh" if self.mode == "RNN_TANH" else "relu"
            out, h = rnn_layer(x, w_ih, w_hh, b_ih, b_hh, h0, nonlinearity=nl, reverse=reverse,
                               batch_first=batch_first, batch_sizes=batch_sizes)
        return out, h, None

    def _check_hidden(self, h, expected, what):
        if tuple(h.shape) != expected:
            raise RuntimeError(f"Expected {what} size {expected}, got {tuple(h.shape)}")

    def _stack(self, x, hx, batch_first, batch_sizes):
        """Run all layers and directions on a 3-D input; returns (output, h_n, c_n)."""
        D = 2 if self.bidirectional else 1
        is_lstm = self.mode == "LSTM"
        h0 = c0 = None
        if hx is not None:
            h0, c0 = hx if is_lstm else (hx, None)
        hns, cns = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                k = layer * D + d
                out, hn, cn = self._run_direction(
                    x, self._layer_weights(layer, d), None if h0 is None else h0[k], None if c0 is None else c0[k],
                    d == 1, batch_first, batch_sizes)
                outs.append(out)
                hns.append(hn)
                cns.append(cn)
            x = outs[0] if D == 1 else deepbox.cat(outs, -1)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        hn = deepbox.stack(hns, 0)
        cn = deepbox.stack(cns, 0) if is_lstm else None
        return x, hn, cn

    def forward(self, input, hx=None):
        name = type(self).__name__
        is_lstm = self.mode == "LSTM"
        D = 2 if self.bidirectional else 1
        real_hidden = self.proj_size if self.proj_size > 0 else self.hidden_size
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a Tensor or a PackedSequence, got {type(input).__name__}")
        if input.dim() not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D tensor instead")
        batched = input.dim() == 3
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                               f"got {input.shape[-1]}")
        if not batched:
            input = input.unsqueeze(1)
            if hx is not None:
                hx = tuple(h.unsqueeze(1) for h in hx) if is_lstm else hx.unsqueeze(1)
        B = input.shape[0 if self.batch_first and batched else 1]
        if hx is not None:
            hs = hx if is_lstm else (hx,)
            if is_lstm and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
                raise TypeError(f"{name}: hx must be a tuple (h_0, c_0)")
            self._check_hidden(hs[0], (self.num_layers * D, B, real_hidden), "hidden")
            if is_lstm:
                self._check_hidden(hs[1], (self.num_layers * D, B, self.hidden_size), "cell")
        out, hn, cn = self._stack(input, hx, self.batch_first and batched, None)
        if not batched:
            out = out.squeeze(1)
            hn = hn.squeeze(1)
            cn = cn.squeeze(1) if cn is not None else None
        return (out, (hn, cn)) if is_lstm else (out, hn)

    def _forward_packed(self, packed, hx):
        is_lstm = self.mode == "LSTM"
        data, bsz_t, sorted_idx, unsorted_idx = packed
        bsz = bsz_t._data if isinstance(bsz_t, Tensor) else xp.asarray(bsz_t)
        T, B = len(bsz), int(bsz[0])
        N = data.shape[0]
        offsets = xp.concatenate([[0], xp.cumsum(bsz)[:-1]]).astype(xp.int64)
        # packed rows -> a time-major padded (T, B, *) batch in sorted order, padding from an appended zero row
        tt, jj = xp.meshgrid(xp.arange(T), xp.arange(B), indexing="ij")
        src = xp.where(jj < bsz[:, None], offsets[:, None] + jj, N).reshape(-1).astype(xp.int64)
        zero = deepbox.zeros((1, data.shape[1]), dtype=data.dtype)
        x = deepbox.cat([data, zero], 0).index_select(0, deepbox.tensor(src)).reshape(T, B, data.shape[1])
        if hx is not None and sorted_idx is not None:
            hx = tuple(h.index_select(1, sorted_idx) for h in hx) if is_lstm else hx.index_select(1, sorted_idx)
        out, hn, cn = self._stack(x, hx, False, bsz)
        rows = xp.flatnonzero(jj.reshape(-1) < xp.repeat(bsz, B)).astype(xp.int64)
        out_data = out.reshape(T * B, out.shape[-1]).index_select(0, deepbox.tensor(rows))
        if unsorted_idx is not None:
            hn = hn.index_select(1, unsorted_idx)
            cn = cn.index_select(1, unsorted_idx) if cn is not None else None
        out_packed = PackedSequence(out_data, bsz_t, sorted_idx, unsorted_idx)
        return (out_packed, (hn, cn)) if is_lstm else (out_packed, hn)


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or ReLU).

    Args:
        input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True, batch_first=False,
        dropout=0.0 (between layers), bidirectional=False.

    Shape:
        input (L, N, H_in) or (N, L, H_in) with ``batch_first``, or unbatched (L, H_in), or a
        ``PackedSequence``; h_0 (D * num_layers, N, H_out). Returns ``(output, h_n)``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        if nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (f", nonlinearity={self.nonlinearity}" if self.nonlinearity != "tanh" else "")


class LSTM(RNNBase):
    """Long short-term memory, PyTorch's gate order (i, f, g, o).

    Args:
        input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0 (between
        layers), bidirectional=False, proj_size=0 (project h to ``proj_size`` with ``weight_hr``).

    Shape:
        input (L, N, H_in) / (N, L, H_in) / (L, H_in) / ``PackedSequence``; ``(h_0, c_0)`` of shapes
        (D * num_layers, N, H_out) and (D * num_layers, N, H_cell). Returns ``(output, (h_n, c_n))``.

    Example::

        >>> import deepbox
        >>> from deepbox import nn
        >>> lstm = nn.LSTM(10, 20, num_layers=2, batch_first=True)
        >>> out, (h, c) = lstm(deepbox.randn(3, 5, 10))
        >>> out.shape, h.shape
        (deepbox.Size([3, 5, 20]), deepbox.Size([2, 3, 20]))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device, dtype)


class GRU(RNNBase):
    """Gated recurrent unit, PyTorch's gate order (r, z, n), ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``.

    Same arguments and shapes as ``RNN`` (without ``nonlinearity``). Returns ``(output, h_n)``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)


# ----------------------------------------------------------------------------- cells
class RNNCellBase(Module):
    """Shared parameters of the single-step cells: ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), biases."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int, device=None,
                 dtype=None) -> None:
        super().__init__()
        name = type(self).__name__
        _check_positive_int(name, "input_size", input_size)
        _check_positive_int(name, "hidden_size", hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = _param((num_chunks * hidden_size, input_size), dtype, device)
        self.weight_hh = _param((num_chunks * hidden_size, hidden_size), dtype, device)
        if bias:
            self.bias_ih = _param((num_chunks * hidden_size,), dtype, device)
            self.bias_hh = _param((num_chunks * hidden_size,), dtype, device)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        nl = getattr(self, "nonlinearity", "tanh")
        if nl != "tanh":
            s += f", nonlinearity={nl}"
        return s

    def _prepare(self, input, hx, n_states):
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.shape[-1]} expected {self.input_size}")
        batched = input.dim() == 2
        if not batched:
            input = input.unsqueeze(0)
        states = None
        if hx is not None:
            states = hx if n_states == 2 else (hx,)
            if not batched:
                states = tuple(s.unsqueeze(0) for s in states)
            for s in states:
                if tuple(s.shape) != (input.shape[0], self.hidden_size):
                    raise RuntimeError(f"{name}: hidden state has shape {tuple(s.shape)}, expected "
                                       f"{(input.shape[0], self.hidden_size)}")
        return input.unsqueeze(0), states, batched


class RNNCell(RNNCellBase):
    """One Elman step: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or ReLU). Input (N, I) or (I,)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)

    def forward(self, input, hx=None):
        x, states, batched = self._prepare(input, hx, 1)
        _, h = rnn_layer(x, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                         None if states is None else states[0], nonlinearity=self.nonlinearity)
        return h if batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step; returns ``(h', c')``. Input (N, I) or (I,), ``hx = (h, c)`` or None (zeros)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input, hx=None):
        x, states, batched = self._prepare(input, hx, 2)
        h0, c0 = (None, None) if states is None else states
        _, h, c = lstm_layer(x, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, h0, c0)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step; returns ``h'``. Input (N, I) or (I,)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input, hx=None):
        x, states, batched = self._prepare(input, hx, 1)
        _, h = gru_layer(x, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                         None if states is None else states[0])
        return h if batched else h.squeeze(0)
