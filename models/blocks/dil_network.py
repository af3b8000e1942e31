"""The DILnetwork (LRDif Sec. 3.2; LLDif's DLNet): landmark-to-image window cross-attention
at three scales, one :class:`WindowCrossAttentionBlock` per scale, giving ``O1, O2, O3``.
POSTER++'s two-stream cross-attention is the same network with its official block options."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .window_cross_attention import WindowCrossAttentionBlock


def check_windows(sizes: Sequence[int], windows: Sequence[int] | None, context: str = "") -> tuple[int, ...]:
    """The window side per scale for feature maps of ``sizes`` (``None``: one window per map),
    each checked to divide its map; ``context`` ends the error message (e.g. the image size)."""
    from fercore.errors import ConfigError

    windows = tuple(windows) if windows is not None else tuple(sizes)
    for s, w in zip(sizes, windows):
        if w < 1 or s % w:
            raise ConfigError(f"window {w} does not divide the {s}x{s} feature map; windows must divide "
                              f"{list(sizes)}{context}", flag="windows")
    return windows


class DILNetwork(nn.Module):
    """``O_i = Block_i(image_i, landmarks_i)`` for the three scales.

    Args:
        dims: channels per scale (image and landmark features must both have them).
        heads: attention heads per scale (POSTER++: 2, 4, 8).
        windows: window side per scale (POSTER++: the whole map, 28, 14, 7).
        mlp_ratio, layer_scale: see :class:`WindowCrossAttentionBlock`.
        drop_path: stochastic-depth rate, one for all scales or one per scale (POSTER++:
            0, 0.125, 0.25).
        query_norm, query_proj, norm_residual: block options (see
            :class:`WindowCrossAttentionBlock`; POSTER++'s official block: False, False, True).
    """

    def __init__(self, dims: Sequence[int], heads: Sequence[int], windows: Sequence[int],
                 mlp_ratio: float = 4.0, layer_scale: float | None = None,
                 drop_path: float | Sequence[float] = 0.0, *, query_norm: bool = True, query_proj: bool = True,
                 norm_residual: bool = False):
        super().__init__()
        rates = [float(drop_path)] * 3 if isinstance(drop_path, (int, float)) else [float(r) for r in drop_path]
        if not (len(dims) == len(heads) == len(windows) == len(rates) == 3):
            raise ValueError(f"DILNetwork: dims, heads, windows (and per-scale drop_path) need 3 entries, "
                             f"got {dims}, {heads}, {windows}, {drop_path}")
        self.scales = nn.ModuleList(
            WindowCrossAttentionBlock(d, h, w, mlp_ratio, layer_scale, r, query_norm=query_norm,
                                      query_proj=query_proj, norm_residual=norm_residual)
            for d, h, w, r in zip(dims, heads, windows, rates))

    def forward(self, image_feats: Sequence[Tensor], landmark_feats: Sequence[Tensor],
                generator: torch.Generator | None = None) -> list[Tensor]:
        """Three image maps and three landmark maps -> ``[O1, O2, O3]`` (image-map shapes).
        ``generator``: stochastic-depth draws in training (see the blocks)."""
        return [blk(x, q, generator) for blk, x, q in zip(self.scales, image_feats, landmark_feats)]
