"""B-STaR's balance adaptation: before each round, choose the sampling temperature and the reward
threshold that maximise the balance score on a probe set.

A low temperature or a strict threshold keeps few distinct correct answers (no exploration); a
high one keeps many wrong ones (poor exploitation). The balance score rewards queries whose
selection has many distinct correct answers (up to ``target``) and few others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from selftaught.monitor.measures import balance_score
from selftaught.sample.attempts import Attempt
from selftaught.select.reward import by_query


def balance_at(attempts: Sequence[Attempt], reward: Sequence[float], correct: Sequence[bool], threshold: float,
               target: int) -> float:
    """Mean balance score when every attempt with reward >= ``threshold`` is selected."""
    queries = [[(attempts[i].text, correct[i]) for i in idx if reward[i] >= threshold]
               for idx in by_query(attempts).values()]
    return balance_score(queries, target)


@dataclass
class BalanceChoice:
    temperature: float
    threshold: float
    balance: float
    table: dict[tuple[float, float], float]  # (temperature, threshold) -> balance score


def choose(probe: Callable[[float], tuple[Sequence[Attempt], Sequence[float], Sequence[bool]]],
           temperatures: Sequence[float], thresholds: Sequence[float], target: int) -> BalanceChoice:
    """``probe(t)`` samples the probe set at temperature t and returns (attempts, rewards,
    correct). Ties go to the first pair in grid order."""
    table = {}
    for t in temperatures:
        attempts, reward, correct = probe(t)
        for tau in thresholds:
            table[(t, tau)] = balance_at(attempts, reward, correct, tau, target)
    (t, tau), best = max(table.items(), key=lambda kv: kv[1])
    return BalanceChoice(t, tau, best, table)
