"""The contract between a degradation (UDC, low light) and the shared dataset-rebuilding runner.

A :class:`Degradation` is a configured simulator (a preset plus its parameter ranges). The
runner (one implementation for every kind) reads a source, draws each image's parameters from
a generator seeded by (run seed, image id), applies the degradation to batches on the chosen
device, writes the mirrored dataset and records every parameter in the manifest.

Rules every implementation follows:

* :meth:`sample_params` draws *only* from the generator it is given, so an image's parameters
  depend on (seed, id) alone -- never on batch size, order, workers, devices or shards.
* :meth:`apply` is batched: per-sample parameters arrive as tensors of shape ``(B,)`` (or
  ``(B, k)``). For a rebuilt set each sample's noise comes from its own CPU generator in
  ``generators`` (drawn on the CPU, then moved to the device, so the numbers do not depend on
  the device); an augmentation (:mod:`degrade.augment`) passes one generator on the images'
  device instead (see :data:`fercore.transform.Noise`).
* The draw/stack/apply split is :class:`fercore.transform.PerSampleTransform`, shared with the
  training augmentations.
* Images are ``(B, 3, H, W)`` float tensors, sRGB in [0, 1]; the output has the same shape and
  range. Quantisation to 8 bits is done by the runner.
* The runner calls :meth:`apply_uint8` (8-bit codes in, 8-bit codes out). Its default wraps
  :meth:`apply` (``/ 255``, then ``round(255 * y)``); a degradation may override it with an
  exact integer path (e.g. look-up tables instead of ``pow``) so its bytes cannot depend on
  the batch it was computed in. (Added for the UDC simulator; backwards compatible.)
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from fercore.transform import Noise, PerSampleTransform, standard_normal

__all__ = ["Degradation", "Noise", "codes8", "standard_normal"]


def codes8(y: Tensor) -> Tensor:
    """Float images in [0, 1] -> ``uint8`` codes: clip, ``round(255 * y)`` (half to even).
    The one 8-bit quantisation of every degradation's output."""
    return torch.round(y.clamp(0.0, 1.0) * 255.0).to(torch.uint8)


class Degradation(PerSampleTransform):
    """A configured degradation simulator (see module docstring): a
    :class:`~fercore.transform.PerSampleTransform` whose noise comes from a :data:`~fercore.transform.Noise`."""

    #: Short name used in commands, manifests and run records (``"udc"``, ``"lowlight"``).
    kind: ClassVar[str] = ""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Preset name and every setting (JSON-serialisable), for the run record and cache keys."""

    @abstractmethod
    def apply(self, images: Tensor, params: dict[str, Tensor], generators: Noise) -> Tensor:
        """Degrade a batch: ``(B, 3, H, W)`` sRGB in [0, 1] -> same shape and range.

        ``params[name]`` is a ``(B,)`` tensor on the images' device; ``generators`` is the
        noise source (:data:`~fercore.transform.Noise`): the runner passes one CPU generator per
        sample (``generators[i]`` for sample ``i``), an augmentation one generator on the
        images' device or the normals themselves.
        """

    def noise_kind(self) -> str:
        """The sensor noise :meth:`apply` adds: ``"normal"`` (Gaussian, from standard normals),
        ``"poisson"`` (needs generators, not normals) or ``"none"``."""
        return "normal"

    def apply_uint8(self, images: Tensor, params: dict[str, Tensor],
                    generators: list[torch.Generator]) -> Tensor:
        """Degrade 8-bit images: ``(B, 3, H, W)`` uint8 sRGB -> uint8 of the same shape.

        Default: ``round(255 * apply(images / 255))``. The runner writes what this returns.
        """
        y = self.apply(images.to(torch.float32) / 255.0, params, generators)
        return codes8(y)

    def draws(self, seed: int, ids: Sequence[object], tag: str | None = None
              ) -> tuple[list[dict[str, float]], list[torch.Generator]]:
        """Each image's parameters and its CPU noise generator, seeded by (run seed, ``tag``,
        image id) only -- the toolkit's one seeding rule for degradations. ``tag`` defaults to
        :attr:`kind` (the rebuilt sets); another tag gives another, equally reproducible stream
        (e.g. ``"udc-augment"``)."""
        from fercore.seeding import torch_generator

        tag = self.kind if tag is None else tag
        return self.draws_for(seed, ids, tag, "params"), [torch_generator(seed, tag, "noise", i) for i in ids]
