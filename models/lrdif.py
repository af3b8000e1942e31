"""LRDif: diffusion on an emotion prior for FER on under-display-camera images.

Wang, Zhang, Sankaranarayana, "LRDif: Diffusion Models for Under-Display Camera Emotion
Recognition" (arXiv 2402.00250), Sec. 3. Two stages (the skeleton shared with LLDif is
:class:`models.priordiff.PriorDiffusionMethod`):

* **s1** -- ``Z = FPEN_S1(concat(E_L(y), E_I(x)))`` (Eq. 1) from frozen CLIP text and image
  embeddings of the label and the image; ``Z`` modulates every block of the UDCformer
  (DTnetwork Eq. 2-4 + DILnetwork Eq. 5-9 + fusion and ViT Eq. 10-12); loss CE (Eq. 13).
* **s2** -- the label is gone: ``c = FPEN_S2(E_I(x))`` (Eq. 15) conditions a denoiser that
  runs ``T`` reverse steps on the prior (Eq. 14, 16); the UDCformer, FPEN_S2 and the denoiser
  train jointly with CE + KL(softmax Z_S1 || softmax Z_S2) (Eq. 17-18), the stage-1 network
  ``FPEN_S1`` frozen as the teacher. Training starts the chain from ``q(Z_T | Z_S1)`` and
  back-propagates through all ``T`` steps; inference starts from Gaussian noise.

Table 5's rows are variants (``create_model("lrdif", variant="S2-V4")``); every choice the
paper leaves open is a setting of :class:`LRDifConfig`, documented in ``docs/lrdif.md``.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fercore.errors import ConfigError

from .batch_inputs import batch_ids
from .blocks.conv_image_encoder import ConvImageEncoder
from .blocks.fpen import FPEN
from .priordiff.config import (IMAGE_ENCODERS, ClipConfig, DiffusionConfig, EncoderConfig, FormerConfig,
                               LandmarkConfig, LossConfig, PriorConfig, PriorMethodConfig, flag, preset, section,
                               settings_signature)
from .priordiff.method import PriorDiffusionMethod
from .recipe import Recipe
from .registry import register_model

__all__ = ["FPEN", "ConvImageEncoder", "IMAGE_ENCODERS", "LRDif", "LRDifConfig", "PRESETS", "VARIANTS"]

ENCODER_OUTPUTS = ("features", "label")
FPEN_S2_INITS = ("fresh", "s1")
TRAIN_STAGES = (("s1",), ("s1", "s2"))


@dataclass
class LRDifEncoderConfig(EncoderConfig):
    """LRDif's ``E_I(x)``: a conv stand-in may give its features or the predicted label
    embedding (``output="label"``, LLDif's ``f_l^I``) and learn a CLIP-style alignment."""

    output: str = "features"
    align_weight: float = 0.0
    align_temperature: float = 0.07


@dataclass
class FPENPriorConfig(PriorConfig):
    """FPEN_S1 / FPEN_S2; ``s2_init="s1"`` starts FPEN_S2 from FPEN_S1 (not in the paper)."""

    s2_init: str = flag("fresh", "fpen_s2_init")


@dataclass
class LRDifConfig(PriorMethodConfig):
    """Every LRDif setting; the defaults are the paper's design at the paper's sizes."""

    encoder: LRDifEncoderConfig = section(LRDifEncoderConfig)
    prior: FPENPriorConfig = section(FPENPriorConfig)

    def check(self) -> None:
        super().check()
        e = self.encoder
        if e.align_weight < 0:
            raise ConfigError(f"must be >= 0, got {e.align_weight}", flag="encoder_align_weight")
        if e.output not in ENCODER_OUTPUTS:
            raise ConfigError(f"choose one of {', '.join(ENCODER_OUTPUTS)}, got {e.output!r}", flag="encoder_output")
        if e.output == "label" and e.kind != "conv":
            raise ConfigError("a predicted label embedding needs the trainable conv encoder; set "
                              "image_encoder='conv'", flag="encoder_output")
        if self.prior.s2_init not in FPEN_S2_INITS:
            raise ConfigError(f"choose one of {', '.join(FPEN_S2_INITS)}, got {self.prior.s2_init!r}",
                              flag="fpen_s2_init")
        if e.align_temperature <= 0:
            raise ConfigError(f"must be > 0, got {e.align_temperature}", flag="encoder_align_temperature")
        if e.align_weight > 0 and e.kind != "conv":
            raise ConfigError("aligns the trainable conv image encoder with the label text embeddings; "
                              "set image_encoder='conv' (the CLIP image tower is frozen)", flag="encoder_align_weight")


#: The paper's design at the paper's sizes (the defaults) and at tiny sizes, and the tiny
#: preset: ``tiny-paper`` plus the offline stand-ins and fixes that make the tiny model learn in
#: a few epochs (docs/lrdif.md, "The tiny preset on the sample set"): a trainable conv encoder
#: aligned with the label text embeddings instead of a random CLIP image tower, unit-scale
#: priors, stage 2 starting from stage 1, DiffIR's L1 term.
PAPER = LRDifConfig()
TINY_PAPER = LRDifConfig(
    image_size=64, clip=ClipConfig(model="tiny", pretrained=None),
    prior=FPENPriorConfig(dim=32, fpen_layers=2),
    former=FormerConfig(dims=(16, 32, 64), blocks=(1, 1, 1), heads=(1, 2, 2), ffn_expansion=2.0, dil_heads=(1, 2, 4),
                        embed_dim=64, vit_depth=1, vit_heads=2),
    landmarks=LandmarkConfig(kind="none"))
TINY = dataclasses.replace(
    TINY_PAPER,
    encoder=LRDifEncoderConfig(kind="conv", widths=(8, 16, 32, 64), gray=True, output="label", align_weight=1.0),
    prior=FPENPriorConfig(dim=32, fpen_layers=2, norm=True, s2_init="s1"),
    diffusion=DiffusionConfig(denoiser_skip=True), losses=LossConfig(l1_weight=5.0))
TINY_RECIPE = {"input_size": 64, "lr": 1e-3, "batch_size": 32, "schedule": "cosine",
               "epochs": 7, "stage_epochs": {"s1": 1, "s2": 6}}
PRESETS = {"paper": preset(PAPER), "tiny-paper": preset(TINY_PAPER, TINY_RECIPE),
           "tiny": preset(TINY, {**TINY_RECIPE, "lr_mult": {"fpen_s2.": 5.0, "diffusion.": 5.0}})}
#: LRDif Table 5 (UDC-RAF-DB): ground truth / diffusion / loss / inserted noise.
VARIANTS = {
    "S1": {"train_stages": ("s1",)},
    "S2-V1": {"diffusion": False, "kl_weight": 0.0},
    "S2-V2": {"diffusion": True, "kl_weight": 0.0, "insert_noise": False},
    "S2-V3": {"diffusion": True, "kl_weight": 1.0, "insert_noise": True},
    "S2-V4": {"diffusion": True, "kl_weight": 1.0, "insert_noise": False},
}


@register_model(
    "lrdif",
    recipe=Recipe(optimizer="adam", lr=3.5e-4, weight_decay=1e-4, schedule="none", epochs=200, batch_size=64,
                  input_size=224, augment=("hflip",), stage_epochs={"s1": 100, "s2": 100},
                  source="LRDif Sec. 4.2: Adam, lr 3.5e-4, weight decay 1e-4, batch 64, 100 epochs "
                         "(taken per stage, as DiffIR trains both stages; hflip and no schedule: our choice)"),
    presets=PRESETS,
    default_preset="paper",
    description="LRDif: CLIP prior (stage 1) recovered by few-step diffusion (stage 2), UDCformer",
    paper="Wang, Zhang, Sankaranarayana. LRDif: Diffusion Models for Under-Display Camera Emotion "
          "Recognition. arXiv:2402.00250",
    variants=VARIANTS)
class LRDif(PriorDiffusionMethod):
    """LRDif (see the module doc). ``LRDif(num_classes, class_names=..., config=LRDifConfig(...),
    **settings)``; every setting (flat name, see ``docs/lrdif.md``) is also a keyword of
    ``create_model("lrdif", ...)``.

    What LRDif states over the shared skeleton: ``E_I(x)`` is CLIP's image embedding (or a
    trainable :class:`ConvImageEncoder`, which trains in both stages, a frozen copy feeding the
    teacher in stage 2); the prior networks are FPENs (Eq. 1, 15).
    """

    config_class = LRDifConfig

    def __init__(self, num_classes: int = 7, **settings: Any):
        super().__init__(num_classes, **settings)

    # -- the method's parts ---------------------------------------------------------------
    @classmethod
    def check_stages(cls, cfg: LRDifConfig) -> tuple[str, ...]:
        if tuple(cfg.train_stages) not in TRAIN_STAGES:
            raise ConfigError(f"must be one of {TRAIN_STAGES}, got {cfg.train_stages!r}", flag="train_stages")
        return tuple(cfg.train_stages)

    def build_prior_networks(self, cfg: LRDifConfig, embed_dim: int) -> None:
        e, f = cfg.encoder, cfg.former
        self.align_weight, self.align_temperature = e.align_weight, e.align_temperature
        # E_I(x): the frozen CLIP image tower (the paper) or a trainable conv encoder (offline);
        # in stage 2 a frozen copy of the stage-1 encoder feeds the teacher FPEN_S1.
        self.image_encoder = (ConvImageEncoder(f.dims, f.stem_stride, embed_dim, e.widths, e.gray)
                              if e.kind == "conv" else None)
        self.image_encoder_s1: nn.Module | None = None
        self.fpen_s1 = FPEN(2 * embed_dim, cfg.prior.dim, cfg.prior.fpen_layers, cfg.prior.norm)
        self.fpen_s2 = FPEN(embed_dim, cfg.prior.dim, cfg.prior.fpen_layers, cfg.prior.norm)

    def prior_networks(self) -> tuple[nn.Module, nn.Module]:
        return self.fpen_s1, self.fpen_s2

    def encoder_modules(self) -> list[nn.Module]:
        return [] if self.image_encoder is None else [self.image_encoder]

    def start_stage2(self) -> None:
        if self.settings.prior.s2_init == "s1":
            self.init_fpen_s2_from_s1()
        if self.image_encoder is not None:
            self.image_encoder_s1 = copy.deepcopy(self.image_encoder).eval()

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

    # -- embeddings and priors ------------------------------------------------------------
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
            return self.clip.encode_images(img, batch_ids(batch, img.shape[0])), None
        encoder = self.image_encoder
        if teacher and self.image_encoder_s1 is not None:
            encoder = self.image_encoder_s1.eval()
        feats = encoder(img)
        text = self.clip.text_embeddings.to(feats)
        logits = F.normalize(feats, dim=-1) @ F.normalize(text, dim=-1).t() / self.align_temperature
        if self.settings.encoder.output == "label":
            return logits.softmax(-1) @ text, logits
        return feats, logits

    def embed(self, img: Tensor, batch: dict[str, Any], need_teacher: bool) -> tuple[Tensor, Tensor | None]:
        return self._encode(img, batch)

    def prior_s1(self, labels: Tensor, image_emb: Tensor) -> Tensor:
        """Eq. 1: ``FPEN_S1(concat(E_L(y), E_I(x)))``."""
        return self.fpen_s1(torch.cat([self.clip.encode_labels(labels).to(image_emb), image_emb], dim=1))

    def stage1_prior(self, emb: tuple[Tensor, Tensor | None], img: Tensor, labels: Tensor | None,
                     batch: dict[str, Any], teacher: bool = False) -> Tensor:
        if labels is None:
            raise ConfigError("a stage-1 LRDif builds its prior from the true label (Table 5's oracle "
                              "row S1); train stage s2 for label-free inference, or pass batch['label']",
                              flag="stage")
        image_emb = emb[0]
        if teacher and self.image_encoder is not None:
            image_emb = self.image_embedding(img, batch, True)
        return self.prior_s1(labels, image_emb)

    def condition(self, img: Tensor, emb: tuple[Tensor, Tensor | None]) -> Tensor:
        """Eq. 15: ``FPEN_S2(E_I(x))``."""
        return self.fpen_s2(emb[0])

    def embedding_losses(self, emb: tuple[Tensor, Tensor | None], labels: Tensor) -> dict[str, Tensor]:
        """CLIP-style image-text alignment of the conv encoder (cross-entropy over the class
        text embeddings): what a pretrained CLIP image tower brings, learnt from the training
        labels, as LLDif's LA-CLIP aligns its predicted label embedding."""
        if self.align_weight <= 0:
            return {}
        return {"align": self.align_weight * F.cross_entropy(emb[1], labels)}


LRDif.__init__.__signature__ = settings_signature(LRDifConfig)  # what create_model and --model-opt accept
