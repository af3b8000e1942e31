"""The prior-modulated transformer block of LRDif / LLDif (the DTnetwork's building block).

A block is two residual sub-blocks, each preceded by a *prior modulation* (LRDif Eq. 2)::

    F' = W1 Z * LN(F) + W2 Z                      # PriorModulation   (Eq. 2)
    F  = F + DMNet(F')                             # TransposedAttention (Eq. 3)
    F' = W1' Z * LN(F) + W2' Z
    F  = F + DGNet(F')                             # GatedDConvFFN     (Eq. 4)

DMNet is Restormer's multi-Dconv head transposed attention (attention across *channels*, so
its cost is linear in the number of pixels), DGNet Restormer's gated depth-wise-conv
feed-forward network; the modulation is DiffIR's (a bias-free linear map of the prior split
into a scale and a shift). Shapes: features ``(B, C, H, W)``, prior ``(B, P)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _check_features(x: Tensor, dim: int, who: str) -> None:
    if x.ndim != 4 or x.shape[1] != dim:
        raise ValueError(f"{who}: expected features of shape (B, {dim}, H, W), got {tuple(x.shape)}")


class ChannelLayerNorm(nn.Module):
    """Layer normalisation over the channels of every pixel of a ``(B, C, H, W)`` map."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class PriorModulation(nn.Module):
    """``W1 Z * LN(F) + W2 Z`` (LRDif Eq. 2): the prior scales and shifts normalised features.

    ``W1`` and ``W2`` are one bias-free ``Linear(prior_dim, 2 * dim)`` split in two (as DiffIR).

    Args:
        dim: feature channels ``C``.
        prior_dim: length ``P`` of the prior vector ``Z``.
    """

    def __init__(self, dim: int, prior_dim: int):
        super().__init__()
        self.dim = dim
        self.norm = ChannelLayerNorm(dim)
        self.to_scale_shift = nn.Linear(prior_dim, 2 * dim, bias=False)

    def forward(self, x: Tensor, prior: Tensor) -> Tensor:
        """``x``: ``(B, C, H, W)``; ``prior``: ``(B, P)`` -> ``(B, C, H, W)``."""
        _check_features(x, self.dim, "PriorModulation")
        scale, shift = self.to_scale_shift(prior)[:, :, None, None].chunk(2, dim=1)
        return self.norm(x) * scale + shift


class TransposedAttention(nn.Module):
    """DMNet (LRDif Eq. 3): multi-head attention across channels (Restormer's MDTA).

    ``q, k, v`` come from a 1x1 conv followed by a 3x3 depth-wise conv; ``q`` and ``k`` are
    L2-normalised over the pixels, the ``C/heads x C/heads`` attention map is scaled by a
    learnable per-head temperature ``1/alpha`` and applied to ``v``; a 1x1 conv projects out.

    Args:
        dim: channels (divisible by ``heads``).
        heads: attention heads.
        bias: biases in the convolutions (Restormer: no).
    """

    def __init__(self, dim: int, heads: int, bias: bool = False):
        super().__init__()
        if dim % heads:
            raise ValueError(f"TransposedAttention: dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` -> ``(B, C, H, W)``."""
        b, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w) for t in (q, k, v))
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)
        return self.project_out((attn @ v).reshape(b, c, h, w))


class GatedDConvFFN(nn.Module):
    """DGNet (LRDif Eq. 4): ``W_o (GELU(Wd1 Wc1 F) * Wd2 Wc2 F)`` (Restormer's GDFN).

    A 1x1 conv to ``2 * hidden`` channels, a 3x3 depth-wise conv, a GELU gate and a 1x1 conv
    back to ``dim``; ``hidden = int(dim * expansion)``.
    """

    def __init__(self, dim: int, expansion: float = 2.66, bias: bool = False):
        super().__init__()
        hidden = int(dim * expansion)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` -> ``(B, C, H, W)``."""
        gate, value = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(gate) * value)


class DynamicTransformerBlock(nn.Module):
    """Prior-modulated DMNet + DGNet with residual connections (one DTnetwork block)."""

    def __init__(self, dim: int, heads: int, prior_dim: int, ffn_expansion: float = 2.66,
                 bias: bool = False):
        super().__init__()
        self.mod_attn = PriorModulation(dim, prior_dim)
        self.attn = TransposedAttention(dim, heads, bias)
        self.mod_ffn = PriorModulation(dim, prior_dim)
        self.ffn = GatedDConvFFN(dim, ffn_expansion, bias)

    def forward(self, x: Tensor, prior: Tensor) -> Tensor:
        """``x``: ``(B, C, H, W)``; ``prior``: ``(B, P)`` -> ``(B, C, H, W)``."""
        x = x + self.attn(self.mod_attn(x, prior))
        return x + self.ffn(self.mod_ffn(x, prior))
