"""The generic training augmentations of :data:`models.recipe.AUGMENTS`, batched.

Each augmentation is a pure function on a batch with per-sample parameter tensors (kornia
style); :class:`Augmenter` is the thin wrapper the data pipeline uses. Parameters are drawn
per item by :func:`sample_params` from a generator the pipeline seeds with (run seed, stage,
epoch, item id), so an image's augmentation never depends on batch order, batch size, workers
or devices.

Geometry (``hflip``, ``crop``, ``rrc``, ``rotate``) is folded into one affine map per sample,
``theta`` (``(B, 2, 3)``, output -> input in the [-1, 1] coordinates of
:func:`torch.nn.functional.affine_grid`), applied in one bilinear resampling; landmarks go
through the inverse map (and a flip swaps left/right points), so they stay on the face.
Then ``color`` (brightness, contrast, saturation, hue) and ``erase`` act on pixel values.

Choices (the recipes name augmentations, not their ranges; all are :class:`AugmentConfig`
fields):

* ``hflip``: probability 0.5.
* ``crop``: a square window of ``crop_scale`` (0.9) of the side at a uniform position, resized to
  the input size; evaluation then uses the centre window (the "resize 256, crop 224" habit of
  FER code). Out-of-image pixels are black.
* ``rrc``: random resized crop with area in ``rrc_scale`` (0.8-1.0; FER code keeps most of the
  face, unlike ImageNet's 0.08) and aspect ``rrc_ratio`` (3/4-4/3); it replaces ``crop``'s window
  when both are named. Evaluation: full image (or ``crop``'s centre window).
* ``rotate``: uniform angle in +-``rotate_deg`` (10) degrees about the window centre.
* ``color``: brightness x U(1+-0.2), contrast and saturation U(1+-0.2), hue shift U(+-0.02)
  turns (torchvision's ColorJitter ranges used by FER repos), in that order, as one per-sample
  affine colour map clamped once; hue is a rotation about the grey axis (no HSV round trip,
  which costs more than all other augmentations together).
* ``erase``: with probability 0.5 a rectangle of area U(0.02, 0.25) of the image and aspect in
  (0.3, 3.3) is filled with the ImageNet mean colour (what ``RandomErasing(value=0)`` does to a
  normalised tensor; models normalise internally, so we fill before normalisation).

On-the-fly degradation (off unless asked for, whatever the recipe): ``udc_p`` / ``ll_p`` degrade
a training image with the UDC (``udc_display`` preset) or low-light (``ll_preset``) simulator with
that probability, before the augmentations above (the camera comes first). Each item's gate,
simulator parameters and noise seed come from its own generator, after the generic draws (so
switching a degradation on leaves the other augmentations' values unchanged); see
:class:`degrade.augment.ItemDegradation`. Evaluation never degrades. On the command line:
``--aug udc:p=0.5``, ``--aug udc:p=0.5,display=poled``, ``--aug ll:p=0.3,preset=realistic``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from fercore.errors import ConfigError
from fercore.landmarks import FLIP_68
from fercore.options import parse_options
from fercore.transform import PerSampleTransform, stack_rows

IMAGENET_MEAN = (0.485, 0.456, 0.406)
#: Per-sample parameter names, in a fixed order.
PARAM_NAMES = ("flip", "cx", "cy", "sx", "sy", "angle", "brightness", "contrast", "saturation", "hue",
               "erase", "ex", "ey", "ew", "eh")
_IDENTITY = {"flip": 0.0, "cx": 0.0, "cy": 0.0, "sx": 1.0, "sy": 1.0, "angle": 0.0, "brightness": 1.0,
             "contrast": 1.0, "saturation": 1.0, "hue": 0.0, "erase": 0.0, "ex": 0.0, "ey": 0.0,
             "ew": 0.0, "eh": 0.0}


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the generic augmentations (see the module docstring for the defaults' origin)."""

    hflip_p: float = 0.5
    crop_scale: float = 0.9
    rrc_scale: tuple[float, float] = (0.8, 1.0)
    rrc_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    rotate_deg: float = 10.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02
    erase_p: float = 0.5
    erase_scale: tuple[float, float] = (0.02, 0.25)
    erase_ratio: tuple[float, float] = (0.3, 3.3)
    udc_p: float = 0.0
    udc_display: str = "toled"
    ll_p: float = 0.0
    ll_preset: str = "lldif"

    def __post_init__(self):
        if not 0 < self.crop_scale <= 1:
            raise ConfigError(f"crop_scale must be in (0, 1], got {self.crop_scale}", flag="augment.crop_scale")
        for name in ("hflip_p", "erase_p", "udc_p", "ll_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}", flag="--aug")
        lo, hi = self.rrc_scale
        if not 0 < lo <= hi <= 1:
            raise ConfigError(f"rrc_scale must satisfy 0 < lo <= hi <= 1, got {self.rrc_scale}",
                              flag="augment.rrc_scale")

    def to_dict(self) -> dict:
        """The settings (the job's identity); a degradation that is off is left out, so configs
        without one keep the identity they had before degradations could be switched on."""
        off = {"udc_p", "udc_display"} if self.udc_p == 0 else set()
        off |= {"ll_p", "ll_preset"} if self.ll_p == 0 else set()
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items() if k not in off}

    def degradations(self) -> list:
        """The on-the-fly degradation steps that are on (:class:`degrade.augment.ItemDegradation`)."""
        from degrade.augment import ItemDegradation

        steps = []
        if self.udc_p > 0:
            from degrade.udc import make_udc

            steps.append(ItemDegradation("udc", make_udc(self.udc_display), self.udc_p))
        if self.ll_p > 0:
            from degrade.lowlight import make_lowlight

            steps.append(ItemDegradation("ll", make_lowlight(self.ll_preset), self.ll_p))
        return steps


#: ``--aug KIND:...`` forms: kind -> (probability field, {option: field}).
DEGRADE_AUGS = {"udc": ("udc_p", {"p": "udc_p", "display": "udc_display"}),
                "ll": ("ll_p", {"p": "ll_p", "preset": "ll_preset"})}


def parse_augment(pairs) -> AugmentConfig:
    """``--aug`` values -> :class:`AugmentConfig`. ``KEY=VALUE`` sets a field (JSON values;
    ``--aug rotate_deg=15``); ``udc:p=0.5[,display=NAME]`` and ``ll:p=0.5[,preset=NAME]`` switch
    on an on-the-fly degradation (``p`` required, in (0, 1])."""
    from .datasets import parse_value

    fields: dict = {}
    known = AugmentConfig.__dataclass_fields__
    plain = []
    for pair in pairs:
        kind, sep, rest = pair.partition(":")
        if not sep or kind.strip() not in DEGRADE_AUGS:
            plain.append(pair)
            continue
        _, names = DEGRADE_AUGS[kind.strip()]
        opts = parse_options([o for o in rest.split(",") if o.strip()], flag="--aug",
                             form=f"{kind}:p=P[,{','.join(f'{n}=...' for n in names if n != 'p')}]")
        unknown = sorted(set(opts) - set(names))
        if unknown or "p" not in opts:
            raise ConfigError(f"{pair!r}: give p=PROBABILITY" + (f"; unknown option(s) {', '.join(unknown)}"
                              if unknown else "") + f"; options of {kind}: {', '.join(names)}", flag="--aug")
        for name, value in opts.items():
            fields[names[name]] = float(value) if name == "p" else value
        if fields[names["p"]] <= 0:
            raise ConfigError(f"{pair!r}: p must be in (0, 1]", flag="--aug")
    for k, v in parse_options(plain, flag="--aug").items():
        if k not in known:
            raise ConfigError(f"unknown augmentation setting {k!r}; known: {', '.join(known)}, or "
                              "udc:p=P[,display=NAME] / ll:p=P[,preset=NAME]", flag="--aug")
        val = parse_value(v)
        fields[k] = tuple(val) if isinstance(val, list) else val
    try:
        return AugmentConfig(**fields)
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(str(e), flag="--aug") from None


def sample_params(rng: np.random.Generator, augment: tuple[str, ...], cfg: AugmentConfig) -> dict[str, float]:
    """One item's augmentation parameters, drawn only from ``rng``.

    Always draws the same sequence of numbers for a given ``augment`` tuple, so a parameter
    does not depend on the others' values. Geometry is in [-1, 1] image coordinates:
    ``(cx, cy)`` window centre, ``(sx, sy)`` window half-size (1 = whole image).
    """
    p = dict(_IDENTITY)
    if "hflip" in augment:
        p["flip"] = float(rng.random() < cfg.hflip_p)
    if "rrc" in augment:
        area = rng.uniform(*cfg.rrc_scale)
        ratio = math.exp(rng.uniform(math.log(cfg.rrc_ratio[0]), math.log(cfg.rrc_ratio[1])))
        sx, sy = min(1.0, math.sqrt(area * ratio)), min(1.0, math.sqrt(area / ratio))
        p["sx"], p["sy"] = sx, sy
        p["cx"], p["cy"] = rng.uniform(-(1 - sx), 1 - sx), rng.uniform(-(1 - sy), 1 - sy)
    elif "crop" in augment:
        s = cfg.crop_scale
        p["sx"] = p["sy"] = s
        p["cx"], p["cy"] = rng.uniform(-(1 - s), 1 - s), rng.uniform(-(1 - s), 1 - s)
    if "rotate" in augment:
        p["angle"] = rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)
    if "color" in augment:
        p["brightness"] = rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
        p["contrast"] = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)
        p["saturation"] = rng.uniform(1 - cfg.saturation, 1 + cfg.saturation)
        p["hue"] = rng.uniform(-cfg.hue, cfg.hue)
    if "erase" in augment:
        on = rng.random() < cfg.erase_p
        area = rng.uniform(*cfg.erase_scale)
        ratio = math.exp(rng.uniform(math.log(cfg.erase_ratio[0]), math.log(cfg.erase_ratio[1])))
        ew, eh = min(1.0, math.sqrt(area * ratio)), min(1.0, math.sqrt(area / ratio))
        ex, ey = rng.uniform(0, 1 - ew), rng.uniform(0, 1 - eh)
        if on:
            p.update(erase=1.0, ex=ex, ey=ey, ew=ew, eh=eh)
    return p


def eval_params(augment: tuple[str, ...], cfg: AugmentConfig) -> dict[str, float]:
    """Evaluation geometry: the centre ``crop`` window when training crops, else identity."""
    p = dict(_IDENTITY)
    if "crop" in augment:
        p["sx"] = p["sy"] = cfg.crop_scale
    return p


def stack_params(rows: list[dict[str, float]], device=None) -> dict[str, Tensor]:
    """Per-item parameter dicts (:meth:`Augmenter.draw` rows) -> dict of ``(B,)`` float32 tensors,
    one per key of the rows (:data:`PARAM_NAMES`, then any degradation's)."""
    return stack_rows(rows, list(rows[0]) if rows else PARAM_NAMES, device)


def affine_theta(flip: Tensor, cx: Tensor, cy: Tensor, sx: Tensor, sy: Tensor, angle_deg: Tensor) -> Tensor:
    """Output -> input affine maps ``(B, 2, 3)`` in [-1, 1] coordinates.

    ``in = c + R(angle) @ diag(sx * f, sy) @ out`` with ``f = -1`` for flipped samples. All
    inputs are ``(B,)``; ``flip`` is 0 or 1, ``angle_deg`` in degrees.
    """
    a = torch.deg2rad(angle_deg)
    cos, sin = torch.cos(a), torch.sin(a)
    fx = sx * (1 - 2 * flip)
    row0 = torch.stack([cos * fx, -sin * sy, cx], -1)
    row1 = torch.stack([sin * fx, cos * sy, cy], -1)
    return torch.stack([row0, row1], 1)


def warp(images: Tensor, theta: Tensor, size: int | None = None) -> Tensor:
    """Resample ``(B, C, H, W)`` images through ``theta`` (bilinear, black outside).

    Output ``(B, C, size, size)`` (default: input size). Values keep their range.
    """
    if images.ndim != 4 or theta.shape != (images.shape[0], 2, 3):
        raise ValueError(f"warp expects images (B, C, H, W) and theta (B, 2, 3); got {tuple(images.shape)} "
                         f"and {tuple(theta.shape)}")
    b, c, h, w = images.shape
    out = (b, c, size or h, size or w)
    grid = F.affine_grid(theta.to(images.dtype), out, align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def warp_points(points: Tensor, theta: Tensor, flip: Tensor) -> Tensor:
    """Move landmarks with the image: ``(B, K, 2)`` (x, y) in [0, 1] -> same, after ``warp``.

    Applies the inverse of ``theta``; for flipped samples with ``K == 68`` the left/right
    points are swapped (:data:`fercore.landmarks.FLIP_68`) so point 36 stays the right eye
    corner. ``NaN`` points stay ``NaN``.
    """
    u = points * 2 - 1
    m, t = theta[:, :, :2], theta[:, :, 2]
    out = torch.linalg.solve(m.unsqueeze(1), (u - t.unsqueeze(1)).unsqueeze(-1)).squeeze(-1)
    out = (out + 1) / 2
    if points.shape[1] == 68:
        perm = torch.as_tensor(FLIP_68, device=points.device)
        out = torch.where(flip.bool().view(-1, 1, 1), out[:, perm], out)
    return out


#: Luma weights (ITU-R BT.601, as torchvision's grayscale) for contrast and saturation.
LUMA = (0.299, 0.587, 0.114)


def color_matrix(brightness: Tensor, contrast: Tensor, saturation: Tensor, hue: Tensor) -> Tensor:
    """Per-sample ``(B, 3, 3)`` colour matrix ``b * c * H(hue) @ S(saturation)``.

    ``S(s) = s I + (1 - s) 1 w^T`` blends with the luma ``w . x`` (torchvision's saturation);
    ``H`` rotates colours about the grey axis ``(1, 1, 1)`` by ``hue`` turns (it keeps grey
    grey and ``r + g + b`` unchanged; an approximation of an HSV hue shift that needs no
    colour-space round trip).
    """
    b = brightness.shape[0]
    dev, dt = brightness.device, brightness.dtype
    w = torch.tensor(LUMA, device=dev, dtype=dt)
    eye = torch.eye(3, device=dev, dtype=dt).expand(b, 3, 3)
    sat = saturation.view(-1, 1, 1) * eye + (1 - saturation).view(-1, 1, 1) * w.view(1, 1, 3).expand(b, 3, 3)
    theta = hue * 2 * math.pi
    k = torch.full((3,), 1 / math.sqrt(3), device=dev, dtype=dt)
    kx = torch.tensor([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]], device=dev, dtype=dt)
    cos, sin = torch.cos(theta).view(-1, 1, 1), torch.sin(theta).view(-1, 1, 1)
    rot = cos * eye + sin * kx + (1 - cos) * torch.outer(k, k)
    return (brightness * contrast).view(-1, 1, 1) * (rot @ sat)


def color_jitter(images: Tensor, brightness: Tensor, contrast: Tensor, saturation: Tensor, hue: Tensor) -> Tensor:
    """Brightness (x b), contrast (blend with the mean luma), saturation, hue (turns), batched.

    ``images`` ``(B, 3, H, W)`` in [0, 1]; factors ``(B,)`` (1, 1, 1, 0 = unchanged). The four
    operations are linear, so they are applied as one per-sample affine colour map
    (:func:`color_matrix` plus the contrast offset) and clamped to [0, 1] once, instead of
    after each step as torchvision does (they differ only where a middle step saturates).
    """
    w = torch.tensor(LUMA, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    mean_luma = (images * w).sum(1).mean((1, 2)) * brightness  # luma mean after brightness
    m = color_matrix(brightness.to(images.dtype), contrast.to(images.dtype), saturation.to(images.dtype),
                     hue.to(images.dtype))
    b, c, h, wd = images.shape
    out = torch.baddbmm(((1 - contrast) * mean_luma).to(images.dtype).view(-1, 1, 1).expand(b, 3, 1),
                        m, images.reshape(b, c, h * wd))
    return out.clamp_(0, 1).view(b, c, h, wd)


def erase(images: Tensor, on: Tensor, ex: Tensor, ey: Tensor, ew: Tensor, eh: Tensor,
          fill: tuple[float, ...] = IMAGENET_MEAN) -> Tensor:
    """Fill one rectangle per sample (where ``on`` is 1) with ``fill``.

    Rectangle ``[ex, ex + ew) x [ey, ey + eh)`` in [0, 1] image coordinates (pixel centres).
    """
    b, c, h, w = images.shape
    idx = torch.nonzero(on.bool()).view(-1)
    out = images.clone()
    if idx.numel() == 0:
        return out
    ex, ey, ew, eh = ex[idx], ey[idx], ew[idx], eh[idx]
    xs = (torch.arange(w, device=images.device, dtype=images.dtype) + 0.5) / w
    ys = (torch.arange(h, device=images.device, dtype=images.dtype) + 0.5) / h
    inx = (xs.view(1, w) >= ex.view(-1, 1)) & (xs.view(1, w) < (ex + ew).view(-1, 1))
    iny = (ys.view(1, h) >= ey.view(-1, 1)) & (ys.view(1, h) < (ey + eh).view(-1, 1))
    mask = (iny.unsqueeze(2) & inx.unsqueeze(1)).unsqueeze(1)
    fill_t = torch.tensor(fill[:c], device=images.device, dtype=images.dtype).view(1, c, 1, 1)
    out[idx] = torch.where(mask, fill_t, images[idx])
    return out


def _is_identity(p: dict[str, Tensor]) -> bool:
    return bool((p["flip"] == 0).all() and (p["cx"] == 0).all() and (p["cy"] == 0).all()
                and (p["sx"] == 1).all() and (p["sy"] == 1).all() and (p["angle"] == 0).all())


class Augmenter(PerSampleTransform):
    """Applies a recipe's generic augmentations to batches (the data pipeline's wrapper).

    ``augment``: names from :data:`models.recipe.AUGMENTS`; ``size``: output side. A
    :class:`~fercore.transform.PerSampleTransform`: :meth:`draw` one item's parameters from the
    item's generator, :func:`stack_params`, then ``augmenter(images, params, landmarks)``. The
    degradations ``cfg`` switches on (``udc_p``, ``ll_p``) run first, on the input images.
    """

    def __init__(self, augment: tuple[str, ...], size: int, cfg: AugmentConfig | None = None):
        from models.recipe import AUGMENTS

        bad = [a for a in augment if a not in AUGMENTS]
        if bad:
            raise ConfigError(f"unknown augmentation(s) {bad}; choose from {', '.join(AUGMENTS)}",
                              flag="recipe.augment")
        self.augment = tuple(augment)
        self.size = int(size)
        self.cfg = cfg or AugmentConfig()
        self.degradations = self.cfg.degradations()

    def param_names(self) -> list[str]:
        return [*PARAM_NAMES, *(n for d in self.degradations for n in d.param_names())]

    def sample_params(self, rng: np.random.Generator) -> dict[str, float]:
        """One item's parameters: the generic ones (:func:`sample_params`), then each degradation's."""
        p = sample_params(rng, self.augment, self.cfg)
        for d in self.degradations:
            p.update(d.sample_params(rng))
        return p

    draw = sample_params

    def eval_rows(self, n: int) -> list[dict[str, float]]:
        row = eval_params(self.augment, self.cfg)
        for d in self.degradations:
            row.update(d.identity_params())
        return [row] * n

    def apply(self, images: Tensor, params: dict[str, Tensor],
              landmarks: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """``images`` ``(B, 3, H, W)`` in [0, 1] -> ``(B, 3, size, size)`` and moved landmarks."""
        for d in self.degradations:
            images = d.apply(images, params)
        if _is_identity(params) and images.shape[-1] == self.size and images.shape[-2] == self.size:
            out = images
        else:
            theta = affine_theta(params["flip"], params["cx"], params["cy"], params["sx"], params["sy"],
                                 params["angle"])
            out = warp(images, theta, self.size)
            if landmarks is not None:
                landmarks = warp_points(landmarks, theta, params["flip"])
        if bool((params["brightness"] != 1).any() or (params["contrast"] != 1).any()
                or (params["saturation"] != 1).any() or (params["hue"] != 0).any()):
            out = color_jitter(out, params["brightness"], params["contrast"], params["saturation"], params["hue"])
        if bool((params["erase"] != 0).any()):
            out = erase(out, params["erase"], params["ex"], params["ey"], params["ew"], params["eh"])
        return out, landmarks

    __call__ = apply
