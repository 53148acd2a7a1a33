"""The backward engine: walks the graph once, in reverse topological order.

Every node's gradients are collected in one dict and released as soon as the
node has run, so memory falls as backward proceeds. The walk is iterative, so a
graph tens of thousands of ops deep (a long unrolled RNN) needs no recursion.
Gradients are summed back to each input's shape here, in ``unbroadcast``, and
nowhere else.
"""
from __future__ import annotations

import heapq

from deepbox import backend
from deepbox.tensor import Tensor, _make

xp = backend.xp
_ndarray = backend.ndarray


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched to reach ``shape``."""
    if grad.shape == shape:
        return grad
    nd = grad.ndim - len(shape)
    if nd < 0:
        return xp.broadcast_to(grad, shape).copy()
    if nd:
        grad = xp.asarray(grad.sum(axis=tuple(range(nd))))  # a 0-d array, never a NumPy scalar
    stretched = tuple(i for i, s in enumerate(shape) if s == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def _sum(a, b):
    """``a + b`` as an array: NumPy returns a scalar for two 0-d arrays, and a gradient must stay an ndarray
    (a scalar cannot be updated in place: ``p.grad.zero_()``, an optimiser's momentum buffer)."""
    r = a + b
    return r if type(r) is _ndarray else xp.asarray(r)


def _freed_error(node):
    return RuntimeError(
        f"Trying to backward through the graph a second time (or to read saved values after they "
        f"were freed) at {node.name()}. Saved intermediate values of the graph are freed when you "
        f"call .backward() or autograd.grad(); pass retain_graph=True to the first call if you "
        f"need to backward through the graph again."
    )


def _check_versions(node):
    for counter, expected, shape, dtype in node._saved_versions:
        if counter[0] != expected:
            what = f"a tensor of shape {list(shape)} and dtype {dtype}" if shape is not None else \
                f"the output of {node.name()}"
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


_ONES = {}


def scalar_one(shape, dtype):
    """A read-only array of ones for ``loss.backward()``'s implicit gradient, cached per shape and dtype."""
    key = (shape, dtype)
    one = _ONES.get(key)
    if one is None:
        one = _ONES[key] = xp.ones(shape, dtype)
        one.flags.writeable = False
    return one


def run_backward(roots, root_grads, retain_graph=False, capture=None):
    """Propagate ``root_grads`` from ``roots`` (tensors) through the graph.

    Nodes are processed in reverse creation order (a max-heap on their sequence
    numbers): every consumer of a node was created after it, so by the time a
    node is popped all of its gradient contributions have arrived.

    With ``capture`` (a list of tensors) the gradients reaching those tensors are
    returned instead of accumulated into leaves' ``.grad`` (``autograd.grad``).
    """
    leaf_grads = {}   # id(leaf) -> [leaf, summed grad, owned]
    grads = {}        # node -> gradient array (single output) or list of arrays (multi-output)
    heap = []
    for t, g in zip(roots, root_grads):
        if not t.requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn: "
                "backward() needs a tensor computed from leaves with requires_grad=True"
            )
        if t._ctx is None:
            _add_leaf(leaf_grads, t, g, False)
        else:
            _add_node_grad(grads, heap, t._ctx, t._out_idx, g)

    captured_nodes = None
    if capture is not None:
        captured_nodes = {}
        for k, t in enumerate(capture):
            if t._ctx is not None:
                captured_nodes.setdefault(t._ctx, []).append((t._out_idx, k))
    captured = [None] * (len(capture) if capture is not None else 0)

    pop = heapq.heappop
    push = heapq.heappush
    direct = capture is None
    # leaves with post-accumulate hooks finish as soon as their last gradient arrives (PyTorch's
    # AccumulateGrad), so a hook can start work (DDP's all-reduce) while backward goes on
    pending = _hooked_leaf_edges(grads) if direct and eager_leaf_hooks[0] else None
    while heap:
        node = pop(heap)[1]
        g = grads.pop(node)
        multi = node._n_out > 1
        if node._hooks or node._retained or captured_nodes:
            gl = g if multi else [g]
            _node_extras(node, gl, capture, captured_nodes, captured)
            g = gl if multi else gl[0]
        if node.saved_tensors is None:
            raise _freed_error(node)
        for counter, expected, _, _ in node._saved_versions:
            if counter[0] != expected:
                _check_versions(node)
        if multi:
            g = [xp.zeros(s, d) if x is None else x for x, (s, d) in zip(g, node.output_meta)]
            in_grads = node.backward(node, *g)
        else:
            in_grads = node.backward(node, g)
        if type(in_grads) is not tuple:
            in_grads = (in_grads,)
        if not retain_graph:
            if node.saved_tensors:
                node.saved_tensors = None
            node._saved_versions = ()
        n_in = len(in_grads)
        # one array returned for two inputs (add's backward) must not be adopted by either of them
        if n_in == 1:
            dup = False
        elif n_in == 2:
            dup = in_grads[0] is in_grads[1] and in_grads[0] is not None
        else:
            ids = [id(x) for x in in_grads if x is not None]
            dup = len(set(ids)) < len(ids)
        for p, idx, pg in zip(node.parents, node.parent_idx, in_grads):
            if pg is None or p is None:
                if pending and p is not None and id(p) in pending:
                    _edge_done(pending, leaf_grads, p)
                continue
            if type(pg) is not _ndarray:
                pg = xp.asarray(pg)
            if isinstance(p, Tensor):
                d = p._data
                # a leaf may adopt the array as its .grad only if nothing else can see it: not the incoming
                # gradient passed through, not a view, not returned for two inputs
                owned = not dup and pg.base is None and pg is not g and (not multi or all(pg is not x for x in g))
                if pg.shape != d.shape:
                    pg = unbroadcast(pg, d.shape)
                    owned = pg.base is None
                if pg.dtype is not d.dtype and pg.dtype != d.dtype:
                    pg = pg.astype(d.dtype)
                    owned = True
                if direct and not (p._hooks or p._post_accumulate_hooks):
                    # accumulate straight into .grad (no hooks to see the total first)
                    pgr = p._grad
                    if pgr is None:
                        p._grad = _make(pg if owned else pg.copy())
                    elif pgr._data.shape != pg.shape:
                        raise RuntimeError(f"existing .grad of shape {pgr._data.shape} cannot accumulate a "
                                           f"gradient of shape {pg.shape}")
                    else:
                        pgr._data += pg
                else:
                    _add_leaf(leaf_grads, p, pg, owned)
                    if pending and id(p) in pending:
                        _edge_done(pending, leaf_grads, p)
                continue
            shape, dtype = p.output_meta[idx]
            if pg.shape != shape:
                pg = unbroadcast(pg, shape)
            if pg.dtype is not dtype and pg.dtype != dtype:
                pg = pg.astype(dtype)
            if p._n_out == 1:
                old = grads.get(p)
                if old is None:
                    grads[p] = pg
                    push(heap, (-p._seq, p))
                else:
                    grads[p] = _sum(old, pg)
            else:
                _add_node_grad(grads, heap, p, idx, pg)

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
        _finish_leaf(t, g, owned)
    return None


def _finish_leaf(t, g, owned):
    """Run a leaf's tensor hooks on its summed gradient, add it to ``.grad``, then run its post-accumulate hooks."""
    if t._hooks:
        g = _run_hooks(t._hooks, g)
        owned = False
    if t._grad is None:
        # one array may reach several inputs (add's backward passes it to both): copy unless fresh
        t._grad = _make(g if owned else g.copy())
    else:
        gd = t._grad._data
        if gd.shape != g.shape:
            raise RuntimeError(
                f"existing .grad of shape {gd.shape} cannot accumulate a gradient of shape {g.shape}")
        gd += g
    for h in t._post_accumulate_hooks or ():
        h(t)


# set once any tensor has a post-accumulate hook (Tensor.register_post_accumulate_grad_hook); until
# then backward skips the count below
eager_leaf_hooks = [False]


def _hooked_leaf_edges(grads):
    """{id(leaf): edges into it} for the leaves with post-accumulate hooks in the graph below ``grads``' nodes."""
    count = {}
    seen = set()
    stack = list(grads)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for p in node.parents:
            if p is None:
                continue
            if isinstance(p, Tensor):
                if p._post_accumulate_hooks:
                    count[id(p)] = count.get(id(p), 0) + 1
            elif id(p) not in seen:
                stack.append(p)
    return count


def _edge_done(pending, leaf_grads, leaf):
    """One of ``leaf``'s incoming edges has delivered (or declined) its gradient; finish the leaf after the last."""
    left = pending[id(leaf)] - 1
    pending[id(leaf)] = left
    if left == 0:
        del pending[id(leaf)]
        entry = leaf_grads.pop(id(leaf), None)
        if entry is not None:
            _finish_leaf(*entry)


def _add_node_grad(grads, heap, node, idx, g):
    if node._n_out == 1:
        old = grads.get(node)
        if old is None:
            grads[node] = g
            heapq.heappush(heap, (-node._seq, node))
        else:
            grads[node] = _sum(old, g)
        return
    lst = grads.get(node)
    if lst is None:
        lst = grads[node] = [None] * node._n_out
        heapq.heappush(heap, (-node._seq, node))
    lst[idx] = g if lst[idx] is None else _sum(lst[idx], g)


def _node_extras(node, gl, capture, captured_nodes, captured):
    """Hooks, retain_grad and autograd.grad captures on a node's outputs (rare, so kept off the hot path)."""
    for i, g in enumerate(gl):
        if g is None:
            continue
        if node._hooks and i in node._hooks:
            g = gl[i] = _run_hooks(node._hooks[i], g)
        if node._retained and i in node._retained:
            t = node._retained[i]()
            if t is not None and capture is None:
                if t._grad is None:
                    t._grad = _make(g.copy())
                else:
                    t._grad._data = _sum(t._grad._data, g)
    if captured_nodes and node in captured_nodes:
        for i, k in captured_nodes[node]:
            captured[k] = gl[i]


def _add_leaf(leaf_grads, t, g, owned):
    e = leaf_grads.get(id(t))
    if e is None:
        leaf_grads[id(t)] = [t, g, owned]
    else:
        e[1] = _sum(e[1], g)
        e[2] = True
