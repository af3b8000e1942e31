"""A small convolutional network that returns feature maps at three scales.

Used wherever LRDif / LLDif need a cheap multi-scale encoder: the landmark-heatmap encoder,
the image-only landmark fallback and the optional separate image stream of the DIL network.
Scale ``i`` has ``dims[i]`` channels and side ``input_side / (stem_stride * 2**i)``.
"""

from __future__ import annotations

from torch import Tensor, nn


def check_stride(stride: int, flag: str) -> int:
    """``stride`` if it is a power of two >= 1, else a ``ConfigError`` naming ``flag``."""
    from fercore.errors import ConfigError

    if not isinstance(stride, int) or stride < 1 or stride & (stride - 1):
        raise ConfigError(f"must be a power of two (1, 2, 4, 8, ...), got {stride!r}", flag=flag)
    return stride


def conv_bn_act(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution, batch norm, GELU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.GELU())


class ConvStage(nn.Module):
    """Two 3x3 conv-BN-ReLU layers and a 2x2 max-pool (the reference CNN's and ``cnn-tiny``'s
    stage): ``(B, cin, H, W)`` -> ``(B, cout, H / 2, W / 2)``."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.MaxPool2d(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class ConvPyramid(nn.Module):
    """Conv-BN-GELU stages giving three feature maps, each half the size of the previous.

    Args:
        in_ch: input channels (3 for images, the number of heatmaps for landmarks).
        dims: channels of the three outputs.
        stem_stride: down-sampling of the first output (a power of two).
    """

    def __init__(self, in_ch: int, dims: tuple[int, int, int], stem_stride: int = 4):
        super().__init__()
        n_down = check_stride(stem_stride, "stem_stride").bit_length() - 1
        d1, d2, d3 = dims
        stem = [conv_bn_act(in_ch if i == 0 else d1, d1, 2) for i in range(n_down)] or [conv_bn_act(in_ch, d1)]
        self.stage1 = nn.Sequential(*stem, conv_bn_act(d1, d1))
        self.stage2 = nn.Sequential(conv_bn_act(d1, d2, 2), conv_bn_act(d2, d2))
        self.stage3 = nn.Sequential(conv_bn_act(d2, d3, 2), conv_bn_act(d3, d3))

    def forward(self, x: Tensor) -> list[Tensor]:
        """``(B, in_ch, S, S)`` -> three maps ``(B, dims[i], S/(stem_stride*2^i), ...)``."""
        o1 = self.stage1(x)
        o2 = self.stage2(o1)
        return [o1, o2, self.stage3(o2)]
