"""Train the main job's tiny presets on the embedded sample set and print accuracy and time.

Runs ``lrdif`` and ``scn`` (their ``tiny`` presets, as ``fer-bench run --methods lrdif,scn``
does) and, as the baseline measured in the same run, the reference ``cnn`` with its widths cut
to the same trunk size (``cnn-tiny``'s 8-64) at 64 px for the same 6 epochs, through the
benchmark runner, one torch thread. Prints each job's test accuracy, training time and the time
ratio to the baseline (wall-clock figures on a shared machine are noisy; the ratios are not).

    python scripts/bench_tiny_sample.py                     # sample set, seed 0
    python scripts/bench_tiny_sample.py --seeds 0,1,2 --datasets sample,ll-sample
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@click.command()
@click.option("--datasets", default="sample", show_default=True, help="Comma-separated dataset names.")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated run seeds.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Runs folder (default: a temporary one).")
def main(datasets: str, seeds: str, out: Path | None) -> None:
    from benchmark.execute import execute
    from benchmark.plan import plan_jobs
    from benchmark.datasets import DataSettings, resolve_datasets
    from benchmark.distributed import DistInfo
    from benchmark.runner import RunSettings
    from benchmark.specs import RecipeOverrides, parse_methods
    from fercore.progress import out_console

    out = out or Path(tempfile.mkdtemp(prefix="bench-tiny-"))
    ds = resolve_datasets([d.strip() for d in datasets.split(",")], DataSettings())
    seed_list = [int(s) for s in seeds.split(",")]
    jobs = (plan_jobs(parse_methods("cnn+widths=[8,16,32,64]"), ds, seed_list,
                      RecipeOverrides(epochs=6, input_size=64, batch_size=32), "tiny")
            + plan_jobs(parse_methods("lrdif,scn"), ds, seed_list, RecipeOverrides(), "tiny"))
    results = execute(jobs, RunSettings(out, device="cpu", threads=1), DistInfo(), report=False)
    base = {(r["dataset"], r["seed"]): r["train_time_s"] for r in results if r.get("method") == "cnn"}
    out_console.print(f"{'dataset':<11} {'seed':>4} {'method':<24} {'epochs':>6} {'acc %':>6} "
                      f"{'train s':>8} {'x cnn':>6}")
    for r in results:
        if r.get("status") not in ("done", "skipped"):
            out_console.print(f"{r.get('dataset', '?')} {r.get('label', '?')}: {r.get('status')}")
            continue
        ratio = r["train_time_s"] / base[(r["dataset"], r["seed"])]
        out_console.print(f"{r['dataset']:<11} {r['seed']:>4} {r['label']:<24} {r['epochs']:>6} "
                          f"{r['accuracy']:>6.1f} {r['train_time_s']:>8.1f} {ratio:>6.2f}")


if __name__ == "__main__":
    main()
