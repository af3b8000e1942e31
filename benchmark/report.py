"""``fer-bench report``: one self-contained HTML page of a runs folder.

``index.html`` (no network: every figure is embedded as a base64 PNG, the few lines of
JavaScript that sort the tables are inline) holds, in order:

* the results of every finished job (``results.csv``'s numbers; click a header to sort);
* the robustness curves and table, when the runs folder has a ``robustness.csv``
  (:mod:`benchmark.robustness_plots`);
* the paper-vs-ours tables of ``RUNS/tables`` (``fer-bench tables``);
* the figures of ``RUNS/figures`` (``fer-bench figures``);
* each job's training curves, drawn from its ``epochs.csv``;
* contact sheets of clean vs degraded test images, for every degraded copy the jobs used
  that is still on disk;
* each job's configuration (``run.json``).

Every number in a table cell also sits in its ``data-value`` attribute, unrounded, so the
page can be checked against the files it was made from.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import rich_click as click

from fercore.atomic import atomic_write_text
from fercore.errors import DataError

from .results import RESULT_COLUMNS, find_results, find_runs

#: Columns of ``results.csv`` the results table shows (the rest are in each job's run.json).
SHOWN = [*RESULT_COLUMNS, "clean_accuracy", "mean_confidence", "n_train", "n_test", "epochs", "train_time_s",
         "config_hash"]
ROBUSTNESS_FILE = "robustness.csv"

SORT_JS = """
document.querySelectorAll('table.sortable th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0], asc = th.dataset.dir !== 'asc';
  th.closest('tr').querySelectorAll('th').forEach(h => delete h.dataset.dir); th.dataset.dir = asc ? 'asc' : 'desc';
  const key = td => { const v = td.dataset.value ?? td.textContent; const n = parseFloat(v);
                      return isNaN(n) ? v.toLowerCase() : n; };
  [...body.rows].sort((a, b) => { const x = key(a.cells[col]), y = key(b.cells[col]);
    return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); }).forEach(r => body.appendChild(r));
}));
"""
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0} td,th{border:1px solid #ddd;padding:.25em .5em}
th{background:#f3f3f3;cursor:pointer;position:sticky;top:0} tr:nth-child(even){background:#fafafa}
.wide{overflow-x:auto} td{white-space:nowrap} details{margin:.4em 0} td.num{text-align:right;font-variant-numeric:tabular-nums} figure{display:inline-block;margin:.4em;vertical-align:top}
figure img{max-width:560px;border:1px solid #eee} figcaption{font-size:.8em;color:#555}
pre{background:#f7f7f7;padding:.6em;overflow:auto;max-height:28em;font-size:.8em} nav a{margin-right:1em}
"""


# ----------------------------------------------------------------------------- html pieces
def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(str(v)) if str(v).strip() else None
    except ValueError:
        return None


def cell(v: Any) -> str:
    """A ``<td>``: numbers right-aligned (integers as they are, others to 2 decimals), the exact
    value in ``data-value``."""
    n = _number(v)
    if n is None or not math.isfinite(n):
        return f"<td>{_esc('' if v is None else v)}</td>"
    is_int = isinstance(v, int) or (isinstance(v, str) and v.strip().lstrip("-").isdigit())
    text = f"{int(n)}" if is_int else f"{n:.2f}"
    return f'<td class="num" data-value="{_esc(v)}">{text}</td>'


def table(rows: list[dict[str, Any]], columns: list[str], table_id: str) -> str:
    """A sortable table of ``rows`` (dicts) over ``columns``."""
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "\n".join("<tr>" + "".join(cell(r.get(c)) for c in columns) + "</tr>" for r in rows)
    return (f'<div class="wide"><table class="sortable" id="{_esc(table_id)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>\n{body}\n</tbody></table></div>")


def image(data: bytes, caption: str, mime: str = "image/png") -> str:
    """An embedded image (base64 data URI) with its caption."""
    src = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return f'<figure><img src="{src}" alt="{_esc(caption)}"><figcaption>{_esc(caption)}</figcaption></figure>'


def _png(fig) -> bytes:
    from .figures import _plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    _plt().close(fig)
    return buf.getvalue()


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            return list(reader.fieldnames or []), list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"unreadable table ({exc})", path) from None


# ----------------------------------------------------------------------------- sections
def results_section(results: list[dict[str, Any]]) -> str:
    if not results:
        return "<p>No finished jobs.</p>"
    return table(results, [c for c in SHOWN if any(c in r for r in results)], "results")


def robustness_section(runs: Path, work: Path) -> str:
    from .robustness_plots import COLUMNS, plot_robustness, read_robustness

    path = runs / ROBUSTNESS_FILE
    if not path.is_file():
        return ""
    rows = read_robustness(path)
    if not rows:
        return ""
    png = next(p for p in plot_robustness(rows, work, "robustness") if p.suffix == ".png")
    return (image(png.read_bytes(), "accuracy vs severity per method (band: confidence interval)")
            + table(rows, list(COLUMNS), "robustness"))


def paper_tables_section(runs: Path) -> str:
    folder = runs / "tables"
    index = folder / "index.json"
    try:
        names = json.loads(index.read_text(encoding="utf-8"))["tables"] if index.is_file() else None
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        names = None
    if names is None:
        names = sorted(p.stem for p in folder.glob("*.csv"))
    parts = []
    for name in names:
        path = folder / f"{name}.csv"
        if not path.is_file():
            continue
        columns, rows = _read_csv(path)
        is_open = " open" if name == "summary" else ""  # the run's own summary open, the papers' folded
        parts.append(f"<details{is_open}><summary><b>{_esc(name)}</b> ({len(rows)} rows)</summary>"
                     + table(rows, columns, f"table-{name}") + "</details>")
    return "\n".join(parts)


def figures_section(runs: Path) -> str:
    return "".join(image(p.read_bytes(), p.stem) for p in sorted((runs / "figures").glob("*.png")))


def training_curves(epochs_csv: Path, title: str) -> bytes:
    """Loss and accuracies against epoch from one job's ``epochs.csv``, as PNG bytes."""
    from .figures import _plt

    _, rows = _read_csv(epochs_csv)
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.5, 2.6))
    ep = [float(r["epoch"]) for r in rows]

    def series(key):
        return [float(r[key]) if r.get(key, "").strip() else math.nan for r in rows]

    ax1.plot(ep, series("train_loss"), marker="o", label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_title("loss", fontsize=9)
    for key, lab in (("train_acc", "train"), ("test_acc", "test")):
        if rows and key in rows[0]:
            ax2.plot(ep, series(key), marker="o", label=lab)
    ax2.set_xlabel("epoch")
    ax2.set_title("accuracy (%)", fontsize=9)
    ax2.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)


def curves_section(jobs: list[dict[str, Any]]) -> str:
    parts = []
    for job in jobs:
        path = Path(job["run_dir"]) / "epochs.csv"
        if path.is_file() and path.stat().st_size > 0:
            _, rows = _read_csv(path)
            if rows:
                parts.append(image(training_curves(path, _job_name(job)), _job_name(job)))
    return "".join(parts)


def contact_sheets_section(jobs: list[dict[str, Any]], work: Path) -> str:
    """Clean vs degraded test images for each degraded copy the jobs used (if still on disk)."""
    from fercore.sources import get_source

    from .contact_sheet import pairs_sheet

    parts, seen, missing = [], set(), []
    for job in jobs:
        ds = job.get("dataset") or {}
        if ds.get("kind") in (None, "clean") or ds.get("name") in seen:
            continue
        seen.add(ds.get("name"))
        root, clean_root = ds.get("root"), ds.get("clean_root")
        if not (root and clean_root and Path(root).is_dir() and Path(clean_root).is_dir()):
            missing.append(str(ds.get("name")))
            continue
        try:
            opts = {k: v for k, v in (ds.get("options") or {}).items()}
            clean = get_source(ds["base"], clean_root, **opts)
            degraded = get_source(ds["base"], root, **opts)
            png = work / f"pairs-{ds['name']}.png"
            pairs_sheet(clean, degraded, png)
        except Exception as exc:  # a moved or partial copy must not stop the report
            missing.append(f"{ds.get('name')} ({exc})")
            continue
        parts.append(image(png.read_bytes(), f"{ds['name']}: clean (top) vs degraded (bottom), one test image "
                                             "per class"))
    if missing:
        parts.append(f"<p>Not on disk any more: {_esc(', '.join(missing))}.</p>")
    return "".join(parts)


def config_section(jobs: list[dict[str, Any]]) -> str:
    parts = []
    for job in jobs:
        rec = {k: v for k, v in job.items() if k != "run_dir"}
        parts.append(f"<details><summary>{_esc(_job_name(job))} ({_esc(job.get('status', '?'))})</summary>"
                     f"<pre>{_esc(json.dumps(rec, indent=2, sort_keys=True, default=str))}</pre></details>")
    return "".join(parts)


def _job_name(job: dict[str, Any]) -> str:
    ds = job.get("dataset")
    ds = ds.get("name") if isinstance(ds, dict) else ds
    return f"{ds} / {job.get('label') or job.get('method')} / seed {job.get('seed')}"


# ----------------------------------------------------------------------------- the page
def write_html_report(runs: str | Path, out: str | Path | None = None) -> Path:
    """Write ``out/index.html`` (default ``RUNS/report``) for the runs folder ``runs``; returns its path."""
    import tempfile

    runs = Path(runs)
    if not runs.is_dir():
        raise DataError("runs folder not found (the --out of `fer-bench run`)", runs)
    out = Path(out) if out else runs / "report"
    results = find_results(runs)
    jobs = find_runs(runs)
    with tempfile.TemporaryDirectory(prefix="fer-report-") as tmp:
        work = Path(tmp)
        sections = [
            ("results", "Results", results_section(results)),
            ("robustness", "Robustness", robustness_section(runs, work)),
            ("paper", "Paper vs ours", paper_tables_section(runs)),
            ("figures", "Figures", figures_section(runs)),
            ("curves", "Training curves", curves_section(jobs)),
            ("sheets", "Clean vs degraded test images", contact_sheets_section(jobs, work)),
            ("config", "Configuration (run.json per job)", config_section(jobs)),
        ]
    sections = [s for s in sections if s[2]]
    nav = "".join(f'<a href="#{k}">{_esc(t)}</a>' for k, t, _ in sections)
    body = "\n".join(f'<section id="{k}"><h2>{_esc(t)}</h2>\n{h}\n</section>' for k, t, h in sections)
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>fer-bench report: {_esc(runs.name)}</title><style>{STYLE}</style></head>\n<body>"
            f"<h1>fer-bench report: {_esc(runs.name)}</h1>"
            f"<p>{len(results)} finished job(s) of {len(jobs)} in <code>{_esc(runs)}</code>.</p><nav>{nav}</nav>\n"
            f"{body}\n<script>{SORT_JS}</script></body></html>\n")
    path = out / "index.html"
    atomic_write_text(path, page)
    return path


@click.command("report")
@click.option("--runs", required=True, type=click.Path(file_okay=False), help="Runs folder (the --out of `run`).")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Folder for index.html [default: RUNS/report].")
def report_cmd(runs: str, out: str | None) -> None:
    """One self-contained HTML page of a runs folder: results (sortable), robustness curves,
    paper-vs-ours tables, figures, training curves, clean vs degraded images, configuration.

    Example: `fer-bench report --runs runs/ --out report/`
    """
    from fercore.progress import out_console

    path = write_html_report(runs, out)
    out_console.print(f"report: {path}")
