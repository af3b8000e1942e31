"""Tables 1-5 of both papers from a runs folder, as CSV, LaTeX (booktabs) and Markdown.

The papers' numbers are data: ``benchmark/data/paper_tables.csv`` (a verbatim copy of the
project's list of published numbers) and ``paper_tables_extra.csv`` (rows LLDif prints but the
list only describes: its Table 1 reprint of LRDif's baselines, and the Table 4 baselines it
gives only as a range, which have no number). A table's datasets and rows are those of the
files, in order, with the paper's own method last, as printed.

A cell is the mean +- sample standard deviation (n-1) over the seeds of one configuration,
with the paper's number beside it and the difference (ours - paper). Statistics
(:mod:`benchmark.stats`, from the jobs' ``predictions.npz``):

* ``[low, high]``: the 95% bootstrap interval over test images (of the seeds' mean when a
  cell has several seeds); absent for best accuracy and for jobs that kept no predictions;
* on a paper's own-method row (LRDif, LLDif) of an accuracy table: McNemar's test against the
  best baseline of that column (the non-own row with the highest mean), paired by test image
  id on each seed both have; the cell shows the largest p-value over those seeds (``*`` below
  0.05, ``**`` below 0.01), the CSV every seed's discordant counts.

Which runs fill a cell:

* row ``SCN`` -> method ``scn``; ``POSTER++`` -> ``posterpp``; ``LRDif`` -> ``lrdif`` with its
  default variant (else the variant the paper marks "Ours": ``S2-V3``; LLDif: ``S2-V4``/``V4``);
  ``LRDif-S2-V1`` -> ``lrdif`` variant ``S2-V1`` (LLDif variants also as ``V1``..``V4``); the
  "Ours" row of Table 5 (``LRDif-S2-V3``, ``LLDif-S2-V4``) also takes the default variant;
* only runs without model options (``+KEY=VALUE``) -- a T-sweep does not fill Table 5;
* ``--fill ROW=LABEL`` fills a row with another configuration (a run label such as
  ``scn@paper+pretrained="ms1m.pth"`` or ``cnn``);
* when several configurations qualify (e.g. runs with different ``--epochs``), the one with
  the most finished seeds wins, then the ``paper`` preset, then the lowest config hash; the
  CSV's ``other_configs`` says how many were passed over.

K-fold cross-validation (``--src-opt folds=K``, one job per fold): the K fold jobs of one
configuration (one ``cv_hash``) fill ONE cell. A seed's value is the mean over its K folds,
counted only when all K finished; a cell whose seeds all lack folds shows ``missing (seed 0:
7/10 folds)``, and seeds that lack folds beside complete ones are named (``incomplete: ...``),
never averaged over fewer folds. The interval is a bootstrap over the folds' pooled test
predictions (the union of the K test sets: every image once), and McNemar's test pairs the
pooled folds of both methods by image id. The CSV adds ``folds`` and ``incomplete_folds``.

A missing run is shown as ``missing``, never filled in; a table without a single measured cell
is not written at all (the summary and ``index.json`` list it as skipped). A cell the paper does not print for
that dataset is left blank unless we have runs for it (then the paper column says ``n/a``);
a number the paper does not publish shows as ``n/p``.

Stand-in tables (``--stand-in sample``) put the sample set where the paper has RAF-DB,
FERPlus or KDEF (and ``udc-sample`` / ``ll-sample`` for their degraded versions), so the
embedded default fills the papers' table layouts; the paper's numbers are shown for reference
only (no difference column: the data differ). ``summary`` lists every configuration on every
dataset found in the runs.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from fercore.atomic import atomic_write_text
from fercore.errors import ConfigError
from fercore.options import parse_options
from fercore.manifest import write_manifest

from .datasets import kind_order, parse_dataset_name
from .stats import McNemar, format_p, runs_interval, seedwise_mcnemar

#: Paper row name -> registry name.
PAPER_METHODS = {"ARM": "arm", "POSTER++": "posterpp", "RUL": "rul", "DAN": "dan", "SCN": "scn",
                 "EAC": "eac", "MANet": "manet", "DACL": "dacl", "LRDif": "lrdif", "LLDif": "lldif"}
#: The variant each paper marks as its own ("Ours") method.
OWN_VARIANT = {"lrdif": ["S2-V3", "V3"], "lldif": ["S2-V4", "V4"]}
TITLES = {
    ("LRDif", 1): "Comparison with SOTA FER algorithms on RAF-DB, FERPlus and KDEF",
    ("LRDif", 2): "Accuracy (%) on UDC-RAF-DB",
    ("LRDif", 3): "Accuracy (%) on UDC-FERPlus",
    ("LRDif", 4): "Accuracy (%) on UDC-KDEF",
    ("LRDif", 5): "Ablation of LRDif's components on UDC-RAF-DB",
    ("LLDif", 1): "Comparison with SOTA FER methods on RAF-DB, FERPlus and KDEF",
    ("LLDif", 2): "Accuracy (%) on LL-RAF-DB",
    ("LLDif", 3): "Accuracy (%) on LL-FERPlus",
    ("LLDif", 4): "Accuracy (%) on LL-KDEF",
    ("LLDif", 5): "Key components of LLDif on LL-KDEF",
}
METRICS = ("accuracy", "best_accuracy", "macro_f1", "mean_class_accuracy", "clean_accuracy")


@dataclass(frozen=True)
class RowSpec:
    """A paper table row: the printed name and the runs that fill it."""

    label: str
    method: str
    variants: tuple[str | None, ...]
    own: bool = False


def row_target(paper_name: str) -> RowSpec:
    """``"LRDif-S2-V1"`` -> ``RowSpec("LRDif-S2-V1", "lrdif", ("S2-V1", "V1"))``."""
    base, _, variant = paper_name.partition("-")
    if base not in PAPER_METHODS:
        raise ConfigError(f"unknown paper method {paper_name!r}")
    method = PAPER_METHODS[base]
    own = method in OWN_VARIANT
    if variant:
        alts: list[str | None] = [variant] + ([variant[3:]] if variant.startswith("S2-") else [])
        if own and variant in OWN_VARIANT[method]:
            alts.append(None)  # the paper's own variant is the method's default
        return RowSpec(paper_name, method, tuple(alts), own)
    if own:
        return RowSpec(paper_name, method, (None, *OWN_VARIANT[method]), own)
    return RowSpec(paper_name, method, (None,), own)


@dataclass
class PaperTable:
    """One table of one paper: datasets (paper names), rows and published numbers."""

    paper: str
    number: int
    datasets: list[str]
    rows: list[RowSpec]
    numbers: dict[tuple[str, str], tuple[float | None, str]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.paper.lower()}-table{self.number}"

    @property
    def title(self) -> str:
        return f"{self.paper} Table {self.number}: {TITLES.get((self.paper, self.number), '')}"

    def needed(self) -> list[tuple[RowSpec, str]]:
        """(row, paper dataset) of every cell the paper prints (what `reproduce` runs)."""
        return [(r, d) for r in self.rows for d in self.datasets if (r.label, d) in self.numbers]


def _read_csv(name: str) -> list[dict[str, str]]:
    text = (resources.files("benchmark") / "data" / name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def paper_tables() -> dict[str, PaperTable]:
    """All ten tables, keyed ``lrdif-table1`` ... ``lldif-table5``."""
    tables: dict[str, PaperTable] = {}
    for row in _read_csv("paper_tables.csv") + _read_csv("paper_tables_extra.csv"):
        paper, num = row["paper"], int(row["table"])
        key = f"{paper.lower()}-table{num}"
        t = tables.setdefault(key, PaperTable(paper, num, [], []))
        if row["dataset"] not in t.datasets:
            t.datasets.append(row["dataset"])
        if all(r.label != row["method"] for r in t.rows):
            t.rows.append(row_target(row["method"]))
        acc = row["accuracy"].strip()
        t.numbers[(row["method"], row["dataset"])] = (float(acc) if acc else None, row.get("note", "") or "")
    for t in tables.values():
        t.rows = [r for r in t.rows if not r.own] + [r for r in t.rows if r.own]
    return dict(sorted(tables.items(), key=lambda kv: (kv[1].paper != "LRDif", kv[1].number)))


def get_table(name: str, paper: str | None = None) -> PaperTable:
    """``get_table("table2", "lrdif")`` or ``get_table("lrdif-table2")``."""
    tables = paper_tables()
    key = name.lower()
    if not key.startswith(("lrdif-", "lldif-")):
        key = f"{(paper or 'lrdif').lower()}-{key}"
    if key not in tables:
        raise ConfigError(f"unknown table {name!r}; choose table1..table5 (with --paper lrdif|lldif)",
                          flag="TABLE")
    return tables[key]


def stand_in_name(paper_dataset: str, stand_in: str | None) -> str:
    """Our dataset name for a paper dataset (or its stand-in's: UDC-RAF-DB -> udc-sample)."""
    p = parse_dataset_name(paper_dataset)
    if not stand_in:
        return p.name
    return f"{p.prefix}-{stand_in}" if p.prefix else stand_in


# ------------------------------------------------------------------------ cells
@dataclass
class Cell:
    """The runs of one configuration on one dataset (one per seed) and their ``metric``."""

    values: list[float]
    seeds: list[int]
    config_hash: str | None = None
    label: str | None = None
    other_configs: int = 0
    preset: str | None = None
    metric: str = "accuracy"
    runs: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _ci: tuple[float, float] | None | bool = field(default=False, repr=False)
    #: K of a K-fold cross-validation (each value is a seed's mean over its K folds), else None
    folds: int | None = None
    #: (seed, folds finished) of the seeds of a cross-validation that lack folds (not in ``values``)
    incomplete: tuple[tuple[int, int], ...] = ()

    @property
    def ci(self) -> tuple[float, float] | None:
        """The 95% bootstrap interval of the mean (:func:`benchmark.stats.runs_interval`)."""
        if self._ci is False:
            self._ci = runs_interval(self.runs, self.metric)
        return self._ci

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return sum(self.values) / len(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        if len(self.values) < 2:
            return None
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in self.values) / (len(self.values) - 1))


def _group(results: list[dict[str, Any]], metric: str) -> list[Cell]:
    """One cell per configuration: per config hash, or per ``cv_hash`` for the K fold jobs of a
    cross-validation (:func:`_cv_cell`)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        if r.get(metric) is None:
            continue
        groups.setdefault(r.get("cv_hash") or r["config_hash"], []).append(r)
    cells = []
    for h, rs in groups.items():
        rs = sorted(rs, key=lambda r: int(r["seed"]))
        if rs[0].get("folds"):
            cells.append(_cv_cell(h, rs, metric))
            continue
        cells.append(Cell([float(r[metric]) for r in rs], [int(r["seed"]) for r in rs], h, rs[0]["label"],
                          preset=rs[0].get("preset"), metric=metric, runs=rs))
    return cells


def _cv_cell(cv_hash: str, rs: list[dict[str, Any]], metric: str) -> Cell:
    """The cell of a K-fold cross-validation: a seed's value is the mean of ``metric`` over its
    K folds, only when all K are there (a seed that lacks folds is listed in ``incomplete``,
    never averaged over fewer); ``runs`` holds the complete seeds' jobs, in (seed, fold) order."""
    k = int(rs[0]["folds"])
    by_seed: dict[int, dict[int, dict[str, Any]]] = {}
    for r in sorted(rs, key=lambda r: (int(r["seed"]), r["fold"], r["config_hash"])):
        by_seed.setdefault(int(r["seed"]), {}).setdefault(int(r["fold"]), r)
    complete = [s for s in sorted(by_seed) if len(by_seed[s]) == k]
    values = [sum(float(by_seed[s][f][metric]) for f in range(k)) / k for s in complete]
    runs = [by_seed[s][f] for s in complete for f in range(k)]
    return Cell(values, complete, cv_hash, rs[0]["label"], preset=rs[0].get("preset"), metric=metric, runs=runs,
                folds=k, incomplete=tuple((s, len(by_seed[s])) for s in sorted(by_seed) if s not in complete))


def pick(cells: list[Cell]) -> Cell | None:
    """Most seeds, then the ``paper`` preset, then the lowest config hash."""
    if not cells:
        return None
    best = sorted(cells, key=lambda c: (-c.n, c.preset != "paper", c.config_hash))[0]
    best.other_configs = len(cells) - 1
    return best


def find_cell(results: list[dict[str, Any]], row: RowSpec, dataset: str, metric: str,
              fill: dict[str, str]) -> Cell | None:
    """The runs that fill one paper cell (see the module docstring for the rules)."""
    on = [r for r in results if r["dataset"] == dataset]
    if row.label in fill:
        want = fill[row.label]
        by_label = [r for r in on if r["label"] == want]
        if not by_label:
            name, _, variant = want.partition(":")
            by_label = [r for r in on if r["method"] == name and (r.get("variant") or "") == variant
                        and not r.get("options")]
        return pick(_group(by_label, metric))
    for variant in row.variants:
        rs = [r for r in on if r["method"] == row.method and r.get("variant") == variant and not r.get("options")]
        c = pick(_group(rs, metric))
        if c is not None:
            return c
    return None


def fmt(v: float | None, digits: int = 2) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def fmt_cell(c: Cell | None, pm: str = "±") -> str:
    """``"86.50 ± 1.50 (n=3) [84.1, 88.7]"``: mean ± std over seeds, their number and the 95%
    bootstrap interval (when the runs kept predictions); ``missing`` without runs."""
    if c is not None and c.folds:
        return _fmt_cv_cell(c, pm)
    if c is None or c.n == 0:
        return "missing"
    text = f"{fmt(c.mean)} (n=1)" if c.n == 1 else f"{fmt(c.mean)} {pm} {fmt(c.std)} (n={c.n})"
    if c.ci is not None:
        text += f" [{c.ci[0]:.1f}, {c.ci[1]:.1f}]"
    return text


def _incomplete_text(c: Cell) -> str:
    """``"seed 1: 7/10 folds"`` for each seed of a cross-validation cell that lacks folds."""
    return "; ".join(f"seed {s}: {n}/{c.folds} folds" for s, n in c.incomplete)


def _fmt_cv_cell(c: Cell, pm: str) -> str:
    """A cross-validation cell: ``"86.50 ± 1.50 (n=3, 10-fold) [84.1, 88.7]"``; ``missing (seed 0:
    7/10 folds)`` while no seed has all its folds; seeds that lack folds are named, not averaged."""
    if c.n == 0:
        return f"missing ({_incomplete_text(c)})"
    text = (f"{fmt(c.mean)} (n=1, {c.folds}-fold)" if c.n == 1
            else f"{fmt(c.mean)} {pm} {fmt(c.std)} (n={c.n}, {c.folds}-fold)")
    if c.ci is not None:
        text += f" [{c.ci[0]:.1f}, {c.ci[1]:.1f}]"
    return text + (f" (incomplete: {_incomplete_text(c)})" if c.incomplete else "")


def _stat_fields(c: Cell | None) -> dict[str, Any]:
    """The interval columns of a tidy row (and, for a cross-validation cell, ``folds`` and the
    seeds that lack folds)."""
    ci = c.ci if c is not None and c.n else None
    cv = {"folds": c.folds, "incomplete_folds": _incomplete_text(c)} if c is not None and c.folds else {}
    return {"ci_low": ci[0] if ci else None, "ci_high": ci[1] if ci else None, **cv}


@dataclass
class Comparison:
    """McNemar's test of one cell against the best baseline of its column, per common seed."""

    baseline: str
    tests: list[tuple[int, McNemar]]

    @property
    def worst(self) -> McNemar | None:
        return max((t for _, t in self.tests), key=lambda t: t.p, default=None)

    def fields(self) -> dict[str, Any]:
        w = self.worst
        return {"mcnemar_vs": self.baseline, "mcnemar_p": w.p if w else None,
                "mcnemar_test": w.test if w else None,
                "mcnemar_seeds": "; ".join(f"seed {s}: b={t.b} c={t.c} p={t.p:.4g} ({t.test})"
                                           for s, t in self.tests)}


def compare_to_best_baseline(t: PaperTable, cells: dict[tuple[str, str], Cell | None],
                             columns: list[str]) -> dict[tuple[str, str], Comparison]:
    """(own row, column) -> its test against the best measured baseline row of that column."""
    out = {}
    for n in columns:
        base = [(r, cells[(r.label, n)]) for r in t.rows if not r.own and cells.get((r.label, n))
                and cells[(r.label, n)].n]
        if not base:
            continue
        best_row, best = max(base, key=lambda rc: rc[1].mean)  # first of equals: table order
        for r in t.rows:
            c = cells.get((r.label, n))
            if r.own and c is not None and c.n:
                out[(r.label, n)] = Comparison(best_row.label, seedwise_mcnemar(c.runs, best.runs))
    return out


def _with_p(text: str, cmp: Comparison | None) -> str:
    w = cmp.worst if cmp is not None else None
    return f"{text} {format_p(w.p)}" if w is not None else text


# ----------------------------------------------------------------------- tables
@dataclass
class TableOut:
    """A rendered table: tidy rows (CSV) and a wide grid (Markdown / LaTeX)."""

    key: str
    title: str
    header: list[list[tuple[str, int]]]  # header rows of (text, span)
    grid: list[list[str]]
    tidy: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


def build_paper_table(t: PaperTable, results: list[dict[str, Any]], *, metric: str = "accuracy",
                      stand_in: str | None = None, fill: dict[str, str] | None = None) -> TableOut:
    """One paper table filled from ``results`` (see the module docstring)."""
    fill = fill or {}
    tidy, grid = [], []
    cols = [(d, stand_in_name(d, stand_in)) for d in t.datasets]
    run_names = list(dict.fromkeys(n for _, n in cols))
    all_cells = {(row.label, n): find_cell(results, row, n, metric, fill) for row in t.rows for n in run_names}
    tests = compare_to_best_baseline(t, all_cells, run_names) if metric == "accuracy" else {}
    for row in t.rows:
        line = [row.label]
        cells = {n: all_cells[(row.label, n)] for n in run_names}
        if stand_in:
            for n in run_names:
                printed = any((row.label, d) in t.numbers for d, m in cols if m == n)
                c = cells[n]
                line.append(_with_p(fmt_cell(c), tests.get((row.label, n))) if (printed or c) else "")
            for d, _ in cols:
                line.append(_paper_text(t, row.label, d))
        for d, n in cols:
            c = cells[n]
            paper_val, note = t.numbers.get((row.label, d), (None, ""))
            printed = (row.label, d) in t.numbers
            diff = (c.mean - paper_val) if (c and c.n and paper_val is not None and not stand_in) else None
            status = "ok" if (c and c.n) else ("missing" if (printed or c) else "not in paper")
            tidy.append({"table": t.key, "paper": t.paper, "row": row.label, "method": row.method,
                         "run_label": (c.label if c else None), "dataset": d, "run_dataset": n,
                         "metric": metric, "n": c.n if c else 0, "seeds": " ".join(map(str, c.seeds)) if c else "",
                         "mean": c.mean if c else None, "std": c.std if c else None, **_stat_fields(c),
                         "paper_value": paper_val, "diff": diff, "status": status,
                         "config_hash": c.config_hash if c else None,
                         "other_configs": c.other_configs if c else 0, "note": note,
                         **(tests[(row.label, n)].fields() if (row.label, n) in tests else {})})
            if not stand_in:
                if not printed and not c:
                    line += ["", "", ""]
                else:
                    line += [_with_p(fmt_cell(c), tests.get((row.label, n))), _paper_text(t, row.label, d),
                             (f"{diff:+.2f}" if diff is not None else "")]
        grid.append(line)
    if stand_in:
        header = [[("Method", 1)] + [(f"{n} (ours)", 1) for n in run_names]
                  + [(f"paper: {d}", 1) for d, _ in cols]]
        title = f"{t.title} [stand-in data: {', '.join(run_names)}]"
        notes = [f"Stand-in: our runs on {', '.join(run_names)} in place of the paper's "
                 f"{', '.join(t.datasets)}; the paper's numbers are shown for reference only."]
    else:
        header = [[("Method", 1)] + [(d, 3) for d in t.datasets],
                  [("", 1)] + [x for _ in t.datasets for x in (("ours", 1), ("paper", 1), ("Δ", 1))]]
        title = t.title
        notes = []
    notes.append(f"Cells: {metric} (%) mean ± std over seeds (n = seeds); 'missing' = no finished run; "
                 "'n/p' = not published; 'n/a' = not in the paper's table.")
    if any(c is not None and c.ci is not None for c in all_cells.values()):
        notes.append(CI_NOTE)
    if any(c is not None and c.folds for c in all_cells.values()):
        notes.append(CV_NOTE)
    for n in run_names:
        vs = {cmp.baseline for (_, m), cmp in tests.items() if m == n and cmp.tests}
        if vs:
            notes.append(f"{n}: p = McNemar's test against the best baseline ({', '.join(sorted(vs))}), paired by "
                         "test image on each common seed (the largest p shown); * p < 0.05, ** p < 0.01.")
    used = {x["config_hash"] for x in tidy if x["config_hash"]}
    budgets = sorted({r.get("budget") or "per-method epochs (--epochs)" for r in results
                      if (r.get("cv_hash") or r["config_hash"]) in used})
    if budgets:  # benchmark/budget.py: the training budget every cell's runs had
        notes.append(f"Training budget: {', '.join(budgets)}.")
    for (label, d), (_, note) in t.numbers.items():
        if note:
            notes.append(f"{label} / {d}: {note}")
    key = t.key if not stand_in else f"{stand_in}-{t.key}"
    return TableOut(key, title, header, grid, tidy, notes)


def _paper_text(t: PaperTable, label: str, dataset: str) -> str:
    if (label, dataset) not in t.numbers:
        return "n/a"
    v = t.numbers[(label, dataset)][0]
    return "n/p" if v is None else fmt(v)


CI_NOTE = ("[low, high] = 95% bootstrap interval over test images (1000 resamples; of the seeds' mean "
           "when there are several).")
CV_NOTE = ("K-fold cells ('10-fold'): a seed's value is the mean over its K folds (each fold's test set), counted only "
           "when all K folds finished ('missing (seed s: j/K folds)' until then); the interval and McNemar's "
           "test use the folds' pooled test predictions (every image once).")


def build_summary(results: list[dict[str, Any]], metric: str = "accuracy") -> TableOut:
    """Every run label (rows) on every dataset (columns) found in the runs.

    A label with several configurations on one dataset (e.g. runs with different
    ``--epochs``) shows the one :func:`pick` chooses; ``other_configs`` counts the rest.
    """
    datasets = sorted({r["dataset"] for r in results},
                      key=lambda n: (parse_dataset_name(n).base, kind_order(parse_dataset_name(n).kind), n))
    labels = sorted({r["label"] for r in results})
    tidy, grid = [], []
    for label in labels:
        line = [label]
        for d in datasets:
            c = pick(_group([r for r in results if r["label"] == label and r["dataset"] == d], metric))
            line.append(fmt_cell(c) if c else "")
            if c:
                tidy.append({"table": "summary", "label": label, "dataset": d, "metric": metric, "n": c.n,
                             "seeds": " ".join(map(str, c.seeds)), "mean": c.mean, "std": c.std, **_stat_fields(c),
                             "config_hash": c.config_hash, "other_configs": c.other_configs})
        grid.append(line)
    header = [[("Method", 1)] + [(d, 1) for d in datasets]]
    notes = [f"Cells: {metric} (%) mean ± std over seeds (n = seeds)."]
    if any(r.get("ci_low") is not None for r in tidy):
        notes.append(CI_NOTE)
    if any(r.get("folds") for r in tidy):
        notes.append(CV_NOTE)
    return TableOut("summary", f"All runs: {metric} (%)", header, grid, tidy, notes)


# --------------------------------------------------------------------- renderers
def to_markdown(t: TableOut) -> str:
    width = sum(span for _, span in t.header[-1])
    lines = [f"### {t.title}", ""]
    if len(t.header) > 1:
        top = []
        for text, span in t.header[0]:
            top += [text] + [""] * (span - 1)
        sub = [text for text, _ in t.header[-1]]
        head = [f"{a} {b}".strip() if a else b for a, b in zip(_carry(top), sub)]
    else:
        head = [text for text, _ in t.header[0]]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (width - 1)) + "|")
    for row in t.grid:
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines += [f"- {n}" for n in t.notes]
    return "\n".join(lines) + "\n"


def _carry(cells: list[str]) -> list[str]:
    out, last = [], ""
    for c in cells:
        last = c or last
        out.append(last)
    return out


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "<": r"$<$", ">": r"$>$", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    out = "".join(_TEX.get(ch, ch) for ch in text)
    return out.replace("±", r"$\pm$").replace("Δ", r"$\Delta$")


def to_latex(t: TableOut) -> str:
    width = sum(span for _, span in t.header[-1])
    lines = [r"% requires \usepackage{booktabs}", r"\begin{table}[t]", r"\centering",
             rf"\caption{{{tex_escape(t.title)}}}", rf"\label{{tab:{t.key}}}",
             r"\begin{tabular}{l" + "c" * (width - 1) + "}", r"\toprule"]
    for i, hrow in enumerate(t.header):
        cells, rules, col = [], [], 1
        for text, span in hrow:
            cells.append(rf"\multicolumn{{{span}}}{{c}}{{{tex_escape(text)}}}" if span > 1 else tex_escape(text))
            if span > 1 and i < len(t.header) - 1:
                rules.append(rf"\cmidrule(lr){{{col}-{col + span - 1}}}")
            col += span
        lines.append(" & ".join(cells) + r" \\")
        if rules:
            lines.append(" ".join(rules))
    lines.append(r"\midrule")
    for row in t.grid:
        lines.append(" & ".join(tex_escape(c.replace("missing", "--")) if c else "" for c in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(t: TableOut, out: Path) -> list[Path]:
    """``<key>.csv``, ``<key>.md`` and ``<key>.tex`` in ``out`` (atomic writes)."""
    out.mkdir(parents=True, exist_ok=True)
    cols: dict[str, None] = {}
    for r in t.tidy:
        for k in r:
            cols.setdefault(k, None)
    paths = [out / f"{t.key}.csv", out / f"{t.key}.md", out / f"{t.key}.tex"]
    write_manifest(paths[0], t.tidy, list(cols) or ["table"], sort_key=None)
    atomic_write_text(paths[1], to_markdown(t))
    atomic_write_text(paths[2], to_latex(t))
    return paths


def measured(t: TableOut) -> bool:
    """Whether a paper table has at least one cell filled from runs."""
    return any(r.get("status") == "ok" for r in t.tidy)


def write_tables(results: list[dict[str, Any]], out: str | Path, *, metric: str = "accuracy",
                 stand_in: str | None = "auto", fill: dict[str, str] | None = None,
                 only: list[str] | None = None) -> list[TableOut]:
    """Write the summary, the ten paper tables and (with data for it) their stand-in versions;
    returns the tables written.

    ``stand_in="auto"`` writes stand-in tables for the sample set when the runs include
    sample datasets; ``None`` writes none. ``only`` restricts the paper tables (keys). A paper
    table without a measured cell is not written (an earlier copy of it in ``out`` is
    removed, so none is left stale); the summary's notes and ``index.json`` (``skipped``) name
    it. Also writes ``all.md`` (every written table in one file).
    """
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}", flag="--metric")
    out = Path(out)
    summary = build_summary(results, metric)
    chosen = [t for k, t in paper_tables().items() if only is None or k in only]
    paper = [build_paper_table(t, results, metric=metric, fill=fill) for t in chosen]
    if stand_in == "auto":
        stand_in = "sample" if any(parse_dataset_name(r["dataset"]).base == "sample" for r in results) else None
    if stand_in:
        paper += [build_paper_table(t, results, metric=metric, stand_in=stand_in, fill=fill) for t in chosen]
    skipped = [t.key for t in paper if not measured(t)]
    if skipped:
        summary.notes.append(f"Not written (no measured cell): {', '.join(skipped)}.")
    tables = [summary] + [t for t in paper if measured(t)]
    for t in tables:
        write_table(t, out)
    for key in skipped:
        for ext in ("csv", "md", "tex"):
            (out / f"{key}.{ext}").unlink(missing_ok=True)
    atomic_write_text(out / "all.md", "\n".join(to_markdown(t) for t in tables))
    atomic_write_text(out / "index.json", json.dumps({"metric": metric, "stand_in": stand_in,
                                                      "tables": [t.key for t in tables], "skipped": skipped},
                                                     indent=2) + "\n")
    return tables


def parse_fill(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    rows = {r.label for t in paper_tables().values() for r in t.rows}
    for k, v in parse_options(pairs, flag="--fill", form="ROW=LABEL").items():
        if k not in rows:
            raise ConfigError(f"no paper row {k!r}; rows are {', '.join(sorted(rows))}", flag="--fill")
        out[k] = v
    return out
