"""Reward-based selectors: the reward of an attempt is the weighted sum of its judges' values.

threshold (STaR, RFT), top-k per query, head/tail rebalancing (Counteracting the Matthew Effect),
preference pairs (Self-Rewarding → DPO) and groups (GRPO).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from selftaught.judge.filters import Score
from selftaught.learn.sft import Example
from selftaught.sample.attempts import Attempt
from selftaught.select.consensus import Group, Pair, Selection, rejected_counts


def rewards(scores: dict[str, list[Score]], weights: dict[str, float]) -> list[float]:
    n = len(next(iter(scores.values()))) if scores else 0
    return [sum(weights[name] * ss[i].value for name, ss in scores.items()) for i in range(n)]


def by_query(attempts: Sequence[Attempt]) -> dict[tuple[int, int], list[int]]:
    """Attempt indices per (problem, member): the samples one policy drew for one query."""
    out: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, a in enumerate(attempts):
        out[(a.problem_id, a.member)].append(i)
    return out


def _selection(attempts: Sequence[Attempt], scores: dict[str, list[Score]], chosen: dict[int, int],
               reasons: list[str]) -> Selection:
    """Examples from ``chosen`` (attempt index -> copies) in attempt order."""
    examples, ids = [], []
    for i in sorted(chosen):
        a = attempts[i]
        examples += [Example(a.problem.prompt, a.text)] * chosen[i]
        ids += [a.problem_id] * chosen[i]
    kept = [i in chosen for i in range(len(attempts))]
    return Selection(examples, ids, kept, reasons, rejected_counts(scores))


def select_threshold(attempts: Sequence[Attempt], scores: dict[str, list[Score]], reward: Sequence[float],
                     threshold: float, max_per_query: int = 0) -> Selection:
    """Keep attempts with reward >= threshold; per query, distinct answers only and at most
    ``max_per_query`` of them (0 = no cap), highest reward first."""
    chosen: dict[int, int] = {}
    reasons = [f"reward {r:.3f} < threshold {threshold:g}" for r in reward]
    for idx in by_query(attempts).values():
        seen: set[str] = set()
        for i in sorted((i for i in idx if reward[i] >= threshold), key=lambda i: -reward[i]):
            if attempts[i].text in seen:
                reasons[i] = f"reward {reward[i]:.3f} passes, but the same answer is already kept"
            elif max_per_query and len(seen) >= max_per_query:
                reasons[i] = f"reward {reward[i]:.3f} passes, but the query already has {max_per_query} kept"
            else:
                seen.add(attempts[i].text)
                chosen[i] = 1
                reasons[i] = f"reward {reward[i]:.3f} >= threshold {threshold:g}"
    return _selection(attempts, scores, chosen, reasons)


def select_top_k(attempts: Sequence[Attempt], scores: dict[str, list[Score]], reward: Sequence[float], k: int,
                 threshold: float) -> Selection:
    """Per query, the k highest-reward distinct answers among those with reward >= threshold."""
    return select_threshold(attempts, scores, reward, threshold, max_per_query=k)


def select_rebalanced(attempts: Sequence[Attempt], scores: dict[str, list[Score]], reward: Sequence[float],
                      threshold: float, head_cap: int, tail_rate: float, tail_boost: int) -> Selection:
    """Threshold selection that counteracts the Matthew effect: queries the model mostly passes
    (the head) keep at most ``head_cap`` answers; queries whose pass rate is at most ``tail_rate``
    (the tail, but solved at least once) have their kept answers repeated ``tail_boost`` times."""
    base = select_threshold(attempts, scores, reward, threshold, max_per_query=head_cap)
    chosen = {i: 1 for i, k in enumerate(base.kept_attempts) if k}
    reasons = list(base.reasons)
    for idx in by_query(attempts).values():
        rate = sum(reward[i] >= threshold for i in idx) / len(idx)
        if 0 < rate <= tail_rate:
            for i in idx:
                if i in chosen:
                    chosen[i] = tail_boost
                    reasons[i] += f"; tail query (pass rate {rate:.2f}): repeated {tail_boost}x"
    return _selection(attempts, scores, chosen, reasons)


def build_pairs(attempts: Sequence[Attempt], scores: dict[str, list[Score]], reward: Sequence[float],
                margin: float) -> Selection:
    """Per query, the highest-reward answer that every judge passes (chosen) against the lowest
    (rejected), when they differ by at least ``margin`` and are different texts (ties dropped, as
    Self-Rewarding does). A query none of whose answers passes makes no pair: the best of wrong
    answers is still wrong, and DPO would teach it."""
    pairs, ids, kept = [], [], [False] * len(attempts)
    reasons = ["not the best or worst answer of its query"] * len(attempts)
    passed = [all(ss[i].passed for ss in scores.values()) for i in range(len(attempts))]
    for (pid, _), every in sorted(by_query(attempts).items()):
        idx = [i for i in every if not math.isnan(reward[i])]  # a judge gave no value: on neither side
        for i in set(every) - set(idx):
            reasons[i] = "a judge gave it no value (an unreadable judgment): no pair"
        if not idx:
            continue
        worst = min(idx, key=lambda i: reward[i])
        if not any(passed[i] for i in idx):
            for i in idx:
                reasons[i] = "no answer of its query passes every judge: no pair"
            continue
        best = max((i for i in idx if passed[i]), key=lambda i: reward[i])
        gap = reward[best] - reward[worst]
        if gap < margin or attempts[best].text == attempts[worst].text:
            for i in (best, worst):
                reasons[i] = f"query's reward gap {gap:.3f} < margin {margin:g}: no pair"
            continue
        a = attempts[best]
        pairs.append(Pair(a.problem.prompt, a.text, attempts[worst].text, a.member))
        ids.append(pid)
        kept[best] = kept[worst] = True
        reasons[best] = f"chosen (reward {reward[best]:.3f}) against attempt of reward {reward[worst]:.3f}"
        reasons[worst] = f"rejected side (reward {reward[worst]:.3f}) against attempt of reward {reward[best]:.3f}"
    return Selection([], ids, kept, reasons, rejected_counts(scores), pairs=pairs)


def build_groups(attempts: Sequence[Attempt], scores: dict[str, list[Score]], reward: Sequence[float]) -> Selection:
    """Every query's samples with their rewards; groups whose rewards are all equal carry no
    advantage and are left out."""
    groups, ids, kept = [], [], [False] * len(attempts)
    reasons = ["its group's rewards are all equal: no advantage"] * len(attempts)
    for (pid, _), idx in sorted(by_query(attempts).items()):
        rs = [reward[i] for i in idx]
        if max(rs) == min(rs):
            continue
        groups.append(Group(attempts[idx[0]].problem.prompt, [attempts[i].text for i in idx], rs,
                            attempts[idx[0]].member))
        ids.append(pid)
        for i in idx:
            kept[i] = True
            reasons[i] = f"in a group with reward {reward[i]:.3f} (group mean {sum(rs) / len(rs):.3f})"
    return Selection([], ids, kept, reasons, rejected_counts(scores), groups=groups)
