"""Settings of the prior-diffusion methods (LRDif, LLDif) as nested dataclasses.

A method's configuration is a tree of sections (``clip``, ``encoder``, ``prior``,
``diffusion``, ``losses``, ``former``, ``landmarks``, and LLDif's ``la_clip`` and
``captions``), so a preset reads as data::

    LRDifConfig(image_size=64, prior=FPENPriorConfig(dim=32, fpen_layers=2), ...)

Every field also has a *flat name*, the ``create_model`` keyword the toolkit has always used
(``clip_model``, ``prior_dim``, ``T``, ``dims``...): the section's ``PREFIX`` plus the field
name, or the field's own ``flag`` (``field(metadata={"flag": "T"})``). Overrides may be flat
(``T=8``), dotted (``**{"diffusion.steps": 8}``) or nested (``diffusion={"steps": 8}``); a
section name given a value that is not a mapping is the flat name of one of its fields
(``diffusion=False`` switches the diffusion off, ``landmarks="none"`` picks the landmark
encoder). Checkpoints and benchmark runs keep the flat names (see :func:`flat_settings`).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fercore.errors import ConfigError

from ..blocks.prior_diffusion import KL_DIRECTIONS
from ..clip_encoders import DEFAULT_TEMPLATE

IMAGE_ENCODERS = ("clip", "conv")


def flag(default: Any, name: str) -> Any:
    """A dataclass field whose flat name is ``name`` (not ``PREFIX + field name``)."""
    return field(default=default, metadata={"flag": name})


def section(cls: type, **values: Any) -> Any:
    """A nested section field defaulting to ``cls(**values)``."""
    return field(default_factory=lambda: cls(**values))


@dataclass
class ClipConfig:
    """The frozen CLIP (:class:`models.clip_encoders.FrozenCLIP`)."""

    PREFIX: ClassVar[str] = "clip_"
    model: str = "ViT-B-32"
    pretrained: str | None = "openai"
    template: str = DEFAULT_TEMPLATE
    init_seed: int = 0
    normalize: bool = True
    cache: bool = True
    cache_dir: str | None = None
    center_text: bool = True


@dataclass
class EncoderConfig:
    """``E_I(x)``'s image tower: ``"clip"`` (the papers) or a trainable ``"conv"`` stand-in
    (:class:`models.blocks.conv_image_encoder.ConvImageEncoder`) with its ``widths`` and
    ``gray`` input."""

    PREFIX: ClassVar[str] = "encoder_"
    kind: str = flag("clip", "image_encoder")
    widths: tuple[int, ...] | None = None
    gray: bool = False


@dataclass
class PriorConfig:
    """The prior ``Z``: its length, whether the prior networks end with a parameter-free
    LayerNorm (unit-scale priors; not in the papers) and the layers of an FPEN."""

    PREFIX: ClassVar[str] = "prior_"
    dim: int = 256
    norm: bool = False
    fpen_layers: int = flag(3, "fpen_layers")


@dataclass
class DiffusionConfig:
    """Stage 2's few-step diffusion on the prior (:mod:`models.blocks.prior_diffusion`)."""

    PREFIX: ClassVar[str] = ""
    enabled: bool = flag(True, "diffusion")
    steps: int = flag(4, "T")
    schedule: str = "linear"
    beta_start: float = 0.1
    beta_end: float = 0.99
    parameterization: str = "x0"
    denoiser_depth: int = 1
    denoiser_skip: bool = False
    insert_noise: bool = True


@dataclass
class LossConfig:
    """Stage 2's prior terms: KL between the softmaxed priors (Eq. 17) and DiffIR's L1."""

    PREFIX: ClassVar[str] = ""
    kl_weight: float = 1.0
    kl_temperature: float = 1.0
    kl_direction: str = "s1||s2"
    l1_weight: float = 0.0


@dataclass
class FormerConfig:
    """The DT + DIL + ViT former (:class:`models.blocks.former.PriorLandmarkFormer`)."""

    PREFIX: ClassVar[str] = ""
    dims: tuple[int, ...] = (64, 128, 256)
    blocks: tuple[int, ...] = (4, 6, 6)
    heads: tuple[int, ...] = (1, 2, 4)
    ffn_expansion: float = 2.66
    stem_stride: int = 8
    dil_heads: tuple[int, ...] = (2, 4, 8)
    windows: tuple[int, ...] | None = None
    image_stream: str = "dt"
    layer_scale: float | None = None
    embed_dim: int = 768
    vit_depth: int = 2
    vit_heads: int = 8
    mlp_ratio: float = 4.0


@dataclass
class LandmarkConfig:
    """Landmark features (:mod:`models.landmarks`)."""

    PREFIX: ClassVar[str] = ""
    kind: str = flag("heatmap", "landmarks")
    heatmap_sigma: float = 1.5
    heatmap_groups: str = "parts"
    mobilefacenet_path: str | None = None


@dataclass
class PriorMethodConfig:
    """What LRDif and LLDif share; each method's config adds or narrows sections."""

    image_size: int = 224
    clip: ClipConfig = section(ClipConfig)
    encoder: EncoderConfig = section(EncoderConfig)
    prior: PriorConfig = section(PriorConfig)
    diffusion: DiffusionConfig = section(DiffusionConfig)
    losses: LossConfig = section(LossConfig)
    former: FormerConfig = section(FormerConfig)
    landmarks: LandmarkConfig = section(LandmarkConfig)
    train_stages: tuple[str, ...] = ("s1", "s2")
    predict_seed: int = 0

    def check(self) -> None:
        """The checks every prior method makes (a :class:`ConfigError` naming the flat flag)."""
        if self.encoder.kind not in IMAGE_ENCODERS:
            raise ConfigError(f"choose one of {', '.join(IMAGE_ENCODERS)}, got {self.encoder.kind!r}",
                              flag="image_encoder")
        for name in ("kl_weight", "l1_weight"):
            if getattr(self.losses, name) < 0:
                raise ConfigError(f"must be >= 0, got {getattr(self.losses, name)}", flag=name)
        if self.losses.kl_temperature <= 0:
            raise ConfigError(f"must be > 0, got {self.losses.kl_temperature}", flag="kl_temperature")
        if self.losses.kl_direction not in KL_DIRECTIONS:
            raise ConfigError(f"choose one of {', '.join(KL_DIRECTIONS)}, got {self.losses.kl_direction!r}",
                              flag="kl_direction")
        steps = self.diffusion.steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"must be an integer >= 1 (reverse steps), got {steps!r}", flag="T")


# -- flat names ------------------------------------------------------------------------------
def _sections(cfg: Any) -> Iterator[tuple[str | None, Any]]:
    """``(section name, section)`` for every nested section, then ``(None, cfg)`` for the top."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            yield f.name, value
    yield None, cfg


def flat_names(cfg: Any) -> dict[str, tuple[str | None, str]]:
    """Flat name -> ``(section or None, field)`` for every setting of ``cfg``, in field order."""
    out: dict[str, tuple[str | None, str]] = {}
    for sec, obj in _sections(cfg):
        prefix = getattr(obj, "PREFIX", "") if sec is not None else ""
        for f in dataclasses.fields(obj):
            if sec is None and dataclasses.is_dataclass(getattr(obj, f.name)):
                continue
            out[f.metadata.get("flag", prefix + f.name)] = (sec, f.name)
    return out


def flat_settings(cfg: Any) -> dict[str, Any]:
    """Every setting of ``cfg`` under its flat name (the ``create_model`` keywords)."""
    return {k: getattr(cfg if s is None else getattr(cfg, s), f) for k, (s, f) in flat_names(cfg).items()}


def preset(cfg: Any, recipe: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A registry preset: the flat settings of ``cfg`` that differ from its class's defaults,
    plus ``"recipe"`` changes."""
    default = flat_settings(type(cfg)())
    out = {k: v for k, v in flat_settings(cfg).items() if v != default[k] or type(v) is not type(default[k])}
    return {**out, **({"recipe": dict(recipe)} if recipe else {})}


def _set(obj: Any, name: str, value: Any, where: str) -> Any:
    names = {f.name for f in dataclasses.fields(obj)}
    if name not in names:
        raise ConfigError(f"unknown setting {where}; {type(obj).__name__} has {', '.join(sorted(names))}",
                          flag=where)
    current = getattr(obj, name)
    if dataclasses.is_dataclass(current):
        if isinstance(value, Mapping):
            for k, v in value.items():
                _set(current, k, v, f"{where}.{k}")
            return obj
        if not isinstance(value, type(current)):
            raise ConfigError(f"needs a mapping or a {type(current).__name__}, got {value!r}", flag=where)
    setattr(obj, name, value)
    return obj


def build_config(cls: type, settings: Mapping[str, Any], base: Any = None) -> Any:
    """``cls`` (a copy of ``base``, else its defaults) with ``settings`` applied in order: flat
    names, dotted paths (``"diffusion.steps"``) or sections given a mapping or an instance."""
    cfg = _deep_copy(base if base is not None else cls())
    flat = flat_names(cfg)
    for key, value in settings.items():
        if "." in key:
            *path, last = key.split(".")
            obj = cfg
            for p in path:
                obj = getattr(obj, p, None)
                if not dataclasses.is_dataclass(obj):
                    raise ConfigError(f"unknown setting {key}; sections are {', '.join(_section_names(cfg))}",
                                      flag=key)
            _set(obj, last, value, key)
        elif key in _section_names(cfg) and (isinstance(value, Mapping) or dataclasses.is_dataclass(value)):
            _set(cfg, key, _deep_copy(value) if dataclasses.is_dataclass(value) else value, key)
        elif key in flat:
            sec, name = flat[key]
            setattr(cfg if sec is None else getattr(cfg, sec), name, value)
        else:
            raise ConfigError(f"{_method_name(cls)} takes no setting {key!r}; its settings are "
                              f"{', '.join(sorted(flat))} (or nested: {', '.join(_section_names(cfg))})",
                              flag="--model-opt")
    return cfg


def _deep_copy(cfg: Any) -> Any:
    return dataclasses.replace(cfg, **{f.name: _deep_copy(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)
                                       if dataclasses.is_dataclass(getattr(cfg, f.name))})


def _section_names(cfg: Any) -> list[str]:
    return [s for s, _ in _sections(cfg) if s is not None]


def _method_name(cls: type) -> str:
    return cls.__name__.removesuffix("Config") or cls.__name__


def settings_signature(cls: type) -> inspect.Signature:
    """The constructor signature a method shows: ``num_classes``, ``class_names`` and every flat
    setting with its default (what :func:`benchmark.specs.plan_model` reads)."""
    kw = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
              inspect.Parameter("num_classes", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=7),
              inspect.Parameter("class_names", kw, default=None)]
    params += [inspect.Parameter(k, kw, default=v) for k, v in flat_settings(cls()).items()]
    return inspect.Signature(params)
