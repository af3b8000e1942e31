"""DACL: Deep Attentive Center Loss (Farzaneh & Qi, WACV 2021).

Mechanism (official code ``amirhfarzaneh/dacl``, ``models/resnet.py``, ``loss.py``,
``workspace.py``, ``main.py``):

1. **Context-aware attention network.** The flattened last feature map (512*7*7) goes through
   an MLP ``Linear(->3584) -> BN -> ReLU -> Linear(->512) -> BN -> ReLU -> Linear(->64) -> BN ->
   Tanh``; a linear layer turns the 64-d context into 2 logits per feature dimension, and the
   softmax's second entry is the attention weight ``a_d in (0, 1)`` of dimension ``d``.
2. **Sparse centre loss.** ``L_sc = sum_i sum_d a_id (f_id - c_{y_i} d)^2 / 2 / B`` on the pooled
   feature ``f`` (512): the centre loss where every dimension is weighted by its attention, so
   the loss concentrates on the discriminative dimensions. Total = CE + lambda * L_sc,
   lambda = 0.01.
3. **Centre update.** As the official custom autograd function: the centres do not follow the
   loss gradient; each step moves a class centre by
   ``alpha * sum_{i: y_i = k} a_i (f_i - c_k) / (1 + n_k)`` with ``alpha = 0.5`` (the official
   separate SGD optimiser of the centres: lr 0.5, no momentum, no weight decay, no schedule,
   and an update independent of lambda). Here the centres are a buffer updated in
   :meth:`DACL.training_step` (once per training step: a SAM second pass, which replays the
   same context and generator state, does not move them twice). Features and attention receive the loss gradients as usual.

Recipe (official ``workspace.py``): SGD lr 0.01, momentum 0.9, weight decay 5e-4,
StepLR(20, 0.1), 60 epochs, batch 64; ``Resize(256) + RandomFiveCrop(224) +
RandomHorizontalFlip`` for training and ``Resize(256) + CenterCrop(224)`` for testing, with
RAF-DB's own normalisation (mean 0.5752, 0.4495, 0.4012; std 0.2086, 0.1911, 0.1827). The
five-crop and the test-time centre crop run in the model (``crop_scale = 256 / 224``), the
flip in the data pipeline. Backbone: ResNet-18 pretrained on MS-Celeb-1M (``pretrained=PATH``).

Choices: the attention MLP's widths scale with the backbone (``7 * C``, ``C``, 64) so the tiny
ResNet works; the feature map is pooled to ``grid x grid`` (7) first (the identity at 224).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import batch_augment as aug
from .backbones import create_backbone
from .base import FERModel, Normalize, StepContext, StepOutput
from .recipe import Recipe
from .registry import register_model

RAFDB_MEAN = (0.5752, 0.4495, 0.4012)
RAFDB_STD = (0.2086, 0.1911, 0.1827)


def sparse_center_loss(features: Tensor, attention: Tensor, labels: Tensor, centers: Tensor) -> Tensor:
    """DACL's sparse centre loss.

    Args:
        features: (B, D) pooled features.
        attention: (B, D) per-dimension weights in (0, 1).
        labels: (B,) class indices.
        centers: (K, D) class centres (treated as constants).

    Returns:
        scalar ``sum(attention * (features - centers[labels])^2) / 2 / B``; 0 when every feature
        equals its class centre.
    """
    diff = features - centers[labels].detach()
    return (attention * diff.pow(2)).sum() / 2.0 / features.shape[0]


def center_update(features: Tensor, attention: Tensor, labels: Tensor, centers: Tensor,
                  alpha: float = 0.5) -> Tensor:
    """The official centre step: ``alpha * sum_{i in k} a_i (f_i - c_k) / (1 + n_k)`` per class.

    Args:
        features, attention: (B, D); labels: (B,); centers: (K, D).

    Returns:
        (K, D) increment to add to ``centers`` (0 for classes absent from the batch).
    """
    f, a = features.detach(), attention.detach()
    diff = f - centers[labels]
    num = torch.zeros_like(centers).index_add_(0, labels, a * diff)
    count = torch.ones(centers.shape[0], device=centers.device, dtype=centers.dtype)
    count.index_add_(0, labels, torch.ones_like(labels, dtype=centers.dtype))
    return alpha * num / count.unsqueeze(1)


class AttentionNetwork(nn.Module):
    """Context MLP on the flattened map and a head giving one attention weight per dimension."""

    def __init__(self, in_dim: int, dim: int, context: int = 64, hidden: int | None = None):
        super().__init__()
        hidden = hidden or 7 * dim
        self.attention = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, dim), nn.BatchNorm1d(dim), nn.ReLU(inplace=True),
            nn.Linear(dim, context), nn.BatchNorm1d(context), nn.Tanh())
        self.attention_heads = nn.Linear(context, 2 * dim)
        self.dim = dim
        for m in self.modules():  # the official init
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, flat: Tensor) -> Tensor:
        e = self.attention(flat)
        return self.attention_heads(e).reshape(-1, self.dim, 2).softmax(-1)[..., 1]


@register_model(
    "dacl",
    recipe=Recipe(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, schedule="step",
                  schedule_args={"step_size": 20, "gamma": 0.1}, epochs=60, batch_size=64, input_size=224,
                  augment=("hflip",), source="amirhfarzaneh/dacl workspace.py, main.py, loss.py"),
    presets={"paper": {"backbone": "resnet18"},
             # tiny: the plain cnn-tiny trunk and Adam 1e-3 (resnet18-tiny with the official SGD 0.01
             # stayed at chance within the tiny budget; docs/baselines.md, "Tiny presets")
             "tiny": {"backbone": "cnn-tiny", "grid": 2,
                      "recipe": {"epochs": 3, "input_size": 64, "batch_size": 32, "optimizer": "adam", "lr": 1e-3}}},
    description="Deep Attentive Center Loss: attention network + sparse centre loss",
    paper="Farzaneh & Qi, Facial Expression Recognition in the Wild via Deep Attentive Center Loss, WACV 2021")
class DACL(FERModel):
    """Settings: ``backbone``, ``pretrained``, ``lamb`` (0.01), ``alpha`` (0.5, centre step),
    ``grid`` (7), ``context`` (64), ``five_crop`` (True), ``center_crop_eval`` (True),
    ``crop_scale`` (256/224), ``mean``/``std`` (RAF-DB statistics)."""

    def __init__(self, num_classes: int = 7, backbone: str = "resnet18", pretrained: str | None = None,
                 lamb: float = 0.01, alpha: float = 0.5, grid: int = 7, context: int = 64, five_crop: bool = True,
                 center_crop_eval: bool = True, crop_scale: float = 256 / 224,
                 mean: tuple[float, ...] = RAFDB_MEAN, std: tuple[float, ...] = RAFDB_STD):
        super().__init__(num_classes)
        self.lamb, self.alpha, self.grid = lamb, alpha, grid
        self.five_crop, self.center_crop_eval, self.crop_scale = five_crop, center_crop_eval, crop_scale
        self.norm = Normalize(mean, std)
        self.backbone = create_backbone(backbone, pretrained)
        c = self.backbone.num_features
        self.attention = AttentionNetwork(c * grid * grid, c, context)
        self.fc = nn.Linear(c, num_classes)
        self.register_buffer("centers", torch.randn(num_classes, c) * (2.0 / num_classes) ** 0.5)

    def features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised images -> (pooled features (B, C), attention (B, C))."""
        fmap = F.adaptive_avg_pool2d(self.backbone.forward_features(x), self.grid)
        return fmap.mean((2, 3)), self.attention(fmap.flatten(1))

    def training_step(self, batch: dict[str, Any], ctx: StepContext) -> StepOutput:
        x, y = batch["image"], batch["label"]
        if self.five_crop:
            x = aug.five_crop(x, torch.randint(0, 5, (x.shape[0],), generator=ctx.generator), self.crop_scale)
        f, a = self.features(self.norm(x))
        logits = self.fc(f)
        losses = {"ce": F.cross_entropy(logits, y),
                  "sparse_center": self.lamb * sparse_center_loss(f, a, y, self.centers)}
        if not ctx.replay:  # SAM's second pass of the same step: the centres move once per step
            self.centers.add_(center_update(f, a, y, self.centers, self.alpha))
        return StepOutput(logits, losses, f, {"attention": a.detach()})

    def predict(self, batch: dict[str, Any], ctx: StepContext | None = None) -> StepOutput:
        x = batch["image"]
        if self.center_crop_eval:
            x = aug.center_crop_zoom(x, self.crop_scale)
        f, a = self.features(self.norm(x))
        return StepOutput(self.fc(f), {}, f, {"attention": a})
