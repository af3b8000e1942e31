"""LA-CLIP, LLDif's label-aware CLIP (LLDif Sec. 3.1): a feature learner on a frozen CLIP.

The feature learner ``F_l`` reads the frozen CLIP image embedding ``E_I(x)`` and gives two
embeddings in CLIP's text space::

    h     = Standardize(E_I(x))               per-dimension (x - mean) / std, statistics learnt
                                              in the la-clip stage
    f_c^I = normalize(E_I(x) + Adapter(h))    low-light feature embedding -> the caption's f_c^t
    f_l^I = normalize(LabelHead(h))           predicted label embedding   -> the label's  f_l^t

Adapter and LabelHead are two-layer MLPs (GELU); the adapter's last layer starts at 1% of its
default initialisation, so ``f_c^I`` starts at CLIP's own embedding. The standardisation
matters in low light: CLIP embeddings of dark images are nearly parallel (mean cosine 0.995
between low-light sample-set images with the tiny CLIP, 0.947 for the clean ones), the
differences live in small per-dimension variations that the standardisation brings to unit
scale. It is a ``BatchNorm1d`` without affine parameters and with a cumulative average
(``momentum=None``): the embeddings are fixed, so the statistics converge at once.

It trains on its own stage (``la-clip``) with the alignment loss::

    L_align = w_c * L_caption + w_l * L_label
    L_caption = symmetric InfoNCE between f_c^I and the caption embeddings f_c^t of the batch
                (CLIP's loss; items with identical captions are all positives of each other)
    L_label   = CE(s_l * f_l^I . [f_l^t(class k)]_k, y)   (the label embedding must be nearer to
                its own class prompt than to the other classes')

with learnable logit scales ``s_c, s_l`` (CLIP's init 1/0.07, clamped at 100). The adapter
design (a residual MLP on frozen features, as CLIP-Adapter) keeps CLIP's own alignment at the
start and lets the image-embedding cache work; the paper does not say which part it tunes.

Functions are pure (batched tensors in, scalars out); :class:`LabelAwareCLIP` is the module.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fercore.errors import ConfigError, DataError
from fercore.safeload import torch_load

MAX_LOGIT_SCALE = 100.0


def caption_alignment_loss(image_emb: Tensor, caption_emb: Tensor, groups: Tensor, scale: Tensor | float) -> Tensor:
    """CLIP's symmetric InfoNCE with duplicate-aware targets.

    Args:
        image_emb: ``(B, E)`` L2-normalised image-side embeddings (``f_c^I``).
        caption_emb: ``(B, E)`` L2-normalised caption embeddings (``f_c^t``).
        groups: ``(B,)`` integer caption ids: items with the same id share a caption and are
            positives of each other (the target spreads evenly over them).
        scale: logit scale (> 0).

    Returns:
        scalar ``0.5 * (CE_image->text + CE_text->image)`` (``log B`` at chance with distinct
        captions, 0 when every pair is perfectly separated).
    """
    if image_emb.shape != caption_emb.shape or image_emb.ndim != 2 or groups.shape != image_emb.shape[:1]:
        raise ValueError(f"caption_alignment_loss: need (B, E), (B, E), (B,), got {tuple(image_emb.shape)}, "
                         f"{tuple(caption_emb.shape)}, {tuple(groups.shape)}")
    logits = scale * image_emb @ caption_emb.t()
    same = (groups[:, None] == groups[None, :]).to(logits.dtype)
    target = same / same.sum(1, keepdim=True)
    loss_i = -(target * logits.log_softmax(1)).sum(1).mean()
    loss_t = -(target * logits.t().log_softmax(1)).sum(1).mean()
    return 0.5 * (loss_i + loss_t)


def label_logits(label_emb: Tensor, class_text: Tensor, scale: Tensor | float) -> Tensor:
    """``(B, E)`` predicted label embeddings and ``(K, E)`` class text embeddings -> ``(B, K)``
    scaled cosine logits (both inputs L2-normalised)."""
    return scale * label_emb @ class_text.t()


def label_alignment_loss(label_emb: Tensor, class_text: Tensor, labels: Tensor, scale: Tensor | float) -> Tensor:
    """Cross-entropy of :func:`label_logits` against the true classes ``labels`` ``(B,)``."""
    return F.cross_entropy(label_logits(label_emb, class_text, scale), labels)


def caption_groups(captions: list[str]) -> Tensor:
    """``(B,)`` ids that are equal exactly where the captions are equal (first-seen order)."""
    ids: dict[str, int] = {}
    return torch.tensor([ids.setdefault(c, len(ids)) for c in captions], dtype=torch.long)


class LabelAwareCLIP(nn.Module):
    """The feature learner ``F_l`` (see the module doc).

    Args:
        embed_dim: CLIP embedding size ``E``.
        hidden: hidden width of the adapter and of the label head.
        init_scale: initial logit scale of both losses (CLIP: 1/0.07).
        identity: what the learner was trained against (CLIP model and weights, class
            prompts); saved with it and checked when a trained learner is loaded elsewhere.

    ``trained_steps`` counts training steps taken in the ``la-clip`` stage (saved with the
    weights), so a checkpoint of a learner that never trained is refused.
    """

    def __init__(self, embed_dim: int, hidden: int = 512, init_scale: float = 1 / 0.07, identity: Any = None):
        super().__init__()
        if hidden < 1:
            raise ConfigError(f"must be >= 1, got {hidden}", flag="la_clip_hidden")
        self.standardize = nn.BatchNorm1d(embed_dim, affine=False, momentum=None)
        self.adapter = nn.Sequential(nn.Linear(embed_dim, hidden), nn.GELU(), nn.Linear(hidden, embed_dim))
        with torch.no_grad():  # starts near CLIP's own embedding (not at zero: every weight learns at once)
            self.adapter[-1].weight.mul_(0.01)
            self.adapter[-1].bias.zero_()
        self.label_head = nn.Sequential(nn.Linear(embed_dim, hidden), nn.GELU(), nn.Linear(hidden, embed_dim))
        self.caption_log_scale = nn.Parameter(torch.tensor(math.log(init_scale)))
        self.label_log_scale = nn.Parameter(torch.tensor(math.log(init_scale)))
        self.identity = identity
        self.trained_steps = 0

    def scales(self) -> tuple[Tensor, Tensor]:
        """``(s_c, s_l)``: the caption and label logit scales, clamped at 100."""
        return (self.caption_log_scale.exp().clamp(max=MAX_LOGIT_SCALE),
                self.label_log_scale.exp().clamp(max=MAX_LOGIT_SCALE))

    def forward(self, image_emb: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, E)`` CLIP image embeddings -> ``(f_c^I, f_l^I)``, each ``(B, E)``, unit length."""
        bn = self.standardize
        if self.training and image_emb.shape[0] < 2:  # no batch statistics from one item: use the learnt ones
            h = F.batch_norm(image_emb, bn.running_mean, bn.running_var, training=False, eps=bn.eps)
        else:
            h = bn(image_emb)
        return F.normalize(image_emb + self.adapter(h), dim=-1), F.normalize(self.label_head(h), dim=-1)

    # saved in the state dict under "<prefix>_extra_state"
    def get_extra_state(self) -> dict[str, Any]:
        return {"identity": json.dumps(self.identity, sort_keys=True), "trained_steps": int(self.trained_steps)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        mine = json.dumps(self.identity, sort_keys=True)
        if state.get("identity") != mine:
            raise ConfigError(f"this LA-CLIP was trained for {state.get('identity')}, but the model uses {mine}; "
                              "train LA-CLIP again with these CLIP settings and classes", flag="la_clip_checkpoint")
        self.trained_steps = int(state.get("trained_steps", 0))


def la_clip_state_from_checkpoint(path: str | Path) -> dict[str, Any]:
    """The ``la_clip.*`` entries (prefix removed) of an LLDif checkpoint written by
    :func:`models.save_checkpoint` (the runner's ``model.pt`` or ``checkpoint.pt``)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError("LA-CLIP checkpoint not found (la_clip_checkpoint)", p)
    ckpt = torch_load(p, what="LA-CLIP checkpoint (la_clip_checkpoint)")
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise DataError("not a model checkpoint (no state_dict); pass a model.pt or checkpoint.pt of an "
                        "lldif run", p)
    name = (ckpt.get("config") or {}).get("name")
    if name not in (None, "lldif"):
        raise DataError(f"this checkpoint holds a {name!r} model, not lldif", p)
    state = {k[len("la_clip."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("la_clip.")}
    if not state:
        raise DataError("the checkpoint has no LA-CLIP weights (la_clip.*)", p)
    if int((state.get("_extra_state") or {}).get("trained_steps", 0)) <= 0:
        raise DataError("the LA-CLIP in this checkpoint was never trained (stage la-clip had 0 steps)", p)
    return state
