"""RUL: Relative Uncertainty Learning (Zhang, Wang & Deng, NeurIPS 2021).

Mechanism (official code ``zyh-uaiaaaa/Relative-Uncertainty-Learning``, ``src/rul.py``,
``src/utils.py``, ``src/main.py``):

1. Two heads on the backbone's last feature map (512 x 7 x 7 at 224): a *feature* head ``mu``
   and an *uncertainty* head ``log_var``, each ``BN2d(affine=False) -> Dropout(0.4) -> flatten
   -> Linear(512*7*7, 64) -> BN1d(64)``.
2. **Uncertainty-weighted feature mixup.** Each sample's uncertainty is
   ``s = mean(exp(log_var))`` over the 64 dimensions. The batch is paired with a random
   permutation of itself and the features are mixed with the *relative* uncertainties as
   weights: ``w_i = s_i / (s_i + s_j)``, ``w_j = s_j / (s_i + s_j)``, ``m = w_i mu_i + w_j mu_j``
   (the weights sum to 1; the more uncertain sample of the pair gets the larger share).
3. **Add-up loss.** ``0.5 CE(fc(m), y_i) + 0.5 CE(fc(m), y_j)``: to predict both labels from the
   mix, the network must give a hard (unclear) sample a larger uncertainty so that its feature
   dominates the mix — uncertainty is learnt from the *relative* difficulty of the pair.
4. At test time the logits are ``fc(mu)``; the uncertainty head is unused.

Recipe (official): Adam, lr 2e-4 for the backbone and both heads, 2e-3 for the classifier
``fc`` (``lr_mult={"fc.": 10}``), weight decay 1e-4, ExponentialLR(0.9), 60 epochs, batch 64,
224x224, ImageNet normalisation, ``basic_aug`` (flip or noise, p = 0.5) and
``RandomErasing(scale=(0.02, 0.25))`` (both in :meth:`RUL.training_step`). Backbone: ResNet-18
pretrained on MS-Celeb-1M (``pretrained=PATH``; the official script requires the file).

Deviations: the pair permutation comes from ``ctx.generator``; the heads pool the feature map
to ``grid x grid`` (7) first, which is the identity at 224 and lets other input sizes work.
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


def relative_uncertainty_weights(s_a: Tensor, s_b: Tensor) -> tuple[Tensor, Tensor]:
    """Mixing weights of a pair from their uncertainties.

    Args:
        s_a, s_b: (B, 1) positive uncertainties of the two members of each pair.

    Returns:
        ``(w_a, w_b)``, each (B, 1): ``s_a / (s_a + s_b)`` and ``s_b / (s_a + s_b)`` (sum to 1).
    """
    total = s_a + s_b
    return s_a / total, s_b / total


def uncertainty_mixup(mu: Tensor, log_var: Tensor, perm: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Mix each feature with its partner ``perm[i]`` weighted by relative uncertainty.

    Args:
        mu: (B, D) features.
        log_var: (B, D) log-variances; the uncertainty is ``exp(log_var).mean(1)``.
        perm: (B,) long, the partner of each sample.

    Returns:
        ``(mixed (B, D), w_self (B, 1), w_partner (B, 1))``.
    """
    s = log_var.exp().mean(1, keepdim=True)
    w_a, w_b = relative_uncertainty_weights(s, s[perm])
    return w_a * mu + w_b * mu[perm], w_a, w_b


def add_up_loss(logits: Tensor, y_a: Tensor, y_b: Tensor) -> Tensor:
    """RUL's add-up loss: ``0.5 CE(logits, y_a) + 0.5 CE(logits, y_b)``."""
    return 0.5 * F.cross_entropy(logits, y_a) + 0.5 * F.cross_entropy(logits, y_b)


class EmbeddingHead(nn.Module):
    """``BN2d(affine=False) -> Dropout -> flatten -> Linear -> BN1d`` on a (B, C, g, g) map.

    In training mode the dropout mask is drawn from ``generator`` (the step's; the global
    generator when ``None``); no dropout in eval mode."""

    def __init__(self, channels: int, grid: int, out_dim: int, drop_rate: float):
        super().__init__()
        self.drop_rate = drop_rate
        self.bn_in = nn.BatchNorm2d(channels, eps=2e-5, affine=False)
        self.fc = nn.Linear(channels * grid * grid, out_dim)
        self.bn_out = nn.BatchNorm1d(out_dim, eps=2e-5)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        x = self.bn_in(x)
        if self.training:
            x = aug.dropout(x, self.drop_rate, generator)
        return self.bn_out(self.fc(x.flatten(1)))


@register_model(
    "rul",
    recipe=Recipe(optimizer="adam", lr=2e-4, weight_decay=1e-4, schedule="exponential",
                  schedule_args={"gamma": 0.9}, epochs=60, batch_size=64, input_size=224, augment=(),
                  lr_mult={"fc.": 10.0},  # the classifier only (heads are "mu." / "log_var.")
                  source="zyh-uaiaaaa/Relative-Uncertainty-Learning src/main.py"),
    presets={"paper": {"backbone": "resnet18"},
             # tiny: the plain cnn-tiny trunk and lr 1e-3 (resnet18-tiny stayed at chance within the
             # tiny budget, and 2e-4 learns slowly from scratch; docs/baselines.md, "Tiny presets")
             "tiny": {"backbone": "cnn-tiny", "grid": 2, "out_dim": 32,
                      "recipe": {"epochs": 3, "input_size": 64, "batch_size": 32, "lr": 1e-3}}},
    description="Relative Uncertainty Learning: uncertainty-weighted feature mixup + add-up loss",
    paper="Zhang, Wang & Deng, Relative Uncertainty Learning for Facial Expression Recognition, NeurIPS 2021")
class RUL(FERModel):
    """Settings: ``backbone``, ``pretrained``, ``out_dim`` (64), ``drop_rate`` (0.4), ``grid``
    (7: the heads' pooled map size), ``basic_aug`` (True), ``erase_p`` (0.5), ``erase_scale``."""

    def __init__(self, num_classes: int = 7, backbone: str = "resnet18", pretrained: str | None = None,
                 out_dim: int = 64, drop_rate: float = 0.4, grid: int = 7, basic_aug: bool = True,
                 erase_p: float = 0.5, erase_scale: tuple[float, float] = (0.02, 0.25)):
        super().__init__(num_classes)
        self.grid = grid
        self.basic_aug, self.erase_p, self.erase_scale = basic_aug, erase_p, tuple(erase_scale)
        self.norm = Normalize()
        self.backbone = create_backbone(backbone, pretrained)
        c = self.backbone.num_features
        self.mu = EmbeddingHead(c, grid, out_dim, drop_rate)
        self.log_var = EmbeddingHead(c, grid, out_dim, drop_rate)
        self.fc = nn.Linear(out_dim, num_classes)

    def feature_map(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(self.backbone.forward_features(x), self.grid)

    def training_step(self, batch: dict[str, Any], ctx: StepContext) -> StepOutput:
        x, y = batch["image"], batch["label"]
        x = aug.scn_family_input(x, ctx.generator, self.norm, basic_aug=self.basic_aug, erase_p=self.erase_p,
                                 erase_scale=self.erase_scale)
        fmap = self.feature_map(x)
        mu, log_var = self.mu(fmap, ctx.generator), self.log_var(fmap, ctx.generator)
        perm = ctx.randperm(x.shape[0], device=x.device)
        mixed, w_a, w_b = uncertainty_mixup(mu, log_var, perm)
        logits = self.fc(mixed)
        return StepOutput(logits, {"add_up": add_up_loss(logits, y, y[perm])}, mu,
                          {"perm": perm, "weights": torch.cat([w_a, w_b], 1).detach(),
                           "uncertainty": log_var.detach().exp().mean(1)})

    def predict(self, batch: dict[str, Any], ctx: StepContext | None = None) -> StepOutput:
        fmap = self.feature_map(self.norm(batch["image"]))
        mu = self.mu(fmap)
        return StepOutput(self.fc(mu), {}, mu, {"uncertainty": self.log_var(fmap).exp().mean(1)})
