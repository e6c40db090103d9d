"""Ground-truth measurement, for monitoring only: nothing here feeds training-data selection."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

from selftaught.monitor.measures import pass_at_k
from selftaught.policy import Policy
from selftaught.sample.attempts import replies, sample_attempts
from selftaught.tasks.base import Problem, Task


def reach(accuracy: dict[int, float], threshold: float = 0.95) -> int:
    """Largest d such that every difficulty from the easiest evaluated one (1 for most tasks) to d
    reaches ``threshold``; 0 when the easiest does not."""
    low = min(accuracy, default=1)
    d = low - 1
    while accuracy.get(d + 1, 0.0) >= threshold:
        d += 1
    return d if d >= low else 0


def standard_error(p: float, n: int) -> float:
    """Of a share ``p`` measured on ``n`` problems (binomial); nan without problems."""
    return math.sqrt(p * (1 - p) / n) if n else float("nan")


def pass1_with_error(accuracy: dict[int, float], counts: dict[int, int]) -> tuple[float, float]:
    """(pass@1, its standard error) over every held-out problem: each difficulty's accuracy weighted
    by its problems, and the variance of that stratified mean (each difficulty's problems drawn
    from that difficulty). nan where ``counts`` misses a difficulty (a store older than them)."""
    if not accuracy or any(d not in counts for d in accuracy):
        return float("nan"), float("nan")
    total = sum(counts[d] for d in accuracy)
    p = sum(accuracy[d] * counts[d] for d in accuracy) / total
    variance = sum(counts[d] * accuracy[d] * (1 - accuracy[d]) for d in accuracy) / total**2
    return p, math.sqrt(variance)


def held_out_set(task: Task, seed: int, per_difficulty: int, max_difficulty: int) -> dict[int, list[Problem]]:
    """A fixed evaluation set, drawn from its own generator so that it never moves with training.
    It starts at the task's easiest difficulty (``min_difficulty``, 1 unless the task says). A task
    with a fixed held-out split (a dataset) gives it instead (``held_out``)."""
    if hasattr(task, "held_out"):
        return task.held_out(per_difficulty, max_difficulty)
    rng = random.Random(f"eval-{seed}")
    low = getattr(task, "min_difficulty", 1)
    return {d: [task.sample(rng, d) for _ in range(per_difficulty)] for d in range(low, max_difficulty + 1)}


def held_out_figures(
    policy: Policy,
    task: Task,
    problems: dict[int, Sequence[Problem]],
    batch_size: int = 512,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[dict[int, float], dict[str, float]]:
    """Greedy accuracy per difficulty and, for a task whose replies are free text (it has
    ``answer``), ``readable``: the share of replies that end within their budget with an answer the
    checker can read. A reply cut off mid-sentence still has a last number (often an operand it
    repeated), so this tells a model that learnt to finish with an answer from one that learnt the
    arithmetic."""
    flat = [(d, p) for d, ps in problems.items() for p in ps]
    done = [(c.text, finished) for c, finished in replies(policy, task, [p for _, p in flat], batch_size=batch_size,
                                                          on_batch=on_batch)]
    right: dict[int, int] = {d: 0 for d in problems}
    for (d, p), (text, _) in zip(flat, done):
        right[d] += task.check(p, text)
    figures = {}
    if hasattr(task, "answer") and flat:
        figures["readable"] = sum(finished and task.answer(text) is not None for text, finished in done) / len(flat)
    return {d: right[d] / max(1, len(problems[d])) for d in problems}, figures


def sampled_pass_at_k(policy: Policy, task: Task, problems: Sequence[Problem], samples: int, temperature: float,
                      batch_size: int = 512, generator=None, on_batch: Callable[[int], None] | None = None
                      ) -> dict[str, float]:
    """Held-out pass@k for k = 1, 2, 4, ... up to ``samples``: ``samples`` replies to each problem at
    ``temperature``, the unbiased estimator of each k averaged over the problems (``eval_pass@k``)."""
    attempts = sample_attempts([policy], task, list(problems), samples=samples, equivalents=False,
                               temperature=temperature, batch_size=batch_size, generator=generator, on_batch=on_batch)
    right = [0] * len(problems)
    for a in attempts:
        right[a.problem_id] += task.check(a.problem, a.text)
    ks = [2 ** i for i in range(samples.bit_length()) if 2 ** i <= samples]
    return {f"eval_pass@{k}": sum(pass_at_k(samples, c, k) for c in right) / max(1, len(problems)) for k in ks}


def label_precision(task: Task, problems: Sequence[Problem], labels: Sequence[str]) -> float:
    """Share of kept self-labels that are actually right (the error-avalanche audit)."""
    if not labels:
        return float("nan")
    return sum(task.check(p, t) for p, t in zip(problems, labels)) / len(labels)
