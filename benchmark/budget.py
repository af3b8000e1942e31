"""One training budget for every method of a run: optimiser steps or images seen.

A run trains every method for the same budget (``--budget``), whatever its recipe's epochs:

* ``--budget 600`` or ``600steps``: 600 optimiser steps per method (each at its own batch size);
* ``--budget 40000img``: 40,000 training images seen per method (``ceil(40000 / batch)`` steps).

Without ``--budget`` the run's preset states the budget (:data:`PRESET_BUDGETS`): a number of
epochs of the training set, in images, with a floor of ``min_steps`` optimiser steps at the
preset's reference batch, so that a 200-image set still gets enough updates to learn (an epoch
count alone gives such a set 5 steps per epoch). A multi-stage method splits its steps over its
stages by its recipe's :meth:`~models.recipe.Recipe.stage_shares`.

``--epochs N`` switches a run back to epoch counts (every stage of every method trains N
epochs: an explicit, unequal budget).

How the runner trains a stage of ``S`` steps when an epoch has ``P`` batches: ``ceil(S / P)``
epochs, the last one stopped after ``S - (epochs - 1) * P`` steps; the per-epoch learning-rate
schedule spans ``S / P`` (fractional) epochs, so a cosine schedule reaches its end at the
stage's last epoch. Under a budget, a schedule stated in epochs (step, multistep, exponential)
is stretched the same way: the recipe's ``E`` epochs of the stage map onto the stage's ``S / P``,
so the learning rate at the end of the budget is what the recipe has at the end of its epochs,
whatever the set's size (:attr:`StageSteps.schedule_scale`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from fercore.errors import ConfigError

UNITS = ("steps", "images")
_BUDGET_RE = re.compile(r"^\s*(\d+)\s*(steps?|img|images?)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Budget:
    """A training length: ``amount`` optimiser steps or training images seen."""

    amount: int
    unit: str = "steps"

    def __post_init__(self):
        if self.unit not in UNITS:
            raise ConfigError(f"unknown budget unit {self.unit!r}; choose one of {', '.join(UNITS)}",
                              flag="--budget")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount <= 0:
            raise ConfigError(f"a budget must be a positive whole number, got {self.amount!r}", flag="--budget")

    def __str__(self) -> str:
        return f"{self.amount}{'steps' if self.unit == 'steps' else 'img'}"

    def steps(self, batch_size: int) -> int:
        """Optimiser steps of a method training at ``batch_size``."""
        return self.amount if self.unit == "steps" else math.ceil(self.amount / batch_size)


def parse_budget(text: str | int | Budget | None) -> Budget | None:
    """``"600"``, ``"600steps"``, ``"40000img"`` (or ``None``) -> :class:`Budget`."""
    if text is None or isinstance(text, Budget):
        return text
    m = _BUDGET_RE.match(str(text))
    if not m or int(m.group(1)) <= 0:
        raise ConfigError(f"not a budget: {text!r} (use 600, 600steps or 40000img)", flag="--budget")
    unit = (m.group(2) or "steps").lower()
    return Budget(int(m.group(1)), "steps" if unit.startswith("step") else "images")


@dataclass(frozen=True)
class DefaultBudget:
    """A preset's budget: ``epochs`` of the training set, at least ``min_steps`` steps of ``batch``.

    Resolved per dataset into images seen: ``max(ceil(epochs * n_train), min_steps * batch)``.
    """

    epochs: float
    min_steps: int
    batch: int = 32

    def resolve(self, n_train: int) -> Budget:
        return Budget(max(math.ceil(self.epochs * n_train), self.min_steps * self.batch), "images")

    def describe(self) -> str:
        return f"{self.epochs:g} epochs of the training set, at least {self.min_steps} steps of {self.batch}"


#: The presets' default budgets (``tiny``: the sample set's 1,680 training images x 7 epochs =
#: 11,760 images, 368 steps at the tiny presets' batch of 32, what keeps the main job under 5
#: minutes on 2 cores; a 171-image set gets the 300-step floor, 56 of its epochs).
PRESET_BUDGETS: dict[str, DefaultBudget] = {
    "tiny": DefaultBudget(epochs=7, min_steps=300, batch=32),
    "paper": DefaultBudget(epochs=100, min_steps=2000, batch=64),
}


def preset_budget(preset: str | None) -> DefaultBudget:
    """The default budget of a run's preset (``None`` or a preset without one: ``paper``'s)."""
    return PRESET_BUDGETS.get(preset or "paper", PRESET_BUDGETS["paper"])


@dataclass(frozen=True)
class StageSteps:
    """How long one stage trains.

    Attributes:
        stage: the stage's name.
        steps: optimiser steps of the stage.
        steps_per_epoch: batches in one epoch of the training set.
        epochs: epochs the stage runs (the last one stops after the remaining steps).
        images: training images the steps see.
        recipe_epochs: under a budget, the epochs the recipe gives the stage (its schedule is
            stated over them); ``None`` when training by epochs (the schedule runs as stated).
    """

    stage: str
    steps: int
    steps_per_epoch: int
    epochs: int
    images: int
    recipe_epochs: int | None = None

    @property
    def schedule_epochs(self) -> float:
        """The (fractional) epochs the learning-rate schedule spans: ``steps / steps_per_epoch``."""
        return self.steps / self.steps_per_epoch

    @property
    def schedule_scale(self) -> float:
        """Recipe epochs per trained epoch: how fast an epoch-stated schedule (step, multistep,
        exponential) advances, so that it ends where the recipe's ends. 1 when training by epochs.

        >>> StageSteps("main", 300, 5, 60, 9600, recipe_epochs=3).schedule_scale
        0.05
        """
        if not self.recipe_epochs:
            return 1.0
        return self.recipe_epochs / self.schedule_epochs

    def steps_in_epoch(self, epoch: int) -> int:
        """Steps of the stage's ``epoch`` (0-based): all of them, the remainder in the last."""
        return min(self.steps_per_epoch, self.steps - epoch * self.steps_per_epoch)

    def to_dict(self) -> dict[str, int | str]:
        d = {"stage": self.stage, "steps": self.steps, "epochs": self.epochs, "images": self.images,
             "steps_per_epoch": self.steps_per_epoch}
        if self.recipe_epochs:
            d["recipe_epochs"] = self.recipe_epochs
        return d


def epoch_shape(n_train: int, batch_size: int, drop_last: bool = True) -> tuple[int, list[int]]:
    """Batches of one epoch and their sizes (what :func:`benchmark.data.epoch_batches` yields)."""
    if n_train <= 0:
        raise ConfigError("the training split is empty", flag="--limit-train")
    bs = min(batch_size, n_train)
    full, rest = divmod(n_train, bs)
    sizes = [bs] * full + ([rest] if rest and not drop_last else [])
    return len(sizes), sizes


def stage_steps(stage: str, steps: int, n_train: int, batch_size: int, drop_last: bool = True,
                recipe_epochs: int | None = None) -> StageSteps:
    """A stage of ``steps`` optimiser steps on ``n_train`` images (see the module docstring);
    ``recipe_epochs``: under a budget, the recipe's epochs for the stage."""
    per_epoch, sizes = epoch_shape(n_train, batch_size, drop_last)
    full, rest = divmod(steps, per_epoch)
    images = full * sum(sizes) + sum(sizes[:rest])
    return StageSteps(stage, steps, per_epoch, math.ceil(steps / per_epoch), images, recipe_epochs)


def split_steps(total: int, shares: list[tuple[str, float]]) -> list[tuple[str, int]]:
    """``total`` steps over stages in proportion to ``shares`` (largest remainder: they add up to ``total``).

    >>> split_steps(368, [("s1", 1.0), ("s2", 6.0)])
    [('s1', 53), ('s2', 315)]
    """
    weight = sum(w for _, w in shares)
    if not shares or weight <= 0:
        raise ConfigError("every stage has a share of 0", flag="--recipe")
    exact = [total * w / weight for _, w in shares]
    out = [math.floor(x) for x in exact]
    order = sorted(range(len(shares)), key=lambda i: (-(exact[i] - out[i]), i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return [(name, n) for (name, _), n in zip(shares, out)]


def describe_stages(stages: list[StageSteps]) -> str:
    """``s1:53+s2:315 steps`` (``368 steps`` for one stage), as ``--dry-run`` prints it."""
    if len(stages) == 1:
        return f"{stages[0].steps} steps"
    return "+".join(f"{s.stage}:{s.steps}" for s in stages) + " steps"
