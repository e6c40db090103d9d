"""The spread of every learning test's figures over run seeds and torch thread counts.

    python bench/margins.py [--cases NAME ...] [--seeds 0 1 2 3 4] [--threads 1 2] [--results FILE]

A test that trains must hold on any CPU: another CPU, like another thread count, changes the order
of float reductions, and a model trained a little differently is, in effect, another seed. So each
case of ``tests/learning_cases.py`` runs once per (seed, threads), each in its own process, and
the figures are printed per thread count with their mean, standard deviation and minimum, beside
the bar its test asserts and the bar's distance below the weakest mean in standard deviations
(the suite asks for at least 4; for a case in ``SEEDS_AVERAGED``, whose test asserts the mean of
n seeds, in the mean's spread, sd / sqrt(n)). Results are appended to ``--results`` as they come,
so a long measurement that is stopped keeps what it measured and is resumed where it stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"

ONE = """
import json, random, sys
from pathlib import Path
import torch
sys.path.insert(0, {tests!r})
torch.set_num_threads({threads})
torch.manual_seed(0)
random.seed(0)
from learning_cases import CASES
print("FIGURES " + json.dumps(CASES[{case!r}](Path({out!r}), {seed})))
"""


def measure(case: str, seed: int, threads: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        code = ONE.format(tests=str(TESTS), threads=threads, case=case, out=out, seed=seed)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("FIGURES ")), None)
    if line is None:
        raise RuntimeError(f"{case} seed {seed} threads {threads} failed:\n{done.stderr[-3000:]}")
    return json.loads(line[len("FIGURES "):])


def table(results: list[dict], bars: dict, averaged: dict[str, int]) -> None:
    cases = sorted({r["case"] for r in results})
    for case in cases:
        rows = [r for r in results if r["case"] == case]
        n = averaged.get(case, 1)  # its test asserts the mean of n seeds, whose spread is sd / sqrt(n)
        print(f"\n{case}: {len(rows)} runs" + (f"; its test asserts the mean of {n} seeds" if n > 1 else ""))
        names = [n for n, v in rows[0]["figures"].items() if isinstance(v, (int, float))]  # counts are checked exactly
        for name in names:
            op, bar = bars.get(case, {}).get(name, (None, None))
            worst = None
            for threads in sorted({r["threads"] for r in rows}):
                xs = [r["figures"][name] for r in rows if r["threads"] == threads]
                mean = statistics.fmean(xs)
                sd = statistics.stdev(xs) if len(xs) > 1 else float("nan")
                margin = ""
                if bar is not None and sd == sd:
                    gap = mean - bar if op == ">=" else bar - mean
                    k = gap / (sd / math.sqrt(n)) if sd > 0 else math.copysign(math.inf, gap)  # no spread: in or out
                    worst = k if worst is None else min(worst, k)
                    margin = f"  bar {op} {bar:g}: {k:5.1f} sd"
                print(f"  {name:34} threads {threads}: mean {mean:8.4f} sd {sd:7.4f} min {min(xs):8.4f} "
                      f"max {max(xs):8.4f} (n={len(xs)}){margin}")
            if worst is not None:
                print(f"  {'':34} {'OK' if worst >= 4 else 'UNDER 4 SD'}: {worst:.1f} sd at the weaker thread count")


def main() -> None:
    sys.path.insert(0, str(TESTS))
    from learning_cases import BARS, CASES, SEEDS_AVERAGED

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=sorted(CASES))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    parser.add_argument("--results", type=Path, default=Path("margins.jsonl"))
    parser.add_argument("--jobs", type=int, default=2, help="one-thread runs made at once")
    args = parser.parse_args()
    done = [json.loads(ln) for ln in args.results.read_text().splitlines()] if args.results.exists() else []
    have = {(r["case"], r["seed"], r["threads"]) for r in done}
    todo = [(c, s, t) for t in args.threads for c in args.cases for s in args.seeds if (c, s, t) not in have]

    def one(job):
        case, seed, threads = job
        tick = time.perf_counter()
        figures = measure(case, seed, threads)
        row = {"case": case, "seed": seed, "threads": threads, "figures": figures,
               "wall_s": round(time.perf_counter() - tick, 1)}
        with args.results.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{case} seed {seed} threads {threads}: {figures}", flush=True)
        return row

    for threads in args.threads:  # one-thread runs share the cores; two-thread runs have them alone
        batch = [j for j in todo if j[2] == threads]
        with ThreadPoolExecutor(max(1, args.jobs // threads)) as pool:
            done += list(pool.map(one, batch))
    table([r for r in done if r["case"] in args.cases], BARS, SEEDS_AVERAGED)


if __name__ == "__main__":
    main()
