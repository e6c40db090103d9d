"""Tree search inside self-training (issue 38), on countdown with our model (or on SmolLM2).

1. Self-training: `rest-mcts` against `star` at equal sampled tokens per round (star's problems a
   round are set from the search's measured tokens), held-out greedy pass@1 ± s.e. per round.
2. The process value per round: its step AUROC against the trees' own truth (stored by the run)
   and against Monte-Carlo truth (8 rollouts at T = 1 from every step of fresh held-out trees: a
   step is good when some rollout from it ends right).
3. Search at test time with the trained policy and its learned value (no ground truth): greedy,
   best-of-N chosen by the value, and MCTS, at equal sampled tokens over three budgets.
4. Throughput: the search's tokens/s against plain temperature sampling on the same policy.

    python bench/search.py [--model countdown|smollm2] [--rounds 4] [--out DIR] [--problems 300]

``--model smollm2``: the same on SmolLM2-135M-Instruct, `smollm2-rest-mcts` against STaR on the
same task (word steps) and settings, 4 samples a problem.

Targets: MCTS >= best-of-N + 5 points at the middle budget; rest-mcts ahead of star by >= 3 s.e.
after round 4; value step AUROC >= 0.8 by round 3; search within 2x of sampling's tokens/s.
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
import time
import tomllib
from contextlib import nullcontext
from pathlib import Path

import torch

from selftaught.builtin_recipes import resolve
from selftaught.engine import Run, SilentReporter
from selftaught.monitor.measures import auroc
from selftaught.recipe import from_dict, load_recipe
from selftaught.sample.attempts import Attempt, answer, answer_limit
from selftaught.sample.samplers import Request
from selftaught.sample.search import Budget, TreeSearch, tokens_of
from selftaught.store import RunStore


class Rounds(SilentReporter):
    def __init__(self, name: str, per_difficulty: int):
        self.name, self.per, self.start = name, per_difficulty, time.perf_counter()
        print(f"\n### {name}\n\n| round | wall s | pass@1 ± s.e. | value step AUROC (tree truth) | search nodes |")
        print("|---|---|---|---|---|")

    def round_done(self, report) -> None:
        f, n = report.figures, self.per * len(report.accuracy)  # the held-out problems measured
        p = f["pass@1"]
        print(f"| {report.round} | {time.perf_counter() - self.start:.0f} | {100 * p:.1f} ± "
              f"{100 * math.sqrt(p * (1 - p) / n):.1f} | {f.get('value_step_auroc', float('nan')):.3f} | "
              f"{f.get('search_nodes', float('nan')):.1f} |", flush=True)


def tokens_per_round(run_dir: Path) -> dict[int, float]:
    """Tokens each self-training round sampled to make its attempts (a search's trees', all of them)."""
    with RunStore(run_dir) as store:
        return {r: v for r, v in store.metric("sampled_tokens").items() if v is not None and r > 0}


def eval_size(run_dir: Path) -> int:
    """Held-out problems behind the last round's pass@1."""
    with RunStore(run_dir) as store:
        sizes = store.metric_by_difficulty("eval_problems")
        return int(sum(sizes[max(sizes)].values()))


def tokens_a_reply(run_dir: Path, recipe) -> float:
    """Mean tokens of a reply sampled as ``recipe`` samples, by the run's round-0 policy to 128 of
    its training problems (what the baseline's first round costs a sample)."""
    run = Run.resume(run_dir, from_round=0)
    problems = [run.task.sample(run.rng, d) for d in range(recipe.task.seed_min_difficulty,
                                                            recipe.task.seed_max_difficulty + 1) for _ in range(64)]
    drawn = run.policies[0].generate([p.prompt for p in problems], [answer_limit(run.task, p) for p in problems],
                                     temperature=recipe.sampler.temperature, batch_size=recipe.sampler.batch_size,
                                     generator=torch.Generator().manual_seed(0))
    return sum(len(c.ids) for c in drawn) / len(drawn)


def request(judge, task, generator: torch.Generator) -> Request:
    class Bar:
        def advance(self, n: int = 1) -> None:
            pass

    return Request(1.0, False, False, lambda attempts: {}, lambda name, total: nullcontext(Bar()), generator,
                   score=lambda name, attempts: judge.score(task, attempts))


def se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-12) / n)


def test_time(run_dir: Path, problems: list, budgets: list[int]) -> None:
    run = Run.resume(run_dir)
    policy, task = run.policies[0], run.task
    value = next(j for j in run.judges if j.name == "process-value")
    s = run.recipe.sampler
    n = len(problems)
    greedy = answer(policy, task, problems)
    g = sum(task.check(p, a) for p, a in zip(problems, greedy)) / n
    probe = policy.generate([p.prompt for p in problems], [None] * n, temperature=1.0,
                            generator=torch.Generator().manual_seed(1))
    per_sample = sum(len(c.ids) for c in probe) / n
    print(f"\n### search at test time (round {run.reports[-1].round} policy and value, {n} held-out problems of "
          f"difficulty {problems[0].difficulty}, no ground truth)\n")
    print(f"greedy pass@1 {100 * g:.1f} ± {100 * se(g, n):.1f} ({sum(map(len, greedy)) / n:.1f} tokens/problem); "
          f"a T=1 sample is {per_sample:.1f} tokens\n")
    print("| budget tokens/problem | best-of-N by value | N | its tokens/problem | any of N right | MCTS by value | "
          "its tokens/problem | MCTS − BoN | search tok/s | sampling tok/s | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    middle = budgets[len(budgets) // 2]
    gaps = {}
    for b in budgets:
        k = max(1, round(b / per_sample))
        prompts = [p.prompt for p in problems for _ in range(k)]
        t0 = time.perf_counter()
        drawn = policy.generate(prompts, [None] * len(prompts), temperature=1.0,
                                generator=torch.Generator().manual_seed(b))
        sample_s = time.perf_counter() - t0
        sampled = sum(len(c.ids) for c in drawn)
        attempts = [Attempt(i // k, problems[i // k], 0, c.text) for i, c in enumerate(drawn)]
        values = [x.value for x in value.score(task, attempts)]
        right = [task.check(a.problem, a.text) for a in attempts]
        best = [max(range(i * k, (i + 1) * k), key=lambda j: values[j]) for i in range(n)]
        bon = sum(right[j] for j in best) / n
        anyright = sum(any(right[i * k:(i + 1) * k]) for i in range(n)) / n
        search = TreeSearch("mcts", Budget(10_000, b, s.width, s.max_steps, s.step_tokens), s.selection,
                            s.exploration, "process-value", 1, 1.0, 0, 1.0, s.batch_size)
        t0 = time.perf_counter()
        found = search.sample([policy], task, problems, request(value, task, torch.Generator().manual_seed(b))
                              ).attempts
        search_s = time.perf_counter() - t0
        mcts = sum(task.check(a.problem, a.text) for a in found) / n
        searched = tokens_of(found)
        gaps[b] = mcts - bon
        # the search's time includes scoring its nodes; sampling's does not include scoring its N
        print(f"| {b} | {100 * bon:.1f} ± {100 * se(bon, n):.1f} | {k} | {sampled / n:.0f} | {100 * anyright:.1f} | "
              f"{100 * mcts:.1f} ± {100 * se(mcts, n):.1f} | {searched / n:.0f} | {100 * gaps[b]:+.1f} | "
              f"{searched / search_s:.0f} | {sampled / sample_s:.0f} | "
              f"{sampled / sample_s / (searched / search_s):.2f}x |", flush=True)
    print(f"\nMCTS − best-of-N at the middle budget ({middle}): {100 * gaps[middle]:+.1f} points (target >= +5): "
          f"{'MET' if gaps[middle] >= 0.05 else 'MISSED'}")


def value_against_rollouts(run_dir: Path, rounds: int, problems: list, rollouts: int = 8) -> None:
    print(f"\n### the process value against Monte-Carlo truth ({len(problems)} fresh held-out trees, {rollouts} "
          "rollouts a step)\n")
    print("| round | steps | good share | AUROC | accuracy at 0.5 |")
    print("|---|---|---|---|---|")
    for r in range(1, rounds + 1):
        run = Run.resume(run_dir, from_round=r)
        policy, task = run.policies[0], run.task
        value = next(j for j in run.judges if j.name == "process-value")
        s = run.recipe.sampler
        search = TreeSearch("mcts", Budget(s.iterations, 0, s.width, s.max_steps, s.step_tokens), s.selection,
                            s.exploration, "process-value", 1, 1.0, 0, 1.0, s.batch_size)
        found = search.sample([policy], task, problems, request(value, task, torch.Generator().manual_seed(r))
                              ).attempts
        steps = [(a.problem, tree.prefix(i), tree.nodes[i].value) for a in found for tree in [a.tree]
                 for i in range(1, len(tree.nodes)) if not tree.nodes[i].terminal]
        prompts = [p.prompt + prefix for p, prefix, _ in steps for _ in range(rollouts)]
        tails = policy.generate(prompts, [None] * len(prompts), temperature=1.0,
                                generator=torch.Generator().manual_seed(100 + r))
        good = [any(task.check(p, prefix + tails[k * rollouts + j].text) for j in range(rollouts))
                for k, (p, prefix, _) in enumerate(steps)]
        values = [v for _, _, v in steps]
        if not steps:  # every tree ended at its first step: nothing to judge
            print(f"| {r} | 0 | | | |", flush=True)
            continue
        acc = sum((v >= 0.5) == y for v, y in zip(values, good)) / len(good)
        a = auroc(values, good)
        print(f"| {r} | {len(steps)} | {sum(good) / len(good):.2f} | {a:.3f} | {acc:.3f} |", flush=True)
    print(f"\nvalue step AUROC against rollouts after round {min(3, rounds)}: target >= 0.8")


def baseline(model: str, rounds: int, problems: int):
    """STaR at ``problems`` a round: the countdown recipe, or the SmolLM2 search recipe's task,
    model and learner with 4 samples a problem and the verifier instead of the search."""
    if model == "countdown":
        return load_recipe(resolve("star"), [f"run.rounds={rounds}", f"curriculum.problems_per_round={problems}"])
    path = resolve("smollm2-rest-mcts")
    data = tomllib.loads(path.read_text())
    data["run"] |= {"name": "smollm2-star-steps", "rounds": rounds}
    data["sampler"] = {"type": "temperature", "temperature": 0.8, "samples": 4, "batch_size": 256}
    data["judges"] = [{"type": "verifier"}]
    data["selector"] = {"type": "threshold", "threshold": 1.0, "max_per_query": 2}
    data["curriculum"]["problems_per_round"] = problems
    return from_dict(data, str(path))[0]


SEARCH_RECIPE = {"countdown": "rest-mcts", "smollm2": "smollm2-rest-mcts"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=sorted(SEARCH_RECIPE), default="countdown")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--problems", type=int, default=300, help="held-out problems of the test-time search")
    parser.add_argument("--difficulty", type=int, default=3, help="their difficulty")
    parser.add_argument("--budgets", default="48,96,192", help="tokens a problem at test time")
    parser.add_argument("--rollout-problems", type=int, default=100, help="problems whose steps get rollouts")
    parser.add_argument("--rollouts", type=int, default=8, help="rollouts from each step")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    out = args.out or Path(tempfile.mkdtemp(prefix="search-bench-"))
    print(f"# bench/search.py --model {args.model} — {args.rounds} rounds, runs in {out}; "
          f"torch threads {torch.get_num_threads()}")

    recipe = load_recipe(resolve(SEARCH_RECIPE[args.model]), [f"run.rounds={args.rounds}"])
    search_dir = out / recipe.run.name
    if not (search_dir / "run.sqlite").exists():
        Run(recipe, search_dir, Rounds(recipe.run.name, recipe.monitor.eval_per_difficulty)).execute()
    searched = tokens_per_round(search_dir)
    per_round = sum(searched.values()) / len(searched)
    star = baseline(args.model, args.rounds, 1)
    problems = max(1, round(per_round / (star.sampler.samples * tokens_a_reply(search_dir, star))))
    star = baseline(args.model, args.rounds, problems)
    star_dir = out / star.run.name
    n_eval = eval_size(search_dir)
    if not (star_dir / "run.sqlite").exists():
        Run(star, star_dir, Rounds(f"{star.run.name}, {problems} problems a round (equal sampled tokens)",
                                   star.monitor.eval_per_difficulty)).execute()
    sampled = tokens_per_round(star_dir)
    print(f"\n| round | {recipe.run.name} tokens | {star.run.name} tokens | {recipe.run.name} pass@1 | "
          f"{star.run.name} pass@1 | difference (s.e.) |")
    print("|---|---|---|---|---|---|")
    with RunStore(search_dir) as a, RunStore(star_dir) as b:
        pa, pb = a.metric("pass@1"), b.metric("pass@1")
    last = min(max(pa), max(pb))
    for r in range(1, last + 1):
        d = pa[r] - pb[r]
        s = math.sqrt(se(pa[r], n_eval) ** 2 + se(pb[r], n_eval) ** 2)
        print(f"| {r} | {searched.get(r, 0):.0f} | {sampled.get(r, 0):.0f} | {100 * pa[r]:.1f} | {100 * pb[r]:.1f} | "
              f"{100 * d:+.1f} ({d / s:+.1f} s.e.) |")
    d = pa[last] - pb[last]
    s = math.sqrt(se(pa[last], n_eval) ** 2 + se(pb[last], n_eval) ** 2)
    print(f"\n{recipe.run.name} − {star.run.name} after round {last}: {d / s:+.1f} s.e. (target >= +3): "
          f"{'MET' if d / s >= 3 else 'MISSED'}")

    task = Run.resume(search_dir).task
    rng = random.Random("search-bench")
    low = getattr(task, "min_difficulty", 1)
    value_against_rollouts(search_dir, last, [task.sample(rng, rng.randint(low, args.difficulty))
                                              for _ in range(args.rollout_problems)], args.rollouts)
    budgets = [int(b) for b in args.budgets.split(",")]
    test_time(search_dir, [task.sample(rng, args.difficulty) for _ in range(args.problems)], budgets)


if __name__ == "__main__":
    main()
