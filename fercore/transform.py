"""The per-sample-transform protocol shared by degradations and augmentations.

A per-sample transform (kornia style) separates *randomness* from *computation*:

1. **draw** -- each sample's parameters come from its own random source:
   :meth:`PerSampleTransform.sample_params` takes one ``numpy.random.Generator`` and returns a
   dict of floats. The caller decides how that generator is keyed: per item (run seed, tag,
   item id; :meth:`PerSampleTransform.draws_for` -- the rebuilt sets and the training pipeline) or
   per call (an augmentation module seeded once, :mod:`degrade.augment`).
2. **stack** -- per-sample dicts become a dict of ``(B,)`` tensors on the images' device
   (:meth:`PerSampleTransform.stack_params`, :func:`stack_rows`).
3. **apply** -- a pure function of the batch and those tensors (plus, for noisy transforms,
   a :data:`Noise` source): the same parameters give the same output, whoever drew them.

Used by :class:`degrade.base.Degradation` (UDC, low light), :class:`benchmark.augment.Augmenter`
(the generic training augmentations) and the augmentation modules of :mod:`degrade.augment`.
The official recipes' in-batch augmentations (:mod:`models.batch_augment`) follow the same
split as functions (``sample_*`` draws tensors from the step's ``torch.Generator``, the
transform takes them) because they draw a whole batch from one generator, as the recipes do.

Noise. A noisy transform takes its standard normals from a :data:`Noise` source, read by
:func:`standard_normal`:

* a list of CPU ``torch.Generator`` (one per sample): drawn on the CPU, then moved -- the
  numbers depend on (seed, item) only, not on the device (the rebuilt sets);
* one ``torch.Generator`` (on the images' device) or ``None`` (torch's global generator on the
  images' device): one draw for the batch on the device, no host round trip (augmentation);
* a tensor: the normals themselves, ``(B, *shape)`` (as kornia stores ``gaussian_noise`` in
  its parameters, so a call can be replayed exactly).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
import torch
from torch import Tensor

from .checks import TensorError, check_shape

#: Where a noisy transform's standard normals come from (see the module docstring).
Noise = Union[Sequence[torch.Generator], torch.Generator, Tensor, None]


def stack_rows(rows: Sequence[dict[str, float]], names: Sequence[str],
               device: torch.device | str | None = None) -> dict[str, Tensor]:
    """Per-sample parameter dicts -> dict of ``(B,)`` float32 tensors on ``device`` (``names`` order)."""
    return {k: torch.tensor([r[k] for r in rows], dtype=torch.float32, device=device) for k in names}


def standard_normal(noise: Noise, shape: tuple[int, ...], device: torch.device | str = "cpu", *,
                    batch: int | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """``(B, *shape)`` standard normals on ``device`` from a :data:`Noise` source.

    With a list of CPU generators ``B`` is its length and each row comes from its generator
    (drawn on the CPU then moved, so the numbers do not depend on the device; float32 as
    drawn). Otherwise ``batch`` gives ``B``: a tensor is checked and moved, a generator (or
    ``None``) draws on ``device`` in one call.
    """
    if isinstance(noise, (list, tuple)):
        if batch is not None and len(noise) != batch:
            raise TensorError(f"got {len(noise)} generators for a batch of {batch}; pass one CPU torch.Generator "
                              "per sample (fercore.seeding.torch_generator(seed, tag, id)), one generator on "
                              "the images' device, or None", flag="generators")
        z = torch.stack([torch.randn(shape, generator=g) for g in noise])
        return z.to(device)
    if batch is None:
        raise TypeError("standard_normal: pass batch= unless noise is a list of generators")
    if isinstance(noise, Tensor):
        check_shape(noise, (batch, *shape), "noise", hint="standard normals, one field per sample")
        return noise.to(device=device, dtype=dtype)
    device = torch.device(device)
    if noise is not None and noise.device.type != device.type:
        raise TensorError(f"the generator is on {noise.device} but the images on {device}; create it with "
                          f"torch.Generator(device={str(device)!r}) (noise is drawn where the images are)",
                          flag="generator")
    return torch.randn((batch, *shape), generator=noise, device=device, dtype=dtype)


class PerSampleTransform(ABC):
    """Parameters drawn per sample -> dict of ``(B,)`` tensors -> pure batched apply.

    Subclasses define :meth:`param_names`, :meth:`sample_params` and ``apply(images, params, ...)``
    (its further arguments -- noise, landmarks -- are the subclass's). Rules:

    * :meth:`sample_params` draws *only* from the generator it is given, always the same
      sequence of numbers, so a sample's parameters depend on that generator's seed alone;
    * ``apply`` is batched and pure: per-sample parameters arrive as ``(B,)`` tensors on the
      images' device; randomness inside it comes only from the :data:`Noise` it is given.
    """

    @abstractmethod
    def param_names(self) -> list[str]:
        """Names of the per-sample parameters, in a fixed order (the manifest's columns)."""

    @abstractmethod
    def sample_params(self, rng: np.random.Generator) -> dict[str, float]:
        """One sample's parameters, drawn only from ``rng``."""

    def stack_params(self, rows: Sequence[dict[str, float]],
                     device: torch.device | str | None = None) -> dict[str, Tensor]:
        """Per-sample parameter dicts -> dict of ``(B,)`` float32 tensors on ``device``."""
        return stack_rows(rows, self.param_names(), device)

    def draws_for(self, seed: int, ids: Sequence[object], *keys: Any) -> list[dict[str, float]]:
        """Each item's parameters from a generator keyed by ``(seed, *keys, id)`` -- the
        toolkit's one seeding rule (:func:`fercore.seeding.numpy_rng`): never batch order."""
        from .seeding import numpy_rng

        return [self.sample_params(numpy_rng(seed, *keys, i)) for i in ids]
