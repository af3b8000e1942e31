"""The one interface every method implements and the benchmark runner calls.

A training batch is a dict (built by the data pipeline)::

    {
      "image":     FloatTensor (B, 3, S, S), RGB in [0, 1], after generic augmentation,
                   S = recipe.input_size. Models normalise internally.
      "label":     LongTensor (B,), class indices (the runner's current label table: SCN
                   may have relabelled some).
      "index":     LongTensor (B,), positions of the items in the training set.
      "id":        list[str] of record ids (stable keys for caches).
      "landmarks": FloatTensor (B, 68, 2), optional: x, y in [0, 1] of the (augmented) image,
                   NaN where no face was found; present when ``"landmarks" in model.requires``.
      "meta":      list[dict[str, str]], optional: per item, its row of the dataset's
                   ``manifest.csv`` (the per-image degradation parameters a ``fer-degrade`` copy
                   recorded, e.g. ``exposure_ev``, as strings) without the bookkeeping columns
                   id/split/label/class/path/sha256; ``{}`` for clean data; present when
                   ``"meta" in model.requires`` (LLDif's captions). Also in evaluation batches.
    }

A step returns :class:`StepOutput`: logits, *named* loss terms (the training loss is their sum,
and the runner logs each), optional features for t-SNE and extras. ``extras["new_labels"]``
(LongTensor (B,)) asks the runner to replace the labels of ``batch["index"]`` for later epochs
(SCN's relabelling).

Randomness inside a model (diffusion noise, pair shuffling, erasing) must come from
``ctx.generator``, which the runner seeds from (run seed, stage, epoch, step), never from the
global generator, so a resumed run reproduces an uninterrupted one.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .recipe import Recipe

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class StepOutput:
    """What a training or prediction step returns."""

    logits: Tensor
    losses: dict[str, Tensor] = field(default_factory=dict)
    features: Tensor | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def loss(self) -> Tensor:
        """The training loss: the sum of the named terms."""
        if not self.losses:
            raise ValueError("this step produced no loss terms (was it a prediction step?)")
        return torch.stack([v for v in self.losses.values()]).sum()


@dataclass
class StepContext:
    """Where in training a step happens, and the generator for the model's own randomness.

    ``replay`` is True when :func:`models.train.train_step` runs the same step again for SAM's
    second pass (same batch, same random draws): state a model updates outside the gradient
    (e.g. DACL's class centres) must not move twice.

    ``item_seed`` (prediction without a ``generator``): the seed a model keys its per-item draws
    with, together with each item's id (the runner passes one derived from the run seed, so an
    image gets the same noise in any batch, at any batch size or rank count); ``None``: the
    model's own (e.g. ``predict_seed``).
    """

    epoch: int = 0
    step: int = 0
    stage: str = "main"
    generator: torch.Generator | None = None
    replay: bool = False
    item_seed: int | None = None

    def randn(self, *shape: int, device=None, dtype=torch.float32) -> Tensor:
        """Standard normal noise from ``generator`` (drawn on the CPU, then moved, so the same
        seed gives the same numbers on any device)."""
        return torch.randn(*shape, generator=self.generator, dtype=dtype).to(device)

    def rand(self, *shape: int, device=None, dtype=torch.float32) -> Tensor:
        return torch.rand(*shape, generator=self.generator, dtype=dtype).to(device)

    def randperm(self, n: int, device=None) -> Tensor:
        return torch.randperm(n, generator=self.generator).to(device)


class Normalize(nn.Module):
    """Per-channel normalisation of [0, 1] RGB input (ImageNet statistics by default)."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class FERModel(nn.Module):
    """Base class of every registered method.

    Subclasses implement :meth:`training_step` and :meth:`predict`; multi-stage methods list
    their ``stages`` and prepare each in :meth:`begin_stage`. ``self.recipe`` is the
    training recipe (set by :func:`models.create_model` from the registry entry and preset).
    """

    #: Registry name, set by :func:`models.registry.register_model`.
    method: ClassVar[str] = ""
    #: Training stages in order; the runner calls ``begin_stage`` before each.
    stages: ClassVar[tuple[str, ...]] = ("main",)
    #: Extra batch keys the model needs (e.g. ``{"landmarks"}``).
    requires: frozenset[str] = frozenset()
    #: Settings that only say where initial weights come from (e.g. ``pretrained=PATH``): a
    #: checkpoint holds the trained weights, so :func:`models.load_checkpoint` rebuilds the model
    #: without them and the file need not exist any more.
    init_only_settings: ClassVar[tuple[str, ...]] = ("pretrained",)

    def __init__(self, num_classes: int = 7):
        super().__init__()
        self.num_classes = num_classes
        self.recipe: Recipe = Recipe()
        self.stage: str = self.stages[0]
        self.config: dict[str, Any] = {}  # create_model kwargs that rebuild this model

    # -- to implement -------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], ctx: StepContext) -> StepOutput:
        """Logits and named loss terms for a labelled batch (the model is in train mode)."""
        raise NotImplementedError

    def predict(self, batch: dict[str, Any], ctx: StepContext | None = None) -> StepOutput:
        """Logits (and features) for a batch without using its labels (eval mode)."""
        raise NotImplementedError

    # -- planning -----------------------------------------------------------------------
    @classmethod
    def planned_stages(cls, kwargs: Mapping[str, Any]) -> tuple[str, ...]:
        """The stages an instance built with constructor ``kwargs`` trains, without building it.

        The class's ``stages``, or its ``train_stages`` setting where the constructor has one
        (LRDif's ``S1`` variant trains ``("s1",)``). A method whose stages depend on other
        settings overrides this; the benchmark plans jobs and ``--dry-run`` with it, and the
        runner checks the built model agrees.
        """
        if "train_stages" in kwargs:
            return tuple(kwargs["train_stages"])
        param = inspect.signature(cls.__init__).parameters.get("train_stages")
        if param is not None and param.default is not inspect.Parameter.empty:
            return tuple(param.default)
        return tuple(cls.stages)

    # -- optional hooks -----------------------------------------------------------------
    def begin_stage(self, stage: str) -> None:
        """Prepare a stage (freeze parts, initialise stage 2 from stage 1, ...)."""
        if stage not in self.stages:
            raise ValueError(f"{self.method}: unknown stage {stage!r}; stages are {self.stages}")
        self.stage = stage

    def end_epoch(self, epoch: int, stage: str) -> None:
        """Called after every training epoch."""

    def parameter_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Trainable parameters grouped by the recipe's ``lr_mult`` prefixes."""
        mult = dict(self.recipe.lr_mult)
        groups: dict[float, list[nn.Parameter]] = {}
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            m = next((v for k, v in mult.items() if name.startswith(k)), 1.0)
            groups.setdefault(m, []).append(p)
        return [{"params": ps, "lr": lr * m, "weight_decay": weight_decay} for m, ps in groups.items()]

    # -- conveniences -------------------------------------------------------------------
    def forward(self, images: Tensor) -> Tensor:
        """Logits for a batch of [0, 1] RGB images (eval-style, no labels)."""
        return self.predict({"image": images}).logits

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]
