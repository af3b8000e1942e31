"""A tiny two-stage method for the benchmark runner's tests (registered only inside fixtures).

It exercises every path of the runner the real methods use: two stages with a stage-specific
trainable part (``begin_stage``), model randomness from ``ctx.generator`` (noise on the
features, like the diffusion stage), dropout (global generator), SCN-style relabelling
(``extras["new_labels"]``), optional landmarks and features for t-SNE.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from models.base import FERModel, Normalize, StepOutput
from models.recipe import Recipe

NAME = "benchtest"


class BenchTest(FERModel):
    stages = ("s1", "s2")

    def __init__(self, num_classes: int = 7, width: int = 8, relabel_margin: float = 0.2,
                 use_landmarks: bool = False, noise: float = 0.1, T: int = 4, batchnorm: bool = True,
                 dropout: float = 0.3):
        super().__init__(num_classes)
        self.norm = Normalize()
        bn = nn.BatchNorm2d if batchnorm else (lambda c: nn.Identity())
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1), bn(width), nn.ReLU(),
                                  nn.Conv2d(width, 2 * width, 3, 2, 1), bn(2 * width), nn.ReLU())
        extra = 2 if use_landmarks else 0
        self.head = nn.Linear(2 * width + extra, num_classes)
        self.refine = nn.Linear(2 * width + extra, 2 * width + extra)
        self.drop = nn.Dropout(dropout)
        self.relabel_margin = relabel_margin
        self.noise = noise
        self.T = T
        if use_landmarks:
            self.requires = frozenset({"landmarks"})

    def begin_stage(self, stage: str) -> None:
        super().begin_stage(stage)
        for p in self.refine.parameters():
            p.requires_grad = stage == "s2"
        if stage == "s2":  # stage 2 starts from a function of stage 1's weights
            with torch.no_grad():
                self.refine.weight.copy_(torch.eye(self.refine.weight.shape[0]) * 0.5)
                self.refine.bias.zero_()

    def features(self, batch):
        f = self.body(self.norm(batch["image"])).mean((2, 3))
        if "landmarks" in self.requires:
            lm = torch.nan_to_num(batch["landmarks"], nan=0.5).mean(1)
            f = torch.cat([f, lm], 1)
        return f

    def training_step(self, batch, ctx):
        f = self.features(batch)
        if self.stage == "s2":
            f = f + self.refine(f) + self.noise * ctx.randn(*f.shape, device=f.device)
        logits = self.head(self.drop(f))
        losses = {"ce": F.cross_entropy(logits, batch["label"])}
        extras = {}
        if self.stage == "s2":
            p = logits.detach().softmax(1)
            top, arg = p.max(1)
            gt = p.gather(1, batch["label"].view(-1, 1)).squeeze(1)
            extras["new_labels"] = torch.where(top - gt > self.relabel_margin, arg, batch["label"])
            losses["reg"] = 1e-3 * self.refine.weight.pow(2).sum()
        return StepOutput(logits, losses, f, extras)

    def predict(self, batch, ctx=None):
        f = self.features(batch)
        if self.stage == "s2":
            f = f + self.refine(f) + self.noise * ctx.randn(*f.shape, device=f.device)
        return StepOutput(self.head(f), {}, f)


class Broken(FERModel):
    """Fails in its first training step (a job failure must not stop the others)."""

    def __init__(self, num_classes: int = 7):
        super().__init__(num_classes)
        self.lin = nn.Linear(3, num_classes)

    def training_step(self, batch, ctx):
        raise RuntimeError("this model always fails")

    def predict(self, batch, ctx=None):
        return StepOutput(self.lin(batch["image"].mean((2, 3))))


@contextlib.contextmanager
def registered():
    """Register ``benchtest`` and ``broken`` for the duration of a block."""
    from models.registry import _REGISTRY, register_model

    recipe = Recipe(optimizer="adam", lr=3e-3, weight_decay=1e-4, schedule="cosine", epochs=2, batch_size=32,
                    input_size=32, augment=("hflip", "crop", "color", "erase"), stage_epochs={"s1": 2, "s2": 1})
    register_model(NAME, recipe=recipe, presets={"paper": {"width": 16}, "tiny": {"width": 8}},
                   default_preset="paper", variants={"V1": {"noise": 0.0}, "S1": {"relabel_margin": 2.0}, "S2-V1": {"noise": 0.0},
                             "S2-V2": {"noise": 0.05}, "S2-V3": {}, "S2-V4": {"noise": 0.2}})(BenchTest)
    register_model("broken", recipe=Recipe(epochs=1, batch_size=32, input_size=32),
                   presets={"paper": {}, "tiny": {}})(Broken)
    try:
        yield
    finally:
        _REGISTRY.pop(NAME, None)
        _REGISTRY.pop("broken", None)
