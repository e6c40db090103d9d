"""The seed recipes against their own round 0, one paper-style table per recipe.

Runs each recipe (all by default) on this machine and prints, per round, held-out pass@1 (greedy
exact match), the round's sampling figures and the figures its paper cares about, then each
recipe's bar: MET or MISSED with the numbers.

    python bench/recipes.py [RECIPE ...] [--set key=value ...] [--out DIR]

Bars (issue 4): star and grpo raise pass@1 by >= 15 points; bstar ends >= star and keeps diversity
higher; self-rewarding raises pass@1 without ground truth and its verdict AUROC rises across
rounds; self-correct has delta(wrong->right) > delta(right->wrong).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from selftaught.builtin_recipes import resolve
from selftaught.engine import Run, SilentReporter
from selftaught.recipe import load_recipe

RECIPES = ["star", "bstar", "self-rewarding", "self-correct", "grpo", "multiagent"]
COMMON = ["pass@1", "sample_accuracy", "pass@k", "distinct_answers", "kept_precision"]
EXTRA = {
    "bstar": ["bstar_temperature", "bstar_threshold", "balance", "exploration", "exploitation"],
    "star": ["balance", "exploration", "exploitation"],
    "self-rewarding": ["judge_auroc/self-verdict", "verdict_ece", "gv_gap/self-verdict", "judge_auroc/self-certainty",
                       "pair_accuracy", "chosen_precision"],
    "self-correct": ["pass@1_turn2", "delta_wrong_to_right", "delta_right_to_wrong"],
    "multiagent": ["cross_member_distinct"],
}


def figure(report, name: str) -> float:
    """A round's figure; 'pass@k', 'exploration' and 'exploitation' stand for whichever k or S."""
    f = report.figures
    if name in f:
        return f[name]
    for key, v in f.items():
        if name == "pass@k" and key.startswith("pass@") and key.endswith("_samples") and not key.startswith("pass@1_"):
            return v
        if name in ("exploration", "exploitation") and key.startswith(name + "_"):
            return v
    return float("nan")


class Table(SilentReporter):
    def __init__(self, name: str):
        self.name, self.start, self.columns = name, time.perf_counter(), COMMON + EXTRA.get(name, [])
        print(f"\n## {name}\n")
        print("| round | wall s | kept | " + " | ".join(self.columns) + " |")
        print("|---" * (3 + len(self.columns)) + "|")

    def round_done(self, r) -> None:
        cells = " | ".join(_fmt(figure(r, c)) for c in self.columns)
        print(f"| {r.round} | {time.perf_counter() - self.start:.0f} | {r.kept} | {cells} |", flush=True)
        for alarm in r.alarms:
            print(f"  collapse alarm: {alarm}")


def _fmt(v: float) -> str:
    return "-" if v != v else f"{v:.3f}"


def run(name: str, overrides: list[str], out: Path) -> tuple[list, int]:
    """The recipe's round reports and its held-out problems a difficulty."""
    recipe = load_recipe(resolve(name), overrides)
    return Run(recipe, out / name, Table(name)).execute(), recipe.monitor.eval_per_difficulty


def series(reports, name: str) -> list[float]:
    return [figure(r, name) for r in reports]


def standard_error(report, n: int) -> float:
    """Standard error of a round's pass@1: the mean of its per-difficulty accuracies, each measured
    on ``n`` held-out problems."""
    acc = list(report.accuracy.values())
    return math.sqrt(sum(p * (1 - p) / n for p in acc)) / len(acc)


def gap(a, b, n_a: int, n_b: int) -> str:
    """pass@1 of ``a`` minus ``b`` in points, with the difference's standard error. Both are
    measured on the same held-out problems, so the error (taken as if they were not) is an upper
    bound: a gap inside it is not evidence either way."""
    se = math.hypot(standard_error(a, n_a), standard_error(b, n_b))
    return f"{(figure(a, 'pass@1') - figure(b, 'pass@1')) * 100:+.1f} ± {se * 100:.1f} points"


def transition_gap(report, n: int) -> str:
    """Δ(wrong→right) minus Δ(right→wrong) in points, with its standard error. Each held-out problem
    (``n`` a difficulty) is fixed (+1), broken (-1) or neither (0) by revision, so the gap is the
    mean of those and its variance is f + b - (f - b)^2 over the problem count."""
    fix, brk = figure(report, "delta_wrong_to_right"), figure(report, "delta_right_to_wrong")
    se = math.sqrt(max(0.0, fix + brk - (fix - brk) ** 2) / (n * len(report.accuracy)))
    return f"{(fix - brk) * 100:+.1f} ± {se * 100:.1f} points"


def verdicts(results: dict[str, list], evals: dict[str, int]) -> list[tuple[str, bool, str]]:
    """Each bar: what it asks, whether it is met, the numbers (differences with their standard
    error; ``evals``: each recipe's held-out problems a difficulty)."""
    out = []

    def rise(name: str, what: str, met: Callable[[float], bool]) -> None:
        """A bar on how far pass@1 moved from round 0 to the last round."""
        r, n = results[name], evals[name]
        p = series(r, "pass@1")
        out.append((f"{name}: {what}", met(p[-1] - p[0]), f"{p[0]:.3f} -> {p[-1]:.3f} ({gap(r[-1], r[0], n, n)})"))

    for name in ("star", "grpo"):
        if name in results:
            rise(name, "pass@1 +15 points over round 0", lambda change: change >= 0.15)
    if "bstar" in results and "star" in results:
        b, s = series(results["bstar"], "pass@1"), series(results["star"], "pass@1")
        out.append(("bstar: final pass@1 >= star's", b[-1] >= s[-1], f"bstar {b[-1]:.3f}, star {s[-1]:.3f} "
                    f"({gap(results['bstar'][-1], results['star'][-1], evals['bstar'], evals['star'])})"))
        bd = [x for x in series(results["bstar"], "distinct_answers") if x == x]
        sd = [x for x in series(results["star"], "distinct_answers") if x == x]
        mb, ms = sum(bd) / len(bd), sum(sd) / len(sd)
        out.append(("bstar: diversity above star's (mean distinct answers per query)", mb > ms,
                    f"bstar {mb:.3f}, star {ms:.3f}"))
    if "self-rewarding" in results:
        rise("self-rewarding", "pass@1 rises without ground truth", lambda change: change > 0)
        a = [x for x in series(results["self-rewarding"], "judge_auroc/self-verdict") if x == x]
        out.append(("self-rewarding: verdict AUROC rises across rounds", len(a) > 1 and a[-1] > a[0],
                    " -> ".join(f"{x:.3f}" for x in a)))
    if "self-correct" in results:
        last = results["self-correct"][-1]
        fix, brk = figure(last, "delta_wrong_to_right"), figure(last, "delta_right_to_wrong")
        out.append(("self-correct: delta(wrong->right) > delta(right->wrong)", fix > brk,
                    f"{fix:.3f} vs {brk:.3f} ({transition_gap(last, evals['self-correct'])}, held-out, final round)"))
    if "multiagent" in results:
        rise("multiagent", "pass@1 rises without ground truth", lambda change: change > 0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipes", nargs="*", default=RECIPES)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-recipes-"))
    results, evals, wall = {}, {}, {}
    for name in args.recipes:
        tick = time.perf_counter()
        results[name], evals[name] = run(name, args.overrides, out)
        wall[name] = time.perf_counter() - tick
        print(f"\n{name}: {wall[name] / 60:.1f} min (bar: within 10 min)")
    print("\n## Bars\n")
    print("(± one standard error of a difference; inside it, a gap is noise)\n")
    for what, ok, numbers in verdicts(results, evals):
        print(f"- {'MET   ' if ok else 'MISSED'} {what}: {numbers}")
    for name, s in wall.items():
        print(f"- {'MET   ' if s <= 600 else 'MISSED'} {name} within 10 minutes: {s / 60:.1f} min")
    print(f"\nruns in {out}")


if __name__ == "__main__":
    main()
