"""One registry for every method: ``create_model(name, preset=..., num_classes=..., **overrides)``.

A method registers its :class:`~models.base.FERModel` subclass with named presets. A preset
is data: constructor keyword arguments plus an optional ``"recipe"`` dict of fields that
differ from the method's default recipe (``tiny`` presets shorten training for the sample
set). Overrides passed to :func:`create_model` win over the preset.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fercore.errors import ConfigError

from .base import FERModel
from .recipe import Recipe


@dataclass(frozen=True)
class ModelEntry:
    name: str
    cls: type[FERModel]
    recipe: Recipe
    presets: Mapping[str, Mapping[str, Any]]
    default_preset: str
    description: str = ""
    paper: str = ""
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, *, recipe: Recipe, presets: Mapping[str, Mapping[str, Any]],
                   default_preset: str = "paper", description: str = "", paper: str = "",
                   variants: Mapping[str, Mapping[str, Any]] | None = None) -> Callable[[type], type]:
    """Class decorator registering a method.

    Args:
        name: registry name (lower case, e.g. ``"lrdif"``).
        recipe: the method's default training recipe.
        presets: preset name -> constructor kwargs (and optional ``"recipe"`` changes).
        default_preset: preset used when none is named.
        variants: named ablation variants (e.g. Table 5's rows) -> constructor kwargs.
    """

    def deco(cls: type[FERModel]) -> type[FERModel]:
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ValueError(f"model {name!r} registered twice")
        if default_preset not in presets:
            raise ValueError(f"{name}: default preset {default_preset!r} not in presets")
        cls.method = name
        _REGISTRY[name] = ModelEntry(name, cls, recipe, dict(presets), default_preset, description,
                                     paper, dict(variants or {}))
        return cls

    return deco


def _ensure_loaded() -> None:
    """Import the model modules so their ``register_model`` calls run."""
    from . import zoo  # noqa: F401


def list_models() -> list[str]:
    _ensure_loaded()
    return sorted(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    _ensure_loaded()
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; known: {', '.join(sorted(_REGISTRY))}",
                          flag="--methods") from None


def resolve_config(name: str, preset: str | None = None, variant: str | None = None,
                   **overrides: Any) -> tuple[dict[str, Any], Recipe]:
    """Constructor kwargs and recipe for ``name`` with a preset, a variant and overrides."""
    entry = get_entry(name)
    preset = preset or entry.default_preset
    if preset not in entry.presets:
        raise ConfigError(f"{name} has no preset {preset!r}; choose one of {', '.join(entry.presets)}",
                          flag="--preset")
    kwargs = copy.deepcopy(dict(entry.presets[preset]))
    recipe_changes = dict(kwargs.pop("recipe", {}))
    if variant is not None:
        if variant not in entry.variants:
            raise ConfigError(f"{name} has no variant {variant!r}; choose one of "
                              f"{', '.join(entry.variants) or 'none'}", flag="--variant")
        kwargs.update(copy.deepcopy(dict(entry.variants[variant])))
    recipe_changes.update(overrides.pop("recipe", {}) or {})
    kwargs.update(overrides)
    return kwargs, entry.recipe.replace(**recipe_changes)


def create_model(name: str, preset: str | None = None, num_classes: int = 7, *,
                 variant: str | None = None, **overrides: Any) -> FERModel:
    """Build a registered method.

    ``create_model("lrdif", preset="tiny", num_classes=7)``. ``overrides`` are constructor
    kwargs (plus ``recipe={...}`` for recipe fields); they win over the preset and variant.
    """
    entry = get_entry(name)
    kwargs, recipe = resolve_config(name, preset, variant, **overrides)
    try:
        model = entry.cls(num_classes=num_classes, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"{name}: {exc}", flag="--model-opt") from None
    model.recipe = recipe
    model.config = {"name": entry.name, "preset": preset or entry.default_preset, "variant": variant,
                    "num_classes": num_classes, "overrides": copy.deepcopy(overrides)}
    return model


def model_info(name: str) -> dict[str, Any]:
    e = get_entry(name)
    return {"name": e.name, "description": e.description, "paper": e.paper,
            "presets": list(e.presets), "default_preset": e.default_preset,
            "variants": list(e.variants), "recipe": e.recipe.to_dict()}
