"""The seed's methods on a pretrained model, side by side at one wall-time budget (issue 40).

Every SmolLM2 recipe (and GRPO with RepExp's exploration bonus) runs for the same number of
minutes on the same held-out set (word arithmetic, difficulties 1-3, 64 problems each). Per run and
round: minutes, sampled tokens, held-out greedy pass@1 ± standard error and the figures its method
is judged by; then each paper's claim beside ours, MET or NOT, printed either way. The page of
``selftaught compare`` over all the runs is written beside them.

    python bench/methods.py [--minutes 15] [--parallel] [--only NAME,...] [--set KEY=VALUE ...] [--out DIR]

``--parallel`` runs two recipes at a time, one torch thread each (two cores: each pair shares the
machine alike); otherwise one after another on every thread.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from selftaught.builtin_recipes import resolve
from selftaught.compare import read_runs, write_page
from selftaught.store import RunStore

EXPLORATION = '''
[[judges]]
type = "exploration"  # RepExp: h^T (lambda I + sum h h^T)^-1 h within each problem's group
weight = 0.01
mode = "leverage"
dims = 32
gate = "verifier"
'''

# run name -> (built-in recipe, settings of the bench's own)
RUNS: dict[str, tuple[str, list[str]]] = {  # in pairs that --parallel runs side by side
    "grpo": ("smollm2-grpo", ["monitor.eval_samples=8"]),
    "grpo-explore": ("smollm2-grpo", ["monitor.eval_samples=8"]),  # its recipe gains the exploration judge
    "star": ("smollm2-star", []),
    "bstar": ("smollm2-bstar", []),
    "self-rewarding": ("smollm2-self-rewarding", []),
    "meta-rewarding": ("smollm2-meta-rewarding", []),
    "self-correct": ("smollm2-self-correct", []),
}

# the figures each run is judged by, beside pass@1
SHOWN = {
    "grpo": ["eval_pass@1", "eval_pass@8"],
    "grpo-explore": ["eval_pass@1", "eval_pass@8"],
    "self-rewarding": ["judge_auroc/llm-judge", "pair_accuracy", "chosen_precision"],
    "meta-rewarding": ["judge_auroc/llm-judge", "judge_readable/llm-judge", "judge_tokens", "meta_pairs",
                       "meta_chosen_better", "pair_accuracy"],
    "self-correct": ["pass@1_turn2", "delta_wrong_to_right", "delta_right_to_wrong"],
    "bstar": ["bstar_temperature", "bstar_threshold", "bstar_probe_balance", "kept_precision"],
    "star": ["kept_precision"],
}


def recipe_file(name: str, out: Path) -> Path:
    recipe, _ = RUNS[name]
    if name != "grpo-explore":
        return resolve(recipe)
    path = out / "smollm2-grpo-explore.toml"
    text = resolve(recipe).read_text().replace('name = "smollm2-grpo"', 'name = "smollm2-grpo-explore"')
    head, tail = text.split("\n[selector]", 1)
    path.write_text(head + EXPLORATION + "\n[selector]" + tail)
    return path


def launch(name: str, out: Path, minutes: float, extra: list[str], one_thread: bool) -> subprocess.Popen:
    settings = [f"run.time_budget_minutes={minutes}", "run.rounds=100", *RUNS[name][1], *extra]
    cmd = [sys.executable, "-m", "selftaught.cli", "run", str(recipe_file(name, out)), "--out", str(out / name),
           *[x for s in settings for x in ("-s", s)]]
    env = {**os.environ, **({"OMP_NUM_THREADS": "1"} if one_thread else {})}
    return subprocess.Popen(cmd, stdout=open(out / f"{name}.log", "w"), stderr=subprocess.STDOUT, env=env)


def figures(run_dir: Path, names: list[str]) -> dict[str, dict[int, float]]:
    with RunStore(run_dir) as store:
        have = set(store.metric_names())
        out = {n: store.metric(n) for n in names if n in have}
        sizes = store.metric_by_difficulty("eval_problems")
        out["eval_problems"] = {r: float(sum(v.values())) for r, v in sizes.items()}
    return out


def table(name: str, rows, shown: dict[str, dict[int, float]]) -> None:
    print(f"\n### {name}\n\n| round | minutes | sampled tokens | pass@1 ± s.e. | " + " | ".join(SHOWN[name]) + " |")
    print("|---" * (4 + len(SHOWN[name])) + "|")
    for row in rows:
        cells = []
        for n in SHOWN[name]:
            v = shown.get(n, {}).get(row.round)
            cells.append("" if v is None or math.isnan(v) else f"{v:.3f}")
        print(f"| {row.round} | {row.minutes:.1f} | {row.tokens:,.0f} | {100 * row.pass1:.1f} ± "
              f"{100 * (row.se or 0):.1f} | " + " | ".join(cells) + " |")


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def claims(by_run: dict[str, list], shown: dict[str, dict[str, dict[int, float]]], minutes: float) -> None:
    """Each paper's claim beside ours."""
    print("\n## Claims\n")

    def last(name: str):
        return by_run[name][-1]

    def gain(name: str) -> float:
        return 100 * (last(name).pass1 - by_run[name][0].pass1)

    def fig(name: str, key: str, r: int | None = None) -> float:
        values = shown[name].get(key, {})
        if not values:
            return math.nan
        return values.get(max(values) if r is None else r, math.nan)

    if "grpo" in by_run:
        g = gain("grpo")
        print(f"- smollm2-grpo: pass@1 {gain('grpo'):+.1f} points in {last('grpo').minutes:.1f} min "
              f"(claim +30 within 20 min): {verdict(g >= 30)}")
    if "self-rewarding" in by_run:
        g = gain("self-rewarding")
        au = [v for _, v in sorted(shown["self-rewarding"].get("judge_auroc/llm-judge", {}).items())]
        rising = len(au) >= 2 and au[-1] > au[0]
        print(f"- smollm2-self-rewarding: pass@1 {g:+.1f} points with no ground truth (claim +10): {verdict(g >= 10)}; "
              f"judge AUROC by round {', '.join(f'{a:.3f}' for a in au)} (claim: rising): {verdict(rising)}")
    if "meta-rewarding" in by_run and "self-rewarding" in by_run:
        # the claim is after round 3; a budget that ends sooner compares the last round both reached
        r = min(3, last("meta-rewarding").round, last("self-rewarding").round)
        a_meta, a_self = fig("meta-rewarding", "judge_auroc/llm-judge", r), fig("self-rewarding",
                                                                                 "judge_auroc/llm-judge", r)
        m, s = last("meta-rewarding"), last("self-rewarding")
        se = math.hypot(m.se or 0, s.se or 0)
        print(f"- smollm2-meta-rewarding: judge AUROC after round {r} {a_meta:.3f} vs self-rewarding's {a_self:.3f} "
              f"(claim: above, after round 3): {verdict(a_meta > a_self)}; final pass@1 {100 * m.pass1:.1f} vs "
              f"{100 * s.pass1:.1f} (claim: not below, within one s.e. of the difference {100 * se:.1f}): "
              f"{verdict(m.pass1 >= s.pass1 - se)}")
    if "self-correct" in by_run:
        for r in (0, max(shown["self-correct"].get("pass@1_turn2", {0: 0}))):
            fixed, broken = fig("self-correct", "delta_wrong_to_right", r), fig("self-correct",
                                                                                 "delta_right_to_wrong", r)
            n = shown["self-correct"]["eval_problems"].get(r, math.nan)
            net = fixed - broken
            se = math.sqrt(max(0.0, fixed + broken - net ** 2) / n)
            before = next(row.pass1 for row in by_run["self-correct"] if row.round == r)
            after = fig("self-correct", "pass@1_turn2", r)
            label = "base model" if r == 0 else f"round {r}"
            print(f"- smollm2-self-correct, {label}: accuracy {100 * before:.1f} -> {100 * after:.1f} after revision; "
                  f"fixed {100 * fixed:.1f}% broke {100 * broken:.1f}% of {n:.0f}: net {100 * net:+.1f} = "
                  f"{net / se if se else math.nan:+.1f} s.e."
                  + ("" if r == 0 else f" (claim: after > before and net > 0 by >= 3 s.e.): "
                     f"{verdict(after > before and se > 0 and net / se >= 3)}"))
    if "bstar" in by_run and "star" in by_run:
        b, s = last("bstar"), last("star")
        se = math.hypot(b.se or 0, s.se or 0)
        chosen = [(fig("bstar", "bstar_temperature", row.round), fig("bstar", "bstar_threshold", row.round))
                  for row in by_run["bstar"] if row.round]
        print(f"- smollm2-bstar: final pass@1 {100 * b.pass1:.1f} vs smollm2-star {100 * s.pass1:.1f} (claim: not "
              f"below, within one s.e. of the difference {100 * se:.1f}): {verdict(b.pass1 >= s.pass1 - se)}; "
              f"(temperature, threshold) by round: {chosen}")
    if "grpo" in by_run and "grpo-explore" in by_run:
        # at the same number of rounds (the same training steps): the bonus costs time, not steps
        both = sorted(set(shown["grpo"].get("eval_pass@8", {})) & set(shown["grpo-explore"].get("eval_pass@8", {})))
        for r in both[1:]:
            p1 = {n: fig(n, "eval_pass@1", r) for n in ("grpo", "grpo-explore")}
            p8 = {n: fig(n, "eval_pass@8", r) for n in ("grpo", "grpo-explore")}
            n = shown["grpo"]["eval_problems"].get(r, math.nan)
            se1 = math.sqrt(sum(p * (1 - p) for p in p1.values()) / n)
            equal = abs(p1["grpo-explore"] - p1["grpo"]) <= se1
            spent = {k: next(row.minutes for row in by_run[k] if row.round == r) for k in p1}
            se8 = math.sqrt(sum(p * (1 - p) for p in p8.values()) / n)  # binomial, as if k = 1: a rough scale
            print(f"- exploration bonus, round {r} ({spent['grpo-explore']:.1f} vs {spent['grpo']:.1f} min): "
                  f"held-out pass@8 {p8['grpo-explore']:.3f} vs plain GRPO {p8['grpo']:.3f} (difference "
                  f"{(p8['grpo-explore'] - p8['grpo']) / se8:+.1f} s.e.) at sampled pass@1 "
                  f"{p1['grpo-explore']:.3f} vs {p1['grpo']:.3f} (equal within one s.e. of the difference, "
                  f"{se1:.3f}: {'yes' if equal else 'no'}) (claim: pass@8 above at equal pass@1): "
                  f"{verdict(equal and p8['grpo-explore'] > p8['grpo'])}")
    print(f"\n(all runs at a budget of {minutes:g} minutes)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--parallel", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated run names (default: all)")
    ap.add_argument("-s", "--set", action="append", default=[], help="a setting for every run, KEY=VALUE")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--report-only", action="store_true", help="read runs already in --out")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="methods-"))
    out.mkdir(parents=True, exist_ok=True)
    names = [n for n in (args.only.split(",") if args.only else RUNS) if n]
    unknown = set(names) - set(RUNS)
    if unknown:
        sys.exit(f"unknown run names {sorted(unknown)}; known: {', '.join(RUNS)}")
    if not args.report_only:
        start = time.time()
        waves = [names[i:i + 2] for i in range(0, len(names), 2)] if args.parallel else [[n] for n in names]
        for wave in waves:
            procs = {n: launch(n, out, args.minutes, args.set, args.parallel) for n in wave}
            for n, p in procs.items():
                if p.wait() != 0:
                    print(f"{n} failed: see {out / n}.log")
        print(f"runs in {out}: {(time.time() - start) / 60:.1f} minutes in all"
              + (", two at a time, one thread each" if args.parallel else ""))
    done = [n for n in names if (out / n / "run.sqlite").exists()]
    comparison = read_runs([out / n for n in done])
    by_run: dict[str, list] = {}
    for n, label in zip(done, comparison.runs):
        by_run[n] = [row for row in comparison.rows if row.run == label]
    shown = {n: figures(out / n, SHOWN[n]) for n in done}
    for n in done:
        table(n, by_run[n], shown[n])
    for note in comparison.notes:
        print(f"\nnote: {note}")
    claims(by_run, shown, args.minutes)
    print(f"\npage: {write_page(comparison, out / 'compare.html')}")


if __name__ == "__main__":
    main()
