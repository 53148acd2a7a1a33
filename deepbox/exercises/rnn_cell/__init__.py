"""Exercise 'rnn_cell': nn.RNNCell (tanh) forward and backward on arrays."""
from __future__ import annotations

import os

import numpy as np

from deepbox.exercises.base import Exercise, Part
from deepbox.exercises.checking import Mistake
from deepbox.exercises.layer import Case, Layer, batch_factors, check_layer
from deepbox.exercises.training import train_row_model


def _reference(t, params):
    import deepbox
    import deepbox.nn.functional as F

    return deepbox.tanh(F.linear(t["x"], t["w_ih"], t["b_ih"]) + F.linear(t["h_prev"], t["w_hh"], t["b_hh"]))


def _pre(i):
    return i["x"] @ i["w_ih"].T + i["b_ih"] + i["h_prev"] @ i["w_hh"].T + i["b_hh"]


LAYER = Layer(
    forward="rnn_cell_forward", backward="rnn_cell_backward",
    grads=("x", "h_prev", "w_ih", "w_hh", "b_ih", "b_hh"), outputs=("h",), reference=_reference,
    ref_name="tanh(F.linear(x, w_ih, b_ih) + F.linear(h_prev, w_hh, b_hh))", factors=batch_factors("x"),
    mistakes=[
        Mistake("h", "transposed weight: w_hh is (H, H) in PyTorch's layout (one row per output): use h_prev @ w_hh.T",
                lambda i, p, d: np.tanh(i["x"] @ i["w_ih"].T + i["b_ih"] + i["h_prev"] @ i["w_hh"] + i["b_hh"])),
        Mistake("dh_prev", "tanh' is 1 - tanh(a)^2 = 1 - h^2, with h the output, not 1 - a^2",
                lambda i, p, d: (d * (1 - _pre(i) ** 2)) @ i["w_hh"]),
        Mistake("dh_prev", "transposed weight in dh_prev: dh_prev = da @ w_hh",
                lambda i, p, d: (d * (1 - np.tanh(_pre(i)) ** 2)) @ i["w_hh"].T),
        Mistake("dx", "tanh' is 1 - tanh(a)^2 = 1 - h^2, with h the output, not 1 - a^2",
                lambda i, p, d: (d * (1 - _pre(i) ** 2)) @ i["w_ih"]),
        Mistake("dx", "the chain rule goes through tanh: da = dh * (1 - h^2) before the weights",
                lambda i, p, d: d @ i["w_ih"]),
    ],
    shape_hints={"dw_ih": "dw_ih has the weight's shape (H, I): da.T @ x", "dw_hh": "dw_hh is (H, H): da.T @ h_prev"},
)


def _case(label, r, n, i, h, hidden=False):
    return Case(label, {"x": r.standard_normal((n, i)), "h_prev": np.tanh(r.standard_normal((n, h))),
                        "w_ih": 0.5 * r.standard_normal((h, i)), "w_hh": 0.5 * r.standard_normal((h, h)),
                        "b_ih": 0.1 * r.standard_normal(h), "b_hh": 0.1 * r.standard_normal(h)}, hidden=hidden)


def _cases():
    r = np.random.default_rng(16)
    return [_case("N=3, I=4, H=5", r, 3, 4, 5), _case("batch of one, I=2, H=3", r, 1, 2, 3),
            _case("H = I = 4", r, 5, 4, 4), _case("hidden", r, 7, 1, 6, True), _case("hidden", r, 2, 9, 3, True)]


def _check(ck):
    check_layer(ck, LAYER, _cases(), [_case("N=2, I=3, H=4", np.random.default_rng(17), 2, 3, 4)])


def _rnn_forward(cell, self, input, hx=None):
    """nn.RNN's forward for one direction and tanh, one step at a time through the student's cell."""
    import deepbox

    if self.bidirectional or self.mode != "RNN_TANH" or input.dim() != 3 or not isinstance(input, deepbox.Tensor):
        raise NotImplementedError("your rnn_cell runs nn.RNN with tanh, one direction, on a 3-D tensor")
    x = input if self.batch_first else input.transpose(0, 1)          # (B, T, I)
    B, T = x.shape[0], x.shape[1]
    hs = []
    for layer in range(self.num_layers):
        h = hx[layer] if hx is not None else deepbox.zeros(B, self.hidden_size, dtype=x.dtype)
        w = [getattr(self, f"{n}_l{layer}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        outs = []
        for t in range(T):
            h = cell(x[:, t], h, *w)
            outs.append(h)
        x = deepbox.stack(outs, 1)
        hs.append(h)
    out = x if self.batch_first else x.transpose(0, 1)
    return out, deepbox.stack(hs, 0)


def _swap(student, part):
    from deepbox import nn
    from deepbox.exercises.swap import layer_function

    cell = layer_function(student, LAYER)

    def cell_forward(self, input, hx=None):
        import deepbox

        if self.nonlinearity != "tanh" or input.dim() != 2:
            raise NotImplementedError("your rnn_cell covers tanh on a batch (N, I)")
        h = hx if hx is not None else deepbox.zeros(input.shape[0], self.hidden_size, dtype=input.dtype)
        return cell(input, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)

    return [(nn.RNNCell, "forward", cell_forward),
            (nn.RNN, "forward", lambda self, input, hx=None: _rnn_forward(cell, self, input, hx))]


def _train(ex, student, parts, **kw):
    return train_row_model(ex, student, parts, cell="rnn", **kw)


EXERCISE = Exercise(
    name="rnn_cell", lecture="11", summary="nn.RNNCell: h = tanh(x w_ih^T + h w_hh^T + b), and its six gradients",
    parts=[Part("forward and backward (rnn_cell_forward, rnn_cell_backward)",
                ("rnn_cell_forward", "rnn_cell_backward"), _check)],
    folder=os.path.dirname(os.path.abspath(__file__)), swap=_swap, train=_train)
