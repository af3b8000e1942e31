"""Optimisers, schedules and the single training step, shared by the runner and the tests.

:func:`train_step` is the only place a model's loss is back-propagated: it works for plain
optimisers and for SAM (which needs the loss twice, through a closure).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from .base import FERModel, StepContext, StepOutput
from .recipe import Recipe


class SAM(torch.optim.Optimizer):
    """Sharpness-aware minimisation (Foret et al., ICLR 2021) around a base optimiser.

    ``step(closure)``: perturb the weights by ``rho * g / ||g||`` (gradient ascent), recompute
    the loss and gradients there with ``closure``, restore the weights and let the base
    optimiser step with those gradients.
    """

    def __init__(self, params, base_optimizer: type[torch.optim.Optimizer], rho: float = 0.05,
                 adaptive: bool = False, **kwargs: Any):
        if rho < 0:
            raise ValueError(f"SAM rho must be >= 0, got {rho}")
        super().__init__(params, dict(rho=rho, adaptive=adaptive, **kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    @torch.no_grad()
    def _grad_norm(self) -> torch.Tensor:
        norms = [((torch.abs(p) if g["adaptive"] else 1.0) * p.grad).norm(p=2)
                 for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not norms:
            return torch.tensor(0.0)
        return torch.norm(torch.stack([n.to(norms[0].device) for n in norms]), p=2)

    @torch.no_grad()
    def first_step(self) -> None:
        scale_norm = self._grad_norm()
        for g in self.param_groups:
            scale = g["rho"] / (scale_norm + 1e-12)
            for p in g["params"]:
                if p.grad is None:
                    continue
                e_w = (torch.pow(p, 2) if g["adaptive"] else 1.0) * p.grad * scale.to(p)
                p.add_(e_w)
                self.state[p]["e_w"] = e_w

    @torch.no_grad()
    def second_step(self) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if "e_w" in self.state[p]:
                    p.sub_(self.state[p].pop("e_w"))
        self.base_optimizer.step()

    def step(self, closure=None):  # type: ignore[override]
        if closure is None:
            raise RuntimeError("SAM needs a closure that recomputes the loss and gradients")
        self.first_step()
        with torch.enable_grad():
            closure()
        self.second_step()

    def state_dict(self):
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict):
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups


def build_optimizer(model: FERModel, recipe: Recipe | None = None) -> torch.optim.Optimizer:
    """The recipe's optimiser over the model's trainable parameter groups."""
    r = recipe or model.recipe
    groups = model.parameter_groups(r.lr, r.weight_decay)
    if not groups:
        raise ValueError(f"{model.method}: no trainable parameters in stage {model.stage!r}")
    kind = r.optimizer.removeprefix("sam-")
    if kind == "sgd":
        base, kw = torch.optim.SGD, dict(lr=r.lr, momentum=r.momentum, nesterov=r.nesterov,
                                         weight_decay=r.weight_decay)
    elif kind == "adamw":
        base, kw = torch.optim.AdamW, dict(lr=r.lr, betas=tuple(r.betas), weight_decay=r.weight_decay)
    else:
        base, kw = torch.optim.Adam, dict(lr=r.lr, betas=tuple(r.betas), weight_decay=r.weight_decay)
    if r.optimizer.startswith("sam-"):
        return SAM(groups, base, rho=r.sam_rho, **kw)
    return base(groups, **kw)


def build_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe, epochs: float | None = None,
                    scale: float = 1.0):
    """A per-epoch ``LambdaLR`` implementing the recipe's warm-up and schedule.

    ``epochs``: the epochs a cosine schedule spans (default the recipe's). ``scale``: recipe
    epochs per trained epoch, for the schedules stated in epochs (step, multistep, exponential):
    under a training budget the runner stretches them over the budget's epochs
    (:attr:`benchmark.budget.StageSteps.schedule_scale`), so a 3-epoch recipe's decay trained for
    60 epochs of a small set ends where it ends after 3, not 57 epochs later. Warm-up stays in
    trained epochs.
    """
    r = recipe
    total = epochs if epochs is not None else r.epochs
    a = dict(r.schedule_args)
    warm = r.warmup_epochs

    def factor(epoch: int) -> float:
        if warm and epoch < warm:
            return (epoch + 1) / warm
        e = (epoch - warm) * scale  # in recipe epochs
        if r.schedule == "step":
            return a.get("gamma", 0.1) ** (e // a.get("step_size", 10))
        if r.schedule == "multistep":
            return a.get("gamma", 0.1) ** sum(e >= m for m in a.get("milestones", ()))
        if r.schedule == "exponential":
            return a.get("gamma", 0.9) ** e
        if r.schedule == "cosine":
            span = max(1, total - warm)
            lo = a.get("eta_min", 0.0) / r.lr
            t = epoch - warm  # cosine spans the trained epochs themselves
            return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * min(t, span) / span))
        return 1.0

    opt = optimizer.base_optimizer if isinstance(optimizer, SAM) else optimizer
    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


class TrainingStep(nn.Module):
    """``forward(batch, ctx)`` is ``model.training_step(batch, ctx)``.

    The module :class:`~torch.nn.parallel.DistributedDataParallel` wraps (it syncs gradients of
    what runs through ``forward``); the model itself, with its own methods, stays ``.model``.
    """

    def __init__(self, model: FERModel):
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Any], ctx: StepContext) -> StepOutput:
        return self.model.training_step(batch, ctx)


def train_step(model: FERModel, optimizer: torch.optim.Optimizer, batch: dict[str, Any],
               ctx: StepContext, grad_clip: float = 0.0, step: nn.Module | None = None) -> StepOutput:
    """One optimisation step; returns the step's output (losses detached).

    ``step``: what computes the step instead of ``model.training_step`` -- a
    ``DistributedDataParallel(TrainingStep(model))`` under ``torchrun``, whose backward pass
    averages the gradients over ranks before they are clipped and applied.
    """
    run = step if step is not None else model.training_step
    model.train()
    holder: dict[str, StepOutput] = {}
    gen_state = ctx.generator.get_state() if ctx.generator is not None else None

    def closure() -> torch.Tensor:
        if gen_state is not None and holder:  # SAM's second pass sees the same random draws
            ctx.generator.set_state(gen_state)
        optimizer.zero_grad(set_to_none=True)
        out = run(batch, replace(ctx, replay=True) if holder else ctx)
        loss = out.loss
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(model.trainable_parameters(), grad_clip)
        holder.setdefault("out", out)
        return loss

    if isinstance(optimizer, SAM):
        closure()
        optimizer.step(closure)
    else:
        closure()
        optimizer.step()
    out = holder["out"]
    out.losses = {k: v.detach() for k, v in out.losses.items()}
    out.logits = out.logits.detach()
    return out


def fit_batch(model: FERModel, batch: dict[str, Any], steps: int, *, seed: int = 0,
              lr: float | None = None, stage: str | None = None) -> list[float]:
    """Train on one fixed batch for ``steps`` steps; returns the loss after each (for tests)."""
    from fercore.seeding import torch_generator

    if stage is not None:
        model.begin_stage(stage)
    recipe = model.recipe if lr is None else model.recipe.replace(lr=lr)
    opt = build_optimizer(model, recipe)
    losses = []
    for i in range(steps):
        ctx = StepContext(epoch=0, step=i, stage=model.stage, generator=torch_generator(seed, "fit", i))
        losses.append(float(train_step(model, opt, batch, ctx).loss))
    return losses
