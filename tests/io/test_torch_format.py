"""PyTorch's zip checkpoints: files written by torch read back equal, files written by deepbox read by
torch.load(weights_only=True), and a corpus of malicious files refused with nothing executed."""
from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch

import deepbox
import deepbox.nn as nn
from deepbox.io import CheckpointError


def same(d, t, where="obj"):
    """A deepbox value read from a torch file equals the torch value it came from."""
    if isinstance(t, torch.Tensor):
        assert isinstance(d, deepbox.Tensor), where
        assert tuple(d.shape) == tuple(t.shape), where
        want = t.detach().float().numpy() if t.dtype == torch.bfloat16 else t.detach().numpy()
        np.testing.assert_array_equal(d._data, want, err_msg=where)
        assert type(d).__name__ == ("Parameter" if isinstance(t, torch.nn.Parameter) else "Tensor"), where
    elif isinstance(t, dict):
        assert isinstance(d, dict) and list(d) == list(t), where
        assert isinstance(d, OrderedDict) == isinstance(t, OrderedDict), where
        for k in t:
            same(d[k], t[k], f"{where}[{k!r}]")
    elif isinstance(t, (list, tuple)):
        assert type(d) is type(t) or (isinstance(t, torch.Size) and tuple(d) == tuple(t)), where
        for i, (a, b) in enumerate(zip(d, t)):
            same(a, b, f"{where}[{i}]")
    elif isinstance(t, torch.device):
        assert isinstance(d, deepbox.device) and d.type == t.type, where
    elif isinstance(t, torch.dtype):
        assert str(d).split(".")[-1] == str(t).split(".")[-1], where
    else:
        assert d == t, where


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64,
                                   torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool, torch.uint16,
                                   torch.uint32])
def test_every_dtype_written_by_torch_reads_back_equal(tmp_path, dtype):
    t = (torch.arange(-3, 9).reshape(3, 4) * 1.25).to(dtype) if dtype.is_floating_point else \
        torch.arange(0, 12).reshape(3, 4).to(dtype)
    torch.save({"t": t, "scalar": t[1, 2].clone()}, tmp_path / "x.pt")
    same(deepbox.load(tmp_path / "x.pt"), {"t": t, "scalar": t[1, 2].clone()})


def test_training_checkpoint_with_optimizer_state_and_views(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(5, 3)).sum().backward()
    opt.step()
    base = torch.arange(24.0).reshape(4, 6)
    ck = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 7, "loss": 0.25, "name": "run",
          "rows": base[1:3], "cols": base[:, 2:5], "transposed": base.t(), "param": torch.nn.Parameter(torch.ones(2)),
          "dtype": torch.float64, "size": torch.Size([2, 3]), "device": torch.device("cpu"), "blob": b"\x00\xff",
          "nested": [(1, 2.5, None, True), {"a": torch.zeros(0, 3)}]}
    torch.save(ck, tmp_path / "ck.pth")
    got = deepbox.load(tmp_path / "ck.pth", map_location="cpu", weights_only=True)
    same(got, ck)
    assert got["model"]._metadata["1"] == {"version": 2}
    # views of one storage share memory in deepbox as they do in torch
    assert np.shares_memory(got["rows"]._data, got["transposed"]._data)
    # the state dict loads into the same deepbox architecture, which then computes what torch computes
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).eval()
    net.load_state_dict(got["model"])
    model.eval()
    x = torch.randn(6, 3)
    np.testing.assert_allclose(net(deepbox.tensor(x.numpy()))._data, model(x).detach().numpy(), rtol=1e-5,
                               atol=1e-6)


def test_torch_state_dict_loads_into_a_zoo_model(tmp_path):
    from deepbox.models.registry import get_model

    d_model = get_model("lenet5")
    # build the same layout in torch from deepbox's own keys and shapes, then go through a torch file
    sd = OrderedDict((k, torch.randn(*v.shape)) for k, v in d_model.state_dict().items())
    torch.save(sd, tmp_path / "lenet.pt")
    d_model.load_state_dict(deepbox.load(tmp_path / "lenet.pt"))
    for k, v in d_model.state_dict().items():
        np.testing.assert_array_equal(v._data, sd[k].numpy())


def test_file_objects_are_read_too(tmp_path):
    buf = io.BytesIO()
    torch.save({"w": torch.ones(2, 2)}, buf)
    buf.seek(0)
    same(deepbox.load(buf), {"w": torch.ones(2, 2)})


# ---------------------------------------------------------------------------------------------- writing
def test_deepbox_writes_what_torch_load_weights_only_reads(tmp_path):
    deepbox.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    opt = deepbox.optim.Adam(model.parameters(), lr=0.01)
    model(deepbox.randn(5, 3)).sum().backward()
    opt.step()
    base = deepbox.arange(12.0).reshape(3, 4)
    obj = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3, "lr": 1e-3,
           "view": base[1:, 1:3], "t": base.t(), "ints": deepbox.tensor([1, -2], dtype=deepbox.int64),
           "mask": deepbox.tensor([True, False]), "half": deepbox.ones(2, dtype=deepbox.float16),
           "big": 2 ** 40, "neg": -5, "tuple": (1, "a", None), "dtype": deepbox.float32,
           "param": nn.Parameter(deepbox.ones(2)), "empty": deepbox.zeros(0, 2)}
    for path, kw in ((tmp_path / "a.pt", {}), (tmp_path / "b.ckpt", {"format": "torch"})):
        deepbox.save(obj, path, **kw)
        back = torch.load(path, weights_only=True)
        for k, v in obj["model"].items():
            np.testing.assert_array_equal(back["model"][k].numpy(), v._data)
        assert isinstance(back["model"], OrderedDict)
        assert back["optimizer"]["param_groups"][0]["lr"] == 0.01
        for k, v in obj["optimizer"]["state"][0].items():
            got = back["optimizer"]["state"][0][k]
            np.testing.assert_array_equal(got.numpy() if isinstance(got, torch.Tensor) else got,
                                          v._data if isinstance(v, deepbox.Tensor) else v)
        np.testing.assert_array_equal(back["view"].numpy(), [[5, 6], [9, 10]])
        np.testing.assert_array_equal(back["t"].numpy(), base._data.T)
        assert back["ints"].dtype == torch.int64 and back["mask"].dtype == torch.bool
        assert back["half"].dtype == torch.float16 and back["dtype"] is torch.float32
        assert (back["epoch"], back["big"], back["neg"], back["tuple"]) == (3, 2 ** 40, -5, (1, "a", None))
        assert isinstance(back["param"], torch.nn.Parameter) and back["empty"].shape == (0, 2)
        # and deepbox reads its own torch-format file back
        again = deepbox.load(path)
        np.testing.assert_array_equal(again["view"]._data, [[5, 6], [9, 10]])
    # a .pt file is a zip: the format torch.save writes
    assert zipfile.is_zipfile(tmp_path / "a.pt")


def test_torch_format_refuses_what_it_cannot_hold_before_writing(tmp_path):
    with pytest.raises(TypeError, match=r"obj\['f'\]"):
        deepbox.save({"f": print}, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
    with pytest.raises(ValueError, match="format must be"):
        deepbox.save({}, tmp_path / "x.ckpt", format="pickle")


# ---------------------------------------------------------------------------------------------- malicious files
MARKER = "deepbox_marker_must_not_exist"


def torch_zip(path, pkl: bytes, entries: dict | None = None, compress_data=False, byteorder=b"little", name="archive"):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}/data.pkl", pkl)
        zf.writestr(f"{name}/byteorder", byteorder)
        for k, v in (entries or {}).items():
            zf.writestr(f"{name}/{k}", v, compress_type=zipfile.ZIP_DEFLATED if compress_data else zipfile.ZIP_STORED)
        zf.writestr(f"{name}/version", b"3\n")
    return path


class _Reduce:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _tensor_pickle(size, stride, offset=0, numel=4, key="0"):
    """A hand-made pickle of one float tensor, like torch's, with chosen size/stride/offset/key."""
    p = io.BytesIO()
    w = p.write
    w(b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X" + struct.pack("<I", 7) + b"storage")
    w(b"ctorch\nFloatStorage\nX" + struct.pack("<I", len(key)) + key.encode() + b"X\x03\x00\x00\x00cpu")
    w(b"\x8a\x08" + struct.pack("<q", numel) + b"tQ")
    w(b"\x8a\x08" + struct.pack("<q", offset) + b"(")
    for s in size:
        w(b"\x8a\x08" + struct.pack("<q", s))
    w(b"t(")
    for s in stride:
        w(b"\x8a\x08" + struct.pack("<q", s))
    w(b"t\x89ccollections\nOrderedDict\n)RtR.")
    return p.getvalue()


def _malicious_files(tmp_path):
    marker = tmp_path / MARKER
    cmd = f"touch {marker}"
    files = {
        "os.system reduce": pickle.dumps({"w": _Reduce(os.system, (cmd,))}, protocol=2),
        "builtins.eval": pickle.dumps(_Reduce(eval, (f"open({str(marker)!r}, 'w')",)), protocol=2),
        "__import__": b"\x80\x02c__builtin__\n__import__\nX\x02\x00\x00\x00osb\x85R.",
        "posix.system protocol 4": pickle.dumps(_Reduce(os.system, (cmd,)), protocol=4),
        "INST opcode": b"(S'" + cmd.encode() + b"'\nios\nsystem\n.",
        "OBJ opcode": b"\x80\x02(cos\nsystem\nX" + struct.pack("<I", len(cmd)) + cmd.encode() + b"o.",
        "NEWOBJ": b"\x80\x02ccollections\nOrderedDict\n)\x81.",
        "EXT1": b"\x80\x02\x82\x01.",
        "BUILD on a list": b"\x80\x02]}X\x01\x00\x00\x00aK\x01sb.",
        "setattr dunder": b"\x80\x02ccollections\nOrderedDict\n)R}X\x09\x00\x00\x00__class__K\x01sb.",
        "persid not a storage": b"\x80\x02X\x03\x00\x00\x00abcQ.",
        "storage key ../": _tensor_pickle((4,), (1,), key="../../x"),
        "storage key missing": _tensor_pickle((4,), (1,), key="7"),
        "huge declared shape": _tensor_pickle((2 ** 40, 2 ** 20), (2 ** 20, 1)),
        "negative shape": _tensor_pickle((-4,), (1,)),
        "offset beyond": _tensor_pickle((4,), (1,), offset=3),
        "storage size mismatch": _tensor_pickle((4,), (1,), numel=2 ** 50),
        "reduce of a dtype": b"\x80\x02ctorch\nfloat32\n)R.",
        "STACK_GLOBAL": b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x04true\x85R.",
        "deep nesting": b"\x80\x02" + b"]" * 100_000 + b"a" * 99_999 + b".",
    }
    return marker, files


def test_malicious_pickles_are_refused_and_nothing_runs(tmp_path, monkeypatch):
    def no_unpickling(*a, **k):
        raise AssertionError("deepbox.load must never hand a pickle to the pickle module")

    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(pickle, "Unpickler", no_unpickling)
    marker, files = _malicious_files(tmp_path)
    data = {"data/0": np.arange(4, dtype="<f4").tobytes()}
    reasons = {}
    for what, pkl in files.items():
        path = torch_zip(tmp_path / f"{what.replace(' ', '_').replace('/', '_')}.pt", pkl, data)
        with pytest.raises(CheckpointError) as e:
            deepbox.load(path)
        assert str(path) in str(e.value), what
        reasons[what] = str(e.value)
    assert not marker.exists()
    assert "os.system" in reasons["os.system reduce"] or "posix.system" in reasons["os.system reduce"]
    assert "builtins.eval" in reasons["builtins.eval"] or "__builtin__.eval" in reasons["builtins.eval"]
    assert "__import__" in reasons["__import__"]
    assert "INST" in reasons["INST opcode"] and "OBJ" in reasons["OBJ opcode"]
    assert "NEWOBJ" in reasons["NEWOBJ"] and "EXT1" in reasons["EXT1"]
    assert "not a plain name" in reasons["storage key ../"]
    assert "does not hold" in reasons["storage key missing"]
    assert "reaches element" in reasons["huge declared shape"]
    assert "negative" in reasons["negative shape"]
    assert "declares" in reasons["storage size mismatch"]
    assert "not a storage" in reasons["persid not a storage"]
    assert "too deeply" in reasons["deep nesting"]


def test_archive_level_refusals(tmp_path):
    ok = _tensor_pickle((4,), (1,))
    data = np.arange(4, dtype="<f4").tobytes()
    # the hand-made pickle itself is fine
    np.testing.assert_array_equal(deepbox.load(torch_zip(tmp_path / "ok.pt", ok, {"data/0": data}))._data, [0, 1, 2, 3])
    # a zip bomb: a compressed entry that would inflate to 64 MB is refused before it is inflated
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(bomb, "w") as zf:
        zf.writestr("archive/data.pkl", _tensor_pickle((2 ** 24,), (1,), numel=2 ** 24))
        zf.writestr("archive/byteorder", b"little")
        info = zipfile.ZipInfo("archive/data/0")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as fh:
            chunk = bytes(1 << 20)
            for _ in range(64):
                fh.write(chunk)
    with pytest.raises(CheckpointError, match="compressed"):
        deepbox.load(bomb)
    with pytest.raises(CheckpointError, match="compressed"):
        deepbox.load(torch_zip(tmp_path / "z.pt", ok, {"data/0": data}, compress_data=True))
    with pytest.raises(CheckpointError, match="byte order"):
        deepbox.load(torch_zip(tmp_path / "be.pt", ok, {"data/0": data}, byteorder=b"big"))
    ts = tmp_path / "script.pt"
    with zipfile.ZipFile(ts, "w") as zf:
        zf.writestr("m/data.pkl", ok)
        zf.writestr("m/constants.pkl", b"\x80\x02).")
        zf.writestr("m/code/__torch__/m.py", "def forward(self): ...")
    with pytest.raises(CheckpointError, match="TorchScript"):
        deepbox.load(ts)
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(2)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="legacy"):
        deepbox.load(legacy)
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(CheckpointError, match="data.pkl"):
        deepbox.load(tmp_path / "other.zip")


def test_torchvision_layout_vgg_features_load_into_the_zoo_vgg(tmp_path):
    """torchvision's VGG-11 'features' (conv 3x3 + ReLU, max pools) has the zoo VGG's layout without batch norm."""
    from deepbox.models.registry import get_model

    torch.manual_seed(0)
    layers, c = [], 3
    for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
        if v == "M":
            layers.append(torch.nn.MaxPool2d(2, 2))
        else:
            layers += [torch.nn.Conv2d(c, v, 3, padding=1), torch.nn.ReLU(inplace=True)]
            c = v
    features = torch.nn.Sequential(*layers).eval()
    sd = OrderedDict(("features." + k, v) for k, v in features.state_dict().items())  # torchvision's key names
    torch.save(sd, tmp_path / "vgg11_features.pth")
    model = get_model("vgg11", in_channels=3, num_classes=5, image_size=32, batch_norm=False).eval()
    result = model.load_state_dict(deepbox.load(tmp_path / "vgg11_features.pth"), strict=False)
    assert result.unexpected_keys == [] and set(result.missing_keys) == {"classifier.1.weight", "classifier.1.bias"}
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        want = features(x).numpy()
    with deepbox.no_grad():
        got = model.features(deepbox.tensor(x.numpy()))._data
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
