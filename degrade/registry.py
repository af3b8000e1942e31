"""One registry of degradations: the toolkit's (``udc``, ``ll``) and any plugin's.

A registered degradation has a *name*, which is also the prefix of its dataset names
(``udc`` -> ``udc-rafdb``) and the scope of its ``--degrade-opt NAME.KEY=VALUE`` settings, a
*preset factory* ``make(preset, **settings) -> Degradation`` and a *rebuild function* (by
default :func:`degrade.rebuild.rebuild_dataset`, the one generic runner: a plugin rarely
needs its own)::

    from degrade.registry import register_degradation

    register_degradation("blur", make_blur, default_preset="mild", description="Gaussian blur")

after which ``fer-bench run --datasets sample,blur-sample`` builds the blurred sample set on
demand and ``fer-degrade rebuild blur --preset strong`` rebuilds any dataset with it.

The toolkit's own two are registered below exactly like a plugin's; their factories import
the simulators only when called (listing names stays cheap).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fercore.errors import ConfigError

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789")


@dataclass(frozen=True)
class DegradationEntry:
    """One registered degradation.

    Attributes:
        name: dataset-name prefix and ``--degrade-opt`` scope (lower-case letters and digits).
        make: the preset factory, ``make(preset, **settings) -> Degradation``.
        kind: the degradation's :attr:`~degrade.base.Degradation.kind` (run records, seeds).
        default_preset: preset used when none is given.
        preset_arg: name under which the preset is recorded among the factory arguments
            (``display`` for UDC, whose factory calls it so).
        rebuild: ``rebuild(degradation, source, out, **options) -> RebuildResult``; ``None``:
            :func:`degrade.rebuild.rebuild_dataset`.
        from_source: ``from_source(clean_source) -> dict`` of settings taken from the clean
            data set unless given (UDC: the face's share of the image, ``face_fraction``).
        aliases: other spellings accepted in dataset names (``lowlight-rafdb``, ``LL-RAF-DB``).
        description: one line for listings.
        presets: names of the presets, for listings and ``--preset`` help (may be empty).
    """

    name: str
    make: Callable[..., Any]
    kind: str
    default_preset: str | None = None
    preset_arg: str = "preset"
    rebuild: Callable[..., Any] | None = None
    from_source: Callable[[Any], Mapping[str, Any]] | None = None
    aliases: tuple[str, ...] = ()
    description: str = ""
    presets: tuple[str, ...] = field(default_factory=tuple)

    def create(self, preset: str | None = None, **settings: Any):
        """The configured degradation (``make(preset or default_preset, **settings)``)."""
        return self.make(preset or self.default_preset, **settings)

    def rebuild_fn(self) -> Callable[..., Any]:
        if self.rebuild is not None:
            return self.rebuild
        from .rebuild import rebuild_dataset

        return rebuild_dataset

    def code_objects(self) -> list[Any]:
        """The functions whose modules define what this degradation does (for fingerprints)."""
        return [f for f in (self.make, self.rebuild, self.from_source) if f is not None]


_REGISTRY: dict[str, DegradationEntry] = {}


def register_degradation(name: str, make: Callable[..., Any], rebuild: Callable[..., Any] | None = None, *,
                         kind: str | None = None, default_preset: str | None = None, preset_arg: str = "preset",
                         from_source: Callable[[Any], Mapping[str, Any]] | None = None,
                         aliases: tuple[str, ...] = (), description: str = "",
                         presets: tuple[str, ...] = ()) -> DegradationEntry:
    """Register a degradation (see :class:`DegradationEntry` for the arguments).

    ``name`` must be new (re-registering the same factory is allowed, so importing a plugin
    twice is harmless) and must not clash with another's alias.
    """
    name = name.strip().lower()
    if not name or not set(name) <= _NAME_CHARS:
        raise ValueError(f"degradation name {name!r}: use lower-case letters and digits only "
                         "(it prefixes dataset names: NAME-rafdb)")
    if not callable(make):
        raise TypeError(f"degradation {name!r}: make must be callable, got {type(make).__name__}")
    old = _REGISTRY.get(name)
    if old is not None and old.make is not make:
        raise ValueError(f"degradation {name!r} registered twice")
    taken = {a: e.name for e in _REGISTRY.values() for a in (e.name, *e.aliases) if e.name != name}
    for a in (name, *aliases):
        if a in taken:
            raise ValueError(f"degradation {name!r}: {a!r} already names degradation {taken[a]!r}")
    entry = DegradationEntry(name, make, kind or name, default_preset, preset_arg, rebuild, from_source,
                             tuple(a.lower() for a in aliases), description, tuple(presets))
    _REGISTRY[name] = entry
    return entry


def unregister_degradation(name: str) -> None:
    """Remove a registration (tests, interactive sessions)."""
    _REGISTRY.pop(name, None)


def list_degradations() -> list[str]:
    return list(_REGISTRY)


def get_degradation(name: str, flag: str | None = None) -> DegradationEntry:
    """The entry named ``name`` (or one of its aliases); :class:`ConfigError` if unknown."""
    key = name.strip().lower()
    for e in _REGISTRY.values():
        if key == e.name or key in e.aliases:
            return e
    raise ConfigError(f"unknown degradation {name!r}; known: {', '.join(_REGISTRY)} "
                      "(a plugin adds more: --import MODULE)", flag=flag)


def prefixes() -> dict[str, str]:
    """Every spelling accepted as a dataset-name prefix -> the degradation's name."""
    return {a: e.name for e in _REGISTRY.values() for a in (e.name, *e.aliases)}


def by_kind(kind: str) -> DegradationEntry | None:
    return next((e for e in _REGISTRY.values() if e.kind == kind), None)


# ------------------------------------------------------- the toolkit's own, as plugins
def _lazy(module: str, attr: str) -> Callable[..., Any]:
    """``module.attr``, imported at call time (the simulators import torch and their presets)."""

    def make(preset, **settings):
        return getattr(importlib.import_module(module), attr)(preset, **settings)

    make.__qualname__ = make.__name__ = attr
    make.__doc__ = f"{module}.{attr}(preset, **settings), imported when first called."
    make.fingerprint_modules = (module,)  # what to hash for a job's code fingerprint
    return make


def _face_fraction(source) -> dict[str, Any]:
    return {"face_fraction": source.face_fraction}


register_degradation("udc", _lazy("degrade.udc", "make_udc"), kind="udc", default_preset="toled",
                     preset_arg="display", from_source=_face_fraction,
                     description="under-display camera (LRDif): panel transmittance, diffraction PSF, sensor noise",
                     presets=("toled", "poled", "toled-binary", "poled-binary"))
register_degradation("ll", _lazy("degrade.lowlight", "make_lowlight"), kind="lowlight", default_preset="lldif",
                     aliases=("lowlight", "low-light"),
                     description="low light (LLDif): exposure, white balance, highlights, shadows",
                     presets=("lldif", "realistic", "lldif-v1", "realistic-v1"))
