"""Per-epoch training log: a line per epoch in the job folder, on stderr, and in TensorBoard.

Every finished epoch writes one line (stage, epoch, steps, images, loss, train and test
accuracy, seconds) to

* ``train.log`` in the job folder (appended, one ``write`` per line; rank 0 only);
* stderr when stderr is not a terminal (a batch scheduler's log file; on a terminal the
  progress bars show the same);
* TensorBoard scalars under ``<job folder>/tensorboard`` when ``tensorboard`` is installed
  (``pip install 'fer-toolkit[tensorboard]'``; skipped silently otherwise), against the
  job's optimiser step.

A line reads::

    scn on sample, seed 0 | stage=main epoch=3/7 steps=52 images=1664 loss=1.2345 train_acc=45.67 test_acc=40.00 s=12.3
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

LOG_NAME = "train.log"


def format_epoch(title: str, row: dict[str, Any], stage_epochs: int) -> str:
    """One epoch's line (``row`` is the epoch's epochs.csv row); see the module docstring."""
    test = row.get("test_acc")
    return (f"{title} | stage={row['stage']} epoch={row['stage_epoch']}/{stage_epochs} steps={row['steps']} "
            f"images={row['images']} loss={row['train_loss']:.4f} train_acc={row['train_acc']:.2f} "
            f"test_acc={'-' if test is None else f'{test:.2f}'} s={row['epoch_time_s']:.1f}")


def parse_line(line: str) -> dict[str, str]:
    """The ``key=value`` fields of a log line (tests, scripts)."""
    return dict(part.split("=", 1) for part in line.split(" | ", 1)[1].split() if "=" in part)


def _summary_writer(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # noqa: BLE001 -- tensorboard missing (or broken): the log file is enough
        return None
    return SummaryWriter(log_dir=str(folder))


class TrainLog:
    """The log of one job (``enabled`` only on rank 0)."""

    def __init__(self, job_dir: Path, title: str, enabled: bool = True, stream=None):
        self.path = Path(job_dir) / LOG_NAME
        self.title = title
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tb = _summary_writer(Path(job_dir) / "tensorboard") if enabled else None

    def _to_stream(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return not (isatty is not None and isatty())

    def epoch(self, row: dict[str, Any], stage, global_step: int) -> None:
        """Record one finished epoch (``stage``: its :class:`~benchmark.budget.StageSteps`;
        ``global_step``: the job's optimiser steps so far, the TensorBoard x axis)."""
        if not self.enabled:
            return
        line = format_epoch(self.title, row, stage.epochs) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
        if self._to_stream():
            self.stream.write(line)
            self.stream.flush()
        if self.tb is not None:
            for key in ("train_loss", "train_acc", "test_acc", "lr"):
                if row.get(key) is not None:
                    self.tb.add_scalar(f"{row['stage']}/{key}", float(row[key]), global_step)
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
            self.tb = None
