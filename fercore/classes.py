"""Canonical expression classes and the alias table that maps folder names onto them.

Every dataset keeps its *own* class order (RAF-DB's 1..7, FERPlus's vote columns, ...), kept
in ``data_manifests/``; records always carry the canonical *name* as well, so two datasets
can be compared without silent label mix-ups (``ImageFolder`` sorts names alphabetically,
which is how several baselines ended up with different orders).

Canonical names: surprise, fear, disgust, happiness, sadness, anger, neutral (the seven basic
expressions, in RAF-DB's order) and contempt (FERPlus, CK+, AffectNet).
"""

from __future__ import annotations

import re

from .errors import ConfigError

#: The seven basic expressions in RAF-DB's label order (1..7 there, 0..6 here).
BASIC7: tuple[str, ...] = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
#: BASIC7 plus contempt, the eighth FERPlus / CK+ / AffectNet class.
BASIC8: tuple[str, ...] = BASIC7 + ("contempt",)

#: Folder-name aliases (lower case, spaces/hyphens/underscores removed) -> canonical name.
#: Covers the spellings used by RAF-DB, FERPlus, KDEF (two-letter codes and words), CK+,
#: JAFFE (two-letter codes), AffectNet exports and ImageFolder conventions: nouns, adjectives
#: and past participles (``happiness``/``happy``, ``anger``/``angry``, ``surprised``,
#: ``fearful``, ``disgusted``). :func:`canonical_class` also drops a numeric prefix
#: (JAFFE's ``1 - Happy``, ``03_sad``) and a plural ``s`` (``smiles``, ``surprises``).
ALIASES: dict[str, str] = {
    # surprise
    "surprise": "surprise", "surprised": "surprise", "surprising": "surprise", "su": "surprise",
    "sur": "surprise", "suprise": "surprise", "amazed": "surprise", "astonished": "surprise",
    # fear
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear", "af": "fear", "fe": "fear",
    "frightened": "fear", "terrified": "fear",
    # disgust
    "disgust": "disgust", "disgusted": "disgust", "disgusting": "disgust", "di": "disgust",
    # happiness
    "happiness": "happiness", "happy": "happiness", "joy": "happiness", "smile": "happiness",
    "ha": "happiness", "hap": "happiness", "joyful": "happiness", "smiling": "happiness",
    # sadness
    "sadness": "sadness", "sad": "sadness", "sa": "sadness", "sorrow": "sadness", "unhappy": "sadness",
    # anger
    "anger": "anger", "angry": "anger", "an": "anger", "ang": "anger", "mad": "anger", "furious": "anger",
    # neutral
    "neutral": "neutral", "ne": "neutral", "neu": "neutral", "calm": "neutral",
    # contempt
    "contempt": "contempt", "co": "contempt", "con": "contempt", "contemptuous": "contempt",
}


def normalise_name(name: str) -> str:
    """Lower-case and strip separators: ``"Happy_Faces"`` -> ``"happyfaces"``."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _keys(name: str) -> list[str]:
    """The lookup keys of a folder name, most literal first: the normalised name, then without
    a numeric prefix (``"1 - Happy"`` -> ``"happy"``), then without a plural ``s``."""
    key = normalise_name(name)
    keys = [key, re.sub(r"^\d+", "", key)]
    keys += [k[:-1] for k in keys if len(k) > 3 and k.endswith("s")]
    return [k for k in dict.fromkeys(keys) if k]


def canonical_class(name: str, extra_aliases: dict[str, str] | None = None) -> str | None:
    """The canonical class of a folder/label ``name``, or ``None`` if it is unknown.

    ``extra_aliases`` (a user's ``{"folder name": "canonical class"}``) win over the table.
    """
    extra = {normalise_name(k): v for k, v in (extra_aliases or {}).items()}
    for key in _keys(name):
        if key in extra:
            return extra[key]
        if key in ALIASES:
            return ALIASES[key]
    return None


def class_list(num_classes: int) -> tuple[str, ...]:
    """The canonical class tuple for 7 or 8 classes."""
    if num_classes == 7:
        return BASIC7
    if num_classes == 8:
        return BASIC8
    raise ConfigError(f"must be 7 or 8, got {num_classes}", flag="classes")
