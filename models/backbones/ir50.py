"""IR-50: the improved-residual ResNet-50 of ArcFace / InsightFace (face.evoLVe layout).

POSTER++ takes its image stream from an IR-50 pretrained on MS-Celeb-1M; written once here so
POSTER++ and any other method can share it. A unit (:class:`IRUnit`) is
``BN -> conv3x3 -> PReLU -> conv3x3(stride) -> BN`` plus a shortcut (identity / strided
max-pool when the width is unchanged, 1x1 conv + BN otherwise); there is no activation after
the addition. The stem is ``conv3x3 -> BN -> PReLU`` at stride 1 (the network expects 112x112
faces: 112 -> 56 -> 28 -> 14 -> 7 over the four stages).

Parameter names follow face.evoLVe's ``Backbone(50, mode="ir")`` (``input_layer.*``,
``body.<i>.res_layer.*``, ``body.<i>.shortcut_layer.*``), so its ``backbone_ir50_ms1m_*.pth`` and
POSTER++'s ``ir50.pth`` load directly; POSTER++'s re-saved ``new_ir50.pth`` splits the body
into ``body1/body2/body3`` and :meth:`IR50.adapt_state_dict` maps those names back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor, nn


class IRUnit(nn.Module):
    """One improved-residual unit: ``res_layer(x) + shortcut_layer(x)``."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        if cin == cout:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.PReLU(cout),
            nn.Conv2d(cout, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class IR50(nn.Module):
    """IR-50 trunk (no embedding head).

    Args:
        units: units per stage (IR-50: 3, 4, 14, 3).
        widths: channels per stage (64, 128, 256, 512).
        stem_width: channels of the stem (64).

    ``forward_features(x)`` -> last stage map ``(B, widths[-1], H/16, W/16)``;
    ``forward_stages(x)`` -> the output of every stage (POSTER++ uses the first three).
    """

    def __init__(self, units: tuple[int, ...] = (3, 4, 14, 3), widths: tuple[int, ...] = (64, 128, 256, 512),
                 stem_width: int = 64):
        super().__init__()
        if len(units) != len(widths):
            raise ValueError(f"IR50: units {units} and widths {widths} must have the same length")
        self.input_layer = nn.Sequential(nn.Conv2d(3, stem_width, 3, 1, 1, bias=False),
                                         nn.BatchNorm2d(stem_width), nn.PReLU(stem_width))
        body, cin, self.stage_ends = [], stem_width, []
        for n, w in zip(units, widths):
            for i in range(n):
                body.append(IRUnit(cin, w, 2 if i == 0 else 1))
                cin = w
            self.stage_ends.append(len(body))
        self.body = nn.Sequential(*body)
        self.num_features = widths[-1]
        self.stage_channels = tuple(widths)

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        x = self.input_layer(x)
        outs = []
        for i, unit in enumerate(self.body, start=1):
            x = unit(x)
            if i in self.stage_ends:
                outs.append(x)
        return outs

    def forward_features(self, x: Tensor) -> Tensor:
        return self.body(self.input_layer(x))

    def truncate(self, num_stages: int) -> IR50:
        """Keep only the first ``num_stages`` stages (in place; returns ``self``).

        POSTER++ uses three (64 / 128 / 256 channels at 1/2, 1/4, 1/8 of the input, as its
        ``body1``-``body3``); dropping the fourth keeps 14 M unused parameters out of the model.
        Truncate before loading weights: the dropped stage's tensors are then reported as unused.
        """
        if not 1 <= num_stages <= len(self.stage_ends):
            raise ValueError(f"IR50.truncate: num_stages must be in 1..{len(self.stage_ends)}, got {num_stages}")
        self.body = self.body[:self.stage_ends[num_stages - 1]]
        self.stage_ends = self.stage_ends[:num_stages]
        self.stage_channels = self.stage_channels[:num_stages]
        self.num_features = self.stage_channels[-1]
        return self

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_features(x)

    def adapt_state_dict(self, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Map POSTER++'s ``body1.<i>`` / ``body2.<i>`` / ``body3.<i>`` keys to ``body.<j>``."""
        starts = [0, *self.stage_ends[:-1]]
        out = {}
        for k, v in state.items():
            m = re.match(r"^body([1-9])\.(\d+)\.(.*)$", k)
            if m and int(m.group(1)) <= len(starts):
                k = f"body.{starts[int(m.group(1)) - 1] + int(m.group(2))}.{m.group(3)}"
            out[k] = v
        return out


def ir50() -> IR50:
    return IR50()


def ir50_tiny() -> IR50:
    """One unit per stage, widths 16-128, for tests."""
    return IR50(units=(1, 1, 1, 1), widths=(16, 32, 64, 128), stem_width=16)


__all__ = ["IR50", "IRUnit", "ir50", "ir50_tiny"]
