"""Option bundles of ``fer-bench run`` and ``reproduce``, as the command line gives them.

:class:`DataOptions` says where datasets come from, :class:`ExecOptions` how jobs run; each
turns its raw values into the settings the engine takes (:class:`~benchmark.datasets.DataSettings`,
:class:`~benchmark.runner.RunSettings`, :class:`~benchmark.specs.RecipeOverrides`), checking
them with errors that name the flag. The click module only fills them
(:mod:`benchmark.commands`); Python callers build them directly::

    from benchmark.options import DataOptions, ExecOptions
    from benchmark.execute import run_benchmark
    run_benchmark(RunOptions(methods="lrdif,scn"), DataOptions(), ExecOptions(out="runs", budget="600steps"))

No torch at import: ``fer-bench --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fercore.errors import ConfigError
from fercore.seeding import parse_shard

from .datasets import DataSettings, degradation_names, parse_data_paths, parse_scoped_options
from .specs import RecipeOverrides, parse_seeds

if TYPE_CHECKING:
    import torch

    from .augment import AugmentConfig
    from .runner import RunSettings


class _FromKwargs:
    """``pop_from(kwargs)``: build the bundle from (and remove) its fields in a click kwargs dict."""

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any]):
        return cls(**{f.name: kwargs.pop(f.name) for f in dataclasses.fields(cls) if f.name in kwargs})


@dataclass(frozen=True)
class DataOptions(_FromKwargs):
    """``--root``, ``--data``, ``--src-opt``, ``--degraded-dir``, ``--degrade-seed``,
    ``--udc-display``, ``--ll-preset``, ``--degrade-opt``, ``--allow-unverified-data``."""

    root: str | None = None
    data_paths: tuple[str, ...] = ()
    src_opts: tuple[str, ...] = ()
    degraded_dir: str | None = None
    degrade_seed: int = 0
    udc_display: str = "toled"
    ll_preset: str = "lldif"
    degrade_opts: tuple[str, ...] = ()
    allow_unverified_data: bool = False

    def settings(self, device: torch.device, workers: int) -> DataSettings:
        """The engine's data settings; on-demand copies are built on ``device``."""
        return DataSettings(root=self.root, paths=parse_data_paths(self.data_paths),
                            src_opts=parse_scoped_options(self.src_opts, "--src-opt"),
                            degraded_dir=self.degraded_dir, degrade_seed=self.degrade_seed,
                            udc_display=self.udc_display, ll_preset=self.ll_preset,
                            degrade_opts=parse_scoped_options(self.degrade_opts, "--degrade-opt", degradation_names(),
                                                              parse_json=True),
                            device=device, workers=workers, allow_unverified=self.allow_unverified_data)


@dataclass(frozen=True)
class ExecOptions(_FromKwargs):
    """How jobs run: the flags ``run`` and ``reproduce`` share (see ``fer-bench run --help``)."""

    seeds: str | None = None
    out: str = "runs"
    device: str = "auto"
    workers: int = 2
    threads: int = 0
    budget: str | None = None
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    input_size: int | None = None
    recipe_pairs: tuple[str, ...] = ()
    aug_pairs: tuple[str, ...] = ()
    eval_every: int = 1
    eval_batch_size: int = 128
    eval_clean: bool = True
    save_features: bool = True
    limit_train: int | None = None
    limit_test: int | None = None
    keep_last_batch: bool = False
    cache_mb: float = 4096.0
    landmark_detect: bool = False
    stop_after_epochs: int | None = None
    force: bool = False
    job_shard: str | None = None
    report: bool = True
    dry_run: bool = False
    dist_timeout_min: float = 120.0

    def seed_list(self, default: str) -> list[int]:
        return parse_seeds(self.seeds or default)

    def overrides(self) -> RecipeOverrides:
        return RecipeOverrides.from_cli(self.epochs, self.lr, self.batch_size, self.input_size, self.recipe_pairs,
                                        budget=self.budget)

    def shard(self) -> tuple[int, int]:
        return parse_shard(self.job_shard, flag="--job-shard") if self.job_shard else (0, 1)

    def augment(self) -> AugmentConfig:
        from .augment import parse_augment  # torch: not at start-up

        return parse_augment(self.aug_pairs)

    def run_settings(self, device: torch.device) -> RunSettings:
        """The runner's settings, jobs running on ``device`` (checked: bad values name their flag)."""
        from .runner import RunSettings

        if self.eval_every < 0:
            raise ConfigError(f"must be >= 0, got {self.eval_every}", flag="--eval-every")
        for flag, v in (("--eval-batch-size", self.eval_batch_size), ("--limit-train", self.limit_train),
                        ("--limit-test", self.limit_test), ("--stop-after-epochs", self.stop_after_epochs)):
            if v is not None and v <= 0:
                raise ConfigError(f"must be positive, got {v}", flag=flag)
        return RunSettings(out=Path(self.out), device=device, workers=self.workers, eval_every=self.eval_every,
                           eval_batch_size=self.eval_batch_size, eval_clean=self.eval_clean,
                           save_features=self.save_features, stop_after_epochs=self.stop_after_epochs,
                           limit_train=self.limit_train, limit_test=self.limit_test,
                           drop_last=not self.keep_last_batch, augment=self.augment(), force=self.force,
                           landmark_detect=self.landmark_detect, threads=self.threads, cache_mb=self.cache_mb)


@dataclass(frozen=True)
class RunOptions(_FromKwargs):
    """What ``fer-bench run`` trains: ``--methods``, ``--datasets``, ``--preset``, ``--model-opt``, ``--sweep``."""

    methods: str = "lrdif,scn"
    datasets: str | None = None
    preset: str | None = None
    model_opts: tuple[str, ...] = ()
    sweeps: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReproduceOptions(_FromKwargs):
    """What ``fer-bench reproduce`` runs: the target and its flags (see ``fer-bench reproduce --help``)."""

    target: str = "table2"
    paper: str = "lrdif"
    preset: str = "paper"
    stand_in: str | None = None
    only_available: bool = False
    t_values: str = "1,2,4,8,16,32"
    t_key: str = "T"
    datasets: str | None = None
