"""MA-Net: Multi-scale and local Attention Network (Zhao, Liu & Wang, IEEE TIP 2021).

Mechanism (official code ``zengqunzhao/MA-Net``, ``model/manet.py``, ``model/attention.py``,
``main.py``): a ResNet-18 up to ``layer2`` (128 x 28 x 28 at 224) feeds two branches.

1. **Local attention branch.** The map is cut into a 2 x 2 grid of patches (14 x 14); each
   patch has its own ``layer3`` (stride 2) and ``layer4`` (stride 1) made of *attention
   blocks* (a basic residual block with CBAM — channel then spatial attention — applied before
   the residual addition). The four 7 x 7 outputs are put back together (14 x 14), pooled and
   classified by ``fc_1``.
2. **Global multi-scale branch.** ``layer3`` and ``layer4`` (both stride 2) of *multi-scale
   blocks*: after the first 3x3 conv the channels split into four groups processed by two
   hierarchical chains of 3x3 convs (group 1 -> 4 and group 4 -> 1, each adding the previous
   output to the next group, Res2Net-style); the two chains are summed. Pooled, ``fc_2``.
3. **Two-loss mix.** ``L = beta * CE(o_1) + (1 - beta) * CE(o_2)``, beta = 0.6; the prediction is
   ``beta * o_1 + (1 - beta) * o_2``.

Recipe (official): SGD lr 0.01, momentum 0.9, weight decay 1e-4, StepLR(15, 0.1), 100 epochs,
batch 128, ``RandomResizedCrop(224)`` + ``RandomHorizontalFlip`` (generic ``rrc``, ``hflip``),
**no normalisation** (``ToTensor`` only; ``mean = 0, std = 1``). The official model starts from
a whole MA-Net pretrained on MS-Celeb-1M (``pretrained=PATH`` loads such a checkpoint into the
whole network: the parameter names here follow the official ones, ``conv1``, ``layer1``,
``layer3_1_p1`` ... ``layer4_2``, ``fc_1``/``fc_2`` with the classifiers skipped on a shape
mismatch).

Choices: CBAM is written here (not timm's ``CbamModule``) because the official one has MLP
biases and pools ``[max, mean]``: with the same layout its checkpoint loads. The patch grid
splits at half the height and width of the map (the official slices 0:14 / 14:28 at 224).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .backbones import create_backbone, load_pretrained
from .base import FERModel, Normalize, StepContext, StepOutput
from .recipe import Recipe
from .registry import register_model


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


class ChannelGate(nn.Module):
    """CBAM channel attention: a shared MLP on the average- and max-pooled vectors, summed,
    sigmoid, scales the channels."""

    def __init__(self, c: int, reduction: int = 16):
        super().__init__()
        r = max(1, c // reduction)
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(c, r), nn.ReLU(), nn.Linear(r, c))

    def forward(self, x: Tensor) -> Tensor:
        att = self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(F.adaptive_max_pool2d(x, 1))
        return x * torch.sigmoid(att)[:, :, None, None]


class SpatialGate(nn.Module):
    """CBAM spatial attention: [max, mean] over channels -> 7x7 conv -> BN -> sigmoid map."""

    def __init__(self):
        super().__init__()
        self.spatial = nn.Sequential()
        self.spatial.add_module("conv", nn.Conv2d(2, 1, 7, padding=3, bias=False))
        self.spatial.add_module("bn", nn.BatchNorm2d(1, eps=1e-5, momentum=0.01))

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.spatial(pooled))


class CBAM(nn.Module):
    """Channel gate then spatial gate (Woo et al., ECCV 2018)."""

    def __init__(self, c: int, reduction: int = 16):
        super().__init__()
        self.ChannelGate = ChannelGate(c, reduction)  # official attribute names (checkpoint keys)
        self.SpatialGate = SpatialGate()

    def forward(self, x: Tensor) -> Tensor:
        return self.SpatialGate(self.ChannelGate(x))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class AttentionBlock(nn.Module):
    """Basic residual block with CBAM on the residual branch (local branch of MA-Net)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, cout, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = conv3x3(cout, cout), nn.BatchNorm2d(cout)
        self.cbam = CBAM(cout)
        self.downsample = _shortcut(cin, cout, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.cbam(self.bn2(self.conv2(out)))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class MultiScaleBlock(nn.Module):
    """Residual block whose second stage splits the channels into 4 groups processed by two
    hierarchical 3x3 chains (groups 1->4 and 4->1), summed (global branch of MA-Net)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        if cout % 4:
            raise ValueError(f"MultiScaleBlock needs channels divisible by 4, got {cout}")
        w = cout // 4
        self.width = w
        self.conv1, self.bn1 = conv3x3(cin, cout, stride), nn.BatchNorm2d(cout)
        for chain in (1, 2):
            for g in range(1, 5):
                setattr(self, f"conv{chain}_2_{g}", conv3x3(w, w))
                setattr(self, f"bn{chain}_2_{g}", nn.BatchNorm2d(w))
        self.downsample = _shortcut(cin, cout, stride)

    def _chain(self, chain: int, groups: list[Tensor], order: list[int]) -> list[Tensor]:
        outs: dict[int, Tensor] = {}
        prev = None
        for g in order:
            inp = groups[g - 1] if prev is None else F.relu(prev) + groups[g - 1]
            prev = getattr(self, f"bn{chain}_2_{g}")(getattr(self, f"conv{chain}_2_{g}")(inp))
            outs[g] = prev
        return [outs[g] for g in (1, 2, 3, 4)]

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        groups = list(torch.split(out, self.width, 1))
        forward_chain = torch.cat(self._chain(1, groups, [1, 2, 3, 4]), 1)
        backward_chain = torch.cat(self._chain(2, groups, [4, 3, 2, 1]), 1)
        out = forward_chain + backward_chain
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


def make_layer(block: type[nn.Module], cin: int, cout: int, blocks: int, stride: int) -> nn.Sequential:
    return nn.Sequential(block(cin, cout, stride), *[block(cout, cout, 1) for _ in range(blocks - 1)])


def split_quadrants(x: Tensor) -> list[Tensor]:
    """(B, C, H, W) -> the four patches [top-left, top-right, bottom-left, bottom-right]."""
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    return [x[..., :h, :w], x[..., :h, w:2 * w], x[..., h:2 * h, :w], x[..., h:2 * h, w:2 * w]]


def join_quadrants(p: list[Tensor]) -> Tensor:
    """Inverse of :func:`split_quadrants` (patches of equal size)."""
    return torch.cat([torch.cat([p[0], p[1]], 3), torch.cat([p[2], p[3]], 3)], 2)


@register_model(
    "manet",
    recipe=Recipe(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4, schedule="step",
                  schedule_args={"step_size": 15, "gamma": 0.1}, epochs=100, batch_size=128, input_size=224,
                  augment=("rrc", "hflip"), source="zengqunzhao/MA-Net main.py, model/manet.py"),
    presets={"paper": {"backbone": "resnet18"},
             # tiny: Adam 1e-3 instead of the official SGD 0.01 (at chance within the tiny budget;
             # MA-Net's branches are ResNet stages, so the trunk stays resnet18-tiny)
             "tiny": {"backbone": "resnet18-tiny",
                      "recipe": {"epochs": 3, "input_size": 64, "batch_size": 32, "optimizer": "adam", "lr": 1e-3}}},
    description="MA-Net: global multi-scale branch + local attention branch, 0.6/0.4 two-loss mix",
    paper="Zhao, Liu & Wang, Learning Deep Global Multi-scale and Local Attention Features for Facial "
          "Expression Recognition in the Wild, IEEE TIP 2021")
class MANet(FERModel):
    """Settings: ``backbone`` ("resnet18" | "resnet18-tiny": the stem, ``layer1`` and ``layer2``
    come from it; the branch widths follow its stages), ``pretrained`` (a whole-MA-Net
    checkpoint), ``beta`` (0.6), ``blocks`` (blocks per branch stage; 2, tiny 1),
    ``mean``/``std`` (normalisation; the official (0, 0, 0)/(1, 1, 1))."""

    def __init__(self, num_classes: int = 7, backbone: str = "resnet18", pretrained: str | None = None,
                 beta: float = 0.6, blocks: int | None = None, mean: tuple[float, ...] = (0.0, 0.0, 0.0),
                 std: tuple[float, ...] = (1.0, 1.0, 1.0)):
        super().__init__(num_classes)
        if not 0 <= beta <= 1:
            raise ValueError(f"manet: beta must be in [0, 1], got {beta}")
        self.beta = beta
        self.norm = Normalize(mean, std)
        trunk = create_backbone(backbone, choices=("resnet18", "resnet18-tiny"))
        c2 = trunk.layer2[-1].conv2.out_channels
        c3, c4 = trunk.layer3[-1].conv2.out_channels, trunk.layer4[-1].conv2.out_channels
        n = blocks or len(trunk.layer3)
        # stem + layer1 + layer2 of the ResNet-18 (official names, so MS-Celeb MA-Net keys load)
        self.conv1, self.bn1, self.act1, self.maxpool = trunk.conv1, trunk.bn1, trunk.act1, trunk.maxpool
        self.layer1, self.layer2 = trunk.layer1, trunk.layer2
        for p in range(1, 5):
            setattr(self, f"layer3_1_p{p}", make_layer(AttentionBlock, c2, c3, n, 2))
            setattr(self, f"layer4_1_p{p}", make_layer(AttentionBlock, c3, c4, n, 1))
        self.layer3_2 = make_layer(MultiScaleBlock, c2, c3, n, 2)
        self.layer4_2 = make_layer(MultiScaleBlock, c3, c4, n, 2)
        self.fc_1 = nn.Linear(c4, num_classes)
        self.fc_2 = nn.Linear(c4, num_classes)
        for name, m in self.named_modules():
            if name.startswith(("layer3_", "layer4_")):
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
        self.pretrained_report = load_pretrained(self, pretrained) if pretrained else None

    def branches(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Normalised images -> (local logits o_1, global logits o_2, features)."""
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        patches = [getattr(self, f"layer4_1_p{i}")(getattr(self, f"layer3_1_p{i}")(p))
                   for i, p in enumerate(split_quadrants(x), start=1)]
        local = join_quadrants(patches).mean((2, 3))
        glob = self.layer4_2(self.layer3_2(x)).mean((2, 3))
        return self.fc_1(local), self.fc_2(glob), torch.cat([local, glob], 1)

    def training_step(self, batch: dict[str, Any], ctx: StepContext) -> StepOutput:
        y = batch["label"]
        o1, o2, f = self.branches(self.norm(batch["image"]))
        losses = {"ce_local": self.beta * F.cross_entropy(o1, y),
                  "ce_global": (1 - self.beta) * F.cross_entropy(o2, y)}
        return StepOutput(self.beta * o1 + (1 - self.beta) * o2, losses, f)

    def predict(self, batch: dict[str, Any], ctx: StepContext | None = None) -> StepOutput:
        o1, o2, f = self.branches(self.norm(batch["image"]))
        return StepOutput(self.beta * o1 + (1 - self.beta) * o2, {}, f, {"local": o1, "global": o2})
