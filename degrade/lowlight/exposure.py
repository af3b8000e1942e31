"""Exposure in EV stops, applied in linear light (Lightroom: Basic > Exposure)."""

from __future__ import annotations

from torch import Tensor

from fercore.checks import per_sample

#: Allowed exposure change in stops (Lightroom's slider spans -5..+5).
EV_LIMIT = 10.0


def exposure(linear: Tensor, ev: float | Tensor) -> Tensor:
    """Scale linear light by ``2 ** ev``: -1 EV halves it, +1 EV doubles it.

    Args:
        linear: ``(B, 3, H, W)`` linear-light RGB, >= 0 (not clipped here: values above 1 are
            kept so a later step decides how to clip).
        ev: stops, a number or a ``(B,)`` tensor in [-10, 10]. Lightroom's Exposure slider
            value maps one to one (Lightroom adds a soft highlight roll-off that this pure
            gain leaves out).

    Returns:
        ``(B, 3, H, W)`` linear light, differentiable in ``linear`` and ``ev``.
    """
    ev = per_sample(ev, linear.shape[0], "exposure_ev", linear, lo=-EV_LIMIT, hi=EV_LIMIT,
                     hint="exposure is in stops, e.g. -3 for an eighth of the light")
    return linear * (2.0 ** ev).view(-1, 1, 1, 1)
