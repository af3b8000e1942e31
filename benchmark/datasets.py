"""Dataset names of the benchmark and how each name becomes a readable source.

Names follow the papers: a base dataset (a registered source: ``rafdb``, ``ferplus``,
``kdef``, ``folder``, ``sample``, or a plugin's) optionally prefixed by a registered
degradation (:mod:`degrade.registry`): ``udc-`` (under-display camera, LRDif), ``ll-`` (low
light, LLDif) or a plugin's (``blur-``). ``udc-rafdb`` is the papers' UDC-RAF-DB, ``ll-sample``
the low-light version of the embedded sample set. Paper spellings (``UDC-RAF-DB``,
``LL-FERPlus``) are accepted.

How a name is resolved (:func:`resolve_datasets`):

* a clean base is read from ``--data NAME=PATH``, else from ``--root`` (one base per run), else
  (``sample`` only) from the cache, where the sample set is built on first use;
* a degraded set is read from ``--data udc-rafdb=PATH`` (a copy made by ``fer-degrade``: it
  mirrors the source layout, so the base source reads it), else it is **built on demand** from
  the clean base with the degradation's registered factory and rebuild function
  (:func:`build_degraded`) into ``--degraded-dir`` (default ``$FER_CACHE/degraded``);
* the clean base of a degraded set, when known, is kept as its *companion*: the runner also
  evaluates on it (clean-vs-degraded t-SNE and confidence figures).

Every resolved dataset carries a JSON *record* (path, how it was found, degradation seed,
preset, manifest hash, class counts) that goes into each run's ``run.json``, and an
*identity* (content-based: ids, labels, manifest hash) that enters the run's config hash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from degrade import registry as degradations
from fercore.errors import ConfigError, DataError
from fercore.hashing import sha256_file
from fercore.options import parse_options
from fercore.progress import console
from fercore.sources import SOURCE_ALIASES, SOURCES, get_source
from fercore.sources.base import Source

from .folds import FOLD, FoldInfo, fold_count, fold_info, without_fold

#: Run-record files a degraded copy may carry (the first one found is recorded).
DEGRADE_RECORDS = ("run.json", "record.json", "run_record.json", "degrade.json")
#: Files written next to an on-demand build once it finished.
READY_MARKER = "bench-ready.json"


def base_names() -> dict[str, str]:
    """Every accepted spelling of a base dataset -> the registered source's name."""
    return {**SOURCE_ALIASES, **{n: n for n in SOURCES}}


def degradation_names() -> tuple[str, ...]:
    """The registered degradations (``--degrade-opt`` scopes, dataset-name prefixes)."""
    return tuple(degradations.list_degradations())


def kind_order(kind: str) -> int:
    """Sort key of a dataset kind: clean first, then degradations in registration order."""
    kinds = ["clean"] + [degradations.get_degradation(n).kind for n in degradations.list_degradations()]
    return kinds.index(kind) if kind in kinds else len(kinds)


@dataclass(frozen=True)
class DatasetName:
    """A parsed dataset name: ``kind`` is ``"clean"`` or the degradation's kind (``"udc"``,
    ``"lowlight"``, a plugin's); ``prefix`` the registered degradation's name (``"ll"``)."""

    name: str
    base: str
    kind: str
    prefix: str = ""

    @property
    def degraded(self) -> bool:
        return self.kind != "clean"

    @property
    def degradation(self) -> degradations.DegradationEntry:
        return degradations.get_degradation(self.prefix, flag="--datasets")


def parse_dataset_name(text: str) -> DatasetName:
    """``"UDC-RAF-DB"`` -> ``DatasetName("udc-rafdb", "rafdb", "udc", "udc")``.

    Raises :class:`ConfigError` (flag ``--datasets``) for an unknown name.
    """
    t = text.strip().lower().replace("_", "-").replace(" ", "")
    bases = base_names()
    prefix = ""
    if t not in bases:
        for p, canon in sorted(degradations.prefixes().items(), key=lambda kv: -len(kv[0])):
            if t.startswith(p + "-") and t[len(p) + 1:] in bases:
                prefix, t = canon, t[len(p) + 1:]
                break
    base = bases.get(t)
    if base is None:
        names = (", ".join(SOURCES) + "; each also as " +
                 ", ".join(f"{d}-NAME" for d in degradations.list_degradations()))
        raise ConfigError(f"unknown dataset {text!r}; known: {names} (a plugin adds more: --import MODULE)",
                          flag="--datasets")
    if not prefix:
        return DatasetName(base, base, "clean")
    return DatasetName(f"{prefix}-{base}", base, degradations.get_degradation(prefix).kind, prefix)


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split ``text`` at ``sep`` except inside brackets or braces (parts are not stripped)."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def split_list(text: str | None) -> list[str]:
    """Comma-separated list, ignoring commas inside brackets or braces; empty parts dropped."""
    if not text:
        return []
    return [s.strip() for s in split_top_level(text) if s.strip()]


#: Command-line flags that choose a degradation's preset (``--degrade-opt NAME.preset=P`` works for all).
PRESET_FLAGS = {"udc": lambda s: s.udc_display, "ll": lambda s: s.ll_preset}


@dataclass
class DataSettings:
    """Where datasets come from (the run command's data flags).

    Attributes:
        root: ``--root``: folder of the clean base dataset (for runs using one base).
        paths: ``--data NAME=PATH``: explicit folder per dataset name (clean or degraded).
        src_opts: ``--src-opt [BASE.]KEY=VALUE``: source options (``ferplus.classes=7``).
        degraded_dir: where on-demand degraded copies are built (default
            ``$FER_CACHE/degraded``).
        degrade_seed: seed of on-demand degraded copies (the papers' sets are fixed copies;
            one seed = one copy).
        udc_display: ``--udc-display``: preset of on-demand ``udc`` copies.
        ll_preset: ``--ll-preset``: preset of on-demand ``ll`` copies.
        degrade_opts: extra ``KEY=VALUE`` settings passed to the degradations' factories
            (``NAME.KEY=VALUE`` targets one: ``udc.flare=true``, ``blur.sigma=2``;
            ``NAME.preset=P`` chooses a preset of any registered degradation).
        device, batch_size, workers: how on-demand copies are built.
        allow_unverified: ``--allow-unverified-data``: accept a ``--data`` degraded copy that is
            incomplete, fails verification or has no fer-degrade run record.
    """

    root: str | None = None
    paths: dict[str, str] = field(default_factory=dict)
    src_opts: dict[str, dict[str, str]] = field(default_factory=dict)
    degraded_dir: str | None = None
    degrade_seed: int = 0
    udc_display: str = "toled"
    ll_preset: str = "lldif"
    degrade_opts: dict[str, dict[str, Any]] = field(default_factory=dict)
    device: str = "cpu"
    batch_size: int = 32
    workers: int = 2
    allow_unverified: bool = False

    def preset_of(self, name: str) -> str | None:
        """The preset chosen for degradation ``name``: ``--degrade-opt NAME.preset=P``, else
        the command-line flag that names it (``--udc-display``, ``--ll-preset``), else ``None``
        (the degradation's default)."""
        opts = self.degrade_opts.get(name, {})
        if "preset" in opts:
            return str(opts["preset"])
        return PRESET_FLAGS.get(name, lambda s: None)(self)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def parse_data_paths(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``["udc-rafdb=/data/udc"]`` -> ``{"udc-rafdb": "/data/udc"}`` (names canonicalised)."""
    return {parse_dataset_name(name).name: path
            for name, path in parse_options(pairs, flag="--data", form="NAME=PATH").items()}


def parse_scoped_options(pairs, flag: str, scopes: tuple[str, ...] | None = None,
                         parse_json: bool = False) -> dict[str, dict[str, Any]]:
    """``["ferplus.classes=7", "seed=1"]`` -> ``{"ferplus": {"classes": "7"}, "*": {"seed": "1"}}``."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in parse_options(pairs, flag=flag, form="[SCOPE.]KEY=VALUE").items():
        scope = "*"
        if "." in key:
            scope, key = key.split(".", 1)
            if scopes is not None and scope not in scopes:
                raise ConfigError(f"unknown scope {scope!r} in {scope}.{key}={value}; use one of "
                                  f"{', '.join(scopes)}", flag=flag)
        out.setdefault(scope, {})[key] = parse_value(value) if parse_json else value
    return out


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (``8``, ``0.5``, ``true``, ``[1,2]``), else text."""
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@dataclass
class ResolvedDataset:
    """A dataset ready to train on: its source, its clean companion and its record."""

    name: DatasetName
    source: Source
    record: dict[str, Any]
    identity: str
    clean: Source | None = None
    #: which fold of a K-fold cross-validation this is (``None``: one hold-out split)
    fold: FoldInfo | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.source.classes)


def source_options_for(base: str, settings: DataSettings) -> dict[str, str]:
    """The ``--src-opt`` values that apply to ``base`` (unscoped ones only if it knows them)."""
    known = SOURCES[base].options
    opts = {k: v for k, v in settings.src_opts.get("*", {}).items() if k in known}
    opts.update(settings.src_opts.get(base, {}))
    return opts


def _check_src_opts(bases: set[str], settings: DataSettings) -> None:
    for key in settings.src_opts.get("*", {}):
        if not any(key in SOURCES[b].options for b in bases):
            raise ConfigError(f"no dataset of this run has a source option {key!r} "
                              f"(`fer-bench data sources` lists them)", flag="--src-opt")


def _clean_root(base: str, settings: DataSettings, bases: set[str]) -> str | None:
    """``--data BASE=PATH``, else ``--root`` when it can only mean this base."""
    if base in settings.paths:
        return settings.paths[base]
    if settings.root is None:
        return None
    open_ = sorted(b for b in bases if b not in settings.paths)
    candidates = [b for b in open_ if b != "sample"] or open_
    if len(candidates) > 1:
        raise ConfigError(f"--root names one dataset folder but this run uses {', '.join(candidates)}; "
                          "give each one with --data NAME=PATH", flag="--root")
    return settings.root if candidates == [base] else None


def open_clean(base: str, settings: DataSettings, bases: set[str], *, required: bool) -> Source | None:
    """The clean base source, or ``None`` when no folder was given and it is not optional."""
    root = _clean_root(base, settings, bases)
    if root is None and base != "sample":
        if required:
            raise ConfigError(f"dataset {base!r} needs its folder: pass --root DIR or --data {base}=DIR",
                              flag="--root")
        return None
    return get_source(base, root, **source_options_for(base, settings))


def records_identity(source: Source) -> str:
    """Hash of (id, split, label) of every record and of its image's bytes: what a run trained
    and tested on. Two folders with the same file names but other pixels (a face-cropped copy,
    a re-encoded one) are different data: other config hashes, other degraded copies."""
    h = hashlib.sha256()
    h.update(json.dumps([source.name, list(source.classes)]).encode())
    for r in source.records():
        h.update(f"{r.id}\t{r.split}\t{r.label}\n".encode())
    h.update(content_hash(source).encode())
    return h.hexdigest()


def content_hash(source: Source) -> str:
    """SHA-256 over every record's id and the SHA-256 of its image file (or in-memory pixels).

    Moving or copying the data does not change it. The images are read once per listing (file
    sizes and modification times, :meth:`~fercore.sources.base.Source.listing_hash`): the result
    is kept in the cache (``content-hashes/<listing hash>``), so a re-run reads no image.
    """
    import numpy as np

    from fercore.atomic import atomic_write_text
    from fercore.cache import cache_dir

    records = source.records()
    memo = cache_dir() / "content-hashes" / source.listing_hash(records)
    if memo.is_file():
        text = memo.read_text(encoding="utf-8").strip()
        if re.fullmatch(r"[0-9a-f]{64}", text):
            return text
    h = hashlib.sha256()
    for r in records:  # Source.records() is sorted by id
        if r.pixels is not None:
            digest = hashlib.sha256(np.ascontiguousarray(r.pixels).tobytes()).hexdigest()
        elif r.path is not None and Path(r.path).is_file():
            digest = sha256_file(r.path)
        else:
            raise DataError(f"image of record {r.id!r} not found", r.path or source.root)
        h.update(f"{r.id}\t{digest}\n".encode())
    memo.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(memo, h.hexdigest())
    return h.hexdigest()


def _copy_record(root: Path) -> dict[str, Any]:
    """What a degraded copy says about itself: manifest hash and its run record (if any)."""
    rec: dict[str, Any] = {}
    manifest = root / "manifest.csv"
    rec["manifest_sha256"] = sha256_file(manifest) if manifest.is_file() else None
    for name in DEGRADE_RECORDS:
        p = root / name
        if p.is_file():
            try:
                data = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            rec["record_file"] = name
            if isinstance(data, dict):
                # fer-degrade's run.json keeps the build's settings under "identity"
                fields = {**data, **data["identity"]} if isinstance(data.get("identity"), dict) else data
                for k in ("seed", "preset", "display", "kind", "version", "toolkit_version"):
                    if k in fields:
                        rec[k] = fields[k]
                deg = fields.get("degradation")
                if isinstance(deg, dict):
                    rec["degradation"] = deg
            break
    return rec


def check_copy(name: str, root: Path, allow_unverified: bool) -> dict[str, Any]:
    """Refuse a ``--data`` degraded copy that is incomplete or fails ``fer-degrade verify``
    (a half-built copy trains and reports as if it were whole) unless ``allow_unverified``;
    returns ``{"verified": ...}`` for the run record."""
    from degrade.rebuild import verify_dataset

    try:
        bad = verify_dataset(root, progress=False)
        why = [f"{m.problem}: {m.path}" + (f" ({m.detail})" if m.detail else "") for m in bad]
    except DataError as exc:
        why = [str(exc)]
    if not why:
        return {"verified": True}
    if allow_unverified:
        console.print(f"[yellow]warning:[/] {name}: training on an unverified copy ({why[0]})")
        return {"verified": False, "verify_problems": why[:20]}
    more = f" (+{len(why) - 3} more)" if len(why) > 3 else ""
    raise DataError(f"the copy for {name} is incomplete or fails `fer-degrade verify`: {'; '.join(why[:3])}{more}; "
                    "finish or rebuild it, or pass --allow-unverified-data to train on it anyway", root)


def degraded_cache_dir(settings: DataSettings) -> Path:
    if settings.degraded_dir:
        return Path(settings.degraded_dir).expanduser()
    from fercore.cache import cache_dir

    return cache_dir() / "degraded"


def degradation_settings(name: DatasetName | str, settings: DataSettings,
                         clean: Source | None = None) -> dict[str, Any]:
    """The factory arguments of an on-demand copy: the preset (under the entry's
    ``preset_arg``), every ``--degrade-opt`` setting (unscoped ones, then ``NAME.`` ones) and
    what the entry takes from the clean source (UDC: ``face_fraction``) unless given."""
    entry = name.degradation if isinstance(name, DatasetName) else degradations.get_degradation(name, "--datasets")
    extra = dict(settings.degrade_opts.get("*", {}))
    extra.update(settings.degrade_opts.get(entry.name, {}))
    extra.pop("preset", None)
    args = {entry.preset_arg: settings.preset_of(entry.name) or entry.default_preset, **extra}
    if entry.from_source is not None and clean is not None:
        for k, v in entry.from_source(clean).items():
            args.setdefault(k, v)
    return args


def make_degradation(entry: degradations.DegradationEntry | str, factory_args: dict[str, Any]):
    """Build the degradation (an entry, or its registered name) with its registered factory."""
    if isinstance(entry, str):
        entry = degradations.get_degradation(entry, "--datasets")
    args = dict(factory_args)
    preset = args.pop(entry.preset_arg, None)
    try:
        return entry.create(preset, **args)
    except ImportError as exc:
        what = exc.name or "a module"
        raise ConfigError(f"building a {entry.name} copy on demand needs {what}, which this installation lacks "
                          f"({exc}); pass --data NAME=PATH to a copy made with fer-degrade",
                          flag="--datasets") from None


def build_degraded(name: DatasetName, clean: Source, settings: DataSettings, *,
                   is_writer: bool = True) -> tuple[Path, dict[str, Any]]:
    """Build (or reuse) the degraded copy of ``clean`` and return its folder and record.

    The copy lives in ``degraded_dir/<name>-<key>`` where ``key`` hashes the clean data's
    identity, the degradation settings, the seed and the degradation's code fingerprint
    (:mod:`benchmark.fingerprint`), so another preset, seed or edited code gets another folder;
    not the fold of a K-fold cross-validation (:func:`benchmark.folds.without_fold`: one copy
    serves every fold). ``rebuild_dataset`` resumes an interrupted build; a finished one is marked with
    ``bench-ready.json`` and reused without re-hashing. Under DDP only rank 0 builds
    (``is_writer``); the others resolve after it (:func:`resolve_in_order`) and only read.
    """
    from .fingerprint import degradation_fingerprint

    entry = name.degradation
    # a copy degrades every image whatever the split: the K folds of a cross-validation share
    # one copy, built from the source without its fold (a run without folds is unchanged)
    clean = without_fold(clean)
    args = degradation_settings(name, settings, clean)
    degradation = make_degradation(entry, args)
    code = degradation_fingerprint(entry.name, degradation)
    # The key holds what the simulator does (every resolved setting and its version), not
    # only the arguments: a re-calibrated preset of the same name gets a new folder.
    key_src = json.dumps({"clean": records_identity(clean), "options": clean.describe()["options"],
                          "kind": name.kind, "args": args, "degradation": degradation.describe(),
                          "seed": settings.degrade_seed, "code": code}, sort_keys=True, default=str)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:12]
    out = degraded_cache_dir(settings) / f"{name.name}-{key}"
    marker = out / READY_MARKER
    if is_writer and not marker.is_file():
        console.print(f"building {name.name} (seed {settings.degrade_seed}) into {out}")
        entry.rebuild_fn()(degradation, clean, out, seed=settings.degrade_seed, device=settings.device,
                        batch_size=settings.batch_size, workers=settings.workers,
                        command=f"fer-bench run (on-demand {name.name})")
        info = {"dataset": name.name, "factory": args, "seed": settings.degrade_seed,
                "clean": clean.describe()}
        from fercore.atomic import atomic_write_text

        atomic_write_text(marker, json.dumps(info, indent=2, sort_keys=True, default=str) + "\n")
    if not marker.is_file():
        raise DataError(f"on-demand copy of {name.name} was not finished by rank 0", out)
    rec = {"how": "built on demand", "factory": args, "seed": settings.degrade_seed, "code": code}
    return out, rec


def resolve_datasets(names: list[str], settings: DataSettings, *, is_writer: bool = True) -> list[ResolvedDataset]:
    """Resolve every dataset name of a run up front, so problems surface before training."""
    parsed = [parse_dataset_name(n) for n in names]
    seen: set[str] = set()
    for p in parsed:
        if p.name in seen:
            raise ConfigError(f"dataset {p.name} listed twice", flag="--datasets")
        seen.add(p.name)
    for name in settings.paths:
        if name not in seen and not any(p.base == name for p in parsed):
            raise ConfigError(f"--data names {name}, which is not in --datasets ({', '.join(seen)})",
                              flag="--data")
    bases = {p.base for p in parsed}
    _check_src_opts(bases, settings)
    n_folds = {b: fold_count(b, source_options_for(b, settings)) for b in sorted(bases)}
    cleans: dict[tuple[str, int | None], Source] = {}
    checked: dict[str, dict[str, Any]] = {}

    def clean_of(base: str, fold: int | None, required: bool) -> Source | None:
        """One clean source per base and fold (``ferplus,udc-ferplus,ll-ferplus`` read FERPlus once)."""
        if (base, fold) not in cleans:
            src = open_clean(base, for_fold(settings, base, fold), bases, required=required)
            if src is None:
                return None
            cleans[(base, fold)] = src
        return cleans[(base, fold)]

    out = []
    for p in parsed:
        for fold in (range(n_folds[p.base]) if n_folds[p.base] else [None]):
            s = for_fold(settings, p.base, fold)
            if not p.degraded:
                src = clean_of(p.base, fold, required=True)
                out.append(ResolvedDataset(p, src, _clean_record(p, src), records_identity(src),
                                           fold=fold_info(src)))
                continue
            clean = clean_of(p.base, fold, required=p.name not in s.paths)
            if p.name in s.paths:
                root = Path(s.paths[p.name]).expanduser()
                if not root.is_dir():
                    raise DataError(f"degraded copy for {p.name} not found (--data {p.name}=...)", root)
                if p.name not in checked:  # one check for all folds
                    checked[p.name] = check_copy(p.name, root, s.allow_unverified)
                rec = {"how": "path", **checked[p.name]}
            else:
                root, rec = build_degraded(p, clean, s, is_writer=is_writer)
            src = get_source(p.base, root, **source_options_for(p.base, s))
            copy = _copy_record(Path(src.root))
            rec = {**_clean_record(p, src), **rec, **copy,
                   "clean_root": str(clean.root) if clean is not None else None}
            ident = records_identity(src) + (copy.get("manifest_sha256") or "")
            if clean is not None:
                test_split = "test" if "test" in src.splits() else "val"
                if not {r.id for r in src.records(test_split)} <= {r.id for r in clean.records(test_split)}:
                    console.print(f"[yellow]note:[/] {p.name}: some test ids are not in the clean copy; "
                                  "clean-vs-degraded evaluation is skipped")
                    clean = None
            out.append(ResolvedDataset(p, src, rec, ident, clean,
                                       fold=fold_info(src, copy.get("manifest_sha256") or "")))
    return out


def for_fold(settings: DataSettings, base: str, fold: int | None) -> DataSettings:
    """``settings`` with ``base``'s ``fold=all`` replaced by ``fold=I`` (``None``: unchanged)."""
    if fold is None:
        return settings
    src_opts = {scope: dict(opts) for scope, opts in settings.src_opts.items()}
    src_opts.setdefault(base, {})[FOLD] = str(fold)
    return dataclasses.replace(settings, src_opts=src_opts)


def resolve_in_order(names: list[str], settings: DataSettings, info) -> list[ResolvedDataset]:
    """:func:`resolve_datasets` on rank 0 first (it builds what is missing: the sample set,
    degraded copies), then on the other ranks, which only read."""
    out = resolve_datasets(names, settings, is_writer=True) if info.is_writer else None
    info.barrier()
    if out is None:
        out = resolve_datasets(names, settings, is_writer=False)
    return out


def _clean_record(p: DatasetName, src: Source) -> dict[str, Any]:
    d = src.describe()
    return {"name": p.name, "base": p.base, "kind": p.kind, "source": d["source"], "root": d["root"],
            "options": d["options"], **({"split": d["split"]} if "split" in d else {}),
            "classes": list(src.classes), "counts": src.counts(),
            "how": "sample cache" if (p.base == "sample" and not p.degraded) else "path"}


def sample_datasets() -> list[str]:
    """The embedded default's datasets: the sample set and its UDC and low-light versions
    (the papers' two degradations; a plugin's are run when named in ``--datasets``)."""
    return ["sample", "udc-sample", "ll-sample"]


def is_sample(name: str) -> bool:
    return parse_dataset_name(name).base == "sample"


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """A folder-safe version of a label (``lrdif:S2-V3+T=8`` -> ``lrdif_S2-V3_T-8``)."""
    return _SAFE.sub("_", text.replace("=", "-").replace(":", "_").replace("@", "_").replace("+", "_")).strip("_")
