"""ResNet-18 and ResNet-50 trunks from timm, plus narrow ``tiny`` variants for tests.

Every baseline's official code uses torchvision's ResNet (SCN, RUL, DAN, ARM, DACL, MA-Net) or a
VGGFace2 ResNet-50 with torchvision key names (EAC). timm's ResNet has the same parameter
names (``conv1``, ``bn1``, ``layer1.0.conv1`` ... ``layer4``), so MS-Celeb-1M, ImageNet and
VGGFace2 checkpoints load into it unchanged (see :mod:`models.backbones.pretrained`).

The trunks are built with ``num_classes=0, global_pool=""``: ``forward_features(x)`` returns the
last feature map ``(B, num_features, H/32, W/32)`` and there is no classifier.
"""

from __future__ import annotations

from torch import nn

from fercore.compat import import_timm


def _resnet(block: str, layers: tuple[int, ...], channels: tuple[int, ...], stem_width: int) -> nn.Module:
    import_timm()  # the CPU-torch work-around must run before timm's import
    from timm.models.resnet import BasicBlock, Bottleneck, ResNet

    blk = {"basic": BasicBlock, "bottleneck": Bottleneck}[block]
    # zero_init_last=False: the residual branches start like torchvision's (the official
    # repositories' initialisation when they train without pretrained weights).
    return ResNet(block=blk, layers=layers, channels=channels, stem_width=stem_width, num_classes=0,
                  global_pool="", zero_init_last=False)


def use_stride_in_1x1(net: nn.Module) -> nn.Module:
    """Move each down-sampling stride of a bottleneck ResNet from its 3x3 to its 1x1 conv and
    use the Caffe max-pool (no padding, ceil mode).

    This is the layout of the VGGFace2 ResNet-50 (``resnet50_ft_weight.pkl``) that EAC
    fine-tunes: same parameter names and shapes as torchvision's, different strides. Returns
    ``net`` (changed in place).
    """
    net.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=0, ceil_mode=True)
    for name in ("layer2", "layer3", "layer4"):
        first = getattr(net, name)[0]
        if not hasattr(first, "conv3"):
            raise ValueError("use_stride_in_1x1 applies to bottleneck ResNets only")
        stride = first.conv2.stride
        first.conv1.stride, first.conv2.stride = stride, (1, 1)
    return net


def resnet18() -> nn.Module:
    """ResNet-18 trunk: 512 channels at stride 32."""
    return _resnet("basic", (2, 2, 2, 2), (64, 128, 256, 512), 64)


def resnet18_tiny() -> nn.Module:
    """A narrow, shallow ResNet-18 (one block per stage, widths 16-128) for tests."""
    return _resnet("basic", (1, 1, 1, 1), (16, 32, 64, 128), 16)


def resnet50(stride_in_1x1: bool = False) -> nn.Module:
    """ResNet-50 trunk: 2048 channels at stride 32 (``stride_in_1x1`` = VGGFace2/Caffe layout)."""
    net = _resnet("bottleneck", (3, 4, 6, 3), (64, 128, 256, 512), 64)
    return use_stride_in_1x1(net) if stride_in_1x1 else net


def resnet50_tiny(stride_in_1x1: bool = False) -> nn.Module:
    """A narrow, shallow bottleneck ResNet (one block per stage, 256 output channels)."""
    net = _resnet("bottleneck", (1, 1, 1, 1), (8, 16, 32, 64), 16)
    return use_stride_in_1x1(net) if stride_in_1x1 else net
