"""The prior-guided landmark transformer: LRDif's UDCformer, LLDif's LLformer.

One readable forward (LRDif Sec. 3.1-3.2)::

    F1, F2, F3 = DTNetwork(image, Z)                   # prior-modulated image features
    I1, I2, I3 = F_i (image_stream="dt") or ConvPyramid(image) (image_stream="stem")
    O1, O2, O3 = DILNetwork(I_i, landmark features_i)  # window cross-attention
    x_i = concat(F_i, O_i)                             # fusion (Eq. 10)
    logits, feature = ViTClassifier(ScaleTokenizer(x_1, x_2, x_3))   # Eq. 11-12

The landmark features (three maps with ``dims`` channels at the DT scales) are an input: they
come from :mod:`models.landmarks` (heatmaps, MobileFaceNet or the image-only fallback).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .conv_pyramid import ConvPyramid
from .dil_network import DILNetwork, check_windows
from .dt_network import DTNetwork
from .vit import ScaleTokenizer, ViTClassifier

IMAGE_STREAMS = ("dt", "stem")


class PriorLandmarkFormer(nn.Module):
    """DTNetwork + DILNetwork + fusion + ViT classifier.

    Args:
        num_classes: classifier outputs.
        image_size: input side ``S`` (a multiple of ``4 * stem_stride``).
        prior_dim: length of the prior ``Z``.
        dims, blocks, heads, ffn_expansion, stem_stride: the DT network (see :class:`DTNetwork`).
        dil_heads: cross-attention heads per scale.
        windows: window side per scale; ``None`` = one window per map (POSTER++).
        image_stream: keys/values of the cross-attention: ``"dt"`` = the DT features ``F_i``,
            ``"stem"`` = a separate conv pyramid on the image (a parallel image stream).
        embed_dim, vit_depth, vit_heads, mlp_ratio: the token transformer.
        layer_scale: residual scale init of the cross-attention blocks (``None`` = off).
    """

    def __init__(self, num_classes: int, image_size: int, prior_dim: int, dims: Sequence[int],
                 blocks: Sequence[int], heads: Sequence[int], ffn_expansion: float = 2.66,
                 stem_stride: int = 8, dil_heads: Sequence[int] = (2, 4, 8),
                 windows: Sequence[int] | None = None, image_stream: str = "dt", embed_dim: int = 768,
                 vit_depth: int = 2, vit_heads: int = 8, mlp_ratio: float = 4.0,
                 layer_scale: float | None = None):
        super().__init__()
        from fercore.errors import ConfigError

        if image_stream not in IMAGE_STREAMS:
            raise ConfigError(f"unknown image stream {image_stream!r}; choose one of {', '.join(IMAGE_STREAMS)}",
                              flag="image_stream")
        if image_size % (4 * stem_stride):
            raise ConfigError(f"image_size {image_size} must be a multiple of 4 * stem_stride = {4 * stem_stride}",
                              flag="image_size")
        self.sizes = [image_size // (stem_stride * 2 ** i) for i in range(3)]
        windows = check_windows(self.sizes, windows)
        self.dims = tuple(dims)
        self.dt = DTNetwork(dims, blocks, heads, prior_dim, ffn_expansion, stem_stride)
        self.image_stem = ConvPyramid(3, tuple(dims), stem_stride) if image_stream == "stem" else None
        self.dil = DILNetwork(dims, dil_heads, windows, mlp_ratio, layer_scale)
        self.tokenizer = ScaleTokenizer([2 * d for d in dims], embed_dim)
        self.vit = ViTClassifier(3 * self.sizes[2] ** 2, embed_dim, vit_depth, vit_heads, num_classes, mlp_ratio)

    def forward(self, image: Tensor, prior: Tensor, landmark_feats: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """``image``: normalised ``(B, 3, S, S)``; ``prior``: ``(B, P)``; ``landmark_feats``:
        three ``(B, dims[i], *, *)`` maps -> ``(logits, class-token feature)``."""
        feats = self.dt(image, prior)
        image_feats = feats if self.image_stem is None else self.image_stem(image)
        outs = self.dil(image_feats, landmark_feats)
        fused = [torch.cat([f, o], dim=1) for f, o in zip(feats, outs)]
        return self.vit(self.tokenizer(fused))
