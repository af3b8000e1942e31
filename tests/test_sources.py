"""Fake RAF-DB, FERPlus, KDEF and folder trees load with the right labels, classes and splits."""

from __future__ import annotations

import numpy as np
import pytest

from fercore.errors import ConfigError, DataError
from fercore.sources import get_source, majority_label


def by_id(src):
    return {r.id: r for r in src.records()}


def test_rafdb_labels_classes_splits(rafdb_tree):
    src = get_source("rafdb", rafdb_tree)
    recs = by_id(src)
    assert src.classes[0] == "surprise" and src.classes[6] == "neutral"
    # file labels 1, 4, 7, 5, 2 -> Surprise, Happiness, Neutral, Sadness, Fear
    assert [(recs[k].label, recs[k].class_name, recs[k].split) for k in sorted(recs)] == [
        (4, "sadness", "test"), (1, "fear", "test"),
        (0, "surprise", "train"), (3, "happiness", "train"), (6, "neutral", "train")]
    assert recs["train_00002"].relpath == "basic/Image/aligned/train_00002_aligned.jpg"
    img = src.load(recs["train_00001"])
    assert img.shape == (100, 100, 3) and img.dtype == np.uint8
    # pointing at basic/ itself works too
    assert len(get_source("rafdb", rafdb_tree / "basic").records()) == 5


def test_rafdb_missing_image_is_named(rafdb_tree):
    (rafdb_tree / "basic/Image/aligned/test_00002_aligned.jpg").unlink()
    with pytest.raises(DataError, match="test_00002_aligned.jpg"):
        get_source("rafdb", rafdb_tree).records()


def test_rafdb_missing_label_file_is_named(rafdb_tree):
    (rafdb_tree / "basic/EmoLabel/list_patition_label.txt").unlink()
    with pytest.raises(DataError, match="list_patition_label.txt"):
        get_source("rafdb", rafdb_tree).records()


@pytest.mark.parametrize("votes, label", [
    ([10, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0),
    ([0, 6, 1, 1, 1, 1, 0, 0, 0, 0], 1),       # single votes are zeroed first
    ([4, 4, 2, 0, 0, 0, 0, 0, 0, 0], None),    # 4 is not more than half of 10
    ([0, 0, 0, 0, 0, 0, 0, 8, 2, 0], 7),       # contempt
    ([0, 0, 0, 0, 0, 0, 0, 0, 2, 8], None),    # not a face
    ([0, 0, 0, 0, 0, 0, 0, 0, 8, 2], None),    # unknown
    ([1] * 10, None),                          # nothing left after zeroing
    ([0, 3, 3, 0, 0, 0, 0, 0, 0, 0], None),    # a tie at exactly half is not a majority
])
def test_ferplus_majority_rule(votes, label):
    assert majority_label(votes) == label


def test_ferplus_csv_eight_classes(ferplus_tree):
    src = get_source("ferplus", ferplus_tree)
    recs = by_id(src)
    assert sorted(recs) == ["fer0000000", "fer0000001", "fer0000004", "fer0000006"]
    assert [(recs[k].class_name, recs[k].split) for k in sorted(recs)] == [
        ("neutral", "train"), ("happiness", "train"), ("contempt", "val"), ("surprise", "test")]
    img = src.load(recs["fer0000006"])
    assert img.shape == (48, 48, 3) and img[0, 0, 0] == 6  # row marker: rows stay aligned
    assert (img[..., 0] == img[..., 1]).all()               # grey promoted to RGB


def test_ferplus_seven_classes_and_papers_test_split(ferplus_tree):
    src = get_source("ferplus", ferplus_tree, classes="7", test="public+private")
    recs = by_id(src)
    assert "fer0000004" not in recs  # contempt dropped
    assert len(src.classes) == 7 and "contempt" not in src.classes
    assert {r.split for r in recs.values()} == {"train", "test"}


def test_ferplus_image_folder_layout(ferplus_tree):
    from fercore.imageio import write_image

    csv_src = get_source("ferplus", ferplus_tree)
    for r in csv_src.records():
        write_image(ferplus_tree / r.relpath, csv_src.load(r))
    (ferplus_tree / "fer2013.csv").unlink()
    img_src = get_source("ferplus", ferplus_tree)
    assert img_src._use_images()
    a, b = by_id(csv_src), by_id(img_src)
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].label == b[k].label and a[k].split == b[k].split
        np.testing.assert_array_equal(csv_src.load(a[k]), img_src.load(b[k]))
    assert b["fer0000004"].relpath == "FER2013Valid/fer0000004.png"


def test_ferplus_bad_option_is_named(ferplus_tree):
    with pytest.raises(ConfigError, match="classes"):
        get_source("ferplus", ferplus_tree, classes="9")
    with pytest.raises(ConfigError, match="unknown option"):
        get_source("ferplus", ferplus_tree, colour="yes")


def test_kdef_subject_split_and_codes(kdef_tree):
    src = get_source("kdef", kdef_tree)
    recs = by_id(src)
    assert len(recs) == 2 * 4 * 3 * 2
    assert recs["AF01AFS"].split == "test" and recs["AM06HAHL"].split == "test"   # ids 01, 06: test
    assert recs["BF02NES"].split == "train" and recs["BM07AFS"].split == "train"
    assert recs["AF01AFS"].class_name == "fear" and recs["AF01AFS"].label == src.classes.index("fear")
    assert recs["AF02HAS"].class_name == "happiness"
    assert recs["AF01AFS"].relpath == "KDEF/AF01/AF01AFS.JPG"
    frontal = get_source("kdef", kdef_tree, frontal="true")
    assert {r.id[-1] for r in frontal.records()} == {"S"} and len(frontal.records()) == 24


def test_kdef_manifest_split_is_56_14_people():
    from data_manifests import load_manifest

    m = load_manifest("kdef")
    train, test = m["subjects"]["train"], m["subjects"]["test"]
    assert len(train) == 56 and len(test) == 14 and not set(train) & set(test)
    assert sum(s.startswith("F") for s in test) == 7
    # 14 people x 7 expressions x 5 angles x 2 sessions
    assert m["splits"]["test"]["total"] == 14 * 7 * 5 * 2 == 980


def test_folder_two_level_with_aliases(folder_tree):
    src = get_source("folder", folder_tree)
    assert src.classes[-1] == "contempt" and len(src.classes) == 8  # auto: contempt folder present
    recs = src.records()
    assert {r.class_name for r in recs} == {"happiness", "sadness", "anger", "contempt"}
    assert {r.split for r in recs} == {"train", "test"}
    r = by_id(src)["train/Happy/img0"]
    assert r.class_name == "happiness" and r.label == src.classes.index("happiness")


def test_folder_unknown_class_is_named(folder_tree):
    (folder_tree / "train" / "bored").mkdir()
    with pytest.raises(DataError, match="bored"):
        get_source("folder", folder_tree).records()


def test_folder_one_level_hash_split_is_stable(tmp_path):
    from fercore.imageio import write_image

    for cls in ("happy", "sad"):
        for k in range(20):
            write_image(tmp_path / cls / f"{k}.png", np.zeros((8, 8, 3), np.uint8))
    a = [(r.id, r.split) for r in get_source("folder", tmp_path, test_fraction="0.25").records()]
    b = [(r.id, r.split) for r in get_source("folder", tmp_path, test_fraction="0.25").records()]
    assert a == b
    n_test = sum(s == "test" for _, s in a)
    assert 3 <= n_test <= 18  # about a quarter of 40


def test_unknown_source_and_missing_root():
    with pytest.raises(ConfigError, match="--src"):
        get_source("affectnet", "/tmp")
    with pytest.raises(ConfigError, match="--root"):
        get_source("rafdb")
    with pytest.raises(DataError, match="does-not-exist"):
        get_source("rafdb", "/does-not-exist")


def test_sample_source_counts(sample_root):
    src = get_source("sample")
    assert src.root == sample_root
    counts = src.counts()
    assert counts["train"] == {c: 240 for c in src.classes}
    assert counts["test"] == {c: 60 for c in src.classes}
    people = {split: {r.id[:3] for r in src.records(split)} for split in ("train", "test")}
    assert not people["train"] & people["test"]  # split by identity
