"""Shared backbones of the baselines: ``create_backbone(name, pretrained=PATH|None)``.

=================  ==========================================  ========  ==============
name               what                                        channels  stride
=================  ==========================================  ========  ==============
``resnet18``       timm ResNet-18 (torchvision key names)      512       32
``resnet50``       timm ResNet-50                              2048      32
``resnet50-caffe`` ResNet-50, stride in the 1x1 conv (VGGFace2) 2048      32
``ir50``           IR-50 (ArcFace / face.evoLVe)                512       16
``*-tiny``         one block per stage, narrow (tests)         128/256   same
``cnn-tiny``       plain VGG-style CNN, widths 8-64 (sample)   64        16
=================  ==========================================  ========  ==============

Every backbone is an ``nn.Module`` with ``num_features`` and ``forward_features(x)`` returning
the last feature map ``(B, num_features, h, w)``. Inputs are normalised images (the methods
normalise). ``pretrained=PATH`` loads a user's checkpoint through
:func:`~models.backbones.pretrained.load_pretrained` (and prints what matched); ``None``
trains from scratch. Nothing is ever downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from fercore.errors import ConfigError

from .ir50 import IR50, ir50, ir50_tiny
from .plain import PlainCNN, cnn_tiny
from .pretrained import LoadReport, load_pretrained, read_state_dict
from .resnet import resnet18, resnet18_tiny, resnet50, resnet50_tiny

BACKBONES: dict[str, Callable[[], nn.Module]] = {
    "resnet18": resnet18,
    "resnet18-tiny": resnet18_tiny,
    "resnet50": resnet50,
    "resnet50-tiny": resnet50_tiny,
    "resnet50-caffe": lambda: resnet50(stride_in_1x1=True),
    "resnet50-caffe-tiny": lambda: resnet50_tiny(stride_in_1x1=True),
    "ir50": ir50,
    "ir50-tiny": ir50_tiny,
    "cnn-tiny": cnn_tiny,
}


def list_backbones() -> list[str]:
    return sorted(BACKBONES)


def create_backbone(name: str, pretrained: str | Path | None = None, *, verbose: bool = True,
                    choices: tuple[str, ...] | None = None) -> nn.Module:
    """Build backbone ``name`` and load ``pretrained`` weights into it when a path is given.

    ``choices`` restricts the names a method accepts (e.g. MA-Net needs a ResNet-18 layout).
    The load report is kept on the module as ``pretrained_report``.
    """
    allowed = choices or tuple(BACKBONES)
    if name not in BACKBONES or name not in allowed:
        raise ConfigError(f"unknown backbone {name!r}; choose one of {', '.join(allowed)}", flag="backbone")
    net = BACKBONES[name]()
    net.pretrained_report = load_pretrained(net, pretrained, verbose=verbose) if pretrained else None
    return net


__all__ = ["BACKBONES", "IR50", "LoadReport", "PlainCNN", "create_backbone", "list_backbones", "load_pretrained",
           "read_state_dict"]
