"""SCN: Self-Cure Network (Wang et al., CVPR 2020) — suppressing uncertain samples.

Mechanism (official code ``kaiwang960112/Self-Cure-Network``, ``src/train.py``):

1. **Self-attention importance weighting.** A linear layer + sigmoid on the pooled backbone
   feature gives each sample a weight ``alpha in (0, 1)``; the logits are ``alpha * fc(f)``
   (training *and* test time), so low-weight samples contribute flatter softmaxes.
2. **Rank regularisation.** The batch's weights are split into the top ``beta`` fraction (70 %)
   and the rest; ``L_RR = max(0, margin_1 - (mean_high - mean_low))`` with ``margin_1 = 0.15``.
   Training loss = CE(alpha * logits) + L_RR.
3. **Relabelling.** From epoch ``relabel_epoch`` (10, counted from 1 as in the official loop
   ``for i in range(1, epochs + 1): if i >= relabel_epoch``), a sample whose top softmax
   probability beats the probability of its given label by more than ``margin_2 = 0.2`` gets the
   predicted class as its new label. The step returns ``extras["new_labels"]`` and the runner
   updates its label table, as the official code writes into ``train_loader.dataset.label``.

Recipe (official defaults): Adam (lr 1e-3 — the script passes ``--lr`` only to SGD, so Adam
runs at its default), weight decay 1e-4, ExponentialLR(0.9) per epoch, 70 epochs, batch 64,
224x224, ImageNet normalisation; augmentation: ``basic_aug`` (p = 0.5: flip or Gaussian noise)
then ``RandomErasing(scale=(0.02, 0.25))`` on the normalised tensor — both run in
:meth:`SCN.training_step` (see :mod:`models.batch_augment`). Backbone: ResNet-18 (the paper
pretrains on MS-Celeb-1M; pass ``pretrained=PATH``).

Deviations: the Gaussian noise is added after the resize to ``input_size`` instead of before it
on the 100x100 image, and not re-quantised to uint8.
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


def rank_regularization(weights: Tensor, beta: float = 0.7, margin: float = 0.15) -> Tensor:
    """SCN's rank-regularisation hinge on importance weights.

    Args:
        weights: (B,) or (B, 1) importance weights in (0, 1).
        beta: fraction of the batch in the high-importance group (``int(B * beta)`` samples).
        margin: required gap between the groups' mean weights.

    Returns:
        scalar ``max(0, margin - (mean(top) - mean(rest)))``.
    """
    w = weights.reshape(-1)
    n = w.numel()
    k = int(n * beta)
    if not 0 < k < n:
        raise ValueError(f"rank regularisation needs both groups non-empty: batch {n}, beta {beta}")
    ordered = torch.sort(w, descending=True).values
    return F.relu(margin - (ordered[:k].mean() - ordered[k:].mean()))


def relabel(logits: Tensor, labels: Tensor, margin: float = 0.2) -> tuple[Tensor, Tensor]:
    """SCN's relabelling rule.

    Args:
        logits: (B, K) class scores.
        labels: (B,) given labels.
        margin: ``p_max - p_label`` above which a label is replaced.

    Returns:
        ``(new_labels (B,) long, changed (B,) bool)``: the argmax where ``p_max - p_label >
        margin``, the given label elsewhere.
    """
    p = logits.softmax(1)
    p_max, pred = p.max(1)
    p_gt = p.gather(1, labels.view(-1, 1)).squeeze(1)
    changed = (p_max - p_gt) > margin
    return torch.where(changed, pred, labels), changed


class ImportanceWeight(nn.Module):
    """Self-attention importance: ``sigmoid(Linear(f))`` -> (B, 1) in (0, 1)."""

    def __init__(self, dim: int):
        super().__init__()
        self.fc = nn.Linear(dim, 1)

    def forward(self, f: Tensor) -> Tensor:
        return torch.sigmoid(self.fc(f))


@register_model(
    "scn",
    recipe=Recipe(optimizer="adam", lr=1e-3, weight_decay=1e-4, schedule="exponential",
                  schedule_args={"gamma": 0.9}, epochs=70, batch_size=64, input_size=224, augment=(),
                  source="kaiwang960112/Self-Cure-Network src/train.py (defaults; Adam at its default lr)"),
    presets={"paper": {"backbone": "resnet18"},
             # tiny: the plain cnn-tiny trunk (resnet18-tiny does not generalise to the sample
             # set's unseen people in a few epochs) and no in-model augmentation (it slows a
             # 6-epoch from-scratch run), see docs/baselines.md
             "tiny": {"backbone": "cnn-tiny", "basic_aug": False, "erase_p": 0.0,
                      "recipe": {"epochs": 6, "input_size": 64, "batch_size": 32}}},
    description="Self-Cure Network: importance weights, rank regularisation, relabelling",
    paper="Wang et al., Suppressing Uncertainties for Large-Scale Facial Expression Recognition, CVPR 2020")
class SCN(FERModel):
    """Settings: ``backbone``, ``pretrained`` (weights path or None), ``beta`` (0.7),
    ``margin_1`` (rank margin, 0.15), ``margin_2`` (relabel margin, 0.2), ``relabel_epoch``
    (10, 1-based; 0 disables relabelling), ``drop_rate`` (0), ``basic_aug`` (True),
    ``erase_p`` (0.5), ``erase_scale`` ((0.02, 0.25))."""

    def __init__(self, num_classes: int = 7, backbone: str = "resnet18", pretrained: str | None = None,
                 beta: float = 0.7, margin_1: float = 0.15, margin_2: float = 0.2, relabel_epoch: int = 10,
                 drop_rate: float = 0.0, basic_aug: bool = True, erase_p: float = 0.5,
                 erase_scale: tuple[float, float] = (0.02, 0.25)):
        super().__init__(num_classes)
        if not 0 < beta < 1:
            raise ValueError(f"scn: beta must be in (0, 1), got {beta}")
        self.beta, self.margin_1, self.margin_2 = beta, margin_1, margin_2
        self.relabel_epoch = relabel_epoch
        self.basic_aug, self.erase_p, self.erase_scale = basic_aug, erase_p, tuple(erase_scale)
        self.norm = Normalize()
        self.backbone = create_backbone(backbone, pretrained)
        dim = self.backbone.num_features
        self.drop_rate = drop_rate
        self.alpha = ImportanceWeight(dim)
        self.fc = nn.Linear(dim, num_classes)

    def embed(self, x: Tensor) -> Tensor:
        return self.backbone.forward_features(x).mean((2, 3))

    def head(self, f: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        if self.training:
            f = aug.dropout(f, self.drop_rate, generator)
        w = self.alpha(f)
        return w * self.fc(f), w

    def training_step(self, batch: dict[str, Any], ctx: StepContext) -> StepOutput:
        x, y = batch["image"], batch["label"]
        x = aug.scn_family_input(x, ctx.generator, self.norm, basic_aug=self.basic_aug, erase_p=self.erase_p,
                                 erase_scale=self.erase_scale)
        f = self.embed(x)
        logits, w = self.head(f, ctx.generator)
        losses = {"ce": F.cross_entropy(logits, y),
                  "rank": rank_regularization(w, self.beta, self.margin_1)}
        extras: dict[str, Any] = {"importance": w.detach().squeeze(1)}
        if self.relabel_epoch > 0 and ctx.epoch + 1 >= self.relabel_epoch:
            new, changed = relabel(logits.detach(), y, self.margin_2)
            extras["new_labels"], extras["relabelled"] = new, changed
        return StepOutput(logits, losses, f, extras)

    def predict(self, batch: dict[str, Any], ctx: StepContext | None = None) -> StepOutput:
        f = self.embed(self.norm(batch["image"]))
        logits, w = self.head(f)
        return StepOutput(logits, {}, f, {"importance": w.squeeze(1)})
