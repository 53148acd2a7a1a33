"""Vision models of the zoo, each registered by name (``deepbox.models.get_model('lenet5')``)."""
from deepbox.models.vision.convnet import ConvNet, convnet
from deepbox.models.vision.lenet import LeNet5, lenet5
from deepbox.models.vision.mlp import MLP, mlp
from deepbox.models.vision.resnet import BasicBlock, ResNet, resnet18, resnet20, resnet32, resnet34, resnet44, resnet56
from deepbox.models.vision.unet import UNet, unet
from deepbox.models.vision.vgg import VGG, VGG_CONFIGS, vgg11, vgg13, vgg16, vgg_small

__all__ = ["ConvNet", "convnet", "LeNet5", "lenet5", "MLP", "mlp", "BasicBlock", "ResNet", "resnet18", "resnet20",
           "resnet32", "resnet34", "resnet44", "resnet56", "UNet", "unet", "VGG", "VGG_CONFIGS", "vgg11", "vgg13",
           "vgg16", "vgg_small"]
