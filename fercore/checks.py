"""Input checks for batched tensors: one exception type, messages that say how to fix the call.

Every image operation of the toolkit (the UDC and low-light stages, the training
augmentations, the official recipes' batch augmentations) checks its input here, kornia
style. Structure (type, rank, channels, dtype, a parameter's shape) is always checked: it costs
nothing. *Values* (range, NaN/inf) are a reduction over the tensor and reading the answer on a
GPU is a device sync, so they are checked only when :func:`value_checks_enabled` says so:

* never while :func:`torch.compile` traces (``torch.compiler.is_compiling()``: a data-dependent
  branch would break the graph), as kornia skips its checks;
* by default (``"auto"``) only for CPU tensors, where the check is a cheap pass over memory
  that is read anyway -- a CUDA training loop never waits on it;
* ``set_value_checks("always")`` checks every device (debugging), ``"never"`` skips them all
  (the environment variable ``FER_VALUE_CHECKS`` sets the initial mode).

>>> check_images(torch.rand(2, 3, 8, 8))                      # fine
>>> per_sample(0.5, 2, "gain", like=x, lo=0, hi=1)            # -> tensor([0.5, 0.5])
"""

from __future__ import annotations

import math
import os

import torch
from torch import Tensor

from .errors import ConfigError

__all__ = ["TensorError", "check_images", "check_shape", "per_sample", "set_value_checks",
           "value_checks_enabled", "VALUE_CHECK_MODES"]

VALUE_CHECK_MODES = ("auto", "always", "never")


class TensorError(ConfigError):
    """A tensor argument of the wrong type, shape, dtype or values. ``flag`` names the argument
    (``images``, ``photons``, ...); the message says how to fix the call. A ``ValueError``."""


_mode = os.environ.get("FER_VALUE_CHECKS", "auto")
if _mode not in VALUE_CHECK_MODES:
    _mode = "auto"


def set_value_checks(mode: str) -> str:
    """Set when value checks run: ``auto`` (CPU tensors only), ``always`` or ``never``.
    Returns the previous mode (so a caller can restore it)."""
    global _mode
    if mode not in VALUE_CHECK_MODES:
        raise ConfigError(f"unknown mode {mode!r}; choose one of {', '.join(VALUE_CHECK_MODES)}",
                          flag="value checks")
    old, _mode = _mode, mode
    return old


def value_checks_enabled(t: Tensor) -> bool:
    """Whether value (range/finite) checks run for ``t`` (see the module docstring)."""
    if _mode == "never" or torch.compiler.is_compiling():
        return False
    return _mode == "always" or t.device.type == "cpu"


def _who(fn: str | None, name: str) -> str:
    return f"{fn}: {name}" if fn else name


def check_images(x: object, name: str = "images", *, fn: str | None = None, channels: int | None = 3,
                 floating: bool = True, unit_range: bool = True) -> None:
    """Require a ``(B, C, H, W)`` tensor (``C == channels`` unless ``channels`` is ``None``).

    Args:
        x: the argument to check.
        name, fn: the argument's and the function's names (for the message's flag).
        floating: require a floating dtype (``x.float() / 255`` for 8-bit images).
        unit_range: require values in [0, 1] and no NaN (a value check, see the module docstring).

    Raises:
        TensorError: naming the argument and how to fix the call.
    """
    who = _who(fn, name)
    want = f"(B, {channels}, H, W)" if channels else "(B, C, H, W)"
    if not isinstance(x, Tensor):
        raise TensorError(f"expected a torch.Tensor of shape {want}, got {type(x).__name__}; convert with "
                          "torch.from_numpy(img).permute(2, 0, 1)[None] / 255", flag=who)
    if x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        raise TensorError(f"expected shape {want}, got {tuple(x.shape)}; add a batch dimension with x[None], "
                          "move channels first with x.permute(0, 3, 1, 2)"
                          + (" or convert grey images to RGB" if channels == 3 else ""), flag=who)
    if floating and not x.is_floating_point():
        raise TensorError(f"expected a floating tensor in [0, 1], got {x.dtype}; use x.float() / 255", flag=who)
    if unit_range and x.numel() and value_checks_enabled(x):
        lo, hi = (float(v) for v in torch.aminmax(x.detach()))
        if math.isnan(lo) or math.isnan(hi) or not (lo >= 0.0 and hi <= 1.0):
            raise TensorError(f"values must lie in [0, 1] (found min {lo:g}, max {hi:g}); divide 8-bit images "
                              "by 255 and replace NaN/inf before calling", flag=who)


def check_shape(x: Tensor, shape: tuple[int | None, ...], name: str, *, fn: str | None = None,
                hint: str = "") -> None:
    """Require ``x.shape`` to match ``shape`` (``None`` matches any size)."""
    ok = isinstance(x, Tensor) and x.ndim == len(shape) and all(
        s is None or s == d for s, d in zip(shape, x.shape))
    if not ok:
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise TensorError(f"expected shape {want}, got {got}" + (f"; {hint}" if hint else ""), flag=_who(fn, name))


def per_sample(value: float | Tensor, batch: int, name: str, like: Tensor, *, width: int | None = None,
               lo: float | None = None, hi: float | None = None, lo_open: bool = False,
               hint: str = "", fn: str | None = None) -> Tensor:
    """A parameter as a ``(B,)`` (or ``(B, width)``) tensor with the dtype and device of ``like``.

    ``value`` is a number (one value for the whole batch), a 0-d tensor, or a tensor of one
    value per sample. Values must be finite and within [lo, hi] (``(lo, hi]`` with
    ``lo_open``); that is a value check, run only when :func:`value_checks_enabled`.

    Raises:
        TensorError: wrong shape, or (checked) NaN/inf or a value out of range; the message
        gives the first offending sample and ``hint``.
    """
    shape = (batch,) if width is None else (batch, width)
    who = _who(fn, name)
    if isinstance(value, Tensor):
        t = value.to(device=like.device, dtype=like.dtype)
        if t.ndim == 0:
            t = t.expand(shape)
        elif tuple(t.shape) != shape:
            raise TensorError(f"expected a number or a tensor of shape {shape} (one value per sample"
                              f"{'' if width is None else ' and channel'}), got shape {tuple(t.shape)}", flag=who)
    else:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise TensorError(f"expected a number or a {shape} tensor, got {value!r}", flag=who) from None
        t = torch.full(shape, v, device=like.device, dtype=like.dtype)
    if t.numel() == 0 or not value_checks_enabled(t):
        return t
    d = t.detach()
    bad = ~torch.isfinite(d)
    if lo is not None:
        bad |= (d <= lo) if lo_open else (d < lo)
    if hi is not None:
        bad |= d > hi
    if bool(bad.any()):
        first = bad.nonzero()[0]
        i = int(first[0])
        left = "(" if lo_open else "["
        rng = (f"in {left}{lo:g}, {hi:g}]" if lo is not None and hi is not None else
               (f"{'>' if lo_open else '>='} {lo:g}" if lo is not None else
                f"<= {hi:g}" if hi is not None else "finite"))
        raise TensorError(f"got {float(d[tuple(first)]):g} for sample {i}; must be finite and {rng}"
                          + (f" ({hint})" if hint else ""), flag=who)
    return t
