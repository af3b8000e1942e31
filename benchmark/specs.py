"""What to run: method specs, model options, sweeps and recipe overrides.

A method spec names one configuration of a registered method::

    NAME[:VARIANT][@PRESET][+KEY=VALUE]...

* ``lrdif`` -- the method with its default variant and preset;
* ``lrdif:S2-V4`` -- a named variant (Table 5's rows);
* ``scn@tiny`` -- another preset (``tiny`` is the default on the sample set);
* ``lrdif+T=8`` -- a constructor option (JSON value: ``8``, ``0.5``, ``true``, ``[16,32]``).

``--model-opt [METHOD.]KEY=VALUE`` adds an option to every method (or to one), ``--sweep
[METHOD.]KEY=V1,V2,...`` expands each matching method into one configuration per value (the
diffusion-steps study: ``--methods lrdif --sweep T=1,2,4,8,16,32``). Recipe fields are changed
with ``--epochs`` (every stage), ``--lr``, ``--batch-size``, ``--input-size`` and
``--recipe KEY=VALUE``; how long every method trains with ``--budget`` (:mod:`benchmark.budget`).
"""

from __future__ import annotations

import copy
import hashlib
import inspect
from collections.abc import Sequence
import json
import math
from dataclasses import dataclass, field
from typing import Any

from fercore.errors import ConfigError
from fercore.options import parse_options

from .budget import Budget, StageSteps, epoch_shape, parse_budget, split_steps, stage_steps
from .datasets import parse_value, safe_name, split_list, split_top_level


@dataclass(frozen=True)
class MethodSpec:
    """One method configuration (see module docstring for the syntax)."""

    name: str
    variant: str | None = None
    preset: str | None = None
    options: tuple[tuple[str, Any], ...] = ()

    def __hash__(self) -> int:
        # option values may be JSON lists or objects (``+widths=[8,16]``), which are unhashable
        return hash((self.name, self.variant, self.preset,
                     json.dumps(self.options, sort_keys=True, separators=(",", ":"), default=str)))

    @property
    def options_dict(self) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in self.options}

    @property
    def label(self) -> str:
        """The spec as text (preset included only when given)."""
        s = self.name
        if self.variant:
            s += f":{self.variant}"
        if self.preset:
            s += f"@{self.preset}"
        for k, v in self.options:
            s += f"+{k}={json.dumps(v, separators=(',', ':')) if not isinstance(v, str) else v}"
        return s

    @property
    def dirname(self) -> str:
        return safe_name(self.label)

    def with_options(self, **opts: Any) -> MethodSpec:
        d = self.options_dict
        d.update(opts)
        return MethodSpec(self.name, self.variant, self.preset, tuple(sorted(d.items())))


def parse_method(text: str) -> MethodSpec:
    """Parse ``NAME[:VARIANT][@PRESET][+KEY=VALUE]...`` (validated against the registry)."""
    text = text.strip()
    if not text:
        raise ConfigError("empty method name", flag="--methods")
    head, *opts = split_top_level(text, "+")
    preset = None
    if "@" in head:
        head, preset = head.split("@", 1)
    variant = None
    if ":" in head:
        head, variant = head.split(":", 1)
    options: dict[str, Any] = {}
    for o in opts:
        if "=" not in o:
            raise ConfigError(f"option {o!r} in {text!r} is not KEY=VALUE", flag="--methods")
        k, v = o.split("=", 1)
        options[k.strip()] = parse_value(v)
    spec = MethodSpec(head.strip().lower(), variant or None, preset or None, tuple(sorted(options.items())))
    validate_method(spec)
    return spec


def validate_method(spec: MethodSpec) -> None:
    """Unknown method, variant or preset -> :class:`ConfigError` naming ``--methods``."""
    from models import get_entry

    entry = get_entry(spec.name)
    if spec.variant is not None and spec.variant not in entry.variants:
        raise ConfigError(f"{spec.name} has no variant {spec.variant!r}; choose one of "
                          f"{', '.join(entry.variants) or 'none (it has no variants)'}", flag="--methods")
    if spec.preset is not None and spec.preset not in entry.presets:
        raise ConfigError(f"{spec.name} has no preset {spec.preset!r}; choose one of "
                          f"{', '.join(entry.presets)}", flag="--methods")


def parse_methods(text: str, model_opts: tuple[str, ...] = (), sweeps: tuple[str, ...] = ()) -> list[MethodSpec]:
    """``--methods``, ``--model-opt`` and ``--sweep`` -> the list of method configurations."""
    specs = [parse_method(t) for t in split_list(text)]
    if not specs:
        raise ConfigError("no methods given", flag="--methods")
    names = {s.name for s in specs}
    for pair in model_opts:
        scope, key, value = _scoped(pair, "--model-opt", names)
        specs = [s.with_options(**{key: parse_value(value)}) if scope in (None, s.name) else s for s in specs]
    for pair in sweeps:
        scope, key, values = _scoped(pair, "--sweep", names)
        vals = [parse_value(v) for v in split_list(values)]
        if not vals:
            raise ConfigError(f"no values in {pair!r}", flag="--sweep")
        specs = [x for s in specs for x in
                 ([s.with_options(**{key: v}) for v in vals] if scope in (None, s.name) else [s])]
    seen: set[str] = set()
    for s in specs:
        if s.label in seen:
            raise ConfigError(f"method {s.label} listed twice", flag="--methods")
        seen.add(s.label)
    return specs


def _scoped(pair: str, flag: str, names: set[str]) -> tuple[str | None, str, str]:
    if "=" not in pair:
        raise ConfigError(f"expected [METHOD.]KEY=VALUE, got {pair!r}", flag=flag)
    key, value = pair.split("=", 1)
    key = key.strip()
    scope = None
    if "." in key:
        scope, key = key.split(".", 1)
        scope = scope.lower()
        if scope not in names:
            raise ConfigError(f"{pair!r} targets {scope!r}, which is not in --methods ({', '.join(sorted(names))})",
                              flag=flag)
    return scope, key, value


@dataclass(frozen=True)
class RecipeOverrides:
    """Recipe changes and the training budget from the command line.

    ``budget`` (``--budget``) is the run's budget for every method; ``None`` with ``epochs``
    also ``None``: the run's preset's default (:func:`benchmark.budget.preset_budget`).
    ``epochs`` (``--epochs``) trains every stage that many epochs instead (no shared budget).
    """

    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    input_size: int | None = None
    fields: tuple[tuple[str, Any], ...] = ()
    budget: Budget | None = None

    def __post_init__(self):
        if self.epochs is not None and self.budget is not None:
            raise ConfigError("give either --budget (the same for every method) or --epochs (per-method "
                              "epochs), not both", flag="--budget")

    @classmethod
    def from_cli(cls, epochs=None, lr=None, batch_size=None, input_size=None,
                 recipe_pairs: tuple[str, ...] = (), budget: str | None = None) -> RecipeOverrides:
        fields = {k: parse_value(v) for k, v in parse_options(recipe_pairs, flag="--recipe").items()}
        for name, val in (("epochs", epochs), ("batch_size", batch_size), ("input_size", input_size)):
            if val is not None and val <= 0:
                raise ConfigError(f"must be positive, got {val}", flag="--" + name.replace("_", "-"))
        if lr is not None and not (math.isfinite(lr) and lr > 0):
            raise ConfigError(f"must be a positive finite number, got {lr}", flag="--lr")
        return cls(epochs, lr, batch_size, input_size, tuple(sorted(fields.items())), parse_budget(budget))

    def changes_for(self, base_recipe) -> dict[str, Any]:
        """Recipe field changes for a method whose resolved recipe is ``base_recipe``.

        ``--epochs N`` sets ``epochs`` and, for multi-stage methods, every stage's epochs.
        """
        ch: dict[str, Any] = dict(self.fields)
        if self.epochs is not None:
            ch["epochs"] = self.epochs
            if base_recipe.stage_epochs:
                ch["stage_epochs"] = {k: self.epochs for k in base_recipe.stage_epochs}
        for name in ("lr", "batch_size", "input_size"):
            if getattr(self, name) is not None:
                ch[name] = getattr(self, name)
        return ch

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size,
                "input_size": self.input_size, "fields": dict(self.fields),
                "budget": str(self.budget) if self.budget else None}


@dataclass
class ModelPlan:
    """A method spec resolved against the registry: the one decision of what a job trains.

    Attributes:
        spec: the method configuration as given.
        preset: the preset it resolves to.
        kwargs: constructor kwargs (preset, variant and options merged).
        recipe_changes: recipe fields changed from the preset's (``--epochs``, ``--recipe`` ...).
        recipe: the final recipe.
        stages: the stages the built model trains, in order
            (:meth:`models.base.FERModel.planned_stages`).
        declared_stages: every stage of the method's class (a ``stage_epochs`` key naming one
            this configuration leaves out is not an error).
        all_kwargs: every constructor setting with its value (defaults included; JSON-able).

    :meth:`stage_steps` is how long each stage trains on a given training set (a run's budget
    split by the recipe's stage shares, or the recipe's epochs); ``--dry-run`` prints it and the
    runner trains it on the model :meth:`build` makes.
    """

    spec: MethodSpec
    preset: str
    kwargs: dict[str, Any]
    recipe_changes: dict[str, Any]
    recipe: Any
    stages: tuple[str, ...] = ()
    all_kwargs: dict[str, Any] = field(default_factory=dict)
    declared_stages: tuple[str, ...] = ()

    @property
    def schedule(self) -> list[tuple[str, int]]:
        """(stage, epochs) in training order when training by epochs; a stage with 0 epochs is skipped."""
        return stage_plan(self.recipe, self.stages, self.declared_stages)

    def stage_steps(self, budget: Budget | None, n_train: int, drop_last: bool = True) -> list[StageSteps]:
        """The stages that train (in order) and their steps on ``n_train`` training images.

        ``budget``: its steps (``ceil(images / batch)`` for an images budget) split over the
        stages by :meth:`models.recipe.Recipe.stage_shares`, each stage's learning-rate schedule
        stretched over its steps (:attr:`benchmark.budget.StageSteps.schedule_scale`); ``None``: the
        recipe's epochs (:attr:`schedule`). Stages that get 0 steps are left out.
        """
        bs = self.recipe.batch_size
        if budget is None:
            per_epoch, _ = epoch_shape(n_train, bs, drop_last)
            parts = [(st, n * per_epoch) for st, n in self.schedule]
            out = [stage_steps(st, n, n_train, bs, drop_last) for st, n in parts if n > 0]
        else:
            parts = split_steps(budget.steps(bs), self.recipe.stage_shares(self.stages))
            epochs = dict(self.schedule)
            out = [stage_steps(st, n, n_train, bs, drop_last, recipe_epochs=epochs.get(st)) for st, n in parts if n > 0]
        if not out:
            raise ConfigError(f"{self.spec.label}: no stage has a step to train", flag="--budget")
        return out

    def describe_schedule(self) -> str:
        """The schedule as ``--dry-run`` prints it: ``s1:100+s2:100``, or ``40`` for one stage."""
        sched = self.schedule
        if len(sched) == 1:
            return str(sched[0][1])
        return "+".join(f"{st}:{n}" for st, n in sched)

    def build(self, num_classes: int, class_names: Sequence[str] | None = None):
        """The model this plan describes (call under the run's init seed). ``class_names``: the
        dataset's classes in label order, given to methods that read them (LRDif / LLDif prompt
        CLIP with them), so a folder with other classes (``classes=present``) is named right."""
        from models import create_model, get_entry

        extra = {}
        if class_names is not None and "class_names" in inspect.signature(get_entry(self.spec.name).cls).parameters:
            extra["class_names"] = list(class_names)
        model = create_model(self.spec.name, self.preset, num_classes, variant=self.spec.variant,
                             **self.spec.options_dict, **extra, recipe=dict(self.recipe_changes))
        if tuple(model.stages) != self.stages or model.recipe != self.recipe:
            raise ConfigError(f"{self.spec.label}: the built model trains stages {list(model.stages)} with recipe "
                              f"{model.recipe}, but the plan said {list(self.stages)} with {self.recipe}; "
                              f"{type(model).__name__}.planned_stages must agree with its constructor",
                              flag="--methods")
        return model


def plan_model(spec: MethodSpec, overrides: RecipeOverrides, default_preset: str | None) -> ModelPlan:
    """Resolve a spec: preset (spec, else run default, else the method's), kwargs, recipe, stages."""
    from models import get_entry
    from models.registry import resolve_config

    entry = get_entry(spec.name)
    preset = spec.preset or (default_preset if default_preset in entry.presets else None) or entry.default_preset
    kwargs, recipe = resolve_config(spec.name, preset, spec.variant, **spec.options_dict)
    changes = overrides.changes_for(recipe)
    recipe = recipe.replace(**changes)
    sig = inspect.signature(entry.cls.__init__)
    all_kwargs = {k: p.default for k, p in sig.parameters.items()
                  if k not in ("self", "num_classes") and p.default is not inspect.Parameter.empty
                  and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    named = {k for k, p in sig.parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    all_kwargs.update(kwargs)
    unknown = set(spec.options_dict) - named
    if unknown and not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
        raise ConfigError(f"{spec.name} takes no option(s) {sorted(unknown)}; its options are "
                          f"{', '.join(sorted(all_kwargs)) or 'none'}", flag="--model-opt")
    plan = ModelPlan(spec, preset, kwargs, changes, recipe, entry.cls.planned_stages(kwargs), _jsonable(all_kwargs),
                     tuple(entry.cls.stages))
    plan.schedule  # noqa: B018 -- a stage_epochs key naming no stage is an error now, not at run time
    _check_stage_keys(recipe.stage_share, "stage_share", plan.stages, plan.declared_stages)
    return plan


def stage_plan(recipe, stages: tuple[str, ...], declared: tuple[str, ...] = ()) -> list[tuple[str, int]]:
    """(stage, epochs) in order: ``stage_epochs`` when given, else ``epochs`` for each stage.

    A stage missing from ``stage_epochs`` gets 0 epochs (skipped); a ``stage_epochs`` key that
    is not one of the model's stages is an error, unless it is one of the method's
    ``declared`` stages (its class's ``stages``) that this configuration leaves out (LRDif's
    ``S1`` variant trains only ``s1``; an LLDif with a loaded LA-CLIP skips ``la-clip``).
    """
    if recipe.stage_epochs:
        _check_stage_keys(recipe.stage_epochs, "stage_epochs", stages, declared)
        return [(s, int(recipe.stage_epochs.get(s, 0))) for s in stages]
    return [(s, int(recipe.epochs)) for s in stages]


def _check_stage_keys(mapping, name: str, stages: tuple[str, ...], declared: tuple[str, ...]) -> None:
    extra = set(mapping or ()) - set(stages) - set(declared)
    if extra:
        raise ConfigError(f"recipe.{name} names {sorted(extra)}, but the model's stages are {list(stages)}",
                          flag="--recipe")


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=lambda o: list(o) if isinstance(o, (tuple, set)) else repr(o)))


def config_hash(payload: dict[str, Any]) -> str:
    """Short stable hash of a JSON-able config (12 hex digits)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` -> seeds."""
    out: list[int] = []
    for part in split_list(text):
        try:
            if "-" in part.strip("-") and not part.startswith("-"):
                a, b = part.split("-", 1)
                out.extend(range(int(a), int(b) + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise ConfigError(f"not a seed list: {text!r} (use 0,1,2 or 0-4)", flag="--seeds") from None
    if not out or any(s < 0 for s in out):
        raise ConfigError(f"need non-negative seeds, got {text!r}", flag="--seeds")
    if len(set(out)) != len(out):
        raise ConfigError(f"seed listed twice in {text!r}", flag="--seeds")
    return out
