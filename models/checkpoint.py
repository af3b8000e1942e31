"""Save and load a registered model with everything needed to rebuild it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from fercore.atomic import atomic_write_bytes
from fercore.errors import DataError
from fercore.safeload import torch_load

from .base import FERModel
from .recipe import Recipe


def save_checkpoint(model: FERModel, path: str | Path, **extra: Any) -> None:
    """Write ``{config, recipe, stage, state_dict, **extra}`` atomically."""
    buf = io.BytesIO()
    torch.save({"config": model.config, "recipe": model.recipe.to_dict(), "stage": model.stage,
                "state_dict": model.state_dict(), **extra}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[FERModel, dict[str, Any]]:
    """Rebuild the model saved at ``path``; returns ``(model, checkpoint dict)``.

    Settings listed in the model's ``init_only_settings`` (``pretrained=PATH``) are left out:
    the checkpoint's weights replace them, so the original weights file may be gone. Nothing in
    the file is executed (:func:`fercore.safeload.torch_load`).
    """
    from .registry import create_model, get_entry

    ckpt = torch_load(path, what="checkpoint", map_location=map_location)
    if not isinstance(ckpt, dict) or "config" not in ckpt or "state_dict" not in ckpt:
        raise DataError("not a checkpoint written by models.save_checkpoint (no config / state_dict)", path)
    cfg = dict(ckpt["config"])
    drop = get_entry(cfg["name"]).cls.init_only_settings
    overrides = {k: v for k, v in dict(cfg.get("overrides") or {}).items() if k not in drop}
    model = create_model(cfg["name"], cfg.get("preset"), cfg.get("num_classes", 7),
                         variant=cfg.get("variant"), **overrides)
    model.recipe = Recipe.from_dict(ckpt["recipe"])
    stage = ckpt.get("stage", model.stages[0])
    if stage != model.stage:
        model.begin_stage(stage)
    model.load_state_dict(ckpt["state_dict"])
    return model, ckpt
