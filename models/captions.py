"""Image captions for LLDif's LA-CLIP, built from templates (the paper's are not published).

A caption names the expression and, where the data set's manifest records it, the degradation
of the item. ``fer-degrade lowlight`` writes each image's parameters to the copy's
``manifest.csv`` (``exposure_ev``, ``temperature_k``, ``tint``, ``highlights``, ``shadows``, and
for the ``realistic`` preset ``camera_gain``, ``jpeg_quality``); the benchmark runner hands that
row to the model as ``batch["meta"][i]`` (an empty dict for clean data). Parameter values become
words by fixed thresholds (:class:`CaptionRules`)::

    exposure_ev < -3        "very dark"         (the lldif preset draws -3.5 .. -2)
    -3 <= ev < -2           "dark"
    -2 <= ev < -1           "dim"
    ev > 1                  "bright"
    1e6/K - 1e6/6500 > 20   "a cool blue cast"  (Temp below ~5750 K: the image turns blue)
    1e6/K - 1e6/6500 < -20  "a warm orange cast"(Temp above ~7470 K)
    tint > 10 / < -10       "a magenta tint" / "a green tint"
    shadows <= -0.7         "crushed shadows"
    highlights <= -0.75     "muted highlights"
    camera_gain >= 4        "visible grain"
    jpeg_quality < 80       "compression artefacts"

and fill a template (default :data:`DEFAULT_CAPTION_TEMPLATE`)::

    "a {light}photo of {expression}face{details}."
    -> "a very dark photo of a happy face with a cool blue cast, crushed shadows and muted highlights."
    -> "a dark photo of an angry face."
    -> "a photo of a happy face."                          (clean data, no manifest row)

Each placeholder carries its own spacing and article: ``{light}`` is ``"very dark "`` or ``""``,
``{expression}`` is ``"a happy "``, ``"an angry "`` or ``"a "`` (``content="degradation"``),
``{details}`` is ``" with ..."`` or ``""``. Captions are pure functions of (class name, manifest row, template,
rules, content): the same item always gets the same caption.
"""

from __future__ import annotations

import dataclasses
import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fercore.errors import ConfigError

from .clip_encoders import EXPRESSION_WORDS

DEFAULT_CAPTION_TEMPLATE = "a {light}photo of {expression}face{details}."
#: What a caption says: the label and the degradation, only the label, only the degradation.
CAPTION_CONTENTS = ("label+degradation", "label", "degradation")
_FIELDS = {"light", "expression", "details"}


@dataclass(frozen=True)
class CaptionRules:
    """Thresholds that turn degradation parameters into words (see the module doc).

    Attributes:
        very_dark_ev, dark_ev, dim_ev: exposure (EV) below which an image is "very dark",
            "dark", "dim"; bright_ev: above which it is "bright".
        reference_kelvin: the temperature the clean images are balanced for (6500 K, as
            ``fer-degrade lowlight``); cast_mired: the shift in mireds (1e6/K) beyond which a
            colour cast is named (positive shift = lower K = cooler, bluer image).
        tint: |tint| beyond which a magenta (positive) or green (negative) tint is named.
        shadows, highlights: slider values (-1..1) at or below which "crushed shadows" /
            "muted highlights" are named.
        grain_gain: camera gain at or above which "visible grain" is named.
        jpeg_quality: JPEG quality below which "compression artefacts" are named.
    """

    very_dark_ev: float = -3.0
    dark_ev: float = -2.0
    dim_ev: float = -1.0
    bright_ev: float = 1.0
    reference_kelvin: float = 6500.0
    cast_mired: float = 20.0
    tint: float = 10.0
    shadows: float = -0.7
    highlights: float = -0.75
    grain_gain: float = 4.0
    jpeg_quality: float = 80.0

    @classmethod
    def from_settings(cls, overrides: Mapping[str, Any] | None) -> CaptionRules:
        """Default rules with some thresholds changed (``caption_rules={"very_dark_ev": -3.5}``)."""
        overrides = dict(overrides or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"unknown caption threshold(s) {unknown}; known: {', '.join(sorted(known))}",
                              flag="caption_rules")
        try:
            return cls(**{k: float(v) for k, v in overrides.items()})
        except (TypeError, ValueError):
            raise ConfigError(f"caption thresholds must be numbers, got {overrides}", flag="caption_rules") from None


def _number(meta: Mapping[str, Any], key: str) -> float | None:
    """``meta[key]`` as a finite float (manifest values are strings), else ``None``."""
    value = meta.get(key)
    if value is None or value == "":
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def degradation_words(meta: Mapping[str, Any] | None, rules: CaptionRules = CaptionRules()) -> tuple[str, list[str]]:
    """``(light word, detail phrases)`` for one manifest row; ``("", [])`` when nothing is known."""
    meta = meta or {}
    light = ""
    ev = _number(meta, "exposure_ev")
    if ev is not None:
        if ev < rules.very_dark_ev:
            light = "very dark"
        elif ev < rules.dark_ev:
            light = "dark"
        elif ev < rules.dim_ev:
            light = "dim"
        elif ev > rules.bright_ev:
            light = "bright"
    details: list[str] = []
    kelvin = _number(meta, "temperature_k")
    if kelvin is not None and kelvin > 0:
        shift = 1e6 / kelvin - 1e6 / rules.reference_kelvin
        if shift > rules.cast_mired:
            details.append("a cool blue cast")
        elif shift < -rules.cast_mired:
            details.append("a warm orange cast")
    tint = _number(meta, "tint")
    if tint is not None and abs(tint) > rules.tint:
        details.append("a magenta tint" if tint > 0 else "a green tint")
    shadows = _number(meta, "shadows")
    if shadows is not None and shadows <= rules.shadows:
        details.append("crushed shadows")
    highlights = _number(meta, "highlights")
    if highlights is not None and highlights <= rules.highlights:
        details.append("muted highlights")
    gain = _number(meta, "camera_gain")
    if gain is not None and gain >= rules.grain_gain:
        details.append("visible grain")
    quality = _number(meta, "jpeg_quality")
    if quality is not None and quality < rules.jpeg_quality:
        details.append("compression artefacts")
    return light, details


def _join(phrases: Sequence[str]) -> str:
    if len(phrases) <= 1:
        return "".join(phrases)
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def check_template(template: str) -> str:
    """``template`` if its placeholders are among ``{light}``, ``{expression}``, ``{details}``."""
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise ConfigError(f"cannot parse caption template {template!r} ({exc})", flag="caption_template") from None
    bad = sorted(names - _FIELDS)
    if bad or "" in names:
        raise ConfigError(f"caption template {template!r} may only use {{light}}, {{expression}} and "
                          f"{{details}}; found {bad or ['{}']}", flag="caption_template")
    return template


def make_caption(class_name: str | None, meta: Mapping[str, Any] | None = None,
                 template: str = DEFAULT_CAPTION_TEMPLATE, rules: CaptionRules = CaptionRules(),
                 content: str = "label+degradation") -> str:
    """One caption (see the module doc). ``class_name`` is a canonical name (``"happiness"``
    -> ``"happy"``) or any word; ``content`` is one of :data:`CAPTION_CONTENTS`."""
    if content not in CAPTION_CONTENTS:
        raise ConfigError(f"choose one of {', '.join(CAPTION_CONTENTS)}, got {content!r}", flag="caption_content")
    light, details = degradation_words(meta, rules) if content != "label" else ("", [])
    word = EXPRESSION_WORDS.get(class_name.lower(), class_name) if class_name and content != "degradation" else ""
    article = "an" if word[:1].lower() in ("a", "e", "i", "o", "u") else "a"
    return template.format(light=f"{light} " if light else "", expression=f"{article} {word} " if word else "a ",
                           details=f" with {_join(details)}" if details else "")


def batch_captions(labels: Sequence[int], class_names: Sequence[str], metas: Sequence[Mapping[str, Any]] | None,
                   template: str = DEFAULT_CAPTION_TEMPLATE, rules: CaptionRules = CaptionRules(),
                   content: str = "label+degradation") -> list[str]:
    """Captions of a batch: ``labels`` (class indices), ``metas`` (``batch["meta"]`` or ``None``)."""
    if metas is None:
        metas = [{}] * len(labels)
    if len(metas) != len(labels):
        raise ConfigError(f"batch['meta'] has {len(metas)} rows for {len(labels)} images; it must be a list "
                          "with one dict per image ({} for clean data)", flag="meta")
    return [make_caption(class_names[int(y)], m, template, rules, content) for y, m in zip(labels, metas)]
