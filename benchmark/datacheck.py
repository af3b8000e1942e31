"""Printing and saving the report of ``fer-bench data check``."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fercore.atomic import atomic_write_text
from fercore.sources import CheckReport

SECTIONS = (
    ("missing", "missing files"),
    ("extra", "extra files (not in the labels / not matching the naming)"),
    ("corrupt", "unreadable or corrupt images"),
    ("bad_lines", "bad label lines"),
    ("unknown_classes", "unknown class folders"),
    ("problems", "other problems"),
)


def counts_table(report: CheckReport) -> Table:
    """Images per split and class, with the expected number beside each where known."""
    splits = list(report.counts) or list(report.expected or {})
    t = Table()
    t.add_column("class")
    for s in splits:
        t.add_column(s, justify="right")
    exp = report.expected or {}

    def cell(got: int, want) -> str:
        if want is None:
            return str(got)
        return f"{got}" if got == want else f"[red]{got}[/] (expected {want})"

    for c in report.classes:
        t.add_row(c, *[cell(report.counts.get(s, {}).get(c, 0), ((exp.get(s) or {}).get("classes") or {}).get(c))
                       for s in splits])
    t.add_row("[bold]total", *[cell(sum(report.counts.get(s, {}).values()), (exp.get(s) or {}).get("total"))
                               for s in splits])
    return t


def _line(kind: str, item) -> str:
    if kind == "corrupt":
        return f"{item[0]}: {item[1]}"
    if kind == "bad_lines":
        f, n, text, why = item
        return f"{f}:{n}: {why}: {text!r}"
    return str(item)


def print_report(report: CheckReport, console: Console, limit: int = 50) -> None:
    console.print(f"[bold]{report.dataset}[/] at {escape(str(report.root))}", soft_wrap=True)
    console.print(counts_table(report))
    for kind, title in SECTIONS:
        items = getattr(report, kind)
        if not items:
            continue
        console.print(f"\n[bold red]{len(items)} {title}:[/]")
        for item in items[:limit]:
            console.print("  " + escape(_line(kind, item)), soft_wrap=True)
        if len(items) > limit:
            console.print(f"  ... and {len(items) - limit} more (use --report FILE for the full list)")
    mism = report.count_mismatches()
    if mism:
        console.print(f"\n[bold red]{len(mism)} count mismatches against data_manifests/{report.dataset}.json:[/]")
        for m in mism[:limit]:
            console.print("  " + escape(m), soft_wrap=True)
    for note in report.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    if report.ok:
        console.print(f"\n[bold green]OK[/]: {report.dataset} matches its manifest", soft_wrap=True)
    else:
        console.print(f"\n[bold red]FAILED[/]: {report.dataset} does not match its manifest")


def save_report(report: CheckReport, path: str | Path) -> None:
    data = {
        "dataset": report.dataset, "root": str(report.root), "ok": report.ok,
        "counts": report.counts, "expected": report.expected,
        "count_mismatches": report.count_mismatches(),
        **{kind: [_line(kind, i) for i in getattr(report, kind)] for kind, _ in SECTIONS},
    }
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
