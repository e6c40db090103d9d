"""Learning-progress problems against uniform ones (countdown, our model).

The `learning-progress` recipe and the same recipe with `curriculum.type = "uniform"` over the same
difficulties, at the same problems a round and samples a problem (the same sampled attempts; their
tokens differ as much as the difficulties chosen do, and are printed), for ``--seeds`` run seeds.
Both runs of a seed share round 0 (the same seed training). Prints each round's held-out greedy
pass@1 with its standard error for both, their difference in standard errors, the problems each
curriculum posed by difficulty, and the target line.

    python bench/learning_progress.py [--seeds 1] [--rounds 4] [--out DIR] [--set key=value ...]

With several seeds, a figure is the mean over seeds and its standard error the binomial one of that
mean (the held-out sets' sampling error; seed-to-seed spread is shown, not folded in).

Target: learning progress ahead of uniform by >= 3 s.e. after the last round.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
import tomllib
from pathlib import Path

import torch

from search import eval_size, se, tokens_per_round  # bench/search.py, the same way of reading a run
from selftaught.builtin_recipes import resolve
from selftaught.engine import Run, SilentReporter
from selftaught.recipe import load_recipe, to_toml
from selftaught.store import RunStore

RECIPE = "learning-progress"


class Rounds(SilentReporter):
    def __init__(self, name: str, per_difficulty: int):
        self.per, self.start = per_difficulty, time.perf_counter()
        print(f"\n### {name}\n\n| round | wall s | pass@1 ± s.e. | accuracy by difficulty |\n|---|---|---|---|",
              flush=True)

    def round_done(self, report) -> None:
        p, n = report.figures["pass@1"], self.per * len(report.accuracy)
        by = ", ".join(f"{d}: {a:.3f}" for d, a in report.accuracy.items())
        print(f"| {report.round} | {time.perf_counter() - self.start:.0f} | {100 * p:.1f} ± {100 * se(p, n):.1f} | "
              f"{by} |", flush=True)


def recipes(seed: int, rounds: int, out: Path, overrides: list[str]):
    """The learning-progress recipe and its uniform twin (the same difficulties, problems and samples),
    the twin written to ``out`` as the file it runs."""
    path = resolve(RECIPE)
    data = tomllib.loads(path.read_text())
    c = data["curriculum"]
    data["run"]["name"] = "uniform"
    data["curriculum"] = {"type": "uniform", "problems_per_round": c["problems_per_round"],
                          "min_difficulty": c["min_difficulty"], "max_difficulty": c["max_difficulty"]}
    twin = out / "uniform.toml"
    twin.write_text(to_toml(data))
    given = [f"run.seed={seed}", f"run.rounds={rounds}", *overrides]
    return load_recipe(path, given), load_recipe(twin, given)


def posed(run_dir: Path) -> dict[int, dict[int, int]]:
    """{round: {difficulty: problems posed}}."""
    with RunStore(run_dir) as store:
        rows = store.db.execute("SELECT round, difficulty, COUNT(DISTINCT problem) FROM attempts WHERE round > 0 "
                                "GROUP BY round, difficulty ORDER BY round, difficulty").fetchall()
    out: dict[int, dict[int, int]] = {}
    for r, d, n in rows:
        out.setdefault(r, {})[d] = n
    return out


def pass1(run_dir: Path) -> dict[int, float]:
    with RunStore(run_dir) as store:
        return store.metric("pass@1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=1, help="run seeds 0..N-1")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--set", action="append", default=[], help="key=value for both recipes (a smoke test)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    out = args.out or Path(tempfile.mkdtemp(prefix="lp-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"# bench/learning_progress.py — {args.rounds} rounds, {args.seeds} seed(s), runs in {out}; "
          f"torch threads {torch.get_num_threads()}")
    runs = {"learning-progress": [], "uniform": []}
    for seed in range(args.seeds):
        for recipe in recipes(seed, args.rounds, out, args.set):
            d = out / f"{recipe.run.name}-seed{seed}"
            if not (d / "run.sqlite").exists():
                c = recipe.curriculum
                Run(recipe, d, Rounds(f"{recipe.run.name}, seed {seed} (curriculum.type = {c.type}, difficulties "
                                      f"{c.min_difficulty}-{c.max_difficulty})", recipe.monitor.eval_per_difficulty)
                    ).execute()
            runs[recipe.run.name].append(d)

    names = list(runs)
    print("\n### problems posed by difficulty, and tokens sampled (seed 0)\n")
    print("| round | " + " | ".join(f"{n} problems | {n} tokens" for n in names) + " |")
    print("|---|" + "---|---|" * len(names))
    counts = {n: posed(runs[n][0]) for n in names}
    tokens = {n: tokens_per_round(runs[n][0]) for n in names}
    for r in sorted(counts[names[0]]):
        cells = [f"{', '.join(f'{d}: {k}' for d, k in counts[n].get(r, {}).items())} | {tokens[n].get(r, 0):.0f}"
                 for n in names]
        print(f"| {r} | " + " | ".join(cells) + " |")

    n_eval = eval_size(runs[names[0]][0])
    figures = {n: [pass1(d) for d in runs[n]] for n in names}
    k = args.seeds
    print(f"\n### held-out greedy pass@1 ({n_eval} problems; mean of {k} seed(s)); difference in its standard "
          "errors\n")
    print("| round | learning-progress | uniform | difference (s.e.) | per seed (lp − uniform) |")
    print("|---|---|---|---|---|")
    last, gap = 0, float("nan")
    for r in range(args.rounds + 1):
        if not all(r in f for fs in figures.values() for f in fs):
            break
        mean = {n: sum(f[r] for f in figures[n]) / k for n in names}
        err = {n: math.sqrt(sum(se(f[r], n_eval) ** 2 for f in figures[n])) / k for n in names}
        d = mean[names[0]] - mean[names[1]]
        s = math.sqrt(err[names[0]] ** 2 + err[names[1]] ** 2)
        spread = ", ".join(f"{100 * (a[r] - b[r]):+.1f}" for a, b in zip(*figures.values()))
        print(f"| {r} | {100 * mean[names[0]]:.1f} ± {100 * err[names[0]]:.1f} | {100 * mean[names[1]]:.1f} ± "
              f"{100 * err[names[1]]:.1f} | {100 * d:+.1f} ({d / s:+.1f} s.e.) | {spread} |", flush=True)
        last, gap = r, d / s
    print(f"\nlearning-progress − uniform after round {last}: {gap:+.1f} s.e.")
    print(f"target: ahead by >= 3 s.e.: {'MET' if gap >= 3 else 'MISSED'}")


if __name__ == "__main__":
    main()
