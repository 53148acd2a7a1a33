"""Exercise 'lstm_cell': nn.LSTMCell forward and backward on arrays (gates i, f, g, o)."""
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

    a = F.linear(t["x"], t["w_ih"], t["b_ih"]) + F.linear(t["h_prev"], t["w_hh"], t["b_hh"])
    i, f, g, o = a.chunk(4, 1)
    c = deepbox.sigmoid(f) * t["c_prev"] + deepbox.sigmoid(i) * deepbox.tanh(g)
    return deepbox.sigmoid(o) * deepbox.tanh(c), c


def _s(a):
    return 1 / (1 + np.exp(-a))


def _forward(i, order="ifgo"):
    hid = i["h_prev"].shape[1]
    a = i["x"] @ i["w_ih"].T + i["b_ih"] + i["h_prev"] @ i["w_hh"].T + i["b_hh"]
    blocks = dict(zip(order, (a[:, k * hid:(k + 1) * hid] for k in range(4))))
    c = _s(blocks["f"]) * i["c_prev"] + _s(blocks["i"]) * np.tanh(blocks["g"])
    return _s(blocks["o"]) * np.tanh(c), c


def _dc_prev_without_h_path(i, p, d):
    dh, dc = d
    hid = i["h_prev"].shape[1]
    a = i["x"] @ i["w_ih"].T + i["b_ih"] + i["h_prev"] @ i["w_hh"].T + i["b_hh"]
    return dc * _s(a[:, hid:2 * hid])


LAYER = Layer(
    forward="lstm_cell_forward", backward="lstm_cell_backward",
    grads=("x", "h_prev", "c_prev", "w_ih", "w_hh", "b_ih", "b_hh"), outputs=("h", "c"), reference=_reference,
    ref_name="deepbox's ops (F.linear, sigmoid, tanh)", factors=batch_factors("x"),
    mistakes=[
        Mistake("h", "gate order: PyTorch stacks the gates as i, f, g, o (input, forget, cell, output)",
                lambda i, p, d: _forward(i, "ifog")[0]),
        Mistake("h", "gate order: PyTorch stacks the gates as i, f, g, o (input, forget, cell, output)",
                lambda i, p, d: _forward(i, "figo")[0]),
        Mistake("c", "gate order: PyTorch stacks the gates as i, f, g, o (input, forget, cell, output)",
                lambda i, p, d: _forward(i, "figo")[1]),
        Mistake("dc_prev", "c reaches the loss through h as well: dc_total = dc + dh * o * (1 - tanh(c)^2) before "
                           "dc_prev = dc_total * f", _dc_prev_without_h_path),
    ],
    shape_hints={"dw_ih": "dw_ih has the weight's shape (4H, I): da.T @ x",
                 "dw_hh": "dw_hh has the weight's shape (4H, H): da.T @ h_prev"},
)


def _case(label, r, n, i, h, scale=0.5, hidden=False):
    return Case(label, {"x": r.standard_normal((n, i)), "h_prev": np.tanh(r.standard_normal((n, h))),
                        "c_prev": r.standard_normal((n, h)), "w_ih": scale * r.standard_normal((4 * h, i)),
                        "w_hh": scale * r.standard_normal((4 * h, h)), "b_ih": 0.1 * r.standard_normal(4 * h),
                        "b_hh": 0.1 * r.standard_normal(4 * h)}, hidden=hidden)


def _cases():
    r = np.random.default_rng(18)
    return [_case("N=3, I=4, H=5", r, 3, 4, 5), _case("batch of one, I=2, H=3", r, 1, 2, 3),
            _case("large pre-activations", r, 4, 3, 2, scale=8.0), _case("hidden", r, 6, 1, 4, hidden=True),
            _case("hidden", r, 2, 7, 7, hidden=True)]


def _check(ck):
    check_layer(ck, LAYER, _cases(), [_case("N=2, I=3, H=3", np.random.default_rng(19), 2, 3, 3)])


def _lstm_forward(cell, self, input, hx=None):
    """nn.LSTM's forward for one direction without projections, one step at a time through the student's cell."""
    import deepbox

    if self.bidirectional or self.proj_size or input.dim() != 3 or not isinstance(input, deepbox.Tensor):
        raise NotImplementedError("your lstm_cell runs nn.LSTM in one direction, without projections, on a 3-D "
                                  "tensor")
    x = input if self.batch_first else input.transpose(0, 1)          # (B, T, I)
    B, T = x.shape[0], x.shape[1]
    hs, cs = [], []
    for layer in range(self.num_layers):
        if hx is None:
            h = c = deepbox.zeros(B, self.hidden_size, dtype=x.dtype)
        else:
            h, c = hx[0][layer], hx[1][layer]
        w = [getattr(self, f"{n}_l{layer}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        outs = []
        for t in range(T):
            h, c = cell(x[:, t], h, c, *w)
            outs.append(h)
        x = deepbox.stack(outs, 1)
        hs.append(h)
        cs.append(c)
    out = x if self.batch_first else x.transpose(0, 1)
    return out, (deepbox.stack(hs, 0), deepbox.stack(cs, 0))


def _swap(student, part):
    from deepbox import nn
    from deepbox.exercises.swap import layer_function

    cell = layer_function(student, LAYER)

    def cell_forward(self, input, hx=None):
        import deepbox

        if input.dim() != 2:
            raise NotImplementedError("your lstm_cell covers a batch (N, I)")
        if hx is None:
            hx = (deepbox.zeros(input.shape[0], self.hidden_size, dtype=input.dtype),) * 2
        return cell(input, hx[0], hx[1], self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)

    return [(nn.LSTMCell, "forward", cell_forward),
            (nn.LSTM, "forward", lambda self, input, hx=None: _lstm_forward(cell, self, input, hx))]


def _train(ex, student, parts, **kw):
    return train_row_model(ex, student, parts, cell="lstm", **kw)


EXERCISE = Exercise(
    name="lstm_cell", lecture="11", summary="nn.LSTMCell: gates i, f, g, o; c and h; seven gradients",
    parts=[Part("forward and backward (lstm_cell_forward, lstm_cell_backward)",
                ("lstm_cell_forward", "lstm_cell_backward"), _check)],
    folder=os.path.dirname(os.path.abspath(__file__)), swap=_swap, train=_train)
