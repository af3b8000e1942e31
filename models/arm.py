"""ARM: Amend Representation Module (Shi, Zhu & Liang, arXiv 2103.10189).

ARM replaces the global pooling of a CNN (official code ``JiaweiShiCV/Amend-Representation-
Module``, ``src/Networks.py``, ``src/train_raf-db.py``):

1. **Feature arrangement.** ``PixelShuffle(16)`` turns the 512 x 7 x 7 map into 2 x 112 x 112
   (``r = sqrt(C / 2)`` in general): the channels become spatial detail.
2. **De-albino.** One single-channel kernel (32 x 32, stride 8, no padding, no bias) is shared by
   both arranged maps (each is convolved separately): a learnt weighting that can down-weight
   the border positions eroded by padding (the "albino" features). Output 2 x 11 x 11, then
   BatchNorm2d(2).
3. **Affinity sharing.** The mean over the two maps plus ``alpha`` (a learnt scalar, init 1)
   times the *batch* mean map: ``out = mean_c(x) + alpha * mean_{b,c}(x)``, flattened (121) and
   classified by a linear layer. The batch term shares the features common to all expressions.

Loss: cross-entropy only. Recipe (official): Adam (default lr 1e-3: the script passes ``--lr``
to SGD only), weight decay 1e-4, ExponentialLR(0.9), 70 epochs, batch 256, 224x224, ImageNet
normalisation, ``basic_aug`` (flip or noise, p = 0.5) and ``RandomErasing(scale=(0.02, 0.1))``
(in :meth:`ARM.training_step`). Backbone: ResNet-18 pretrained on ImageNet
(``pretrained=PATH``); the official script also uses apex mixed precision (not reproduced).

Affinity at test time: the official model computes the batch mean at test time too, so a
prediction depends on the other images of the test batch. ``eval_affinity="batch"`` (default)
keeps that; ``"running"`` uses a running average of the training batch means (momentum 0.1, as
BatchNorm) so predictions do not depend on the evaluation batch — choose it when comparing
evaluation batch sizes. The paper's minimal random resampling (MRR) is not in the official
training script and is not implemented.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fercore.errors import ConfigError

from . import batch_augment as aug
from .backbones import create_backbone
from .base import FERModel, Normalize, StepContext, StepOutput
from .recipe import Recipe
from .registry import register_model


def de_albino(arranged: Tensor, kernel: Tensor, stride: int) -> Tensor:
    """Convolve every channel of ``arranged`` (B, M, H, W) with the same single-channel
    ``kernel`` (1, 1, k, k): -> (B, M, H', W'), H' = (H - k) // stride + 1."""
    b, m, h, w = arranged.shape
    out = F.conv2d(arranged.reshape(b * m, 1, h, w), kernel, stride=stride)
    return out.reshape(b, m, *out.shape[-2:])


def affinity_share(maps: Tensor, alpha: Tensor, shared: Tensor | None = None) -> Tensor:
    """ARM's affinity sharing: ``mean_c(maps) + alpha * shared``.

    Args:
        maps: (B, M, H, W) de-albino maps (after BN).
        alpha: scalar (or (1,)) weight of the shared term.
        shared: (H, W) map common to the batch; ``None`` = the batch mean ``mean_{b,c}(maps)``.

    Returns:
        (B, 1, H, W).
    """
    if shared is None:
        shared = maps.mean(dim=(0, 1))
    return maps.mean(1, keepdim=True) + alpha * shared


class AmendRepresentation(nn.Module):
    """PixelShuffle arrangement -> shared de-albino conv -> BN -> affinity sharing -> (B, S*S)."""

    def __init__(self, channels: int, grid: int, arranged_channels: int = 2, kernel: int = 32, stride: int = 8,
                 eval_affinity: str = "batch"):
        super().__init__()
        r = math.isqrt(channels // arranged_channels)
        if r * r * arranged_channels != channels:
            raise ConfigError(f"ARM needs backbone channels = arranged_channels * r^2; {channels} channels do not "
                              f"split into {arranged_channels} maps", flag="arranged_channels")
        side = grid * r
        if kernel > side:
            raise ConfigError(f"de-albino kernel {kernel} is larger than the arranged map ({side}x{side}); "
                              "lower kernel/stride or raise grid", flag="kernel")
        if eval_affinity not in ("batch", "running"):
            raise ConfigError(f"eval_affinity must be 'batch' or 'running', got {eval_affinity!r}",
                              flag="eval_affinity")
        self.grid, self.stride, self.eval_affinity = grid, stride, eval_affinity
        self.arrangement = nn.PixelShuffle(r)
        self.de_albino = nn.Conv2d(1, 1, kernel, stride=stride, bias=False)
        self.bn = nn.BatchNorm2d(arranged_channels)
        self.alpha = nn.Parameter(torch.tensor([1.0]))
        self.out_side = (side - kernel) // stride + 1
        self.register_buffer("running_shared", torch.zeros(self.out_side, self.out_side))
        self.momentum = 0.1

    def forward(self, fmap: Tensor) -> Tensor:
        fmap = F.adaptive_avg_pool2d(fmap, self.grid)
        maps = self.bn(de_albino(self.arrangement(fmap), self.de_albino.weight, self.stride))
        shared = None
        if self.training:
            with torch.no_grad():
                self.running_shared.lerp_(maps.mean(dim=(0, 1)), self.momentum)
        elif self.eval_affinity == "running":
            shared = self.running_shared
        return affinity_share(maps, self.alpha, shared).flatten(1)


@register_model(
    "arm",
    recipe=Recipe(optimizer="adam", lr=1e-3, weight_decay=1e-4, schedule="exponential",
                  schedule_args={"gamma": 0.9}, epochs=70, batch_size=256, input_size=224, augment=(),
                  source="JiaweiShiCV/Amend-Representation-Module src/train_raf-db.py (Adam at its default lr)"),
    presets={"paper": {"backbone": "resnet18"},
             # tiny: the plain cnn-tiny trunk (64 channels = 4 arranged maps x 4^2; resnet18-tiny
             # stayed at chance within the tiny budget; docs/baselines.md, "Tiny presets")
             "tiny": {"backbone": "cnn-tiny", "arranged_channels": 4, "grid": 4, "kernel": 8, "stride": 4,
                      "recipe": {"epochs": 3, "input_size": 64, "batch_size": 32}}},
    description="Amend Representation Module: pixel-shuffle arrangement, shared de-albino kernel, affinity sharing",
    paper="Shi, Zhu & Liang, Learning to Amend Facial Expression Representation via De-albino and Affinity, "
          "arXiv 2103.10189")
class ARM(FERModel):
    """Settings: ``backbone``, ``pretrained``, ``grid`` (7: the feature map is pooled to it
    first, the identity at 224), ``arranged_channels`` (2), ``kernel`` (32), ``stride`` (8),
    ``eval_affinity`` ("batch" | "running"), ``drop_rate`` (0), ``basic_aug`` (True),
    ``erase_p`` (0.5), ``erase_scale`` ((0.02, 0.1))."""

    def __init__(self, num_classes: int = 7, backbone: str = "resnet18", pretrained: str | None = None,
                 grid: int = 7, arranged_channels: int = 2, kernel: int = 32, stride: int = 8,
                 eval_affinity: str = "batch", drop_rate: float = 0.0, basic_aug: bool = True,
                 erase_p: float = 0.5, erase_scale: tuple[float, float] = (0.02, 0.1)):
        super().__init__(num_classes)
        self.basic_aug, self.erase_p, self.erase_scale = basic_aug, erase_p, tuple(erase_scale)
        self.norm = Normalize()
        self.backbone = create_backbone(backbone, pretrained)
        self.arm = AmendRepresentation(self.backbone.num_features, grid, arranged_channels, kernel, stride,
                                       eval_affinity)
        self.drop_rate = drop_rate
        self.fc = nn.Linear(self.arm.out_side ** 2, num_classes)

    def embed(self, x: Tensor) -> Tensor:
        return self.arm(self.backbone.forward_features(x))

    def training_step(self, batch: dict[str, Any], ctx: StepContext) -> StepOutput:
        x, y = batch["image"], batch["label"]
        x = aug.scn_family_input(x, ctx.generator, self.norm, basic_aug=self.basic_aug, erase_p=self.erase_p,
                                 erase_scale=self.erase_scale)
        f = self.embed(x)
        logits = self.fc(aug.dropout(f, self.drop_rate, ctx.generator))
        return StepOutput(logits, {"ce": F.cross_entropy(logits, y)}, f, {"alpha": self.arm.alpha.detach()})

    def predict(self, batch: dict[str, Any], ctx: StepContext | None = None) -> StepOutput:
        f = self.embed(self.norm(batch["image"]))
        return StepOutput(self.fc(f), {}, f)
