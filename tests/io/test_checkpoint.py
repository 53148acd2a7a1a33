"""Checkpoints: exact round trips, safetensors compatibility, atomic writes and clear errors on bad files."""
from __future__ import annotations

import io
import json
import math
import os
import pickle
from collections import Counter, OrderedDict

import numpy as np
import pytest
import safetensors
import safetensors.numpy
import safetensors.torch
import torch

import deepbox
import deepbox.nn as nn
import deepbox.optim as dopt
from deepbox.io import CheckpointError
from deepbox.io import checkpoint as C


@pytest.fixture(params=["package", "own"])
def backend(request, monkeypatch):
    """Run a test with the safetensors package doing the file format, and with deepbox's own reader/writer."""
    monkeypatch.setattr(C, "_USE_PACKAGE", request.param == "package")
    return request.param


def assert_same(a, b, where="obj"):
    """Equal structure, types and values; tensors and arrays equal in dtype, shape and every element."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, deepbox.Tensor):
        assert a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape), where
        assert a.requires_grad == b.requires_grad, where
        np.testing.assert_array_equal(a._data, b._data, err_msg=where)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _sample():
    w = deepbox.randn(3, 4)
    return {
        "model": OrderedDict([("fc.weight", w), ("fc.bias", deepbox.zeros(4, dtype=deepbox.float64)),
                              ("emb", deepbox.arange(6).reshape(2, 3)), ("mask", deepbox.tensor([True, False])),
                              ("half", deepbox.ones(2, dtype=deepbox.float16)), ("empty", deepbox.zeros(0, 5)),
                              ("scalar", deepbox.tensor(2.5)), ("u8", deepbox.tensor([1, 255], dtype=deepbox.uint8))]),
        "optimizer": {"state": {0: {"step": deepbox.tensor(3.0), "exp_avg": deepbox.randn(3, 4)}},
                      "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1], "foreach": None,
                                        "amsgrad": False}]},
        "numbers": [1, -2**70, 2.5, -0.0, float("inf"), float("-inf"), float("nan"), 1e-310, True, None],
        "strings": ["", "héllo wörld ✓", '{"$tensor": "not one"}'],
        "nested": ((1, 2), [[]], {}, {"": 0}),
        "keys": {1: "int", 2.5: "float", None: "none", False: "bool", (1, "a"): "tuple", "s": "str"},
        "milestones": Counter([5, 10, 10]),
        "array": np.arange(12, dtype=np.int32).reshape(3, 4),
        "np_scalar": np.float32(1.5),
        "dtype": deepbox.float64,
        "param": nn.Parameter(deepbox.ones(2)),
        "needs_grad": deepbox.ones(3, requires_grad=True),
        "view": deepbox.randn(4, 6)[:, 1::2],
    }


def test_round_trip_file(tmp_path, backend):
    obj = _sample()
    path = tmp_path / "ck.safetensors"
    deepbox.save(obj, path)
    back = deepbox.load(path)
    assert_same(back, obj)
    assert isinstance(back["param"], nn.Parameter) and back["param"].requires_grad
    assert type(back["model"]) is OrderedDict and type(back["milestones"]) is Counter
    assert back["model"]["fc.weight"]._data.flags.writeable


def test_round_trip_file_object(backend):
    obj = _sample()
    buf = io.BytesIO()
    deepbox.save(obj, buf)
    buf.seek(0)
    assert_same(deepbox.load(buf), obj)


@pytest.mark.parametrize("writer, reader", [(True, False), (False, True)], ids=["package-to-own", "own-to-package"])
def test_backends_read_each_others_files(tmp_path, monkeypatch, writer, reader):
    obj = _sample()
    path = tmp_path / "ck.safetensors"
    monkeypatch.setattr(C, "_USE_PACKAGE", writer)
    deepbox.save(obj, path)
    monkeypatch.setattr(C, "_USE_PACKAGE", reader)
    assert_same(deepbox.load(path), obj)


def test_own_writer_makes_a_file_the_safetensors_package_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "_USE_PACKAGE", False)
    state = OrderedDict([("fc.weight", deepbox.randn(3, 4)), ("fc.bias", deepbox.randn(4)),
                         ("step", deepbox.tensor(7, dtype=deepbox.int64))])
    path = tmp_path / "model.safetensors"
    deepbox.save(state, path)
    arrays = safetensors.numpy.load_file(str(path))
    assert sorted(arrays) == sorted(state)
    for k, t in state.items():
        np.testing.assert_array_equal(arrays[k], t._data)
        assert arrays[k].dtype == t._data.dtype
    with safetensors.safe_open(str(path), framework="numpy") as f:
        assert f.metadata()["deepbox.format"] == C.FORMAT_VERSION


def test_plain_safetensors_file_loads_as_dict_of_tensors(tmp_path, backend):
    arrays = {"b": np.arange(3, dtype=np.float64), "a": np.ones((2, 2), np.float32)}
    path = tmp_path / "plain.safetensors"
    safetensors.numpy.save_file(arrays, str(path))
    back = deepbox.load(path)
    assert sorted(back) == ["a", "b"]
    for k in arrays:
        assert isinstance(back[k], deepbox.Tensor)
        np.testing.assert_array_equal(back[k]._data, arrays[k])


def test_pytorch_safetensors_weights_load_into_deepbox_model(tmp_path, backend):
    torch.manual_seed(0)
    tmodel = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 2)).double()
    path = tmp_path / "torch_model.safetensors"
    safetensors.torch.save_file(tmodel.state_dict(), str(path))
    dmodel = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 2)).double()
    dmodel.load_state_dict(deepbox.load(path))
    x = np.random.default_rng(1).standard_normal((4, 5))
    np.testing.assert_allclose(dmodel(deepbox.tensor(x))._data, tmodel(torch.tensor(x)).detach().numpy(),
                               rtol=1e-12, atol=1e-14)


def test_deepbox_state_dict_loads_in_pytorch(tmp_path, backend):
    dmodel = nn.Sequential(nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 2))
    path = tmp_path / "model.safetensors"
    deepbox.save(dmodel.state_dict(), path)
    tmodel = torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    tmodel.load_state_dict(safetensors.torch.load_file(str(path)))
    x = np.random.default_rng(2).standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_allclose(dmodel(deepbox.tensor(x))._data, tmodel(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


class _Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, idx):
        return self.head(self.emb(idx))


def test_tied_weights_are_stored_once_and_load_tied(tmp_path, backend):
    model = _Tied()
    sd = model.state_dict()
    path = tmp_path / "tied.safetensors"
    deepbox.save(sd, path)
    with safetensors.safe_open(str(path), framework="numpy") as f:
        assert len(list(f.keys())) == 1  # one tensor in the file for the two names
    back = deepbox.load(path)
    assert list(back) == list(sd)
    assert np.shares_memory(back["emb.weight"]._data, back["head.weight"]._data)
    other = _Tied()
    other.load_state_dict(back)
    assert other.head.weight is other.emb.weight
    np.testing.assert_array_equal(other.emb.weight._data, model.emb.weight._data)
    idx = deepbox.tensor([1, 4, 7])
    np.testing.assert_array_equal(other(idx)._data, model(idx)._data)


def test_views_of_one_array_keep_their_values(tmp_path, backend):
    base = deepbox.randn(4, 6)
    obj = {"full": base, "rows": base[1:3], "cols": base[:, ::3]}
    deepbox.save(obj, tmp_path / "v.safetensors")
    back = deepbox.load(tmp_path / "v.safetensors")
    for k in obj:
        np.testing.assert_array_equal(back[k]._data, obj[k]._data)


# ---------------------------------------------------------------------------------------------- resuming training
def _data():
    rng = np.random.default_rng(3)
    return [(rng.standard_normal((8, 4)), rng.standard_normal((8, 3))) for _ in range(20)]


def _deepbox_run(model, opt, sched, batches):
    losses = []
    for x, y in batches:
        opt.zero_grad()
        loss = ((model(deepbox.tensor(x)) - deepbox.tensor(y)) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def _build(seed):
    deepbox.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    opt = dopt.AdamW(model.parameters(), lr=0.05, weight_decay=0.01, amsgrad=True)
    sched = dopt.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=20)
    return model, opt, sched


def test_resumed_training_continues_the_same_loss_curve(tmp_path, backend):
    batches = _data()
    # the uninterrupted run, and PyTorch's from the same weights, to know it is the right curve
    model, opt, sched = _build(0)
    tmodel = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    tmodel.load_state_dict({k: torch.tensor(v._data.copy()) for k, v in model.state_dict().items()})
    topt = torch.optim.AdamW(tmodel.parameters(), lr=0.05, weight_decay=0.01, amsgrad=True)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.05, total_steps=20)
    full = _deepbox_run(model, opt, sched, batches)
    tlosses = []
    for x, y in batches:
        topt.zero_grad()
        loss = ((tmodel(torch.tensor(x)) - torch.tensor(y)) ** 2).mean()
        loss.backward()
        topt.step()
        tsched.step()
        tlosses.append(loss.item())
    np.testing.assert_allclose(full, tlosses, rtol=1e-10)

    # half the run, a checkpoint, fresh objects with other weights, load, the other half
    model, opt, sched = _build(0)
    first = _deepbox_run(model, opt, sched, batches[:10])
    path = tmp_path / "run.ckpt"
    deepbox.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                  "epoch": 10}, path)
    model2, opt2, sched2 = _build(123)
    ck = deepbox.load(path)
    model2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["optimizer"])
    sched2.load_state_dict(ck["scheduler"])
    assert ck["epoch"] == 10
    second = _deepbox_run(model2, opt2, sched2, batches[10:])
    assert first + second == full  # bit for bit


def test_state_dicts_round_trip_exactly(tmp_path, backend):
    model, opt, sched = _build(0)
    _deepbox_run(model, opt, sched, _data()[:5])
    plateau = dopt.lr_scheduler.ReduceLROnPlateau(opt, patience=1)
    plateau.step(1.0)
    lbfgs_p = deepbox.tensor([-1.2, 1.0], dtype=deepbox.float64, requires_grad=True)
    lbfgs = dopt.LBFGS([lbfgs_p], history_size=3, max_iter=4)

    def closure():
        lbfgs.zero_grad()
        loss = (100 * (lbfgs_p[1] - lbfgs_p[0] ** 2) ** 2 + (1 - lbfgs_p[0]) ** 2)
        loss.backward()
        return loss

    lbfgs.step(closure)
    lbfgs.step(closure)
    obj = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
           "plateau": plateau.state_dict(), "lbfgs": lbfgs.state_dict()}
    deepbox.save(obj, tmp_path / "sd.ckpt")
    back = deepbox.load(tmp_path / "sd.ckpt")
    assert_same(back, obj)


# ---------------------------------------------------------------------------------------------- atomic writes
def _fail_midway_package(monkeypatch):
    real = C._st_numpy.save_file

    def save_file(arrays, filename, metadata=None):
        real(arrays, filename, metadata=metadata)
        with open(filename, "r+b") as f:  # the process dies with half the file on disk
            f.truncate(os.path.getsize(filename) // 2)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(C._st_numpy, "save_file", save_file)


def _fail_midway_own(monkeypatch):
    real = C._write_array_bytes
    calls = []

    def write_array_bytes(f, arr):
        calls.append(1)
        if len(calls) == 2:
            f.write(memoryview(arr).cast("B")[: arr.nbytes // 2])
            raise OSError(28, "No space left on device")
        real(f, arr)

    monkeypatch.setattr(C, "_write_array_bytes", write_array_bytes)


@pytest.mark.parametrize("error", [OSError, KeyboardInterrupt])
def test_crash_during_save_keeps_the_old_file(tmp_path, monkeypatch, backend, error):
    path = tmp_path / "model.ckpt"
    old = {"w": deepbox.randn(50, 40), "b": deepbox.randn(40), "epoch": 1}
    deepbox.save(old, path)
    before = path.read_bytes()
    (_fail_midway_package if backend == "package" else _fail_midway_own)(monkeypatch)
    if error is KeyboardInterrupt:
        real = C._write_to_path

        def interrupted(tmp, arrays, metadata):
            with open(tmp, "wb") as f:
                f.write(b"partial")
            raise KeyboardInterrupt

        monkeypatch.setattr(C, "_write_to_path", interrupted)
        assert real is not interrupted
    new = {"w": deepbox.randn(50, 40), "b": deepbox.randn(40), "epoch": 2}
    with pytest.raises(error):
        deepbox.save(new, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.ckpt"], "a temporary file was left behind"
    monkeypatch.undo()
    assert_same(deepbox.load(path), old)


def test_save_replaces_the_file_and_keeps_its_permissions(tmp_path, backend):
    path = tmp_path / "m.ckpt"
    deepbox.save({"a": deepbox.ones(2)}, path)
    os.chmod(path, 0o640)
    deepbox.save({"a": deepbox.zeros(3)}, path)
    assert os.stat(path).st_mode & 0o777 == 0o640
    np.testing.assert_array_equal(deepbox.load(path)["a"]._data, np.zeros(3, np.float32))
    assert os.listdir(tmp_path) == ["m.ckpt"]


def test_unsupported_object_is_refused_before_touching_the_file(tmp_path, backend):
    path = tmp_path / "m.ckpt"
    deepbox.save({"ok": 1}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match=r"cannot store a function at obj\['a'\]\[1\]"):
        deepbox.save({"a": [1, lambda: 0]}, path)
    with pytest.raises(TypeError, match="dict key of type Tensor"):
        deepbox.save({deepbox.ones(1): 1}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.ckpt"]
    with pytest.raises(TypeError, match="cannot store"):
        deepbox.save({"x": {1, 2}}, tmp_path / "new.ckpt")
    assert not (tmp_path / "new.ckpt").exists()


# ---------------------------------------------------------------------------------------------- bad files
@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "good.ckpt"
    deepbox.save({"w": deepbox.randn(16, 8), "b": deepbox.randn(8), "lr": 0.1}, path)
    return path


def _header_end(data: bytes) -> int:
    return 8 + int.from_bytes(data[:8], "little")


@pytest.mark.parametrize("cut", ["empty", "4", "8", "mid-header", "header-only", "mid-data", "last-byte"])
def test_truncated_file_raises_naming_file_and_problem(tmp_path, good_file, backend, cut):
    data = good_file.read_bytes()
    n = {"empty": 0, "4": 4, "8": 8, "mid-header": _header_end(data) // 2, "header-only": _header_end(data),
         "mid-data": (_header_end(data) + len(data)) // 2, "last-byte": len(data) - 1}[cut]
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(data[:n])
    with pytest.raises(CheckpointError) as e:
        deepbox.load(bad)
    msg = str(e.value)
    assert str(bad) in msg
    assert ("truncated" in msg) if n >= 8 else ("too short" in msg), msg


def test_flipped_data_byte_fails_the_checksum(tmp_path, good_file, backend):
    data = bytearray(good_file.read_bytes())
    data[-5] ^= 0x40
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(bytes(data))
    msg = r"bad\.ckpt: corrupt checkpoint: the data of tensor '\w+' does not match"
    with pytest.raises(CheckpointError, match=msg):
        deepbox.load(bad)


def test_corrupt_header_raises(tmp_path, good_file, backend):
    data = bytearray(good_file.read_bytes())
    data[9] = 0xFF  # not UTF-8, not JSON
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="header is not valid JSON"):
        deepbox.load(bad)
    data = good_file.read_bytes().replace(b'"F32"', b'"X32"', 1)
    bad.write_bytes(data)
    with pytest.raises(CheckpointError, match="tensor 'b' has dtype 'X32', which deepbox does not read"):
        deepbox.load(bad)


def test_trailing_bytes_are_refused(tmp_path, good_file, backend):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(good_file.read_bytes() + b"\0" * 16)
    with pytest.raises(CheckpointError, match="the file holds"):
        deepbox.load(bad)


def _write_pickle(path):
    with open(path, "wb") as f:
        pickle.dump({"w": np.ones(3)}, f)


def _write_npy(path):
    with open(path, "wb") as f:
        np.save(f, np.ones(3))


def _write_text(path):
    path.write_text("epoch,loss\n1,0.5\n2,0.4\n")


@pytest.mark.parametrize("write, message", [
    (_write_pickle, "pickle file"),
    (_write_npy, "NumPy .npy"),
    (_write_text, "not a safetensors checkpoint"),
])
def test_foreign_files_are_refused_without_unpickling(tmp_path, backend, monkeypatch, write, message):
    path = tmp_path / "foreign.bin"
    write(path)

    def no_unpickling(*a, **k):
        raise AssertionError("deepbox.load must never unpickle")

    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    with pytest.raises(CheckpointError, match=message) as e:
        deepbox.load(path)
    assert str(path) in str(e.value)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        deepbox.load(tmp_path / "nope.ckpt")


def test_map_location_and_pytorch_keywords(tmp_path, good_file):
    assert "w" in deepbox.load(good_file, map_location="cpu", weights_only=True)
    assert "w" in deepbox.load(str(good_file), map_location=deepbox.device("cpu"))
    assert "w" in deepbox.load(good_file, map_location=lambda storage, loc: storage, weights_only=False)
    with pytest.raises(RuntimeError, match="CPU only"):
        deepbox.load(good_file, map_location="cuda:0")
    deepbox.save({"a": 1}, tmp_path / "p.ckpt", pickle_protocol=4, _use_new_zipfile_serialization=True)
    assert deepbox.load(tmp_path / "p.ckpt") == {"a": 1}


def test_save_into_missing_folder_or_onto_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        deepbox.save({"a": 1}, tmp_path / "no" / "such" / "m.ckpt")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        deepbox.save({"a": 1}, tmp_path)


# ------------------------------------------------------------------------------- malformed files (issue 14, item 7)
def _file_with(path, metadata: dict, arrays=None):
    """A safetensors file with these metadata strings, written by deepbox's own writer (no checks on purpose)."""
    arrays = {"w": np.arange(4, dtype=np.float32)} if arrays is None else arrays
    with open(path, "wb") as f:
        C._own_write(f, arrays, metadata)
    return path


def _deepbox_meta(structure, crcs=None) -> dict:
    return {"deepbox.format": "1", "deepbox.structure": structure if isinstance(structure, str) else
            json.dumps(structure), "deepbox.crc32": crcs if crcs is not None else json.dumps({})}


@pytest.mark.parametrize("structure, crcs", [
    ("[" * 100_000 + "]" * 100_000, None),                      # RecursionError in json before
    ({"$map": [1, 2]}, None),                                     # AttributeError before
    ({"$tensor": 5}, None),
    ({"$tensor": ["w"]}, None),                                   # unhashable name: TypeError before
    ({"$dict": 3}, None),
    ({"$dict": [[[1, 2], "list key"]]}, None),                    # a list as a dict key
    ({"$tuple": 7}, None),
    ({"$float": "1e9"}, None),
    ({"$dtype": 5}, None),
    ({"$dtype": "float128"}, None),
    ({"$map": {}, "type": "defaultdict"}, None),
    ({"$npscalar": "missing"}, None),
    ({"a": 1}, None),                                             # unknown tag
    ({"$tensor": "w"}, "[1, 2]"),                                 # checksums not a map
    ({"$tensor": "w"}, "5"),
    ({"$tensor": "w"}, '{"w": "abc"}'),
    ({"$tensor": "w"}, "{not json"),
    ({"$tensor": "w"}, "[" * 100_000),
], ids=lambda v: repr(v)[:24])
def test_every_malformed_structure_raises_checkpoint_error_naming_the_file(tmp_path, structure, crcs):
    path = _file_with(tmp_path / "m.ckpt", _deepbox_meta(structure, crcs))
    with pytest.raises(CheckpointError) as e:
        deepbox.load(path)
    assert str(path) in str(e.value)


def test_a_deeply_nested_header_raises_checkpoint_error(tmp_path):
    raw = ('{"x":' + "[" * 100_000 + "]" * 100_000 + "}").encode()
    raw += b" " * (-len(raw) % 8)
    path = tmp_path / "deep.ckpt"
    path.write_bytes(len(raw).to_bytes(8, "little") + raw)
    with pytest.raises(CheckpointError, match="deep.ckpt"):
        deepbox.load(path)


def _raw_file(path, header: dict, data: bytes):
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)
    return path


_F32x4 = np.arange(4, dtype=np.float32).tobytes()
_HEADERS = {
    "two tensors": {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                    "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}},
    "out of order": {"b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
                     "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
    "a gap": {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
              "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}},
    "an overlap": {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},
                   "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}},
    "one range twice": {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                        "b": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
    "a float dim": {"a": {"dtype": "F32", "shape": [4.0], "data_offsets": [0, 16]}},
    "a bool dim": {"a": {"dtype": "F32", "shape": [True, 4], "data_offsets": [0, 16]}},
    "a string dim": {"a": {"dtype": "F32", "shape": ["4"], "data_offsets": [0, 16]}},
    "a negative dim": {"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}},
    "three offsets": {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16, 16]}},
    "a float offset": {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16.0]}},
    "an entry that is a list": {"a": [1]},
    "metadata with a number": {"__metadata__": {"k": 1}, "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
    "metadata as a list": {"__metadata__": [1], "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
    "null metadata": {"__metadata__": None, "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
    "an empty tensor inside": {"a": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]},
                               "b": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
    "an empty tensor at the end": {"a": {"dtype": "F32", "shape": [0], "data_offsets": [16, 16]},
                                   "b": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
}


@pytest.mark.parametrize("case", list(_HEADERS))
def test_deepbox_accepts_exactly_what_the_safetensors_package_accepts(tmp_path, case, backend):
    path = _raw_file(tmp_path / "f.safetensors", _HEADERS[case], _F32x4)
    try:
        expected = safetensors.numpy.load_file(str(path))
    except Exception:
        expected = None
    if expected is None:
        with pytest.raises(CheckpointError, match="f.safetensors"):
            deepbox.load(path)
    else:
        got = deepbox.load(path)
        assert sorted(got) == sorted(expected)
        for k in expected:
            np.testing.assert_array_equal(got[k]._data, expected[k])


def test_load_reads_through_one_handle_while_the_file_is_replaced(tmp_path, monkeypatch):
    path = tmp_path / "m.ckpt"
    old = {"w": deepbox.randn(64, 32), "step": 1}
    deepbox.save(old, path)
    real = C._read_all

    def replaced_meanwhile(f):
        deepbox.save({"w": deepbox.randn(8), "other": deepbox.zeros(3), "step": 2}, path)  # another process saves
        return real(f)

    monkeypatch.setattr(C, "_read_all", replaced_meanwhile)
    assert_same(deepbox.load(path), old)  # the file that was opened, whole and consistent


def test_the_cli_exits_2_on_a_malformed_checkpoint(tmp_path, capsys):
    from deepbox.cli.main import main

    run = tmp_path / "run"
    run.mkdir()
    _file_with(run / "checkpoint.safetensors", _deepbox_meta("[" * 100_000 + "]" * 100_000))
    for argv in (["eval", str(run)], ["train", "--resume", str(run)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "checkpoint.safetensors" in err and "Traceback" not in err


# ------------------------------------------------------------------------------- fault injection in a real process
_KILLED_WRITER = """
import sys, time
import deepbox
from deepbox.io import checkpoint as C

C._USE_PACKAGE = False           # deepbox's own writer, so that the write can stop between two tensors
real = C._write_array_bytes

def stall(f, arr):
    real(f, arr)
    f.flush()
    open(sys.argv[2], "w").close()   # tell the test that the temporary file is half written
    time.sleep(120)

C._write_array_bytes = stall
deepbox.save({"w": deepbox.randn(256, 256), "b": deepbox.randn(256), "epoch": 2}, sys.argv[1])
"""


def test_sigkill_during_save_keeps_the_old_file_and_the_next_save_removes_the_debris(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    path, marker = tmp_path / "m.ckpt", tmp_path / "half-written"
    old = {"w": deepbox.randn(256, 256), "b": deepbox.randn(256), "epoch": 1}
    deepbox.save(old, path)
    before = path.read_bytes()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(path), str(marker)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, "the writer ended before it was killed"
            assert time.monotonic() < deadline, "the writer never started writing"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert path.read_bytes() == before                      # the old checkpoint, untouched
    assert_same(deepbox.load(path), old)
    debris = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(debris) == 1 and debris[0].startswith(".m.ckpt.")
    new = {"w": deepbox.zeros(3), "epoch": 3}
    deepbox.save(new, path)                                 # the next save of the same file cleans up
    assert sorted(os.listdir(tmp_path)) == ["half-written", "m.ckpt"]
    assert_same(deepbox.load(path), new)


def test_a_live_writers_temporary_file_is_left_alone(tmp_path):
    from deepbox.io.atomic import remove_stale_temporaries

    path = tmp_path / "m.ckpt"
    mine = tmp_path / f".m.ckpt.{os.getpid()}.abc123.tmp"     # this process is alive: maybe saving right now
    parent = tmp_path / f".m.ckpt.{os.getppid()}.def456.tmp"
    other_file = tmp_path / f".n.ckpt.{2**22 + 7}.x.tmp"      # another file's temporary
    for p in (mine, parent, other_file):
        p.write_bytes(b"partial")
    deepbox.save({"a": 1}, path)
    assert mine.exists() and parent.exists() and other_file.exists()
    assert remove_stale_temporaries(str(path)) == []


def test_new_files_follow_the_umask_like_open(tmp_path):
    from deepbox.train.callbacks import _write_atomic

    old = os.umask(0o027)
    try:
        deepbox.save({"a": 1}, tmp_path / "c.ckpt")
        _write_atomic(str(tmp_path / "history.json"), "{}\n")
        with open(tmp_path / "plain.txt", "w") as f:
            f.write("x")
    finally:
        os.umask(old)
    modes = {n: os.stat(tmp_path / n).st_mode & 0o777 for n in ("c.ckpt", "history.json", "plain.txt")}
    assert modes == {"c.ckpt": 0o640, "history.json": 0o640, "plain.txt": 0o640}, modes
