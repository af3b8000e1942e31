"""Which jobs a benchmark run has: every (dataset, method configuration, seed).

:func:`plan_jobs` turns method specs, resolved datasets and seeds into :class:`~benchmark.runner.Job`
objects, each holding the one :class:`~benchmark.specs.ModelPlan` of its method (resolved once
per method and preset) and the run's budget for its dataset (the same for every method);
:func:`run_dataset_names` is ``fer-bench run``'s choice of datasets.
"""

from __future__ import annotations

from fercore.errors import ConfigError

from .budget import Budget, DefaultBudget, preset_budget
from .datasets import DataSettings, ResolvedDataset, sample_datasets, split_list
from .specs import MethodSpec, ModelPlan, RecipeOverrides, plan_model


def default_preset(preset: str | None, dataset: ResolvedDataset) -> str | None:
    """``--preset``, else ``tiny`` on the sample set, else ``None`` (each method's own)."""
    return preset or ("tiny" if dataset.name.base == "sample" else None)


def run_budget(overrides: RecipeOverrides, preset: str | None,
               dataset: ResolvedDataset) -> Budget | DefaultBudget | None:
    """The budget every method trains on ``dataset``: ``--budget``, else the run preset's default
    (resolved against the training-set size when a job starts), or ``None`` with ``--epochs``."""
    if overrides.epochs is not None:
        return None
    return overrides.budget or preset_budget(default_preset(preset, dataset))


def plan_jobs(methods: list[MethodSpec], datasets: list[ResolvedDataset], seeds: list[int],
              overrides: RecipeOverrides, preset: str | None):
    """Every (dataset, method, seed) job, in that nesting order, at the run's budget (:func:`run_budget`)."""
    from .runner import Job

    plans: dict[tuple[MethodSpec, str | None], ModelPlan] = {}

    def plan(spec: MethodSpec, ds: ResolvedDataset) -> ModelPlan:
        key = (spec, default_preset(preset, ds))
        if key not in plans:
            plans[key] = plan_model(spec, overrides, key[1])
        return plans[key]

    return [Job(plan(spec, ds), ds, seed, run_budget(overrides, preset, ds))
            for ds in datasets for spec in methods for seed in seeds]


def run_dataset_names(datasets: str | None, settings: DataSettings) -> list[str]:
    """``--datasets``, else the ``--data`` names, else the embedded sample sets (not with ``--root``)."""
    if datasets:
        return split_list(datasets)
    if settings.paths:
        return list(settings.paths)
    if settings.root:
        raise ConfigError("name the datasets to run on the --root folder, e.g. --datasets rafdb,udc-rafdb",
                          flag="--datasets")
    return sample_datasets()
