"""One plan: what ``--dry-run`` prints is what the runner builds and trains, for every method."""

from __future__ import annotations

import pytest

from benchmark.specs import MethodSpec, RecipeOverrides, plan_model, stage_plan


def _configurations():
    from models import get_entry, list_models

    return [(name, variant) for name in list_models() for variant in (None, *get_entry(name).variants)]


@pytest.mark.parametrize("name,variant", _configurations())
def test_plan_matches_the_built_model(name, variant):
    """Stages, recipe and epochs per stage of the plan equal the model's (tiny preset, not trained)."""
    import torch

    plan = plan_model(MethodSpec(name, variant), RecipeOverrides(), "tiny")
    torch.manual_seed(0)
    model = plan.build(7)
    assert tuple(model.stages) == plan.stages
    assert model.recipe == plan.recipe
    assert plan.schedule == stage_plan(model.recipe, model.stages, type(model).stages)
    assert [st for st, _ in plan.schedule] == list(model.stages)


def test_dry_run_budget_of_a_variant_that_drops_a_stage():
    """``lrdif:S1`` trains s1 only: the plan says so (it printed ``100+100`` before)."""
    plan = plan_model(MethodSpec("lrdif", "S1"), RecipeOverrides(), None)
    assert plan.stages == ("s1",)
    assert plan.schedule == [("s1", plan.recipe.stage_epochs["s1"])]
    assert plan.describe_schedule() == str(plan.recipe.stage_epochs["s1"])
    both = plan_model(MethodSpec("lrdif"), RecipeOverrides(epochs=3), None)
    assert both.describe_schedule() == "s1:3+s2:3"


def test_the_dataset_class_names_reach_the_methods_that_read_them(tmp_path):
    """CK+-like classes (contempt, no neutral): LRDif prompts CLIP with them, and its saved
    model keeps them; a method without ``class_names`` builds as before."""
    from benchmark.specs import RecipeOverrides, parse_methods, plan_model
    from models import load_checkpoint, save_checkpoint

    names = ["anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise"]
    plan = plan_model(parse_methods("lrdif")[0], RecipeOverrides(), "tiny")
    model = plan.build(7, names)
    assert list(model.class_names) == names
    save_checkpoint(model, tmp_path / "model.pt")
    assert list(load_checkpoint(tmp_path / "model.pt")[0].class_names) == names
    scn = plan_model(parse_methods("scn")[0], RecipeOverrides(), "tiny").build(7, names)
    assert "class_names" not in scn.config["overrides"]
