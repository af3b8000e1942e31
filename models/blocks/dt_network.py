"""The DTnetwork (LRDif Sec. 3.1; LLDif's DTNet): a prior-guided multi-scale transformer encoder.

Restormer/DiffIR's encoder, cut to three levels for classification::

    image -> ConvStem (stride stem_stride) -> level 1: blocks[0] x DynamicTransformerBlock -> F1
          -> Downsample -> level 2: blocks[1] x ... -> F2
          -> Downsample -> level 3: blocks[2] x ... -> F3

Every block is modulated by the prior ``Z`` (Eq. 2-4). ``F_i`` has ``dims[i]`` channels and
side ``S / (stem_stride * 2**(i))``; with ``S = 224`` and ``stem_stride = 8`` the scales are
28, 14 and 7, the three scales of POSTER++'s window cross-attention.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .conv_pyramid import check_stride
from .dynamic_transformer import DynamicTransformerBlock


class ConvStem(nn.Module):
    """Image -> ``dim`` channels at ``1/stride`` resolution: 3x3 convs (stride 2 each, GELU
    between); ``stride=1`` is Restormer's single 3x3 "overlapped patch embedding"."""

    def __init__(self, in_ch: int, dim: int, stride: int):
        super().__init__()
        n_down = check_stride(stride, "stem_stride").bit_length() - 1
        layers: list[nn.Module] = []
        for i in range(max(n_down, 1)):
            if i:
                layers.append(nn.GELU())
            layers.append(nn.Conv2d(in_ch if i == 0 else dim, dim, 3, stride=2 if n_down else 1,
                                    padding=1, bias=False))
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class Downsample(nn.Module):
    """Halve the resolution: 3x3 conv to ``cout/4`` channels, then pixel-unshuffle (Restormer)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        if cout % 4:
            raise ValueError(f"Downsample: output channels {cout} must be divisible by 4")
        self.body = nn.Sequential(nn.Conv2d(cin, cout // 4, 3, padding=1, bias=False), nn.PixelUnshuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class DTNetwork(nn.Module):
    """Three levels of prior-modulated transformer blocks; returns ``[F1, F2, F3]``.

    Args:
        dims: channels per level.
        blocks: transformer blocks per level.
        heads: transposed-attention heads per level.
        prior_dim: length of the prior ``Z``.
        ffn_expansion: DGNet hidden-channel factor.
        stem_stride: down-sampling before level 1 (power of two).
        in_ch: input channels.
    """

    def __init__(self, dims: Sequence[int], blocks: Sequence[int], heads: Sequence[int], prior_dim: int,
                 ffn_expansion: float = 2.66, stem_stride: int = 8, in_ch: int = 3):
        super().__init__()
        if not (len(dims) == len(blocks) == len(heads) == 3):
            raise ValueError(f"DTNetwork: dims, blocks and heads need 3 entries each, got {dims}, {blocks}, {heads}")
        self.stem_stride = stem_stride
        self.stem = ConvStem(in_ch, dims[0], stem_stride)
        self.levels = nn.ModuleList(
            nn.ModuleList(DynamicTransformerBlock(d, h, prior_dim, ffn_expansion) for _ in range(n))
            for d, n, h in zip(dims, blocks, heads))
        self.downs = nn.ModuleList([Downsample(dims[0], dims[1]), Downsample(dims[1], dims[2])])

    def forward(self, x: Tensor, prior: Tensor) -> list[Tensor]:
        """``x``: ``(B, in_ch, S, S)``, ``prior``: ``(B, P)`` -> ``[F1, F2, F3]``."""
        feats = []
        h = self.stem(x)
        for i, level in enumerate(self.levels):
            if i:
                h = self.downs[i - 1](h)
            for block in level:
                h = block(h, prior)
            feats.append(h)
        return feats
