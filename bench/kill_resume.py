"""Kill a run with SIGKILL at random instants, resume it, and compare with an uninterrupted run.

    python bench/kill_resume.py [--kills 20] [--seed 0]

A small recipe runs once uninterrupted; then, for each of ``--kills`` instants drawn uniformly over
that run's wall time, a fresh run is killed at that instant and resumed (or, when it died before its
store existed, started again) until it finishes. Prints ``identical: K/N`` over final weights and
optimizer state (bytes), metrics, attempts, scores and losses.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from selftaught.store import FILENAME, RunStore
from selftaught.store.fingerprint import run_fingerprint

RECIPE = """
[run]
rounds = 4
seed = 11
time_budget_minutes = 0
[task]
name = "reversed-addition"
seed_max_difficulty = 3
seed_examples = 400
[model]
n_layers = 2
d_model = 32
n_heads = 4
d_ff = 64
members = 2
[sampler]
type = "temperature"
temperature = 1.0
batch_size = 32
[[judges]]
type = "length"
[learner]
seed_steps = 80
steps_per_round = 30
batch_size = 32
[curriculum]
problems_per_round = 96
gate = 0.0
[monitor]
eval_per_difficulty = 16
"""


def selftaught(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "selftaught.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="kill-resume-"))
    recipe = root / "recipe.toml"
    recipe.write_text(RECIPE)

    t = time.perf_counter()
    ref = selftaught("run", str(recipe), "--out", str(root / "reference"))
    if ref.wait() != 0:
        sys.exit(f"reference run failed: {ref.stderr.read()}")
    span = time.perf_counter() - t
    expected = run_fingerprint(root / "reference")
    print(f"reference: {expected['final_round']} rounds in {span:.1f}s (process start included)")

    same = 0
    for i in range(args.kills):
        out = root / f"run-{i}"
        at = rng.uniform(0, span)
        proc = selftaught("run", str(recipe), "--out", str(out))
        try:
            proc.wait(timeout=at)
            killed = False  # finished before the instant came
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            killed = True
        committed = "-"
        if killed:
            if (out / FILENAME).exists():
                with RunStore(out) as store:
                    committed = store.last_round()
                again = selftaught("resume", str(out))
            else:
                again = selftaught("run", str(recipe), "--out", str(out))
            if again.wait() != 0:
                print(f"  kill {i + 1}: resume failed: {again.stderr.read().strip()}")
                continue
        ok = run_fingerprint(out) == expected
        same += ok
        print(f"  kill {i + 1:2d} at {at:5.1f}s: {'killed' if killed else 'finished first'}, last committed round "
              f"{committed}, {'identical' if ok else 'DIFFERENT'}")
    print(f"identical: {same}/{args.kills}")


if __name__ == "__main__":
    main()
