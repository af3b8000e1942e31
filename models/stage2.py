"""Stage 2 of the prior models (LRDif, LLDif): the prior a training step and a prediction use,
and the losses between the stage-1 and stage-2 priors. Both models call these, so the draw
order (start noise, then one draw per reverse step) and the loss forms are written once."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from .base import StepContext
from .batch_inputs import inference_noise
from .blocks.prior_diffusion import PriorDiffusion, prior_kl


def training_prior(diffusion: PriorDiffusion | None, cond: Tensor, z1: Tensor | None, ctx: StepContext,
                   insert_noise: bool, from_target: bool = True) -> Tensor:
    """``Z_S2`` of a training step: ``cond`` itself without diffusion, else the ``T``-step chain
    (gradients through it) started from ``q(Z_T | Z_S1)`` (``from_target``, DiffIR) or from pure
    noise. Draws ``(B, C)`` start noise, then ``(T, B, C)`` inserted noise, from ``ctx``."""
    if diffusion is None:
        return cond
    b, c, t = cond.shape[0], cond.shape[1], diffusion.steps
    start = ctx.randn(b, c, device=cond.device)
    steps = ctx.randn(t, b, c, device=cond.device) if insert_noise else None
    if from_target:
        return diffusion.train_chain(z1, cond, start, steps)
    return diffusion.reverse(start, cond, steps)


def predicted_prior(diffusion: PriorDiffusion | None, cond: Tensor, batch: dict[str, Any], img: Tensor,
                    seed: int, tag: str, ctx: StepContext | None, insert_noise: bool) -> Tensor:
    """Label-free ``Z`` at inference: ``T`` reverse steps from :func:`inference_noise` (per-item
    draws keyed by ``(seed, tag, id)`` unless ``ctx`` brings a generator), or ``cond`` itself
    without diffusion."""
    if diffusion is None:
        return cond
    n = 1 + (diffusion.steps if insert_noise else 0)
    draws = inference_noise(batch, img, n, cond.shape[1], seed, tag, ctx)
    return diffusion.reverse(draws[0], cond, draws[1:] if insert_noise else None)


def prior_losses(z1: Tensor | None, z2: Tensor, kl_weight: float, kl_temperature: float, kl_direction: str,
                 l1_weight: float) -> dict[str, Tensor]:
    """The weighted prior terms that are on: ``kl`` (Eq. 17) and ``l1`` (DiffIR's)."""
    losses = {}
    if kl_weight > 0:
        losses["kl"] = kl_weight * prior_kl(z1, z2, kl_temperature, kl_direction)
    if l1_weight > 0:
        losses["l1"] = l1_weight * F.l1_loss(z2, z1)
    return losses
