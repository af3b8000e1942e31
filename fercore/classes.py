"""Canonical expression classes and the alias table that maps folder names onto them.

Every dataset keeps its *own* class order (RAF-DB's 1..7, FERPlus's vote columns, ...), kept
in ``data_manifests/``; records always carry the canonical *name* as well, so two datasets
can be compared without silent label mix-ups (``ImageFolder`` sorts names alphabetically,
which is how several baselines ended up with different orders).

Canonical names: surprise, fear, disgust, happiness, sadness, anger, neutral (the seven basic
expressions, in RAF-DB's order) and contempt (FERPlus, CK+, AffectNet).
"""

from __future__ import annotations

from .errors import ConfigError

#: The seven basic expressions in RAF-DB's label order (1..7 there, 0..6 here).
BASIC7: tuple[str, ...] = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
#: BASIC7 plus contempt, the eighth FERPlus / CK+ / AffectNet class.
BASIC8: tuple[str, ...] = BASIC7 + ("contempt",)

#: Folder-name aliases (lower case, spaces/hyphens/underscores removed) -> canonical name.
#: Covers the spellings used by RAF-DB, FERPlus, KDEF (two-letter codes and words), CK+,
#: JAFFE (two-letter codes), AffectNet exports and ImageFolder conventions.
ALIASES: dict[str, str] = {
    # surprise
    "surprise": "surprise", "surprised": "surprise", "surprising": "surprise", "su": "surprise",
    "sur": "surprise", "suprise": "surprise",
    # fear
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear", "af": "fear", "fe": "fear",
    # disgust
    "disgust": "disgust", "disgusted": "disgust", "disgusting": "disgust", "di": "disgust",
    # happiness
    "happiness": "happiness", "happy": "happiness", "joy": "happiness", "smile": "happiness",
    "ha": "happiness", "hap": "happiness",
    # sadness
    "sadness": "sadness", "sad": "sadness", "sa": "sadness",
    # anger
    "anger": "anger", "angry": "anger", "an": "anger", "ang": "anger", "mad": "anger",
    # neutral
    "neutral": "neutral", "ne": "neutral", "neu": "neutral", "calm": "neutral",
    # contempt
    "contempt": "contempt", "co": "contempt", "con": "contempt",
}


def normalise_name(name: str) -> str:
    """Lower-case and strip separators: ``"Happy_Faces"`` -> ``"happyfaces"``."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def canonical_class(name: str, extra_aliases: dict[str, str] | None = None) -> str | None:
    """The canonical class of a folder/label ``name``, or ``None`` if it is unknown."""
    key = normalise_name(name)
    if extra_aliases:
        extra = {normalise_name(k): v for k, v in extra_aliases.items()}
        if key in extra:
            return extra[key]
    return ALIASES.get(key)


def class_list(num_classes: int) -> tuple[str, ...]:
    """The canonical class tuple for 7 or 8 classes."""
    if num_classes == 7:
        return BASIC7
    if num_classes == 8:
        return BASIC8
    raise ConfigError(f"must be 7 or 8, got {num_classes}", flag="classes")
