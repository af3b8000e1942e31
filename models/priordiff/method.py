"""The shared skeleton of LRDif and LLDif: a prior from image + label (stage 1) recovered from
the image alone by a few diffusion steps (stage 2), modulating a DT/DIL former.

Both papers (LRDif Sec. 3, LLDif Sec. 3, after DiffIR) share::

    s1:  Z_S1 = PriorNet_S1(image embeddings, label)          -> former(x, Z_S1)   CE
    s2:  c = PriorNet_S2(x);  Z_S2 = T reverse steps from noise given c
         (training: from q(Z_T | Z_S1), gradients through the chain)
                                                              -> former(x, Z_S2)   CE + KL/L1

:class:`PriorDiffusionMethod` builds, in this order (the order fixes the initial weights for a
seed): the input normalisation, the frozen CLIP, the method's prior networks
(:meth:`~PriorDiffusionMethod.build_prior_networks`), the landmark encoder, the former and the
diffusion. It runs the stages, freezes what a stage does not train, and writes the training
and prediction steps once; a method states only what differs through a few hooks: its image
embeddings (:meth:`embed`), its stage-1 prior (:meth:`stage1_prior`), its stage-2 condition
(:meth:`condition`), extra losses and stages (LLDif's ``la-clip``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fercore.classes import class_list
from fercore.errors import ConfigError

from ..base import FERModel, Normalize, StepContext, StepOutput
from ..batch_inputs import prepare_images
from ..blocks.former import PriorLandmarkFormer
from ..blocks.prior_diffusion import PriorDenoiser, PriorDiffusion
from ..clip_encoders import FrozenCLIP
from ..landmarks import build_landmark_encoder
from ..stage2 import predicted_prior, prior_losses, training_prior
from .config import PriorMethodConfig, build_config

PRIOR_STAGES = ("s1", "s2")


def resolve_class_names(num_classes: int, class_names: Sequence[str] | None) -> list[str]:
    """The class names (the canonical order by default), one per class."""
    if class_names is None:
        class_names = (class_list(num_classes) if num_classes in (7, 8)
                       else [f"class {i}" for i in range(num_classes)])
    if len(class_names) != num_classes:
        raise ConfigError(f"{len(class_names)} names for {num_classes} classes", flag="class_names")
    return list(class_names)


class PriorDiffusionMethod(FERModel):
    """Base of the prior-diffusion methods (see the module doc).

    ``PriorDiffusionMethod(num_classes, class_names=..., config=..., **settings)``: ``config``
    (default: :attr:`config_class`'s defaults, the paper) with ``settings`` applied on top --
    flat names (``T=8``), dotted paths (``"diffusion.steps"``) or sections
    (``diffusion={"steps": 8}``), see :mod:`models.priordiff.config`. The resolved tree is
    ``self.settings``.
    """

    config_class: ClassVar[type[PriorMethodConfig]] = PriorMethodConfig
    stages = PRIOR_STAGES

    def __init__(self, num_classes: int = 7, *, class_names: Sequence[str] | None = None,
                 config: PriorMethodConfig | None = None, **settings: Any):
        super().__init__(num_classes)
        cfg = self.settings = build_config(self.config_class, settings, config)
        self.stages = self.check_stages(cfg)
        cfg.check()
        self.class_names = resolve_class_names(num_classes, class_names)
        self.image_size = cfg.image_size
        self.prior_dim = cfg.prior.dim
        d, f, lm, c = cfg.diffusion, cfg.former, cfg.landmarks, cfg.clip
        self.use_diffusion, self.insert_noise = d.enabled, d.insert_noise
        self.predict_seed = cfg.predict_seed
        self._s2_started = False

        self.norm = Normalize()
        self.clip = FrozenCLIP(self.class_names, c.model, c.pretrained, c.template, c.init_seed, c.normalize,
                               c.cache, c.cache_dir, c.center_text)
        self.build_prior_networks(cfg, self.clip.embed_dim)
        self.landmark_encoder = build_landmark_encoder(
            lm.kind, f.dims, cfg.image_size, f.stem_stride, heatmap_sigma=lm.heatmap_sigma,
            heatmap_groups=lm.heatmap_groups, mobilefacenet_path=lm.mobilefacenet_path)
        needs = set(self.batch_needs())
        if self.landmark_encoder.needs_landmarks:
            needs.add("landmarks")
        self.requires = frozenset(needs)
        self.former = PriorLandmarkFormer(
            num_classes, cfg.image_size, cfg.prior.dim, f.dims, f.blocks, f.heads, f.ffn_expansion, f.stem_stride,
            f.dil_heads, f.windows, f.image_stream, f.embed_dim, f.vit_depth, f.vit_heads, f.mlp_ratio,
            f.layer_scale)
        self.diffusion = (PriorDiffusion(PriorDenoiser(cfg.prior.dim, d.steps, d.denoiser_depth, d.denoiser_skip),
                                         d.steps, d.schedule, d.beta_start, d.beta_end, d.parameterization)
                          if d.enabled else None)
        self.finish_build(cfg)
        self.begin_stage(self.stages[0])

    # -- what a method states -------------------------------------------------------------
    @classmethod
    def check_stages(cls, cfg: PriorMethodConfig) -> tuple[str, ...]:
        """The stages this configuration trains (``cfg.train_stages``, checked)."""
        raise NotImplementedError

    @classmethod
    def planned_stages(cls, kwargs: Mapping[str, Any]) -> tuple[str, ...]:
        """The stages a model built with ``kwargs`` trains (LLDif with a loaded LA-CLIP skips
        ``la-clip``), without building it: :meth:`check_stages` on the resolved config."""
        return cls.check_stages(build_config(cls.config_class, kwargs))

    def build_prior_networks(self, cfg: PriorMethodConfig, embed_dim: int) -> None:
        """Create the image tower (if trainable) and the stage-1 and stage-2 prior networks."""
        raise NotImplementedError

    def finish_build(self, cfg: PriorMethodConfig) -> None:
        """After every module exists (e.g. load trained weights)."""

    def batch_needs(self) -> set[str]:
        """Batch keys the method reads besides the landmarks (e.g. ``{"meta"}``)."""
        return set()

    def prior_networks(self) -> tuple[nn.Module, nn.Module]:
        """``(stage-1 prior network, stage-2 prior network)``."""
        raise NotImplementedError

    def encoder_modules(self) -> list[nn.Module]:
        """Modules that train in both prior stages besides the former and landmark encoder."""
        return []

    def start_stage2(self) -> None:
        """The first start of stage 2 (a resumed run loads its own weights after this)."""

    def embed(self, img: Tensor, batch: dict[str, Any], need_teacher: bool) -> Any:
        """The batch's image embeddings for :meth:`stage1_prior` and :meth:`condition`."""
        raise NotImplementedError

    def stage1_prior(self, emb: Any, img: Tensor, labels: Tensor | None, batch: dict[str, Any],
                     teacher: bool = False) -> Tensor:
        """``Z_S1`` (``teacher``: as the frozen stage-1 networks give it in stage 2)."""
        raise NotImplementedError

    def condition(self, img: Tensor, emb: Any) -> Tensor:
        """The stage-2 condition ``c`` of the denoiser (Eq. 15)."""
        raise NotImplementedError

    def embedding_losses(self, emb: Any, labels: Tensor) -> dict[str, Tensor]:
        """Loss terms on the image embeddings themselves (both prior stages)."""
        return {}

    def stage1_extras(self, labels: Tensor, batch: dict[str, Any]) -> dict[str, Any]:
        """Extras a stage-1 training step reports besides the prior."""
        return {}

    def other_stage_step(self, img: Tensor, labels: Tensor | None, batch: dict[str, Any]) -> StepOutput:
        """A training (``labels`` given) or prediction step of a stage besides s1 and s2."""
        raise ValueError(f"{self.method}: no step for stage {self.stage!r}")

    def train_from_target(self) -> bool:
        """The training chain starts from ``q(Z_T | Z_S1)`` (DiffIR) rather than pure noise."""
        return True

    # -- stages ---------------------------------------------------------------------------
    def trainable_modules(self, stage: str) -> list[nn.Module]:
        """s1: the stage-1 prior network + former + landmark encoder (+ a trainable tower);
        s2: the stage-2 prior network, the denoiser and the same."""
        s1, s2 = self.prior_networks()
        shared = [self.landmark_encoder, self.former, *self.encoder_modules()]
        if stage == "s1":
            return [s1, *shared]
        return [s2, *shared] + ([self.diffusion] if self.diffusion is not None else [])

    def begin_stage(self, stage: str) -> None:
        """Freeze everything but the stage's modules (CLIP and a MobileFaceNet stay frozen);
        stage 2 continues from stage 1 with the stage-1 networks frozen as the teacher."""
        super().begin_stage(stage)
        if stage == "s2" and not self._s2_started:
            self.start_stage2()
            self._s2_started = True
        self.requires_grad_(False)
        for m in self.trainable_modules(stage):
            m.requires_grad_(True)   # a MobileFaceNet landmark encoder keeps its network frozen
        self.train(self.training)

    def end_epoch(self, epoch: int, stage: str) -> None:
        self.clip.save_cache()

    # -- shared pieces --------------------------------------------------------------------
    def _images(self, batch: dict[str, Any]) -> Tensor:
        """The batch's images at the working size (:func:`models.batch_inputs.prepare_images`)."""
        return prepare_images(batch, self.image_size)

    def _classify(self, img: Tensor, prior: Tensor, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        x = self.norm(img)
        return self.former(x, prior, self.landmark_encoder(x, batch.get("landmarks")))

    def needs_teacher(self) -> bool:
        """Stage 2 needs ``Z_S1`` for the KL / L1 terms or the DiffIR training start."""
        losses = self.settings.losses
        return (losses.kl_weight > 0 or losses.l1_weight > 0
                or (self.diffusion is not None and self.train_from_target()))

    # -- the interface --------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], ctx: StepContext) -> StepOutput:
        img = self._images(batch)
        labels = batch["label"].to(img.device)
        if self.stage not in PRIOR_STAGES:
            return self.other_stage_step(img, labels, batch)
        need_z1 = self.stage == "s2" and self.needs_teacher()
        emb = self.embed(img, batch, need_z1)
        losses = self.embedding_losses(emb, labels)
        if self.stage == "s1":
            z = self.stage1_prior(emb, img, labels, batch)
            logits, feat = self._classify(img, z, batch)
            return StepOutput(logits, {"ce": F.cross_entropy(logits, labels), **losses}, feat,
                              {"prior": z.detach(), **self.stage1_extras(labels, batch)})
        z1 = None
        if need_z1:
            with torch.no_grad():
                z1 = self.stage1_prior(emb, img, labels, batch, teacher=True)
        z2 = training_prior(self.diffusion, self.condition(img, emb), z1, ctx, self.insert_noise,
                            from_target=self.train_from_target())
        logits, feat = self._classify(img, z2, batch)
        lo = self.settings.losses
        losses = {"ce": F.cross_entropy(logits, labels), **losses,
                  **prior_losses(z1, z2, lo.kl_weight, lo.kl_temperature, lo.kl_direction, lo.l1_weight)}
        extras: dict[str, Any] = {"prior": z2.detach()}
        if z1 is not None:
            extras["prior_s1"] = z1
        return StepOutput(logits, losses, feat, extras)

    def predict(self, batch: dict[str, Any], ctx: StepContext | None = None) -> StepOutput:
        """s2: no label; the prior comes from ``T`` reverse steps from per-item noise (or the
        stage-2 prior network alone with ``diffusion=False``). s1 (the oracle rows of Table 5)
        builds its prior from ``batch["label"]``."""
        img = self._images(batch)
        if self.stage not in PRIOR_STAGES:
            return self.other_stage_step(img, None, batch)
        emb = self.embed(img, batch, False)
        if self.stage == "s1":
            labels = batch.get("label")
            z = self.stage1_prior(emb, img, None if labels is None else labels.to(img.device), batch)
        else:
            z = predicted_prior(self.diffusion, self.condition(img, emb), batch, img, self.predict_seed,
                                f"{self.method}-predict", ctx, self.insert_noise)
        logits, feat = self._classify(img, z, batch)
        return StepOutput(logits, {}, feat, {"prior": z})
