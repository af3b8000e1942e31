"""Code fingerprints: a job's identity includes the code that defines its model and degradation.

Without them a finished job is found by its configuration alone, so editing a model's code (a
plugin's, or the toolkit's between releases) and running again would report the old result as
"skipped". A fingerprint is the sha256 of the *source file bytes* of the modules that define
something, keyed by module name, plus the toolkit version -- never paths or modification
times, so the same checkout gives the same fingerprint on every machine.

* model: the modules of the registered class and of its base classes (``torch`` and the
  standard library excluded);
* degradation: the modules of its registered factory and rebuild function (a lazily imported
  toolkit simulator names its module in ``make.fingerprint_modules``) and of the configured
  degradation's class and base classes.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

#: Top-level packages whose code is pinned by their version (recorded in run.json), not hashed.
EXTERNAL = frozenset({"builtins", "abc", "typing", "torch", "torchvision", "numpy", "kornia", "timm",
                      "collections", "dataclasses", "enum"})


@lru_cache(maxsize=None)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file's bytes (cached per process; size and mtime only key the cache)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def module_digest(name: str) -> str | None:
    """sha256 of the source file of module ``name``, or ``None`` (built-in, frozen, no source)."""
    mod = sys.modules.get(name)
    if mod is None:
        try:
            mod = importlib.import_module(name)
        except Exception:  # noqa: BLE001 -- a module that cannot be imported has no fingerprint
            return None
    file = getattr(mod, "__file__", None)
    if not file or not file.endswith(".py"):
        try:
            file = inspect.getsourcefile(mod)
        except TypeError:
            return None
    if not file:
        return None
    p = Path(file)
    try:
        st = p.stat()
    except OSError:
        return None
    return _file_digest(str(p), st.st_size, st.st_mtime_ns)


def _is_external(module: str) -> bool:
    return module.split(".", 1)[0] in EXTERNAL or module.split(".", 1)[0] in sys.stdlib_module_names


def class_modules(cls: type) -> list[str]:
    """Modules of ``cls`` and its base classes, outside torch and the standard library."""
    return sorted({c.__module__ for c in inspect.getmro(cls) if not _is_external(c.__module__)})


def object_modules(obj: Any) -> list[str]:
    """Modules defining a function or class (and ``fingerprint_modules`` it names)."""
    named = getattr(obj, "fingerprint_modules", None)
    if named:  # a lazy wrapper (the toolkit's simulators) names the module that does the work
        return sorted(named)
    mods: set[str] = set()
    if inspect.isclass(obj):
        mods.update(class_modules(obj))
    else:
        mod = getattr(obj, "__module__", None)
        if mod and not _is_external(mod):
            mods.add(mod)
    return sorted(mods)


def fingerprint(modules: list[str]) -> dict[str, Any]:
    """``{"toolkit": version, "modules": {name: sha256}}`` for ``modules``."""
    from fercore import __version__

    return {"toolkit": __version__, "modules": {m: module_digest(m) for m in sorted(set(modules))}}


def model_fingerprint(method: str) -> dict[str, Any]:
    """Fingerprint of the registered method ``method``'s class (and its bases)."""
    from models import get_entry

    return fingerprint(class_modules(get_entry(method).cls))


def degradation_fingerprint(name: str, degradation: Any | None = None) -> dict[str, Any]:
    """Fingerprint of registered degradation ``name`` (and of the configured object's class)."""
    from degrade.registry import get_degradation

    entry = get_degradation(name)
    mods: list[str] = []
    for obj in entry.code_objects():
        mods += object_modules(obj)
    if degradation is not None:
        mods += class_modules(type(degradation))
    return fingerprint(mods)


def digest(fp: dict[str, Any]) -> str:
    """A short hash of a fingerprint (for cache keys)."""
    import json

    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]


def job_code(method: str, dataset_record: dict[str, Any]) -> dict[str, Any]:
    """The ``code`` part of a job's config: its model's fingerprint and, for a degraded copy
    built on demand, its degradation's (a ``--data`` copy is pinned by its manifest instead)."""
    return {"model": model_fingerprint(method), "degradation": dataset_record.get("code")}
