"""The recorder: statistics against NumPy and PyTorch, the files it writes, and what a crash leaves."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

import deepbox
import deepbox.nn as nn
import deepbox.nn.functional as F
from deepbox.inspect import Inspector, watch
from deepbox.inspect.stats import summarize
from deepbox.inspect.store import append_jsonl, load_arrays, read_json, read_jsonl, write_json
from tests.helpers import copy_torch_weights

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ---------------------------------------------------------------------------------------------- stats
def test_summarize_matches_numpy():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((7, 5, 3)).astype(np.float32)
    a[a < -0.5] = 0.0
    s = summarize(a, saturation=(-0.2, 1.0))
    assert s["n"] == a.size
    assert s["mean"] == pytest.approx(float(np.mean(a, dtype=np.float64)), rel=1e-12)
    assert s["std"] == pytest.approx(float(np.std(a, dtype=np.float64)), rel=1e-12)
    assert (s["min"], s["max"]) == (float(a.min()), float(a.max()))
    assert s["zeros"] == pytest.approx(np.mean(a == 0))
    assert s["sat"] == pytest.approx(np.mean((a <= -0.2) | (a >= 1.0)))
    hist, _ = np.histogram(a, bins=len(s["hist"]), range=(a.min(), a.max()))
    assert s["hist"] == hist.tolist() and sum(s["hist"]) == a.size
    json.dumps(s, allow_nan=False)


def test_summarize_counts_nonfinite_and_constant_arrays():
    a = np.array([1.0, np.nan, 3.0, np.inf], dtype=np.float32)
    s = summarize(a)
    assert s["nonfinite"] == 2 and s["mean"] == 2.0 and sum(s["hist"]) == 2
    c = summarize(np.full(10, 0.5, np.float32))
    assert c["std"] == 0.0 and sum(c["hist"]) == 10
    e = summarize(np.zeros(0, np.float32))
    assert e["n"] == 0 and e["mean"] is None
    json.dumps([s, c, e], allow_nan=False)


# ---------------------------------------------------------------------------------------------- recorder vs PyTorch
def _pair():
    tm = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).double()
    dm = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    copy_torch_weights(tm, dm)
    return tm, dm


def test_recorded_step_matches_pytorch(tmp_path):
    tm, dm = _pair()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 8))
    y = rng.integers(0, 3, 32)
    lr = 0.5
    # PyTorch: the same step, with the tensors the recorder summarises
    acts = {}
    def keep(name):
        def hook(mod, inp, out):
            out.retain_grad()
            acts[name] = out
        return hook

    for i, m in enumerate(tm):
        m.register_forward_hook(keep(str(i)))
    w_before = [p.detach().clone() for p in tm.parameters()]
    loss_t = torch.nn.functional.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y))
    loss_t.backward()
    grads = [p.grad.clone() for p in tm.parameters()]
    with torch.no_grad():
        for p in tm.parameters():
            p -= lr * p.grad

    rec = watch(dm, str(tmp_path), every=3)
    opt = deepbox.optim.SGD(dm.parameters(), lr=lr)
    loss = F.cross_entropy(dm(deepbox.from_numpy(x)), deepbox.from_numpy(y))
    opt.zero_grad()
    loss.backward()
    opt.step()
    rec.step(loss=loss, lr=lr)
    rec.close()
    (r,), _ = read_jsonl(str(tmp_path / "inspect" / "steps.jsonl"))
    assert r["step"] == 1 and r["loss"] == pytest.approx(loss_t.item()) and r["lr"] == lr
    for name in ("0", "1", "2"):
        a = acts[name].detach().numpy()
        g = acts[name].grad.numpy()
        got = r["layers"][name]
        assert got["act"]["mean"] == pytest.approx(a.mean(), rel=1e-9, abs=1e-12)
        assert got["act"]["std"] == pytest.approx(a.std(), rel=1e-9)
        assert got["grad"]["mean"] == pytest.approx(g.mean(), rel=1e-6, abs=1e-12)
        assert got["grad"]["std"] == pytest.approx(g.std(), rel=1e-9)
        assert got["act"]["hist"] == np.histogram(a, bins=len(got["act"]["hist"]), range=(a.min(), a.max()))[0].tolist()
    # tanh saturation: |y| >= 0.99
    a1 = acts["1"].detach().numpy()
    assert r["layers"]["1"]["act"]["sat"] == pytest.approx(np.mean(np.abs(a1) >= 0.99))
    # gradient flow and update-to-weight ratio of each linear layer (weight and bias together)
    for name, (gw, gb), (wb, bb) in (("0", grads[0:2], w_before[0:2]), ("2", grads[2:4], w_before[2:4])):
        gnorm = np.sqrt((gw.numpy() ** 2).sum() + (gb.numpy() ** 2).sum())
        wnorm = np.sqrt((wb.numpy() ** 2).sum() + (bb.numpy() ** 2).sum())
        got = r["layers"][name]
        assert got["gnorm"] == pytest.approx(gnorm, rel=1e-9)
        assert got["upd"] == pytest.approx(lr * gnorm / wnorm, rel=1e-6)  # SGD: the update is -lr * grad
        assert got["wgrad"]["std"] == pytest.approx(gw.numpy().std(), rel=1e-9)
    assert "gnorm" not in r["layers"]["1"]  # tanh has no parameters


def test_records_one_step_in_every_and_no_hooks_between(tmp_path):
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    opt = deepbox.optim.SGD(model.parameters(), lr=0.1)
    rec = watch(model, str(tmp_path), every=3)
    x, y = deepbox.randn(8, 4), deepbox.randint(0, 2, (8,))
    for step in range(1, 8):
        armed = any(m._forward_hooks for m in model.modules())
        assert armed == ((step - 1) % 3 == 0), step
        with deepbox.no_grad():  # an evaluation in between is not recorded
            model(deepbox.randn(3, 4))
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        rec.step(loss=loss.item())
    rec.close()
    assert not any(m._forward_hooks for m in model.modules())
    recs, _ = read_jsonl(str(tmp_path / "inspect" / "steps.jsonl"))
    assert [r["step"] for r in recs] == [1, 4, 7]
    assert all(r["layers"]["0"]["act"]["n"] == 8 * 4 for r in recs)  # the training batch, not the eval one
    meta = read_json(str(tmp_path / "inspect" / "meta.json"))
    assert meta["status"] == "finished"
    assert [(l["name"], l["type"], l["shape"], l["params"]) for l in meta["layers"]] == [
        ("0", "Linear", [4], 20), ("1", "ReLU", [4], 0), ("2", "Linear", [2], 10)]


def test_epoch_views(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 36, 4))
    x = deepbox.randn(20, 1, 6, 6)
    y = deepbox.from_numpy(np.arange(20) % 4)
    rec = watch(model, str(tmp_path), every=1, data=(x, y), classes=["a", "b", "c", "d"])
    rec.epoch({"loss": 1.5, "accuracy": float("nan")})
    rec.close()
    (e,), _ = read_jsonl(str(tmp_path / "inspect" / "epochs.jsonl"))
    assert e["epoch"] == 1 and e["logs"] == {"loss": 1.5}  # NaN is left out, never written as invalid JSON
    with deepbox.no_grad():
        logits = model(x).numpy()
    pred = logits.argmax(1)
    yn = y.numpy()
    cm = np.zeros((4, 4), int)
    for t, p in zip(yn, pred):
        cm[t, p] += 1
    assert e["confusion"] == cm.tolist()
    assert e["accuracy_sample"] == pytest.approx(np.mean(pred == yn))
    prob = np.exp(logits - logits.max(1, keepdims=True))
    prob /= prob.sum(1, keepdims=True)
    wrong = np.flatnonzero(pred != yn)
    p_true = prob[np.arange(20), yn]
    assert [w["index"] for w in e["worst"]] == wrong[np.argsort(p_true[wrong], kind="stable")][:16].tolist()
    arrays = load_arrays(str(tmp_path / "inspect" / e["arrays"]))
    assert arrays["worst"].shape == (len(e["worst"]), 6, 6, 1) and arrays["worst"].dtype == np.uint8
    assert arrays["filters"].shape == (3, 3, 3, 1)
    assert e["fmaps"] == ["0", "1"] and arrays["fmap0"].shape == (3, 6, 6)
    assert model.training  # restored after the evaluation


def test_bad_arguments_raise_before_writing(tmp_path):
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="every must be a positive integer"):
        watch(model, str(tmp_path / "a"), every=0)
    with pytest.raises(ValueError, match="as many inputs as integer class targets"):
        watch(model, str(tmp_path / "b"), data=(np.zeros((3, 2)), np.zeros(2)))
    with pytest.raises(TypeError, match="deepbox.nn.Module"):
        watch(object(), str(tmp_path / "c"))
    assert not os.path.exists(tmp_path / "a") and not os.path.exists(tmp_path / "b")


# ---------------------------------------------------------------------------------------------- the Trainer callback
def test_inspector_callback_records_and_resumes(tmp_path):
    from deepbox.data import DataLoader, TensorDataset
    from deepbox.train import Trainer

    x, y = deepbox.randn(40, 1, 4, 4), deepbox.from_numpy(np.arange(40) % 3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Sigmoid(), nn.Linear(8, 3))

    def trainer():
        return Trainer(model, deepbox.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), verbose=0,
                       callbacks=[Inspector(str(tmp_path), every=4, data=(x, y))])

    loader = DataLoader(TensorDataset(x, y), batch_size=10)
    t = trainer()
    t.fit(loader, epochs=2)
    t2 = trainer()
    t2.epoch, t2.global_step = t.epoch, t.global_step
    t2.fit(loader, epochs=3)
    steps, _ = read_jsonl(str(tmp_path / "inspect" / "steps.jsonl"))
    epochs, _ = read_jsonl(str(tmp_path / "inspect" / "epochs.jsonl"))
    assert [r["step"] for r in steps] == [1, 5, 9]
    assert [r["epoch"] for r in steps] == [0, 1, 2]
    assert [e["epoch"] for e in epochs] == [1, 2, 3] and "loss" in epochs[0]["logs"]
    assert steps[0]["layers"]["2"]["act"]["sat"] is not None  # the sigmoid's saturation
    assert read_json(str(tmp_path / "inspect" / "meta.json"))["status"] == "finished"


# ---------------------------------------------------------------------------------------------- crashes
def test_reader_skips_a_half_written_line(tmp_path):
    path = str(tmp_path / "s.jsonl")
    append_jsonl(path, {"step": 1})
    append_jsonl(path, {"step": 2})
    with open(path, "ab") as f:
        f.write(b'{"step": 3, "layers": {"0": [1, 2')  # the process died in the middle of this write
    recs, off = read_jsonl(path)
    assert recs == [{"step": 1}, {"step": 2}]
    assert read_jsonl(path, off) == ([], off)
    with pytest.raises(ValueError):
        write_json(str(tmp_path / "m.json"), {"x": float("nan")})  # never an invalid JSON file
    assert sorted(os.listdir(tmp_path)) == ["s.jsonl"]  # no m.json, no temporary file left


def test_files_readable_after_the_process_is_killed(tmp_path):
    script = textwrap.dedent(f"""
        import deepbox, deepbox.nn as nn, deepbox.nn.functional as F
        from deepbox.inspect import watch
        model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 4))
        x, y = deepbox.randn(16, 64), deepbox.randint(0, 4, (16,))
        opt = deepbox.optim.SGD(model.parameters(), lr=0.01)
        rec = watch(model, {str(tmp_path)!r}, every=1, data=(x, y))
        while True:
            for _ in range(5):
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad(); loss.backward(); opt.step(); rec.step(loss=loss.item())
            rec.epoch({{"loss": loss.item()}})
    """)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
    steps = tmp_path / "inspect" / "steps.jsonl"
    try:
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            if (tmp_path / "inspect" / "epochs.jsonl").exists() and len(read_jsonl(str(steps))[0]) >= 12:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    recs, _ = read_jsonl(str(steps))
    assert len(recs) >= 12
    assert [r["step"] for r in recs] == list(range(1, len(recs) + 1))
    epochs, _ = read_jsonl(str(tmp_path / "inspect" / "epochs.jsonl"))
    for e in epochs:
        load_arrays(str(tmp_path / "inspect" / e["arrays"]))
    meta = read_json(str(tmp_path / "inspect" / "meta.json"))
    assert meta["status"] == "running" and len(meta["layers"]) == 3


def test_summarize_samples_large_arrays_but_keeps_extremes_and_nonfinite_exact():
    rng = np.random.default_rng(2)
    a = rng.normal(3.0, 2.0, 1_000_003).astype(np.float32)
    a[::7] = 0.0
    a[5], a[11], a[-1] = np.nan, np.inf, -np.inf
    s = summarize(a)
    fin = a[np.isfinite(a)]
    assert s["nonfinite"] == 3 and s["n"] == a.size and s["m"] == 1 << 16
    assert (s["min"], s["max"]) == (float(fin.min()), float(fin.max()))
    assert abs(s["mean"] - fin.mean(dtype=np.float64)) < 5 * fin.std() / 256
    assert s["std"] == pytest.approx(fin.std(dtype=np.float64), rel=0.02)
    assert s["zeros"] == pytest.approx(np.mean(fin == 0), abs=0.01)
    assert sum(s["hist"]) == 1 << 16
    assert summarize(a) == s  # the same positions every time


def test_overhead_benchmark_runs():
    p = subprocess.run([sys.executable, "benchmarks/bench_inspector.py", "--quick"], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "overhead (A/B)" in p.stdout


def test_test_data_is_cast_to_the_models_dtype(tmp_path):
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = np.random.default_rng(0).standard_normal((6, 1, 4, 4))  # float64 arrays for a float32 model
    rec = watch(model, str(tmp_path), data=(x, np.arange(6) % 3))
    rec.epoch()
    rec.close()
    (e,), _ = read_jsonl(str(tmp_path / "inspect" / "epochs.jsonl"))
    assert e["n_sample"] == 6 and sum(map(sum, e["confusion"])) == 6
