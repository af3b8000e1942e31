"""Preset files: a degradation's settings as data, shipped with the package or written by
``fer-degrade calibrate --write-preset``.

A preset file is JSON::

    {"kind": "udc" | "lowlight",
     "name": "toled",
     "description": "one paragraph: what it models and where its numbers come from",
     "settings": {...},          # the simulator's settings (UDC) or ranges + settings (low light)
     "calibration": {...}}       # optional: data set, pairs fitted / held out, figures before/after

Shipped presets live in ``degrade/<kind>/presets/<name>.json``; every command that takes a
preset name (``--display`` for UDC, ``--preset`` for low light) also takes a path to such a file.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from fercore.atomic import atomic_write_text
from fercore.errors import ConfigError

KINDS = ("udc", "lowlight")


def preset_dir(kind: str) -> Path:
    """The folder of the presets shipped for ``kind``."""
    return Path(__file__).resolve().parent / kind / "presets"


def shipped_presets(kind: str) -> list[str]:
    """Names of the presets shipped for ``kind``, sorted."""
    return sorted(p.stem for p in preset_dir(kind).glob("*.json"))


def is_preset_path(name: str) -> bool:
    """Whether ``name`` is a path to a preset file rather than a shipped preset's name."""
    return name.endswith(".json") or "/" in name or "\\" in name


def load_preset(kind: str, name: str, *, flag: str) -> dict[str, Any]:
    """The preset ``name`` (a shipped name or a path to a ``.json`` file) of ``kind``, validated.

    Raises :class:`~fercore.errors.ConfigError` naming ``flag`` for an unknown name, an
    unreadable file or one written for another kind.
    """
    if is_preset_path(name):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ConfigError(f"preset file {path} not found", flag=flag)
    else:
        path = preset_dir(kind) / f"{name}.json"
        if not path.is_file():
            raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(shipped_presets(kind))} "
                              "or give a preset .json file (fer-degrade calibrate --write-preset)", flag=flag)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable preset file ({exc})", flag=flag) from None
    if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
        raise ConfigError(f"{path}: a preset file is a JSON object with a 'settings' object", flag=flag)
    if data.get("kind") != kind:
        raise ConfigError(f"{path}: this preset is for {data.get('kind')!r}, not {kind!r}", flag=flag)
    data.setdefault("name", path.stem)
    data["path"] = str(path)
    return data


def write_preset(path: str | Path, kind: str, name: str, settings: dict[str, Any], *,
                 description: str = "", calibration: dict[str, Any] | None = None) -> Path:
    """Write a preset file atomically (keys sorted, floats as written) and return its path."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    doc: dict[str, Any] = {"kind": kind, "name": name, "description": description,
                           "settings": json_safe(settings)}
    if calibration is not None:
        doc["calibration"] = json_safe(calibration)
    path = Path(path)
    atomic_write_text(path, dumps(doc) + "\n")
    return path


def dumps(obj: Any) -> str:
    """JSON with two-space indents and lists of numbers / strings kept on one line."""
    text = json.dumps(obj, indent=2)
    return re.sub(r"\[\s+([^\[\]{}]*?)\s+\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)


def json_safe(obj: Any) -> Any:
    """JSON-safe copy: tuples to lists, non-finite floats to None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "item") and callable(obj.item):  # NumPy scalars
        return json_safe(obj.item())
    return obj
