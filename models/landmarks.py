"""Landmark features on the model side: heatmaps, a MobileFaceNet, or the image alone.

The DIL network's queries come from facial-landmark features at three scales. Three kinds
(the ``landmarks`` setting of LRDif / LLDif / POSTER++):

* ``"heatmap"`` -- the batch's 68 landmarks (``batch["landmarks"]``, ``(B, 68, 2)``, x/y in
  [0, 1], NaN where no face was found; detected once per image with dlib and cached by
  :func:`fercore.landmarks.landmarks_for`) are rendered as Gaussian heatmaps
  (:func:`render_heatmaps`) and encoded by a small CNN (:class:`HeatmapLandmarkEncoder`).
  Needs no weights; the model then ``requires`` ``"landmarks"``.
* ``"mobilefacenet"`` -- POSTER++'s frozen MobileFaceNet landmark network on the image; its
  weights load from a local checkpoint (``mobilefacenet_path``), reporting matched and missing
  keys (:class:`MobileFaceNetLandmarkEncoder`).
* ``"none"`` -- features from the image alone (:class:`ImageLandmarkFallback`), for when no
  landmarks and no checkpoint are available.

Every encoder has the same call: ``encoder(image, landmarks)`` -> three maps with ``dims[i]``
channels and sides ``image_size / (stem_stride * 2**i)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fercore.errors import ConfigError, DataError
from fercore.safeload import torch_load

from .blocks.conv_pyramid import ConvPyramid

LANDMARK_KINDS = ("heatmap", "mobilefacenet", "none")
HEATMAP_GROUPS = ("parts", "points", "single")

#: The iBUG 68-point scheme by facial part (the subject's right = image left in a frontal view).
FACE_PARTS_68: dict[str, tuple[int, ...]] = {
    "jaw": tuple(range(0, 17)),
    "right_brow": tuple(range(17, 22)),
    "left_brow": tuple(range(22, 27)),
    "nose_bridge": tuple(range(27, 31)),
    "nostrils": tuple(range(31, 36)),
    "right_eye": tuple(range(36, 42)),
    "left_eye": tuple(range(42, 48)),
    "outer_lips": tuple(range(48, 60)),
    "inner_lips": tuple(range(60, 68)),
}


def heatmap_groups(kind: str, num_points: int = 68) -> list[tuple[int, ...]]:
    """Point indices of each heatmap channel: one per facial part, per point, or one in all."""
    if kind == "parts":
        if num_points != 68:
            raise ConfigError(f"'parts' needs 68 points, got {num_points}", flag="heatmap_groups")
        return list(FACE_PARTS_68.values())
    if kind == "points":
        return [(i,) for i in range(num_points)]
    if kind == "single":
        return [tuple(range(num_points))]
    raise ConfigError(f"unknown grouping {kind!r}; choose one of {', '.join(HEATMAP_GROUPS)}",
                      flag="heatmap_groups")


def render_heatmaps(points: Tensor, size: int, sigma: float = 1.5,
                    groups: Sequence[Sequence[int]] | None = None) -> Tensor:
    """Gaussian heatmaps of landmarks.

    Args:
        points: ``(B, K, 2)`` landmark ``(x, y)`` in [0, 1] of the image; NaN points (no face)
            draw nothing.
        size: heatmap side in pixels; point ``x`` lies at pixel coordinate ``x * size - 0.5``
            (pixel centres at integers).
        sigma: Gaussian standard deviation in heatmap pixels (> 0).
        groups: point indices per output channel (the channel is the maximum over its points);
            ``None`` = one channel per point.

    Returns:
        ``(B, G, size, size)`` in [0, 1]; a channel peaks at 1 on its points.
    """
    if points.ndim != 3 or points.shape[-1] != 2:
        raise ValueError(f"render_heatmaps: points must be (B, K, 2), got {tuple(points.shape)}")
    if sigma <= 0:
        raise ConfigError(f"must be > 0, got {sigma}", flag="heatmap_sigma")
    valid = torch.isfinite(points).all(-1, keepdim=True)                    # (B, K, 1)
    p = torch.where(valid, points, torch.zeros_like(points)) * size - 0.5
    grid = torch.arange(size, device=points.device, dtype=points.dtype)
    gx = torch.exp(-((grid - p[..., :1]) ** 2) / (2 * sigma ** 2)) * valid    # (B, K, size)
    gy = torch.exp(-((grid - p[..., 1:]) ** 2) / (2 * sigma ** 2))
    maps = gy[..., :, None] * gx[..., None, :]                              # (B, K, size, size)
    if groups is None:
        return maps
    return torch.stack([maps[:, list(g)].amax(1) for g in groups], dim=1)


class HeatmapLandmarkEncoder(nn.Module):
    """Landmark heatmaps (rendered at twice the first feature scale) -> a three-scale CNN."""

    needs_landmarks = True

    def __init__(self, dims: Sequence[int], image_size: int, stem_stride: int, sigma: float = 1.5,
                 groups: str = "parts"):
        super().__init__()
        self.groups = heatmap_groups(groups)
        self.sigma = sigma
        pyramid_stride = 2 if stem_stride >= 2 else 1
        self.size = image_size // stem_stride * pyramid_stride
        self.cnn = ConvPyramid(len(self.groups), tuple(dims), pyramid_stride)

    def forward(self, image: Tensor, landmarks: Tensor | None) -> list[Tensor]:
        if landmarks is None:
            raise ConfigError("landmarks='heatmap' needs batch['landmarks'] (B, 68, 2) from the data "
                              "pipeline (dlib, fercore.landmarks); use landmarks='none' without them",
                              flag="landmarks")
        if landmarks.ndim != 3 or landmarks.shape[0] != image.shape[0] or landmarks.shape[-1] != 2:
            raise ConfigError(f"batch['landmarks'] must be (B, 68, 2) with B={image.shape[0]}, got "
                              f"{tuple(landmarks.shape)}", flag="landmarks")
        heat = render_heatmaps(landmarks.to(image.device, image.dtype), self.size, self.sigma, self.groups)
        return self.cnn(heat)


class ImageLandmarkFallback(nn.Module):
    """``landmarks="none"``: the query features come from a small CNN on the image itself."""

    needs_landmarks = False

    def __init__(self, dims: Sequence[int], stem_stride: int):
        super().__init__()
        self.cnn = ConvPyramid(3, tuple(dims), stem_stride)

    def forward(self, image: Tensor, landmarks: Tensor | None = None) -> list[Tensor]:
        return self.cnn(image)


# -- MobileFaceNet ------------------------------------------------------------------------------
# Attribute names follow the public MobileFaceNet landmark checkpoints (POSTER++ uses one), so
# their state dicts load key for key.

class ConvBNPReLU(nn.Module):
    """Conv (no bias) -> BatchNorm -> PReLU."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, padding: int = 0, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.prelu = nn.PReLU(cout)

    def forward(self, x: Tensor) -> Tensor:
        return self.prelu(self.bn(self.conv(x)))


class ConvBN(nn.Module):
    """Conv (no bias) -> BatchNorm (a linear bottleneck projection)."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, padding: int = 0, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


class DepthwiseBottleneck(nn.Module):
    """1x1 expand to ``hidden`` -> 3x3 depth-wise (``stride``) -> 1x1 linear projection."""

    def __init__(self, cin: int, cout: int, hidden: int, stride: int = 1, residual: bool = False):
        super().__init__()
        self.conv = ConvBNPReLU(cin, hidden)
        self.conv_dw = ConvBNPReLU(hidden, hidden, 3, stride, 1, groups=hidden)
        self.project = ConvBN(hidden, cout)
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        return x + y if self.residual else y


class DepthwiseStack(nn.Module):
    """``n`` residual depth-wise bottlenecks at constant width."""

    def __init__(self, dim: int, n: int, hidden: int):
        super().__init__()
        self.model = nn.Sequential(*[DepthwiseBottleneck(dim, dim, hidden, residual=True) for _ in range(n)])

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class GDCHead(nn.Module):
    """Global depth-wise 7x7 conv -> linear -> BatchNorm1d: the 136 landmark coordinates."""

    def __init__(self, out_dim: int = 136):
        super().__init__()
        self.conv_6_dw = ConvBN(512, 512, 7, groups=512)
        self.linear = nn.Linear(512, out_dim, bias=False)
        self.bn = nn.BatchNorm1d(out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.linear(self.conv_6_dw(x).flatten(1)))


class MobileFaceNet(nn.Module):
    """MobileFaceNet (Chen et al. 2018) as a 68-point landmark network on 112x112 faces.

    :meth:`forward` returns the three feature maps POSTER++ uses: ``(B, 64, 28, 28)``,
    ``(B, 128, 14, 14)`` and ``(B, 512, 7, 7)``; :meth:`landmarks` the 136 coordinates.
    """

    def __init__(self, out_dim: int = 136):
        super().__init__()
        self.conv1 = ConvBNPReLU(3, 64, 3, 2, 1)
        self.conv2_dw = ConvBNPReLU(64, 64, 3, 1, 1, groups=64)
        self.conv_23 = DepthwiseBottleneck(64, 64, 128, stride=2)
        self.conv_3 = DepthwiseStack(64, 4, 128)
        self.conv_34 = DepthwiseBottleneck(64, 128, 256, stride=2)
        self.conv_4 = DepthwiseStack(128, 6, 256)
        self.conv_45 = DepthwiseBottleneck(128, 128, 512, stride=2)
        self.conv_5 = DepthwiseStack(128, 2, 256)
        self.conv_6_sep = ConvBNPReLU(128, 512)
        self.output_layer = GDCHead(out_dim)

    def forward(self, x: Tensor) -> list[Tensor]:
        """``(B, 3, 112, 112)`` -> ``[(B, 64, 28, 28), (B, 128, 14, 14), (B, 512, 7, 7)]``."""
        f3 = self.conv_3(self.conv_23(self.conv2_dw(self.conv1(x))))
        f4 = self.conv_4(self.conv_34(f3))
        return [f3, f4, self.conv_6_sep(self.conv_5(self.conv_45(f4)))]

    def landmarks(self, x: Tensor) -> Tensor:
        return self.output_layer(self.forward(x)[2])


@dataclass
class LoadReport:
    """Which keys of a checkpoint went where."""

    path: str
    matched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)      # model keys the checkpoint lacks
    unexpected: list[str] = field(default_factory=list)   # checkpoint keys the model lacks (or wrong shape)

    def summary(self) -> str:
        return (f"{self.path}: {len(self.matched)} keys matched, {len(self.missing)} missing, "
                f"{len(self.unexpected)} unexpected")


def load_state_from_path(model: nn.Module, path: str | Path, flag: str) -> LoadReport:
    """Load the matching tensors of a checkpoint file into ``model`` (non-strict).

    Accepts a bare state dict or one under ``"state_dict"`` / ``"model"``; strips
    ``"module."`` prefixes (DataParallel). Raises a :class:`ConfigError` naming ``flag`` when
    the file is missing, unreadable or matches no key.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"checkpoint not found: {path}", flag=flag)
    try:
        ckpt = torch_load(path, what="checkpoint")
    except DataError as exc:
        raise ConfigError(str(exc), flag=flag) from None
    state = ckpt
    if isinstance(ckpt, dict):
        for key in ("state_dict", "model"):
            if isinstance(ckpt.get(key), dict):
                state = ckpt[key]
                break
    if not isinstance(state, dict):
        raise ConfigError(f"{path} holds no state dict", flag=flag)
    own = model.state_dict()
    report = LoadReport(str(path))
    new_state = {}
    for k, v in state.items():
        k = k[7:] if k.startswith("module.") else k
        if k in own and torch.is_tensor(v) and own[k].shape == v.shape:
            new_state[k] = v
            report.matched.append(k)
        else:
            report.unexpected.append(k)
    report.missing = [k for k in own if k not in new_state]
    if not report.matched:
        raise ConfigError(f"no key of {path} matches the model (0 of {len(own)}; first keys: "
                          f"{list(state)[:3]})", flag=flag)
    model.load_state_dict(new_state, strict=False)
    return report


MOBILEFACENET_ADAPTERS = ("1x1", "posterpp")


def _adapter(cin: int, cout: int, kind: str) -> nn.Module:
    """``"1x1"``: a 1x1 conv; ``"posterpp"``: the identity where the channels already match,
    else a 3x3 conv (POSTER++'s ``last_face_conv``, 512 -> 256)."""
    if kind == "1x1":
        return nn.Conv2d(cin, cout, 1)
    return nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 3, padding=1)


class MobileFaceNetLandmarkEncoder(nn.Module):
    """A frozen MobileFaceNet (weights from ``checkpoint``) + trainable adapters to ``dims``.

    The image is resized to 112x112 (as POSTER++); the three maps are adapted to ``dims``
    channels (``adapter="1x1"``: a 1x1 conv each; ``"posterpp"``: as the official POSTER++,
    unchanged where the channels match and a 3x3 conv otherwise) and resized to ``sizes``.
    The network stays in eval mode and receives no gradient.
    """

    needs_landmarks = False

    def __init__(self, dims: Sequence[int], sizes: Sequence[int], checkpoint: str | Path | None,
                 adapter: str = "1x1"):
        super().__init__()
        if not checkpoint:
            raise ConfigError("landmarks='mobilefacenet' needs a checkpoint file: pass "
                              "mobilefacenet_path=/path/to/mobilefacenet_model_best.pth.tar "
                              "(or use landmarks='heatmap' / 'none')", flag="mobilefacenet_path")
        self.net = MobileFaceNet()
        self.load_report = load_state_from_path(self.net, checkpoint, "mobilefacenet_path")
        if self.load_report.missing:
            warnings.warn(f"MobileFaceNet {self.load_report.summary()}; missing keys keep their "
                          f"random initialisation", stacklevel=2)
        self.net.requires_grad_(False)
        self.net.eval()
        if adapter not in MOBILEFACENET_ADAPTERS:
            raise ConfigError(f"unknown adapter {adapter!r}; choose one of {', '.join(MOBILEFACENET_ADAPTERS)}",
                              flag="mobilefacenet_adapter")
        self.sizes = tuple(sizes)
        self.adapters = nn.ModuleList(_adapter(c, d, adapter) for c, d in zip((64, 128, 512), dims))

    def train(self, mode: bool = True):
        super().train(mode)
        self.net.eval()
        return self

    def requires_grad_(self, requires_grad: bool = True):
        """The adapters follow ``requires_grad``; the MobileFaceNet stays frozen."""
        super().requires_grad_(requires_grad)
        self.net.requires_grad_(False)
        return self

    def forward(self, image: Tensor, landmarks: Tensor | None = None) -> list[Tensor]:
        with torch.no_grad():
            feats = self.net(F.interpolate(image, size=(112, 112), mode="bilinear", align_corners=False))
        out = []
        for f, adapt, s in zip(feats, self.adapters, self.sizes):
            f = adapt(f)
            out.append(f if f.shape[-1] == s else F.interpolate(f, size=(s, s), mode="bilinear",
                                                                 align_corners=False))
        return out


def build_landmark_encoder(kind: str, dims: Sequence[int], image_size: int, stem_stride: int, *,
                           heatmap_sigma: float = 1.5, heatmap_groups: str = "parts",
                           mobilefacenet_path: str | Path | None = None,
                           mobilefacenet_adapter: str = "1x1") -> nn.Module:
    """The landmark encoder for the ``landmarks`` setting (see the module doc)."""
    if kind == "heatmap":
        return HeatmapLandmarkEncoder(dims, image_size, stem_stride, heatmap_sigma, heatmap_groups)
    if kind == "mobilefacenet":
        sizes = [image_size // (stem_stride * 2 ** i) for i in range(3)]
        return MobileFaceNetLandmarkEncoder(dims, sizes, mobilefacenet_path, mobilefacenet_adapter)
    if kind == "none":
        return ImageLandmarkFallback(dims, stem_stride)
    raise ConfigError(f"unknown landmarks {kind!r}; choose one of {', '.join(LANDMARK_KINDS)}", flag="landmarks")
