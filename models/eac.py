"""EAC: Erasing Attention Consistency (Zhang et al., ECCV 2022) — learning with noisy labels.

Mechanism (official code ``zyh-uaiaaaa/Erasing-Attention-Consistency``, ``src/model.py``,
``src/loss.py``, ``src/dataset.py``, ``src/main.py``):

1. **Random erasing** of the training image (``RandomErasing(scale=(0.02, 0.25))`` on the
   normalised tensor, after Gaussian noise with p = 0.5), so the network cannot memorise a
   noisy label from a few local features.
2. **Flip view.** The second view is the horizontal flip of the *same erased* image.
3. **Class activation maps** of both views: ``CAM[k] = sum_c W[k, c] * F[c]`` from the last
   feature map ``F`` and the classifier weights ``W`` (detached, as the official
   ``params[-2].data``); no bias.
4. **Attention consistency.** ``L_AC = MSE(CAM(x), flip(CAM(flip(x))))`` over all classes and
   positions. Training loss = ``CE(logits(x), y) + lambda * L_AC``, lambda = 5. Only the
   unflipped view gets the cross-entropy.

Recipe (official): Adam lr 1e-4, weight decay 1e-4, ExponentialLR(0.9), 60 epochs, batch 32,
224x224, ImageNet normalisation. Backbone: ResNet-50 pretrained on VGGFace2
(``resnet50_ft_weight.pkl``, Caffe layout with the stride in the 1x1 conv: backbone
``resnet50-caffe``, the default; ``pretrained=PATH`` loads the pickle); the paper notes
ResNet-18 also works (``backbone="resnet18"``).

Deviations: the two views go through the network as two forward passes, as the official code
does (so BatchNorm sees each view separately); the flip of the CAM is an exact index flip
(the official ``grid_sample`` with ``align_corners=True`` on the flipped grid computes the same).
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


def class_activation_maps(features: Tensor, weight: Tensor) -> Tensor:
    """CAMs: ``(B, C, H, W)`` features and ``(K, C)`` classifier weights -> ``(B, K, H, W)``."""
    return torch.einsum("bchw,kc->bkhw", features, weight)


def flip_consistency_loss(cam: Tensor, cam_of_flipped: Tensor) -> Tensor:
    """EAC's attention-consistency loss: ``MSE(cam, flip_w(cam_of_flipped))``.

    Args:
        cam: (B, K, H, W) CAMs of the images.
        cam_of_flipped: (B, K, H, W) CAMs of the horizontally flipped images.

    Returns:
        scalar, 0 exactly when the maps of the flipped images are the mirrored maps.
    """
    return F.mse_loss(cam, cam_of_flipped.flip(-1))


@register_model(
    "eac",
    recipe=Recipe(optimizer="adam", lr=1e-4, weight_decay=1e-4, schedule="exponential",
                  schedule_args={"gamma": 0.9}, epochs=60, batch_size=32, input_size=224, augment=(),
                  source="zyh-uaiaaaa/Erasing-Attention-Consistency src/main.py"),
    presets={"paper": {"backbone": "resnet50-caffe"},
             # tiny: the plain cnn-tiny trunk, no in-model noise or erasing (the flip-CAM consistency
             # stays); resnet18-tiny with them stayed at chance within the tiny budget
             # (docs/baselines.md, "Tiny presets")
             "tiny": {"backbone": "cnn-tiny", "noise_p": 0.0, "erase_p": 0.0,
                      "recipe": {"epochs": 3, "input_size": 64, "batch_size": 32, "lr": 1e-3}}},
    description="Erasing Attention Consistency: random erasing + flip CAM consistency",
    paper="Zhang et al., Learn From All: Erasing Attention Consistency for Noisy Label Facial Expression "
          "Recognition, ECCV 2022")
class EAC(FERModel):
    """Settings: ``backbone`` ("resnet50-caffe"), ``pretrained``, ``lam`` (5), ``noise_p`` (0.5),
    ``erase_p`` (0.5), ``erase_scale`` ((0.02, 0.25))."""

    def __init__(self, num_classes: int = 7, backbone: str = "resnet50-caffe", pretrained: str | None = None,
                 lam: float = 5.0, noise_p: float = 0.5, erase_p: float = 0.5,
                 erase_scale: tuple[float, float] = (0.02, 0.25)):
        super().__init__(num_classes)
        self.lam, self.noise_p, self.erase_p, self.erase_scale = lam, noise_p, erase_p, tuple(erase_scale)
        self.norm = Normalize()
        self.backbone = create_backbone(backbone, pretrained)
        self.fc = nn.Linear(self.backbone.num_features, num_classes)

    def forward_maps(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Normalised images -> (logits, pooled features, CAMs)."""
        fmap = self.backbone.forward_features(x)
        f = fmap.mean((2, 3))
        return self.fc(f), f, class_activation_maps(fmap, self.fc.weight.detach())

    def training_step(self, batch: dict[str, Any], ctx: StepContext) -> StepOutput:
        x, y = batch["image"], batch["label"]
        n = x.shape[0]
        if self.noise_p > 0:
            noisy = torch.rand(n, generator=ctx.generator) > (1 - self.noise_p)
            x = aug.add_gaussian_noise(x, torch.randn(tuple(x.shape), generator=ctx.generator), apply=noisy)
        x = self.norm(x)
        x = aug.random_erase(x, ctx.generator, self.erase_p, self.erase_scale)
        logits, f, cam = self.forward_maps(x)
        _, _, cam_flip = self.forward_maps(aug.hflip(x))
        losses = {"ce": F.cross_entropy(logits, y),
                  "consistency": self.lam * flip_consistency_loss(cam, cam_flip)}
        return StepOutput(logits, losses, f, {"cam": cam.detach()})

    def predict(self, batch: dict[str, Any], ctx: StepContext | None = None) -> StepOutput:
        logits, f, cam = self.forward_maps(self.norm(batch["image"]))
        return StepOutput(logits, {}, f, {"cam": cam})
