"""``fer-bench robustness``: accuracy against degradation severity, ImageNet-C style.

Each method is trained once -- on the clean base set (``--train-on clean``, the default) or on
one degraded copy (``--train-on udc-s4``) -- through the ordinary runner (:func:`~benchmark.execute.execute`:
finished jobs are skipped), and its saved ``model.pt`` is then evaluated on the test split of
every severity of every simulator: severity 0 is the clean test set, severities 1..5 are the
on-demand degraded copies of :func:`~benchmark.datasets.resolve_datasets` with
``degrade_opts={"udc": {"severity": k}}`` (built once, cached under ``--degraded-dir`` like
every on-demand copy). ``--train-on each`` instead trains one model per severity and tests it
at that severity (the clean model at 0).

An evaluation never retrains and never augments (the recipe's evaluation transform only, the
same as the job's own test pass): it loads the checkpoint (:func:`models.load_checkpoint`, which
never runs code from the file), predicts the test images and writes, inside the job's folder,
``robustness/<test set>.npz`` (ids, labels, logits) and ``robustness/<test set>.json`` (metrics,
bootstrap interval and the evaluation's identity: the job's config hash, the model file's
SHA-256, the test set's identity, ``--limit-test`` and the evaluation batch). A later call with
the same identity reads the JSON back instead of evaluating again.

Outputs in ``OUT`` (every file written atomically; the same seeds give the same bytes):

* ``robustness.csv`` -- tidy, one row per (method, train set, test degradation, severity, seed):
  :data:`ROBUSTNESS_COLUMNS`; accuracies and the 95% bootstrap interval in percent;
* ``robustness.png`` / ``.pdf`` -- accuracy against severity, a panel per degradation, a line per
  method (:mod:`benchmark.robustness_plots`);
* ``robustness-summary.csv`` / ``.md`` / ``.tex`` -- per method: clean accuracy, mean accuracy
  over severities 1..5 per degradation and overall, the corruption error against a reference
  method and its mean (:func:`summarize`);
* ``figures/severities-<deg>.png`` -- one test image per class at every severity;
* ``report/index.html`` -- the HTML report (:func:`benchmark.report.write_html_report`).

Mean corruption error (Hendrycks & Dietterich, ImageNet-C): with ``E_m,d,s`` the error (100 -
accuracy, %) of method ``m`` on degradation ``d`` at severity ``s`` and ``E_m,clean`` its clean
error, ``CE_m,d = 100 * sum_s E_m,d,s / sum_s E_ref,d,s``, ``mCE_m`` = the mean of ``CE_m,d`` over
degradations; the relative ``rCE_m,d = 100 * sum_s (E_m,d,s - E_m,clean) / sum_s (E_ref,d,s -
E_ref,clean)``, ``relative mCE`` its mean. Lower is better; the reference scores 100.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fercore.errors import ConfigError, DataError

from .datasets import degradation_names, split_list
from .options import DataOptions, ExecOptions, _FromKwargs
from .robustness_plots import EACH, regimes

if TYPE_CHECKING:
    from .datasets import DataSettings, ResolvedDataset
    from .runner import Job, JobRunner, RunSettings

#: Columns of ``robustness.csv``.
ROBUSTNESS_COLUMNS = ("method", "train_set", "test_degradation", "severity", "seed", "accuracy",
                      "mean_class_accuracy", "ci_low", "ci_high", "n_test")
#: Bumped when an evaluation's outputs change for the same inputs (enters its identity).
EVAL_VERSION = 2  # 2: bootstrap resamples keyed by the test set, not the evaluation's identity
_TRAIN_ON = re.compile(r"^([a-z0-9]+)-s([1-5])$")


@dataclass(frozen=True)
class RobustnessOptions(_FromKwargs):
    """What ``fer-bench robustness`` trains and tests (see ``fer-bench robustness --help``)."""

    methods: str = "cnn,scn,lrdif"
    severities: str = "1,2,3,4,5"
    degradations: str = "udc,ll"
    train_on: str = "clean"
    reference: str | None = None
    datasets: str | None = None
    preset: str | None = None
    model_opts: tuple[str, ...] = ()

    def severity_list(self) -> list[int]:
        """``--severities`` as sorted levels 1..5 (0, the clean test set, is always added)."""
        from degrade.severity import check_severity

        levels = sorted({check_severity(s, flag="--severities") for s in split_list(self.severities)})
        if not levels:
            raise ConfigError("name at least one severity, e.g. 1,2,3,4,5", flag="--severities")
        return [k for k in levels if k > 0]

    def degradation_list(self) -> list[str]:
        degs = split_list(self.degradations)
        known = degradation_names()
        bad = [d for d in degs if d not in known]
        if bad or not degs:
            raise ConfigError(f"unknown degradation(s) {', '.join(bad) or '(none)'}; choose from "
                              f"{', '.join(known)}", flag="--degradations")
        if len(set(degs)) != len(degs):
            raise ConfigError(f"degradation listed twice in {self.degradations!r}", flag="--degradations")
        return degs

    def train_choice(self, degs: list[str]) -> tuple[str, int] | None:
        """``None`` for ``clean``, ``("each", 0)`` for ``each``, else (degradation, severity)."""
        t = self.train_on.strip().lower()
        if t == "clean":
            return None
        if t == EACH:
            return (EACH, 0)
        m = _TRAIN_ON.match(t)
        if not m or m.group(1) not in degradation_names():
            raise ConfigError(f"expected clean, each or DEG-sK (udc-s4, ll-s2), got {self.train_on!r}",
                              flag="--train-on")
        return m.group(1), int(m.group(2))


# ------------------------------------------------------------------------------- test sets
class TestSet:
    """One (degradation, severity) dataset: ``label`` is ``sample`` at 0, ``udc-sample-s3`` above.
    ``dataset`` is resolved (a degraded copy built) on first use, so ``--dry-run`` builds nothing."""

    def __init__(self, label: str, degradation: str | None, severity: int, resolve):
        self.label, self.degradation, self.severity = label, degradation, severity
        self._resolve = resolve
        self._dataset: ResolvedDataset | None = None

    @property
    def dataset(self) -> ResolvedDataset:
        if self._dataset is None:
            self._dataset = self._resolve()
        return self._dataset


def set_label(base: str, degradation: str | None, severity: int) -> str:
    return base if not severity else f"{degradation}-{base}-s{severity}"


class DataSets:
    """The clean base set and its degraded copies at each severity, resolved once each."""

    def __init__(self, base: str, settings: DataSettings, info):
        for scope in ("*", *degradation_names()):
            if "severity" in settings.degrade_opts.get(scope, {}):
                raise ConfigError("the severities come from --severities (and --train-on); drop "
                                  f"--degrade-opt {'' if scope == '*' else scope + '.'}severity", flag="--degrade-opt")
        fixed = [n for n in settings.paths if n != base]
        if fixed:
            raise ConfigError(f"robustness builds the degraded copies at each severity itself; give only the clean "
                              f"base ({base}) with --data, not {', '.join(fixed)}", flag="--data")
        self.base, self.settings, self.info = base, settings, info
        self._cache: dict[tuple[str | None, int], TestSet] = {}

    def get(self, degradation: str | None, severity: int) -> TestSet:
        key = (degradation if severity else None, severity)
        if key not in self._cache:
            self._cache[key] = TestSet(set_label(self.base, *key), key[0], severity, lambda: self._resolve(*key))
        return self._cache[key]

    def _resolve(self, degradation: str | None, severity: int) -> ResolvedDataset:
        from .datasets import resolve_in_order

        if not severity:
            return resolve_in_order([self.base], self.settings, self.info)[0]
        opts = {k: dict(v) for k, v in self.settings.degrade_opts.items()}
        opts.setdefault(degradation, {})["severity"] = severity
        settings = dataclasses.replace(self.settings, degrade_opts=opts)
        return resolve_in_order([f"{degradation}-{self.base}"], settings, self.info)[0]


def base_dataset(names: str | None, settings: DataSettings) -> str:
    """The one clean base dataset: ``--datasets``, else the one ``--data`` names, else ``sample``."""
    from .datasets import parse_dataset_name

    given = split_list(names) if names else list(settings.paths)
    if not given:
        if settings.root:
            raise ConfigError("name the dataset of the --root folder, e.g. --datasets rafdb", flag="--datasets")
        given = ["sample"]
    parsed = [parse_dataset_name(n) for n in given]
    if len(parsed) != 1:
        raise ConfigError(f"robustness runs on one clean dataset at a time, got {', '.join(given)}",
                          flag="--datasets" if names else "--data")
    if parsed[0].degraded:
        raise ConfigError(f"{parsed[0].name} is a degraded copy; name the clean base ({parsed[0].base}): the "
                          "copies at each severity are built from it", flag="--datasets" if names else "--data")
    return parsed[0].name


# ------------------------------------------------------------------------------- the plan
@dataclass
class Trained:
    """A training job and what it is tested on: the train set's label and its test sets."""

    job: Job
    train_set: str
    tests: list[TestSet]


def plan_robustness(rob: RobustnessOptions, data: DataSets, opts: ExecOptions) -> list[Trained]:
    """Every training job (method x train set x seed) and the test sets each is evaluated on."""
    from .plan import plan_jobs
    from .specs import parse_methods

    degs = rob.degradation_list()
    sevs = rob.severity_list()
    specs = parse_methods(rob.methods, rob.model_opts)
    seeds = opts.seed_list("0")
    overrides = opts.overrides()
    every = [data.get(None, 0)] + [data.get(d, k) for d in degs for k in sevs]
    choice = rob.train_choice(degs)
    if choice is None:
        setups = [(data.get(None, 0), every)]
    elif choice[0] == EACH:
        setups = [(t, [t]) for t in every]
    else:
        setups = [(data.get(*choice), every)]
    out = []
    for train, tests in setups:
        for job in plan_jobs(specs, [train.dataset], seeds, overrides, rob.preset):
            out.append(Trained(job, train.label, tests))
    return out


# ------------------------------------------------------------------------------- evaluation
def eval_paths(run_dir: Path, test: TestSet) -> tuple[Path, Path]:
    """(``robustness/<test>.json``, ``robustness/<test>.npz``) of a job folder."""
    d = Path(run_dir) / "robustness"
    return d / f"{test.label}.json", d / f"{test.label}.npz"


class Evaluator:
    """Evaluates trained jobs' checkpoints on test sets (cached; test images loaded once per size)."""

    def __init__(self, settings: RunSettings, info, progress=None):
        self.settings, self.info, self.progress = settings, info, progress
        self._tables: dict[tuple[str, int], Any] = {}
        self._digests: dict[tuple[str, int, int], str] = {}  # model.pt (path, size, mtime) -> sha256
        self.counts = {"evaluated": 0, "cached": 0}

    def forget_tables(self) -> None:
        self._tables.clear()

    def _model_digest(self, path: Path) -> str:
        """sha256 of a job's ``model.pt``, read once per file version (not once per test set)."""
        from fercore.hashing import sha256_file

        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in self._digests:
            self._digests[key] = sha256_file(path)
        return self._digests[key]

    def identity(self, runner: JobRunner, test: TestSet, split: str) -> dict[str, Any]:
        return {"job": runner.hash, "model_sha256": self._model_digest(runner.dir / "model.pt"),
                "test": test.label, "test_identity": test.dataset.identity, "split": split,
                "limit_test": self.settings.limit_test, "eval_batch_size": self.settings.eval_batch_size,
                "version": EVAL_VERSION}

    def _table(self, test: TestSet, split: str, size: int):
        from .data import ImageTable, limit_records

        key = (test.label, size)
        if key not in self._tables:
            s = self.settings
            recs = limit_records(test.dataset.source.records(split), s.limit_test)
            self._tables[key] = ImageTable(test.dataset.source, recs, size, workers=s.workers, cache_mb=s.cache_mb,
                                           description=f"loading {test.label} {split}")
        return self._tables[key]

    def evaluate(self, job: Job, test: TestSet) -> dict[str, Any]:
        """The job's metrics on ``test`` (``status``: ``cached`` or ``evaluated``)."""
        import numpy as np
        import torch

        from fercore.atomic import atomic_open
        from fercore.progress import console
        from fercore.seeding import derive_seed
        from models import load_checkpoint

        from .augment import Augmenter
        from .data import item_meta
        from .metrics import classification_metrics
        from .runner import JobRunner, _read_json, _write_json
        from .specs import config_hash
        from .stats import bootstrap_ci

        s, info = self.settings, self.info
        src = test.dataset.source
        splits = src.splits()
        split = "test" if "test" in splits else ("val" if "val" in splits else None)
        if split is None:
            raise DataError(f"{test.label} has no test (or val) split", src.root)
        classes = job.dataset.classes
        if tuple(src.classes) != tuple(classes):
            raise DataError(f"{test.label} has classes {list(src.classes)}, the model {list(classes)}", src.root)
        runner = JobRunner(job, s, info, self.progress)
        if not (runner.dir / "model.pt").is_file():
            raise DataError("no trained model (model.pt) in the job folder", runner.dir)
        ident = self.identity(runner, test, split)
        key = config_hash(ident)
        js, npz = eval_paths(runner.dir, test)
        prev = _read_json(js)
        if prev is not None and prev.get("eval_hash") == key and npz.is_file() and not s.force:
            self.counts["cached"] += 1
            console.print(f"cached: {job.title} on {test.label}: {prev['accuracy']:.2f} %")
            return {**prev, "status": "cached"}
        t0 = time.perf_counter()
        if s.threads:
            torch.set_num_threads(s.threads)
        model, _ = load_checkpoint(runner.dir / "model.pt", map_location=runner.device)
        model.to(runner.device)
        size = model.recipe.input_size
        runner.augmenter = Augmenter(model.recipe.augment, size, s.augment)
        table = self._table(test, split, size)
        needs = getattr(model, "requires", frozenset())
        landmarks = runner._landmarks(table) if "landmarks" in needs else None
        meta = item_meta(src, table.ids) if "meta" in needs else None
        logits, _ = runner.evaluate(model, table, landmarks, f"{job.title}: test on {test.label}", meta)
        runner.bar.close()
        m = classification_metrics(logits, table.labels, classes)
        lo, hi = bootstrap_ci(table.labels, logits.argmax(1), len(classes),
                              seed=derive_seed(job.seed, "robustness"), key=(test.label,))
        rec = {"eval_hash": key, "identity": ident, "test_set": test.label, "test_degradation": test.degradation,
               "severity": test.severity, "accuracy": m["accuracy"], "mean_class_accuracy": m["mean_class_accuracy"],
               "macro_f1": m["macro_f1"], "ci_low": lo, "ci_high": hi, "n_test": m["n"],
               "eval_time_s": round(time.perf_counter() - t0, 3)}
        if info.is_writer:
            with atomic_open(npz, "wb") as fh:
                np.savez_compressed(fh, ids=np.array(table.ids), labels=table.labels,
                                    logits=logits.astype(np.float32))
            _write_json(js, rec)  # written last: it marks the evaluation finished
        info.barrier()
        self.counts["evaluated"] += 1
        console.print(f"evaluated: {job.title} on {test.label}: {m['accuracy']:.2f} % "
                      f"[{lo:.1f}, {hi:.1f}] ({rec['eval_time_s']:.1f} s)")
        return {**rec, "status": "evaluated"}


def result_rows(trained: Trained, evals: dict[str, dict[str, Any]], degradations: list[str]) -> list[dict[str, Any]]:
    """``robustness.csv`` rows of one job: its clean evaluation once per degradation (severity 0)."""
    rows = []
    for d in degradations:
        for t in trained.tests:
            if t.degradation not in (None, d):
                continue
            e = evals[t.label]
            rows.append({"method": trained.job.plan.spec.label, "train_set": trained.train_set,
                         "test_degradation": d, "severity": t.severity, "seed": trained.job.seed,
                         "accuracy": round(e["accuracy"], 6), "mean_class_accuracy": round(e["mean_class_accuracy"], 6),
                         "ci_low": round(e["ci_low"], 6), "ci_high": round(e["ci_high"], 6), "n_test": e["n_test"]})
    return rows


def sort_rows(rows: list[dict[str, Any]], methods: list[str], degradations: list[str]) -> list[dict[str, Any]]:
    """Rows in a fixed order: method (as listed), degradation (as listed), severity, train set, seed."""
    return sorted(rows, key=lambda r: (methods.index(r["method"]), degradations.index(r["test_degradation"]),
                                       int(r["severity"]), r["train_set"], int(r["seed"])))


# ------------------------------------------------------------------------------- summary
def mean_table(rows: list[dict[str, Any]], metric: str = "accuracy") -> dict[tuple[str, str, int], float]:
    """(method, degradation, severity) -> ``metric`` averaged over seeds."""
    acc: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for r in rows:
        acc[(r["method"], r["test_degradation"], int(r["severity"]))].append(float(r[metric]))
    return {k: sum(v) / len(v) for k, v in acc.items()}


def _ratio(num: float, den: float) -> float:
    return 100.0 * num / den if den > 0 and math.isfinite(num) else math.nan


def summarize(rows: list[dict[str, Any]], reference: str | None = None) -> list[dict[str, Any]]:
    """Per method (in order of first appearance): clean accuracy, mean accuracy over the
    severities above 0 per degradation and overall, corruption errors against ``reference``
    (default: the first method) and their means (see the module docstring).

    ``rows`` are ``robustness.csv`` rows (accuracies in percent); seeds are averaged first.
    Every method must have the reference's severities on every degradation.
    """
    if not rows:
        raise DataError("no robustness rows to summarise", Path("robustness.csv"))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    degs = list(dict.fromkeys(r["test_degradation"] for r in rows))
    ref = reference or methods[0]
    if ref not in methods:
        raise ConfigError(f"reference method {ref!r} is not among {', '.join(methods)}", flag="--reference")
    acc = mean_table(rows)
    sevs = {d: sorted(k for (m, dd, k) in acc if m == ref and dd == d and k > 0) for d in degs}
    regime = regimes(rows)
    err = {k: 100.0 - v for k, v in acc.items()}
    out = []
    for m in methods:
        rec: dict[str, Any] = {"method": m, "train_set": regime[m], "reference": ref}
        for d in degs:
            missing = [k for k in [0, *sevs[d]] if (m, d, k) not in acc]
            if missing:
                raise DataError(f"{m} has no result on {d} at severity {', '.join(map(str, missing))}",
                                Path("robustness.csv"))
        cleans = [acc[(m, d, 0)] for d in degs]
        rec["clean_accuracy"] = sum(cleans) / len(cleans)
        ce, rce, means = [], [], []
        for d in degs:
            s = sevs[d]
            means.append(sum(acc[(m, d, k)] for k in s) / len(s))
            rec[f"mean_accuracy_{d}"] = means[-1]
            ce.append(_ratio(sum(err[(m, d, k)] for k in s), sum(err[(ref, d, k)] for k in s)))
            rce.append(_ratio(sum(err[(m, d, k)] - err[(m, d, 0)] for k in s),
                              sum(err[(ref, d, k)] - err[(ref, d, 0)] for k in s)))
            rec[f"ce_{d}"], rec[f"relative_ce_{d}"] = ce[-1], rce[-1]
        rec["mean_accuracy"] = sum(means) / len(means)
        rec["mce"] = sum(ce) / len(ce)
        rec["relative_mce"] = sum(rce) / len(rce)
        out.append(rec)
    return out


def _f(v: float) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.1f}"


def summary_table(summary: list[dict[str, Any]], severities: dict[str, list[int]] | None = None):
    """The summary as a :class:`~benchmark.tables.TableOut` (``robustness-summary``): CSV holds
    every field unrounded, Markdown and LaTeX one decimal."""
    from .tables import TableOut

    degs = [k[len("ce_"):] for k in summary[0] if k.startswith("ce_")]
    ref = summary[0]["reference"]
    header = [[("Method", 1), ("Train", 1), ("Clean", 1)] + [(f"Mean {d}", 1) for d in degs]
              + [("Mean", 1)] + [(f"CE {d}", 1) for d in degs] + [("mCE", 1), ("Rel. mCE", 1)]]
    grid = [[r["method"], r["train_set"], _f(r["clean_accuracy"])] + [_f(r[f"mean_accuracy_{d}"]) for d in degs]
            + [_f(r["mean_accuracy"])] + [_f(r[f"ce_{d}"]) for d in degs] + [_f(r["mce"]), _f(r["relative_mce"])]
            for r in summary]
    sev_text = ""
    if severities:
        sev_text = "; ".join(f"{d}: {', '.join(map(str, s))}" for d, s in severities.items())
        sev_text = f" (severities {sev_text})"
    notes = ["Accuracy (%) on the test split; Clean = severity 0; Mean = mean accuracy over the severities above 0"
             f"{sev_text}, then over degradations; seeds averaged first.",
             f"CE = 100 x sum_s err(method, s) / sum_s err({ref}, s) per degradation, err = 100 - accuracy; "
             "mCE = its mean over degradations (ImageNet-C); Rel. mCE uses err(s) - err(clean). Lower is better; "
             f"the reference ({ref}) scores 100. n/a: the reference loses no accuracy there."]
    return TableOut("robustness-summary", f"Robustness: accuracy against severity, mCE against {ref}", header, grid,
                    [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()} for r in summary], notes)


def write_summary(rows: list[dict[str, Any]], out: str | Path, reference: str | None = None) -> list[Path]:
    """``robustness-summary.csv`` / ``.md`` / ``.tex`` in ``out`` from ``robustness.csv`` rows."""
    from .tables import write_table

    sevs = {d: sorted({int(r["severity"]) for r in rows if r["test_degradation"] == d} - {0})
            for d in dict.fromkeys(r["test_degradation"] for r in rows)}
    return write_table(summary_table(summarize(rows, reference), sevs), Path(out))


def write_robustness_csv(rows: list[dict[str, Any]], path: str | Path) -> Path:
    from fercore.manifest import write_manifest

    write_manifest(path, rows, list(ROBUSTNESS_COLUMNS), sort_key=None)
    return Path(path)


def severity_sheets(data: DataSets, degradations: list[str], severities: list[int], out: Path) -> list[Path]:
    """``out/severities-<deg>.png``: one test image per class (columns) at every severity (rows)."""
    from .contact_sheet import rows_sheet

    paths = []
    for d in degradations:
        sources = [data.get(None, 0).dataset.source] + [data.get(d, k).dataset.source for k in severities]
        p = out / f"severities-{d}.png"
        rows_sheet(sources, p)
        paths.append(p)
    return paths


# ------------------------------------------------------------------------------- the command
def run_robustness(rob: RobustnessOptions, data_opts: DataOptions, opts: ExecOptions) -> dict[str, Any]:
    """``fer-bench robustness``: train (or reuse), evaluate every (job, test set), write the
    CSV, curves, summary and report. Returns ``{"rows", "jobs", "counts", "failed", "out"}``."""
    from fercore.progress import console, make_progress, out_console

    from .execute import print_plan, session
    from .specs import parse_methods

    if opts.job_shard:
        raise ConfigError("robustness runs every job in one call (it evaluates them all)", flag="--job-shard")
    degs = rob.degradation_list()
    sevs = rob.severity_list()
    labels = [s.label for s in parse_methods(rob.methods, rob.model_opts)]
    if rob.reference is not None and rob.reference not in labels:
        raise ConfigError(f"{rob.reference!r} is not one of --methods ({', '.join(labels)})", flag="--reference")
    t_start = time.perf_counter()
    with session(opts) as (info, device):
        from .execute import execute

        settings = opts.run_settings(device)
        dsettings = data_opts.settings(device, opts.workers)
        data = DataSets(base_dataset(rob.datasets, dsettings), dsettings, info)
        plan = plan_robustness(rob, data, opts)
        if opts.dry_run:
            print_plan([t.job for t in plan], settings)
            out_console.print(f"{sum(len(t.tests) for t in plan)} evaluations: "
                              + ", ".join(sorted({x.label for t in plan for x in t.tests})))
            return {"rows": [], "jobs": [], "counts": {}, "failed": [], "out": settings.out}
        console.print(f"robustness: {len(plan)} training job(s), {sum(len(t.tests) for t in plan)} evaluations "
                      f"({', '.join(degs)} at severities 0,{','.join(map(str, sevs))})")
        done = execute([t.job for t in plan], settings, info, report=False)
        failed = [r for r in done if r.get("status") not in ("done", "skipped")]
        ok = [t for t, r in zip(plan, done) if r.get("status") in ("done", "skipped")]
        ev = Evaluator(settings, info)
        evals: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
        tests = list({x.label: x for t in ok for x in t.tests}.values())
        with make_progress() as progress:
            ev.progress = progress
            for test in tests:  # test-major: one test set's images in memory at a time
                for i, t in enumerate(ok):
                    if any(x.label == test.label for x in t.tests):
                        evals[i][test.label] = ev.evaluate(t.job, test)
                ev.forget_tables()
        rows = [r for i, t in enumerate(ok) for r in result_rows(t, evals[i], degs)]
        rows = sort_rows(rows, labels, degs)
        out = Path(settings.out)
        if info.is_writer and rows:
            write_outputs(rows, out, rob.reference, report=opts.report)
            if opts.report:
                severity_sheets(data, degs, sevs, out / "figures")
                from .report import write_html_report
                from .results import write_results_table

                write_results_table(out)
                page = write_html_report(out)
                console.print(f"report: {page}")
        out_console.print(f"robustness: {len(rows)} rows, {ev.counts['evaluated']} evaluated, "
                          f"{ev.counts['cached']} cached, {len(failed)} failed training job(s) in "
                          f"{time.perf_counter() - t_start:.0f} s -> {out / 'robustness.csv'}")
        return {"rows": rows, "jobs": done, "counts": ev.counts, "failed": failed, "out": out}


def write_outputs(rows: list[dict[str, Any]], out: Path, reference: str | None = None, *,
                  report: bool = True) -> list[Path]:
    """``robustness.csv``, the summary and (``report``) the curves, from the rows."""
    from fercore.progress import console

    from .robustness_plots import plot_robustness

    out.mkdir(parents=True, exist_ok=True)
    paths = [write_robustness_csv(rows, out / "robustness.csv"), *write_summary(rows, out, reference)]
    if report:
        paths += plot_robustness(rows, out, "robustness")
    console.print("robustness: " + "  ".join(str(p) for p in paths))
    return paths
