"""A plain VGG-style trunk for the sample set's ``tiny`` presets.

Stages of two 3x3 conv-BN-ReLU layers and a 2x2 max-pool (the toolkit's reference CNN,
:mod:`models.cnn`), full resolution in the first stage. On the embedded sample set (faces of
unseen people, 64x64, Adam 1e-3, batch 32, cross-entropy) the narrow ``cnn-tiny`` (widths
8-64, ~14 MMAC per image) reached 54-60% test accuracy after 6-7 epochs in 4 of 5 runs (one
initialisation sat at chance for 3 epochs and ended at 31%), where ``resnet18-tiny`` (7x7
stride-2 stem + max-pool, 128 channels) fitted the training people (60% train accuracy) but
stayed at 29% on the test people.
Not from any paper: a stand-in where no face-pretrained weights exist (docs/baselines.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..blocks.conv_pyramid import ConvStage


class PlainCNN(nn.Module):
    """``len(widths)`` stages of (conv-BN-ReLU) x 2 + max-pool 2; ``forward_features`` gives
    ``(B, widths[-1], S / 2^n, S / 2^n)``; ``forward_stages`` the output of every stage (stage
    ``i`` at ``S / 2^i``, the stage layout of :class:`~models.backbones.ir50.IR50`, so POSTER++
    can take its first three)."""

    def __init__(self, widths: Sequence[int] = (8, 16, 32, 64), in_ch: int = 3):
        super().__init__()
        chans = (in_ch, *widths)
        self.stages = nn.Sequential(*[ConvStage(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.stage_channels = tuple(widths)
        self.num_features = widths[-1]

    def forward_features(self, x: Tensor) -> Tensor:
        return self.stages(x)

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs

    def truncate(self, num_stages: int) -> PlainCNN:
        """Keep only the first ``num_stages`` stages (in place; returns ``self``)."""
        if not 1 <= num_stages <= len(self.stages):
            raise ValueError(f"PlainCNN.truncate: num_stages must be in 1..{len(self.stages)}, got {num_stages}")
        self.stages = self.stages[:num_stages]
        self.stage_channels = self.stage_channels[:num_stages]
        self.num_features = self.stage_channels[-1]
        return self

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x)


def cnn_tiny() -> nn.Module:
    """Widths 8, 16, 32, 64: 64 channels at stride 16."""
    return PlainCNN((8, 16, 32, 64))
