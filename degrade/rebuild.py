"""The one dataset-rebuilding runner, generic over :class:`~degrade.base.Degradation`.

``rebuild_dataset(degradation, source, out)`` writes a degraded copy of ``source`` that every
loader reads like the original, and makes it exactly reproducible:

* **Layout.** Each image goes to ``out/<record.relpath>`` (same names, same extension; JPEG at
  quality :data:`JPEG_QUALITY`, PNG losslessly), images keep their size, and the source's label
  files are mirrored, listing exactly the images in the manifest
  (:meth:`~fercore.sources.base.Source.mirror_labels`), so a partial copy (``--split``,
  ``--limit``, skipped inputs, an interrupted run) is always readable.
* **Determinism.** Image ``id``'s parameters come from
  ``numpy_rng(seed, kind, "params", id)`` and its noise from
  ``torch_generator(seed, kind, "noise", id)`` (CPU), so an output depends on (seed, id,
  settings) only -- never on batch size, order, decode workers, device count or sharding.
  Batches hold images of one size (datasets mix sizes); which images share a batch does not
  matter.
* **Records.** ``out/manifest.csv`` has one row per finished image (id, split, label, class,
  path, every sampled parameter, sha256 of the output file), sorted by id; ``out/run.json`` is
  the run record (toolkit version, the degradation's full description, seed, source, its root
  and a hash of the inputs' listing, the sha256 of the manifest and of every label file, and
  per shard the command line, counts and any skipped unreadable inputs).
  :func:`verify_dataset` checks a set against it (docs/security.md).
* **Paths.** Every output path is resolved before anything is written; one that would land
  outside ``out`` (a ``..`` or absolute name in a label file, a symlink) stops the run.
* **Resume.** Finished images are appended to a journal (``out/.rebuild/journal-*.jsonl``,
  :class:`fercore.manifest.Journal`) after their file is in place. A re-run skips every
  journalled image whose file still has the journalled hash and redoes the rest, so a killed
  run resumes to byte-identical results. Files are written atomically (temporary file +
  rename): a kill never leaves half an image, and the next run removes the temporaries of
  killed processes. Resuming from another source root, or after the inputs changed, is
  refused (both roots named): a set never mixes two inputs.
* **Shards.** ``shard=(i, n)`` processes the images whose ``blake2b(id) mod n == i``; shards
  may run one after another or at the same time (on other machines, then copy the folders
  together) into one ``out``. Each finishing shard rebuilds ``manifest.csv`` from every
  journal present, under a file lock.
* **Errors.** An unreadable input is reported by name; ``on_error="stop"`` raises
  (:class:`~fercore.errors.ImageReadError`, after the images already finished are journalled)
  and ``on_error="skip"`` leaves it out and lists it in the run record.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fercore import __version__
from fercore.atomic import atomic_write_text, remove_stale_temps
from fercore.device import resolve_device
from fercore.errors import ConfigError, DataError, FerError, ImageReadError
from fercore.hashing import sha256_bytes, sha256_file
from fercore.imageio import JPEG_QUALITY, PNG_COMPRESSION, write_image
from fercore.manifest import HashMismatch, Journal, read_manifest, verify_hashes, write_manifest
from fercore.paths import inside
from fercore.progress import console, make_progress
from fercore.seeding import parse_shard, shard_of
from fercore.sources.base import Record, Source

from .base import Degradation

MANIFEST = "manifest.csv"
RUN_RECORD = "run.json"
STATE_DIR = ".rebuild"
FIXED_COLUMNS = ("id", "split", "label", "class", "path")


@dataclass
class RebuildResult:
    """What one call of :func:`rebuild_dataset` did (for this shard)."""

    out: Path
    selected: int = 0
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    complete: bool = False  # every image of every shard is in the manifest

    @property
    def counts(self) -> dict[str, int]:
        return {"selected": self.selected, "written": len(self.written), "skipped": len(self.skipped),
                "failed": len(self.failed)}


# ------------------------------------------------------------------------- helpers
def _identity(degradation: Degradation, source: Source, seed: int, split: str | None,
              limit: int | None, records: list[Record]) -> dict[str, Any]:
    """What makes two runs build the same set (compared when resuming into ``out``): the
    settings, the source folder and a hash of the inputs' listing (names, labels, sizes,
    modification times), so resuming from another ``--root`` or from edited images is refused."""
    desc = source.describe()
    return {
        "kind": degradation.kind,
        "degradation": json.loads(json.dumps(degradation.describe(), sort_keys=True)),
        "seed": int(seed),
        "source": {"source": desc.get("source"), "options": desc.get("options", {})},
        "root": str(source.root),
        "inputs": source.listing_hash(records),
        "split": split,
        "limit": limit,
        "jpeg_quality": JPEG_QUALITY,
    }


def _identity_error(out: Path, old: dict[str, Any] | None, new: dict[str, Any]) -> ConfigError:
    old = old or {}
    diff = sorted(k for k in set(new) | set(old) if old.get(k) != new.get(k))
    if "root" in diff or "inputs" in diff:
        if "root" in diff:
            what = f"was built from --root {old.get('root', '(not recorded)')}, but this run reads --root {new['root']}"
        else:
            what = (f"was built from --root {old.get('root')} and this run reads --root {new['root']}, but the "
                    "files there changed since (edited, added or removed images: the inputs' listing differs)")
        return ConfigError(f"{out} {what}; its images would mix two inputs. Use another --out, or delete it to "
                           "start over", flag="--out")
    return ConfigError(f"{out} holds a set built with other settings (differs in: {', '.join(diff)}); "
                       "use another --out, or delete it to start over", flag="--out")


@contextlib.contextmanager
def _locked(out: Path):
    """An exclusive lock on ``out`` while the manifest and run record are rewritten."""
    lock_path = out / STATE_DIR / "lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as fh:
        try:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - Windows: single-process use only
            pass
        yield


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"run record is unreadable ({exc}); delete it to start over", path) from None


def _journals(out: Path) -> list[Journal]:
    d = out / STATE_DIR
    return [Journal(p) for p in sorted(d.glob("journal-*.jsonl"))] if d.is_dir() else []


def _all_entries(out: Path) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for j in _journals(out):
        entries.update(j.load())
    return entries


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


# ------------------------------------------------------------------------ pipeline
def _encode_write(out: Path, rec: Record, img: np.ndarray) -> tuple[str, str]:
    """Encode by the record's extension, write atomically, return (relpath, sha256)."""
    return rec.relpath, sha256_bytes(write_image(out / rec.relpath, img))


def _prefetch(pool: ThreadPoolExecutor | None, source: Source, recs: list[Record],
              window: int) -> Iterator[tuple[Record, np.ndarray | None, str | None]]:
    """Decode records in order, ``window`` ahead in the pool; yields (record, image, error)."""
    def result(rec: Record, fut: Future | None):
        try:
            img = fut.result() if fut is not None else source.load(rec)
        except ImageReadError as exc:
            return rec, None, str(exc)
        return rec, img, None

    if pool is None:
        for rec in recs:
            yield result(rec, None)
        return
    queue: deque = deque()
    for rec in recs:
        queue.append((rec, pool.submit(source.load, rec)))
        if len(queue) >= window:
            yield result(*queue.popleft())
    while queue:
        yield result(*queue.popleft())


class _Batches:
    """Batches in flight: degraded in the pool, then encoded and written there, then journalled.

    Each batch is journalled (in submission order) only once all its files are in place, so
    the journal never names an image that is not on disk. At most ``max_pending`` batches are
    in flight (bounded memory).
    """

    def __init__(self, pool: ThreadPoolExecutor | None, out: Path, journal: Journal, result: RebuildResult,
                 on_done, max_pending: int):
        self.pool, self.out, self.journal, self.result = pool, out, journal, result
        self.on_done = on_done
        self.pending: deque = deque()  # [recs, compute future, write futures or None]
        self.max_pending = max_pending

    def _run(self, fn, *args) -> Future | _Done:
        return _Done(fn, *args) if self.pool is None else self.pool.submit(fn, *args)

    def submit(self, compute, recs: list[Record], *args) -> None:
        self.pending.append([recs, self._run(compute, recs, *args), None])
        self._start_writes()
        while len(self.pending) > self.max_pending:
            self._finish(self.pending.popleft())

    def _start_writes(self) -> None:
        for item in self.pending:
            if item[2] is None and item[1].done():
                self._submit_writes(item)

    def _submit_writes(self, item) -> None:
        recs, fut, _ = item
        outs, _rows = fut.result()
        item[2] = [self._run(_encode_write, self.out, r, im) for r, im in zip(recs, outs)]

    def _finish(self, item) -> None:
        recs, fut, writes = item
        if writes is None:
            self._submit_writes(item)
            writes = item[2]
        _outs, rows = fut.result()
        entries = []
        error: BaseException | None = None
        for rec, row, w in zip(recs, rows, writes):
            try:
                rel, digest = w.result()
            except BaseException as exc:  # noqa: BLE001 - journal the others first, then raise
                error = error or exc
                continue
            entries.append({"id": rec.id, "split": rec.split, "label": rec.label, "class": rec.class_name,
                            "path": rel, "sha256": digest, "params": row})
        self.journal.append(entries)
        for e in entries:
            self.result.written.append(e["id"])
        self.on_done(len(entries))
        if error is not None:
            raise error

    def drain(self) -> None:
        while self.pending:
            self._finish(self.pending.popleft())


class _Done:
    """A finished 'future' for runs without a pool (``workers=0``)."""

    def __init__(self, fn, *args):
        try:
            self.value, self.error = fn(*args), None
        except BaseException as exc:  # noqa: BLE001 - re-raised by result()
            self.value, self.error = None, exc

    def done(self) -> bool:
        return True

    def result(self):
        if self.error is not None:
            raise self.error
        return self.value


def degrade_batch(recs: list[Record], degradation: Degradation, imgs: list[np.ndarray], seed: int,
                  device: torch.device) -> tuple[np.ndarray, list[dict[str, float]]]:
    """The rebuild's degradation of one batch: ``(B, H, W, 3)`` uint8 outputs and each image's
    sampled parameters, every draw seeded by (run seed, kind, image id) -- exactly the bytes a
    rebuilt set holds (before encoding)."""
    rows, gens = degradation.draws(seed, [r.id for r in recs])
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).to(device)
    with torch.no_grad():
        y = degradation.apply_uint8(x, degradation.stack_params(rows, device), gens)
    if y.dtype != torch.uint8 or y.shape != x.shape:
        raise RuntimeError(f"{type(degradation).__name__}.apply_uint8 must return uint8 of shape "
                           f"{tuple(x.shape)}, got {y.dtype} {tuple(y.shape)}")
    return y.permute(0, 2, 3, 1).contiguous().cpu().numpy(), rows


# ------------------------------------------------------------------------- public
def rebuild_dataset(degradation: Degradation, source: Source, out: str | Path, *, seed: int = 0,
                    device: str | torch.device = "cpu", batch_size: int = 32, workers: int = 2,
                    shard: tuple[int, int] | str = (0, 1), split: str | None = None,
                    on_error: str = "stop", command: str | None = None,
                    limit: int | None = None, threads: int | None = 1) -> RebuildResult:
    """Write the degraded copy of ``source`` into ``out`` (see the module docstring).

    Args:
        degradation: any configured :class:`~degrade.base.Degradation`.
        source: the dataset to read (:func:`fercore.sources.get_source`).
        out: output folder (created); re-running into it resumes.
        seed: run seed; with the image id it fixes every random draw.
        device: where the maths runs (``cpu``, ``cuda``, ``cuda:1``); noise is drawn on the CPU.
        batch_size: images per batch (same-size images only); does not change any output.
        workers: threads that decode, degrade, encode and write (0: everything in the calling
            thread); does not change any output.
        shard: ``(i, n)`` or ``"i/n"``: process only shard ``i`` of ``n``.
        split: ``train``/``val``/``test`` or ``None`` for all.
        on_error: ``"stop"`` raises at the first unreadable input; ``"skip"`` leaves it out and
            lists it in the run record.
        command: the command line, for the run record (default: ``sys.argv``).
        limit: only the first ``limit`` images (by id) of the selection (before sharding).
        threads: torch's intra-op threads during a CPU run (restored afterwards; ``None``
            leaves them). Default 1: the ``workers`` already keep the cores busy with whole
            batches, and intra-op threads on top of them contend (several times slower on a
            loaded machine).

    Returns:
        A :class:`RebuildResult`; ``complete`` tells whether every shard has finished.
    """
    if batch_size < 1:
        raise ConfigError(f"must be >= 1, got {batch_size}", flag="--batch-size")
    if workers < 0:
        raise ConfigError(f"must be >= 0, got {workers}", flag="--workers")
    if on_error not in ("stop", "skip"):
        raise ConfigError(f"{on_error!r}; use stop or skip", flag="--on-error")
    if limit is not None and limit < 1:
        raise ConfigError(f"must be >= 1, got {limit}", flag="--limit")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ConfigError(f"must be an integer, got {seed!r}", flag="--seed")
    si, sn = parse_shard(shard)
    dev = resolve_device(device)
    if threads is not None and dev.type == "cpu" and threads < 1:  # before anything is written
        raise ConfigError(f"must be >= 1, got {threads}", flag="--threads")
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder", flag="--out")
    try:
        if out.resolve() == source.root.resolve() or source.root.resolve() in out.resolve().parents:
            raise ConfigError(f"{out} is inside the source dataset {source.root}; write elsewhere", flag="--out")
    except OSError:
        pass
    all_recs = source.records(split)
    if limit is not None:
        all_recs = all_recs[:limit]
    missing_rel = [r.id for r in all_recs if not r.relpath]
    if missing_rel:
        raise DataError(f"records without a relative path (e.g. {missing_rel[0]}); cannot mirror", source.root)
    out.mkdir(parents=True, exist_ok=True)
    for r in all_recs:  # before anything is written: no output may land outside --out
        inside(out, r.relpath, f"output path of image {r.id!r}")

    ident = _identity(degradation, source, seed, split, limit, all_recs)
    with _locked(out):
        record = _read_json(out / RUN_RECORD)
        if record is not None:
            if record.get("identity") != ident:
                raise _identity_error(out, record.get("identity"), ident)
        else:
            record = {"toolkit": "fer-degraded-toolkit", "identity": ident, "shards": {}}
        record["version"] = __version__
        atomic_write_text(out / RUN_RECORD, _dumps(record))
        remove_stale_temps(out)  # temporaries of a killed run (never those of a live process)

    recs = [r for r in all_recs if shard_of(r.id, sn) == si]

    result = RebuildResult(out=out, selected=len(recs))
    journal = Journal(out / STATE_DIR / f"journal-{si}-of-{sn}.jsonl")
    done = _all_entries(out)
    todo: list[Record] = []
    for rec in recs:
        entry = done.get(rec.id)
        f = out / rec.relpath
        if entry is not None and entry.get("path") == rec.relpath and f.is_file() and sha256_file(f) == entry["sha256"]:
            result.skipped.append(rec.id)
        else:
            todo.append(rec)

    old_threads = torch.get_num_threads()
    if threads is not None and dev.type == "cpu":
        torch.set_num_threads(threads)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fer-io") if workers > 0 else None
    window = max(2 * batch_size, 4 * max(workers, 1))
    buckets: dict[tuple[int, int], tuple[list[Record], list[np.ndarray]]] = {}
    try:
        with make_progress() as progress:
            task = progress.add_task(f"{degradation.kind} {si}/{sn}", total=len(recs))
            progress.advance(task, len(result.skipped))
            writer = _Batches(pool, out, journal, result, lambda k: progress.advance(task, k),
                              max_pending=max(2, workers + 1))

            def flush(key: tuple[int, int]) -> None:
                brecs, bimgs = buckets.pop(key)
                writer.submit(degrade_batch, brecs, degradation, bimgs, seed, dev)

            try:
                for rec, img, err in _prefetch(pool, source, todo, window):
                    if err is not None:
                        if on_error == "stop":
                            raise ImageReadError(f"{err}; fix or remove it, or pass --on-error skip "
                                                 "(finished images are kept; re-run to resume)")
                        result.failed.append({"id": rec.id, "path": rec.relpath, "error": err})
                        console.print(f"[yellow]skipped unreadable input:[/] {err}")
                        progress.advance(task)
                        continue
                    key = img.shape[:2]
                    buckets.setdefault(key, ([], []))
                    buckets[key][0].append(rec)
                    buckets[key][1].append(img)
                    if len(buckets[key][0]) >= batch_size:
                        flush(key)
                for key in sorted(buckets):
                    flush(key)
            finally:
                writer.drain()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(old_threads)
        _finish_run(out, degradation, ident, (si, sn), result, command, dev, batch_size, workers,
                    expected_ids=[r.id for r in all_recs], source=source)
    return result


def _finish_run(out: Path, degradation: Degradation, ident: dict[str, Any], shard: tuple[int, int],
                result: RebuildResult, command: str | None, device: torch.device, batch_size: int,
                workers: int, expected_ids: list[str], source: Source) -> None:
    """Rebuild manifest.csv from every journal, write the label files for the images it holds
    (so the copy is readable at every stage: its labels name only images that exist) and
    update the run record (under the lock)."""
    with _locked(out):
        entries = _all_entries(out)
        expected = set(expected_ids)
        rows = []
        for e in entries.values():
            if e["id"] not in expected:
                continue
            row = {"id": e["id"], "split": e["split"], "label": e["label"], "class": e["class"],
                   "path": e["path"]}
            row.update(e["params"])
            row["sha256"] = e["sha256"]
            rows.append(row)
        columns = [*FIXED_COLUMNS, *degradation.param_names(), "sha256"]
        write_manifest(out / MANIFEST, rows, columns)
        label_files = source.mirror_labels(out, ids={r["id"] for r in rows})
        result.complete = len(rows) == len(expected)
        remove_stale_temps(out)
        record = _read_json(out / RUN_RECORD) or {"toolkit": "fer-degraded-toolkit", "identity": ident, "shards": {}}
        record.setdefault("shards", {})[f"{shard[0]}/{shard[1]}"] = {
            "command": command if command is not None else " ".join(sys.argv),
            "device": str(device),
            "batch_size": batch_size,
            "workers": workers,
            "torch": torch.__version__,
            **result.counts,
            "failed_inputs": result.failed,
        }
        record["images_in_manifest"] = len(rows)
        record["images_expected"] = len(expected)
        record["complete"] = result.complete
        record["manifest"] = MANIFEST
        record["manifest_sha256"] = sha256_file(out / MANIFEST)
        record["label_files"] = {rel: sha256_file(out / rel) for rel in sorted(label_files)}
        record["params_seed"] = f"numpy_rng(seed, {degradation.kind!r}, 'params', id)"
        record["noise_seed"] = f"torch_generator(seed, {degradation.kind!r}, 'noise', id) on the CPU"
        record["png_compression"] = PNG_COMPRESSION
        atomic_write_text(out / RUN_RECORD, _dumps(record))


def verify_dataset(out: str | Path, *, progress: bool = True) -> list[HashMismatch]:
    """Check a rebuilt set against its records; returns every difference (empty = intact).

    What it checks (docs/security.md): ``run.json`` is readable and says the set is complete;
    ``manifest.csv`` and every label file have the hashes recorded in ``run.json`` (so no row,
    label, class or parameter was edited and no row deleted); the manifest has as many rows as
    recorded; every image it names lies inside ``out`` and has its recorded sha256; the labels
    the copy's own label files give (read the way every loader reads them) equal the
    manifest's; and no other file is in the set. Nothing outside ``out`` is read.
    """
    out = Path(out).expanduser()
    if not out.is_dir():
        raise DataError("not a folder; pass the --out of a rebuild", out)
    record = _read_json(out / RUN_RECORD)
    if not isinstance(record, dict) or not isinstance(record.get("identity"), dict):
        raise DataError("not a set written by fer-degrade (no run record with an identity); nothing to verify "
                        "against", out / RUN_RECORD)
    rows = read_manifest(out / MANIFEST, required=("id", "split", "label", "class", "path", "sha256"))
    bad: list[HashMismatch] = []

    def hashed(rel: str, expected: str | None, what: str) -> None:
        if expected is None:
            bad.append(HashMismatch(rel, "unrecorded", detail=f"run.json records no hash of this {what} "
                                    "(written by an older toolkit); rebuild into a new --out"))
            return
        try:
            f = inside(out, rel, what)
        except DataError as exc:
            bad.append(HashMismatch(rel, "outside", expected, detail=str(exc).split(": ", 1)[-1]))
            return
        if not f.is_file():
            bad.append(HashMismatch(rel, "missing", expected))
        elif (actual := sha256_file(f)) != expected:
            bad.append(HashMismatch(rel, "changed", expected, actual))

    hashed(MANIFEST, record.get("manifest_sha256"), "manifest")
    label_files = record.get("label_files")
    for rel, digest in sorted((label_files or {}).items()):
        hashed(rel, digest, "label file")
    if record.get("images_in_manifest") != len(rows):
        bad.append(HashMismatch(MANIFEST, "rows", str(record.get("images_in_manifest")), str(len(rows)),
                                detail=f"{len(rows)} rows, run.json records {record.get('images_in_manifest')}"))
    if record.get("complete") is not True:
        bad.append(HashMismatch(RUN_RECORD, "incomplete", detail=f"{record.get('images_in_manifest')} of "
                                f"{record.get('images_expected')} images: the rebuild has not finished (re-run it "
                                "to resume) or skipped unreadable inputs"))
    if progress:
        with make_progress() as p:
            task = p.add_task("verifying", total=len(rows))
            images = verify_hashes(out, rows, progress=lambda: p.advance(task))
    else:
        images = verify_hashes(out, rows)
    gone = {m.path for m in images if m.problem == "missing"}
    if not any(m.problem == "outside" for m in images + bad):  # a loader would follow such paths out
        bad.extend(_label_mismatches(out, record["identity"], [r for r in rows if r["path"] not in gone]))
    known = {MANIFEST, RUN_RECORD, "bench-ready.json", *(label_files or {})}
    known.update(r["path"] for r in rows)
    for f in sorted(out.rglob("*")):
        rel = f.relative_to(out).as_posix()
        if rel.split("/", 1)[0] != STATE_DIR and not f.is_dir() and rel not in known:
            bad.append(HashMismatch(rel, "extra", detail="file not in the manifest (a leftover temporary, "
                                    "or added by hand)"))
    return images + bad


def _label_mismatches(out: Path, ident: dict[str, Any], rows: list[dict[str, str]]) -> list[HashMismatch]:
    """Read the copy with its own source (as training would) and compare with the manifest."""
    from fercore.sources import get_source

    src = ident.get("source") or {}
    try:
        recs = get_source(src.get("source"), out, **(src.get("options") or {})).records()
    except FerError as exc:
        return [HashMismatch(RUN_RECORD, "labels", detail=f"the copy does not read as a {src.get('source')} "
                             f"set: {exc}")]
    want = {r["id"]: (r["split"], r["label"], r["class"], r["path"]) for r in rows}
    paths = {r["path"] for r in rows}
    got = {r.id: (r.split, str(r.label), r.class_name, r.relpath) for r in recs
           if r.id in want or r.relpath not in paths}
    bad = []
    for rid in sorted(set(got) | set(want)):
        g, w = got.get(rid), want.get(rid)
        if g != w:
            bad.append(HashMismatch(w[3] if w else g[3], "label", str(w), str(g),
                                    detail=f"{rid}: manifest says {w}, the copy's label files give {g}"))
    return bad


__all__ = ["RebuildResult", "rebuild_dataset", "verify_dataset", "shard_of", "parse_shard", "resolve_device",
           "MANIFEST", "RUN_RECORD", "FerError"]
