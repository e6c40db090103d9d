"""Reach of the default recipe against wall time on this machine.

Runs ``recipes/sit-addition.toml`` (or RECIPE) with a time budget and prints, after each round,
the reach (largest d with every difficulty 1..d solved at >= 0.95 on the held-out set) and the
wall time so far, and at the end the largest fall of reach from one round to the next. Target on a
2-core machine (issue 43): reach >= 24 within 30 minutes, never falling back by more than one.

    python bench/sit_reach.py [--minutes 30] [--recipe PATH] [--set key=value ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from selftaught.builtin_recipes import resolve
from selftaught.engine import Run, SilentReporter
from selftaught.recipe import load_recipe


class PrintReporter(SilentReporter):  # no progress bars: one line per round is the output
    def __init__(self):
        self.start = time.perf_counter()
        self.best = 0
        self.last: int | None = None
        self.fall = 0  # the largest drop of reach between consecutive rounds

    def round_done(self, r) -> None:
        self.best = max(self.best, r.reach)
        if self.last is not None:
            self.fall = max(self.fall, self.last - r.reach)
        self.last = r.reach
        phases = " ".join(f"{k} {v:.0f}s" for k, v in r.phases.items())
        print(f"round {r.round:2d}  wall {time.perf_counter() - self.start:7.1f}s  reach {r.reach:2d}  "
              f"frontier {r.frontier:2d}  kept {r.kept:5d}/{r.made:<5d} kept-right {r.kept_precision:.3f}  "
              f"({phases})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--recipe", default="sit-addition")
    ap.add_argument("--set", action="append", default=[], dest="sets")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    overrides = [f"run.time_budget_minutes={args.minutes}", "run.rounds=100", *args.sets]
    recipe = load_recipe(resolve(args.recipe), overrides)
    out = args.out or tempfile.mkdtemp(prefix="sit-reach-")
    print(f"recipe {args.recipe}, budget {args.minutes} min, threads {torch.get_num_threads()}, run dir {out}")
    reporter = PrintReporter()
    reports = Run(recipe, out, reporter).execute()
    wall = time.perf_counter() - reporter.start
    print(f"final reach {reports[-1].reach} (best {reporter.best}) after {len(reports) - 1} rounds "
          f"in {wall / 60:.1f} min, largest fall between rounds {reporter.fall}  "
          f"(target: reach >= 24 within 30 min, falls <= 1)")


if __name__ == "__main__":
    main()
