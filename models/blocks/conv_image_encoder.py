"""A trainable stand-in for CLIP's image tower (the offline ``tiny`` presets of LRDif/LLDif)."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ..base import Normalize
from .conv_pyramid import ConvPyramid, conv_bn_act


class ConvImageEncoder(nn.Module):
    """A conv trunk, global average pool, linear, LayerNorm -> ``(B, out_dim)``.

    For machines without CLIP weights (the offline ``tiny`` presets): a randomly initialised,
    frozen CLIP image tower carries almost no expression information, so stage 2, which must
    predict the prior from the image alone, stays at chance. This encoder learns instead (the
    role LLDif gives its trainable PNET_S2). Not in the papers; ``image_encoder="clip"`` is.

    The output is L2-normalised, the scale of the CLIP embeddings it stands in for: LRDif's
    ``FPEN_S1`` reads it next to the unit-norm label embedding, and a LayerNorm-scaled vector
    (norm ``sqrt(out_dim)``) drowns the label there.

    The trunk is a :class:`ConvPyramid` with the DT network's ``dims`` and ``stem_stride``
    (``widths=None``), or, with ``widths``, a VGG-style stack that keeps full resolution in its
    first stage: per width two 3x3 conv-BN-GELU layers and a 2x2 max-pool (the toolkit's
    reference CNN design, which learns the sample set's fine mouth and brow lines much
    faster than a strided pyramid).
    """

    def __init__(self, dims: Sequence[int], stem_stride: int, out_dim: int,
                 widths: Sequence[int] | None = None, gray: bool = False):
        super().__init__()
        from fercore.errors import ConfigError

        self.gray = gray
        self.norm = Normalize()
        if widths is None:
            self.body: nn.Module = ConvPyramid(3, tuple(dims), stem_stride)
            feat = dims[-1]
        else:
            widths = tuple(int(w) for w in widths)
            if not widths or min(widths) < 1:
                raise ConfigError(f"need one or more positive widths, got {widths!r}", flag="encoder_widths")
            chans = (3, *widths)
            self.body = nn.Sequential(*[nn.Sequential(conv_bn_act(a, b), conv_bn_act(b, b), nn.MaxPool2d(2))
                                        for a, b in zip(chans[:-1], chans[1:])])
            feat = widths[-1]
        self.proj = nn.Sequential(nn.Linear(feat, out_dim), nn.LayerNorm(out_dim))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 3, S, S)`` RGB in [0, 1] -> ``(B, out_dim)``, L2-normalised like CLIP's
        embeddings. With ``gray`` the trunk sees the luminance only (Rec. 601 grey replicated to
        three channels, before the ImageNet normalisation)."""
        if self.gray:
            from kornia.color import rgb_to_grayscale

            x = rgb_to_grayscale(x).expand(-1, 3, -1, -1)
        h = self.body(self.norm(x))
        return F.normalize(self.proj((h[-1] if isinstance(h, list) else h).mean((2, 3))), dim=-1)
