"""The figures the self-improvement papers say to record every round, as plain functions of
samples, verdicts and ground-truth correctness. Correctness comes from the monitor; nothing here
feeds training-data selection.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one query from n samples of which c are correct (Chen et al. 2021):
    1 - C(n-c, k) / C(n, k), computed exactly in integers."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_at_k_s(distinct_correct: Sequence[int], s: int) -> float:
    """B-STaR's exploration figure Pass@K-S: share of queries with at least s distinct correct
    answers among their K samples."""
    return sum(d >= s for d in distinct_correct) / len(distinct_correct) if distinct_correct else float("nan")


def reward_at_k_s(queries: Sequence[Sequence[tuple[float, bool]]], s: int) -> float:
    """B-STaR's exploitation figure Reward@K-S: share of queries whose s highest-reward samples are
    all correct. Each query is a list of (reward, correct)."""
    hits = []
    for samples in queries:
        if len(samples) < s:
            continue
        top = sorted(samples, key=lambda rc: -rc[0])[:s]
        hits.append(all(correct for _, correct in top))
    return sum(hits) / len(hits) if hits else float("nan")


def balance_score(selected: Sequence[Sequence[tuple[str, bool]]], target: int) -> float:
    """B-STaR's balance score, averaged over queries: min(n'/n*, 1) * n'/n, where n is how many
    responses were selected, n' how many of them are distinct and correct, and n* = ``target``.
    A query with nothing selected scores 0. Each query is a list of selected (answer, correct)."""
    if not selected:
        return float("nan")
    total = 0.0
    for responses in selected:
        n = len(responses)
        if n == 0:
            continue
        unique_correct = len({a for a, ok in responses if ok})
        total += min(unique_correct / target, 1.0) * unique_correct / n
    return total / len(selected)


def distinct_share(answers: Sequence[str]) -> float:
    """Distinct answers per sample of one query (1 = all differ, 1/K = all the same)."""
    return len(set(answers)) / len(answers) if answers else float("nan")


def answer_entropy(answers: Sequence[str]) -> float:
    """Entropy (nats) of one query's empirical answer distribution."""
    n = len(answers)
    counts: dict[str, int] = {}
    for a in answers:
        counts[a] = counts.get(a, 0) + 1
    return -sum(c / n * math.log(c / n) for c in counts.values())


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve: the chance that a random correct sample outscores a random wrong
    one, ties counting half (the Mann-Whitney statistic from average ranks)."""
    pos = sum(labels)
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for t in range(i, j + 1):
            ranks[order[t]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = sum(r for r, y in zip(ranks, labels) if y)
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def expected_calibration_error(probs: Sequence[float], labels: Sequence[bool], bins: int = 10) -> float:
    """ECE: the sample-weighted mean over equal-width confidence bins of |accuracy - confidence|."""
    if not probs:
        return float("nan")
    sums = [[0, 0.0, 0.0] for _ in range(bins)]  # count, sum of confidence, sum of correct
    for p, y in zip(probs, labels):
        b = min(int(p * bins), bins - 1)
        sums[b][0] += 1
        sums[b][1] += p
        sums[b][2] += y
    return sum(abs(acc - conf) for n, conf, acc in sums if n) / len(probs)


def verification_gap(correct: Sequence[bool], accepted: Sequence[bool]) -> tuple[float, float]:
    """Mind the Gap's generation-verification gap: accuracy of the samples the model's own verifier
    accepts minus the accuracy of all samples, and that gap relative to the headroom 1 - J(f)."""
    base = sum(correct) / len(correct) if correct else float("nan")
    kept = [c for c, a in zip(correct, accepted) if a]
    if not kept:
        return float("nan"), float("nan")
    gap = sum(kept) / len(kept) - base
    return gap, gap / (1 - base) if base < 1 else float("nan")


def correction_transitions(first: Sequence[bool], second: Sequence[bool]) -> tuple[float, float]:
    """SCoRe's Δ(wrong→right) and Δ(right→wrong): shares of all attempts that a revision turned
    from wrong to right and from right to wrong."""
    n = len(first)
    if n == 0:
        return float("nan"), float("nan")
    fixed = sum(not a and b for a, b in zip(first, second))
    broken = sum(a and not b for a, b in zip(first, second))
    return fixed / n, broken / n


def gini(counts: Sequence[float]) -> float:
    """Gini coefficient of per-query kept counts (0 = even, towards 1 = a few queries take all):
    the Matthew-effect figure."""
    n, total = len(counts), sum(counts)
    if n == 0 or total == 0:
        return float("nan")
    xs = sorted(counts)
    return sum((2 * (i + 1) - n - 1) * x for i, x in enumerate(xs)) / (n * total)
