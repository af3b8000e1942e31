"""Helpers shared by the LRDif / LLDif model tests."""

from __future__ import annotations

from torch import nn

from fercore.seeding import torch_generator
from models import StepContext


def step_ctx(i: int = 0, stage: str = "s1", purpose: str = "test") -> StepContext:
    """The step context of training step ``i`` in ``stage`` (its generator seeded by ``i``)."""
    return StepContext(step=i, stage=stage, generator=torch_generator(0, purpose, i))


def no_grad_params(model: nn.Module) -> list[str]:
    """Names of trainable parameters whose gradient is missing or all zero."""
    return [n for n, p in model.named_parameters()
            if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]


class CallCounter:
    """Counts the forward calls of ``module`` (a forward hook): ``counter.n``."""

    def __init__(self, module: nn.Module):
        self.n = 0
        module.register_forward_hook(self)

    def __call__(self, *args):
        self.n += 1


def stage2_denoiser_calls(model, unlabelled: dict, labelled: dict, ctx: StepContext) -> tuple:
    """Stage 2 of a prior-diffusion model: ``(denoiser calls of predict, its output, denoiser
    calls of a training step, its output)`` (predict in eval mode without labels)."""
    import torch

    model.begin_stage("s2")
    calls = CallCounter(model.diffusion.denoiser)
    model.eval()
    with torch.no_grad():
        pred = model.predict(unlabelled)
    n_pred = calls.n
    model.train()
    calls.n = 0
    out = model.training_step(labelled, ctx)
    return n_pred, pred, calls.n, out


def balanced_sample(sample_root, per_class: int, n: int):
    """``(records, images)``: the first ``per_class`` training records of each class of the
    sample set, in class order, cut to ``n``; images ``(n, 3, S, S)`` RGB in [0, 1]."""
    import numpy as np
    import torch

    from fercore.sources import get_source

    src = get_source("sample", sample_root)
    by: dict[int, list] = {}
    for r in src.records("train"):
        by.setdefault(r.label, []).append(r)
    pick = [r for k in sorted(by) for r in by[k][:per_class]][:n]
    return pick, torch.from_numpy(np.stack([src.load(r) for r in pick])).permute(0, 3, 1, 2).float() / 255


def checkpoint_round_trip(model, batch: dict, path):
    """Save ``model`` (eval mode) to ``path`` and load it back: ``(loaded model in eval mode,
    checkpoint dict, logits before, logits after)`` of ``predict(batch)``."""
    import torch

    from models import load_checkpoint, save_checkpoint

    model.eval()
    with torch.no_grad():
        before = model.predict(batch).logits
    save_checkpoint(model, path)
    loaded, ckpt = load_checkpoint(path)
    loaded.eval()
    with torch.no_grad():
        after = loaded.predict(batch).logits
    return loaded, ckpt, before, after


def loss_before_after_fit(model, batch: dict, steps: int, fixed_ctx: StepContext) -> tuple[float, float, list[float]]:
    """``(loss before, loss after, step losses)`` of fitting ``model`` to ``batch`` for ``steps``
    optimiser steps; the two losses are measured at the same random draws (``fixed_ctx``:
    augmentation, pairing, erasing and drop-path draws), so they differ only by the training."""
    import torch

    from models.train import fit_batch

    def loss_at_fixed_draws() -> float:
        model.train()
        with torch.no_grad():
            return float(model.training_step(batch, fixed_ctx).loss)

    before = loss_at_fixed_draws()
    losses = fit_batch(model, batch, steps)
    return before, loss_at_fixed_draws(), losses


def predict_twice(model, images):
    """Two eval-mode predictions of the same images (the second on a copy), without labels."""
    import torch

    model.eval()
    with torch.no_grad():
        return model.predict({"image": images}), model.predict({"image": images.clone()})
