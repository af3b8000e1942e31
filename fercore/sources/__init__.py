"""Dataset sources: one module each, all yielding :class:`~fercore.sources.base.Record`.

=========  ==============================================================================
name       layout
=========  ==============================================================================
rafdb      ``basic/Image/aligned/*_aligned.jpg`` + ``basic/EmoLabel/list_patition_label.txt``
ferplus    ``fer2013.csv`` (pixels) + ``fer2013new.csv`` (FER+ votes, majority rule)
kdef       ``**/<A|B><F|M><01-35><AF|AN|DI|HA|NE|SA|SU><FL|HL|S|HR|FR>.JPG``
folder     ``root/<class>/<img>`` or ``root/<split>/<class>/<img>``
sample     the embedded rendered set (built and cached on first use)
=========  ==============================================================================

``get_source("rafdb", "/data/RAF-DB")`` returns a ready source; ``--src-opt key=value``
strings are parsed by :func:`fercore.options.parse_options`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .base import SPLITS, CheckReport, Option, Record, Source
from .ferplus import FERPlus, majority_label
from .folder import Folder
from .kdef import KDEF
from .rafdb import RafDB
from .sample import Sample

SOURCES: dict[str, type[Source]] = {}
#: Other spellings of source names in dataset names (``RAF-DB``, ``FER+``) -> the source's name.
SOURCE_ALIASES: dict[str, str] = {}


def register_source(cls: type[Source], aliases: Iterable[str] = ()) -> type[Source]:
    """Register a :class:`Source` subclass under its ``name`` (usable as a class decorator).

    A plugin's source is then ``--src NAME`` of every data command and a base of dataset names
    (``fer-bench run --datasets NAME,udc-NAME``). ``aliases`` are other accepted spellings.
    Re-registering the same class is harmless; another class under a taken name is refused.
    """
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not name or name != name.lower() or "-" in name:
        raise ValueError(f"{cls.__name__}: a source needs a lower-case `name` without '-', got {name!r}")
    old = SOURCES.get(name)
    if old is not None and old is not cls:
        raise ValueError(f"source {name!r} registered twice ({old.__module__} and {cls.__module__})")
    SOURCES[name] = cls
    for a in aliases:
        SOURCE_ALIASES[a.lower()] = name
    return cls


for _cls, _aliases in ((RafDB, ("raf-db", "raf")), (FERPlus, ("fer+", "fer-plus")), (KDEF, ()),
                       (Folder, ()), (Sample, ())):
    register_source(_cls, _aliases)


def get_source(name: str, root: str | Path | None = None, **options: Any) -> Source:
    """Create the source ``name`` reading ``root`` (``sample`` needs no root)."""
    try:
        cls = SOURCES[name]
    except KeyError:
        raise ConfigError(f"unknown source {name!r}; choose one of {', '.join(SOURCES)}", flag="--src") from None
    return cls(root, **options)


__all__ = ["SOURCE_ALIASES", "SOURCES", "register_source", "SPLITS", "CheckReport", "Option", "Record", "Source", "get_source",
           "majority_label"]
