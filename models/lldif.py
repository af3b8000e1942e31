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
setting; every choice the paper leaves open is a setting of :class:`LLDifConfig`, documented in
``docs/lldif.md``. The skeleton shared with LRDif is :class:`models.priordiff.PriorDiffusionMethod`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from fercore.errors import ConfigError

from .base import StepOutput
from .batch_inputs import batch_ids
from .blocks.conv_image_encoder import ConvImageEncoder
from .blocks.fpen import FPEN
from .blocks.pnet import PNetS1, PNetS2
from .captions import CAPTION_CONTENTS, DEFAULT_CAPTION_TEMPLATE, CaptionRules, batch_captions, check_template
from .la_clip import (LabelAwareCLIP, caption_alignment_loss, caption_groups, la_clip_state_from_checkpoint,
                      label_alignment_loss, label_logits)
from .priordiff.config import (ClipConfig, DiffusionConfig, EncoderConfig, FormerConfig, LandmarkConfig,
                               LossConfig, PriorConfig, PriorMethodConfig, flag, preset, section, settings_signature)
from .priordiff.method import PriorDiffusionMethod
from .recipe import Recipe
from .registry import register_model

STAGES = ("la-clip", "s1", "s2")
#: Stage lists a model may train (prefixes of STAGES; without "la-clip" when LA-CLIP is loaded).
TRAIN_STAGES = (STAGES[:1], STAGES[:2], STAGES)
PNET_S1_CONTEXTS = ("label", "image")
PNET_S2_INPUTS = ("image", "la-clip", "pnet-s1")
TRAIN_STARTS = ("q_sample", "noise")


@dataclass
class LAClipConfig:
    """LA-CLIP (:mod:`models.la_clip`): adapter width, a checkpoint to load it from (the
    ``la-clip`` stage is then skipped) and the weights of its two alignment losses."""

    PREFIX: ClassVar[str] = "la_clip_"
    hidden: int = 512
    checkpoint: str | None = None
    caption_weight: float = flag(1.0, "caption_weight")
    label_weight: float = flag(1.0, "label_weight")


@dataclass
class CaptionConfig:
    """Captions (:mod:`models.captions`): template, content and rules."""

    PREFIX: ClassVar[str] = "caption_"
    template: str = DEFAULT_CAPTION_TEMPLATE
    content: str = "label+degradation"
    rules: Mapping[str, float] | None = None


@dataclass
class PNetPriorConfig(PriorConfig):
    """PNET_S1 (cross-attention, its context) and stage 2's prior network: PNET_S2 on the
    pixels (the paper), an FPEN on the LA-CLIP embeddings, or a copy of PNET_S1."""

    depth: int = flag(1, "pnet_depth")
    heads: int = flag(4, "pnet_heads")
    s1_context: str = flag("label", "pnet_s1_context")
    s2_input: str = flag("image", "pnet_s2_input")
    s2_width: int = flag(64, "pnet_s2_width")
    s2_blocks: int = flag(4, "pnet_s2_blocks")
    s2_stride: int = flag(4, "pnet_s2_stride")


@dataclass
class LLDifDiffusionConfig(DiffusionConfig):
    """Where the training chain starts: ``q(Z_T | Z_S1)`` (DiffIR) or pure noise."""

    train_start: str = "q_sample"


@dataclass
class LLDifConfig(PriorMethodConfig):
    """Every LLDif setting; the defaults are the paper's design at the paper's sizes."""

    prior: PNetPriorConfig = section(PNetPriorConfig)
    diffusion: LLDifDiffusionConfig = section(LLDifDiffusionConfig)
    losses: LossConfig = section(LossConfig, kl_weight=0.0)
    train_stages: tuple[str, ...] = STAGES
    la_clip: LAClipConfig = section(LAClipConfig)
    captions: CaptionConfig = section(CaptionConfig)

    def check(self) -> None:
        super().check()
        la = self.la_clip
        for name in ("caption_weight", "label_weight"):
            if getattr(la, name) < 0:
                raise ConfigError(f"must be >= 0, got {getattr(la, name)}", flag=name)
        if la.caption_weight == 0 and la.label_weight == 0 and "la-clip" in self.train_stages:
            raise ConfigError("LA-CLIP needs a loss: caption_weight or label_weight must be > 0", flag="caption_weight")
        for name, value, choices in (("pnet_s1_context", self.prior.s1_context, PNET_S1_CONTEXTS),
                                     ("pnet_s2_input", self.prior.s2_input, PNET_S2_INPUTS),
                                     ("train_start", self.diffusion.train_start, TRAIN_STARTS),
                                     ("caption_content", self.captions.content, CAPTION_CONTENTS)):
            if value not in choices:
                raise ConfigError(f"choose one of {', '.join(choices)}, got {value!r}", flag=name)
        if self.image_size % self.prior.s2_stride:
            raise ConfigError(f"image_size {self.image_size} must be divisible by pnet_s2_stride "
                              f"{self.prior.s2_stride}", flag="pnet_s2_stride")


#: The paper's design at the paper's sizes (the defaults) and at tiny sizes, and the tiny
#: preset: ``tiny-paper`` plus the offline stand-ins and fixes that make the tiny model learn in
#: a few epochs (docs/lldif.md, "The tiny preset on the sample set"): LA-CLIP on a trainable
#: conv tower instead of a random CLIP image tower, stage 2 starting from PNET_S1 fed LA-CLIP's
#: predicted label, unit-scale priors, DiffIR's L1 term.
PAPER = LLDifConfig()
TINY_PAPER = LLDifConfig(
    image_size=64, clip=ClipConfig(model="tiny", pretrained=None), la_clip=LAClipConfig(hidden=64),
    prior=PNetPriorConfig(dim=32, heads=2, s2_width=16, s2_blocks=1),
    former=FormerConfig(dims=(16, 32, 64), blocks=(1, 1, 1), heads=(1, 2, 2), ffn_expansion=2.0, stem_stride=4,
                        dil_heads=(1, 2, 4), embed_dim=64, vit_depth=1, vit_heads=2),
    landmarks=LandmarkConfig(kind="none"))
TINY = dataclasses.replace(
    TINY_PAPER, encoder=EncoderConfig(kind="conv", widths=(8, 16, 32, 64), gray=True),
    prior=dataclasses.replace(TINY_PAPER.prior, s2_input="pnet-s1", norm=True),
    diffusion=LLDifDiffusionConfig(denoiser_skip=True), losses=LossConfig(kl_weight=0.0, l1_weight=5.0))
TINY_RECIPE = {"input_size": 64, "lr": 1e-3, "batch_size": 32, "schedule": "cosine", "epochs": 12,
               "stage_epochs": {"la-clip": 8, "s1": 1, "s2": 3}}
PRESETS = {"paper": preset(PAPER), "tiny-paper": preset(TINY_PAPER, TINY_RECIPE), "tiny": preset(TINY, TINY_RECIPE)}
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
    presets=PRESETS,
    default_preset="paper",
    description="LLDif: label-aware CLIP prior (LA-CLIP + PNET_S1) recovered by few-step diffusion from the "
                "image (PNET_S2), LLformer",
    paper="Wang, Zhang, Sankaranarayana. LLDif: Diffusion Models for Low-light Emotion Recognition",
    variants=VARIANTS)
class LLDif(PriorDiffusionMethod):
    """LLDif (see the module doc). ``LLDif(num_classes, class_names=..., config=LLDifConfig(...),
    **settings)``; every setting (flat name, see ``docs/lldif.md``) is also a keyword of
    ``create_model("lldif", ...)``.

    What LLDif states over the shared skeleton: a third stage ``la-clip`` first (LA-CLIP
    trains alone, then stays frozen); the image embeddings are LA-CLIP's ``(f_c^I, f_l^I)``;
    the prior networks are PNET_S1 (cross-attention with the label and caption text) and
    PNET_S2 (on the pixels); the batch brings ``meta`` for the captions.
    """

    config_class = LLDifConfig
    stages = STAGES

    def __init__(self, num_classes: int = 7, **settings: Any):
        super().__init__(num_classes, **settings)

    # -- the method's parts ---------------------------------------------------------------
    @classmethod
    def check_stages(cls, cfg: LLDifConfig) -> tuple[str, ...]:
        stages, checkpoint = tuple(cfg.train_stages), cfg.la_clip.checkpoint
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

    def build_prior_networks(self, cfg: LLDifConfig, embed_dim: int) -> None:
        c, p, f, e = cfg.clip, cfg.prior, cfg.former, cfg.encoder
        self.caption_template = check_template(cfg.captions.template)
        self.caption_rules = CaptionRules.from_settings(cfg.captions.rules)
        self.la_clip = LabelAwareCLIP(embed_dim, cfg.la_clip.hidden, identity=la_clip_identity(
            c.model, c.pretrained, c.init_seed, c.normalize, c.center_text, self.clip.prompts, e.kind))
        # the trainable tower lives inside LA-CLIP: it trains, freezes, saves and loads with it
        self.la_clip.tower = (ConvImageEncoder(f.dims, f.stem_stride, embed_dim, e.widths, e.gray)
                              if e.kind == "conv" else None)
        self.pnet_s1 = PNetS1(embed_dim, p.dim, 2, 2, p.depth, p.heads, out_norm=p.norm)
        self.pnet_s2: nn.Module
        if p.s2_input == "image":
            self.pnet_s2 = PNetS2(p.dim, p.s2_width, p.s2_blocks, p.s2_stride, out_norm=p.norm)
        elif p.s2_input == "la-clip":
            self.pnet_s2 = FPEN(2 * embed_dim, p.dim, p.fpen_layers, p.norm)
        else:
            self.pnet_s2 = PNetS1(embed_dim, p.dim, 2, 2, p.depth, p.heads, out_norm=p.norm)

    def finish_build(self, cfg: LLDifConfig) -> None:
        if cfg.la_clip.checkpoint is not None:
            self.la_clip.load_state_dict(la_clip_state_from_checkpoint(cfg.la_clip.checkpoint))

    def batch_needs(self) -> set[str]:
        return {"meta"} if self.settings.captions.content != "label" else set()

    def prior_networks(self) -> tuple[nn.Module, nn.Module]:
        return self.pnet_s1, self.pnet_s2

    def trainable_modules(self, stage: str) -> list[nn.Module]:
        """la-clip: the feature learner; s1 / s2 as the skeleton (LA-CLIP frozen)."""
        return [self.la_clip] if stage == "la-clip" else super().trainable_modules(stage)

    def start_stage2(self) -> None:
        if self.settings.prior.s2_input == "pnet-s1":
            self.pnet_s2.load_state_dict(self.pnet_s1.state_dict())

    def train(self, mode: bool = True):
        """Outside its own stage LA-CLIP stays in eval mode (its standardisation statistics are
        frozen with its weights)."""
        super().train(mode)
        if self.stage != "la-clip":
            self.la_clip.eval()
        return self

    def train_from_target(self) -> bool:
        return self.settings.diffusion.train_start == "q_sample"

    # -- embeddings and priors ------------------------------------------------------------
    def captions(self, labels: Tensor, batch: dict[str, Any]) -> list[str]:
        """The batch's captions from its labels and ``batch["meta"]`` (see :mod:`models.captions`)."""
        return batch_captions(labels.tolist(), self.class_names, batch.get("meta"), self.caption_template,
                              self.caption_rules, self.settings.captions.content)

    def prior_s1(self, la: tuple[Tensor, Tensor], labels: Tensor | None = None,
                 captions: list[str] | None = None) -> Tensor:
        """Eq. 1: ``Z = PNET_S1([f_c^I, f_l^I], context)`` with the LA-CLIP embeddings ``la`` =
        ``(f_c^I, f_l^I)`` (:meth:`la_clip_embeddings`) as queries and, for
        ``pnet_s1_context="label"``, ``[f_l^t(y), f_c^t(caption)]`` as keys/values."""
        f_c, f_l = la
        queries = torch.stack([f_c, f_l], dim=1)
        if self.settings.prior.s1_context == "image":
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
        if self.settings.prior.s2_input == "image":
            return self.pnet_s2(self.norm(img))
        f_c, f_l = la
        if self.settings.prior.s2_input == "la-clip":
            return self.pnet_s2(torch.cat([f_c, f_l], dim=1))
        text = self.clip.text_embeddings.to(f_l)
        predicted = label_logits(f_l, text, self.la_clip.scales()[1]).softmax(-1) @ text
        return self.pnet_s2(torch.stack([f_c, f_l], dim=1), torch.stack([predicted, f_c], dim=1))

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

    def embed(self, img: Tensor, batch: dict[str, Any], need_teacher: bool) -> tuple[Tensor, Tensor] | None:
        """LA-CLIP's ``(f_c^I, f_l^I)`` where stage 1, the teacher or the condition reads them."""
        if self.stage == "s1" or need_teacher or self.settings.prior.s2_input != "image":
            return self.la_clip_embeddings(img, batch)
        return None

    def stage1_prior(self, emb: tuple[Tensor, Tensor], img: Tensor, labels: Tensor | None,
                     batch: dict[str, Any], teacher: bool = False) -> Tensor:
        return self.prior_s1(emb, labels, self.captions(labels, batch) if labels is not None else None)

    def stage1_extras(self, labels: Tensor, batch: dict[str, Any]) -> dict[str, Any]:
        return {"captions": self.captions(labels, batch)}

    # -- the la-clip stage ----------------------------------------------------------------
    def other_stage_step(self, img: Tensor, labels: Tensor | None, batch: dict[str, Any]) -> StepOutput:
        """The ``la-clip`` stage: its alignment losses (training, ``labels`` given), or its own
        classifier, the predicted label embedding against the class prompts (prediction)."""
        if labels is not None:
            return self._la_clip_step(img, labels, batch)
        f_c, f_l = self.la_clip_embeddings(img, batch)
        logits = label_logits(f_l, self.clip.text_embeddings.to(f_l), self.la_clip.scales()[1])
        return StepOutput(logits, {}, f_c, {})

    def _la_clip_step(self, img: Tensor, labels: Tensor, batch: dict[str, Any]) -> StepOutput:
        """LA-CLIP's alignment losses (module doc of :mod:`models.la_clip`)."""
        f_c, f_l = self.la_clip_embeddings(img, batch)
        s_c, s_l = self.la_clip.scales()
        class_text = self.clip.text_embeddings.to(f_l)
        losses = {}
        captions = self.captions(labels, batch)
        if self.settings.la_clip.caption_weight > 0:
            cap = self.clip.encode_texts(captions).to(f_c)
            groups = caption_groups(captions).to(f_c.device)
            losses["caption"] = self.settings.la_clip.caption_weight * caption_alignment_loss(f_c, cap, groups, s_c)
        if self.settings.la_clip.label_weight > 0:
            losses["label"] = self.settings.la_clip.label_weight * label_alignment_loss(f_l, class_text, labels, s_l)
        if self.training:
            self.la_clip.trained_steps += 1
        return StepOutput(label_logits(f_l, class_text, s_l), losses, f_c.detach(), {"captions": captions})


LLDif.__init__.__signature__ = settings_signature(LLDifConfig)  # what create_model and --model-opt accept
