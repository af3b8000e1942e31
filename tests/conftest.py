"""Shared fixtures: fake dataset trees built offline, and a private cache for the sample set."""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

# Keep the tests away from the user's cache and quiet in logs. Set before any toolkit import.
os.environ.setdefault("FER_CACHE", tempfile.mkdtemp(prefix="fer-test-cache-"))
os.environ.setdefault("FER_PROGRESS", "0")

from fercore.imageio import write_image  # noqa: E402


def _img(seed: int, size=(100, 100)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (*size, 3), dtype=np.uint8)


@pytest.fixture
def rafdb_tree(tmp_path: Path) -> Path:
    """RAF-DB layout: 3 train + 2 test images, labels 1, 4, 7 / 5, 2."""
    root = tmp_path / "RAF-DB"
    img_dir = root / "basic" / "Image" / "aligned"
    lab_dir = root / "basic" / "EmoLabel"
    lab_dir.mkdir(parents=True)
    lines = [("train_00001", 1), ("train_00002", 4), ("train_00003", 7), ("test_00001", 5), ("test_00002", 2)]
    for i, (stem, _) in enumerate(lines):
        write_image(img_dir / f"{stem}_aligned.jpg", _img(i))
    (lab_dir / "list_patition_label.txt").write_text("".join(f"{s}.jpg {l}\n" for s, l in lines))
    return root


FER_HEADER = ["Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger", "disgust",
              "fear", "contempt", "unknown", "NF"]
# (usage, name, votes) -- labels under the majority rule noted on the right
FER_ROWS = [
    ("Training", "fer0000000.png", [10, 0, 0, 0, 0, 0, 0, 0, 0, 0]),   # neutral
    ("Training", "fer0000001.png", [0, 6, 1, 1, 1, 1, 0, 0, 0, 0]),    # happiness (6 of 6 after zeroing 1s)
    ("Training", "fer0000002.png", [4, 4, 2, 0, 0, 0, 0, 0, 0, 0]),    # unknown: max 4 is not > 5
    ("Training", "", [10, 0, 0, 0, 0, 0, 0, 0, 0, 0]),                 # empty name: dropped
    ("PublicTest", "fer0000004.png", [0, 0, 0, 0, 0, 0, 0, 8, 2, 0]),  # contempt
    ("PublicTest", "fer0000005.png", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]), # NF: dropped
    ("PrivateTest", "fer0000006.png", [0, 0, 7, 3, 0, 0, 0, 0, 0, 0]), # surprise
    ("PrivateTest", "fer0000007.png", [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]), # all single votes: unknown
]


@pytest.fixture
def ferplus_tree(tmp_path: Path) -> Path:
    root = tmp_path / "FERPlus"
    root.mkdir()
    with open(root / "fer2013new.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(FER_HEADER)
        for usage, name, votes in FER_ROWS:
            w.writerow([usage, name, *votes])
    rng = np.random.default_rng(0)
    with open(root / "fer2013.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        for i, (usage, _, _) in enumerate(FER_ROWS):
            px = rng.integers(0, 256, 48 * 48)
            px[0] = i  # row marker
            w.writerow([0, " ".join(map(str, px)), usage])
    return root


@pytest.fixture
def kdef_tree(tmp_path: Path) -> Path:
    """KDEF layout with a few people: F01 (test), F02 (train), M06 (test), M07 (train)."""
    root = tmp_path / "KDEF_and_AKDEF" / "KDEF"
    i = 0
    for sess in "AB":
        for person in ("F01", "F02", "M06", "M07"):
            for expr in ("AF", "HA", "NE"):
                for angle in ("S", "HL"):
                    d = root / f"{sess}{person}"
                    write_image(d / f"{sess}{person}{expr}{angle}.JPG", _img(i, (76, 56)))
                    i += 1
    return tmp_path / "KDEF_and_AKDEF"


@pytest.fixture
def folder_tree(tmp_path: Path) -> Path:
    root = tmp_path / "ckplus"
    for split in ("train", "test"):
        for j, cls in enumerate(("Happy", "sadness", "AN", "contempt")):
            for k in range(2):
                write_image(root / split / cls / f"img{k}.png", _img(j * 10 + k, (48, 48)))
    return root


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of small model tests (``pytestmark =
    pytest.mark.usefixtures("one_thread")``): avoids oversubscribing a shared 2-core machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def sample_root() -> Path:
    """The default sample set (built once per test session into the private cache)."""
    from fercore.sample.build import build_sample

    return build_sample(seed=0)
