"""In-batch augmentations that belong to a method's official recipe, not to the data pipeline.

The generic augmentations (``hflip``, ``crop``, ``rrc``, ...) are applied per item by the data
pipeline. Some official recipes use transforms the generic names cannot express: SCN, RUL and
ARM's "flip *or* Gaussian noise" (``basic_aug``), torchvision ``RandomErasing`` applied *after*
normalisation, DAN's ``RandomApply([RandomRotation(20), RandomCrop(pad=32)], p=0.2)``, DACL's
``Resize(256) + RandomFiveCrop(224)`` (and ``CenterCrop`` at test time), EAC's flipped second
view. Those run inside the method's ``training_step`` on the batch, drawing every random number
from ``ctx.generator`` so a run is reproducible and resumable.

Style: each transform is a pure function of a batch and *per-sample parameter tensors*
(``erase(images, boxes)``); a ``sample_*`` function draws those parameters from a generator
with the official probabilities and ranges. Shapes: images ``(B, C, H, W)`` float, either in
[0, 1] or normalised (said per function); parameters are ``(B, ...)`` tensors on the CPU or the
images' device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from fercore.checks import check_images, check_shape
from fercore.errors import ConfigError

#: What these helpers accept: any channels, dtype and range (some run after normalisation).
_ANY_IMAGES = {"channels": None, "floating": False, "unit_range": False}


# -- horizontal flip / Gaussian noise (SCN, RUL, ARM basic_aug; EAC noise) ----------------------

def hflip(images: Tensor, apply: Tensor | None = None) -> Tensor:
    """Mirror images left-right: ``(B, C, H, W)`` -> same shape; ``apply`` (B,) bool selects
    which samples flip (all when ``None``)."""
    check_images(images, fn="hflip", **_ANY_IMAGES)
    flipped = images.flip(-1)
    if apply is None:
        return flipped
    return torch.where(apply.view(-1, 1, 1, 1).to(images.device), flipped, images)


def add_gaussian_noise(images: Tensor, noise: Tensor, std: float = math.sqrt(30) / 255,
                       apply: Tensor | None = None) -> Tensor:
    """``clamp(images + std * noise, 0, 1)`` for [0, 1] images.

    ``noise`` is standard normal, shaped like ``images``. The default ``std`` is the official
    ``add_gaussian_noise(var=30)`` on 0..255 pixels (sigma = sqrt(30) grey levels). The official
    code then truncates to uint8; we keep floats (a bias below 1/255).
    """
    check_images(images, fn="add_gaussian_noise", **_ANY_IMAGES)
    check_shape(noise, tuple(images.shape), "noise", fn="add_gaussian_noise",
                hint="draw it with torch.randn_like(images)")
    noisy = (images + std * noise.to(images)).clamp(0, 1)
    if apply is None:
        return noisy
    return torch.where(apply.view(-1, 1, 1, 1).to(images.device), noisy, images)


def sample_flip_or_noise(n: int, generator: torch.Generator | None, p: float = 0.5) -> tuple[Tensor, Tensor]:
    """Parameters of the official ``basic_aug``: with probability ``p`` a sample gets one of
    {flip, noise}, chosen 50/50. Returns ``(flip (n,) bool, noise (n,) bool)``, never both."""
    u = torch.rand(n, generator=generator)
    pick = torch.randint(0, 2, (n,), generator=generator)
    on = u > (1 - p)
    return on & (pick == 0), on & (pick == 1)


def flip_or_noise(images: Tensor, generator: torch.Generator | None, p: float = 0.5,
                  std: float = math.sqrt(30) / 255) -> Tensor:
    """The official ``basic_aug`` on [0, 1] images (SCN, RUL, ARM): flip or noise, or nothing."""
    flip, noisy = sample_flip_or_noise(images.shape[0], generator, p)
    noise = torch.randn(tuple(images.shape), generator=generator)
    out = hflip(images, flip)
    return add_gaussian_noise(out, noise, std, apply=noisy)


# -- random erasing (torchvision RandomErasing, after normalisation) -----------------------------

def sample_erasing(n: int, height: int, width: int, generator: torch.Generator | None, p: float = 0.5,
                   scale: tuple[float, float] = (0.02, 0.33), ratio: tuple[float, float] = (0.3, 3.3),
                   attempts: int = 10) -> Tensor:
    """Boxes of torchvision's ``RandomErasing(p, scale, ratio)``: ``(n, 4)`` long tensor
    ``(top, left, height, width)``; ``height = width = 0`` where nothing is erased.

    As torchvision: erase with probability ``p``; area fraction ~ U(scale), log aspect ratio ~
    U(log ratio); the first of ``attempts`` draws that fits inside the image wins.
    """
    if not (0 <= p <= 1) or not (0 < scale[0] <= scale[1] <= 1) or not (0 < ratio[0] <= ratio[1]):
        raise ConfigError(f"erasing needs 0<=p<=1, 0<scale<=1, 0<ratio (got p={p}, scale={scale}, ratio={ratio})",
                          flag="erase")
    on = torch.rand(n, generator=generator) < p
    area = height * width * (scale[0] + (scale[1] - scale[0]) * torch.rand(n, attempts, generator=generator))
    logr = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * torch.rand(n, attempts, generator=generator)
    h = torch.round(torch.sqrt(area * torch.exp(logr))).long()
    w = torch.round(torch.sqrt(area / torch.exp(logr))).long()
    fits = (h < height) & (w < width)
    first = torch.where(fits.any(1), fits.float().argmax(1), torch.full((n,), -1))
    ok = on & (first >= 0)
    idx = first.clamp(min=0).unsqueeze(1)
    h = h.gather(1, idx).squeeze(1) * ok
    w = w.gather(1, idx).squeeze(1) * ok
    u = torch.rand(n, 2, generator=generator)
    top = (u[:, 0] * (height - h + 1).float()).floor().long().clamp(max=height - 1)
    left = (u[:, 1] * (width - w + 1).float()).floor().long().clamp(max=width - 1)
    return torch.stack([top, left, h, w], 1)


def erase(images: Tensor, boxes: Tensor, value: float = 0.0) -> Tensor:
    """Set the box ``(top, left, height, width)`` of each image to ``value``.

    ``images`` (B, C, H, W) any range (the official recipes erase normalised images with 0,
    i.e. the mean colour); ``boxes`` (B, 4) long as from :func:`sample_erasing`.
    """
    check_images(images, fn="erase", **_ANY_IMAGES)
    check_shape(boxes, (images.shape[0], 4), "boxes", fn="erase",
                hint="one (top, left, height, width) row per image")
    b = boxes.to(images.device).view(-1, 4, 1, 1)
    rows = torch.arange(images.shape[-2], device=images.device).view(1, -1, 1)
    cols = torch.arange(images.shape[-1], device=images.device).view(1, 1, -1)
    top, left, h, w = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    mask = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
    return torch.where(mask.unsqueeze(1), torch.as_tensor(value, dtype=images.dtype, device=images.device), images)


# -- DAN: RandomApply([RandomRotation(20), RandomCrop(S, padding=32)], p=0.2) -------------------

def sample_rotate_shift(n: int, size: int, generator: torch.Generator | None, p: float = 0.2,
                        degrees: float = 20.0, pad_fraction: float = 32 / 224) -> tuple[Tensor, Tensor]:
    """``(angle (n,) degrees, shift (n, 2) pixels (dx, dy))``; zeros where not applied.

    A padded random crop of the same size is a shift by an integer in [-pad, pad] on each axis,
    pad = round(size * pad_fraction) (32 px at 224, as DAN's recipe)."""
    on = torch.rand(n, generator=generator) <= p
    angle = (torch.rand(n, generator=generator) * 2 - 1) * degrees * on
    pad = int(round(size * pad_fraction))
    shift = torch.randint(-pad, pad + 1, (n, 2), generator=generator) * on.unsqueeze(1)
    return angle, shift.float()


def random_erase(images: Tensor, generator: torch.Generator | None, p: float,
                 scale: tuple[float, float]) -> Tensor:
    """torchvision-style ``RandomErasing`` of each image with probability ``p`` (no-op at 0).

    ``images``: ``(B, C, H, W)``; boxes from :func:`sample_erasing` (area ``scale`` of the image).
    """
    if p <= 0:
        return images
    return erase(images, sample_erasing(images.shape[0], *images.shape[-2:], generator, p, scale))


def scn_family_input(images: Tensor, generator: torch.Generator | None, normalize, *, basic_aug: bool,
                     erase_p: float, erase_scale: tuple[float, float]) -> Tensor:
    """The training input of the SCN / RUL / ARM repositories: flip-or-noise on [0, 1] pixels
    (their ``basic_aug``), normalisation, then ``RandomErasing`` on the normalised tensor."""
    if basic_aug:
        images = flip_or_noise(images, generator)
    return random_erase(normalize(images), generator, erase_p, erase_scale)


def rotate_shift(images: Tensor, angle: Tensor, shift: Tensor) -> Tensor:
    """Rotate each image about its centre by ``angle`` degrees (counter-clockwise) and move it by
    ``shift`` (dx, dy) pixels; uncovered pixels are 0 (black for [0, 1] images). Nearest
    neighbour, as torchvision's RandomRotation default. ``images`` (B, C, H, W)."""
    from kornia.geometry.transform import get_rotation_matrix2d, warp_affine

    check_images(images, fn="rotate_shift", **_ANY_IMAGES)
    n, _, h, w = images.shape
    centre = torch.tensor([(w - 1) / 2, (h - 1) / 2], dtype=images.dtype, device=images.device).expand(n, 2)
    m = get_rotation_matrix2d(centre, angle.to(images), torch.ones(n, 2, dtype=images.dtype, device=images.device))
    m = m.clone()
    m[:, :, 2] += shift.to(images)
    return warp_affine(images, m, (h, w), mode="nearest", padding_mode="zeros", align_corners=True)


# -- DACL: Resize(256) + RandomFiveCrop(224); Resize(256) + CenterCrop(224) at test time ----------

def _upscale(images: Tensor, scale: float) -> Tensor:
    h, w = images.shape[-2:]
    return F.interpolate(images, size=(int(round(h * scale)), int(round(w * scale))), mode="bilinear",
                         align_corners=False)


def five_crop(images: Tensor, which: Tensor, scale: float = 256 / 224) -> Tensor:
    """Enlarge by ``scale`` and crop back to the input size at one of five places per sample:
    ``which`` (B,) in 0..4 = top-left, top-right, bottom-left, bottom-right, centre
    (torchvision ``five_crop`` order). ``images`` (B, C, H, W)."""
    check_images(images, fn="five_crop", **_ANY_IMAGES)
    h, w = images.shape[-2:]
    big = _upscale(images, scale)
    bh, bw = big.shape[-2:]
    ct, cl = int(round((bh - h) / 2)), int(round((bw - w) / 2))
    corners = [(0, 0), (0, bw - w), (bh - h, 0), (bh - h, bw - w), (ct, cl)]
    return torch.stack([big[i, :, t:t + h, l:l + w] for i, (t, l) in
                        enumerate(corners[int(k)] for k in which.tolist())])


def center_crop_zoom(images: Tensor, scale: float = 256 / 224) -> Tensor:
    """Enlarge by ``scale`` and take the central crop of the input size (``Resize(256) +
    CenterCrop(224)`` at 224). ``images`` (B, C, H, W)."""
    check_images(images, fn="center_crop_zoom", **_ANY_IMAGES)
    return five_crop(images, torch.full((images.shape[0],), 4), scale)


# -- dropout drawn from the step generator (RUL's heads; SCN / ARM ``drop_rate``) ------------------

def dropout(x: Tensor, p: float, generator: torch.Generator | None) -> Tensor:
    """Element-wise dropout (as ``nn.Dropout`` in training mode) whose mask comes from
    ``generator``: zero each entry with probability ``p`` and scale the rest by ``1 / (1 - p)``.
    ``x`` any shape; ``p`` in [0, 1). Identity when ``p == 0``."""
    if not 0 <= p < 1:
        raise ConfigError(f"dropout probability must be in [0, 1), got {p}", flag="drop_rate")
    if p == 0:
        return x
    keep = (torch.rand(tuple(x.shape), generator=generator) >= p).to(device=x.device, dtype=x.dtype)
    return x * keep / (1 - p)


# -- stochastic depth (POSTER++'s cross-attention blocks) ---------------------------------------

def sample_drop_path(n: int, p: float, generator: torch.Generator | None) -> Tensor:
    """Per-sample keep mask ``(n,)`` bool for :func:`drop_path`: each sample's residual branch
    is dropped with probability ``p`` in [0, 1). ``generator=None`` draws from the global
    generator (only for callers without a step context)."""
    if not 0 <= p < 1:
        raise ConfigError(f"drop-path probability must be in [0, 1), got {p}", flag="drop_path")
    return torch.rand(n, generator=generator) >= p


def drop_path(x: Tensor, keep: Tensor, p: float) -> Tensor:
    """Stochastic depth (timm's ``drop_path``) with a given mask: zero the residual branch of the
    samples where ``keep`` (``(B,)`` bool) is False and scale the others by ``1 / (1 - p)``.
    ``x`` ``(B, ...)``; identity when ``p == 0``."""
    if p == 0:
        return x
    check_shape(keep, (x.shape[0],), "keep", fn="drop_path", hint="one bool per sample (sample_drop_path)")
    scale = keep.to(device=x.device, dtype=x.dtype) / (1 - p)
    return x * scale.view(-1, *([1] * (x.ndim - 1)))
