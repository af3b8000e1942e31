"""Expected layouts, class orders, split rules and counts of the supported datasets.

One JSON file per dataset (``rafdb.json``, ``ferplus.json``, ``kdef.json``, ``sample.json``).
They are data, not code: the sources read class orders and split lists from here, and
``fer-bench data check`` compares a user's copy with the expected counts.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any


def available() -> list[str]:
    """Names of the datasets that have a manifest."""
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir()
                  if p.name.endswith(".json"))


@lru_cache(maxsize=None)
def _load(name: str) -> str:
    path = resources.files(__name__) / f"{name}.json"
    if not path.is_file():
        from fercore.errors import ConfigError

        raise ConfigError(f"no manifest for dataset {name!r}; known: {', '.join(available())}")
    return path.read_text(encoding="utf-8")


def load_manifest(name: str) -> dict[str, Any]:
    """The manifest of dataset ``name`` as a fresh dict (safe to modify)."""
    return json.loads(_load(name))
