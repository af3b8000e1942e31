"""``fer-bench weights check``: what a pretrained weights file loads into a backbone or method."""

from __future__ import annotations

from typing import Any

from fercore.errors import ConfigError


def check_weights(path: str, backbone: str | None = None, method: str | None = None,
                  preset: str | None = None) -> Any:
    """Load ``path`` into ``backbone`` (or into the backbone / whole network of ``method``)
    and return the :class:`~models.backbones.LoadReport`."""
    from models import create_model
    from models.backbones import create_backbone, load_pretrained

    if (backbone is None) == (method is None):
        raise ConfigError("give exactly one of --backbone or --method", flag="--backbone")
    if backbone is not None:
        return load_pretrained(create_backbone(backbone), path, verbose=False)
    # the same code path as training with `--model-opt pretrained=PATH`
    model = create_model(method, preset=preset, pretrained=path)
    report = getattr(model, "pretrained_report", None)
    if report is None:
        report = getattr(getattr(model, "backbone", None), "pretrained_report", None)
    if report is None:
        raise ConfigError(f"{method} did not load pretrained weights", flag="--method")
    return report


def print_weights_report(report: Any, console, show_all: bool = False) -> None:
    from rich.table import Table

    t = Table(title=f"{report.path}  (keys {report.rename})")
    t.add_column("tensors")
    t.add_column("count", justify="right")
    t.add_column("names" if show_all else "first names")
    limit = None if show_all else 6

    def names(keys):
        keys = list(keys)
        shown = keys if limit is None else keys[:limit]
        more = "" if limit is None or len(keys) <= limit else f" ... (+{len(keys) - limit})"
        return ", ".join(shown) + more

    t.add_row("loaded", str(len(report.loaded)), names(report.loaded))
    t.add_row("missing (stay at their initial values)", str(len(report.missing)), names(report.missing))
    t.add_row("shape mismatch (skipped)", str(len(report.mismatched)),
              names(f"{k} {a}->{b}" for k, a, b in report.mismatched))
    t.add_row("unused from the file", str(len(report.unexpected)), names(report.unexpected))
    console.print(t)
