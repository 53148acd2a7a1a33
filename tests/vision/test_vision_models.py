"""deepbox.vision.models: torchvision's ImageNet architectures under its builder names (parameter counts and
state-dict names as torchvision publishes them), and weights= refused with the way to load a local file."""
from __future__ import annotations

import pytest

import deepbox
from deepbox.vision import models as M

# torchvision's documented parameter counts (1000 classes)
COUNTS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "alexnet": 61_100_840,
          "vgg11": 132_863_336}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_counts_match_torchvision(name):
    m = getattr(M, name)()
    assert sum(p.numel() for p in m.parameters()) == COUNTS[name]


def test_state_dict_names_follow_torchvision():
    keys = set(M.resnet18().state_dict())
    for k in ("conv1.weight", "bn1.running_mean", "layer1.0.conv2.weight", "layer2.0.downsample.0.weight",
              "layer2.0.downsample.1.num_batches_tracked", "layer4.1.bn2.bias", "fc.weight"):
        assert k in keys, k
    assert "layer1.0.downsample.0.weight" not in keys
    keys = set(M.alexnet().state_dict())
    assert {"features.0.weight", "features.10.bias", "classifier.1.weight", "classifier.6.bias"} <= keys


def test_forward_shapes_and_num_classes():
    m = M.resnet18(num_classes=7).eval()
    assert tuple(m(deepbox.randn(2, 3, 64, 64)).shape) == (2, 7)
    m = M.resnet50(num_classes=5).eval()
    assert tuple(m(deepbox.randn(1, 3, 64, 64)).shape) == (1, 5)


def test_pretrained_weights_are_refused_with_the_local_recipe():
    with pytest.raises(ValueError, match="no pretrained weights.*load_state_dict"):
        M.resnet18(weights="IMAGENET1K_V1")
    with pytest.raises(ValueError, match="vgg16"):
        M.vgg16(weights="DEFAULT")
