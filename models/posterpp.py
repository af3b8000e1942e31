"""POSTER++ (POSTER V2): landmark-to-image window cross-attention at three scales + a 2-layer ViT.

Mao, Xu, Yin, Chang, Nie, Huang, "POSTER V2: A simpler and stronger facial expression recognition
network" (arXiv 2301.12149); official code Talented-Q/POSTER_V2 (``models/PosterV2_7cls.py``,
``main.py``). One readable forward (:meth:`POSTERpp.classify`), for a 112x112 network input::

    x          = resize(normalise(image), image_size)                  # official: nearest, 112
    L1, L2, L3 = landmark_encoder(x, batch["landmarks"])               # 28x28x64, 14x14x128, 7x7x256
    I1, I2, I3 = conv3x3_s2(IR-50 stage 1, 2, 3 of x)                  # 56->28, 28->14, 14->7
    O_i        = WindowCrossAttentionBlock_i(I_i, L_i)                 # Q: landmarks, K/V: image
    tokens     = [conv3x3_s2 x2 (O1), conv3x3_s2 (O2), conv1x1 (O3)]   # each 7x7x768 -> 147 tokens
    logits     = head(gate(ViT_2(cls + tokens + positions)[cls]))

The pieces are the toolkit's shared ones: the IR-50 of :mod:`models.backbones` (its first three
stages, ``pretrained=PATH`` with a key report), the landmark encoders of :mod:`models.landmarks`
(``heatmap``: dlib points from the data pipeline rendered as heatmaps + a small CNN, the same
landmark stream as LRDif; ``mobilefacenet``: POSTER++'s frozen MobileFaceNet from
``mobilefacenet_path``; ``none``: a CNN on the image), the DIL network of window cross-attention
blocks, the scale tokenizer and the ViT of :mod:`models.blocks`, each with POSTER++'s official
options (raw landmark queries, residual from the normalised image, layer scale 1e-5, drop path
0 / 0.125 / 0.25, squeeze-excitation gate before the head).

Recipe (``main.py`` defaults): SAM (rho 0.05) around Adam, lr 3.5e-5, no weight decay (``--wd
1e-4`` is parsed but never passed to the optimiser), ExponentialLR(0.98) per epoch, 200 epochs,
batch 144, Resize(224) + RandomHorizontalFlip + ImageNet normalisation + RandomErasing(p 0.5,
scale 0.02-0.1) on the normalised tensor (in :meth:`POSTERpp.training_step`, drawn from the step
generator). Every choice is a setting; see ``docs/baselines.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fercore.errors import ConfigError

from . import batch_augment as aug
from .backbones import create_backbone, load_pretrained
from .base import FERModel, Normalize, StepContext, StepOutput
from .blocks.dil_network import DILNetwork, check_windows
from .blocks.vit import ScaleTokenizer, ViTClassifier
from .landmarks import LANDMARK_KINDS, build_landmark_encoder
from .recipe import Recipe
from .registry import register_model

#: Trunks the image stream accepts (the stage layout POSTER++ needs: stage i at 1/2^i):
#: IR-50 variants, and the plain ``cnn-tiny`` of the sample set's tiny preset.
IR_BACKBONES = ("ir50", "ir50-tiny", "cnn-tiny")
RESIZE_MODES = ("nearest", "bilinear")
#: Each cross-attention scale is 1/4, 1/8, 1/16 of the network input (IR-50 stage i is at
#: 1/2^i, then a stride-2 conv).
SCALE_STRIDE = 4

PAPER: dict[str, Any] = {
    "backbone": "ir50", "image_size": 112, "resize_mode": "nearest",
    "dims": (64, 128, 256), "heads": (2, 4, 8), "windows": None, "mlp_ratio": 4.0, "layer_scale": 1e-5,
    "drop_path": (0.0, 0.125, 0.25), "query_norm": False, "query_proj": False, "norm_residual": True,
    "embed_dim": 768, "vit_depth": 2, "vit_heads": 8, "se_gate": True,
    "landmarks": "heatmap", "erase_p": 0.5, "erase_scale": (0.02, 0.1),
}
TINY: dict[str, Any] = {
    **PAPER, "backbone": "cnn-tiny", "image_size": 64, "resize_mode": "bilinear",
    "dims": (16, 32, 64), "heads": (1, 2, 4), "embed_dim": 64, "vit_heads": 2, "landmarks": "none",
    "erase_p": 0.0, "drop_path": 0.0,
    "recipe": {"input_size": 64, "epochs": 3, "batch_size": 32, "optimizer": "adam", "lr": 3e-4},
}


@register_model(
    "posterpp",
    recipe=Recipe(optimizer="sam-adam", lr=3.5e-5, weight_decay=0.0, schedule="exponential",
                  schedule_args={"gamma": 0.98}, epochs=200, batch_size=144, input_size=224, augment=("hflip",),
                  sam_rho=0.05,
                  source="Talented-Q/POSTER_V2 main.py (RAF-DB): SAM(Adam, rho 0.05), lr 3.5e-5, --wd parsed but "
                         "not passed (no weight decay), ExponentialLR(0.98), 200 epochs, batch 144, Resize 224, "
                         "flip, RandomErasing(0.02-0.1) in the model"),
    presets={"paper": PAPER, "tiny": TINY},
    description="POSTER++: IR-50 + landmark window cross-attention at three scales, 2-layer ViT",
    paper="Mao et al., POSTER V2: A simpler and stronger facial expression recognition network, arXiv 2301.12149")
class POSTERpp(FERModel):
    """POSTER++ (see the module doc). All arguments are settings of ``create_model("posterpp", ...)``.

    Args:
        backbone: ``"ir50"``, ``"ir50-tiny"`` or ``"cnn-tiny"`` (the tiny preset's plain trunk,
            same stage layout); only its first three stages are kept.
        pretrained: IR-50 weights file (MS-Celeb-1M ``ir50.pth``, POSTER++'s ``new_ir50.pth``,
            face.evoLVe ``backbone_ir50_ms1m_*.pth``); the load report is printed and kept as
            ``model.backbone.pretrained_report``. ``None``: from scratch.
        image_size: side the network works at (official 112; a multiple of 16); inputs of
            another size are resized with ``resize_mode`` (official ``"nearest"``).
        dims: channels of the three cross-attention scales (official 64, 128, 256).
        heads, windows, mlp_ratio, layer_scale, drop_path: the cross-attention blocks (windows
            ``None`` = one window per map, the official 28, 14, 7); ``drop_path`` one rate or
            one per scale.
        query_norm, query_proj, norm_residual: block options (official: False, False, True;
            see :class:`models.blocks.window_cross_attention.WindowCrossAttentionBlock`).
        embed_dim, vit_depth, vit_heads, se_gate: the token transformer (official 768, 2, 8,
            True).
        landmarks: ``"heatmap"`` | ``"mobilefacenet"`` | ``"none"`` (see :mod:`models.landmarks`);
            heatmap_sigma, heatmap_groups: the heatmaps; mobilefacenet_path: the MobileFaceNet
            checkpoint for ``landmarks="mobilefacenet"`` (frozen; the official adapters:
            identity where channels match, a 3x3 conv 512 -> ``dims[2]``).
        erase_p, erase_scale: RandomErasing after normalisation (0 disables).
    """

    def __init__(self, num_classes: int = 7, *, backbone: str = "ir50", pretrained: str | None = None,
                 image_size: int = 112, resize_mode: str = "nearest",
                 dims: Sequence[int] = (64, 128, 256), heads: Sequence[int] = (2, 4, 8),
                 windows: Sequence[int] | None = None, mlp_ratio: float = 4.0, layer_scale: float | None = 1e-5,
                 drop_path: float | Sequence[float] = (0.0, 0.125, 0.25), query_norm: bool = False,
                 query_proj: bool = False, norm_residual: bool = True,
                 embed_dim: int = 768, vit_depth: int = 2, vit_heads: int = 8, se_gate: bool = True,
                 landmarks: str = "heatmap", heatmap_sigma: float = 1.5, heatmap_groups: str = "parts",
                 mobilefacenet_path: str | None = None,
                 erase_p: float = 0.5, erase_scale: tuple[float, float] = (0.02, 0.1)):
        super().__init__(num_classes)
        dims, heads = tuple(int(d) for d in dims), tuple(int(h) for h in heads)
        self._check(image_size, resize_mode, dims, heads, embed_dim, vit_heads, landmarks, mobilefacenet_path,
                    erase_p)
        self.image_size, self.resize_mode = image_size, resize_mode
        self.sizes = [image_size // (SCALE_STRIDE * 2 ** i) for i in range(3)]
        windows = check_windows(self.sizes, windows, f" at image_size {image_size}")
        self.erase_p, self.erase_scale = erase_p, tuple(erase_scale)

        self.norm = Normalize()
        # image stream: IR-50 stages 1-3 (loaded after truncation, so the report is about them)
        self.backbone = create_backbone(backbone, None, verbose=False, choices=IR_BACKBONES).truncate(3)
        self.backbone.pretrained_report = load_pretrained(self.backbone, pretrained) if pretrained else None
        self.image_convs = nn.ModuleList(nn.Conv2d(c, d, 3, stride=2, padding=1)
                                         for c, d in zip(self.backbone.stage_channels, dims))
        # landmark stream, at the same three scales
        self.landmark_encoder = build_landmark_encoder(
            landmarks, dims, image_size, SCALE_STRIDE, heatmap_sigma=heatmap_sigma, heatmap_groups=heatmap_groups,
            mobilefacenet_path=mobilefacenet_path, mobilefacenet_adapter="posterpp")
        self.requires = frozenset({"landmarks"}) if self.landmark_encoder.needs_landmarks else frozenset()
        # two-stream window cross-attention, fusion to tokens, ViT
        self.cross = DILNetwork(dims, heads, windows, mlp_ratio, layer_scale, drop_path, query_norm=query_norm,
                                query_proj=query_proj, norm_residual=norm_residual)
        self.tokenizer = ScaleTokenizer(dims, embed_dim)
        self.vit = ViTClassifier(3 * self.sizes[2] ** 2, embed_dim, vit_depth, vit_heads, num_classes, mlp_ratio,
                                 se_gate=se_gate)

    @staticmethod
    def _check(image_size, resize_mode, dims, heads, embed_dim, vit_heads, landmarks, mobilefacenet_path,
               erase_p) -> None:
        if not isinstance(image_size, int) or image_size < 16 or image_size % 16:
            raise ConfigError(f"must be a multiple of 16 (the 7x7 scale is 1/16 of it), got {image_size!r}",
                              flag="image_size")
        if resize_mode not in RESIZE_MODES:
            raise ConfigError(f"choose one of {', '.join(RESIZE_MODES)}, got {resize_mode!r}", flag="resize_mode")
        if len(dims) != 3 or len(heads) != 3:
            raise ConfigError(f"dims and heads need three entries (one per scale), got {dims}, {heads}",
                              flag="dims")
        bad = [(d, h) for d, h in zip(dims, heads) if h < 1 or d % h]
        if bad:
            raise ConfigError(f"every scale's channels must divide by its heads; {bad} do not", flag="heads")
        if vit_heads < 1 or embed_dim % vit_heads:
            raise ConfigError(f"embed_dim {embed_dim} must divide by vit_heads {vit_heads}", flag="vit_heads")
        if landmarks not in LANDMARK_KINDS:
            raise ConfigError(f"choose one of {', '.join(LANDMARK_KINDS)}, got {landmarks!r}", flag="landmarks")
        if mobilefacenet_path and landmarks != "mobilefacenet":
            raise ConfigError(f"mobilefacenet_path is only read with landmarks='mobilefacenet' (got "
                              f"landmarks={landmarks!r}); set both, or drop the path", flag="mobilefacenet_path")
        if not 0 <= erase_p <= 1:
            raise ConfigError(f"must be in [0, 1], got {erase_p}", flag="erase_p")

    # -- pieces ------------------------------------------------------------------------------
    def _resize(self, x: Tensor) -> Tensor:
        """``(B, 3, H, W)`` -> ``(B, 3, image_size, image_size)`` (identity at that size)."""
        if x.shape[-2:] == (self.image_size, self.image_size):
            return x
        size = (self.image_size, self.image_size)
        if self.resize_mode == "nearest":
            return F.interpolate(x, size=size, mode="nearest")
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)

    def _images(self, batch: dict[str, Any]) -> Tensor:
        img = batch["image"]
        if img.ndim != 4 or img.shape[1] != 3:
            raise ConfigError(f"batch['image'] must be (B, 3, H, W) RGB in [0, 1], got {tuple(img.shape)}",
                              flag="image")
        return img.float()

    def image_features(self, x: Tensor) -> list[Tensor]:
        """Normalised ``(B, 3, S, S)`` -> three maps ``(B, dims[i], S/4/2^i, ...)``: IR-50
        stages 1-3, each through its stride-2 3x3 conv."""
        return [conv(f) for conv, f in zip(self.image_convs, self.backbone.forward_stages(x))]

    def classify(self, x: Tensor, landmarks: Tensor | None,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Normalised ``(B, 3, S, S)`` at ``image_size`` (+ ``(B, 68, 2)`` landmarks for
        ``landmarks="heatmap"``) -> ``(logits (B, K), gated class-token feature (B, embed_dim))``."""
        queries = self.landmark_encoder(x, landmarks)
        outs = self.cross(self.image_features(x), queries, generator)
        return self.vit(self.tokenizer(outs))

    # -- the interface -----------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], ctx: StepContext) -> StepOutput:
        x, y = self.norm(self._images(batch)), batch["label"]
        # after normalisation, at the input size (official: at 224, before the resize)
        x = aug.random_erase(x, ctx.generator, self.erase_p, self.erase_scale)
        logits, feat = self.classify(self._resize(x), batch.get("landmarks"), ctx.generator)
        return StepOutput(logits, {"ce": F.cross_entropy(logits, y.to(logits.device))}, feat)

    def predict(self, batch: dict[str, Any], ctx: StepContext | None = None) -> StepOutput:
        x = self._resize(self.norm(self._images(batch)))
        logits, feat = self.classify(x, batch.get("landmarks"))
        return StepOutput(logits, {}, feat)
