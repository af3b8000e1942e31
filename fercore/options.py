"""``KEY=VALUE`` command-line options: the one parser every such flag uses.

``--src-opt``, ``--set``, ``--data NAME=PATH``, ``--aug``, ``--recipe`` and ``--fill`` all read
their values with :func:`parse_options`, so they split, strip and report errors alike.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import ConfigError


def parse_options(pairs: Iterable[str], flag: str = "--src-opt", form: str = "KEY=VALUE") -> dict[str, str]:
    """``["classes=7", "test=public+private"]`` -> ``{"classes": "7", ...}`` (keys and values
    stripped; a later key wins). ``flag`` and ``form`` name the option and its shape in the error."""
    out: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"expected {form}, got {pair!r}", flag=flag)
        k, v = pair.split("=", 1)
        out[k.strip()] = v.strip()
    return out
