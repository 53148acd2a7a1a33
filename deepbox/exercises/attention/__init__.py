"""Exercise 'attention': F.scaled_dot_product_attention with a boolean mask, forward and backward, on arrays."""
from __future__ import annotations

import os

import numpy as np

from deepbox.exercises.base import Exercise, Part
from deepbox.exercises.checking import Mistake
from deepbox.exercises.layer import Case, Layer, check_layer


def _reference(t, params):
    import deepbox.nn.functional as F

    return F.scaled_dot_product_attention(t["q"], t["k"], t["v"], attn_mask=t["mask"])


def _softmax(s, axis=-1):
    s = s - s.max(axis=axis, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=axis, keepdims=True)


def _scores(i, scale=True):
    s = i["q"] @ i["k"].transpose(0, 2, 1)
    return s / np.sqrt(i["q"].shape[-1]) if scale else s


def _masked(s, mask, fill=-np.inf):
    return s if mask is None else np.where(mask, s, fill)


LAYER = Layer(
    forward="attention_forward", backward="attention_backward", grads=("q", "k", "v"), inputs=("q", "k", "v", "mask"),
    reference=_reference, ref_name="F.scaled_dot_product_attention",
    mistakes=[
        Mistake("out", "the mask is applied after the softmax: set the masked scores to -inf BEFORE the softmax, so "
                       "each row of weights still sums to 1",
                lambda i, p, d: None if i["mask"] is None else (_softmax(_scores(i)) * i["mask"]) @ i["v"]),
        Mistake("out", "the mask is not applied: set the scores of masked keys to -inf before the softmax",
                lambda i, p, d: None if i["mask"] is None else _softmax(_scores(i)) @ i["v"]),
        Mistake("out", "the mask is inverted: True marks the keys a query MAY attend to",
                lambda i, p, d: None if i["mask"] is None else _softmax(_masked(_scores(i), ~i["mask"])) @ i["v"]),
        Mistake("out", "masked scores must be -inf (weight 0), not 0: exp(0) = 1 still gives them weight",
                lambda i, p, d: _softmax(_masked(_scores(i), i["mask"], 0.0)) @ i["v"]),
        Mistake("out", "missing the scale 1/sqrt(D) on the scores q k^T",
                lambda i, p, d: _softmax(_masked(_scores(i, False), i["mask"])) @ i["v"]),
        Mistake("out", "softmax over the wrong axis: each query's weights over the keys (the last axis) sum to 1",
                lambda i, p, d: _softmax(_masked(_scores(i), i["mask"]), axis=-2) @ i["v"]),
    ],
    shape_hints={"out": "out is (B, Lq, Dv): weights (B, Lq, Lk) @ v (B, Lk, Dv)"},
)


def _case(label, r, b, lq, lk, d, dv, mask=None, hidden=False):
    return Case(label, {"q": r.standard_normal((b, lq, d)), "k": r.standard_normal((b, lk, d)),
                        "v": r.standard_normal((b, lk, dv)), "mask": mask}, hidden=hidden)


def _per_batch_mask(r, b, lq, lk):
    m = r.random((b, lq, lk)) < 0.6
    m[..., 0] = True  # every query keeps at least one key
    return m


def _cases():
    r = np.random.default_rng(20)
    causal = np.tril(np.ones((5, 5), dtype=bool))
    return [
        _case("no mask, B=2, L=4, D=3", r, 2, 4, 4, 3, 3),
        _case("causal mask, L=5", r, 2, 5, 5, 4, 2, mask=causal),
        _case("per-batch mask (3, 4, 6)", r, 3, 4, 6, 3, 5, mask=_per_batch_mask(r, 3, 4, 6)),
        _case("Lq=2 != Lk=7, batch of one", r, 1, 2, 7, 8, 3),
        _case("hidden", r, 2, 6, 3, 2, 4, mask=_per_batch_mask(r, 2, 6, 3), hidden=True),
        _case("hidden", r, 1, 3, 3, 16, 1, mask=np.tril(np.ones((3, 3), dtype=bool)), hidden=True),
    ]


def _check(ck):
    r = np.random.default_rng(21)
    check_layer(ck, LAYER, _cases(), [_case("causal, B=2, L=3, D=2", r, 2, 3, 3, 2, 2,
                                            mask=np.tril(np.ones((3, 3), dtype=bool)))])


def _swap(student, part):
    import deepbox
    import deepbox.nn.functional as F
    from deepbox.exercises.swap import layer_function

    fn = layer_function(student, LAYER)

    def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                     enable_gqa=False):
        if dropout_p or scale is not None or enable_gqa or (attn_mask is not None and attn_mask.dtype != deepbox.bool):
            raise NotImplementedError("your attention covers boolean masks, no dropout and the default scale")
        lead = query.shape[:-2]
        q, k, v = (t.reshape(-1, *t.shape[-2:]) for t in (query, key, value))
        mask = None
        if is_causal:
            mask = np.tril(np.ones((q.shape[1], k.shape[1]), dtype=bool))
        elif attn_mask is not None:
            m = attn_mask.numpy()
            mask = m if m.ndim == 2 else np.broadcast_to(m, (*lead, *m.shape[-2:])).reshape(-1, *m.shape[-2:])
        return fn(q, k, v, mask).reshape(*lead, q.shape[1], v.shape[-1])

    return [(F, "scaled_dot_product_attention", scaled_dot_product_attention)]


EXERCISE = Exercise(
    name="attention", lecture="12",
    summary="F.scaled_dot_product_attention: softmax(q k^T / sqrt(D), masked before the softmax) v",
    parts=[Part("forward and backward (attention_forward, attention_backward)",
                ("attention_forward", "attention_backward"), _check)],
    folder=os.path.dirname(os.path.abspath(__file__)), swap=_swap)
