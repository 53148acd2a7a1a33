"""The machinery around the compiled kernels (``deepbox.kernels``): the splitter, the switches, thread
settings, dtype dispatch, fork safety in DataLoader workers and ``DEEPBOX_NUMBA=0``.

The kernels' values are tested against PyTorch in tests/conv (every test twice) and
tests/nn/test_batchnorm_kernels.py; here the values that cross processes are checked against PyTorch too.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import deepbox
import deepbox.nn.functional as F
from deepbox import kernels
from tests.helpers import require_kernels

REPO = Path(deepbox.__file__).resolve().parents[1]


@pytest.fixture
def threads():
    """Set the splitter's thread count for one test, then restore it."""
    old = kernels.threads.num_threads()
    yield kernels.threads.set_num_threads
    kernels.threads.set_num_threads(old)


# ----------------------------------------------------------------------------- the splitter

@pytest.mark.parametrize("t", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 1000])
def test_parallel_covers_every_index_once(n, t, threads):
    threads(t)
    for work in (1 << 30, 100):              # large: split; below the threshold: one chunk
        hits = np.zeros(n, dtype=np.int64)
        seen = []

        def mark(lo, hi, out, step, seen):
            seen.append((lo, hi))
            out[lo:hi] += step

        chunks = kernels.threads.parallel(mark, n, hits, 1, seen, work=work)
        np.testing.assert_array_equal(hits, np.ones(n, dtype=np.int64), err_msg=f"work={work}")
        assert chunks == len(seen)
        expect = max(1, min(t, n)) if work >= 32768 else 1
        assert chunks == expect, f"n={n} threads={t} work={work}"
        spans = sorted(seen)
        assert spans[0][0] == 0 and spans[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:])), f"chunks not contiguous: {spans}"
        assert all(hi > lo for lo, hi in spans) or n == 0, f"an empty chunk: {spans}"


@pytest.mark.parametrize("t", [1, 2, 3])
@pytest.mark.parametrize("n", [1, 2, 7, 1000])
def test_parallel_indexed_chunk_numbers(n, t, threads):
    """``indexed=True``: chunk ``i`` writes row ``i`` of a partial-sum array sized ``num_threads()``."""
    threads(t)
    part = np.zeros((kernels.threads.num_threads(), 2))
    numbers = []
    x = np.arange(n, dtype=np.float64)

    def partial(i, lo, hi, x, part):
        numbers.append(i)
        part[i] = x[lo:hi].sum(), hi - lo

    chunks = kernels.threads.parallel(partial, n, x, part, indexed=True)
    assert sorted(numbers) == list(range(chunks)), numbers
    assert all(0 <= i < kernels.threads.num_threads() for i in numbers)
    assert part[:, 0].sum() == x.sum() and part[:, 1].sum() == n


def test_parallel_raises_the_exception_of_any_chunk(threads):
    threads(3)

    def fail_at(lo, hi, where):
        if lo <= where < hi:
            raise ValueError(f"chunk {lo}:{hi}")

    for where in (0, 5, 9):               # the caller's chunk, then the workers'
        with pytest.raises(ValueError, match="chunk"):
            kernels.threads.parallel(fail_at, 10, where)
    hits = np.zeros(10)
    kernels.threads.parallel(lambda lo, hi: hits.__setitem__(slice(lo, hi), 1), 10)   # the pool still works
    assert hits.sum() == 10


def test_nested_parallel_call_finishes():
    """A chunk that calls ``parallel`` again runs the inner call serially instead of waiting on busy workers."""
    code = textwrap.dedent("""
        import os, threading
        import numpy as np
        from deepbox import kernels
        kernels.threads.set_num_threads(2)
        out = np.zeros(100)
        def inner(lo, hi, o):
            o[lo:hi] += 1
        def outer(lo, hi, o):
            kernels.threads.parallel(inner, hi - lo, o[lo:hi])
        t = threading.Thread(target=kernels.threads.parallel, args=(outer, 100, out), daemon=True)
        t.start()
        t.join(3)
        print("hung" if t.is_alive() else f"done {out.min()} {out.max()}", flush=True)
        os._exit(0)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.stdout.strip() == "done 1.0 1.0", res.stdout + res.stderr


# ----------------------------------------------------------------------------- settings

@pytest.mark.parametrize("bad", [0, -1, -8])
def test_set_num_threads_rejects_non_positive(bad):
    old = kernels.threads.num_threads()
    with pytest.raises(ValueError, match=str(bad)):
        kernels.threads.set_num_threads(bad)
    assert kernels.threads.num_threads() == old


def test_set_num_threads_rejects_non_numbers():
    old = kernels.threads.num_threads()
    with pytest.raises(TypeError, match="abc"):
        kernels.threads.set_num_threads("abc")
    with pytest.raises(TypeError):
        kernels.threads.set_num_threads(None)
    assert kernels.threads.num_threads() == old


def test_set_num_threads_rejects_fractions():
    old = kernels.threads.num_threads()
    try:
        with pytest.raises(TypeError, match="2.5"):
            kernels.threads.set_num_threads(2.5)
    finally:
        kernels.threads.set_num_threads(old)


def test_set_num_threads_takes_effect(threads):
    threads(3)
    assert kernels.threads.num_threads() == 3
    assert kernels.threads.parallel(lambda lo, hi: None, 100) == 3
    threads(1)
    assert kernels.threads.num_threads() == 1
    assert kernels.threads.parallel(lambda lo, hi: None, 100) == 1


def test_compiled_restores_previous_setting_even_on_error():
    require_kernels()
    before = kernels.switch.enabled()
    try:
        for start in (True, False):
            kernels.switch.set_enabled(start)
            with pytest.raises(RuntimeError, match="inside"):
                with kernels.switch.compiled(False):
                    assert not kernels.switch.enabled() and kernels.switch.kernels() is None
                    with kernels.switch.compiled():                          # default: on; nested
                        assert kernels.switch.enabled() and kernels.switch.kernels() is not None
                    assert not kernels.switch.enabled()
                    raise RuntimeError("inside")
            assert kernels.switch.enabled() == start
            with pytest.raises(KeyError):
                with kernels.switch.compiled(True):
                    assert kernels.switch.enabled()
                    raise KeyError("x")
            assert kernels.switch.enabled() == start
    finally:
        kernels.switch.set_enabled(before)


def test_the_switch_decides_what_choose_picks():
    """``kernels.compiled`` sets the flag that ``choose`` (``ops/_dispatch.py``, re-exported here) reads."""
    require_kernels()
    from deepbox.kernels.elementwise import KERNEL_MIN_SIZE
    from deepbox.ops import _dispatch
    from deepbox.ops.elementwise import Relu

    assert kernels.choose is _dispatch.choose and kernels.fast_twin is _dispatch.fast_twin
    a = np.ones(KERNEL_MIN_SIZE, np.float32)        # large enough for the compiled loop
    twin = kernels.twin_of(Relu)
    assert twin is not None and twin.reference is Relu
    with kernels.compiled(True):
        assert kernels.choose(Relu, a) is twin and kernels.switch.active()
    with kernels.compiled(False):
        assert kernels.choose(Relu, a) is Relu and not kernels.switch.active()
        x = deepbox.ones(KERNEL_MIN_SIZE, requires_grad=True)
        assert x.relu().grad_fn.name() == "ReluBackward"     # the reference ran
    with kernels.compiled(True):
        assert x.relu().grad_fn.name() == "ReluKernelFnBackward"


def test_kernels_for_dtypes():
    require_kernels()
    f32, f64 = np.zeros(3, np.float32), np.zeros(3, np.float64)
    with kernels.switch.compiled(True):
        assert kernels.switch.kernels_for(f32) is not None
        assert kernels.switch.kernels_for(f32, f64) is not None
        for other in (np.float16, np.int32, np.int64, np.uint8, np.bool_, np.complex64):
            a = np.zeros(3, other)
            assert kernels.switch.kernels_for(a) is None, other
            assert kernels.switch.kernels_for(f32, a) is None, other
        assert kernels.switch.kernels_for(deepbox.zeros(2, 2)._data) is not None
    with kernels.switch.compiled(False):
        assert kernels.switch.kernels_for(f32) is None and kernels.switch.kernels() is None


def test_kernel_namespace_holds_the_compiled_functions():
    """The namespace is exactly the public njit functions of every module in ``_KERNEL_MODULES``."""
    import importlib

    require_kernels()
    with kernels.switch.compiled(True):
        k = kernels.switch.kernels()
    expect = set()
    for name in kernels.switch._KERNEL_MODULES:
        mod = importlib.import_module(name)
        expect |= {a for a, f in vars(mod).items() if not a.startswith("_") and hasattr(f, "py_func")}
    assert {"maxpool", "maxpool_backward", "sums_rows", "affine2_planes"} <= expect
    assert set(vars(k)) == expect
    assert all(hasattr(f, "py_func") for f in vars(k).values())


# ----------------------------------------------------------------------------- processes

class PoolDataset(deepbox.utils.data.Dataset):
    """Each item is a max pool (forward and backward) of a fixed input, large enough to be split over threads."""

    def __init__(self, xs):
        self.xs = xs

    def __len__(self):
        return len(self.xs)

    def __getitem__(self, i):
        x = deepbox.from_numpy(self.xs[i]).requires_grad_(True)
        out = F.max_pool2d(x, 3, 2, 1)
        (out * out).sum().backward()
        hits = np.zeros(1000)
        chunks = kernels.threads.parallel(lambda lo, hi: hits.__setitem__(slice(lo, hi), hits[lo:hi] + 1), 1000)
        return out._data, x.grad._data, np.array([kernels.switch.enabled(), chunks, hits.min() == hits.max() == 1]), \
            np.array(os.getpid())


def test_dataloader_workers_after_a_parallel_kernel_call(threads):
    """Fork DataLoader workers from a process whose kernel thread pool exists: the kernels run in the workers."""
    require_kernels()
    threads(2)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((2, 16, 32, 32)).astype(np.float32) for _ in range(6)]
    ds = PoolDataset(xs)
    with kernels.switch.compiled(True):
        parent = [ds[i] for i in range(len(ds))]          # the parent's pool threads are running now
        loader = deepbox.utils.data.DataLoader(ds, batch_size=None, num_workers=2, multiprocessing_context="fork",
                                               timeout=60)
        got = list(loader)
    assert len(got) == len(xs)
    pids = set()
    for i, (x, (out, grad, info, pid), (p_out, p_grad, _, _)) in enumerate(zip(xs, got, parent)):
        pids.add(int(pid))
        enabled, chunks, covered = (int(v) for v in np.asarray(info))
        assert enabled and chunks == 2 and covered, f"item {i}: worker state {info}"
        np.testing.assert_array_equal(np.asarray(out), p_out)
        np.testing.assert_array_equal(np.asarray(grad), p_grad)
        t = torch.from_numpy(x).requires_grad_(True)
        to = TF.max_pool2d(t, 3, 2, 1)
        (to * to).sum().backward()
        np.testing.assert_allclose(np.asarray(out), to.detach().numpy(), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(grad), t.grad.numpy(), rtol=1e-6)
    assert os.getpid() not in pids and len(pids) == 2


def test_thread_pool_users_in_parallel(threads):
    """Several user threads calling kernels at once share the pool and get their own results."""
    require_kernels()
    threads(2)
    xs = [np.random.default_rng(i).standard_normal((2, 16, 32, 32)) for i in range(4)]
    res = [None] * len(xs)

    def work(i):
        with kernels.switch.compiled(True):
            res[i] = F.max_pool2d(deepbox.from_numpy(xs[i]), 2)._data

    ts = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    for x, r in zip(xs, res):
        np.testing.assert_array_equal(r, TF.max_pool2d(torch.from_numpy(x), 2).numpy())


def test_deepbox_numba_0_never_loads_numba(tmp_path):
    """``DEEPBOX_NUMBA=0``: the kernels are off, numba is never imported, and a conv net trains one step."""
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                             torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 5))
    x = np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x, **{k: v.detach().numpy() for k, v in tm.state_dict().items()})
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        import deepbox
        from deepbox import kernels
        assert not kernels.switch.available() and not kernels.switch.enabled() and kernels.switch.kernels() is None
        assert kernels.switch.kernels_for(np.zeros(2, np.float32)) is None
        nn = deepbox.nn
        m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(8 * 4 * 4, 5))
        data = dict(np.load({str(tmp_path / "in.npz")!r}))
        x = deepbox.from_numpy(data.pop("x")).requires_grad_(True)
        m.load_state_dict(data)
        y = m(x)
        y.square().sum().backward()
        assert "numba" not in sys.modules, "numba was imported"
        np.savez({str(tmp_path / "out.npz")!r}, y=y._data, gx=x.grad._data, gw=m[0].weight.grad._data)
        print("ok")
    """)
    env = {**os.environ, "DEEPBOX_NUMBA": "0", "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stdout + res.stderr
    out = np.load(tmp_path / "out.npz")
    xt = torch.tensor(x, requires_grad=True)
    yt = tm(xt)
    yt.square().sum().backward()
    np.testing.assert_allclose(out["y"], yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["gx"], xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["gw"], tm[0].weight.grad.numpy(), rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- BLAS threads

def test_convolution_runs_blas_single_threaded_and_sequence_ops_restore_it(threads):
    """A convolution splits its chunks over deepbox's threads with BLAS at one thread, and leaves it
    there (switching back would let BLAS's spinning workers compete); an LSTM or attention layer that runs
    in one piece gives BLAS its threads back, one that splits its work over deepbox's threads leaves BLAS at
    one. Values follow PyTorch either way."""
    libs = kernels.threads._blas_libs()
    assert libs, "threadpoolctl must see NumPy's BLAS"
    threads(2)
    kernels.threads.blas_multi()
    original = [c.get_num_threads() for c in libs]
    for c in libs:              # the test process may run BLAS on one thread (tests/conftest.py)
        c.set_num_threads(2)
    try:
        x = np.random.default_rng(0).standard_normal((64, 8, 28, 28)).astype(np.float32)
        w = np.random.default_rng(1).standard_normal((8, 8, 3, 3)).astype(np.float32)

        def conv():
            out = F.conv2d(deepbox.from_numpy(x), deepbox.from_numpy(w), padding=1)
            ref = TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).numpy()
            np.testing.assert_allclose(out._data, ref, rtol=1e-4, atol=1e-4)

        conv()
        assert [c.get_num_threads() for c in libs] == [1] * len(libs)
        deepbox.nn.LSTM(4, 6)(deepbox.randn(5, 2, 4))
        assert [c.get_num_threads() for c in libs] == [2] * len(libs)
        conv()
        q = deepbox.randn(2, 3, 5, 4)
        F.scaled_dot_product_attention(q, q, q)
        assert [c.get_num_threads() for c in libs] == [2] * len(libs)
        conv()
        deepbox.set_num_threads(2)
        assert [c.get_num_threads() for c in libs] == [2] * len(libs)
        # the layers that split their own work over deepbox's threads leave BLAS at one thread, as a
        # convolution does: an LSTM over 32 sequences (16 per thread), causal attention over a batch,
        # a linear layer over 4096 rows
        for layer in (lambda: deepbox.nn.LSTM(4, 6)(deepbox.randn(3, 32, 4)),
                      lambda: F.scaled_dot_product_attention(*[deepbox.randn(16, 4, 128, 32)] * 3, is_causal=True),
                      lambda: F.linear(deepbox.randn(4096, 64), deepbox.randn(64, 64), deepbox.randn(64))):
            kernels.threads.blas_multi()
            layer()
            assert [c.get_num_threads() for c in libs] == [1] * len(libs)
    finally:
        kernels.threads.blas_multi()
        for c, k in zip(libs, original):
            c.set_num_threads(k)


# ----------------------------------------------------------------------------- the allocator setting

_MAPPED = """
import ctypes, numpy as np
import deepbox
class Info(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t) for f in ("arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks "
                                                "fordblks keepcost").split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
a = np.ones(12 << 20, np.float32)       # 48 MB: above glibc's largest dynamic mmap threshold
print(libc.mallinfo2().hblkhd >> 20)    # MB held in separately mapped blocks
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_large_arrays_come_from_the_reusable_heap():
    # glibc maps every array above 32 MB on its own and unmaps it on free, so that each new one
    # costs a page fault per page; deepbox raises the threshold so that freed memory is reused.
    # DEEPBOX_MALLOC=0 keeps glibc's default.
    def mapped_mb(flag):
        env = dict(os.environ, DEEPBOX_MALLOC=flag)
        out = subprocess.run([sys.executable, "-c", _MAPPED], env=env, cwd=REPO, capture_output=True,
                             text=True, check=True)
        return int(out.stdout.strip())

    assert mapped_mb("1") < 48
    assert mapped_mb("0") >= 48


@pytest.mark.parametrize("kw", [dict(mmap_threshold=-1), dict(trim_threshold=2 ** 31), dict(mmap_threshold=1.5)])
def test_tune_allocator_rejects_bad_sizes(kw):
    from deepbox import backend

    with pytest.raises(ValueError, match="byte count"):
        backend.tune_allocator(**kw)


# ----------------------------------------------------------------------------- each fast twin against its reference

def _twin_cases():
    import deepbox.optim  # noqa: F401  (Adam's twin resolves on first use)

    def t(*shape, scale=1.0):
        return np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32) * scale

    lstm = deepbox.nn.LSTM(8, 16)
    gru = deepbox.nn.GRU(8, 16)
    return {
        "conv2d": (lambda a, w, b: F.conv2d(a, w, b, padding=1), (t(4, 3, 12, 12), t(5, 3, 3, 3), t(5))),
        "conv2d_one_channel": (lambda a, w: F.conv2d(a, w, padding=2), (t(4, 1, 12, 12), t(6, 1, 5, 5))),
        "max_pool2d": (lambda a: F.max_pool2d(a, 2), (t(4, 8, 16, 16),)),
        "batch_norm": (lambda a, w, b: F.batch_norm(a, None, None, w, b, training=True), (t(8, 6, 8, 8), t(6), t(6))),
        "layer_norm": (lambda a, w, b: F.layer_norm(a, (32,), w, b), (t(64, 32), t(32), t(32))),
        "linear": (lambda a, w, b: F.linear(a, w, b), (t(256, 64), t(96, 64), t(96))),
        "relu": (lambda a: F.relu(a), (t(64, 512),)),
        "gelu": (lambda a: F.gelu(a), (t(64, 512),)),
        "add": (lambda a, b: a + b, (t(64, 512), t(64, 512))),
        "attention": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v), (t(2, 2, 16, 8), t(2, 2, 16, 8),
                                                                               t(2, 2, 16, 8))),
        "causal_attention": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                             (t(1, 2, 128, 8), t(1, 2, 128, 8), t(1, 2, 128, 8))),
        "lstm": (lambda a: lstm(a)[0], (t(5, 3, 8),)),
        "gru": (lambda a: gru(a)[0], (t(5, 3, 8),)),
    }


@pytest.mark.parametrize("name", sorted(_twin_cases()))
def test_fast_twin_matches_its_reference(name, monkeypatch):
    """The same call with the fast layer on and off: a ``KernelFn`` and its reference Function run, and
    their values and gradients agree (the PyTorch comparisons live in tests/conv and tests/nn)."""
    require_kernels()
    from deepbox.kernels import elementwise as kew

    monkeypatch.setattr(kew, "KERNEL_MIN_SIZE", 1)
    fn, arrays = _twin_cases()[name]
    results = {}
    for on in (True, False):
        with kernels.compiled(on):
            ins = [deepbox.tensor(a, requires_grad=True) for a in arrays]
            out = fn(*ins)
            node = type(out.grad_fn).__name__ if out.grad_fn is not None else ""
            out.backward(deepbox.tensor(np.ones(out.shape, np.float32)))
            results[on] = (node, out._data.copy(), [i.grad._data.copy() for i in ins])
    assert "Kernel" in results[True][0] and "Kernel" not in results[False][0], (results[True][0], results[False][0])
    np.testing.assert_allclose(results[True][1], results[False][1], rtol=1e-4, atol=1e-5)
    for g_fast, g_ref in zip(results[True][2], results[False][2]):
        np.testing.assert_allclose(g_fast, g_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_kernel_matches_its_reference(amsgrad, monkeypatch):
    """Adam's one-pass update and the NumPy update give the same trajectory (float32)."""
    require_kernels()
    results = {}
    for on in (True, False):
        p = deepbox.tensor(np.linspace(-1, 1, 40000, dtype=np.float32).reshape(200, 200), requires_grad=True)
        opt = deepbox.optim.Adam([p], lr=1e-2, amsgrad=amsgrad)
        with kernels.compiled(on):
            for step in range(3):
                opt.zero_grad()
                (p * p * (step + 1)).sum().backward()
                opt.step()
        results[on] = p._data.copy()
    np.testing.assert_allclose(results[True], results[False], rtol=1e-6, atol=1e-7)
