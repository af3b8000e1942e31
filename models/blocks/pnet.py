"""LLDif's embedding prior networks (LLDif Sec. 3.1, 3.3).

* :class:`PNetS1` -- stage 1: cross-attention between LA-CLIP embeddings gives the embedding
  prior distribution (EPD) ``Z`` (Eq. 1)::

      q = [f_c^I, f_l^I] W_q + type embeddings          (B, 2, D)  image side (LA-CLIP)
      k = v = context W_k + type embeddings              (B, Nk, D) e.g. [f_l^t, f_c^t]
      q = q + MHA(LN(q), LN(k), LN(k));  q = q + MLP(LN(q))      x depth
      Z = LeakyReLU(Linear(flatten(q)))                  (B, C)

* :class:`PNetS2` -- stage 2: "convolutional layer, residual layer and linear layer" on the
  low-light image (Eq. 15), after DiffIR's CPEN: pixel-unshuffle, a 3x3 conv, residual conv
  blocks, a strided conv, global average pooling and a two-layer MLP to ``C``.

Both end in LeakyReLU(0.1), like DiffIR's prior networks and LRDif's FPEN; ``out_norm=True``
adds a parameter-free LayerNorm after it (unit-scale priors; not in the paper, see
``prior_norm`` of LLDif and LRDif).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .conv_pyramid import check_stride


def out_normalization(prior_dim: int, on: bool) -> list[nn.Module]:
    """``[LayerNorm(prior_dim, elementwise_affine=False)]`` when ``on``, else ``[]``."""
    return [nn.LayerNorm(prior_dim, elementwise_affine=False)] if on else []


class EmbeddingCrossAttention(nn.Module):
    """Pre-norm cross-attention block on token sets: ``x + MHA(LN(x), LN(c))``, then
    ``+ MLP(LN(.))``. ``x``: ``(B, Nq, D)`` queries, ``c``: ``(B, Nk, D)`` context."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0):
        super().__init__()
        from fercore.errors import ConfigError

        if heads < 1 or dim % heads:
            raise ConfigError(f"the prior width {dim} must be divisible by pnet_heads={heads}", flag="pnet_heads")
        self.norm_q = nn.LayerNorm(dim)
        self.norm_c = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        """``(B, Nq, D)``, ``(B, Nk, D)`` -> ``(B, Nq, D)``."""
        c = self.norm_c(context)
        x = x + self.attn(self.norm_q(x), c, c, need_weights=False)[0]
        return x + self.mlp(self.norm_mlp(x))


class PNetS1(nn.Module):
    """``Z = PNET_S1(queries, context)`` (see the module doc).

    Args:
        embed_dim: size ``E`` of the input embeddings (CLIP space).
        prior_dim: ``C``, the length of ``Z`` (also the token width ``D``).
        n_query, n_context: tokens on each side (2 and 2 in LLDif).
        depth: cross-attention blocks; heads: attention heads.
        out_norm: end with a parameter-free LayerNorm (adds no parameters).
    """

    def __init__(self, embed_dim: int, prior_dim: int, n_query: int = 2, n_context: int = 2, depth: int = 1,
                 heads: int = 4, out_norm: bool = False):
        super().__init__()
        from fercore.errors import ConfigError

        if depth < 1:
            raise ConfigError(f"must be >= 1, got {depth}", flag="pnet_depth")
        self.n_query, self.n_context = n_query, n_context
        self.proj_query = nn.Linear(embed_dim, prior_dim)
        self.proj_context = nn.Linear(embed_dim, prior_dim)
        self.query_type = nn.Parameter(torch.zeros(1, n_query, prior_dim))
        self.context_type = nn.Parameter(torch.zeros(1, n_context, prior_dim))
        nn.init.trunc_normal_(self.query_type, std=0.02)
        nn.init.trunc_normal_(self.context_type, std=0.02)
        self.blocks = nn.ModuleList(EmbeddingCrossAttention(prior_dim, heads) for _ in range(depth))
        self.out = nn.Sequential(nn.Linear(n_query * prior_dim, prior_dim), nn.LeakyReLU(0.1),
                                 *out_normalization(prior_dim, out_norm))

    def forward(self, queries: Tensor, context: Tensor) -> Tensor:
        """``queries``: ``(B, n_query, E)``; ``context``: ``(B, n_context, E)`` -> ``Z`` ``(B, C)``."""
        if queries.shape[1] != self.n_query or context.shape[1] != self.n_context:
            raise ValueError(f"PNetS1: expected {self.n_query} query and {self.n_context} context tokens, got "
                             f"{tuple(queries.shape)} and {tuple(context.shape)}")
        x = self.proj_query(queries) + self.query_type
        c = self.proj_context(context) + self.context_type
        for block in self.blocks:
            x = block(x, c)
        return self.out(x.flatten(1))


class ResidualConvBlock(nn.Module):
    """``x + Conv3x3(LeakyReLU(Conv3x3(x)))`` (EDSR / DiffIR's ResBlock)."""

    def __init__(self, dim: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.LeakyReLU(0.1),
                                  nn.Conv2d(dim, dim, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class PNetS2(nn.Module):
    """``c = PNET_S2(x)``: the condition of the denoiser from the image alone (Eq. 15).

    Args:
        prior_dim: ``C``.
        width: channels after the first conv (doubled by the strided conv).
        blocks: residual conv blocks.
        stride: pixel-unshuffle factor before the first conv (a power of two).
        in_ch: image channels.
        out_norm: end with a parameter-free LayerNorm (adds no parameters).
    """

    def __init__(self, prior_dim: int, width: int = 64, blocks: int = 4, stride: int = 4, in_ch: int = 3,
                 out_norm: bool = False):
        super().__init__()
        from fercore.errors import ConfigError

        check_stride(stride, "pnet_s2_stride")
        if width < 1 or blocks < 0:
            raise ConfigError(f"need width >= 1 and blocks >= 0, got {width}, {blocks}", flag="pnet_s2_width")
        self.unshuffle = nn.PixelUnshuffle(stride)
        self.stem = nn.Sequential(nn.Conv2d(in_ch * stride * stride, width, 3, padding=1), nn.LeakyReLU(0.1))
        self.body = nn.Sequential(*[ResidualConvBlock(width) for _ in range(blocks)])
        self.reduce = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
                                    nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.mlp = nn.Sequential(nn.Linear(2 * width, prior_dim), nn.LeakyReLU(0.1),
                                 nn.Linear(prior_dim, prior_dim), nn.LeakyReLU(0.1),
                                 *out_normalization(prior_dim, out_norm))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_ch, S, S)`` normalised image (``S`` divisible by ``stride``) -> ``(B, C)``."""
        return self.mlp(self.reduce(self.body(self.stem(self.unshuffle(x)))))
