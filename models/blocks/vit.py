"""Fusion of the three scales into tokens and the vanilla transformer classifier (LRDif Eq. 10-12).

:class:`ScaleTokenizer` maps every fused map ``x_i = concat(F_i, O_i)`` onto the grid of the
coarsest scale with strided 3x3 convs (POSTER++: 28 -> 7 with two, 14 -> 7 with one, 7 with a
1x1 conv) and concatenates the tokens (3 x 49 = 147 at 224 px). :class:`ViTClassifier` adds a
class token and learned positions, runs ``depth`` timm ViT blocks (pre-norm MSA + MLP) and
classifies the class token; POSTER++ gates the class-token feature with a squeeze-excitation
style MLP first (``se_gate=True``: ``f * sigmoid(W2 relu(W1 f))``, :class:`FeatureGate`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class ScaleTokenizer(nn.Module):
    """Maps with ``in_dims[i]`` channels and sides ``s, s/2, s/4`` -> ``(B, 3 * (s/4)^2, dim)``."""

    def __init__(self, in_dims: Sequence[int], dim: int):
        super().__init__()
        n = len(in_dims)
        embeds = []
        for i, c in enumerate(in_dims):
            downs = n - 1 - i
            if downs == 0:
                embeds.append(nn.Conv2d(c, dim, 1))
            else:
                embeds.append(nn.Sequential(*[nn.Conv2d(c if j == 0 else dim, dim, 3, stride=2, padding=1)
                                              for j in range(downs)]))
        self.embeds = nn.ModuleList(embeds)

    def forward(self, maps: Sequence[Tensor]) -> Tensor:
        return torch.cat([e(m).flatten(2).transpose(1, 2) for e, m in zip(self.embeds, maps)], dim=1)


class FeatureGate(nn.Module):
    """``f * sigmoid(W2 relu(W1 f))`` on ``(B, dim)`` features (POSTER++'s ``SE_block``: two
    ``dim x dim`` linear layers with biases)."""

    def __init__(self, dim: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, f: Tensor) -> Tensor:
        return f * torch.sigmoid(self.fc2(torch.relu(self.fc1(f))))


class ViTClassifier(nn.Module):
    """Class token + learned positions + ``depth`` transformer blocks + LayerNorm + linear head.

    Args:
        num_tokens: tokens per image (without the class token).
        dim, depth, heads, mlp_ratio: transformer size.
        num_classes: outputs of the head.
        se_gate: gate the class-token feature with :class:`FeatureGate` before the head
            (POSTER++).
    """

    def __init__(self, num_tokens: int, dim: int, depth: int, heads: int, num_classes: int,
                 mlp_ratio: float = 4.0, se_gate: bool = False):
        super().__init__()
        from fercore.compat import import_timm

        import_timm()
        from timm.models.vision_transformer import Block

        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens + 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp_ratio, qkv_bias=True) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.gate = FeatureGate(dim) if se_gate else None
        self.head = nn.Linear(dim, num_classes)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, N, dim)`` -> ``(logits (B, num_classes), class-token feature (B, dim))`` (the
        feature after the gate when ``se_gate``)."""
        if tokens.ndim != 3 or tokens.shape[1] + 1 != self.pos_embed.shape[1]:
            raise ValueError(f"ViTClassifier: expected (B, {self.pos_embed.shape[1] - 1}, dim) tokens, "
                             f"got {tuple(tokens.shape)}")
        x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1) + self.pos_embed
        feat = self.norm(self.blocks(x))[:, 0]
        if self.gate is not None:
            feat = self.gate(feat)
        return self.head(feat), feat
