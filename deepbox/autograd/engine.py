"""The backward engine: walks the graph once, in reverse topological order.

``run_backward`` is the whole algorithm in one loop: take the latest-created node whose gradient
is complete, call its ``backward``, and hand each input's gradient to the node (or leaf) that made
that input. Everything else is a named helper below it: checks, hooks, and the measured
shortcuts, each with its reason. Every node's gradients are released as soon as the node has
run, so memory falls as backward proceeds; the walk is iterative, so a graph tens of thousands of
ops deep (a long unrolled RNN) needs no recursion. Gradients are summed back to each input's
shape here, in ``unbroadcast``, and nowhere else.

``backward`` and ``grad`` (``deepbox.autograd.backward`` / ``.grad``, and ``Tensor.backward``)
are the public doors into it, at the end of this file.

Timings quoted below are in-process A/B measurements of ``benchmarks/bench_overhead.py``'s
``relu(x*w+b).sum()`` forward + backward (64 float32 elements, one thread) with the shortcut
switched off by replacing its helper (swap the helper, time 9 x 3000 steps, take the median),
on the shared 2-core machine, where PyTorch takes 80-125 us and deepbox 30-45 us.
"""
from __future__ import annotations

import heapq
import sys

from deepbox import backend
from deepbox.tensor import Tensor, _make

# the module deepbox/tensor.py itself (``deepbox.tensor`` the attribute is the creation function)
_tensor_module = sys.modules[Tensor.__module__]

xp = backend.xp
_ndarray = backend.ndarray
_pop = heapq.heappop
_push = heapq.heappush


def run_backward(roots, root_grads, retain_graph=False, capture=None):
    """Propagate ``root_grads`` from ``roots`` (tensors) back through the graph.

    Nodes come off a max-heap of creation numbers: every consumer of a node was created after it,
    so when a node comes off, all of its gradient contributions have arrived (a topological order
    without a separate sort). With ``capture`` (a list of tensors, ``autograd.grad``) the gradients
    reaching those tensors are returned instead of accumulated into leaves' ``.grad``.
    """
    grads = {}    # node -> gradient of its output (a list, one per output, for a multi-output node)
    heap = []     # (-creation number, node)
    leaves = {}   # id(leaf) -> [leaf, summed gradient, owned]: leaves whose hooks must see the total first
    taps = _Taps(capture) if capture is not None else None
    for t, g in zip(roots, root_grads):
        _seed(t, g, grads, heap, leaves)
    pending = _hooked_leaf_edges(grads) if taps is None and _tensor_module.eager_leaf_hooks[0] else None
    while heap:
        node = _pop(heap)[1]
        g = grads.pop(node)
        if node._hooks or node._retained or taps is not None:
            g = _output_hooks(node, g, taps)
        if node.saved_tensors is None or node._saved_versions:
            _check_saved(node)
        in_grads = _call_backward(node, g)
        if not retain_graph:
            _release(node)
        for parent, idx, pg in zip(node.parents, node.parent_idx, in_grads):
            if parent is None:
                continue
            if isinstance(parent, Tensor):
                _to_leaf(parent, pg, g, in_grads, leaves, taps is None, pending)
            elif pg is not None:
                _to_node(parent, idx, pg, grads, heap)
    if taps is not None:
        return taps.collect(leaves)
    _accumulate_leaves(leaves)
    return None


# ----------------------------------------------------------------------------- steps of the loop
def _seed(t, g, grads, heap, leaves):
    """Start the walk at root ``t`` with gradient ``g``."""
    if not t.requires_grad:
        raise RuntimeError(
            "element 0 of tensors does not require grad and does not have a grad_fn: "
            "backward() needs a tensor computed from leaves with requires_grad=True"
        )
    if t._ctx is None:
        _add_leaf(leaves, t, g, False)
    else:
        _add_node_grad(grads, heap, t._ctx, t._out_idx, g)


def _call_backward(node, g):
    """``node.backward`` with one gradient per output (zeros for outputs that got none), as a tuple."""
    if node._n_out > 1:
        g = [xp.zeros(s, d) if x is None else x for x, (s, d) in zip(g, node.output_meta)]
        r = node.backward(node, *g)
    else:
        r = node.backward(node, g)
    return r if type(r) is tuple else (r,)


def _release(node):
    """Drop what backward saved, so memory falls as the walk proceeds (``retain_graph=False``)."""
    if node.saved_tensors:
        node.saved_tensors = None
    node._saved_versions = ()


def _to_node(node, idx, g, grads, heap):
    """Add ``g``, the gradient of ``node``'s output ``idx``, to what that node has received so far."""
    shape, dtype = node.output_meta[idx]
    if g.shape != shape:
        g = unbroadcast(g, shape)
    if g.dtype is not dtype and g.dtype != dtype:
        g = g.astype(dtype)
    _add_node_grad(grads, heap, node, idx, g)


def _add_node_grad(grads, heap, node, idx, g):
    """Sum ``g`` into ``grads[node]``; the node joins the heap with its first contribution."""
    if node._n_out == 1:
        old = grads.get(node)
        if old is None:
            grads[node] = g
            _push(heap, (-node._seq, node))
        else:
            grads[node] = _sum(old, g)
        return
    lst = grads.get(node)
    if lst is None:
        lst = grads[node] = [None] * node._n_out
        _push(heap, (-node._seq, node))
    lst[idx] = g if lst[idx] is None else _sum(lst[idx], g)


def _to_leaf(leaf, g, node_grad, in_grads, leaves, direct, pending):
    """Give ``g`` (None: no gradient on this edge) to a leaf tensor: un-broadcast and cast it to the
    leaf's shape and dtype, then accumulate.

    Shortcut (``direct``): a leaf with no hooks, outside ``autograd.grad``, accumulates straight into
    its ``.grad`` instead of through the ``leaves`` dict, which only hooks need (they must see the
    total once). Measured: about 1.2 us of the tiny graph's 40 us (median of 3 A/B runs; noise ~2 us).
    """
    if g is None:
        if pending and id(leaf) in pending:
            _edge_done(pending, leaves, leaf)
        return
    if type(g) is not _ndarray:
        g = xp.asarray(g)
    owned = _owned(g, node_grad, in_grads)
    d = leaf._data
    if g.shape != d.shape:
        g = unbroadcast(g, d.shape)
        owned = g.base is None
    if g.dtype is not d.dtype and g.dtype != d.dtype:
        g = g.astype(d.dtype)
        owned = True
    if not direct or leaf._hooks or leaf._post_accumulate_hooks:
        _add_leaf(leaves, leaf, g, owned)
        if pending and id(leaf) in pending:
            _edge_done(pending, leaves, leaf)
    else:
        _accumulate(leaf, g, owned)


def _owned(pg, g, in_grads):
    """Whether ``pg`` is a fresh array that nothing else holds, so that a leaf may keep it as ``.grad``.

    Shortcut: adopting the array saves a copy per leaf per backward (measured: 1.6 us of the tiny
    graph's 40 us, median of 3 A/B runs; on an MLP's weights it saves one full copy of every gradient
    per step). Not adoptable:
    the incoming gradient passed through (add's backward returns ``grad`` itself), a view, or one
    array returned for two inputs.
    """
    if pg.base is not None or pg is g:
        return False
    if type(g) is list and any(pg is x for x in g):
        return False
    seen = 0
    for x in in_grads:
        if x is pg:
            seen += 1
    return seen == 1


def _accumulate(t, g, owned):
    """``t.grad += g`` (``t.grad = g`` the first time, without a copy when ``owned``)."""
    if t._grad is None:
        t._grad = _make(g if owned else g.copy())
        return
    gd = t._grad._data
    if gd.shape != g.shape:
        raise RuntimeError(f"existing .grad of shape {gd.shape} cannot accumulate a gradient of shape {g.shape}")
    gd += g


def _add_leaf(leaves, t, g, owned):
    e = leaves.get(id(t))
    if e is None:
        leaves[id(t)] = [t, g, owned]
    else:
        e[1] = _sum(e[1], g)
        e[2] = True


def _sum(a, b):
    """``a + b`` as an array: NumPy returns a scalar for two 0-d arrays, and a gradient must stay an ndarray
    (a scalar cannot be updated in place: ``p.grad.zero_()``, an optimiser's momentum buffer)."""
    r = a + b
    return r if type(r) is _ndarray else xp.asarray(r)


def _accumulate_leaves(leaves):
    """The leaves that waited for their total: finish each (``_finish_leaf``)."""
    for t, g, owned in leaves.values():
        _finish_leaf(t, g, owned)


def _finish_leaf(t, g, owned):
    """Run a leaf's tensor hooks on its summed gradient, add it to ``.grad``, then run its post-accumulate hooks."""
    if t._hooks:
        g = _run_hooks(t._hooks, g)
        owned = False
    _accumulate(t, g, owned)
    for h in t._post_accumulate_hooks or ():
        h(t)


def _hooked_leaf_edges(grads):
    """{id(leaf): edges into it} for the leaves with post-accumulate hooks in the graph below ``grads``' nodes.

    Leaves with post-accumulate hooks finish as soon as their last gradient arrives (PyTorch's
    AccumulateGrad), so a hook can start work (DDP's all-reduce) while backward goes on. The count
    runs only once some tensor has such a hook (``tensor.eager_leaf_hooks``).
    """
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


def _edge_done(pending, leaves, leaf):
    """One of ``leaf``'s incoming edges has delivered (or declined) its gradient; finish the leaf after the last."""
    left = pending[id(leaf)] - 1
    pending[id(leaf)] = left
    if left == 0:
        del pending[id(leaf)]
        entry = leaves.pop(id(leaf), None)
        if entry is not None:
            _finish_leaf(*entry)


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


# ----------------------------------------------------------------------------- checks, hooks, captures
def _check_saved(node):
    """Refuse a node whose saved arrays were freed, or changed in place since the forward (version counter)."""
    if node.saved_tensors is None:
        raise RuntimeError(
            f"Trying to backward through the graph a second time (or to read saved values after they "
            f"were freed) at {node.name()}. Saved intermediate values of the graph are freed when you "
            f"call .backward() or autograd.grad(); pass retain_graph=True to the first call if you "
            f"need to backward through the graph again."
        )
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


def _output_hooks(node, g, taps):
    """Hooks, ``retain_grad`` and ``autograd.grad`` captures on a node's outputs (rare, so off the hot path)."""
    multi = node._n_out > 1
    gl = g if multi else [g]
    for i, gi in enumerate(gl):
        if gi is None:
            continue
        if node._hooks and i in node._hooks:
            gi = gl[i] = _run_hooks(node._hooks[i], gi)
        if node._retained and i in node._retained:
            t = node._retained[i]()
            if t is not None and taps is None:
                if t._grad is None:
                    t._grad = _make(gi.copy())
                else:
                    t._grad._data = _sum(t._grad._data, gi)
    if taps is not None:
        taps.at_node(node, gl)
    return gl if multi else gl[0]


class _Taps:
    """``autograd.grad``'s captures: the gradients reaching chosen tensors, by position."""

    def __init__(self, tensors):
        self.tensors = tensors
        self.found = [None] * len(tensors)
        self.nodes = {}
        for k, t in enumerate(tensors):
            if t._ctx is not None:
                self.nodes.setdefault(t._ctx, []).append((t._out_idx, k))

    def at_node(self, node, gl):
        for i, k in self.nodes.get(node, ()):
            self.found[k] = gl[i]

    def collect(self, leaves):
        for k, t in enumerate(self.tensors):
            if t._ctx is None:
                entry = leaves.get(id(t))
                if entry is not None:
                    g = entry[1]
                    self.found[k] = _run_hooks(t._hooks, g) if t._hooks else g
        return self.found


# ----------------------------------------------------------------------------- the public doors
_ONES = {}


def scalar_one(shape, dtype):
    """A read-only array of ones for ``loss.backward()``'s implicit gradient, cached per shape and dtype.

    Shortcut: ``loss.backward()`` runs once per training step; the cache saves an allocation
    (measured: 0.5 us of the tiny graph's 40 us).
    """
    key = (shape, dtype)
    one = _ONES.get(key)
    if one is None:
        one = _ONES[key] = xp.ones(shape, dtype)
        one.flags.writeable = False
    return one


def tensor_backward(t, gradient=None, retain_graph=None, create_graph=False, inputs=None) -> None:
    """``Tensor.backward``: the common ``loss.backward()`` goes straight to ``run_backward``.

    Shortcut: skips ``backward``'s argument normalisation (lists, shape checks) for a float scalar
    root without arguments. Measured: no gain above this machine's noise (median -1.9 us, spread
    ±5 us); kept because it is also the shortest path to read.
    """
    if gradient is None and inputs is None and not create_graph and t._ctx is not None \
            and t._data.size == 1 and t._data.dtype.kind == "f":
        run_backward((t,), (scalar_one(t._data.shape, t._data.dtype),), bool(retain_graph))
        return
    backward(t, gradient, retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)


def _root_grads(tensors, grad_tensors, what):
    grads = []
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    elif isinstance(grad_tensors, Tensor) or not isinstance(grad_tensors, (list, tuple)):
        grad_tensors = [grad_tensors]
    if len(grad_tensors) != len(tensors):
        raise RuntimeError(f"{what}: got {len(grad_tensors)} gradients for {len(tensors)} tensors")
    for t, g in zip(tensors, grad_tensors):
        if g is None:
            if t._data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs (got an output of shape "
                    f"{tuple(t.shape)}); pass `gradient=` with the output's shape"
                )
            if t._data.dtype.kind != "f":
                raise RuntimeError(f"grad can be implicitly created only for real scalar outputs but got {t.dtype}")
            grads.append(xp.ones(t._data.shape, t._data.dtype))
        else:
            ga = g._data if isinstance(g, Tensor) else xp.asarray(g, dtype=t._data.dtype)
            if ga.shape != t._data.shape:
                raise RuntimeError(
                    f"Mismatch in shape: grad_output[0] has a shape of {tuple(ga.shape)} and output[0] has a shape "
                    f"of {tuple(t.shape)}."
                )
            grads.append(ga.astype(t._data.dtype, copy=False))
    return grads


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None) -> None:
    """Accumulate the gradients of ``tensors`` into the ``.grad`` of the leaves they depend on."""
    if create_graph:
        raise NotImplementedError("deepbox computes first-order gradients only: create_graph=True is not supported")
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    tensors = list(tensors)
    for t in tensors:
        if not t.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    grads = _root_grads(tensors, grad_tensors, "backward")
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        got = run_backward(tensors, grads, bool(retain_graph), capture=inputs)
        for t, g in zip(inputs, got):
            if g is None:
                continue
            if t._grad is None:
                t._grad = _make(g.copy())
            else:
                t._grad._data += g
        return
    run_backward(tensors, grads, bool(retain_graph))


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=None,
         is_grads_batched=False, materialize_grads=False):
    """Return d(outputs)/d(inputs) without touching any ``.grad``."""
    if create_graph:
        raise NotImplementedError("deepbox computes first-order gradients only: create_graph=True is not supported")
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"One of the differentiated Tensors (input {i}) does not require grad")
    grads = _root_grads(outputs, grad_outputs, "grad")
    got = run_backward(outputs, grads, bool(retain_graph), capture=inputs)
    result = []
    for i, (t, g) in enumerate(zip(inputs, got)):
        if g is None:
            if materialize_grads:
                g = xp.zeros(t._data.shape, t._data.dtype)
            elif not allow_unused:
                raise RuntimeError(
                    f"One of the differentiated Tensors (input {i}) appears to not have been used in the graph. "
                    "Set allow_unused=True if this is the desired behavior."
                )
        result.append(None if g is None else _make(g if g.base is None else g.copy()))
    return tuple(result)


# Tensor.backward calls this engine through tensor.py's hook: tensor.py sits below autograd and never imports it
_tensor_module._backward_engine = tensor_backward
