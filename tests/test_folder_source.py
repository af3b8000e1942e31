"""The folder source on researchers' layouts: subject-independent splits from a file-name
pattern, group K-fold, ten-fold per image, JAFFE/CK+ class folder names, classes=present."""

from __future__ import annotations

import random

import numpy as np
import pytest

from fercore.errors import ConfigError, DataError
from fercore.imageio import write_image
from fercore.sources import get_source
from fercore.sources.folder import group_folds, hash_order, holdout_groups

CKPLUS = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")  # no neutral
PEOPLE = [f"S{n:03d}" for n in (5, 10, 11, 14, 22, 26, 32, 34, 35, 37)]


def ckplus_tree(root, people=PEOPLE, order=None):
    """CK+-like: root/<class>/S005_001_00000011.png, two images per person and class (written
    in ``order`` when given, to show that listing order does not matter)."""
    items = [(cls, p, k) for cls in CKPLUS for p in people for k in range(2)]
    for cls, p, k in (items if order is None else [items[i] for i in order]):
        write_image(root / cls / f"{p}_{k + 1:03d}_{k:08d}.png", np.full((8, 8, 3), k, np.uint8))
    return root


def person(rec):
    return rec.relpath.split("/")[-1][:4]


def test_subject_split_keeps_people_apart_and_is_recorded(tmp_path):
    src = get_source("folder", ckplus_tree(tmp_path), subject=r"^(S\d+)_", test_fraction="0.2",
                     classes="present")
    train = {person(r) for r in src.records("train")}
    test = {person(r) for r in src.records("test")}
    assert not train & test and train | test == set(PEOPLE)
    assert len(test) == 2  # round(0.2 * 10) people
    assert len(src.records("test")) == 2 * len(CKPLUS) * 2
    d = src.describe()
    assert d["options"]["subject"] == r"^(S\d+)_"
    assert d["split"]["by"] == "subject" and d["split"]["test_people"] == sorted(test)
    assert d["split"]["people"] == 10


def test_subject_split_is_stable_under_file_order_and_moves_with_the_seed(tmp_path):
    a = ckplus_tree(tmp_path / "a")
    order = list(range(len(CKPLUS) * len(PEOPLE) * 2))
    random.Random(3).shuffle(order)
    b = ckplus_tree(tmp_path / "b", order=order)
    split = {r.id: r.split for r in get_source("folder", a, subject=r"^(S\d+)_").records()}
    assert split == {r.id: r.split for r in get_source("folder", b, subject=r"^(S\d+)_").records()}
    assert hash_order(PEOPLE, 0, "t") == hash_order(list(reversed(PEOPLE)), 0, "t")
    tests = {frozenset(holdout_groups(PEOPLE, 0.3, s)) for s in range(6)}
    assert len(tests) > 1  # another split_seed, another split
    other = {r.id: r.split for r in get_source("folder", a, subject=r"^(S\d+)_", split_seed="1").records()}
    assert other != split


def test_group_kfold_partitions_the_people(tmp_path):
    root = ckplus_tree(tmp_path)
    k = 5
    test_sets = []
    for fold in range(k):
        src = get_source("folder", root, subject=r"^(S\d+)_", folds=str(k), fold=str(fold))
        train = {person(r) for r in src.records("train")}
        test = {person(r) for r in src.records("test")}
        assert not train & test and train | test == set(PEOPLE)
        assert src.describe()["split"]["fold"] == fold
        test_sets.append(test)
    assert sorted(p for t in test_sets for p in t) == sorted(PEOPLE)  # every person tested exactly once
    assert {len(t) for t in test_sets} == {2}
    folds = group_folds(PEOPLE, 3, 0)
    assert sorted(list(folds.values()).count(f) for f in range(3)) == [3, 3, 4]


def test_ten_fold_per_image_tests_every_image_once(tmp_path):
    root = ckplus_tree(tmp_path, people=PEOPLE[:3])
    seen: list[str] = []
    for fold in range(10):
        seen += [r.id for r in get_source("folder", root, folds="10", fold=str(fold)).records("test")]
    assert sorted(seen) == sorted(r.id for r in get_source("folder", root).records())


def test_jaffe_numbered_class_folders(tmp_path):
    for name in ("1 - Happy", "2 - Sad", "3 - Surprise", "4 - Angry", "5 - Disgust", "6 - Fear", "7 - Neutral"):
        for p in ("KA", "KL", "KM"):
            write_image(tmp_path / name / f"{p}.X1.{len(name)}.tiff", np.zeros((8, 8, 3), np.uint8))
    src = get_source("folder", tmp_path, subject=r"^([A-Z]{2})\.")
    assert src.classes == ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
    r = next(r for r in src.records() if r.relpath.startswith("4 - Angry/"))
    assert r.class_name == "anger" and r.label == 5
    assert len({person(r)[:2] for r in src.records("test")}) == 1  # round(0.2 * 3) = 1 person


@pytest.mark.parametrize("name, cls", [("happiness", "happiness"), ("Angry", "anger"), ("surprised", "surprise"),
                                       ("fearful", "fear"), ("disgusted", "disgust"), ("sadness", "sadness"),
                                       ("1 - Happy", "happiness"), ("03_sad", "sadness"), ("smiles", "happiness"),
                                       ("0", None), ("bored", None)])
def test_plural_adjective_and_numbered_aliases(name, cls):
    from fercore.classes import canonical_class

    assert canonical_class(name) == cls


def test_classes_present_and_seven_with_contempt(tmp_path):
    root = ckplus_tree(tmp_path, people=PEOPLE[:2])
    (root / "neutral").mkdir()  # an empty folder is not a class with images
    src = get_source("folder", root, classes="present")
    assert src.classes == ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "contempt")
    assert {r.class_name for r in src.records()} == set(src.classes)
    auto = get_source("folder", root)
    assert len(auto.classes) == 8  # auto keeps its meaning: 8 when a contempt folder exists
    with pytest.raises(DataError, match="classes=present"):
        get_source("folder", root, classes="7").records()


@pytest.mark.parametrize("opts, err, needle", [
    ({"subject": "^S\\d+_"}, ConfigError, "has no group"),
    ({"subject": "^(S\\d+"}, ConfigError, "not a regular expression"),
    ({"subject": "^(P\\d+)_"}, ConfigError, "matches no image (e.g. 'S005_001_00000000.png'"),
    ({"subject": "^(S00[5-9])_"}, ConfigError, "finds no person in 'S010_001_00000000.png'"),
    ({"subject": "^(S)"}, ConfigError, "finds one person"),
    ({"folds": "1"}, ConfigError, "at least 2"),
    ({"folds": "5", "fold": "5"}, ConfigError, "fold must be in 0 .. 4"),
    ({"fold": "2"}, ConfigError, "needs folds=K"),
    ({"subject": "^(S\\d+)_", "folds": "3"}, ConfigError, "finds only 2 people"),
])
def test_bad_split_options_are_named(tmp_path, opts, err, needle):
    root = ckplus_tree(tmp_path, people=PEOPLE[:2])
    with pytest.raises(err) as exc:
        get_source("folder", root, **opts).records()
    assert needle in str(exc.value) and "--src-opt" in str(exc.value)


def test_subject_split_refuses_split_folders(folder_tree):
    with pytest.raises(ConfigError, match="already has train/test folders"):
        get_source("folder", folder_tree, subject="^(img)").records()


def test_a_fold_that_is_not_a_number_says_how_to_fix_it(tmp_path):
    root = ckplus_tree(tmp_path)
    with pytest.raises(ConfigError, match=r"fold='all' is not a whole number \(fold=all is for fer-bench run"):
        get_source("folder", root, folds="10", fold="all")
    with pytest.raises(ConfigError, match="test_fraction='x' is not a number"):
        get_source("folder", root, test_fraction="x")
