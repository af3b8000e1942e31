"""LLDif: label-aware CLIP prior + few-step diffusion for FER in low light.

Wang, Zhang, Sankaranarayana, "LLDif: Diffusion Models for Low-light Emotion Recognition",
Sec. 3. Three stages, each runnable and checkpointed on its own:

* **la-clip** -- LA-CLIP (:mod:`models.la_clip`): a feature learner on the frozen CLIP image
  encoder learns ``f_c^I`` (aligned with the caption's text embedding ``f_c^t``) and ``f_l^I``
  (aligned with the label's text embedding ``f_l^t``). Captions come from templates with the
  label and the item's degradation (:mod:`models.captions`, ``batch["meta"]``).
* **s1** -- ``Z = PNET_S1(f_c^I, f_l^I | f_l^t, f_c^t)`` (Eq. 1, cross-attention,
  :class:`~models.blocks.pnet.PNetS1`) modulates every block of the LLformer (DTNet Eq. 2-4 +
  DLNet Eq. 5-9 + fusion and ViT Eq. 10-12, LRDif's :class:`PriorLandmarkFormer`); loss CE.
* **s2** -- no label: ``c = PNET_S2(x)`` (Eq. 15, conv + residual + linear on the image,
  :class:`~models.blocks.pnet.PNetS2`) conditions LRDif's prior denoiser, ``T`` reverse steps
  recover ``Z`` (Eq. 14, 16); LLformer, PNET_S2 and the denoiser train with CE (+ KL, Eq. 17-18,
  in variant V2). LA-CLIP and PNET_S1 are frozen (the teacher giving ``Z_S1``).

Table 5's rows are variants ``V1``..``V4`` (``V4`` = the paper's own = the default); ``T`` is a
setting; every choice the paper leaves open is a setting, documented in ``docs/lldif.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fercore.classes import class_list
from fercore.errors import ConfigError

from .base import FERModel, Normalize, StepContext, StepOutput
from .batch_inputs import batch_ids, prepare_images
from .blocks.former import PriorLandmarkFormer
from .blocks.pnet import PNetS1, PNetS2
from .blocks.prior_diffusion import KL_DIRECTIONS, PriorDenoiser, PriorDiffusion
from .captions import CAPTION_CONTENTS, DEFAULT_CAPTION_TEMPLATE, CaptionRules, batch_captions, check_template
from .clip_encoders import DEFAULT_TEMPLATE, FrozenCLIP
from .la_clip import (LabelAwareCLIP, caption_alignment_loss, caption_groups, la_clip_state_from_checkpoint,
                      label_alignment_loss, label_logits)
from .landmarks import build_landmark_encoder
from .lrdif import FPEN, IMAGE_ENCODERS, ConvImageEncoder
from .recipe import Recipe
from .registry import register_model
from .stage2 import predicted_prior, prior_losses, training_prior

STAGES = ("la-clip", "s1", "s2")
#: Stage lists a model may train (prefixes of STAGES; without "la-clip" when LA-CLIP is loaded).
TRAIN_STAGES = (STAGES[:1], STAGES[:2], STAGES)
PNET_S1_CONTEXTS = ("label", "image")
PNET_S2_INPUTS = ("image", "la-clip", "pnet-s1")
TRAIN_STARTS = ("q_sample", "noise")

PAPER = {
    "image_size": 224, "clip_model": "ViT-B-32", "clip_pretrained": "openai", "la_clip_hidden": 512,
    "prior_dim": 256, "pnet_depth": 1, "pnet_heads": 4,
    "pnet_s2_width": 64, "pnet_s2_blocks": 4, "pnet_s2_stride": 4,
    "dims": (64, 128, 256), "blocks": (4, 6, 6), "heads": (1, 2, 4), "ffn_expansion": 2.66, "stem_stride": 8,
    "dil_heads": (2, 4, 8), "windows": None, "image_stream": "dt",
    "embed_dim": 768, "vit_depth": 2, "vit_heads": 8,
    "landmarks": "heatmap", "T": 4, "denoiser_depth": 1,
}
TINY = {
    "image_size": 64, "clip_model": "tiny", "clip_pretrained": None, "la_clip_hidden": 64,
    "prior_dim": 32, "pnet_depth": 1, "pnet_heads": 2,
    "pnet_s2_width": 16, "pnet_s2_blocks": 1, "pnet_s2_stride": 4,
    "dims": (16, 32, 64), "blocks": (1, 1, 1), "heads": (1, 2, 2), "ffn_expansion": 2.0, "stem_stride": 4,
    "dil_heads": (1, 2, 4), "windows": None, "image_stream": "dt",
    "embed_dim": 64, "vit_depth": 1, "vit_heads": 2,
    "landmarks": "none", "T": 4, "denoiser_depth": 1,
    # offline stand-ins and fixes that make the tiny model learn in a few epochs (docs/lldif.md,
    # "The tiny preset on the sample set"): LA-CLIP on a trainable conv tower instead of a
    # random CLIP image tower, stage 2 starting from PNET_S1 fed LA-CLIP's predicted label,
    # unit-scale priors, DiffIR's L1 term
    "image_encoder": "conv", "encoder_widths": (8, 16, 32, 64), "encoder_gray": True,
    "pnet_s2_input": "pnet-s1", "prior_norm": True, "denoiser_skip": True, "l1_weight": 5.0,
    "recipe": {"input_size": 64, "lr": 1e-3, "batch_size": 32, "schedule": "cosine", "epochs": 12,
               "stage_epochs": {"la-clip": 8, "s1": 1, "s2": 3}},
}
#: LLDif Table 5 (LL-KDEF): diffusion / loss / inserted noise; plus LA-CLIP alone and the
#: stage-1 oracle (prior from the true label and caption).
VARIANTS = {
    "LA-CLIP": {"train_stages": STAGES[:1]},
    "S1": {"train_stages": STAGES[:2]},
    "V1": {"diffusion": False, "kl_weight": 0.0, "insert_noise": False},
    "V2": {"diffusion": True, "kl_weight": 1.0, "insert_noise": True},
    "V3": {"diffusion": True, "kl_weight": 0.0, "insert_noise": False},
    "V4": {"diffusion": True, "kl_weight": 0.0, "insert_noise": True},
}


def la_clip_identity(clip_model: str, clip_pretrained: str | None, clip_init_seed: int, clip_normalize: bool,
                     clip_center_text: bool, prompts: Sequence[str], image_encoder: str = "clip") -> dict[str, Any]:
    """What a trained LA-CLIP depends on: the CLIP (weights by tag or file name, so a copy of the
    same file elsewhere matches), the image tower and the class prompts, in order."""
    extra = {} if image_encoder == "clip" else {"image_encoder": image_encoder}
    return {**extra, "clip_model": clip_model,
            "clip_pretrained": None if clip_pretrained is None else Path(str(clip_pretrained)).name,
            "clip_init_seed": clip_init_seed if clip_pretrained is None else None,
            "normalize": bool(clip_normalize), "center_text": bool(clip_center_text), "prompts": list(prompts)}


@register_model(
    "lldif",
    recipe=Recipe(optimizer="adam", lr=3.5e-4, weight_decay=1e-4, schedule="none", epochs=200, batch_size=64,
                  input_size=224, augment=("hflip",), stage_epochs={"la-clip": 20, "s1": 90, "s2": 90},
                  source="LLDif Sec. 4.2: Adam, lr 3.5e-4, weight decay 1e-4, batch 64, 200 epochs (split "
                         "la-clip 20 + s1 90 + s2 90; hflip and no schedule: our choices)"),
    presets={"paper": PAPER, "tiny": TINY},
    default_preset="paper",
    description="LLDif: label-aware CLIP prior (LA-CLIP + PNET_S1) recovered by few-step diffusion from the "
                "image (PNET_S2), LLformer",
    paper="Wang, Zhang, Sankaranarayana. LLDif: Diffusion Models for Low-light Emotion Recognition",
    variants=VARIANTS)
class LLDif(FERModel):
    """LLDif (see the module doc). All arguments are settings of ``create_model("lldif", ...)``.

    Args:
        num_classes, class_names: classes and their names (the dataset's order, e.g.
            ``source.classes``; default the canonical order), used in prompts and captions.
        image_size: side the network works at (inputs of another size are resized).
        clip_model, clip_pretrained, clip_template, clip_init_seed, clip_normalize, clip_cache,
            clip_cache_dir, clip_center_text: the frozen CLIP (:class:`FrozenCLIP`).
        la_clip_hidden: width of LA-CLIP's adapter and label head.
        la_clip_checkpoint: an lldif checkpoint (``model.pt`` / ``checkpoint.pt``) whose trained
            LA-CLIP is loaded; the ``la-clip`` stage is then skipped.
        caption_template, caption_content, caption_rules: captions (:mod:`models.captions`).
        caption_weight, label_weight: weights of LA-CLIP's two alignment losses.
        prior_dim: ``C``, the length of the EPD ``Z``.
        pnet_depth, pnet_heads: PNET_S1's cross-attention blocks and heads.
        pnet_s1_context: keys/values of PNET_S1: ``"label"`` = the label and caption text
            embeddings (the prior knows the label; s1 is an oracle), ``"image"`` = the LA-CLIP
            image embeddings themselves (Eq. 1 read literally; label-free).
        pnet_s2_input: ``"image"`` = PNET_S2 on the pixels (the paper), ``"la-clip"`` = an FPEN on
            the LA-CLIP embeddings, ``"pnet-s1"`` = a copy of the trained PNET_S1 (made when
            stage 2 starts) with LA-CLIP's *predicted* label embedding and its caption-aligned
            image embedding as keys/values in place of the true label's and caption's text
            embeddings (label-free; stage 2 starts from the stage-1 prior of the predicted label;
            not in the paper); pnet_s2_width, pnet_s2_blocks, pnet_s2_stride: PNET_S2's size;
            fpen_layers: the FPEN's layers (``pnet_s2_input="la-clip"``).
        dims, blocks, heads, ffn_expansion, stem_stride, dil_heads, windows, image_stream,
            layer_scale, embed_dim, vit_depth, vit_heads, mlp_ratio: the LLformer.
        landmarks, heatmap_sigma, heatmap_groups, mobilefacenet_path: landmark features.
        diffusion, T, schedule, beta_start, beta_end, parameterization, denoiser_depth: stage 2's
            diffusion; insert_noise: sampled noise in the reverse steps (Table 5).
        kl_weight, kl_temperature, kl_direction, l1_weight: stage-2 prior losses (0 = off).
        train_start: where the training chain starts: ``"q_sample"`` = ``q(Z_T | Z_S1)``
            (DiffIR), ``"noise"`` = pure noise, as in inference.
        train_stages: a prefix of ``("la-clip", "s1", "s2")``.
        image_encoder: LA-CLIP's image tower: ``"clip"`` (the paper: the frozen CLIP image
            encoder) or ``"conv"`` (LRDif's trainable :class:`ConvImageEncoder`, trained with
            LA-CLIP in the ``la-clip`` stage and frozen with it afterwards; for machines
            without CLIP weights, where a random CLIP tower carries no expression
            information). encoder_widths, encoder_gray: its trunk and grey input (as in LRDif).
        prior_norm: PNET_S1 and PNET_S2 (or its FPEN) end with a parameter-free LayerNorm, so
            the priors have unit scale (not in the paper; off by default; the tiny preset uses
            it, see docs/lldif.md and ``prior_norm`` of LRDif).
        denoiser_skip: the x0-denoiser returns ``cond + MLP(...)`` with a zero last layer, so
            a fresh chain starts at PNET_S2's guess (not in the paper; off by default).
        predict_seed: seeds the inference noise when ``predict`` gets no generator.
    """

    stages = STAGES

    def __init__(self, num_classes: int = 7, *, class_names: Sequence[str] | None = None, image_size: int = 224,
                 clip_model: str = "ViT-B-32", clip_pretrained: str | None = "openai",
                 clip_template: str = DEFAULT_TEMPLATE, clip_init_seed: int = 0, clip_normalize: bool = True,
                 clip_cache: bool = True, clip_cache_dir: str | None = None, clip_center_text: bool = True,
                 la_clip_hidden: int = 512, la_clip_checkpoint: str | None = None,
                 caption_template: str = DEFAULT_CAPTION_TEMPLATE, caption_content: str = "label+degradation",
                 caption_rules: Mapping[str, float] | None = None, caption_weight: float = 1.0,
                 label_weight: float = 1.0,
                 prior_dim: int = 256, pnet_depth: int = 1, pnet_heads: int = 4, pnet_s1_context: str = "label",
                 pnet_s2_input: str = "image", pnet_s2_width: int = 64, pnet_s2_blocks: int = 4,
                 pnet_s2_stride: int = 4, fpen_layers: int = 3,
                 dims: Sequence[int] = (64, 128, 256), blocks: Sequence[int] = (4, 6, 6),
                 heads: Sequence[int] = (1, 2, 4), ffn_expansion: float = 2.66, stem_stride: int = 8,
                 dil_heads: Sequence[int] = (2, 4, 8), windows: Sequence[int] | None = None,
                 image_stream: str = "dt", layer_scale: float | None = None,
                 embed_dim: int = 768, vit_depth: int = 2, vit_heads: int = 8, mlp_ratio: float = 4.0,
                 landmarks: str = "heatmap", heatmap_sigma: float = 1.5, heatmap_groups: str = "parts",
                 mobilefacenet_path: str | None = None,
                 diffusion: bool = True, T: int = 4, schedule: str = "linear", beta_start: float = 0.1,
                 beta_end: float = 0.99, parameterization: str = "x0", denoiser_depth: int = 1,
                 insert_noise: bool = True, kl_weight: float = 0.0, kl_temperature: float = 1.0,
                 kl_direction: str = "s1||s2", l1_weight: float = 0.0, train_start: str = "q_sample",
                 train_stages: Sequence[str] = STAGES, image_encoder: str = "clip",
                 encoder_widths: Sequence[int] | None = None, encoder_gray: bool = False,
                 prior_norm: bool = False, denoiser_skip: bool = False, predict_seed: int = 0):
        super().__init__(num_classes)
        self.stages = self._check_stages(tuple(train_stages), la_clip_checkpoint)
        if class_names is None:
            class_names = (class_list(num_classes) if num_classes in (7, 8)
                           else [f"class {i}" for i in range(num_classes)])
        if len(class_names) != num_classes:
            raise ConfigError(f"{len(class_names)} names for {num_classes} classes", flag="class_names")
        for name, value in (("kl_weight", kl_weight), ("l1_weight", l1_weight), ("caption_weight", caption_weight),
                            ("label_weight", label_weight)):
            if value < 0:
                raise ConfigError(f"must be >= 0, got {value}", flag=name)
        if caption_weight == 0 and label_weight == 0 and "la-clip" in self.stages:
            raise ConfigError("LA-CLIP needs a loss: caption_weight or label_weight must be > 0", flag="caption_weight")
        if kl_temperature <= 0:
            raise ConfigError(f"must be > 0, got {kl_temperature}", flag="kl_temperature")
        if kl_direction not in KL_DIRECTIONS:
            raise ConfigError(f"choose one of {', '.join(KL_DIRECTIONS)}, got {kl_direction!r}", flag="kl_direction")
        if isinstance(T, bool) or not isinstance(T, int) or T < 1:
            raise ConfigError(f"must be an integer >= 1 (reverse steps), got {T!r}", flag="T")
        for flag, value, choices in (("pnet_s1_context", pnet_s1_context, PNET_S1_CONTEXTS),
                                     ("pnet_s2_input", pnet_s2_input, PNET_S2_INPUTS),
                                     ("train_start", train_start, TRAIN_STARTS),
                                     ("caption_content", caption_content, CAPTION_CONTENTS),
                                     ("image_encoder", image_encoder, IMAGE_ENCODERS)):
            if value not in choices:
                raise ConfigError(f"choose one of {', '.join(choices)}, got {value!r}", flag=flag)
        if image_size % pnet_s2_stride:
            raise ConfigError(f"image_size {image_size} must be divisible by pnet_s2_stride {pnet_s2_stride}",
                              flag="pnet_s2_stride")
        self.class_names = list(class_names)
        self.image_size = image_size
        self.prior_dim = prior_dim
        self.caption_template = check_template(caption_template)
        self.caption_content = caption_content
        self.caption_rules = CaptionRules.from_settings(caption_rules)
        self.caption_weight, self.label_weight = caption_weight, label_weight
        self.pnet_s1_context, self.pnet_s2_input = pnet_s1_context, pnet_s2_input
        self.use_diffusion, self.insert_noise, self.train_start = diffusion, insert_noise, train_start
        self.kl_weight, self.kl_temperature, self.kl_direction = kl_weight, kl_temperature, kl_direction
        self.l1_weight = l1_weight
        self.predict_seed = predict_seed

        self.norm = Normalize()
        self.clip = FrozenCLIP(class_names, clip_model, clip_pretrained, clip_template, clip_init_seed,
                               clip_normalize, clip_cache, clip_cache_dir, clip_center_text)
        e = self.clip.embed_dim
        self.la_clip = LabelAwareCLIP(e, la_clip_hidden, identity=la_clip_identity(
            clip_model, clip_pretrained, clip_init_seed, clip_normalize, clip_center_text, self.clip.prompts,
            image_encoder))
        # the trainable tower lives inside LA-CLIP: it trains, freezes, saves and loads with it
        self.la_clip.tower = (ConvImageEncoder(dims, stem_stride, e, encoder_widths, encoder_gray)
                              if image_encoder == "conv" else None)
        self.pnet_s1 = PNetS1(e, prior_dim, 2, 2, pnet_depth, pnet_heads, out_norm=prior_norm)
        self.pnet_s2: nn.Module
        if pnet_s2_input == "image":
            self.pnet_s2 = PNetS2(prior_dim, pnet_s2_width, pnet_s2_blocks, pnet_s2_stride, out_norm=prior_norm)
        elif pnet_s2_input == "la-clip":
            self.pnet_s2 = FPEN(2 * e, prior_dim, fpen_layers, prior_norm)
        else:
            self.pnet_s2 = PNetS1(e, prior_dim, 2, 2, pnet_depth, pnet_heads, out_norm=prior_norm)
        self._s2_started = False
        self.landmark_encoder = build_landmark_encoder(
            landmarks, dims, image_size, stem_stride, heatmap_sigma=heatmap_sigma,
            heatmap_groups=heatmap_groups, mobilefacenet_path=mobilefacenet_path)
        needs = {"meta"} if caption_content != "label" else set()
        if self.landmark_encoder.needs_landmarks:
            needs.add("landmarks")
        self.requires = frozenset(needs)
        self.former = PriorLandmarkFormer(
            num_classes, image_size, prior_dim, dims, blocks, heads, ffn_expansion, stem_stride, dil_heads,
            windows, image_stream, embed_dim, vit_depth, vit_heads, mlp_ratio, layer_scale)
        self.diffusion = (PriorDiffusion(PriorDenoiser(prior_dim, T, denoiser_depth, denoiser_skip), T, schedule,
                                         beta_start, beta_end, parameterization) if diffusion else None)
        if la_clip_checkpoint is not None:
            self.la_clip.load_state_dict(la_clip_state_from_checkpoint(la_clip_checkpoint))
        self.begin_stage(self.stages[0])

    @classmethod
    def planned_stages(cls, kwargs) -> tuple[str, ...]:
        """``train_stages`` less ``la-clip`` when ``la_clip_checkpoint`` loads a trained LA-CLIP."""
        return cls._check_stages(tuple(kwargs.get("train_stages", STAGES)), kwargs.get("la_clip_checkpoint"))

    @staticmethod
    def _check_stages(stages: tuple[str, ...], checkpoint: str | None) -> tuple[str, ...]:
        if stages not in TRAIN_STAGES and not (checkpoint is not None and ("la-clip",) + stages in TRAIN_STAGES):
            raise ConfigError(f"must be one of {TRAIN_STAGES} (without 'la-clip' when la_clip_checkpoint loads a "
                              f"trained LA-CLIP), got {stages!r}", flag="train_stages")
        if checkpoint is None:
            return stages
        rest = tuple(s for s in stages if s != "la-clip")
        if not rest:
            raise ConfigError("la_clip_checkpoint loads a trained LA-CLIP, so train_stages must include s1",
                              flag="train_stages")
        return rest

    # -- stages ----------------------------------------------------------------------------
    def _trainable(self, stage: str) -> list[nn.Module]:
        if stage == "la-clip":
            return [self.la_clip]
        shared = [self.landmark_encoder, self.former]
        if stage == "s1":
            return [self.pnet_s1, *shared]
        return [self.pnet_s2, *shared] + ([self.diffusion] if self.diffusion is not None else [])

    def begin_stage(self, stage: str) -> None:
        """la-clip: the feature learner trains. s1: PNET_S1 + LLformer (LA-CLIP frozen). s2:
        PNET_S2 + denoiser + LLformer, continuing from s1 (LA-CLIP and PNET_S1 frozen: the
        teacher). CLIP and a MobileFaceNet are always frozen."""
        super().begin_stage(stage)
        if stage == "s2" and self.pnet_s2_input == "pnet-s1" and not self._s2_started:
            # a resumed run loads its own PNET_S2 from the checkpoint after this
            self.pnet_s2.load_state_dict(self.pnet_s1.state_dict())
        if stage == "s2":
            self._s2_started = True
        self.requires_grad_(False)
        for m in self._trainable(stage):
            m.requires_grad_(True)   # a MobileFaceNet landmark encoder keeps its network frozen
        self.train(self.training)

    def train(self, mode: bool = True):
        """Outside its own stage LA-CLIP stays in eval mode (its standardisation statistics are
        frozen with its weights)."""
        super().train(mode)
        if self.stage != "la-clip":
            self.la_clip.eval()
        return self

    def end_epoch(self, epoch: int, stage: str) -> None:
        self.clip.save_cache()

    # -- pieces ----------------------------------------------------------------------------
    def captions(self, labels: Tensor, batch: dict[str, Any]) -> list[str]:
        """The batch's captions from its labels and ``batch["meta"]`` (see :mod:`models.captions`)."""
        return batch_captions(labels.tolist(), self.class_names, batch.get("meta"), self.caption_template,
                              self.caption_rules, self.caption_content)

    def prior_s1(self, la: tuple[Tensor, Tensor], labels: Tensor | None = None,
                 captions: list[str] | None = None) -> Tensor:
        """Eq. 1: ``Z = PNET_S1([f_c^I, f_l^I], context)`` with the LA-CLIP embeddings ``la`` =
        ``(f_c^I, f_l^I)`` (:meth:`la_clip_embeddings`) as queries and, for
        ``pnet_s1_context="label"``, ``[f_l^t(y), f_c^t(caption)]`` as keys/values."""
        f_c, f_l = la
        queries = torch.stack([f_c, f_l], dim=1)
        if self.pnet_s1_context == "image":
            return self.pnet_s1(queries, queries)
        if labels is None or captions is None:
            raise ConfigError("this LLDif builds its stage-1 prior from the true label and caption "
                              "(pnet_s1_context='label', the oracle); train stage s2 for label-free inference, "
                              "or pass batch['label']", flag="stage")
        context = torch.stack([self.clip.encode_labels(labels).to(f_c), self.clip.encode_texts(captions).to(f_c)], 1)
        return self.pnet_s1(queries, context)

    def condition(self, img: Tensor, la: tuple[Tensor, Tensor] | None) -> Tensor:
        """Eq. 15: ``PNET_S2(x)`` on the normalised image, or, for the other ``pnet_s2_input``
        choices, a network on the LA-CLIP embeddings ``la`` = ``(f_c^I, f_l^I)``."""
        if self.pnet_s2_input == "image":
            return self.pnet_s2(self.norm(img))
        f_c, f_l = la
        if self.pnet_s2_input == "la-clip":
            return self.pnet_s2(torch.cat([f_c, f_l], dim=1))
        text = self.clip.text_embeddings.to(f_l)
        predicted = label_logits(f_l, text, self.la_clip.scales()[1]).softmax(-1) @ text
        return self.pnet_s2(torch.stack([f_c, f_l], dim=1), torch.stack([predicted, f_c], dim=1))

    def _classify(self, img: Tensor, prior: Tensor, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        x = self.norm(img)
        return self.former(x, prior, self.landmark_encoder(x, batch.get("landmarks")))

    def la_clip_embeddings(self, img: Tensor, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """``(f_c^I, f_l^I)``: LA-CLIP on the batch's image embeddings."""
        return self.la_clip(self._image_embeddings(img, batch))

    def _image_embeddings(self, img: Tensor, batch: dict[str, Any]) -> Tensor:
        """LA-CLIP's input: the frozen CLIP image embedding (cached per image id) or, with
        ``image_encoder="conv"``, the trainable tower's L2-normalised output."""
        tower = self.la_clip.tower
        if tower is None:
            return self.clip.encode_images(img, batch_ids(batch, img.shape[0]))
        return tower(img)

    # -- the interface ---------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], ctx: StepContext) -> StepOutput:
        img = prepare_images(batch, self.image_size)
        labels = batch["label"].to(img.device)
        if self.stage == "la-clip":
            return self._la_clip_step(img, labels, batch)
        if self.stage == "s1":
            captions = self.captions(labels, batch)
            z = self.prior_s1(self.la_clip_embeddings(img, batch), labels, captions)
            logits, feat = self._classify(img, z, batch)
            return StepOutput(logits, {"ce": F.cross_entropy(logits, labels)}, feat,
                              {"prior": z.detach(), "captions": captions})
        # the teacher's prior Z_S1 is needed by the KL / L1 terms and the DiffIR training start
        need_z1 = (self.kl_weight > 0 or self.l1_weight > 0
                   or (self.diffusion is not None and self.train_start == "q_sample"))
        # LA-CLIP is frozen in stage 2: its embeddings serve the teacher and the condition alike
        la = self.la_clip_embeddings(img, batch) if need_z1 or self.pnet_s2_input != "image" else None
        z1 = None
        if need_z1:
            with torch.no_grad():
                z1 = self.prior_s1(la, labels, self.captions(labels, batch))
        z2 = training_prior(self.diffusion, self.condition(img, la), z1, ctx, self.insert_noise,
                            from_target=self.train_start == "q_sample")
        logits, feat = self._classify(img, z2, batch)
        losses = {"ce": F.cross_entropy(logits, labels),
                  **prior_losses(z1, z2, self.kl_weight, self.kl_temperature, self.kl_direction, self.l1_weight)}
        extras: dict[str, Any] = {"prior": z2.detach()}
        if z1 is not None:
            extras["prior_s1"] = z1
        return StepOutput(logits, losses, feat, extras)

    def _la_clip_step(self, img: Tensor, labels: Tensor, batch: dict[str, Any]) -> StepOutput:
        """LA-CLIP's alignment losses (module doc of :mod:`models.la_clip`)."""
        f_c, f_l = self.la_clip_embeddings(img, batch)
        s_c, s_l = self.la_clip.scales()
        class_text = self.clip.text_embeddings.to(f_l)
        losses = {}
        captions = self.captions(labels, batch)
        if self.caption_weight > 0:
            cap = self.clip.encode_texts(captions).to(f_c)
            groups = caption_groups(captions).to(f_c.device)
            losses["caption"] = self.caption_weight * caption_alignment_loss(f_c, cap, groups, s_c)
        if self.label_weight > 0:
            losses["label"] = self.label_weight * label_alignment_loss(f_l, class_text, labels, s_l)
        if self.training:
            self.la_clip.trained_steps += 1
        return StepOutput(label_logits(f_l, class_text, s_l), losses, f_c.detach(), {"captions": captions})

    def predict(self, batch: dict[str, Any], ctx: StepContext | None = None) -> StepOutput:
        """la-clip: LA-CLIP's own classifier (the predicted label embedding against the class
        prompts). s1: the prior from the true label (``pnet_s1_context="label"``: needs
        ``batch["label"]``). s2: no label; the prior comes from ``T`` reverse steps (or PNET_S2
        alone with ``diffusion=False``)."""
        img = prepare_images(batch, self.image_size)
        if self.stage == "la-clip":
            f_c, f_l = self.la_clip_embeddings(img, batch)
            logits = label_logits(f_l, self.clip.text_embeddings.to(f_l), self.la_clip.scales()[1])
            return StepOutput(logits, {}, f_c, {})
        if self.stage == "s1":
            labels = batch.get("label")
            labels = labels.to(img.device) if labels is not None else None
            captions = self.captions(labels, batch) if labels is not None else None
            z = self.prior_s1(self.la_clip_embeddings(img, batch), labels, captions)
        else:
            la = self.la_clip_embeddings(img, batch) if self.pnet_s2_input != "image" else None
            z = predicted_prior(self.diffusion, self.condition(img, la), batch, img, self.predict_seed,
                                "lldif-predict", ctx, self.insert_noise)
        logits, feat = self._classify(img, z, batch)
        return StepOutput(logits, {}, feat, {"prior": z})
