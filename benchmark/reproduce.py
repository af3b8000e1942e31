"""``fer-bench reproduce``: the jobs one paper table (or the T study) needs.

A table's jobs are its printed cells (:meth:`benchmark.tables.PaperTable.needed`): for each
row the registered method (``POSTER++`` -> ``posterpp``; ``LRDif-S2-V1`` -> ``lrdif`` variant
``S2-V1``, or ``V1`` where the model names it so), for each of the table's datasets, for every
seed, at the ``paper`` preset with the method's recorded recipe. Settings the papers leave
open and this command fixes:

* seeds ``0,1,2`` (the papers report one number per cell, without seeds);
* FERPlus: ``test=public+private`` (the papers' 28,709 / 7,178 split) unless ``--src-opt``
  says otherwise;
* T study: LRDif's Fig. 6 on UDC-RAF-DB (its ablation set), LLDif's Fig. 8 on LL-KDEF, at T in
  ``1,2,4,8,16,32``, the method's default variant (the paper's own).
"""

from __future__ import annotations

from fercore.errors import ConfigError
from fercore.progress import console

from .datasets import DataSettings, resolve_in_order, split_list
from .distributed import DistInfo
from .plan import plan_jobs
from .specs import MethodSpec, RecipeOverrides, parse_methods
from .tables import PAPER_METHODS, get_table, stand_in_name

#: paper -> (its method's row name, the T study's dataset, the table written with it)
TSTUDY = {"lrdif": ("LRDif", "udc-rafdb", "lrdif-table5"), "lldif": ("LLDif", "ll-kdef", "lldif-table5")}


def _choose_variant(method: str, variants: tuple[str | None, ...]) -> str | None:
    from models import get_entry

    entry = get_entry(method)
    for v in variants:
        if v is None or v in entry.variants:
            return v
    raise ConfigError(f"{method} has none of the variants {[v for v in variants if v]} the table needs; "
                      f"it has {', '.join(entry.variants) or 'none'}", flag="TABLE")


def reproduce_jobs(target: str, paper: str, dsettings: DataSettings, seeds: list[int],
                   overrides: RecipeOverrides, preset: str, *, stand_in: str | None = None,
                   only_available: bool = False, t_values: str = "1,2,4,8,16,32", t_key: str = "T",
                   datasets: str | None = None, info=None):
    """The jobs of ``target`` (``table1``..``table5`` or ``tstudy``) and the tables to write."""
    from models import list_models

    if "test" not in dsettings.src_opts.get("*", {}):  # the papers' FERPlus split, unless told
        dsettings.src_opts.setdefault("ferplus", {}).setdefault("test", "public+private")
    installed = set(list_models())
    if target == "tstudy":
        row, default_ds, table_key = TSTUDY[paper]
        method = PAPER_METHODS[row]
        if method not in installed:
            raise ConfigError(f"the T study needs {method}, which is not installed", flag="TARGET")
        names = split_list(datasets) or [default_ds]
        if stand_in:
            names = [stand_in_name(n, stand_in) for n in names]
        specs = parse_methods(method, sweeps=(f"{t_key}={t_values}",))
        resolved = resolve_in_order(names, dsettings, info or DistInfo())
        return plan_jobs(specs, resolved, seeds, overrides, preset), [table_key]
    table = get_table(target, paper)
    cells: dict[str, list[MethodSpec]] = {}
    missing = []
    for row, paper_ds in table.needed():
        if row.method not in installed:
            missing.append(row.method)
            continue
        spec = MethodSpec(row.method, _choose_variant(row.method, row.variants))
        ds = stand_in_name(paper_ds, stand_in)
        if spec not in cells.setdefault(ds, []):
            cells[ds].append(spec)
    missing = sorted(set(missing))
    if missing and not only_available:
        raise ConfigError(f"{table.key} needs {', '.join(missing)}, which are not installed; "
                          "pass --only-available to run the others", flag="TABLE")
    if missing:
        console.print(f"[yellow]skipping (not installed):[/] {', '.join(missing)}")
    if not cells:
        raise ConfigError(f"none of {table.key}'s methods is installed", flag="TABLE")
    resolved = resolve_in_order(list(cells), dsettings, info or DistInfo())
    jobs = []
    for ds in resolved:
        jobs += plan_jobs(cells[ds.name.name], [ds], seeds, overrides, preset)
    return jobs, [table.key]
