"""Degradations as training augmentations: kornia-style modules and a per-item step.

Two ways to use a :class:`~degrade.base.Degradation` while training, both over the same
draw/stack/apply protocol (:class:`fercore.transform.PerSampleTransform`):

* :class:`DegradationAugment` -- a kornia augmentation (``IntensityAugmentationBase2D``):
  ``p``, ``same_on_batch``, parameters drawn per sample *per call*, no keys. Usable inside
  ``kornia.augmentation.AugmentationSequential``, ``nn.Sequential`` and
  ``torchvision.transforms.v2.Compose``. Reproducible when given ``seed`` or a ``generator``
  (the per-sample parameters are drawn from it on the CPU, so they do not depend on the
  device); the sensor noise is drawn on the images' device from a seed drawn from it (CPU and
  CUDA noise then differ, as torch's generators do). :class:`~degrade.udc.UDCAugment` and
  :class:`~degrade.lowlight.LowLightAugment` are its two subclasses.
* :class:`ItemDegradation` -- the same degradation as one step of the benchmark's per-item
  augmentation (``fer-bench run --aug udc:p=0.5``): its parameters, its gate and its noise
  seed are drawn from the item's own generator (run seed, stage, epoch, item id), so an
  image's augmentation does not depend on its batch.

An augmentation is random per call (a new degradation every epoch); a rebuilt set
(``fer-degrade udc``) is seeded per image id and gives the same bytes on every run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from kornia.augmentation import IntensityAugmentationBase2D
from torch import Tensor

from fercore.errors import ConfigError
from fercore.transform import Noise, standard_normal

from .base import Degradation

#: Noise seeds drawn per sample by :class:`ItemDegradation` are below this (exact in float32).
ITEM_SEED_RANGE = 1 << 24


def _check_p(p: float, flag: str) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"must be a probability in [0, 1], got {p}", flag=flag)
    return p


def noise_source(degradation: Degradation, seed: Tensor, images: Tensor, *, shared: bool = False) -> Noise:
    """The :data:`~fercore.transform.Noise` an augmentation call uses: a generator on the images'
    device seeded with ``seed`` (a 1-element integer tensor). ``shared``: one noise field for
    the whole batch (``same_on_batch``), as kornia shares its ``gaussian_noise``.

    Call ``degradation.apply(images, params, noise_source(...))`` to replay a call exactly."""
    g = torch.Generator(device=images.device).manual_seed(int(seed.reshape(-1)[0]))
    if not shared or degradation.noise_kind() == "poisson":
        return g
    b, c, h, w = images.shape
    return standard_normal(g, (c, h, w), images.device, batch=1, dtype=images.dtype).expand(b, c, h, w)


class DegradationAugment(IntensityAugmentationBase2D):
    """A :class:`~degrade.base.Degradation` as a kornia augmentation (see the module docstring).

    Args:
        degradation: the configured simulator (``make_udc(...)``, ``make_lowlight(...)``).
        p: probability that a sample is degraded (per sample; one draw with ``same_on_batch``).
        same_on_batch: one set of parameters (and one noise field) for the whole batch.
        keepdim: keep a ``(3, H, W)`` input's shape (kornia's meaning).
        seed: seed a private CPU generator (reproducible calls); ignored when ``generator`` is given.
        generator: draw parameters and noise seeds from this generator (advanced by each call).
            Without either, torch's global generator is used (``torch.manual_seed``), as kornia does.

    Shape: ``(B, 3, H, W)`` or ``(3, H, W)`` sRGB in [0, 1] -> the same, any float dtype, CPU or
    CUDA. Parameters after a call: ``aug._params`` holds one ``(B,)`` tensor per name of
    ``degradation.param_names()``, ``batch_prob`` and ``noise_seed``;
    ``degradation.apply(x, params, noise_source(degradation, params["noise_seed"], x))``
    reproduces the degraded samples.
    """

    def __init__(self, degradation: Degradation, p: float = 0.5, same_on_batch: bool = False,
                 keepdim: bool = False, *, seed: int | None = None, generator: torch.Generator | None = None):
        super().__init__(p=_check_p(p, "p"), same_on_batch=same_on_batch, keepdim=keepdim)
        if not isinstance(degradation, Degradation):
            raise ConfigError(f"expected a configured degradation (make_udc(...), make_lowlight(...)), got "
                              f"{type(degradation).__name__}", flag="degradation")
        self.degradation = degradation
        self.seed = seed
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(int(seed))
        self.generator = generator
        self.flags = {"kind": degradation.kind}

    # -- randomness: everything from self.generator (or torch's global one) ----------------------
    def _rand(self, n: int) -> Tensor:
        g = self.generator
        return torch.rand(n, generator=g, device=g.device if g is not None else "cpu").cpu()

    def _seeds(self, n: int) -> Tensor:
        g = self.generator
        return torch.randint(0, 1 << 62, (n,), generator=g, device=g.device if g is not None else "cpu").cpu()

    def __batch_prob_generator__(self, batch_shape: tuple[int, ...], p: float, p_batch: float,
                                 same_on_batch: bool) -> Tensor:
        b = batch_shape[0]
        if p == 1.0 or p == 0.0:
            return torch.full((b,), p, device=self.device, dtype=self.dtype)
        u = self._rand(1).expand(b) if same_on_batch else self._rand(b)
        return (u < p).to(device=self.device, dtype=self.dtype)

    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, Tensor]:
        """Per-sample parameters, each from ``numpy.random.default_rng(s)`` with ``s`` drawn from
        the augmentation's generator (so they follow the degradation's own ranges exactly)."""
        b = batch_shape[0]
        n = 1 if self.same_on_batch else b
        rows = [self.degradation.sample_params(np.random.default_rng(int(s))) for s in self._seeds(n)]
        params = self.degradation.stack_params(rows, self.device)
        if self.same_on_batch:
            params = {k: v.expand(b) for k, v in params.items()}
        params["noise_seed"] = self._seeds(1)
        return params

    def apply_transform(self, input: Tensor, params: dict[str, Tensor], flags: dict[str, Any],
                        transform: Tensor | None = None) -> Tensor:
        names = self.degradation.param_names()
        p = {k: params[k].to(device=input.device) for k in names}
        noise = noise_source(self.degradation, params["noise_seed"], input, shared=self.same_on_batch)
        return self.degradation.apply(input, p, noise).to(input.dtype)


class ItemDegradation:
    """A degradation as a step of the per-item training augmentation (:class:`benchmark.augment.Augmenter`).

    :meth:`sample_params` draws, from the item's generator and always in this order, the gate
    (``rng.random() < p``), the degradation's parameters and a noise seed; the row's keys are
    ``key`` (1.0 = degrade), ``key.<param>`` and ``key.seed``. :meth:`apply` degrades the gated
    samples of a batch, each with noise from its own generator on the images' device, so an
    item's result depends on its own draws only.
    """

    def __init__(self, key: str, degradation: Degradation, p: float):
        self.key = key
        self.degradation = degradation
        self.p = _check_p(p, f"--aug {key}:p")

    def param_names(self) -> list[str]:
        return [self.key, *(f"{self.key}.{n}" for n in self.degradation.param_names()), f"{self.key}.seed"]

    def sample_params(self, rng: np.random.Generator) -> dict[str, float]:
        on = float(rng.random() < self.p)
        row = {self.key: on}
        row.update({f"{self.key}.{n}": v for n, v in self.degradation.sample_params(rng).items()})
        row[f"{self.key}.seed"] = float(rng.integers(ITEM_SEED_RANGE))
        return row

    def identity_params(self) -> dict[str, float]:
        return dict.fromkeys(self.param_names(), 0.0)

    def apply(self, images: Tensor, params: dict[str, Tensor]) -> Tensor:
        """Degrade the samples whose gate is on; ``images`` ``(B, 3, H, W)`` in [0, 1]."""
        on = params[self.key].detach().cpu() > 0.5
        idx = torch.nonzero(on).view(-1)
        if idx.numel() == 0:
            return images
        x = images[idx.to(images.device)]
        p = {n: params[f"{self.key}.{n}"][idx.to(params[self.key].device)].to(images.device)
             for n in self.degradation.param_names()}
        seeds = params[f"{self.key}.seed"].detach().cpu()[idx].tolist()
        kind = self.degradation.noise_kind()
        noise: Noise = None
        if kind == "poisson":
            noise = [torch.Generator().manual_seed(int(s)) for s in seeds]
        elif kind == "normal":  # each item's normals from its own generator, on the images' device
            shape = tuple(x.shape[1:])
            noise = torch.stack([standard_normal(torch.Generator(device=images.device).manual_seed(int(s)), shape,
                                                 images.device, batch=1, dtype=images.dtype)[0] for s in seeds])
        out = images.clone()
        out[idx.to(images.device)] = self.degradation.apply(x, p, noise).to(images.dtype)
        return out

    def describe(self) -> dict[str, Any]:
        return {"p": self.p, **self.degradation.describe()}
