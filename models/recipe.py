"""A method's default training recipe, kept as data.

Every registered model carries a :class:`Recipe` (from its paper / official repository); the
benchmark runner trains with it unless the user overrides fields (``--epochs``, ``--lr``...).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fercore.errors import ConfigError

OPTIMIZERS = ("adam", "adamw", "sgd", "sam-adam", "sam-sgd")
SCHEDULES = ("none", "step", "multistep", "cosine", "exponential")
#: Generic augmentations the data pipeline applies (method-specific ones, e.g. EAC's random
#: erasing of the image it also flips, live in the method's ``training_step``).
AUGMENTS = ("hflip", "crop", "rrc", "color", "rotate", "erase")


@dataclass(frozen=True)
class Recipe:
    """Optimiser, schedule, epochs, batch, input size and augmentation of one method.

    Attributes:
        optimizer: one of :data:`OPTIMIZERS` (``sam-*`` = sharpness-aware minimisation around
            the named base optimiser, as POSTER++ trains).
        lr, weight_decay, momentum, nesterov, betas: optimiser settings.
        schedule: one of :data:`SCHEDULES`; ``schedule_args`` are its arguments
            (``step``: step_size, gamma; ``multistep``: milestones, gamma; ``exponential``:
            gamma; ``cosine``: eta_min). Stepped once per epoch.
        warmup_epochs: linear warm-up before the schedule.
        epochs, batch_size: training length and batch.
        input_size: square side the data pipeline resizes images to.
        augment: generic augmentations from :data:`AUGMENTS`, applied by the data pipeline.
        lr_mult: parameter-name prefix -> learning-rate multiplier (e.g. a 10x head).
        stage_epochs: for multi-stage methods, epochs of each stage in order
            (``{"s1": 100, "s2": 100}``); ``None`` means one stage of ``epochs``. Used when a
            run trains by epochs (``--epochs``).
        stage_share: for multi-stage methods, the part of a run's budget (steps or images,
            :mod:`benchmark.budget`) each stage gets (``{"s1": 1, "s2": 6}``: relative
            weights); ``None``: in proportion to ``stage_epochs`` (:meth:`stage_shares`).
        sam_rho: neighbourhood size of SAM.
        grad_clip: max gradient norm (0 = off).
        source: where the recipe comes from.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "none"
    schedule_args: Mapping[str, Any] = field(default_factory=dict)
    warmup_epochs: int = 0
    epochs: int = 100
    batch_size: int = 64
    input_size: int = 224
    augment: tuple[str, ...] = ("hflip",)
    lr_mult: Mapping[str, float] = field(default_factory=dict)
    stage_epochs: Mapping[str, int] | None = None
    stage_share: Mapping[str, float] | None = None
    sam_rho: float = 0.05
    grad_clip: float = 0.0
    source: str = ""

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}",
                              flag="recipe.optimizer")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}",
                              flag="recipe.schedule")
        bad = [a for a in self.augment if a not in AUGMENTS]
        if bad:
            raise ConfigError(f"unknown augmentation(s) {bad}; choose from {', '.join(AUGMENTS)}",
                              flag="recipe.augment")
        for name in ("lr", "epochs", "batch_size", "input_size"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"must be a positive finite number, got {value}", flag=f"recipe.{name}")
        if not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            raise ConfigError(f"must be >= 0, got {self.weight_decay}", flag="recipe.weight_decay")
        if self.stage_share is not None:
            bad = {k: v for k, v in self.stage_share.items()
                   if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0}
            if bad or not any(v > 0 for v in self.stage_share.values()):
                raise ConfigError(f"needs finite shares >= 0, at least one > 0, got {dict(self.stage_share)}",
                                  flag="recipe.stage_share")

    def stage_shares(self, stages: tuple[str, ...]) -> list[tuple[str, float]]:
        """Each stage's relative part of a budget, in order.

        ``stage_share`` when given (a stage it leaves out gets 0), else ``stage_epochs``'s
        proportions (a stage it leaves out gets 0), else equal parts.
        """
        weights = self.stage_share or self.stage_epochs
        if not weights:
            return [(s, 1.0) for s in stages]
        return [(s, float(weights.get(s, 0))) for s in stages]

    def replace(self, **changes: Any) -> Recipe:
        """A copy with some fields changed (unknown field names raise)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown recipe field(s) {sorted(unknown)}", flag="recipe")
        if "augment" in changes:
            changes["augment"] = tuple(changes["augment"])
        if "betas" in changes:
            changes["betas"] = tuple(changes["betas"])
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["schedule_args"] = dict(self.schedule_args)
        d["lr_mult"] = dict(self.lr_mult)
        d["stage_epochs"] = dict(self.stage_epochs) if self.stage_epochs else None
        if self.stage_share:  # absent when unset: recipes written before it keep their config hash
            d["stage_share"] = dict(self.stage_share)
        else:
            d.pop("stage_share")
        d["augment"] = list(self.augment)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Recipe:
        d = dict(d)
        for k in ("augment", "betas"):
            if k in d and d[k] is not None:
                d[k] = tuple(d[k])
        return cls(**d)
