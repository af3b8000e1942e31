"""The UDC simulator as a training augmentation (a thin ``nn.Module`` over :class:`UDC`)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


from .degradation import UDC


class UDCAugment(nn.Module):
    """Degrade a batch of sRGB images in [0, 1] with freshly drawn UDC parameters.

    ``forward(x, keys)`` draws each sample's parameters and noise from generators seeded by
    ``(seed, key)``: pass stable keys (image id and epoch, say) for reproducible augmentation.
    The float path is used, so gradients flow to the input (with ``noise="normal"``).

    Example::

        aug = UDCAugment(make_udc("toled"), seed=0)
        x_udc = aug(x, keys=[f"{i}-{epoch}" for i in ids])
    """

    def __init__(self, udc: UDC, seed: int = 0):
        super().__init__()
        self.udc = udc
        self.seed = int(seed)

    def forward(self, x: Tensor, keys: Sequence[object]) -> Tensor:
        if len(keys) != x.shape[0]:
            raise ValueError(f"need one key per sample ({x.shape[0]}), got {len(keys)}")
        rows, gens = self.udc.draws(self.seed, keys, tag="udc-augment")
        params = self.udc.stack_params(rows, x.device)
        return self.udc.apply(x, params, gens)

    def extra_repr(self) -> str:
        return f"display={self.udc.display.name}, seed={self.seed}"
