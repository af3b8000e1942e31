"""The DILnetwork (LRDif Sec. 3.2; LLDif's DLNet): landmark-to-image window cross-attention
at three scales, one :class:`WindowCrossAttentionBlock` per scale, giving ``O1, O2, O3``."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .window_cross_attention import WindowCrossAttentionBlock


class DILNetwork(nn.Module):
    """``O_i = Block_i(image_i, landmarks_i)`` for the three scales.

    Args:
        dims: channels per scale (image and landmark features must both have them).
        heads: attention heads per scale (POSTER++: 2, 4, 8).
        windows: window side per scale (POSTER++: the whole map, 28, 14, 7).
        mlp_ratio, layer_scale, drop_path: see :class:`WindowCrossAttentionBlock`.
    """

    def __init__(self, dims: Sequence[int], heads: Sequence[int], windows: Sequence[int],
                 mlp_ratio: float = 4.0, layer_scale: float | None = None, drop_path: float = 0.0):
        super().__init__()
        if not (len(dims) == len(heads) == len(windows) == 3):
            raise ValueError(f"DILNetwork: dims, heads and windows need 3 entries, got {dims}, {heads}, {windows}")
        self.scales = nn.ModuleList(
            WindowCrossAttentionBlock(d, h, w, mlp_ratio, layer_scale, drop_path)
            for d, h, w in zip(dims, heads, windows))

    def forward(self, image_feats: Sequence[Tensor], landmark_feats: Sequence[Tensor]) -> list[Tensor]:
        """Three image maps and three landmark maps -> ``[O1, O2, O3]`` (image-map shapes)."""
        return [blk(x, q) for blk, x, q in zip(self.scales, image_feats, landmark_feats)]
