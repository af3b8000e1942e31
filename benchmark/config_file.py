"""Run configs: ``fer-bench run --config run.toml`` and ``fer-bench run --from RUN_FOLDER``.

A config file holds any option of ``run``, under its flag name (``limit-train``) or its
Python name (``limit_train``); flags given on the command line win over the file (the file
fills click's ``default_map``). Formats, by extension: TOML (``.toml``, read with the
standard library's ``tomllib``), YAML (``.yaml`` / ``.yml``, needs PyYAML) and JSON
(``.json``). Values: a list for a repeatable option (``data = ["rafdb=~/RAF-DB"]``) or a
table/mapping (``model-opt = {"lrdif.T" = 8}`` -> ``--model-opt lrdif.T=8``); a list for a
comma-separated one (``methods = ["lrdif", "scn"]``); ``import = ["mylab_fer.plugin"]`` loads
plugins first::

    # run.toml
    methods = ["lrdif", "scn"]
    datasets = "udc-rafdb,rafdb"
    root = "~/data/RAF-DB"
    seeds = "0,1,2"
    device = "cuda"

Each job folder gets ``config.json`` beside ``run.json``: the invocation's effective options
(paths made absolute), the job's own method, dataset and seed, and the plugins it imported.
``--from JOB_FOLDER`` replays that one job; ``--from RUNS_FOLDER`` replays the invocation that
wrote the folder's jobs (all of them must come from one invocation). Both combine with flags,
e.g. ``--out runs-replay``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from fercore.errors import ConfigError

CONFIG_NAME = "config.json"
#: Options that are not part of what a run computes (never written, never read from --from).
_NOT_RECORDED = {"config_file", "from_run", "imports"}
#: Options whose values are paths (made absolute when written).
_PATHS = {"root", "degraded_dir", "out"}
#: Options a single job's replay drops: the job's method label already holds them.
_JOB_DROPS = {"model_opts", "sweeps", "job_shard"}


# ------------------------------------------------------------------------ reading
def read_config_file(path: str | Path, flag: str = "--config") -> dict[str, Any]:
    """The mapping in a TOML, YAML or JSON file (a clear error naming the file otherwise)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"config file {p} not found", flag=flag)
    suffix = p.suffix.lower()
    text = p.read_text(encoding="utf-8")
    try:
        if suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ConfigError(f"{p}: reading YAML needs PyYAML (pip install pyyaml); or write the "
                                  "config as TOML", flag=flag) from None
            data = yaml.safe_load(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"{p}: unknown config format {suffix!r}; use .toml, .yaml/.yml or .json", flag=flag)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 -- tomllib, yaml and json each raise their own type
        raise ConfigError(f"{p}: not valid {suffix[1:].upper()}: {exc}", flag=flag) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of option names to values, got {type(data).__name__}", flag=flag)
    return data


def _names(command: click.Command) -> dict[str, click.Option]:
    """Every spelling of an option (``limit-train``, ``limit_train``, ``--limit-train``, the
    parameter name) -> the option."""
    out: dict[str, click.Option] = {}
    for p in command.params:
        if not isinstance(p, click.Option) or p.name is None:
            continue
        out[p.name] = p
        for o in (*p.opts, *p.secondary_opts):
            if o.startswith("--") and o not in p.secondary_opts:
                out[o[2:]] = p
                out[o[2:].replace("-", "_")] = p
    return out


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def to_default_map(data: dict[str, Any], command: click.Command, source: str) -> tuple[dict[str, Any], list[str]]:
    """``(default_map, plugin modules)`` of a config mapping for ``command``."""
    names = _names(command)
    out: dict[str, Any] = {}
    imports: list[str] = []
    for key, value in data.items():
        if key in ("import", "imports"):
            imports += [value] if isinstance(value, str) else list(value or [])
            continue
        opt = names.get(str(key))
        if opt is None or opt.name in _NOT_RECORDED:
            raise ConfigError(f"{source}: unknown option {key!r} of `fer-bench {command.name}`", flag="--config")
        if opt.multiple:
            if isinstance(value, dict):
                value = [f"{k}={_scalar(v)}" for k, v in value.items()]
            elif isinstance(value, (str, int, float)):
                value = [value]
            value = tuple(_scalar(v) for v in (value or []))
        elif isinstance(value, list):
            value = ",".join(_scalar(v) for v in value)
        out[opt.name] = value
    return out, imports


def _install(ctx: click.Context, default_map: dict[str, Any], imports: list[str]) -> None:
    from fercore.plugins import load_plugins

    load_plugins(imports)
    ctx.default_map = {**(ctx.default_map or {}), **default_map}


def _config_callback(ctx: click.Context, param, value) -> None:
    if value is None or ctx.resilient_parsing:
        return
    try:
        dm, imports = to_default_map(read_config_file(value), ctx.command, str(value))
        _install(ctx, dm, imports)
    except ConfigError as exc:
        from fercore.cli import _fail

        _fail(str(exc))


def replay_options(path: str | Path) -> tuple[dict[str, Any], list[str]]:
    """``(options, plugin modules)`` that replay the job or runs folder ``path``."""
    p = Path(path).expanduser()
    if (p / CONFIG_NAME).is_file():
        cfg = json.loads((p / CONFIG_NAME).read_text(encoding="utf-8"))
        opts = {k: v for k, v in cfg["options"].items() if k not in _JOB_DROPS}
        job = cfg["job"]
        opts.update(methods=job["method"], datasets=job["dataset"], seeds=str(job["seed"]))
        if job.get("fold") is not None:  # one fold of a fold=all run: that fold only
            opts["src_opts"] = [o for o in opts.get("src_opts", []) if o.partition("=")[0].strip().split(".")[-1]
                                != "fold"] + [f"fold={job['fold']}"]
        from .datasets import parse_dataset_name

        keep = {job["dataset"], parse_dataset_name(job["dataset"]).base}
        opts["data_paths"] = [d for d in opts.get("data_paths", []) if d.partition("=")[0].strip() in keep]
        return opts, list(cfg.get("imports", []))
    if not p.is_dir():
        raise ConfigError(f"{p} is not a job folder or a runs folder", flag="--from")
    found = sorted(p.glob(f"**/{CONFIG_NAME}"))
    if not found:
        raise ConfigError(f"{p}: no {CONFIG_NAME} below it (was it written by `fer-bench run`?)", flag="--from")
    configs = {}
    for f in found:
        cfg = json.loads(f.read_text(encoding="utf-8"))
        key = json.dumps({"options": cfg["options"], "imports": cfg.get("imports", [])}, sort_keys=True)
        configs.setdefault(key, []).append(f.parent)
    if len(configs) > 1:
        firsts = [str(v[0]) for v in configs.values()]
        examples = ", ".join(firsts[:3]) + (f" and {len(firsts) - 3} more" if len(firsts) > 3 else "")
        raise ConfigError(f"{p} holds jobs of {len(configs)} different `fer-bench run` invocations; replay one "
                          f"job folder (e.g. {examples})", flag="--from")
    cfg = json.loads(found[0].read_text(encoding="utf-8"))
    return dict(cfg["options"]), list(cfg.get("imports", []))


def _from_callback(ctx: click.Context, param, value) -> None:
    if value is None or ctx.resilient_parsing:
        return
    try:
        opts, imports = replay_options(value)
        dm, more = to_default_map(opts, ctx.command, f"{value}/{CONFIG_NAME}")
        _install(ctx, dm, imports + more)
    except ConfigError as exc:
        from fercore.cli import _fail

        _fail(str(exc))


def config_options(fn):
    """``--config FILE`` and ``--from RUN_FOLDER`` (eager: read before every other option)."""
    fn = click.option("--from", "from_run", type=click.Path(exists=True), default=None, is_eager=True,
                      expose_value=False, callback=_from_callback, metavar="RUN_FOLDER",
                      help="Replay a run: the options recorded in a job folder's config.json (that job), or in "
                           "a runs folder (the invocation that wrote it). Flags given too win, e.g. `--out`.")(fn)
    fn = click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None, is_eager=True,
                      expose_value=False, callback=_config_callback, metavar="FILE",
                      help="Read options from a TOML, YAML or JSON file (keys: option names, e.g. "
                           "`limit-train = 70`); flags given too win. docs/benchmark.md shows one.")(fn)
    return fn


# ------------------------------------------------------------------------ writing
def _absolute_pair(pair: str) -> str:
    """``NAME=PATH`` with PATH made absolute."""
    name, sep, path = pair.partition("=")
    return f"{name}={os.path.abspath(os.path.expanduser(path.strip()))}" if sep else pair


def effective_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """A command's options as it ran (file, flags and defaults merged: the option bundles'
    fields, named as the click parameters), paths made absolute."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name in _NOT_RECORDED:
            continue
        if isinstance(value, tuple):
            value = list(value)
        if name in _PATHS and isinstance(value, str):
            value = os.path.abspath(os.path.expanduser(value))
        if name == "data_paths":
            value = [_absolute_pair(pair) for pair in value]
        out[name] = value
    return out


def bundle_values(*bundles: Any) -> dict[str, Any]:
    """The fields of option bundles (:mod:`benchmark.options`) as one ``{parameter: value}``."""
    import dataclasses

    out: dict[str, Any] = {}
    for b in bundles:
        out.update({f.name: getattr(b, f.name) for f in dataclasses.fields(b)})
    return out


def write_job_configs(jobs, settings, info, values: Mapping[str, Any], *, command: str = "run",
                      dry_run: bool, shard: tuple[int, int]) -> None:
    """Write ``config.json`` (the options ``values`` of ``command``) into the folder of every job
    this call runs (rank 0 only); ``fer-bench run --from`` replays it."""
    if dry_run or not info.is_writer:
        return
    from fercore import __version__
    from fercore.atomic import atomic_write_text
    from fercore.plugins import loaded_plugins

    options = effective_options(values)
    imports = [m for m, how in loaded_plugins().items() if how == "--import"]
    for job in jobs[shard[0]::shard[1]]:
        d = job.run_dir(settings)
        d.mkdir(parents=True, exist_ok=True)
        cfg = {"command": command, "toolkit": __version__, "imports": imports, "options": options,
               "job": {"method": job.plan.spec.label, "dataset": job.dataset.name.name, "seed": job.seed,
                       **({"fold": job.dataset.fold.fold} if job.dataset.fold else {})}}
        atomic_write_text(d / CONFIG_NAME, json.dumps(cfg, indent=2, sort_keys=True) + "\n")
