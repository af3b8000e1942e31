"""Train and evaluate one (method, dataset, seed) job, with exact resume.

Layout of a job's folder (``<out>/<dataset>/<method label>--<config hash>/seed<k>/``)::

    run.json         what ran: method spec, preset, constructor kwargs, recipe, dataset record
                     (path, degradation seed/preset, manifest hash, class counts), seed,
                     config hash, settings, command, versions, status
    epochs.csv       one row per training epoch: stage, epoch, lr, optimiser steps, images seen,
                     every loss term, train accuracy, test accuracy and macro-F1 (when
                     evaluated), relabelled items, time
    train.log        the same, one line per epoch (also on stderr when it is not a terminal;
                     TensorBoard scalars in tensorboard/ when tensorboard is installed)
    checkpoint.pt    while training: model, optimiser, scheduler, label table, stage, epoch,
                     history (written atomically after every epoch; removed when the job ends)
    model.pt         the trained model (``models.load_checkpoint`` rebuilds it)
    predictions.npz  test ids, labels, logits (and features); ``clean_*`` on the clean test set
                     for a degraded dataset
    result.json      final metrics (accuracy, best accuracy, macro-F1, per-class accuracy,
                     confusion matrix, confidence, clean accuracy, train time) and the budget
                     (``budget``, ``steps``, ``images_seen``, ``stage_budget``: steps and images
                     per stage)

Length: :meth:`Job.stage_steps` (the run's budget split over the method's stages, see
:mod:`benchmark.budget`); a stage's last epoch stops at its step count.

Determinism: the model is initialised from ``derive_seed(seed, "init")``; each epoch's order
from (seed, stage, epoch); each item's augmentation from (seed, stage, epoch, id); each step's
model randomness (``ctx.generator``) from (seed, stage, epoch, step); the global torch
generator (dropout) is re-seeded from (seed, stage, epoch) at every epoch start; evaluation
noise per item, from (seed, item id) (``ctx.item_seed``), so it does not depend on the
evaluation batch size or the number of ranks. A run stopped after any epoch and started again loads the
checkpoint and continues to the same bits as an uninterrupted run on the same device.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fercore.atomic import atomic_open, atomic_write_text
from fercore.device import resolve_device
from fercore.errors import ConfigError, DataError, TrainingError
from fercore.manifest import write_manifest
from fercore.safeload import torch_load
from fercore.seeding import derive_seed, numpy_rng, seed_everything, torch_generator

from .augment import AugmentConfig, Augmenter, stack_params
from .budget import Budget, DefaultBudget, StageSteps
from .data import ImageTable, augment_seed_keys, epoch_batches, eval_batches, item_meta, limit_records, shard
from .datasets import ResolvedDataset
from .distributed import DistInfo, all_reduce_sum, average_buffers, gather_objects, wrap_model
from .fingerprint import job_code
from .provenance import provenance
from .metrics import classification_metrics
from .specs import ModelPlan, config_hash
from .trainlog import TrainLog

#: Bumped when a change to the pipeline changes results (enters the config hash).
#: 2: evaluation noise per item (seed, item id), no longer per evaluation batch.
#: 3: under a budget, step / multistep / exponential schedules stretched over the budget's epochs.
PIPELINE_VERSION = 3


@dataclass
class RunSettings:
    """Settings of a benchmark run that are not part of a method's recipe.

    Attributes:
        out: the runs folder.
        device: where jobs run: the command's resolved ``torch.device`` (text such as
            ``cuda:1`` or ``auto`` from a Python caller goes through
            :func:`fercore.device.resolve_device` when a job starts).
        workers: decoding processes (results do not depend on it).
        eval_every: evaluate on the test split every N epochs (0: only at the end).
        eval_batch_size: evaluation batch (in the config hash; results do not depend on it since
            evaluation noise is drawn per item).
        eval_clean: for a degraded dataset, also evaluate the final model on the clean test set.
        save_features: keep test features in ``predictions.npz`` (t-SNE figures need them).
        stop_after_epochs: stop each job after this many epochs in this call (its checkpoint
            stays; the next call resumes). For tests and time-limited cluster slots.
        cache_mb: keep a split's decoded images in memory when they fit in this many MiB.
        limit_train, limit_test: class-balanced subsets (smoke runs; part of the config).
        drop_last: drop each epoch's last partial training batch.
        augment: ranges of the generic augmentations.
        force: retrain jobs that already finished.
        landmark_detect: run dlib's face detector before fitting landmarks (unaligned images).
        threads: torch CPU threads (0: torch's default).
    """

    out: Path
    device: torch.device | str = "auto"
    workers: int = 2
    eval_every: int = 1
    eval_batch_size: int = 128
    eval_clean: bool = True
    save_features: bool = True
    stop_after_epochs: int | None = None
    cache_mb: float = 4096.0
    limit_train: int | None = None
    limit_test: int | None = None
    drop_last: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    force: bool = False
    landmark_detect: bool = False
    threads: int = 0

    def config_part(self) -> dict[str, Any]:
        """The settings that change results (they enter the config hash)."""
        return {"eval_batch_size": self.eval_batch_size, "limit_train": self.limit_train,
                "limit_test": self.limit_test, "drop_last": self.drop_last,
                "augment": self.augment.to_dict(), "landmark_detect": self.landmark_detect,
                "pipeline": PIPELINE_VERSION}


@dataclass
class Job:
    """One (method configuration, dataset, seed) and the run's budget.

    ``budget``: a :class:`~benchmark.budget.Budget`, a preset's
    :class:`~benchmark.budget.DefaultBudget` (resolved against the training-set size), or
    ``None`` to train the recipe's epochs (``--epochs``).
    """

    plan: ModelPlan
    dataset: ResolvedDataset
    seed: int
    budget: Budget | DefaultBudget | None = None

    def n_train(self, settings: RunSettings) -> int:
        """Training images of this job (after ``--limit-train``)."""
        return len(limit_records(self.dataset.source.records("train"), settings.limit_train))

    def resolved_budget(self, settings: RunSettings) -> Budget | None:
        """The budget in steps or images (``None``: the recipe's epochs)."""
        if isinstance(self.budget, DefaultBudget):
            return self.budget.resolve(self.n_train(settings))
        return self.budget

    def stage_steps(self, settings: RunSettings) -> list[StageSteps]:
        """Each trained stage's steps, epochs and images (see :mod:`benchmark.budget`)."""
        return self.plan.stage_steps(self.resolved_budget(settings), self.n_train(settings), settings.drop_last)

    def budget_record(self, settings: RunSettings) -> dict[str, Any]:
        """What result.json / run.json record of the budget (planned; the runner adds what was done)."""
        b = self.resolved_budget(settings)
        return {"budget": str(b) if b else None,
                "budget_rule": (self.budget.describe() if isinstance(self.budget, DefaultBudget)
                                else "--budget" if b else "--epochs (per-method epochs)")}

    def config(self, settings: RunSettings) -> dict[str, Any]:
        p = self.plan
        cfg = {"method": p.spec.name, "variant": p.spec.variant, "preset": p.preset,
               "kwargs": p.all_kwargs, "recipe": p.recipe.to_dict(), "dataset": self.dataset.name.name,
               "data": self.dataset.identity, **settings.config_part(),
               "code": job_code(p.spec.name, self.dataset.record)}
        b = self.resolved_budget(settings)
        if b is not None:  # the budget is part of what a job is (epoch runs keep their old identity)
            cfg["budget"] = str(b)
        return cfg

    def hash(self, settings: RunSettings) -> str:
        return config_hash(self.config(settings))

    def cv_hash(self, settings: RunSettings) -> str | None:
        """The config hash with the fold removed: the same for the K fold jobs of one K-fold
        cross-validation (tables average them into one cell); ``None`` without folds. The data
        enter by their fold-free identity (:func:`benchmark.folds.cv_identity`) and the budget
        by its rule (a preset's default resolves against each fold's training-set size)."""
        f = self.dataset.fold
        if f is None:
            return None
        cfg = {**self.config(settings), "data": f.identity, "folds": f.folds}
        if "budget" in cfg:
            cfg["budget"] = self.budget.describe() if isinstance(self.budget, DefaultBudget) else str(self.budget)
        return config_hash(cfg)

    def fold_record(self, settings: RunSettings) -> dict[str, Any]:
        """``fold``, ``folds`` and ``cv_hash`` of result.json (``None`` without folds)."""
        f = self.dataset.fold
        return {"fold": f.fold if f else None, "folds": f.folds if f else None, "cv_hash": self.cv_hash(settings)}

    def run_dir(self, settings: RunSettings) -> Path:
        return (Path(settings.out) / self.dataset.name.name
                / f"{self.plan.spec.dirname}--{self.hash(settings)[:8]}" / f"seed{self.seed}")

    @property
    def dataset_title(self) -> str:
        """The dataset's name, with the fold of a cross-validation (``folder fold 3 of 10``)."""
        f = self.dataset.fold
        return self.dataset.name.name + (f" fold {f.fold} of {f.folds}" if f else "")

    @property
    def title(self) -> str:
        return f"{self.plan.spec.label} on {self.dataset_title}, seed {self.seed}"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")




class _Progress:
    """Rich progress tasks for one job (no-op when ``progress`` is ``None``)."""

    def __init__(self, progress):
        self.p = progress
        self.task = None

    def start(self, description: str, total: int) -> None:
        if self.p is None:
            return
        if self.task is None:
            self.task = self.p.add_task(description, total=total)
        else:
            self.p.reset(self.task, total=total, description=description)

    def advance(self, n: int = 1) -> None:
        if self.p is not None and self.task is not None:
            self.p.advance(self.task, n)

    def close(self) -> None:
        if self.p is not None and self.task is not None:
            self.p.remove_task(self.task)
            self.task = None


class JobRunner:
    """Everything one job needs while it trains (built by :func:`run_job`)."""

    def __init__(self, job: Job, settings: RunSettings, info: DistInfo, progress=None):
        self.job, self.settings, self.info = job, settings, info
        self.seed = job.seed
        self.device = info.place(resolve_device(settings.device))
        if self.device.type == "cuda":  # deterministic cuBLAS (seed_everything asks for determinism)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        self.dir = job.run_dir(settings)
        self.hash = job.hash(settings)
        self.bar = _Progress(progress if info.is_writer else None)

    # ------------------------------------------------------------------ data
    def _split(self, source, split: str, limit: int | None):
        recs = source.records(split)
        return limit_records(recs, limit)

    def build_data(self, model) -> None:
        ds, s = self.job.dataset, self.settings
        src = ds.source
        splits = src.splits()
        if "train" not in splits:
            raise DataError(f"{ds.name.name} has no training split", src.root)
        test_split = "test" if "test" in splits else ("val" if "val" in splits else None)
        if test_split is None:
            raise DataError(f"{ds.name.name} has no test (or val) split", src.root)
        self.test_split = test_split
        size = model.recipe.input_size
        self.augmenter = Augmenter(model.recipe.augment, size, s.augment)
        name = ds.name.name
        self.train = ImageTable(src, self._split(src, "train", s.limit_train), size, workers=s.workers,
                                cache_mb=s.cache_mb, description=f"loading {name} train")
        self.test = ImageTable(src, self._split(src, test_split, s.limit_test), size, workers=s.workers,
                               cache_mb=s.cache_mb, description=f"loading {name} {test_split}")
        self.clean = None
        if ds.clean is not None and s.eval_clean:
            ids = set(self.test.ids)
            recs = [r for r in ds.clean.records(test_split) if r.id in ids]
            self.clean = ImageTable(ds.clean, recs, size, workers=s.workers, cache_mb=s.cache_mb,
                                    description=f"loading clean {test_split}")
        self.landmarks: dict[str, torch.Tensor | None] = {"train": None, "test": None, "clean": None}
        if "landmarks" in getattr(model, "requires", frozenset()):
            self.landmarks = {k: self._landmarks(t) for k, t in
                              (("train", self.train), ("test", self.test), ("clean", self.clean))}
        self.meta: dict[str, list[dict[str, str]] | None] = {"train": None, "test": None, "clean": None}
        if "meta" in getattr(model, "requires", frozenset()):
            self.meta = {k: item_meta(t.source, t.ids) if t is not None else None for k, t in
                         (("train", self.train), ("test", self.test), ("clean", self.clean))}

    def _landmarks(self, table: ImageTable | None) -> torch.Tensor | None:
        if table is None:
            return None
        from fercore.landmarks import landmarks_for
        from fercore.cache import cache_dir

        cdir = cache_dir() / "landmarks"
        # rank 0 computes and caches; the other ranks read the cache after the barrier
        arr = (landmarks_for(table.source, table.records, cdir, detect=self.settings.landmark_detect)
               if self.info.is_writer else None)
        self.info.barrier()
        if arr is None:
            arr = landmarks_for(table.source, table.records, cdir, detect=self.settings.landmark_detect)
        return torch.from_numpy(np.asarray(arr, dtype=np.float32))

    def make_batch(self, table: ImageTable, pos: np.ndarray, imgs: torch.Tensor, rows: list[dict],
                   labels: torch.Tensor, landmarks: torch.Tensor | None,
                   meta: list[dict[str, str]] | None = None) -> dict[str, Any]:
        x = imgs.to(self.device, non_blocking=True).float().div_(255.0)
        lm = landmarks[torch.as_tensor(pos)].to(self.device) if landmarks is not None else None
        x, lm = self.augmenter(x, stack_params(rows, self.device), lm)
        idx = torch.as_tensor(pos, dtype=torch.long)
        batch = {"image": x, "label": labels[idx].to(self.device), "index": idx.to(self.device),
                 "id": [table.ids[i] for i in pos]}
        if lm is not None:
            batch["landmarks"] = lm
        if meta is not None:
            batch["meta"] = [meta[i] for i in pos]
        return batch

    # ------------------------------------------------------------- training
    def train_epoch(self, model, optimizer, stage: str, epoch: int, labels: torch.Tensor,
                    step_module=None, steps: int | None = None) -> dict[str, Any]:
        """One epoch of ``stage`` (its first ``steps`` batches when given: a budget's last,
        partial epoch); ``step_module`` is the DDP-wrapped step under ``torchrun``.

        Loss terms and hits stay on the device until the epoch ends (one sync per epoch, not
        per step).
        """
        from models.base import StepContext
        from models.train import train_step

        info, s = self.info, self.settings
        recipe = model.recipe
        model.train()
        rank_key = (info.rank,) if info.enabled else ()
        torch.manual_seed(derive_seed(self.seed, "global", stage, epoch, *rank_key))
        batches = epoch_batches(len(self.train), recipe.batch_size, self.seed, stage, epoch,
                                drop_last=s.drop_last)
        local = [shard(b, info.rank, info.world) for b in batches[:steps]]
        terms: dict[str, list[torch.Tensor]] = {}
        sizes: list[int] = []
        hits: list[torch.Tensor] = []
        relabel: list[tuple[np.ndarray, torch.Tensor]] = []
        self.bar.start(f"{self.job.title}: {stage} epoch {epoch + 1}", len(local))
        for step, (pos, imgs) in enumerate(self.train.iter_batches(local)):
            rows = [self.augmenter.draw(numpy_rng(*augment_seed_keys(self.seed, stage, epoch, self.train.ids[i])))
                    for i in pos]
            batch = self.make_batch(self.train, pos, imgs, rows, labels, self.landmarks["train"], self.meta["train"])
            ctx = StepContext(epoch=epoch, step=step, stage=stage,
                              generator=torch_generator(self.seed, "step", stage, epoch, step, *rank_key))
            out = train_step(model, optimizer, batch, ctx, grad_clip=recipe.grad_clip, step=step_module)
            for k, v in out.losses.items():
                terms.setdefault(k, []).append(v.reshape(()))
            sizes.append(len(pos))
            hits.append((out.logits.argmax(1) == batch["label"]).sum())
            new = out.extras.get("new_labels") if out.extras else None
            if new is not None:
                relabel.append((pos, torch.as_tensor(new).detach()))
            self.bar.advance()
        sums: dict[str, float] = {}
        for k, vals in terms.items():  # the same float64 sums as adding float(v) * n step by step
            total = 0.0
            for v, n in zip(torch.stack(vals).double().cpu().tolist(), sizes):
                total += v * n
            sums[k] = total
        correct = int(torch.stack(hits).sum()) if hits else 0
        count = sum(sizes)
        pending: dict[int, int] = {}
        for pos, new in relabel:
            for i, lab in zip(pos.tolist(), new.view(-1).tolist()):
                pending[int(i)] = int(lab)
        keys = sorted(sums)
        if info.enabled:  # every rank has the same loss names (same model, same stage)
            tot = all_reduce_sum([sums[k] for k in keys] + [correct, count], self.device)
            sums = dict(zip(keys, tot[:len(keys)]))
            correct, count = tot[-2], tot[-1]
            merged: dict[int, int] = {}
            for part in gather_objects(pending, info):
                merged.update(part)
            pending = merged
        changed = 0
        for i, lab in sorted(pending.items()):
            if int(labels[i]) != lab:
                labels[i] = lab
                changed += 1
        row = {f"loss_{k}": sums[k] / max(count, 1) for k in keys}
        row["train_loss"] = sum(row.values())
        row["train_acc"] = 100.0 * correct / max(count, 1)
        row["relabelled"] = changed
        row["steps"] = len(local)
        row["images"] = int(count)
        return row

    # ----------------------------------------------------------- evaluation
    @torch.no_grad()
    def evaluate(self, model, table: ImageTable, landmarks: torch.Tensor | None,
                 description: str, meta: list[dict[str, str]] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits (and features) of every item of ``table``, in order, on every rank."""
        from models.base import StepContext

        info = self.info
        model.eval()
        batches = eval_batches(len(table), self.settings.eval_batch_size)
        mine = [bi for bi in range(len(batches)) if bi % info.world == info.rank]
        labels = torch.as_tensor(table.labels)
        logits: dict[int, np.ndarray] = {}
        feats: dict[int, np.ndarray] = {}
        self.bar.start(description, len(mine))
        for bi, (pos, imgs) in zip(mine, table.iter_batches([batches[b] for b in mine])):
            batch = self.make_batch(table, pos, imgs, self.augmenter.eval_rows(len(pos)), labels, landmarks, meta)
            ctx = StepContext(epoch=0, step=bi, stage=model.stage, item_seed=derive_seed(self.seed, "eval"))
            out = model.predict(batch, ctx)
            logits[bi] = out.logits.detach().float().cpu().numpy()
            if out.features is not None and self.settings.save_features:
                feats[bi] = out.features.detach().float().reshape(len(pos), -1).cpu().numpy()
            self.bar.advance()
        if info.enabled:
            for part_logits, part_feats in gather_objects((logits, feats), info):
                logits.update(part_logits)
                feats.update(part_feats)
        lg = np.concatenate([logits[b] for b in range(len(batches))])
        ft = np.concatenate([feats[b] for b in range(len(batches))]) if len(feats) == len(batches) else None
        return lg, ft

    # ------------------------------------------------------------------ run
    def run(self) -> dict[str, Any]:
        from models import save_checkpoint
        from models.train import build_optimizer, build_scheduler

        job, s, info = self.job, self.settings, self.info
        plan = job.plan
        d = self.dir
        done = _read_json(d / "result.json")
        if done is not None and done.get("config_hash") == self.hash and not s.force:
            return {**done, "status": "skipped"}
        info.barrier()
        if info.is_writer:
            d.mkdir(parents=True, exist_ok=True)
            if s.force:
                for name in ("result.json", "checkpoint.pt", "model.pt", "predictions.npz", "epochs.csv", "train.log"):
                    (d / name).unlink(missing_ok=True)
        info.barrier()
        if s.threads:
            torch.set_num_threads(s.threads)
        ckpt_path = d / "checkpoint.pt"
        ckpt = None
        if ckpt_path.is_file():
            try:  # never runs code from the file: a planted checkpoint.pt is refused, not executed
                ckpt = torch_load(ckpt_path, what="checkpoint")
            except DataError as exc:
                raise DataError(f"{str(exc).split(': ', 1)[-1]}; delete it to restart the job", ckpt_path) from None
            if not isinstance(ckpt, dict) or ckpt.get("config_hash") != self.hash:
                ckpt = None
        num_classes = len(job.dataset.classes)
        seed_everything(derive_seed(self.seed, "init"))
        model = plan.build(num_classes, job.dataset.classes)
        stages = job.stage_steps(s)
        if ckpt is not None:
            for st in stages[: ckpt["stage_index"] + 1]:
                model.begin_stage(st.stage)
            model.load_state_dict(ckpt["state_dict"])
        model.to(self.device)
        self.build_data(model)
        if info.world > min(model.recipe.batch_size, len(self.train)):
            raise ConfigError(f"{info.world} ranks need batches of at least {info.world} items "
                              f"(batch_size {model.recipe.batch_size}, {len(self.train)} training images)",
                              flag="--batch-size")
        labels = torch.as_tensor(self.train.labels).clone()
        history: list[dict[str, Any]] = []
        train_time = 0.0
        start_stage, start_epoch = 0, 0
        if ckpt is not None:
            labels = ckpt["labels"].clone()
            history = list(ckpt["history"])
            train_time = float(ckpt["train_time"])
            start_stage, start_epoch = int(ckpt["stage_index"]), int(ckpt["epoch_done"])
        if info.is_writer:
            self._write_run_json(model, "running", stages)
        log = TrainLog(d, job.title, enabled=info.is_writer)
        epochs_now = 0
        last_eval: tuple[np.ndarray, np.ndarray | None] | None = None
        total_before = [sum(x.epochs for x in stages[:i]) for i in range(len(stages))]
        last_stage = len(stages) - 1
        try:
            for si in range(start_stage, len(stages)):
                st = stages[si]
                stage, n_ep = st.stage, st.epochs
                first = start_epoch if si == start_stage and ckpt is not None else 0
                if first >= n_ep:
                    continue
                if not (ckpt is not None and si == start_stage):
                    model.begin_stage(stage)
                optimizer = build_optimizer(model, model.recipe)
                scheduler = build_scheduler(optimizer, model.recipe, epochs=st.schedule_epochs, scale=st.schedule_scale)
                if ckpt is not None and si == start_stage and first > 0:
                    optimizer.load_state_dict(ckpt["optimizer"])
                    scheduler.load_state_dict(ckpt["scheduler"])
                step_module = wrap_model(model, info, self.device)
                for epoch in range(first, n_ep):
                    lr = float(optimizer.param_groups[0]["lr"])
                    t0 = time.perf_counter()
                    n_steps = st.steps_in_epoch(epoch)
                    row = self.train_epoch(model, optimizer, stage, epoch, labels, step_module,
                                           steps=n_steps if n_steps < st.steps_per_epoch else None)
                    if not math.isfinite(row["train_loss"]):
                        raise TrainingError(f"{job.title}: the training loss became {row['train_loss']} in stage "
                                            f"{stage} epoch {epoch + 1} (overall epoch {total_before[si] + epoch + 1}); "
                                            "lower the learning rate (--lr) or check the data", flag="--lr")
                    model.end_epoch(epoch, stage)
                    scheduler.step()
                    average_buffers(model, info.world)
                    dt = time.perf_counter() - t0
                    train_time += dt
                    final = si == last_stage and epoch == n_ep - 1
                    row = {"stage": stage, "stage_epoch": epoch + 1, "epoch": total_before[si] + epoch + 1,
                           "lr": lr, **row, "test_acc": None, "test_macro_f1": None, "epoch_time_s": round(dt, 3)}
                    if final or (s.eval_every > 0 and (epoch + 1) % s.eval_every == 0):
                        last_eval = self.evaluate(model, self.test, self.landmarks["test"],
                                                  f"{job.title}: eval {stage} epoch {epoch + 1}", self.meta["test"])
                        m = classification_metrics(last_eval[0], self.test.labels, job.dataset.classes)
                        row["test_acc"], row["test_macro_f1"] = m["accuracy"], m["macro_f1"]
                    history.append(row)
                    if info.is_writer:
                        save_checkpoint(model, ckpt_path, config_hash=self.hash, stage_index=si,
                                        epoch_done=epoch + 1, optimizer=optimizer.state_dict(),
                                        scheduler=scheduler.state_dict(), labels=labels, history=history,
                                        train_time=train_time)
                        self._write_epochs(history)
                        log.epoch(row, st, sum(int(r.get("steps", 0)) for r in history))
                    info.barrier()
                    epochs_now += 1
                    if s.stop_after_epochs is not None and epochs_now >= s.stop_after_epochs and not final:
                        self.bar.close()
                        return {"status": "stopped", "run_dir": str(d), "epochs_done": total_before[si] + epoch + 1}
        finally:
            log.close()
        self.bar.close()
        return self._finish(model, history, train_time, stages, last_eval)

    def _finish(self, model, history, train_time, stages, last_eval) -> dict[str, Any]:
        from models import save_checkpoint

        job, info, d = self.job, self.info, self.dir
        classes = job.dataset.classes
        t0 = time.perf_counter()
        if last_eval is None:
            last_eval = self.evaluate(model, self.test, self.landmarks["test"], f"{job.title}: test",
                                      self.meta["test"])
        logits, feats = last_eval
        m = classification_metrics(logits, self.test.labels, classes)
        clean = None
        if self.clean is not None:
            cl, cf = self.evaluate(model, self.clean, self.landmarks["clean"], f"{job.title}: clean test",
                                   self.meta["clean"])
            clean = (cl, cf, classification_metrics(cl, self.clean.labels, classes))
        self.bar.close()
        eval_time = time.perf_counter() - t0
        # best of the final stage only: an earlier stage may predict with the label (LRDif's
        # stage 1 is the paper's oracle row), which is not the trained method's accuracy
        final_stage = stages[-1].stage
        accs = [(r["test_acc"], r["epoch"]) for r in history
                if r.get("test_acc") is not None and r.get("stage", final_stage) == final_stage]
        best_acc, best_epoch = max(accs, key=lambda t: (t[0], -t[1])) if accs else (m["accuracy"], len(history))
        spec = job.plan.spec
        result = {
            "config_hash": self.hash, "method": spec.name, "variant": spec.variant, "preset": job.plan.preset,
            "options": spec.options_dict, "label": spec.label, "dataset": job.dataset.name.name,
            "seed": job.seed, **job.fold_record(self.settings), "classes": list(classes),
            "test_split": self.test_split,
            "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "per_class_accuracy": m["per_class_accuracy"],
            "confusion": m["confusion"], "mean_confidence": m["mean_confidence"], "n_test": m["n"],
            "n_train": len(self.train), "best_accuracy": best_acc, "best_epoch": best_epoch,
            "epochs": sum(st.epochs for st in stages), **self._budget_done(history, stages),
            "train_time_s": round(train_time, 3),
            "eval_time_s": round(eval_time, 3), "model_kwargs": job.plan.all_kwargs,
            "clean_accuracy": clean[2]["accuracy"] if clean else None,
            "clean_macro_f1": clean[2]["macro_f1"] if clean else None,
            "clean_mean_confidence": clean[2]["mean_confidence"] if clean else None,
            "dataset_copy": {k: job.dataset.record.get(k) for k in
                             ("how", "root", "seed", "preset", "manifest_sha256", "factory")},
            "run_dir": str(d),
        }
        if info.is_writer:
            arrays: dict[str, np.ndarray] = {"ids": np.array(self.test.ids), "labels": self.test.labels,
                                             "logits": logits.astype(np.float32)}
            if feats is not None:
                arrays["features"] = feats.astype(np.float32)
            if clean is not None:
                arrays.update(clean_ids=np.array(self.clean.ids), clean_labels=self.clean.labels,
                              clean_logits=clean[0].astype(np.float32))
                if clean[1] is not None:
                    arrays["clean_features"] = clean[1].astype(np.float32)
            with atomic_open(d / "predictions.npz", "wb") as fh:
                np.savez_compressed(fh, **arrays)
            save_checkpoint(model, d / "model.pt", config_hash=self.hash)
            _write_json(d / "result.json", result)
            self._write_run_json(model, "done", stages)
            (d / "checkpoint.pt").unlink(missing_ok=True)
        info.barrier()
        return {**result, "status": "done"}

    def _budget_done(self, history: list[dict[str, Any]], stages: list[StageSteps]) -> dict[str, Any]:
        """The budget and what was trained: steps and images seen in total and per stage."""
        per_stage = []
        for st in stages:
            rows = [r for r in history if r.get("stage") == st.stage]
            per_stage.append({"stage": st.stage, "steps": sum(int(r.get("steps", 0)) for r in rows),
                              "images": sum(int(r.get("images", 0)) for r in rows), "epochs": len(rows),
                              "planned_steps": st.steps})
        return {**self.job.budget_record(self.settings), "steps": sum(p["steps"] for p in per_stage),
                "images_seen": sum(p["images"] for p in per_stage), "stage_budget": per_stage}

    def _write_epochs(self, history: list[dict[str, Any]]) -> None:
        head = ["stage", "stage_epoch", "epoch", "lr", "steps", "images"]
        tail = ["train_loss", "train_acc", "relabelled", "test_acc", "test_macro_f1", "epoch_time_s"]
        losses = sorted({k for r in history for k in r if k.startswith("loss_")})
        write_manifest(self.dir / "epochs.csv", history, head + losses + tail, sort_key=None)

    def _write_run_json(self, model, status: str, stages) -> None:
        job, s = self.job, self.settings
        spec = job.plan.spec
        data = {
            "status": status, "config_hash": self.hash, "label": spec.label, "method": spec.name,
            "variant": spec.variant, "preset": job.plan.preset, "options": spec.options_dict,
            "model_kwargs": job.plan.all_kwargs, "recipe": model.recipe.to_dict(),
            "stages": [x.to_dict() for x in stages], **job.budget_record(s),
            "seed": job.seed, "dataset": job.dataset.record,
            "config": job.config(s), "device": str(self.device), "world_size": self.info.world,
            "settings": {"workers": s.workers, "eval_every": s.eval_every, "eval_clean": s.eval_clean,
                         "cache_mb": s.cache_mb, "threads": s.threads},
            "command": sys.argv, **provenance(),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        _write_json(self.dir / "run.json", data)


def run_job(job: Job, settings: RunSettings, info: DistInfo | None = None, progress=None) -> dict[str, Any]:
    """Train and evaluate ``job`` (or resume it, or skip it when finished); returns its result."""
    return JobRunner(job, settings, info or DistInfo(), progress).run()


def record_failure(job: Job, settings: RunSettings, exc: BaseException) -> dict[str, Any]:
    """Mark a job as failed in its ``run.json`` (the run continues with the next job)."""
    d = job.run_dir(settings)
    d.mkdir(parents=True, exist_ok=True)
    prev = _read_json(d / "run.json") or {}
    prev.update(status="failed", error=f"{type(exc).__name__}: {exc}", label=job.plan.spec.label,
                dataset=job.dataset.record, seed=job.seed, config_hash=job.hash(settings))
    _write_json(d / "run.json", prev)
    return {"status": "failed", "error": prev["error"], "label": job.plan.spec.label,
            "dataset": job.dataset.name.name, "seed": job.seed, **job.fold_record(settings), "run_dir": str(d)}
