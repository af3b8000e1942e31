"""LRDif's condensed prior extraction network (FPEN, LRDif Eq. 1, 15)."""

from __future__ import annotations

from torch import Tensor, nn

from .pnet import out_normalization


class FPEN(nn.Module):
    """The condensed prior extraction network: ``layers`` x (Linear + LeakyReLU(0.1)).

    ``FPEN_S1`` reads ``concat(E_L(y), E_I(x))`` (``in_dim = 2E``), ``FPEN_S2`` reads
    ``E_I(x)`` (``in_dim = E``): only the first layer differs (LRDif Eq. 1, 15).

    ``out_norm=True`` ends it with a parameter-free LayerNorm, so every prior has zero mean and
    unit variance over its ``prior_dim`` entries (not in the paper; see ``prior_norm``). It
    adds no parameters: checkpoints are the same either way.
    """

    def __init__(self, in_dim: int, prior_dim: int, layers: int = 3, out_norm: bool = False):
        super().__init__()
        from fercore.errors import ConfigError

        if layers < 1:
            raise ConfigError(f"must be >= 1, got {layers}", flag="fpen_layers")
        mods: list[nn.Module] = []
        for i in range(layers):
            mods += [nn.Linear(in_dim if i == 0 else prior_dim, prior_dim), nn.LeakyReLU(0.1)]
        self.body = nn.Sequential(*mods, *out_normalization(prior_dim, out_norm))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_dim)`` -> ``(B, prior_dim)``."""
        return self.body(x)
