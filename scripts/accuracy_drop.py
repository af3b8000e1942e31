"""How much accuracy do the simulated degradations cost? Clean vs UDC vs low light, beside the papers.

Trains one reference model on a data set (default: the embedded sample set) and on each of its
degraded copies (UDC with every ``--udc`` display, low light with every ``--lowlight`` preset),
tests each on the same copy, and prints the accuracy and the drop from clean (points) next to
the clean -> degraded drops the papers report (LRDif Tables 1-4: UDC; LLDif Tables 1-4: low
light; from ``shared/notes/paper_tables.csv``), and whether the order is the papers' (low light
costs more than UDC; UDC a few points, within the papers' range).

Training goes through the benchmark (``fer-bench run``, one call per UDC display / low-light
preset, each into its own folder under ``--out``), so the jobs are the runner's: deterministic,
resumable (re-running skips finished jobs) and recorded. Writes ``--out/accuracy_drop.csv`` and
``--out/accuracy_drop.md``.

    python scripts/accuracy_drop.py                                   # sample set, seed 0
    python scripts/accuracy_drop.py --seeds 0,1,2 --epochs 10
    python scripts/accuracy_drop.py --src folder --root ~/data/my-faces --udc toled --lowlight lldif,realistic

With ``--methods cnn`` (default) the reference CNN is the quick configuration the sample set's
tiny presets use (widths 8-64, 64 px input, batch 32, no augmentation, exponential decay;
``--full-cnn`` keeps the method's own recipe). Nothing here is a paper number except the
"paper drop" columns, which are computed from the table file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import click
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TABLES = Path(__file__).resolve().parents[2] / "shared" / "notes" / "paper_tables.csv"

#: Clean dataset -> (UDC copy, low-light copy) names as the papers' tables spell them.
PAPER_SETS = {"RAF-DB": ("UDC-RAF-DB", "LL-RAF-DB"), "FERPlus": ("UDC-FERPlus", "LL-FERPlus"),
              "KDEF": ("UDC-KDEF", "LL-KDEF")}
#: The quick reference-CNN configuration (the sample set's tiny-preset trunk and recipe).
QUICK_CNN = ["--model-opt", "cnn.widths=[8,16,32,64]", "--input-size", "64", "--batch-size", "32",
             "--recipe", "augment=[]", "--recipe", "schedule=exponential", "--recipe", 'schedule_args={"gamma":0.9}']


class Failure(Exception):
    """A problem the user can fix; printed as one line."""


# ------------------------------------------------------------------- the papers' drops
def paper_drops(path: Path) -> pd.DataFrame:
    """One row per (paper, kind, clean set, method) with a clean and a degraded accuracy:
    ``drop = clean - degraded`` in points. Tables 1 (clean) and 2-4 (degraded); the ablations
    (Table 5) are left out. LLDif prints its baselines' clean numbers as LRDif Table 1 does,
    so LLDif rows take a method's clean accuracy from LLDif Table 1, else from LRDif Table 1."""
    if not path.is_file():
        raise Failure(f"{path}: the papers' table file is missing; pass --paper-tables PATH "
                      "(a CSV with columns paper,table,dataset,method,accuracy)")
    t = pd.read_csv(path)
    need = {"paper", "table", "dataset", "method", "accuracy"}
    if not need <= set(t.columns):
        raise Failure(f"{path}: expected columns {', '.join(sorted(need))}, got {', '.join(t.columns)}")
    t = t[t["table"].astype(str).isin(["1", "2", "3", "4"])]
    clean = {(p, d, m): float(a) for p, tb, d, m, a in t[["paper", "table", "dataset", "method", "accuracy"]].itertuples(
        index=False) if str(tb) == "1"}
    rows = []
    for p, tb, d, m, a in t[["paper", "table", "dataset", "method", "accuracy"]].itertuples(index=False):
        if str(tb) == "1":
            continue
        for base, (udc, ll) in PAPER_SETS.items():
            if d in (udc, ll):
                kind = "udc" if d == udc else "lowlight"
                c = clean.get((p, base, m), clean.get(("LRDif", base, m)))
                if c is not None:
                    rows.append({"paper": p, "kind": kind, "dataset": base, "method": m, "clean": c,
                                 "degraded": float(a), "drop": c - float(a)})
    if not rows:
        raise Failure(f"{path}: no clean/degraded pairs of the same method found")
    return pd.DataFrame(rows)


def paper_summary(drops: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per kind: min, median, max drop (points) and the number of (method, data set) pairs."""
    out = {}
    for kind, g in drops.groupby("kind"):
        out[kind] = {"min": float(g["drop"].min()), "median": float(g["drop"].median()),
                     "max": float(g["drop"].max()), "n": int(len(g))}
    return out


# ------------------------------------------------------------------------ training
def fer_bench() -> list[str]:
    """The ``fer-bench`` of this interpreter: the console script beside it, else ``-m benchmark.cli``."""
    exe = Path(sys.executable).with_name("fer-bench")
    if exe.is_file() and os.access(exe, os.X_OK):
        return [str(exe)]
    return [sys.executable, "-m", "benchmark.cli"]


def run_bench(datasets: list[str], out: Path, *, udc: str | None, ll: str | None, a: dict, log) -> Path:
    """One ``fer-bench run`` into ``out``; returns its results.csv."""
    cmd = [*fer_bench(), "run", "--methods", a["methods"], "--datasets", ",".join(datasets), "--out", str(out),
           "--seeds", a["seeds"], "--threads", str(a["threads"]), "--no-report", "--no-save-features",
           "--no-eval-clean", "--eval-every", "0"]
    cmd += ["--epochs", str(a["epochs"])]
    if udc:
        cmd += ["--udc-display", udc]
    if ll:
        cmd += ["--ll-preset", ll]
    if a["root"]:
        cmd += ["--root", a["root"]]
    for opt in a["src_opts"]:
        cmd += ["--src-opt", opt]
    if a["quick"]:
        cmd += QUICK_CNN
    for extra in a["bench_args"]:
        cmd += extra.split()
    click.echo("$ " + " ".join(cmd), err=True)
    t0 = time.time()
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        res = subprocess.run(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
    if res.returncode != 0:
        tail = Path(log).read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        raise Failure(f"fer-bench run failed (exit {res.returncode}) for {','.join(datasets)}: "
                      + " | ".join(x.strip() for x in tail))
    click.echo(f"  done in {time.time() - t0:.0f} s", err=True)
    return out / "results.csv"


def copies(base: str, udc: list[str], ll: list[str]) -> list[dict]:
    """The copies to train on: clean, each UDC display, each low-light preset; each with the
    ``fer-bench run`` call (datasets, --udc-display, --ll-preset, folder) it belongs to."""
    rows = [{"copy": f"{base} (clean)", "kind": "clean", "preset": "", "dataset": base}]
    rows += [{"copy": f"udc-{base} ({d})", "kind": "udc", "preset": d, "dataset": f"udc-{base}"} for d in udc]
    rows += [{"copy": f"ll-{base} ({p})", "kind": "lowlight", "preset": p, "dataset": f"ll-{base}"} for p in ll]
    return rows


def copy_key(name: str, udc: str | None, ll: str | None) -> tuple[str, str]:
    """``(dataset, preset)`` of one copy's results: its UDC display or low-light preset, ``""`` for clean."""
    if name.startswith("udc-"):
        return name, udc
    return (name, ll) if name.startswith("ll-") else (name, "")


def safe(text: str) -> str:
    """A folder-safe name of a preset (a ``.json`` path: its stem)."""
    name = Path(text).stem if text.lower().endswith(".json") else text
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name)


# ------------------------------------------------------------------------- report
def verdicts(table: pd.DataFrame, paper: dict) -> list[str]:
    """Plain-language checks of the order the papers show, from the numbers (none hard-coded)."""
    out = []
    udc = table[(table["kind"] == "udc") & table["accuracy"].notna()]
    ll = table[(table["kind"] == "lowlight") & table["accuracy"].notna()]
    if "udc" in paper and "lowlight" in paper:
        p_order = paper["lowlight"]["median"] > paper["udc"]["median"]
        out.append(f"papers: median drop low light {paper['lowlight']['median']:.1f} vs UDC {paper['udc']['median']:.1f} "
                   f"points -> low light costs {'more' if p_order else 'less'} than UDC")
        for u in udc.itertuples():  # one verdict per UDC preset: each stands for a panel
            for low in ll.itertuples():
                ours = low.drop > u.drop
                out.append(f"here: {low.copy} drop {low.drop:.1f} vs {u.copy} {u.drop:.1f} points -> "
                           f"{'same order as the papers' if ours == p_order else 'NOT the papers order'}")
    for kind, g in (("udc", udc), ("lowlight", ll)):
        if kind in paper and len(g):
            lo, hi = paper[kind]["min"], paper[kind]["max"]
            inside = [f"{r.copy}: {r.drop:.1f} ({'within' if lo <= r.drop <= hi else 'outside'} {lo:.1f}..{hi:.1f})"
                      for r in g.itertuples()]
            out.append(f"{kind} drops vs the papers' range: " + "; ".join(inside))
    return out


def markdown(table: pd.DataFrame, notes: list[str], header: str) -> str:
    cols = ["copy", "accuracy", "std", "drop", "paper_drop", "paper_median", "in_paper_range", "order_as_papers"]
    lines = [header, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in table.to_dict("records"):
        lines.append("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    lines += [""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--src", default="sample", show_default=True,
              help="Base data set, as fer-bench names it: sample, folder, rafdb, ferplus, kdef.")
@click.option("--root", default=None, help="Folder of the clean data set (not for sample).")
@click.option("--src-opt", "src_opts", multiple=True, metavar="[BASE.]KEY=VALUE", help="Source option for fer-bench.")
@click.option("--udc", "udc_list", default="toled,poled", show_default=True, help="UDC display presets (comma-separated).")
@click.option("--lowlight", "ll_list", default="lldif", show_default=True, help="Low-light presets (comma-separated).")
@click.option("--methods", default="cnn", show_default=True, help="fer-bench method spec (one method recommended).")
@click.option("--seeds", default="0", show_default=True, help="Training seeds, e.g. 0 or 0,1,2 (mean over seeds).")
@click.option("--epochs", type=int, default=8, show_default=True, help="Epochs per job (the same for every copy).")
@click.option("--threads", type=int, default=2, show_default=True, help="torch CPU threads per job.")
@click.option("--full-cnn", is_flag=True, help="Use the cnn method's own recipe, not the quick configuration.")
@click.option("--bench-arg", "bench_args", multiple=True, metavar="'--FLAG VALUE'",
              help="Extra fer-bench run arguments, repeatable, e.g. --bench-arg '--limit-train 500'.")
@click.option("--paper-tables", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_TABLES,
              show_default=True, help="The papers' accuracy tables (CSV).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/accuracy-drop"),
              show_default=True, help="Folder for the runs, accuracy_drop.csv and accuracy_drop.md.")
def main(src, root, src_opts, udc_list, ll_list, methods, seeds, epochs, threads, full_cnn, bench_args,
         paper_tables, out) -> None:
    """Clean vs UDC vs low-light accuracy of one reference model, beside the papers' drops."""
    t_start = time.time()
    try:
        drops = paper_drops(paper_tables)
        paper = paper_summary(drops)
        udc = [x.strip() for x in udc_list.split(",") if x.strip()]
        ll = [x.strip() for x in ll_list.split(",") if x.strip()]
        if src != "sample" and not root:
            raise Failure(f"--src {src} needs --root (the clean data set's folder)")
        a = {"methods": methods, "seeds": seeds, "epochs": epochs, "threads": threads, "root": root,
             "src_opts": src_opts, "quick": methods.split(",")[0].split("@")[0] == "cnn" and not full_cnn,
             "bench_args": bench_args}
        out.mkdir(parents=True, exist_ok=True)
        log = out / "fer-bench.log"
        plan = copies(src, udc, ll)
        # one fer-bench call per (display, preset) combination: the first holds clean + the first of each
        calls = []
        first = [src] + ([f"udc-{src}"] if udc else []) + ([f"ll-{src}"] if ll else [])
        calls.append((first, udc[0] if udc else None, ll[0] if ll else None, out / "runs" / "main"))
        for d in udc[1:]:
            calls.append(([f"udc-{src}"], d, None, out / "runs" / f"udc-{safe(d)}"))
        for p in ll[1:]:
            calls.append(([f"ll-{src}"], None, p, out / "runs" / f"ll-{safe(p)}"))
        results: dict[tuple[str, str], list[float]] = {}
        n_test: list[int] = []
        errors: dict[tuple[str, str], str] = {}
        for datasets, d, p, folder in calls:
            try:
                csv = run_bench(datasets, folder, udc=d, ll=p, a=a, log=log)
            except Failure as exc:
                for name in datasets:
                    errors[copy_key(name, d, p)] = str(exc)
                click.echo(f"  {exc}", err=True)
                continue
            res = pd.read_csv(csv)
            for name in datasets:
                key = copy_key(name, d, p)
                results[key] = [float(x) for x in res.loc[res["dataset"] == name, "accuracy"]]
                if "n_test" in res.columns:
                    n_test.extend(int(x) for x in res.loc[res["dataset"] == name, "n_test"].dropna())
    except Failure as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)

    clean_acc = np.mean(results[(src, "")]) if results.get((src, "")) else np.nan
    rows = []
    for c in plan:
        key = (c["dataset"], c["preset"])
        accs = results.get(key) or []
        acc = float(np.mean(accs)) if accs else np.nan
        row = {"copy": c["copy"], "kind": c["kind"], "preset": c["preset"], "accuracy": acc,
               "std": float(np.std(accs)) if len(accs) > 1 else np.nan, "n_seeds": len(accs),
               "drop": (clean_acc - acc) if c["kind"] != "clean" else np.nan,
               "paper_drop": "", "paper_median": np.nan, "in_paper_range": "", "order_as_papers": "",
               "error": errors.get(key, "")}
        if c["kind"] in paper and not np.isnan(acc):
            s = paper[c["kind"]]
            row["paper_drop"] = f"{s['min']:.1f}..{s['max']:.1f} ({s['n']} method x data set pairs)"
            row["paper_median"] = s["median"]
            row["in_paper_range"] = "yes" if s["min"] <= row["drop"] <= s["max"] else "no"
        rows.append(row)
    table = pd.DataFrame(rows)
    udc_d = table.loc[(table["kind"] == "udc") & table["accuracy"].notna(), "drop"]
    ll_d = table.loc[(table["kind"] == "lowlight") & table["accuracy"].notna(), "drop"]
    if "udc" in paper and "lowlight" in paper and len(udc_d) and len(ll_d):
        p_more = paper["lowlight"]["median"] > paper["udc"]["median"]
        for i, r in table.iterrows():
            if r["kind"] == "udc" and not np.isnan(r["accuracy"]):
                ok = (r["drop"] < ll_d.min()) == p_more
                table.at[i, "order_as_papers"] = "yes" if ok else "no"
            elif r["kind"] == "lowlight" and not np.isnan(r["accuracy"]):
                ok = (r["drop"] > udc_d.iloc[0]) == p_more  # against the first (default) UDC preset
                table.at[i, "order_as_papers"] = "yes" if ok else "no"
    notes = verdicts(table, paper)
    wall = time.time() - t_start
    notes.append(f"model: {methods}{' (quick configuration)' if a['quick'] else ''}, epochs {epochs}, seeds {seeds}; "
                 f"accuracy = final-epoch test accuracy (%) on each copy's own test split; drop = clean - copy "
                 f"(points); paper drops from {paper_tables.name} (LRDif/LLDif Tables 1-4); wall time {wall:.0f} s")
    if n_test and not np.isnan(clean_acc):
        n, p = min(n_test), clean_acc / 100
        se = 100 * np.sqrt(2 * p * (1 - p) / n)
        notes.append(f"noise: with {n} test images the standard error of one drop (difference of two accuracies "
                     f"near {clean_acc:.0f} %) is about {se:.1f} points per seed; differences below ~{2 * se:.0f} "
                     "points are not resolved by one seed")
    for key, msg in errors.items():
        notes.append(f"FAILED {key[0]} {key[1]}: {msg}")

    csv_cols = ["copy", "kind", "preset", "accuracy", "std", "n_seeds", "drop", "paper_drop", "paper_median",
                "in_paper_range", "order_as_papers", "error"]
    table[csv_cols].to_csv(out / "accuracy_drop.csv", index=False, float_format="%.2f")
    header = f"# Accuracy drop: {src} clean vs UDC vs low light ({methods}, seeds {seeds})"
    (out / "accuracy_drop.md").write_text(markdown(table, notes, header), encoding="utf-8")
    (out / "paper_drops.csv").write_text(drops.to_csv(index=False, float_format="%.2f"), encoding="utf-8")
    _print(table, notes)
    click.echo(f"wrote {out / 'accuracy_drop.csv'} and {out / 'accuracy_drop.md'} ({wall:.0f} s)")
    if errors:
        sys.exit(1)


def _print(table: pd.DataFrame, notes: list[str]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain text
        click.echo(table.to_string(index=False))
        for n in notes:
            click.echo("- " + n)
        return
    t = Table(title="accuracy on each copy (trained and tested on it) vs the papers' clean -> degraded drops")
    for c, just in (("copy", "left"), ("accuracy %", "right"), ("drop (pts)", "right"), ("paper drop (pts)", "left"),
                    ("paper median", "right"), ("in range", "left"), ("order as papers", "left")):
        t.add_column(c, justify=just)
    for r in table.to_dict("records"):
        acc = _fmt(r["accuracy"]) + (f" ± {r['std']:.1f}" if not np.isnan(r["std"]) else "") if not np.isnan(
            r["accuracy"]) else "failed"
        t.add_row(r["copy"], acc, _fmt(r["drop"]), r["paper_drop"], _fmt(r["paper_median"]), r["in_paper_range"],
                  r["order_as_papers"])
    con = Console(width=140)
    con.print(t)
    for n in notes:
        con.print("- " + n, soft_wrap=True, markup=False)


if __name__ == "__main__":
    main()
