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

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .base import SPLITS, CheckReport, Option, Record, Source
from .ferplus import FERPlus, majority_label
from .folder import Folder
from .kdef import KDEF
from .rafdb import RafDB
from .sample import Sample

SOURCES: dict[str, type[Source]] = {c.name: c for c in (RafDB, FERPlus, KDEF, Folder, Sample)}


def get_source(name: str, root: str | Path | None = None, **options: Any) -> Source:
    """Create the source ``name`` reading ``root`` (``sample`` needs no root)."""
    try:
        cls = SOURCES[name]
    except KeyError:
        raise ConfigError(f"unknown source {name!r}; choose one of {', '.join(SOURCES)}", flag="--src") from None
    return cls(root, **options)


__all__ = ["SOURCES", "SPLITS", "CheckReport", "Option", "Record", "Source", "get_source",
           "majority_label"]
