"""LRDif: diffusion on an emotion prior for FER on under-display-camera images.

Wang, Zhang, Sankaranarayana, "LRDif: Diffusion Models for Under-Display Camera Emotion
Recognition" (arXiv 2402.00250), Sec. 3. Two stages:

* **s1** -- ``Z = FPEN_S1(concat(E_L(y), E_I(x)))`` (Eq. 1) from frozen CLIP text and image
  embeddings of the label and the image; ``Z`` modulates every block of the UDCformer
  (DTnetwork Eq. 2-4 + DILnetwork Eq. 5-9 + fusion and ViT Eq. 10-12); loss CE (Eq. 13).
* **s2** -- the label is gone: ``c = FPEN_S2(E_I(x))`` (Eq. 15) conditions a denoiser that
  runs ``T`` reverse steps on the prior (Eq. 14, 16); the UDCformer, FPEN_S2 and the denoiser
  train jointly with CE + KL(softmax Z_S1 || softmax Z_S2) (Eq. 17-18), the stage-1 network
  ``FPEN_S1`` frozen as the teacher. Training starts the chain from ``q(Z_T | Z_S1)`` and
  back-propagates through all ``T`` steps; inference starts from Gaussian noise.

Table 5's rows are variants (``create_model("lrdif", variant="S2-V4")``); every choice the
paper leaves open is a constructor setting, documented in ``docs/lrdif.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fercore.classes import class_list
from fercore.errors import ConfigError

from .base import FERModel, Normalize, StepContext, StepOutput
from .blocks.conv_pyramid import ConvPyramid, conv_bn_act
from .blocks.former import PriorLandmarkFormer
from .blocks.prior_diffusion import KL_DIRECTIONS, PriorDenoiser, PriorDiffusion
from .batch_inputs import batch_ids, prepare_images
from .clip_encoders import DEFAULT_TEMPLATE, FrozenCLIP
from .landmarks import build_landmark_encoder
from .recipe import Recipe
from .registry import register_model
from .stage2 import predicted_prior, prior_losses, training_prior

PAPER = {
    "image_size": 224, "clip_model": "ViT-B-32", "clip_pretrained": "openai",
    "prior_dim": 256, "fpen_layers": 3,
    "dims": (64, 128, 256), "blocks": (4, 6, 6), "heads": (1, 2, 4), "ffn_expansion": 2.66, "stem_stride": 8,
    "dil_heads": (2, 4, 8), "windows": None, "image_stream": "dt",
    "embed_dim": 768, "vit_depth": 2, "vit_heads": 8,
    "landmarks": "heatmap", "T": 4, "denoiser_depth": 1,
}
TINY = {
    "image_size": 64, "clip_model": "tiny", "clip_pretrained": None,
    "prior_dim": 32, "fpen_layers": 2,
    "dims": (16, 32, 64), "blocks": (1, 1, 1), "heads": (1, 2, 2), "ffn_expansion": 2.0, "stem_stride": 8,
    "dil_heads": (1, 2, 4), "windows": None, "image_stream": "dt",
    "embed_dim": 64, "vit_depth": 1, "vit_heads": 2,
    "landmarks": "none", "T": 4, "denoiser_depth": 1,
    # offline stand-ins and fixes that make the tiny model learn in a few epochs (docs/lrdif.md,
    # "The tiny preset on the sample set"): a trainable conv encoder aligned with the label
    # text embeddings instead of a random CLIP image tower, unit-scale priors, DiffIR's L1 term
    "image_encoder": "conv", "encoder_widths": (8, 16, 32, 64), "encoder_output": "label",
    "encoder_align_weight": 1.0, "encoder_gray": True, "fpen_s2_init": "s1", "denoiser_skip": True,
    "prior_norm": True, "l1_weight": 5.0,
    "recipe": {"input_size": 64, "lr": 1e-3, "batch_size": 32, "schedule": "cosine",
               "lr_mult": {"fpen_s2.": 5.0, "diffusion.": 5.0},
               "epochs": 7, "stage_epochs": {"s1": 1, "s2": 6}},
}
IMAGE_ENCODERS = ("clip", "conv")
ENCODER_OUTPUTS = ("features", "label")
FPEN_S2_INITS = ("fresh", "s1")
#: LRDif Table 5 (UDC-RAF-DB): ground truth / diffusion / loss / inserted noise.
VARIANTS = {
    "S1": {"train_stages": ("s1",)},
    "S2-V1": {"diffusion": False, "kl_weight": 0.0},
    "S2-V2": {"diffusion": True, "kl_weight": 0.0, "insert_noise": False},
    "S2-V3": {"diffusion": True, "kl_weight": 1.0, "insert_noise": True},
    "S2-V4": {"diffusion": True, "kl_weight": 1.0, "insert_noise": False},
}
TRAIN_STAGES = (("s1",), ("s1", "s2"))


class FPEN(nn.Module):
    """The condensed prior extraction network: ``layers`` x (Linear + LeakyReLU(0.1)).

    ``FPEN_S1`` reads ``concat(E_L(y), E_I(x))`` (``in_dim = 2E``), ``FPEN_S2`` reads
    ``E_I(x)`` (``in_dim = E``): only the first layer differs (LRDif Eq. 1, 15).

    ``out_norm=True`` ends it with a parameter-free LayerNorm, so every prior has zero mean and
    unit variance over its ``prior_dim`` entries (not in the paper; see ``prior_norm`` of
    :class:`LRDif`). It adds no parameters: checkpoints are the same either way.
    """

    def __init__(self, in_dim: int, prior_dim: int, layers: int = 3, out_norm: bool = False):
        super().__init__()
        if layers < 1:
            raise ConfigError(f"must be >= 1, got {layers}", flag="fpen_layers")
        mods: list[nn.Module] = []
        for i in range(layers):
            mods += [nn.Linear(in_dim if i == 0 else prior_dim, prior_dim), nn.LeakyReLU(0.1)]
        if out_norm:
            mods.append(nn.LayerNorm(prior_dim, elementwise_affine=False))
        self.body = nn.Sequential(*mods)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_dim)`` -> ``(B, prior_dim)``."""
        return self.body(x)


class ConvImageEncoder(nn.Module):
    """A trainable stand-in for CLIP's image tower: a conv trunk, global average pool, linear,
    LayerNorm -> ``(B, out_dim)``.

    For machines without CLIP weights (the offline ``tiny`` preset): a randomly initialised,
    frozen CLIP image tower carries almost no expression information, so stage 2, which must
    predict the prior from the image alone, stays at chance. This encoder learns instead (the
    role LLDif gives its trainable PNET_S2). Not in the paper; ``image_encoder="clip"`` is.

    The output is L2-normalised, the scale of the CLIP embeddings it stands in for: ``FPEN_S1``
    reads it next to the unit-norm label embedding, and a LayerNorm-scaled vector (norm
    ``sqrt(out_dim)``) drowns the label there.

    The trunk is a :class:`ConvPyramid` with the DT network's ``dims`` and ``stem_stride``
    (``widths=None``), or, with ``widths``, a VGG-style stack that keeps full resolution in its
    first stage: per width two 3x3 conv-BN-GELU layers and a 2x2 max-pool (the toolkit's
    reference CNN design, which learns the sample set's fine mouth and brow lines much
    faster than a strided pyramid).
    """

    def __init__(self, dims: Sequence[int], stem_stride: int, out_dim: int,
                 widths: Sequence[int] | None = None, gray: bool = False):
        super().__init__()
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


@register_model(
    "lrdif",
    recipe=Recipe(optimizer="adam", lr=3.5e-4, weight_decay=1e-4, schedule="none", epochs=200, batch_size=64,
                  input_size=224, augment=("hflip",), stage_epochs={"s1": 100, "s2": 100},
                  source="LRDif Sec. 4.2: Adam, lr 3.5e-4, weight decay 1e-4, batch 64, 100 epochs "
                         "(taken per stage, as DiffIR trains both stages; hflip and no schedule: our choice)"),
    presets={"paper": PAPER, "tiny": TINY},
    default_preset="paper",
    description="LRDif: CLIP prior (stage 1) recovered by few-step diffusion (stage 2), UDCformer",
    paper="Wang, Zhang, Sankaranarayana. LRDif: Diffusion Models for Under-Display Camera Emotion "
          "Recognition. arXiv:2402.00250",
    variants=VARIANTS)
class LRDif(FERModel):
    """LRDif (see the module doc). All arguments are settings of ``create_model("lrdif", ...)``.

    Args:
        num_classes: classes; ``class_names`` (one per index, the dataset's order, e.g.
            ``source.classes``) name them in the CLIP prompts (default: the canonical order).
        image_size: side the network works at (inputs of another size are resized).
        clip_model, clip_pretrained, clip_template, clip_init_seed, clip_normalize,
            clip_cache, clip_cache_dir, clip_center_text: the frozen CLIP
            (:class:`models.clip_encoders.FrozenCLIP`).
        prior_dim: ``C``, the length of the prior ``Z``; fpen_layers: linear layers per FPEN.
        dims, blocks, heads, ffn_expansion, stem_stride: DTnetwork; dil_heads, windows,
            image_stream, layer_scale: DILnetwork; embed_dim, vit_depth, vit_heads, mlp_ratio:
            the token transformer (:class:`models.blocks.former.PriorLandmarkFormer`).
        landmarks, heatmap_sigma, heatmap_groups, mobilefacenet_path: landmark features
            (:mod:`models.landmarks`).
        diffusion: stage 2 recovers the prior by diffusion (False: ``Z = FPEN_S2(E_I(x))``).
        T, schedule, beta_start, beta_end, parameterization, denoiser_depth: the diffusion.
        insert_noise: add sampled noise in the reverse steps (Table 5's "insert noise").
        kl_weight, kl_temperature, kl_direction, l1_weight: stage-2 prior losses.
        train_stages: ``("s1", "s2")`` or ``("s1",)`` (variant S1).
        predict_seed: seeds the inference noise when ``predict`` gets no generator.
        image_encoder: ``"clip"`` (the paper: frozen CLIP image tower) or ``"conv"`` (a trainable
            conv encoder, :class:`ConvImageEncoder`, for machines without CLIP weights).
        encoder_widths: the conv encoder's trunk: ``None`` = a conv pyramid with ``dims`` and
            ``stem_stride``; a tuple = a VGG-style stack with these widths (full resolution first).
        encoder_output: what the conv encoder gives as ``E_I(x)``: ``"features"`` (its
            L2-normalised embedding) or ``"label"`` (the predicted label embedding
            ``softmax(cos(features, E_L) / encoder_align_temperature) @ E_L``, LLDif's ``f_l^I``).
        encoder_gray: the conv encoder sees the luminance only (Rec. 601 grey, replicated to three
            channels); the UDCformer still sees colour.
        denoiser_skip: the denoiser starts as the identity on the condition
            (:class:`models.blocks.prior_diffusion.PriorDenoiser` ``cond_skip``).
        fpen_s2_init: ``"fresh"`` (the paper) or ``"s1"`` (:meth:`init_fpen_s2_from_s1`).
        encoder_align_weight, encoder_align_temperature: weight (0 = off) and temperature of the
            CLIP-style alignment loss of the conv encoder, cross-entropy of its features' cosine
            similarities with the class text embeddings, in both stages (needs
            ``image_encoder="conv"``).
        prior_norm: end both FPENs with a parameter-free LayerNorm, so the prior has unit scale
            (the paper's FPEN ends in LeakyReLU and gives priors of std ~0.1 at initialisation:
            the modulation ``W1 Z * LN(F) + W2 Z`` then passes almost nothing, the KL between
            near-uniform softmaxes is ~0.01, and the diffusion noise (std 1) swamps the prior).
    """

    stages = ("s1", "s2")

    def __init__(self, num_classes: int = 7, *, class_names: Sequence[str] | None = None, image_size: int = 224,
                 clip_model: str = "ViT-B-32", clip_pretrained: str | None = "openai",
                 clip_template: str = DEFAULT_TEMPLATE, clip_init_seed: int = 0, clip_normalize: bool = True,
                 clip_cache: bool = True, clip_cache_dir: str | None = None, clip_center_text: bool = True,
                 prior_dim: int = 256, fpen_layers: int = 3,
                 dims: Sequence[int] = (64, 128, 256), blocks: Sequence[int] = (4, 6, 6),
                 heads: Sequence[int] = (1, 2, 4), ffn_expansion: float = 2.66, stem_stride: int = 8,
                 dil_heads: Sequence[int] = (2, 4, 8), windows: Sequence[int] | None = None,
                 image_stream: str = "dt", layer_scale: float | None = None,
                 embed_dim: int = 768, vit_depth: int = 2, vit_heads: int = 8, mlp_ratio: float = 4.0,
                 landmarks: str = "heatmap", heatmap_sigma: float = 1.5, heatmap_groups: str = "parts",
                 mobilefacenet_path: str | None = None,
                 diffusion: bool = True, T: int = 4, schedule: str = "linear", beta_start: float = 0.1,
                 beta_end: float = 0.99, parameterization: str = "x0", denoiser_depth: int = 1,
                 insert_noise: bool = True, kl_weight: float = 1.0, kl_temperature: float = 1.0,
                 kl_direction: str = "s1||s2", l1_weight: float = 0.0,
                 train_stages: Sequence[str] = ("s1", "s2"), predict_seed: int = 0,
                 image_encoder: str = "clip", encoder_widths: Sequence[int] | None = None,
                 encoder_output: str = "features", prior_norm: bool = False,
                 encoder_align_weight: float = 0.0, encoder_align_temperature: float = 0.07,
                 fpen_s2_init: str = "fresh", denoiser_skip: bool = False, encoder_gray: bool = False):
        super().__init__(num_classes)
        if image_encoder not in IMAGE_ENCODERS:
            raise ConfigError(f"choose one of {', '.join(IMAGE_ENCODERS)}, got {image_encoder!r}",
                              flag="image_encoder")
        if tuple(train_stages) not in TRAIN_STAGES:
            raise ConfigError(f"must be one of {TRAIN_STAGES}, got {train_stages!r}", flag="train_stages")
        if class_names is None:
            class_names = (class_list(num_classes) if num_classes in (7, 8)
                           else [f"class {i}" for i in range(num_classes)])
        if len(class_names) != num_classes:
            raise ConfigError(f"{len(class_names)} names for {num_classes} classes", flag="class_names")
        for name, value in (("kl_weight", kl_weight), ("l1_weight", l1_weight),
                            ("encoder_align_weight", encoder_align_weight)):
            if value < 0:
                raise ConfigError(f"must be >= 0, got {value}", flag=name)
        if kl_temperature <= 0:
            raise ConfigError(f"must be > 0, got {kl_temperature}", flag="kl_temperature")
        if encoder_output not in ENCODER_OUTPUTS:
            raise ConfigError(f"choose one of {', '.join(ENCODER_OUTPUTS)}, got {encoder_output!r}",
                              flag="encoder_output")
        if encoder_output == "label" and image_encoder != "conv":
            raise ConfigError("a predicted label embedding needs the trainable conv encoder; set "
                              "image_encoder='conv'", flag="encoder_output")
        if fpen_s2_init not in FPEN_S2_INITS:
            raise ConfigError(f"choose one of {', '.join(FPEN_S2_INITS)}, got {fpen_s2_init!r}", flag="fpen_s2_init")
        if encoder_align_temperature <= 0:
            raise ConfigError(f"must be > 0, got {encoder_align_temperature}", flag="encoder_align_temperature")
        if encoder_align_weight > 0 and image_encoder != "conv":
            raise ConfigError("aligns the trainable conv image encoder with the label text embeddings; "
                              "set image_encoder='conv' (the CLIP image tower is frozen)", flag="encoder_align_weight")
        if kl_direction not in KL_DIRECTIONS:
            raise ConfigError(f"choose one of {', '.join(KL_DIRECTIONS)}, got {kl_direction!r}", flag="kl_direction")
        if isinstance(T, bool) or not isinstance(T, int) or T < 1:
            raise ConfigError(f"must be an integer >= 1 (reverse steps), got {T!r}", flag="T")
        self.stages = tuple(train_stages)
        self.image_size = image_size
        self.prior_dim = prior_dim
        self.use_diffusion = diffusion
        self.insert_noise = insert_noise
        self.kl_weight, self.kl_temperature, self.kl_direction = kl_weight, kl_temperature, kl_direction
        self.l1_weight = l1_weight
        self.align_weight, self.align_temperature = encoder_align_weight, encoder_align_temperature
        self.encoder_output = encoder_output
        self.fpen_s2_init = fpen_s2_init
        self.predict_seed = predict_seed

        self.norm = Normalize()
        self.clip = FrozenCLIP(class_names, clip_model, clip_pretrained, clip_template, clip_init_seed,
                               clip_normalize, clip_cache, clip_cache_dir, clip_center_text)
        e = self.clip.embed_dim
        # E_I(x): the frozen CLIP image tower (the paper) or a trainable conv encoder (offline);
        # in stage 2 a frozen copy of the stage-1 encoder feeds the teacher FPEN_S1.
        self.image_encoder = (ConvImageEncoder(dims, stem_stride, e, encoder_widths, encoder_gray)
                              if image_encoder == "conv" else None)
        self.image_encoder_s1: nn.Module | None = None
        self.fpen_s1 = FPEN(2 * e, prior_dim, fpen_layers, prior_norm)
        self.fpen_s2 = FPEN(e, prior_dim, fpen_layers, prior_norm)
        self.landmark_encoder = build_landmark_encoder(
            landmarks, dims, image_size, stem_stride, heatmap_sigma=heatmap_sigma,
            heatmap_groups=heatmap_groups, mobilefacenet_path=mobilefacenet_path)
        self.requires = frozenset({"landmarks"}) if self.landmark_encoder.needs_landmarks else frozenset()
        self.former = PriorLandmarkFormer(
            num_classes, image_size, prior_dim, dims, blocks, heads, ffn_expansion, stem_stride, dil_heads,
            windows, image_stream, embed_dim, vit_depth, vit_heads, mlp_ratio, layer_scale)
        denoiser = PriorDenoiser(prior_dim, T, denoiser_depth, denoiser_skip)
        self.diffusion = (PriorDiffusion(denoiser, T, schedule, beta_start, beta_end, parameterization)
                          if diffusion else None)
        self._s2_started = False
        self.begin_stage(self.stages[0])

    # -- stages ----------------------------------------------------------------------------
    def _trainable(self, stage: str) -> list[nn.Module]:
        shared = [self.landmark_encoder, self.former]
        if self.image_encoder is not None:
            shared.append(self.image_encoder)
        if stage == "s1":
            return [self.fpen_s1, *shared]
        return [self.fpen_s2, *shared] + ([self.diffusion] if self.diffusion is not None else [])

    def begin_stage(self, stage: str) -> None:
        """s1: FPEN_S1 + UDCformer train. s2: FPEN_S2 + denoiser + UDCformer train, starting
        from the stage-1 UDCformer; FPEN_S1 is frozen (the teacher). CLIP and a MobileFaceNet
        are always frozen."""
        super().begin_stage(stage)
        if stage == "s2" and not self._s2_started:  # the first start of stage 2 (a resumed run then loads)
            if self.fpen_s2_init == "s1":
                self.init_fpen_s2_from_s1()
            if self.image_encoder is not None:
                import copy

                self.image_encoder_s1 = copy.deepcopy(self.image_encoder).eval()
            self._s2_started = True
        self.requires_grad_(False)
        for m in self._trainable(stage):
            m.requires_grad_(True)   # a MobileFaceNet landmark encoder keeps its network frozen

    @torch.no_grad()
    def init_fpen_s2_from_s1(self) -> None:
        """``fpen_s2_init="s1"``: start FPEN_S2 as FPEN_S1 with ``E_I(x)`` in both input slots
        (first-layer weight ``W[:, :E] + W[:, E:]``, the other layers copied), so that
        ``FPEN_S2(E_I(x)) = FPEN_S1(concat(E_I(x), E_I(x)))``. With ``encoder_output="label"``
        ``E_I(x)`` is the predicted label embedding, and stage 2 starts from the stage-1 prior of
        the predicted label instead of from a random map (the paper starts FPEN_S2 fresh)."""
        e = self.clip.embed_dim
        for i, (dst, src) in enumerate(zip(self.fpen_s2.body, self.fpen_s1.body)):
            if isinstance(dst, nn.Linear):
                w = src.weight[:, :e] + src.weight[:, e:] if i == 0 else src.weight
                dst.weight.copy_(w)
                dst.bias.copy_(src.bias)

    def end_epoch(self, epoch: int, stage: str) -> None:
        self.clip.save_cache()

    # -- pieces ----------------------------------------------------------------------------
    def _images(self, batch: dict[str, Any]) -> Tensor:
        return prepare_images(batch, self.image_size)

    def _ids(self, batch: dict[str, Any], n: int) -> list[str] | None:
        return batch_ids(batch, n)

    def image_embedding(self, img: Tensor, batch: dict[str, Any], teacher: bool = False) -> Tensor:
        """``E_I(x)``: CLIP's image embedding (cached per record id), or the conv encoder's
        (``teacher=True``: the frozen stage-1 copy that feeds FPEN_S1 in stage 2)."""
        return self._encode(img, batch, teacher)[0]

    def _encode(self, img: Tensor, batch: dict[str, Any], teacher: bool = False) -> tuple[Tensor, Tensor | None]:
        """``(E_I(x), alignment logits)``; the logits (``(B, classes)``, cosine similarity of the
        conv features with every class text embedding over ``encoder_align_temperature``) are
        ``None`` for CLIP. With ``encoder_output="label"``, ``E_I(x)`` is the predicted label
        embedding ``softmax(logits) @ E_L`` (LLDif's ``f_l^I``)."""
        if self.image_encoder is None:
            return self.clip.encode_images(img, self._ids(batch, img.shape[0])), None
        encoder = self.image_encoder
        if teacher and self.image_encoder_s1 is not None:
            encoder = self.image_encoder_s1.eval()
        feats = encoder(img)
        text = self.clip.text_embeddings.to(feats)
        logits = F.normalize(feats, dim=-1) @ F.normalize(text, dim=-1).t() / self.align_temperature
        if self.encoder_output == "label":
            return logits.softmax(-1) @ text, logits
        return feats, logits

    def prior_s1(self, labels: Tensor, image_emb: Tensor) -> Tensor:
        """Eq. 1: ``FPEN_S1(concat(E_L(y), E_I(x)))``."""
        return self.fpen_s1(torch.cat([self.clip.encode_labels(labels).to(image_emb), image_emb], dim=1))

    def _classify(self, img: Tensor, prior: Tensor, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        x = self.norm(img)
        lmk = batch.get("landmarks")
        return self.former(x, prior, self.landmark_encoder(x, lmk))

    # -- the interface ---------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], ctx: StepContext) -> StepOutput:
        img = self._images(batch)
        labels = batch["label"].to(img.device)
        image_emb, align_logits = self._encode(img, batch)
        losses = {}
        if self.align_weight > 0:
            # CLIP-style image-text alignment of the conv encoder (cross-entropy over the class
            # text embeddings): what a pretrained CLIP image tower brings, learnt from the
            # training labels, as LLDif's LA-CLIP aligns its predicted label embedding.
            losses["align"] = self.align_weight * F.cross_entropy(align_logits, labels)
        if self.stage == "s1":
            z = self.prior_s1(labels, image_emb)
            logits, feat = self._classify(img, z, batch)
            losses = {"ce": F.cross_entropy(logits, labels), **losses}
            return StepOutput(logits, losses, feat, {"prior": z.detach()})
        with torch.no_grad():
            teacher_emb = image_emb if self.image_encoder is None else self.image_embedding(img, batch, True)
            z1 = self.prior_s1(labels, teacher_emb)
        z2 = training_prior(self.diffusion, self.fpen_s2(image_emb), z1, ctx, self.insert_noise)
        logits, feat = self._classify(img, z2, batch)
        losses = {"ce": F.cross_entropy(logits, labels), **losses,
                  **prior_losses(z1, z2, self.kl_weight, self.kl_temperature, self.kl_direction, self.l1_weight)}
        return StepOutput(logits, losses, feat, {"prior": z2.detach(), "prior_s1": z1})

    def predict(self, batch: dict[str, Any], ctx: StepContext | None = None) -> StepOutput:
        """Stage 2: no label; the prior comes from ``T`` reverse steps (or FPEN_S2 alone with
        ``diffusion=False``). Stage 1 (variant S1, the paper's oracle row) needs
        ``batch["label"]``: its prior is built from the true label."""
        img = self._images(batch)
        image_emb = self.image_embedding(img, batch)
        if self.stage == "s1":
            if "label" not in batch:
                raise ConfigError("a stage-1 LRDif builds its prior from the true label (Table 5's oracle "
                                  "row S1); train stage s2 for label-free inference, or pass batch['label']",
                                  flag="stage")
            z = self.prior_s1(batch["label"].to(img.device), image_emb)
        else:
            z = predicted_prior(self.diffusion, self.fpen_s2(image_emb), batch, img, self.predict_seed,
                                "lrdif-predict", ctx, self.insert_noise)
        logits, feat = self._classify(img, z, batch)
        return StepOutput(logits, {}, feat, {"prior": z})
