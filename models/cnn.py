"""CNN: a plain convolutional network trained with cross-entropy.

The reference point for the embedded sample set (how hard is it?) and the simplest method in
the registry: four conv-BN-ReLU x2 stages with max-pooling, global average pooling, dropout
and a linear classifier. Not from either paper.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import nn

from .base import FERModel, Normalize, StepContext, StepOutput
from .blocks.conv_pyramid import ConvStage
from .recipe import Recipe
from .registry import register_model


@register_model(
    "cnn",
    recipe=Recipe(optimizer="adam", lr=1e-3, weight_decay=1e-4, schedule="cosine", epochs=30,
                  batch_size=64, input_size=100, augment=("hflip", "crop"),
                  source="toolkit reference CNN (not from the papers)"),
    presets={"paper": {"widths": (32, 64, 128, 256)},
             "tiny": {"widths": (16, 32, 64, 96), "recipe": {"epochs": 3}}},
    default_preset="paper",
    description="plain CNN + cross-entropy (reference for the sample set)")
class CNN(FERModel):
    def __init__(self, num_classes: int = 7, widths: tuple[int, ...] = (32, 64, 128, 256), dropout: float = 0.2):
        super().__init__(num_classes)
        self.norm = Normalize()
        chans = (3, *widths)
        self.stages_ = nn.Sequential(*[ConvStage(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(widths[-1], num_classes)

    def embed(self, x):
        return self.stages_(self.norm(x)).mean((2, 3))

    def training_step(self, batch: dict[str, Any], ctx: StepContext) -> StepOutput:
        f = self.embed(batch["image"])
        logits = self.head(self.drop(f))
        return StepOutput(logits, {"ce": F.cross_entropy(logits, batch["label"])}, f)

    def predict(self, batch: dict[str, Any], ctx: StepContext | None = None) -> StepOutput:
        f = self.embed(batch["image"])
        return StepOutput(self.head(f), {}, f)
