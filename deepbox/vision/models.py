"""``deepbox.vision.models``: torchvision's builders for the ImageNet architectures deepbox has.

``resnet18(weights=None, num_classes=1000)``, ``vgg16_bn()``, ``alexnet()`` ... build the same
networks as torchvision, with the same module names, so a state dict saved from torchvision
(``deepbox.load`` reads PyTorch's files) loads with ``load_state_dict``. No pretrained weights are
bundled and nothing is downloaded: ``weights=`` other than None raises with the way to load a
local file. (The zoo in ``deepbox.models`` has the small-image variants the course trains.)
"""
from __future__ import annotations

import deepbox.nn as nn

__all__ = ["AlexNet", "ResNet", "VGG", "alexnet", "resnet18", "resnet34", "resnet50", "vgg11", "vgg11_bn", "vgg13",
           "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]


def _no_weights(weights, name: str) -> None:
    if weights is not None:
        raise ValueError(
            f"{name}(weights={weights!r}): deepbox bundles no pretrained weights and downloads nothing. Build the "
            f"model with weights=None and load a state dict saved by torchvision: "
            f"model.load_state_dict(deepbox.load('{name}.pth'))  (deepbox.load reads PyTorch's .pth files "
            "without running code from them)")


# ----------------------------------------------------------------------------- ResNet
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """torchvision's ImageNet ResNet: 7x7 stride-2 stem, 3x3 max pool, four stages, average pool, fc."""

    def __init__(self, block, layers, num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def resnet18(*, weights=None, progress: bool = True, **kwargs) -> ResNet:
    """ResNet-18 (11.7 M parameters with 1000 classes)."""
    _no_weights(weights, "resnet18")
    return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)


def resnet34(*, weights=None, progress: bool = True, **kwargs) -> ResNet:
    """ResNet-34 (21.8 M parameters with 1000 classes)."""
    _no_weights(weights, "resnet34")
    return ResNet(BasicBlock, [3, 4, 6, 3], **kwargs)


def resnet50(*, weights=None, progress: bool = True, **kwargs) -> ResNet:
    """ResNet-50 with bottleneck blocks (25.6 M parameters with 1000 classes)."""
    _no_weights(weights, "resnet50")
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


# ----------------------------------------------------------------------------- VGG and AlexNet
_VGG_CFGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """torchvision's VGG: conv stages, 7x7 adaptive average pool, three fully connected layers."""

    def __init__(self, features, num_classes: int = 1000, init_weights: bool = True, dropout: float = 0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(dropout),
                                        nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(dropout),
                                        nn.Linear(4096, num_classes))
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.01)
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def _vgg_features(cfg, batch_norm: bool, in_channels: int = 3):
    layers, c = [], in_channels
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        layers.append(nn.Conv2d(c, v, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        c = v
    return nn.Sequential(*layers)


def _vgg_builder(name: str, cfg: str, batch_norm: bool):
    def build(*, weights=None, progress: bool = True, **kwargs) -> VGG:
        _no_weights(weights, name)
        in_channels = kwargs.pop("in_channels", 3)
        return VGG(_vgg_features(_VGG_CFGS[cfg], batch_norm, in_channels), **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"{name.upper().replace('_BN', ' with batch norm')} (torchvision's layout)."
    return build


vgg11, vgg11_bn = _vgg_builder("vgg11", "A", False), _vgg_builder("vgg11_bn", "A", True)
vgg13, vgg13_bn = _vgg_builder("vgg13", "B", False), _vgg_builder("vgg13_bn", "B", True)
vgg16, vgg16_bn = _vgg_builder("vgg16", "D", False), _vgg_builder("vgg16_bn", "D", True)
vgg19, vgg19_bn = _vgg_builder("vgg19", "E", False), _vgg_builder("vgg19_bn", "E", True)


class AlexNet(nn.Module):
    """AlexNet (Krizhevsky et al., 2012) in torchvision's single-tower form."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(True), nn.MaxPool2d(3, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(True),
                                        nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(True),
                                        nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def alexnet(*, weights=None, progress: bool = True, **kwargs) -> AlexNet:
    """AlexNet (61.1 M parameters with 1000 classes)."""
    _no_weights(weights, "alexnet")
    return AlexNet(**kwargs)
