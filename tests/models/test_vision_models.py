"""The vision zoo: output shapes, parameter counts and outputs equal to the same network written with
torch.nn (given the same weights), and every model overfits one small batch."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF

import deepbox
from deepbox import models

# ----------------------------------------------------------------------------- torch twins


def t_mlp(c=1, k=10):
    return _Wrap(net=tnn.Sequential(
        tnn.Flatten(), tnn.Linear(c * 784, 256), tnn.ReLU(), tnn.Linear(256, 128), tnn.ReLU(), tnn.Linear(128, k)))


class _Wrap(tnn.Module):
    """Named children applied in order (so state_dict keys match the deepbox model's)."""

    def __init__(self, **mods):
        super().__init__()
        for n, m in mods.items():
            setattr(self, n, m)

    def forward(self, x):
        for m in self.children():
            x = m(x)
        return x


def t_lenet5(c=1, k=10):
    return _Wrap(features=tnn.Sequential(tnn.Conv2d(c, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
                                         tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2)),
                 classifier=tnn.Sequential(tnn.Flatten(), tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84),
                                           tnn.ReLU(), tnn.Linear(84, k)))


def t_convnet(c=1, k=10):
    return _Wrap(features=tnn.Sequential(
        tnn.Conv2d(c, 32, 3, padding=1), tnn.BatchNorm2d(32), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(32, 64, 3, padding=1), tnn.BatchNorm2d(64), tnn.ReLU(), tnn.MaxPool2d(2)),
        classifier=tnn.Sequential(tnn.Flatten(), tnn.Linear(3136, 128), tnn.ReLU(), tnn.Linear(128, k)))


def t_vgg(cfg, c=1, k=10, side=28):
    layers = []
    for v in cfg:
        if v == "M":
            if side >= 2:
                layers.append(tnn.MaxPool2d(2))
                side //= 2
            continue
        layers += [tnn.Conv2d(c, v, 3, padding=1, bias=False), tnn.BatchNorm2d(v), tnn.ReLU()]
        c = v
    return _Wrap(features=tnn.Sequential(*layers), pool=tnn.AdaptiveAvgPool2d(1),
                 classifier=tnn.Sequential(tnn.Flatten(), tnn.Linear(c, k)))


class TBlock(tnn.Module):
    def __init__(self, cin, cout, stride, option):
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(cout)
        self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(cout)
        self.option, self.stride, self.extra = option, stride, cout - cin
        if (stride != 1 or cin != cout) and option == "B":
            self.shortcut = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False), tnn.BatchNorm2d(cout))
        else:
            self.shortcut = tnn.Sequential()

    def forward(self, x):
        out = self.bn2(self.conv2(TF.relu(self.bn1(self.conv1(x)))))
        if self.option == "A" and (self.stride != 1 or self.extra):
            s = x[:, :, ::self.stride, ::self.stride]
            s = TF.pad(s, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        else:
            s = self.shortcut(x)
        return TF.relu(out + s)


class TResNet(tnn.Module):
    def __init__(self, blocks, widths, c=1, k=10, option="A"):
        super().__init__()
        self.conv1 = tnn.Conv2d(c, widths[0], 3, padding=1, bias=False)
        self.bn1 = tnn.BatchNorm2d(widths[0])
        stages, cin = [], widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            stage = []
            for j in range(n):
                stage.append(TBlock(cin, w, 2 if i and not j else 1, option))
                cin = w
            stages.append(tnn.Sequential(*stage))
        self.layers = tnn.Sequential(*stages)
        self.pool = tnn.AdaptiveAvgPool2d(1)
        self.fc = tnn.Linear(cin, k)

    def forward(self, x):
        return self.fc(self.pool(self.layers(TF.relu(self.bn1(self.conv1(x))))).flatten(1))


def _dc(cin, cout):
    return tnn.Sequential(tnn.Conv2d(cin, cout, 3, padding=1, bias=False), tnn.BatchNorm2d(cout), tnn.ReLU(),
                          tnn.Conv2d(cout, cout, 3, padding=1, bias=False), tnn.BatchNorm2d(cout), tnn.ReLU())


class TUNet(tnn.Module):
    def __init__(self, c=1, k=2, base=16, depth=3):
        super().__init__()
        w = [base * 2 ** i for i in range(depth + 1)]
        self.inc = _dc(c, w[0])
        self.pool = tnn.MaxPool2d(2)
        self.down = tnn.ModuleList([_dc(w[i], w[i + 1]) for i in range(depth)])
        self.up = tnn.ModuleList([tnn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2) for i in reversed(range(depth))])
        self.dec = tnn.ModuleList([_dc(2 * w[i], w[i]) for i in reversed(range(depth))])
        self.outc = tnn.Conv2d(w[0], k, 1)

    def forward(self, x):
        skips = [self.inc(x)]
        for d in self.down:
            skips.append(d(self.pool(skips[-1])))
        out = skips.pop()
        for up, dec in zip(self.up, self.dec):
            skip = skips.pop()
            out = up(out)
            dh, dw = skip.shape[2] - out.shape[2], skip.shape[3] - out.shape[3]
            out = TF.pad(out, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
            out = dec(torch.cat([skip, out], 1))
        return self.outc(out)


VGG_SMALL = [32, 32, "M", 64, 64, "M", 128, 128, "M"]
VGG11 = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]

# name, kwargs, torch twin, input shape, output shape
CASES = [
    ("mlp", {}, lambda: t_mlp(), (3, 1, 28, 28), (3, 10)),
    ("lenet5", {}, lambda: t_lenet5(), (3, 1, 28, 28), (3, 10)),
    ("convnet", {}, lambda: t_convnet(), (3, 1, 28, 28), (3, 10)),
    ("vgg_small", {}, lambda: t_vgg(VGG_SMALL), (3, 1, 28, 28), (3, 10)),
    ("vgg11", {"in_channels": 3, "image_size": 32}, lambda: t_vgg(VGG11, 3, side=32), (2, 3, 32, 32), (2, 10)),
    ("resnet20", {}, lambda: TResNet((3, 3, 3), (16, 32, 64)), (3, 1, 28, 28), (3, 10)),
    ("resnet32", {"num_classes": 7}, lambda: TResNet((5, 5, 5), (16, 32, 64), k=7), (2, 1, 16, 16), (2, 7)),
    ("resnet56", {"in_channels": 3}, lambda: TResNet((9, 9, 9), (16, 32, 64), c=3), (2, 3, 8, 8), (2, 10)),
    ("resnet18", {"in_channels": 3}, lambda: TResNet((2, 2, 2, 2), (64, 128, 256, 512), c=3, option="B"),
     (2, 3, 16, 16), (2, 10)),
    ("unet", {}, lambda: TUNet(), (2, 1, 28, 28), (2, 2, 28, 28)),
    ("unet", {"in_channels": 3, "num_classes": 4, "base": 8, "depth": 2}, lambda: TUNet(3, 4, 8, 2),
     (2, 3, 20, 20), (2, 4, 20, 20)),
]


def _nparams(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name,kwargs,twin,in_shape,out_shape", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_shape_params_and_parity_with_torch(name, kwargs, twin, in_shape, out_shape):
    torch.manual_seed(0)
    tm = twin().eval()
    dm = models.get_model(name, **kwargs).eval()
    assert _nparams(dm) == _nparams(tm)
    # same state_dict keys and shapes: torch weights load strictly
    dm.load_state_dict({k: v.detach().numpy().copy() for k, v in tm.state_dict().items()})
    x = np.random.default_rng(0).standard_normal(in_shape).astype(np.float32)
    yd = dm(deepbox.tensor(x))
    with torch.no_grad():
        yt = tm(torch.tensor(x))
    assert tuple(yd.shape) == out_shape
    np.testing.assert_allclose(yd._data, yt.numpy(), rtol=1e-4, atol=1e-4)


# name, kwargs, batch shape, classes, steps (the wide networks get tiny batches: Adam on 10M weights dominates)
OVERFIT = [
    ("mlp", {}, (16, 1, 28, 28), 10, 30),
    ("lenet5", {}, (16, 1, 28, 28), 10, 30),
    ("convnet", {}, (16, 1, 28, 28), 10, 30),
    ("vgg_small", {"image_size": 8}, (8, 1, 8, 8), 4, 30),
    ("vgg11", {"in_channels": 3, "image_size": 8}, (4, 3, 8, 8), 4, 20),
    ("resnet20", {}, (8, 1, 8, 8), 8, 30),
    ("resnet18", {"in_channels": 3}, (4, 3, 8, 8), 4, 20),
]


@pytest.mark.parametrize("name,kwargs,shape,k,steps", OVERFIT, ids=[o[0] for o in OVERFIT])
def test_overfits_small_batch(name, kwargs, shape, k, steps):
    deepbox.manual_seed(0)
    rng = np.random.default_rng(1)
    x = deepbox.tensor(rng.standard_normal(shape).astype(np.float32))
    y = deepbox.tensor(rng.integers(0, k, shape[0]))
    model = models.get_model(name, **kwargs)
    opt = deepbox.optim.Adam(model.parameters(), lr=3e-3)
    F = deepbox.nn.functional
    first = None
    for _ in range(steps):
        opt.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    # training-mode accuracy: BatchNorm's running statistics lag behind after a few steps
    acc = (logits.argmax(1) == y).float().mean().item()
    assert loss.item() < 0.1 * first and acc == 1.0, (first, loss.item(), acc)


def test_unet_overfits_segmentation():
    deepbox.manual_seed(0)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 1, 16, 16)).astype(np.float32)
    y = (x[:, 0] > 0.3).astype(np.int64)          # a per-pixel target computable from the input
    model = models.get_model("unet", base=8, depth=2)
    opt = deepbox.optim.Adam(model.parameters(), lr=1e-2)
    xd, yd = deepbox.tensor(x), deepbox.tensor(y)
    for _ in range(40):
        opt.zero_grad()
        logits = model(xd)
        loss = deepbox.nn.functional.cross_entropy(logits, yd)
        loss.backward()
        opt.step()
    acc = (logits.argmax(1) == yd).float().mean().item()
    assert acc > 0.97, acc


def test_registry_and_arguments():
    names = models.list_models()
    for n in ["mlp", "lenet5", "convnet", "vgg11", "vgg_small", "resnet20", "resnet32", "resnet56", "resnet18",
              "unet"]:
        assert n in names
        info = models.model_info(n)
        assert info["summary"]
    assert models.model_info("unet")["task"] == "segmentation"
    m = models.get_model("lenet5", in_channels=3, num_classes=5)
    assert tuple(m(deepbox.randn(2, 3, 28, 28)).shape) == (2, 5)
    with pytest.raises(ValueError, match="activation"):
        models.get_model("lenet5", activation="gelu")
    with pytest.raises(KeyError, match="unknown model"):
        models.get_model("alexnet_huge")
