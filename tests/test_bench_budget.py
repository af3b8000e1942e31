"""One training budget for every method: resolution, stage split, exact steps, logs, dry-run."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bench_testmodel import registered
from benchmark.budget import (Budget, DefaultBudget, PRESET_BUDGETS, epoch_shape, parse_budget, split_steps,
                              stage_steps)
from fercore.errors import ConfigError

TINY = ["--input-size", "32", "--limit-train", "224", "--limit-test", "112", "--workers", "0",
        "--threads", "1", "--eval-batch-size", "64"]


def invoke(args, expect: int = 0):
    from benchmark.cli import main

    res = CliRunner().invoke(main, args, catch_exceptions=False, env={"COLUMNS": "400", "FER_PROGRESS": "0"})
    assert res.exit_code == expect, res.output
    return res


@pytest.fixture(scope="module")
def bench_models():
    with registered():
        yield


# ------------------------------------------------------------------ resolution
@pytest.mark.parametrize("text, amount, unit", [
    ("600", 600, "steps"), ("600steps", 600, "steps"), ("1step", 1, "steps"), ("40000img", 40000, "images"),
    (" 40000 images ", 40000, "images"), ("7IMG", 7, "images")])
def test_parse_budget(text, amount, unit):
    b = parse_budget(text)
    assert (b.amount, b.unit) == (amount, unit)
    assert parse_budget(str(b)) == b


@pytest.mark.parametrize("text", ["0", "-5", "5epochs", "abc", "1.5", ""])
def test_bad_budget_names_the_flag(text):
    with pytest.raises(ConfigError, match="--budget"):
        parse_budget(text)


def test_budget_steps_per_batch_size():
    assert Budget(600).steps(32) == Budget(600).steps(256) == 600
    assert Budget(40000, "images").steps(32) == 1250 and Budget(40000, "images").steps(64) == 625
    assert Budget(100, "images").steps(64) == 2  # a started batch is a step


def test_preset_default_scales_with_the_set_with_a_floor_of_steps():
    tiny = PRESET_BUDGETS["tiny"]
    assert tiny.resolve(1680) == Budget(7 * 1680, "images")  # the sample set: 7 epochs
    assert Budget(7 * 1680, "images").steps(32) == 368
    small = tiny.resolve(171)  # a JAFFE-sized training set: the floor, not 7 x 171 = 1197 images
    assert small == Budget(tiny.min_steps * 32, "images") and small.steps(32) == tiny.min_steps == 300
    assert DefaultBudget(2.5, 10, 8).resolve(1000) == Budget(2500, "images")


# ------------------------------------------------------------------ stage split
def test_split_steps_adds_up_and_follows_the_shares():
    assert split_steps(368, [("s1", 1), ("s2", 6)]) == [("s1", 53), ("s2", 315)]
    assert split_steps(10, [("a", 1), ("b", 1), ("c", 1)]) == [("a", 4), ("b", 3), ("c", 3)]
    assert split_steps(7, [("a", 0), ("b", 2)]) == [("a", 0), ("b", 7)]
    for total in range(1, 60):
        parts = split_steps(total, [("la-clip", 8), ("s1", 1), ("s2", 3)])
        assert sum(n for _, n in parts) == total
    with pytest.raises(ConfigError):
        split_steps(5, [("a", 0)])


def test_recipe_stage_shares():
    from models.recipe import Recipe

    r = Recipe(stage_epochs={"s1": 1, "s2": 6})
    assert r.stage_shares(("s1", "s2")) == [("s1", 1.0), ("s2", 6.0)]
    assert r.replace(stage_share={"s1": 1, "s2": 1}).stage_shares(("s1", "s2")) == [("s1", 1.0), ("s2", 1.0)]
    assert Recipe().stage_shares(("main",)) == [("main", 1.0)]
    assert "stage_share" not in Recipe().to_dict()  # unset: old recipes keep their config hash
    assert Recipe.from_dict(r.replace(stage_share={"s2": 2}).to_dict()).stage_share == {"s2": 2}
    with pytest.raises(ConfigError, match="stage_share"):
        Recipe(stage_share={"s1": -1, "s2": 1})
    with pytest.raises(ConfigError, match="stage_share"):
        Recipe(stage_share={"s1": 0})


def test_stage_steps_last_epoch_is_partial():
    st = stage_steps("s1", 10, 100, 32)  # 3 batches of 32 per epoch (the rest dropped)
    assert (st.steps_per_epoch, st.epochs, st.images) == (3, 4, 320)
    assert [st.steps_in_epoch(e) for e in range(st.epochs)] == [3, 3, 3, 1]
    assert st.schedule_epochs == pytest.approx(10 / 3)
    keep = stage_steps("s1", 10, 100, 32, drop_last=False)  # 32, 32, 32, 4 per epoch
    assert (keep.steps_per_epoch, keep.epochs, keep.images) == (4, 3, 2 * 100 + 64)
    assert epoch_shape(20, 32) == (1, [20])  # a set smaller than a batch: one batch of all of it


def test_plan_stage_steps_and_epoch_mode():
    from benchmark.specs import MethodSpec, RecipeOverrides, plan_model

    plan = plan_model(MethodSpec("lrdif"), RecipeOverrides(), "tiny")
    st = plan.stage_steps(Budget(11760, "images"), 1680)
    assert [(s.stage, s.steps) for s in st] == [("s1", 53), ("s2", 315)]
    assert sum(s.images for s in st) == 368 * 32
    ep = plan_model(MethodSpec("lrdif"), RecipeOverrides(epochs=2), "tiny").stage_steps(None, 1680)
    assert [(s.stage, s.steps, s.epochs) for s in ep] == [("s1", 104, 2), ("s2", 104, 2)]
    with pytest.raises(ConfigError, match="--budget"):
        RecipeOverrides(epochs=2, budget=Budget(10))
    with pytest.raises(ConfigError, match="stage_share"):
        plan_model(MethodSpec("cnn"), RecipeOverrides(fields=(("stage_share", {"nope": 1}),)), "tiny")


def test_every_method_of_a_run_gets_the_same_budget(sample_root, tmp_path):
    from benchmark.datasets import DataSettings, resolve_in_order
    from benchmark.distributed import DistInfo
    from benchmark.plan import plan_jobs
    from benchmark.runner import RunSettings
    from benchmark.specs import RecipeOverrides, parse_methods

    ds = resolve_in_order(["sample"], DataSettings(device=torch.device("cpu"), workers=0), DistInfo())
    specs = parse_methods("cnn,scn,lrdif")
    settings = RunSettings(tmp_path)
    jobs = plan_jobs(specs, ds, [0], RecipeOverrides(), None)
    assert {str(j.resolved_budget(settings)) for j in jobs} == {"11760img"}
    # every method sees the same images (cnn's batch is 64, the others' 32)
    assert {sum(s.images for s in j.stage_steps(settings)) for j in jobs} == {368 * 32}
    hashes = {j.hash(settings) for j in jobs}
    other = plan_jobs(specs, ds, [0], RecipeOverrides(budget=Budget(600)), None)
    assert {j.stage_steps(settings)[-1].steps for j in other if j.plan.spec.name != "lrdif"} == {600}
    assert not hashes & {j.hash(settings) for j in other}  # the budget is part of a job's identity
    small = RunSettings(tmp_path, limit_train=140)
    assert str(jobs[0].resolved_budget(small)) == "9600img"  # the floor: 300 steps of 32
    assert all(j.budget is None for j in plan_jobs(specs, ds, [0], RecipeOverrides(epochs=3), None))


# ------------------------------------------------------------------ the runner
def _job(out: Path) -> Path:
    (d,) = list(out.glob("sample/*/seed*"))
    return d


def _epochs(d: Path) -> list[dict]:
    with open(d / "epochs.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_runner_trains_exactly_the_budget_and_logs_each_epoch(bench_models, tmp_path):
    """benchtest (shares s1:2, s2:1), 224 images in batches of 32 (7 per epoch), 20 steps:
    s1 13 steps (epochs of 7 + 6), s2 7 steps; resumed after a partial epoch to the same bits."""
    from benchmark.trainlog import parse_line

    args = ["run", "--methods", "benchtest@tiny", "--datasets", "sample", "--budget", "20", "--no-report", *TINY]
    invoke([*args, "--out", str(tmp_path / "a")])
    d = _job(tmp_path / "a")
    ep = _epochs(d)
    assert [(r["stage"], int(r["steps"]), int(r["images"])) for r in ep] == [
        ("s1", 7, 224), ("s1", 6, 192), ("s2", 7, 224)]
    res = json.loads((d / "result.json").read_text())
    assert (res["budget"], res["steps"], res["images_seen"]) == ("20steps", 20, 640)
    assert [(s["stage"], s["steps"], s["images"], s["epochs"]) for s in res["stage_budget"]] == [
        ("s1", 13, 416, 2), ("s2", 7, 224, 1)]
    run = json.loads((d / "run.json").read_text())
    assert run["budget"] == "20steps" and [s["steps"] for s in run["stages"]] == [13, 7]
    with open(tmp_path / "a" / "results.csv", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert (row["budget"], row["steps"], row["images_seen"]) == ("20steps", "20", "640")
    # train.log: one line per epoch with that epoch's numbers from epochs.csv
    lines = (d / "train.log").read_text().splitlines()
    assert len(lines) == len(ep)
    for line, r in zip(lines, ep):
        f = parse_line(line)
        assert (f["stage"], f["steps"], f["images"]) == (r["stage"], r["steps"], r["images"])
        assert f["epoch"] == f"{r['stage_epoch']}/{2 if r['stage'] == 's1' else 1}"
        assert float(f["loss"]) == pytest.approx(float(r["train_loss"]), abs=5e-5)
        assert float(f["train_acc"]) == pytest.approx(float(r["train_acc"]), abs=6e-3)
        assert float(f["test_acc"]) == pytest.approx(float(r["test_acc"]), abs=6e-3)
    # the tables say which budget their cells trained
    invoke(["tables", "--runs", str(tmp_path / "a"), "--fill", "SCN=benchtest@tiny"])
    noted = [p.name for p in (tmp_path / "a" / "tables").glob("*.md") if "Training budget: 20steps." in p.read_text()]
    assert "sample-lrdif-table1.md" in noted and not any(p.startswith("lrdif-") for p in noted)
    # stopped after the first (full) epoch, then after the partial one, then finished
    for _ in range(2):
        invoke([*args, "--out", str(tmp_path / "b"), "--stop-after-epochs", "1"])
    invoke([*args, "--out", str(tmp_path / "b")])
    db = _job(tmp_path / "b")
    rb = json.loads((db / "result.json").read_text())
    assert (rb["accuracy"], rb["confusion"], rb["steps"]) == (res["accuracy"], res["confusion"], 20)
    drop_time = lambda rows: [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in rows]  # noqa: E731
    assert drop_time(_epochs(db)) == drop_time(ep)
    assert len((db / "train.log").read_text().splitlines()) == 3


def test_dry_run_prints_the_budget(bench_models, tmp_path):
    res = invoke(["run", "--methods", "benchtest@tiny,cnn", "--datasets", "sample", "--budget", "640img",
                  "--dry-run", "--out", str(tmp_path), *TINY])
    out = " ".join(res.output.split())
    assert "640img" in out and "s1:13+s2:7 steps" in out and "10 steps" in out  # cnn: batch 64
    assert not list(tmp_path.iterdir())
    res = invoke(["run", "--methods", "cnn", "--datasets", "sample", "--dry-run", "--out", str(tmp_path), *TINY])
    assert "9600img" in res.output and "300 steps" not in res.output  # 224 images: the floor; cnn at 64: 150
    assert "150 steps" in res.output
    res = invoke(["run", "--methods", "cnn", "--datasets", "sample", "--epochs", "2", "--dry-run",
                  "--out", str(tmp_path), *TINY])
    assert "--epochs" in res.output and "6 steps" in res.output  # 224 // 64 = 3 per epoch


def test_budget_and_epochs_together_is_an_error(tmp_path):
    from benchmark.cli import main

    res = CliRunner().invoke(main, ["run", "--methods", "cnn", "--datasets", "sample", "--budget", "10",
                                    "--epochs", "2", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--budget" in res.output


# ------------------------------------------------------------------ the log
class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_train_log_goes_to_stderr_only_when_it_is_not_a_terminal(tmp_path, monkeypatch):
    import benchmark.trainlog as tl
    from benchmark.budget import stage_steps as mk

    scalars = []

    class Writer:
        def add_scalar(self, tag, value, step):
            scalars.append((tag, value, step))

        def flush(self):
            pass

        def close(self):
            pass

    monkeypatch.setattr(tl, "_summary_writer", lambda folder: Writer())
    row = {"stage": "main", "stage_epoch": 2, "steps": 5, "images": 160, "train_loss": 1.23456,
           "train_acc": 40.0, "test_acc": None, "epoch_time_s": 3.21, "lr": 0.001}
    st = mk("main", 15, 100, 32)
    for tty in (False, True):
        stream = _Stream(tty)
        log = tl.TrainLog(tmp_path / str(tty), "cnn on x, seed 0", stream=stream)
        (tmp_path / str(tty)).mkdir()
        log.epoch(row, st, 10)
        log.close()
        text = (tmp_path / str(tty) / "train.log").read_text()
        assert text == ("cnn on x, seed 0 | stage=main epoch=2/5 steps=5 images=160 loss=1.2346 train_acc=40.00 "
                        "test_acc=- s=3.2\n")
        assert stream.getvalue() == ("" if tty else text)
    assert ("main/train_loss", 1.23456, 10) in scalars and not any(t == "main/test_acc" for t, _, _ in scalars)
    quiet = tl.TrainLog(tmp_path / "r1", "x", enabled=False, stream=_Stream(False))
    quiet.epoch(row, st, 1)  # not rank 0: nothing written
    assert not (tmp_path / "r1").exists()


def test_budget_stretches_epoch_stated_schedules_to_end_where_the_recipe_ends():
    """A recipe's decay (exponential 0.9 over its 3 tiny epochs, step every 10) trained for 60
    epochs of a small set under a budget ends at the recipe's end factor (0.9**3; no step),
    instead of 0.9**60 (RUL, EAC, ARM used to stop learning after ~20 epochs of a 200-image set)."""
    from benchmark.specs import MethodSpec, RecipeOverrides, plan_model
    from models.recipe import Recipe
    from models.train import build_scheduler

    plan = plan_model(MethodSpec("rul"), RecipeOverrides(), "tiny")
    st = plan.stage_steps(Budget(9600, "images"), 160)  # 300 steps, 5 batches of 32 per epoch
    assert (st[0].steps, st[0].epochs, st[0].recipe_epochs) == (300, 60, plan.recipe.epochs)
    assert st[0].schedule_scale == pytest.approx(plan.recipe.epochs / 60)
    assert plan_model(MethodSpec("rul"), RecipeOverrides(epochs=5), "tiny").stage_steps(None, 160)[0].schedule_scale == 1
    two = plan_model(MethodSpec("lrdif"), RecipeOverrides(), "tiny").stage_steps(Budget(11760, "images"), 1680)
    assert [s.recipe_epochs for s in two] == [1, 6]

    def lrs(recipe, epochs, scale):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=recipe.lr)
        sched = build_scheduler(opt, recipe, epochs=epochs, scale=scale)
        out = []
        for _ in range(int(epochs)):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    expo = Recipe(lr=1.0, schedule="exponential", schedule_args={"gamma": 0.9}, epochs=3)
    stretched = lrs(expo, 60, 3 / 60)
    assert stretched[-1] == pytest.approx(0.9 ** (59 * 3 / 60))
    assert lrs(expo, 60, 1.0)[-1] == pytest.approx(0.9 ** 59)  # by epochs: the schedule as stated
    step = Recipe(lr=1.0, schedule="step", schedule_args={"step_size": 10, "gamma": 0.1}, epochs=40)
    assert lrs(step, 80, 0.5)[19] == 1.0 and lrs(step, 80, 0.5)[20] == pytest.approx(0.1)
    cos = Recipe(lr=1.0, schedule="cosine", epochs=3)
    assert lrs(cos, 10, 0.3) == pytest.approx(lrs(cos, 10, 1.0))  # cosine already spans the stage
