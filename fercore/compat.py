"""Import torchvision (and so timm and open_clip) on CPU builds of torch.

torchvision's wheels carry compiled ops (``torchvision::nms`` ...) built for one torch
build. Paired with a CPU build of torch, loading them fails and ``import torchvision`` dies in
``_meta_registrations`` with "operator torchvision::nms does not exist". Defining the missing
op schemas through :mod:`torch.library` before the import lets ``torchvision.transforms``,
timm and open_clip import; only the detection ops (nms) stay unavailable, and the toolkit
never calls them.

The work-around acts only when the normal import fails, so on a machine with a matching
torch/torchvision pair it does nothing. Every module that needs torchvision, timm or
open_clip imports them through :func:`import_torchvision` (or calls it first).
"""

from __future__ import annotations

import sys
from types import ModuleType

_LIBRARIES: list = []  # keep torch.library.Library objects alive
_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}


def import_torchvision() -> ModuleType:
    """Import and return :mod:`torchvision`, applying the CPU work-around only if needed."""
    try:
        import torchvision
        return torchvision
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
    import torch

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    lib = torch.library.Library("torchvision", "FRAGMENT")
    for op, schema in _SCHEMAS.items():
        if not torch._C._dispatch_has_kernel(f"torchvision::{op}") and not _has_schema(op):
            lib.define(schema)
    _LIBRARIES.append(lib)
    import torchvision

    return torchvision


def _has_schema(op: str) -> bool:
    import torch

    try:
        torch._C._get_schema(f"torchvision::{op}", "")
        return True
    except RuntimeError:
        return False


def import_timm() -> ModuleType:
    import_torchvision()
    import timm

    return timm


def import_open_clip() -> ModuleType:
    import_torchvision()
    import open_clip

    return open_clip
