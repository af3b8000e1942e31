"""Method specs, sweeps, dataset names, seeds, recipe overrides, metrics (no training)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.datasets import parse_dataset_name, split_list
from benchmark.specs import (MethodSpec, RecipeOverrides, parse_method, parse_methods, parse_seeds, plan_model,
                             stage_plan)
from fercore.errors import ConfigError


def test_method_spec_syntax():
    s = parse_method("cnn@tiny+dropout=0.5+widths=[8,16,32,48]")
    assert s == MethodSpec("cnn", None, "tiny", (("dropout", 0.5), ("widths", [8, 16, 32, 48])))
    assert s.label == "cnn@tiny+dropout=0.5+widths=[8,16,32,48]"
    assert s.dirname == "cnn_tiny_dropout-0.5_widths-_8_16_32_48"
    with pytest.raises(ConfigError, match="--methods: cnn has no preset 'huge'"):
        parse_method("cnn@huge")
    with pytest.raises(ConfigError, match="--methods: unknown method 'nosuch'"):
        parse_method("nosuch")


def test_model_options_and_sweeps_expand():
    specs = parse_methods("cnn,cnn@tiny", model_opts=("dropout=0.1",), sweeps=("dropout=0.0,0.3",))
    assert [s.label for s in specs] == ["cnn+dropout=0.0", "cnn+dropout=0.3", "cnn@tiny+dropout=0.0",
                                        "cnn@tiny+dropout=0.3"]
    with pytest.raises(ConfigError, match="--model-opt"):
        parse_methods("cnn", model_opts=("lrdif.T=8",))
    with pytest.raises(ConfigError, match="listed twice"):
        parse_methods("cnn,cnn")


def test_split_list_respects_brackets():
    assert split_list("a+w=[1,2],b, c") == ["a+w=[1,2]", "b", "c"]


def test_recipe_overrides_and_plan():
    plan = plan_model(MethodSpec("cnn"), RecipeOverrides.from_cli(epochs=4, lr=0.01, input_size=48,
                                                                   recipe_pairs=("augment=[\"hflip\"]",)), "tiny")
    assert plan.preset == "tiny" and plan.recipe.epochs == 4 and plan.recipe.lr == 0.01
    assert plan.recipe.input_size == 48 and plan.recipe.augment == ("hflip",)
    assert plan.all_kwargs == {"widths": [16, 32, 64, 96], "dropout": 0.2}
    from models.recipe import Recipe

    two = Recipe(stage_epochs={"s1": 100, "s2": 100})
    ch = RecipeOverrides.from_cli(epochs=3).changes_for(two)
    assert ch["stage_epochs"] == {"s1": 3, "s2": 3}
    assert stage_plan(two.replace(**ch), ("s1", "s2")) == [("s1", 3), ("s2", 3)]
    assert stage_plan(Recipe(epochs=5), ("a", "b")) == [("a", 5), ("b", 5)]
    with pytest.raises(ConfigError, match="stage_epochs"):
        stage_plan(two, ("main",))
    with pytest.raises(ConfigError, match="--epochs"):
        RecipeOverrides.from_cli(epochs=0)


@pytest.mark.parametrize("text, name, base, kind", [
    ("UDC-RAF-DB", "udc-rafdb", "rafdb", "udc"), ("LL-FERPlus", "ll-ferplus", "ferplus", "lowlight"),
    ("kdef", "kdef", "kdef", "clean"), ("ll-sample", "ll-sample", "sample", "lowlight"),
    ("udc_sample", "udc-sample", "sample", "udc"), ("RAF-DB", "rafdb", "rafdb", "clean")])
def test_dataset_names_follow_the_papers(text, name, base, kind):
    d = parse_dataset_name(text)
    assert (d.name, d.base, d.kind) == (name, base, kind)


def test_bad_dataset_name():
    with pytest.raises(ConfigError, match="--datasets: unknown dataset 'udc-affectnet'"):
        parse_dataset_name("udc-affectnet")


def test_seed_lists():
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds("3-5") == [3, 4, 5]
    for bad in ("", "1,1", "x", "-1"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)


def test_metrics_match_scikit_learn():
    from sklearn.metrics import f1_score

    from benchmark.metrics import classification_metrics

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 200)
    logits = rng.normal(size=(200, 5)) + 2.0 * np.eye(5)[labels] * (rng.random(200) < 0.6)[:, None]
    m = classification_metrics(logits, labels, ["a", "b", "c", "d", "e"])
    pred = logits.argmax(1)
    assert m["accuracy"] == pytest.approx(100 * (pred == labels).mean())
    assert m["macro_f1"] == pytest.approx(100 * f1_score(labels, pred, average="macro", labels=range(5),
                                                         zero_division=0))
    cm = np.array(m["confusion"])
    assert cm.sum() == 200 and m["per_class_accuracy"]["c"] == pytest.approx(100 * cm[2, 2] / cm[2].sum())
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert m["mean_confidence"] == pytest.approx(probs.max(1).mean())


def test_config_hash_ignores_seed_device_and_workers(tmp_path, sample_root):
    from benchmark.datasets import DataSettings, resolve_datasets
    from benchmark.runner import Job, RunSettings

    (ds,) = resolve_datasets(["sample"], DataSettings())
    plan = plan_model(MethodSpec("cnn"), RecipeOverrides(), "tiny")
    a = Job(plan, ds, 0).hash(RunSettings(tmp_path, device="cpu", workers=0))
    b = Job(plan, ds, 5).hash(RunSettings(tmp_path / "x", device="cuda", workers=8, threads=3))
    c = Job(plan_model(MethodSpec("cnn"), RecipeOverrides(epochs=9), "tiny"), ds, 0).hash(RunSettings(tmp_path))
    d = Job(plan, ds, 0).hash(RunSettings(tmp_path, limit_train=10))
    assert a == b and len({a, c, d}) == 3
