"""deepbox.onnx.export: every zoo model (eval mode) run in onnxruntime against deepbox at two batch sizes."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import deepbox
import deepbox.nn as nn
import deepbox.nn.functional as F
from deepbox.models.registry import get_model
from deepbox.onnx import OnnxExporterError, UnsupportedOperatorError


def _flat(out):
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return [] if out is None else [out]


def _grow(t, axis, n):
    return deepbox.tensor(np.take(t._data, np.arange(n) % t.shape[axis], axis=axis))


def export_and_compare(tmp_path, model, inputs, axis=0, sizes=(2, 5), rtol=1e-4, atol=1e-5):
    """Export with a dynamic batch axis, then run onnxruntime at two batch sizes against deepbox."""
    model.eval()
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    names = [f"in{i}" for i in range(len(inputs))]
    with deepbox.no_grad():
        n_out = len(_flat(model(*inputs)))
    out_names = [f"out{i}" for i in range(n_out)]
    path = tmp_path / "model.onnx"
    deepbox.onnx.export(model, inputs, str(path), input_names=names, output_names=out_names,
                        dynamic_axes={n: {axis: "batch"} for n in names})
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    for n in sizes:
        xs = tuple(_grow(t, axis, n) for t in inputs)
        with deepbox.no_grad():
            want = _flat(model(*xs))
        got = sess.run(None, {name: x._data for name, x in zip(names, xs)})
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.shape == tuple(w.shape)
            np.testing.assert_allclose(g, w._data, rtol=rtol, atol=atol)
    return onnx.load(str(path))


ZOO = {
    "mlp": lambda: (get_model("mlp"), deepbox.randn(2, 1, 28, 28)),
    "lenet5": lambda: (get_model("lenet5"), deepbox.randn(2, 1, 28, 28)),
    "convnet (BN CNN)": lambda: (get_model("convnet"), deepbox.randn(2, 1, 28, 28)),
    "vgg_small": lambda: (get_model("vgg_small"), deepbox.randn(2, 1, 28, 28)),
    "resnet20": lambda: (get_model("resnet20"), deepbox.randn(2, 1, 28, 28)),
    "resnet18": lambda: (get_model("resnet18", in_channels=3), deepbox.randn(2, 3, 32, 32)),
    "unet": lambda: (get_model("unet", base=4), deepbox.randn(2, 1, 32, 32)),
    "char_lstm": lambda: (get_model("char_lstm", vocab_size=20, hidden_size=16, num_layers=2),
                          deepbox.randint(0, 20, (2, 5))),
    "row_lstm": lambda: (get_model("row_lstm", hidden_size=16), deepbox.randn(2, 1, 28, 28)),
    "char_gpt": lambda: (get_model("char_gpt", vocab_size=20, d_model=16, n_layer=2, n_head=2, block_size=8),
                         deepbox.randint(0, 20, (2, 8))),
    "vae decoder": lambda: (get_model("vae").decoder, deepbox.randn(2, 16)),
    "vae mlp decoder": lambda: (get_model("vae", arch="mlp", hidden=32).decoder, deepbox.randn(2, 16)),
    "conv_autoencoder": lambda: (get_model("conv_autoencoder"), deepbox.rand(2, 1, 28, 28)),
    "dcgan_generator": lambda: (get_model("dcgan_generator"), deepbox.randn(2, 64)),
    "dcgan_discriminator": lambda: (get_model("dcgan_discriminator"), deepbox.randn(2, 1, 28, 28)),
    "seq2seq_transformer": lambda: (get_model("seq2seq_transformer", d_model=16, dim_feedforward=32),
                                    (deepbox.randint(0, 13, (2, 6)), deepbox.randint(0, 13, (2, 5)))),
}


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_model_matches_onnxruntime(tmp_path, name):
    deepbox.manual_seed(0)
    model, x = ZOO[name]()
    export_and_compare(tmp_path, model, x)


@pytest.mark.parametrize("layer, x, axis", [
    (lambda: nn.LSTM(4, 6, num_layers=2, bidirectional=True), lambda: deepbox.randn(5, 2, 4), 1),
    (lambda: nn.LSTM(4, 6, batch_first=True, bidirectional=True), lambda: deepbox.randn(2, 5, 4), 0),
    (lambda: nn.GRU(4, 6, num_layers=2, bidirectional=True, batch_first=True), lambda: deepbox.randn(2, 5, 4), 0),
    (lambda: nn.GRU(4, 6), lambda: deepbox.randn(5, 2, 4), 1),
    (lambda: nn.RNN(4, 6, nonlinearity="relu", batch_first=True), lambda: deepbox.randn(2, 5, 4), 0),
    (lambda: nn.MultiheadAttention(8, 2, batch_first=True), lambda: (deepbox.randn(2, 5, 8), deepbox.randn(2, 6, 8),
                                                                    deepbox.randn(2, 6, 8)), 0),
    (lambda: nn.MultiheadAttention(8, 2, kdim=3, vdim=5), lambda: (deepbox.randn(5, 2, 8), deepbox.randn(6, 2, 3),
                                                                  deepbox.randn(6, 2, 5)), 1),
    (lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), lambda: deepbox.randn(2, 5, 8), 0),
    (lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation="gelu", norm_first=True),
     lambda: deepbox.randn(5, 2, 8), 1),
    (lambda: nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
     lambda: (deepbox.randn(2, 5, 8), deepbox.randn(2, 6, 8)), 0),
], ids=["lstm-2layer-bi", "lstm-batch-first-bi", "gru-2layer-bi", "gru", "rnn-relu", "mha", "mha-kdim-vdim",
        "encoder-layer", "encoder-layer-gelu-norm-first", "decoder-layer"])
def test_recurrent_and_attention_layers(tmp_path, layer, x, axis):
    deepbox.manual_seed(0)
    export_and_compare(tmp_path, layer(), x(), axis=axis)


def test_lstm_gates_are_reordered_to_onnx_order(tmp_path):
    lstm = nn.LSTM(3, 2)
    proto = export_and_compare(tmp_path, lstm, deepbox.randn(4, 2, 3), axis=1)
    W = [onnx.numpy_helper.to_array(i) for i in proto.graph.initializer if i.dims[:2] == [1, 8] and i.dims[2] == 3]
    w = lstm.weight_ih_l0._data  # PyTorch: i, f, g, o blocks of 2 rows; ONNX: i, o, f, c
    np.testing.assert_array_equal(W[0][0], np.concatenate([w[0:2], w[6:8], w[2:4], w[4:6]]))


class Ops(nn.Module):
    """Many ops in one forward pass, each exporter exercised once."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")
        self.gn = nn.GroupNorm(2, 4)
        self.inorm = nn.InstanceNorm2d(4, affine=True)
        self.prelu = nn.PReLU(4)
        self.emb = nn.Embedding(10, 4)
        self.ln = nn.LayerNorm(4)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x, idx):
        y = self.prelu(self.inorm(self.gn(self.conv(x))))                  # (B, 4, 6, 6)
        y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        y = F.interpolate(y, size=(9, 9), mode="nearest")
        y = F.adaptive_avg_pool2d(y, (3, 3)) + F.avg_pool2d(y, 3)          # (B, 4, 3, 3)
        y = F.pad(y, (1, 0, 0, 1), value=0.5)                              # (B, 4, 4, 4)
        z = self.shuffle(y)                                                # (B, 1, 8, 8)
        z = z.flatten(1)[:, ::2].reshape(-1, 4, 8)                         # (B, 4, 8)
        z = z.transpose(1, 2).contiguous()                                 # (B, 8, 4)
        e = self.ln(self.emb(idx))                                         # (B, 8, 4)
        w = deepbox.cat([z, e], dim=-1)                                    # (B, 8, 8)
        a, b = w.chunk(2, dim=-1)
        s = deepbox.stack([a.sigmoid(), b.tanh()], dim=1)                  # (B, 2, 8, 4)
        t = (F.gelu(s, approximate="tanh") + F.silu(s) + F.softplus(s, beta=2.0) + F.elu(s) + F.leaky_relu(s, 0.2)
             + F.hardtanh(s) + F.logsigmoid(s) + F.mish(s) + s.clamp(-0.5, 0.5) + s.abs().rsqrt() * 0.01
             + s.exp().log1p() + (s ** 3) + s.expm1() + deepbox.where(s > 0, s, s * 2))
        t = t.masked_fill(deepbox.tril(deepbox.ones(8, 4, dtype=deepbox.bool)), 0.25)
        u = t.softmax(-1) + t.log_softmax(-1) + t.var(-1, keepdim=True) + t.amax(-1, keepdim=True)
        u = u.flip(-1) + u.sum(1, keepdim=True) + u.mean(dim=(1, 2), keepdim=True)
        v = deepbox.einsum("bhij,bhkj->bhik", u, u)                       # (B, 2, 8, 8)
        v = v[..., None, 1:5, -1] @ u[:, :, :4]                           # (B, 2, 1, 4)
        r = u.index_select(2, deepbox.tensor([0, 3, 5])) * 2               # (B, 2, 8, 3)
        q = deepbox.gather(u, 3, (u > 0).long()[..., :2] + 1)
        m = deepbox.roll(u, (1, -2), (1, 3)).cumsum(2) + (u * 3).floor() + u.ceil() + u.round() + u.trunc() \
            + u.sign() + deepbox.remainder(u, 0.7) + u.prod(1, keepdim=True) + deepbox.exp2(u * 0.1) \
            + deepbox.fmod(u, 0.3) + u.frac() + deepbox.div(u, 0.3, rounding_mode="floor") + u.std(-1, keepdim=True) \
            + deepbox.div(u, 0.3, rounding_mode="trunc") + F.pad(u, (1, 1, 0, 0), mode="replicate")[..., 1:-1] \
            + deepbox.nan_to_num(u.log())
        return v.float(), r.double().float(), q, (u.repeat(1, 1, 1, 2) + 1).max(dim=-1).values, m


def test_many_ops_match_onnxruntime(tmp_path):
    deepbox.manual_seed(0)
    model = Ops()
    with deepbox.no_grad():
        for p in model.parameters():
            p.add_(deepbox.rand(*p.shape) * 0.1)
    export_and_compare(tmp_path, model, (deepbox.randn(2, 3, 6, 6), deepbox.randint(0, 10, (2, 8))))


def test_no_batch_size_is_baked_into_reshape(tmp_path):
    proto = export_and_compare(tmp_path, get_model("mlp"), deepbox.randn(3, 1, 28, 28))
    consts = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    shapes = [consts[n.input[1]].tolist() for n in proto.graph.node if n.op_type == "Reshape"]
    assert shapes and all(3 not in s for s in shapes), shapes
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    # parameters are initializers under their state_dict names
    assert {"net.1.weight", "net.1.bias"} <= set(consts) or any(k.endswith(".weight") for k in consts)


class Rolling(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x).cumprod(1)


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = Rolling()

    def forward(self, x):
        return self.inner(x) * 2


def test_an_op_without_exporter_names_op_and_module(tmp_path):
    with pytest.raises(UnsupportedOperatorError, match=r"Cumprod .* in module inner"):
        deepbox.onnx.export(Outer(), deepbox.randn(2, 4), str(tmp_path / "m.onnx"))
    assert not (tmp_path / "m.onnx").exists()


def test_batch_dependent_constant_is_refused_with_dynamic_axes(tmp_path):
    vae = get_model("vae")
    with pytest.raises(OnnxExporterError, match="made inside forward"):
        deepbox.onnx.export(vae, deepbox.rand(2, 1, 28, 28), str(tmp_path / "v.onnx"), input_names=["x"],
                            dynamic_axes={"x": {0: "batch"}})


def test_training_mode_is_restored_and_file_objects_work(tmp_path):
    import io

    model = get_model("convnet")
    model.train()
    buf = io.BytesIO()
    deepbox.onnx.export(model, deepbox.randn(2, 1, 28, 28), buf)
    assert model.training and all(m.training for m in model.modules())
    onnx.checker.check_model(onnx.load_from_string(buf.getvalue()), full_check=True)


def test_every_opset_written_runs(tmp_path):
    model = get_model("char_gpt", vocab_size=20, d_model=16, n_layer=1, n_head=2, block_size=8).eval()
    x = deepbox.randint(0, 20, (2, 8))
    with deepbox.no_grad():
        want = model(x)
    for opset in (17, 18, 19, 20):
        proto = deepbox.onnx.export(model, x, str(tmp_path / "m.onnx"), opset_version=opset)
        assert proto.opset_import[0].version == opset
        got = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(
            None, {"input_0": x._data})[0]
        np.testing.assert_allclose(got, want._data, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="opsets 17 to 20"):
        deepbox.onnx.export(model, x, str(tmp_path / "m.onnx"), opset_version=11)


class TutorialLSTM(nn.Module):
    """The tutorials' habit: initial states made in forward from the batch size."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 16, num_layers=2, batch_first=True)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        h0 = deepbox.zeros(2, x.size(0), 16)
        c0 = deepbox.full((2, x.size(0), 16), 0.5)
        out, _ = self.lstm(x, (h0, c0))
        return self.fc(out[:, -1, :])


def test_initial_states_made_from_the_batch_size_follow_it(tmp_path):
    deepbox.manual_seed(0)
    proto = export_and_compare(tmp_path, TutorialLSTM(), deepbox.randn(2, 7, 28), sizes=(2, 5, 11))
    assert any(n.op_type == "Expand" for n in proto.graph.node)


class ShiftedTokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(12, 4)

    def forward(self, idx):
        shifted = idx + 0
        shifted.add_(1)  # in place on an integer tensor: no gradient, so no graph node records it
        return self.emb(shifted)


def test_untraced_in_place_change_is_refused(tmp_path):
    with pytest.raises(OnnxExporterError, match="changed in place"):
        deepbox.onnx.export(ShiftedTokens(), deepbox.randint(0, 10, (2, 5)), str(tmp_path / "m.onnx"))


def test_torchvision_style_resnet_exports(tmp_path):
    """deepbox.vision.models' ImageNet ResNet: 7x7 stride-2 stem, padded max pool, adaptive average pool."""
    from deepbox.vision import models

    deepbox.manual_seed(0)
    export_and_compare(tmp_path, models.resnet18(num_classes=10), deepbox.randn(2, 3, 64, 64), sizes=(2, 3))
