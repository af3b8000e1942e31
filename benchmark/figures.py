"""The papers' figures from a runs folder, as PNG and PDF (matplotlib, Agg backend).

=============================  =========================================================
file                            what (paper figure)
=============================  =========================================================
``tsne-<dataset>``              t-SNE of test features, one panel per method; on a degraded
                                set clean (o) and degraded (x) images of the same test
                                items, colour = class (LRDif Fig. 4/5, LLDif Fig. 5)
``tstudy-<dataset>-<method>``   accuracy against diffusion steps T, mean +- std over seeds
                                (LRDif Fig. 6, LLDif Fig. 8); needs runs that differ in T
``confidence-<dataset>``        distribution of the top softmax score on clean and degraded
                                test images, one panel per method, means and accuracy marked
                                (LLDif Fig. 6)
``classes-<base>``              images per class and split of a dataset and its degraded
                                versions (LLDif Fig. 4)
``confusion-<dataset>-<run>``   row-normalised confusion matrix, summed over seeds
=============================  =========================================================

Choices: each panel uses the run with the lowest seed of its configuration; t-SNE runs on at
most ``tsne_max`` items per domain (a class-balanced subset chosen by item id), with
perplexity ``min(30, (n - 1) / 3)``, PCA initialisation and a fixed random state, so the same
runs give the same picture. The T axis reads the model option named ``t_key`` (default
``T``) from each run's recorded constructor arguments. ``index.json`` lists what was written
and why anything was skipped.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from fercore.atomic import atomic_open, atomic_write_text
from fercore.progress import track
from fercore.seeding import balanced_subset, derive_seed

from .datasets import kind_order, parse_dataset_name, safe_name
from .metrics import softmax
from .results import find_results, find_runs, load_predictions

FORMATS = ("png", "pdf")
DEGRADED_MARK, CLEAN_MARK = "x", "o"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out: Path, name: str) -> list[Path]:
    """Save ``fig`` as ``name.png`` and ``name.pdf`` (atomically) and close it."""
    plt = _plt()
    paths = []
    for ext in FORMATS:
        p = out / f"{name}.{ext}"
        with atomic_open(p, "wb") as fh:
            fig.savefig(fh, format=ext, dpi=150, bbox_inches="tight",
                        metadata={"CreationDate": None} if ext == "pdf" else {"Software": None})
        paths.append(p)
    plt.close(fig)
    return paths


def _configs(results: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(dataset, config hash) -> results sorted by seed."""
    g: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        g[(r["dataset"], r["config_hash"])].append(r)
    return {k: sorted(v, key=lambda r: int(r["seed"])) for k, v in sorted(g.items())}


def _balanced_subset(labels: np.ndarray, ids: np.ndarray, n_max: int) -> np.ndarray:
    return np.array(balanced_subset(labels, ids, n_max, 0, "tsne-subset"))


def tsne_embed(features: np.ndarray, seed_key: str) -> np.ndarray:
    """2-D t-SNE of ``(N, D)`` features (deterministic for a given key)."""
    from sklearn.manifold import TSNE

    n = features.shape[0]
    perplexity = float(max(2.0, min(30.0, (n - 1) / 3)))
    ts = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=derive_seed(0, "tsne", seed_key) % 2**31)
    return ts.fit_transform(features.astype(np.float64))


def _class_colors(k: int):
    plt = _plt()
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(k)]


def figure_tsne(dataset: str, configs: list[list[dict[str, Any]]], out: Path, tsne_max: int) -> list[Path] | str:
    plt = _plt()
    panels = []
    for runs in configs:
        r = runs[0]
        pred = load_predictions(r["run_dir"])
        if "features" not in pred:
            continue
        panels.append((r, pred))
    if not panels:
        return "no features saved (models returned none, or --no-save-features)"
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    for ax, (r, pred) in zip(axes[0], panels):
        classes = r["classes"]
        sel = _balanced_subset(pred["labels"], pred["ids"], tsne_max)
        deg = parse_dataset_name(dataset).degraded
        feats, labs = [pred["features"][sel]], [pred["labels"][sel]]
        dom = [np.full(len(sel), not deg)]
        if "clean_features" in pred:
            csel = _balanced_subset(pred["clean_labels"], pred["clean_ids"], tsne_max)
            feats.append(pred["clean_features"][csel])
            labs.append(pred["clean_labels"][csel])
            dom.append(np.ones(len(csel), bool))
        emb = tsne_embed(np.concatenate(feats), f"{dataset}/{r['config_hash']}")
        lab, is_clean = np.concatenate(labs), np.concatenate(dom)
        colors = _class_colors(len(classes))
        for ci, cname in enumerate(classes):
            for clean, marker in ((False, DEGRADED_MARK), (True, CLEAN_MARK)):
                m = (lab == ci) & (is_clean == clean)
                if m.any():  # the legend names classes once, on the dataset's own images
                    ax.scatter(emb[m, 0], emb[m, 1], s=9, marker=marker, color=colors[ci], alpha=0.7,
                               linewidths=0.8, label=cname if clean != deg else None)
        sub = (f"{DEGRADED_MARK} {dataset}, {CLEAN_MARK} clean" if "clean_features" in pred
               else dataset)
        ax.set_title(f"{r['label']} ({r['accuracy']:.1f}%)\n{sub}" if deg else f"{r['label']} ({r['accuracy']:.1f}%)",
                     fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=2)
    fig.suptitle(f"t-SNE of learned features: {dataset}", fontsize=10, y=1.06)
    return save_figure(fig, out, f"tsne-{safe_name(dataset)}")


def figure_confidence(dataset: str, configs: list[list[dict[str, Any]]], out: Path) -> list[Path] | str:
    plt = _plt()
    fig, axes = plt.subplots(1, len(configs), figsize=(3.6 * len(configs), 3.2), squeeze=False, sharey=True)
    bins = np.linspace(0, 1, 21)
    for ax, runs in zip(axes[0], configs):
        r = runs[0]
        pred = load_predictions(r["run_dir"])
        conf = softmax(pred["logits"].astype(np.float64)).max(1)
        ax.hist(conf, bins=bins, alpha=0.55, color="tab:red", density=True, label=f"{dataset} ({conf.mean():.2f})")
        ax.axvline(conf.mean(), color="tab:red", ls="--", lw=1)
        title = f"{r['label']}: acc {r['accuracy']:.1f}%"
        if "clean_logits" in pred:
            cc = softmax(pred["clean_logits"].astype(np.float64)).max(1)
            ax.hist(cc, bins=bins, alpha=0.55, color="tab:blue", density=True, label=f"clean ({cc.mean():.2f})")
            ax.axvline(cc.mean(), color="tab:blue", ls="--", lw=1)
            title += f" / clean {r['clean_accuracy']:.1f}%"
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("confidence (top softmax score)")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("density")
    fig.suptitle(f"Confidence scores: {dataset}", fontsize=10, y=1.04)
    return save_figure(fig, out, f"confidence-{safe_name(dataset)}")


def figure_confusion(dataset: str, runs: list[dict[str, Any]], out: Path) -> list[Path] | str:
    plt = _plt()
    cm = np.sum([np.array(r["confusion"], dtype=np.float64) for r in runs], axis=0)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    classes = runs[0]["classes"]
    k = len(classes)
    fig, ax = plt.subplots(figsize=(0.55 * k + 2.5, 0.55 * k + 2))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    seeds = ",".join(str(r["seed"]) for r in runs)
    ax.set_title(f"{runs[0]['label']} on {dataset} (seeds {seeds})", fontsize=9)
    return save_figure(fig, out, f"confusion-{safe_name(dataset)}-{safe_name(runs[0]['label'])}-{runs[0]['config_hash'][:8]}")


def t_value(r: dict[str, Any], t_key: str) -> Any:
    return (r.get("options") or {}).get(t_key, (r.get("model_kwargs") or {}).get(t_key))


def figure_tstudy(results: list[dict[str, Any]], out: Path, t_key: str) -> tuple[list[Path], list[str]]:
    """One plot per (dataset, method, variant) whose runs cover at least two values of T."""
    plt = _plt()
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        t = t_value(r, t_key)
        if isinstance(t, (int, float)) and not isinstance(t, bool):
            groups[(r["dataset"], r["method"], r.get("variant") or "")].append(r)
    written, skipped = [], []
    for (dataset, method, variant), rs in sorted(groups.items()):
        by_t: dict[float, list[float]] = defaultdict(list)
        for r in rs:
            by_t[float(t_value(r, t_key))].append(float(r["accuracy"]))
        if len(by_t) < 2:
            skipped.append(f"tstudy {dataset}/{method}: one value of {t_key} only")
            continue
        ts = sorted(by_t)
        mean = np.array([np.mean(by_t[t]) for t in ts])
        std = np.array([np.std(by_t[t], ddof=1) if len(by_t[t]) > 1 else 0.0 for t in ts])
        fig, ax = plt.subplots(figsize=(4.2, 3.2))
        ax.errorbar(ts, mean, yerr=std, marker="o", capsize=3)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ts, [f"{t:g}" for t in ts])
        ax.set_xlabel(f"diffusion steps {t_key}")
        ax.set_ylabel("accuracy (%)")
        name = method + (f":{variant}" if variant else "")
        ax.set_title(f"{name} on {dataset}", fontsize=9)
        ax.grid(alpha=0.3)
        written += save_figure(fig, out, f"tstudy-{safe_name(dataset)}-{safe_name(name)}")
    if not groups:
        skipped.append(f"tstudy: no runs record a numeric model option {t_key!r} "
                       f"(run e.g. --methods lrdif --sweep {t_key}=1,2,4,8)")
    return written, skipped


def figure_classes(runs_meta: list[dict[str, Any]], out: Path) -> list[Path]:
    """Images per class and split, one figure per base dataset (all its versions side by side)."""
    plt = _plt()
    by_base: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in runs_meta:
        d = r.get("dataset") or {}
        if isinstance(d, dict) and d.get("counts") and d.get("name"):
            by_base[d["base"]][d["name"]] = d
    written = []
    for base, sets in sorted(by_base.items()):
        names = sorted(sets, key=lambda n: (kind_order(parse_dataset_name(n).kind), n))
        classes = sets[names[0]]["classes"]
        splits = [s for s in ("train", "val", "test") if any(s in sets[n]["counts"] for n in names)]
        fig, axes = plt.subplots(1, len(splits), figsize=(4.5 * len(splits), 3.4), squeeze=False)
        width = 0.8 / len(names)
        for ax, split in zip(axes[0], splits):
            for i, n in enumerate(names):
                counts = sets[n]["counts"].get(split, {})
                ax.bar(np.arange(len(classes)) + i * width - 0.4 + width / 2,
                       [counts.get(c, 0) for c in classes], width, label=n)
            ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
            ax.set_title(f"{split}", fontsize=9)
            ax.set_ylabel("images")
            ax.legend(fontsize=7)
        fig.suptitle(f"Class distribution: {', '.join(names)}", fontsize=10)
        written += save_figure(fig, out, f"classes-{safe_name(base)}")
    return written


def write_figures(runs: str | Path, out: str | Path, *, t_key: str = "T", tsne_max: int = 1500,
                  kinds: tuple[str, ...] = ("tsne", "tstudy", "confidence", "classes", "confusion")) -> dict[str, Any]:
    """Write every figure the runs allow; returns (and writes) ``index.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = find_results(runs)
    configs = _configs(results)
    per_dataset: dict[str, list[list[dict[str, Any]]]] = defaultdict(list)
    for (dataset, _), rs in configs.items():
        per_dataset[dataset].append(rs)
    written: list[Path] = []
    skipped: list[str] = []
    work = []
    if "tsne" in kinds:
        work += [("tsne", d) for d in sorted(per_dataset)]
    if "confidence" in kinds:
        work += [("confidence", d) for d in sorted(per_dataset)]
    if "confusion" in kinds:
        work += [("confusion", k) for k in configs]
    for kind, key in track(work, "figures"):
        if kind == "tsne":
            res = figure_tsne(key, per_dataset[key], out, tsne_max)
        elif kind == "confidence":
            res = figure_confidence(key, per_dataset[key], out)
        else:
            res = figure_confusion(key[0], configs[key], out)
        if isinstance(res, str):
            skipped.append(f"{kind} {key}: {res}")
        else:
            written += res
    if "tstudy" in kinds:
        w, s = figure_tstudy(results, out, t_key)
        written += w
        skipped += s
    if "classes" in kinds:
        written += figure_classes(find_runs(runs), out)
    if not results:
        skipped.append("no finished runs")
    index = {"figures": sorted(str(p.relative_to(out)) for p in written), "skipped": skipped}
    atomic_write_text(out / "index.json", json.dumps(index, indent=2) + "\n")
    return index
