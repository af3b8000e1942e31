"""Settings dataclasses <-> ``--set KEY=VALUE`` strings, shared by every degradation command.

A degradation's settings are a frozen dataclass (configs are data). :func:`parse_set` turns
command-line ``KEY=VALUE`` pairs into typed keyword arguments for it, using the field's
default to decide the type: ranges are written ``LO:HI`` (or ``LO,HI``), booleans
``true/false``, ``none`` clears an optional value. Unknown keys and malformed values raise a
:class:`~fercore.errors.ConfigError` naming ``--set`` and listing the known keys.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

from fercore.errors import ConfigError

FLAG = "--set"


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if not f.name.startswith("_")}


def _finite(x: float) -> float:
    if not math.isfinite(x):
        raise ValueError("not a finite number")
    return x


def _parse_value(key: str, text: str, hint: Any) -> Any:
    text = text.strip()
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if text.lower() in ("none", "null", ""):
            if type(None) in args:
                return None
        non_none = [a for a in args if a is not type(None)]
        return _parse_value(key, text, non_none[0]) if non_none else text
    try:
        if hint is bool:
            low = text.lower()
            if low not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError(text)
            return low in ("true", "1", "yes", "on")
        if hint is int:
            return int(text)
        if hint is float:
            return _finite(float(text))
        if origin is tuple:
            parts = [p for p in text.replace(",", ":").split(":") if p.strip()]
            if args and args[-1] is not Ellipsis and len(parts) != len(args):
                raise ValueError(f"expected {len(args)} values")
            return tuple(_finite(float(p)) for p in parts)
    except ValueError as exc:
        raise ConfigError(f"{key}={text!r} is not a valid {getattr(hint, '__name__', hint)} ({exc})",
                          flag=FLAG) from None
    return text


def parse_set(pairs: typing.Iterable[str], cls) -> dict[str, Any]:
    """``["photons=1000:20000", "flare=true"]`` -> typed kwargs for the dataclass ``cls``."""
    from fercore.options import parse_options

    types = _field_types(cls)
    out: dict[str, Any] = {}
    for key, value in parse_options(pairs, flag=FLAG).items():
        if key not in types:
            raise ConfigError(f"unknown setting {key!r}; known: {', '.join(sorted(types))}", flag=FLAG)
        out[key] = _parse_value(key, value, types[key])
    return out


def check_keys(kwargs: dict[str, Any], cls, what: str) -> None:
    """Raise a clear error for keyword arguments ``cls`` does not have."""
    known = _field_types(cls)
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise ConfigError(f"unknown {what} setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                          flag=FLAG)


def settings_table(obj) -> list[tuple[str, str]]:
    """(name, value) rows of a settings dataclass, for ``--dry-run`` and docs."""
    return [(f.name, repr(getattr(obj, f.name))) for f in dataclasses.fields(obj) if not f.name.startswith("_")]
