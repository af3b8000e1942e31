"""Per-item seeding: every random draw is keyed by (run seed, item identity, purpose).

Nothing random may depend on batch order, batch size, worker count, device count or
sharding. Instead of one global generator, each item gets its own seed derived by hashing
the run seed with the item's id and a purpose tag (``"udc-params"``, ``"augment"``, ...).
"""

from __future__ import annotations

import hashlib

import numpy as np

_MASK63 = (1 << 63) - 1


def derive_seed(run_seed: int, *keys: object) -> int:
    """A 63-bit seed from ``run_seed`` and any number of keys (ids, tags, epochs).

    Stable across Python versions, platforms and processes (BLAKE2b, not ``hash()``).
    ``derive_seed(0, "train_00001", "udc")`` always gives the same number.
    """
    if isinstance(run_seed, bool) or not isinstance(run_seed, (int, np.integer)):
        raise TypeError(f"run_seed must be an int, got {type(run_seed).__name__}")
    h = hashlib.blake2b(digest_size=8)
    h.update(str(int(run_seed)).encode())
    for k in keys:
        h.update(b"\x1f")
        h.update(str(k).encode("utf-8"))
    return int.from_bytes(h.digest(), "little") & _MASK63


def numpy_rng(run_seed: int, *keys: object) -> np.random.Generator:
    """A NumPy generator seeded by :func:`derive_seed`."""
    return np.random.default_rng(derive_seed(run_seed, *keys))


def torch_generator(run_seed: int, *keys: object, device="cpu"):
    """A :class:`torch.Generator` seeded by :func:`derive_seed` (on ``device``)."""
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(run_seed, *keys))
    return g


def seed_everything(seed: int) -> None:
    """Seed the global generators (for model initialisation) and ask torch for determinism."""
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def shard_of(item_id: str, n: int) -> int:
    """The shard (0..n-1) of an item: a stable hash of its id, independent of everything else."""
    return derive_seed(0, "shard", item_id) % n


def parse_shard(text, flag: str = "--shard") -> tuple[int, int]:
    """``"1/4"`` (or ``(1, 4)``) -> ``(1, 4)``; shards are numbered from 0. ``flag`` names the
    option in the error (``--shard`` of fer-degrade, ``--job-shard`` of fer-bench)."""
    from .errors import ConfigError

    try:
        if isinstance(text, str):
            i_s, n_s = text.split("/")
            i, n = int(i_s), int(n_s)
        else:
            i, n = (int(v) for v in text)
    except (ValueError, TypeError):
        raise ConfigError(f"expected I/N such as 0/2, got {text!r}", flag=flag) from None
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"shard {i}/{n}: need N >= 1 and 0 <= I < N", flag=flag)
    return i, n


def balanced_subset(labels, ids, n: int, run_seed: int, tag: str) -> list[int]:
    """Indices (ascending) of a deterministic class-balanced subset of ``n`` items: ranked
    within each class by ``derive_seed(run_seed, tag, id)`` and taken round-robin over the
    classes, so the subset depends only on the ids and labels, never on their order. All
    indices when ``n >= len(labels)``."""
    if n >= len(labels):
        return list(range(len(labels)))
    by_class: dict[int, list[int]] = {}
    for i in sorted(range(len(ids)), key=lambda i: derive_seed(run_seed, tag, str(ids[i]))):
        by_class.setdefault(int(labels[i]), []).append(i)
    queues = [by_class[c] for c in sorted(by_class)]
    out: list[int] = []
    k = 0
    while len(out) < n:
        for q in queues:
            if k < len(q) and len(out) < n:
                out.append(q[k])
        k += 1
    return sorted(out)
