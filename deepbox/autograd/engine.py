"""The backward engine: walks the graph once, in reverse topological order.

Every node's gradients are collected in one dict and released as soon as the
node has run, so memory falls as backward proceeds. The walk is iterative, so a
graph tens of thousands of ops deep (a long unrolled RNN) needs no recursion.
Gradients are summed back to each input's shape here, in ``unbroadcast``, and
nowhere else.
"""
from __future__ import annotations

from deepbox import backend
from deepbox.tensor import Tensor, _make

xp = backend.xp


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched to reach ``shape``."""
    if grad.shape == shape:
        return grad
    nd = grad.ndim - len(shape)
    if nd < 0:
        return xp.broadcast_to(grad, shape).copy()
    axes = tuple(range(nd)) + tuple(i + nd for i, s in enumerate(shape) if s == 1 and grad.shape[i + nd] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if nd:
        grad = grad.reshape(shape)
    return grad


def _freed_error(node):
    return RuntimeError(
        f"Trying to backward through the graph a second time (or to read saved values after they "
        f"were freed) at {node.name()}. Saved intermediate values of the graph are freed when you "
        f"call .backward() or autograd.grad(); pass retain_graph=True to the first call if you "
        f"need to backward through the graph again."
    )


def _check_versions(node):
    for counter, expected, tensor in node._saved_versions:
        if counter[0] != expected:
            if tensor is not None:
                what = f"a tensor of shape {list(tensor.shape)} and dtype {tensor.dtype}"
            else:
                what = f"the output of {node.name()}"
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: {what}, needed by {node.name()}, is at version {counter[0]}; "
                f"expected version {expected} instead. Use .clone() before the in-place change, or "
                f"make the change out of place."
            )


def _run_hooks(hooks, g):
    for h in hooks:
        r = h(_make(g))
        if r is not None:
            g = r._data if isinstance(r, Tensor) else xp.asarray(r)
    return g


def run_backward(roots, root_grads, retain_graph=False, capture=None):
    """Propagate ``root_grads`` from ``roots`` (tensors) through the graph.

    With ``capture`` (a list of tensors) the gradients reaching those tensors are
    returned instead of accumulated into leaves' ``.grad`` (``autograd.grad``).
    """
    leaf_grads = {}   # id(leaf) -> [leaf, summed grad, owned]
    node_grads = {}   # node -> list of grads per output
    start = []
    for t, g in zip(roots, root_grads):
        if not t.requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn: "
                "backward() needs a tensor computed from leaves with requires_grad=True"
            )
        if t._ctx is None:
            _add_leaf(leaf_grads, t, g, owned=False)
        else:
            node = t._ctx
            lst = node_grads.get(node)
            if lst is None:
                lst = node_grads[node] = [None] * node._n_out
                start.append(node)
            i = t._out_idx
            lst[i] = g if lst[i] is None else lst[i] + g

    captured_nodes = None
    if capture is not None:
        captured_nodes = {}
        for k, t in enumerate(capture):
            if t._ctx is not None:
                captured_nodes.setdefault(t._ctx, []).append((t._out_idx, k))
    captured = [None] * (len(capture) if capture is not None else 0)

    # count, for every node reachable from the roots, how many edges lead into it
    deps = {}
    stack = list(start)
    seen = set(start)
    while stack:
        node = stack.pop()
        for p in node.parents:
            if p is None or isinstance(p, Tensor):
                continue
            deps[p] = deps.get(p, 0) + 1
            if p not in seen:
                seen.add(p)
                stack.append(p)

    ready = [n for n in start if n not in deps]
    while ready:
        node = ready.pop()
        grads = node_grads.pop(node)
        if node._hooks or node._retained:
            for i, g in enumerate(grads):
                if g is None:
                    continue
                if node._hooks and i in node._hooks:
                    g = grads[i] = _run_hooks(node._hooks[i], g)
                if node._retained and i in node._retained:
                    t = node._retained[i]()
                    if t is not None and capture is None:
                        if t._grad is None:
                            t._grad = _make(g.copy())
                        else:
                            t._grad._data = t._grad._data + g
        if captured_nodes is not None and node in captured_nodes:
            for i, k in captured_nodes[node]:
                captured[k] = grads[i]
        parents = node.parents
        if all(g is None for g in grads):
            in_grads = (None,) * len(parents)
        else:
            if node.saved_tensors is None:
                raise _freed_error(node)
            if node._saved_versions:
                _check_versions(node)
            if node._n_out > 1:
                grads = [xp.zeros(s, d) if g is None else g for g, (s, d) in zip(grads, node.output_meta)]
            in_grads = node.backward(node, *grads)
            if type(in_grads) is not tuple:
                in_grads = (in_grads,)
            if len(in_grads) < len(parents):
                in_grads = in_grads + (None,) * (len(parents) - len(in_grads))
        if not retain_graph:
            if node.saved_tensors:
                node.saved_tensors = None
            node._saved_versions = ()
        for p, idx, meta, g in zip(parents, node.parent_idx, node.input_meta, in_grads):
            if p is None:
                continue
            if g is not None:
                if type(g) is not backend.ndarray:
                    g = xp.asarray(g)
                shape, dtype = meta
                if g.shape != shape:
                    g = unbroadcast(g, shape)
                if g.dtype != dtype:
                    g = g.astype(dtype)
            if isinstance(p, Tensor):
                if g is not None:
                    _add_leaf(leaf_grads, p, g, owned=False)
                continue
            if g is not None:
                lst = node_grads.get(p)
                if lst is None:
                    lst = node_grads[p] = [None] * p._n_out
                lst[idx] = g if lst[idx] is None else lst[idx] + g
            elif p not in node_grads:
                node_grads[p] = [None] * p._n_out
            d = deps[p] - 1
            deps[p] = d
            if d == 0:
                ready.append(p)

    if capture is not None:
        for k, t in enumerate(capture):
            if t._ctx is None:
                entry = leaf_grads.get(id(t))
                if entry is not None:
                    g = entry[1]
                    if t._hooks:
                        g = _run_hooks(t._hooks, g)
                    captured[k] = g
        return captured

    for t, g, owned in leaf_grads.values():
        if t._hooks:
            g = _run_hooks(t._hooks, g)
            owned = False
        if t._grad is None:
            # the engine may pass one array to several inputs (add's backward): copy unless fresh
            t._grad = _make(g if owned and g.base is None else g.copy())
        else:
            gd = t._grad._data
            if gd.shape != g.shape:
                raise RuntimeError(f"existing .grad of shape {gd.shape} cannot accumulate a gradient of shape {g.shape}")
            gd += g
        for h in t._post_accumulate_hooks or ():
            h(t)
    return None


def _add_leaf(leaf_grads, t, g, owned):
    e = leaf_grads.get(id(t))
    if e is None:
        leaf_grads[id(t)] = [t, g, owned]
    else:
        e[1] = e[1] + g
        e[2] = True
