"""Selectors: judged attempts -> a ``Selection`` (examples, pairs or groups, and per attempt
whether it was used and why). Each wraps one selection rule of this package."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from selftaught.context import Tools
from selftaught.judge.filters import Score
from selftaught.sample.attempts import Attempt
from selftaught.select.balance import choose
from selftaught.select.consensus import Selection, keep_if_all_judges_pass, keep_own_agreeing
from selftaught.select.revision import revision_groups, select_revisions
from selftaught.select.reward import build_groups, build_pairs, select_rebalanced, select_threshold, select_top_k


@dataclass
class Batch:
    """A round's judged attempts."""

    attempts: list[Attempt]
    scores: dict[str, list[Score]]  # judge name -> a score per attempt
    reward: list[float]  # the judges' weighted values
    earlier_reward: list[float] | None = None  # a revising sampler's: the reward of the attempt each one revises


class Selector(Protocol):
    name: str

    def select(self, batch: Batch, wants: str) -> Selection:
        """``wants``: what the round's learner trains on (examples, pairs or groups)."""
        ...


@dataclass
class Tuning:
    """What a selector sets for its round before any attempt is made."""

    temperature: float
    figures: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Tunes(Protocol):
    """A selector that chooses the round's sampling temperature (and its own settings) first."""

    def tune(self, tools: Tools, temperature: float) -> Tuning: ...


class KeepIfAllPass:
    name = "all-judges"

    def __init__(self, labels_per_problem: int = 1):
        self.labels = labels_per_problem

    @classmethod
    def from_settings(cls, settings, context) -> KeepIfAllPass:
        return cls(settings.labels_per_problem)

    def select(self, batch: Batch, wants: str) -> Selection:
        return keep_if_all_judges_pass(batch.attempts, batch.scores, self.labels)


class OwnAgreeing:
    name = "own-agreeing"

    def __init__(self, members: int):
        self.members = members

    @classmethod
    def from_settings(cls, settings, context) -> OwnAgreeing:
        return cls(len(context.policies))

    def select(self, batch: Batch, wants: str) -> Selection:
        return keep_own_agreeing(batch.attempts, batch.scores, self.members)


class Threshold:
    name = "threshold"

    def __init__(self, threshold: float, max_per_query: int = 0):
        self.threshold, self.max_per_query = threshold, max_per_query

    @classmethod
    def from_settings(cls, settings, context) -> Threshold:
        return cls(settings.threshold, settings.max_per_query)

    def select(self, batch: Batch, wants: str) -> Selection:
        return select_threshold(batch.attempts, batch.scores, batch.reward, self.threshold, self.max_per_query)


class TopK:
    name = "top-k"

    def __init__(self, k: int, threshold: float):
        self.k, self.threshold = k, threshold

    @classmethod
    def from_settings(cls, settings, context) -> TopK:
        return cls(settings.k, settings.threshold)

    def select(self, batch: Batch, wants: str) -> Selection:
        return select_top_k(batch.attempts, batch.scores, batch.reward, self.k, self.threshold)


class Rebalance:
    name = "rebalance"

    def __init__(self, threshold: float, head_cap: int, tail_rate: float, tail_boost: int):
        self.threshold, self.head_cap, self.tail_rate, self.tail_boost = threshold, head_cap, tail_rate, tail_boost

    @classmethod
    def from_settings(cls, settings, context) -> Rebalance:
        return cls(settings.threshold, settings.head_cap, settings.tail_rate, settings.tail_boost)

    def select(self, batch: Batch, wants: str) -> Selection:
        return select_rebalanced(batch.attempts, batch.scores, batch.reward, self.threshold, self.head_cap,
                                 self.tail_rate, self.tail_boost)


class BStar:
    """B-STaR: before each round, sample a probe set at each temperature of the grid and keep the
    (temperature, threshold) with the best balance score; then select by that threshold. The
    probe draws its own problems and is scored by the verifier (ground truth)."""

    name = "bstar"

    def __init__(self, temperatures: Sequence[float], thresholds: Sequence[float], probe_problems: int,
                 balance_target: int, max_per_query: int = 0):
        self.temperatures, self.thresholds = list(temperatures), list(thresholds)
        self.probe_problems, self.balance_target, self.max_per_query = probe_problems, balance_target, max_per_query
        self.threshold = self.thresholds[-1]  # until a round is tuned

    @classmethod
    def from_settings(cls, settings, context) -> BStar:
        return cls(settings.temperatures, settings.thresholds, settings.probe_problems,
                   context.recipe.monitor.balance_target, settings.max_per_query)

    def tune(self, tools: Tools, temperature: float) -> Tuning:
        probe = tools.propose()[: self.probe_problems]

        def sample_probe(t: float):
            attempts = tools.sample(probe, t)
            scores = tools.judge(attempts)
            return attempts, tools.reward(scores), [s.passed for s in scores["verifier"]]

        choice = choose(sample_probe, self.temperatures, self.thresholds, self.balance_target)
        self.threshold = choice.threshold
        return Tuning(choice.temperature, {"bstar_temperature": choice.temperature,
                                           "bstar_threshold": choice.threshold, "bstar_probe_balance": choice.balance})

    def select(self, batch: Batch, wants: str) -> Selection:
        return select_threshold(batch.attempts, batch.scores, batch.reward, self.threshold, self.max_per_query)


class Pairs:
    name = "pairs"

    def __init__(self, margin: float):
        self.margin = margin

    @classmethod
    def from_settings(cls, settings, context) -> Pairs:
        return cls(settings.margin)

    def select(self, batch: Batch, wants: str) -> Selection:
        return build_pairs(batch.attempts, batch.scores, batch.reward, self.margin)


class Groups:
    name = "groups"

    @classmethod
    def from_settings(cls, settings, context) -> Groups:
        return cls()

    def select(self, batch: Batch, wants: str) -> Selection:
        return build_groups(batch.attempts, batch.scores, batch.reward)


class Revisions:
    """Self-correction traces for a learner of examples; SCoRe's revision groups for one of groups."""

    name = "revisions"

    def __init__(self, threshold: float, fix_boost: int, shaping: float):
        self.threshold, self.fix_boost, self.shaping = threshold, fix_boost, shaping

    @classmethod
    def from_settings(cls, settings, context) -> Revisions:
        return cls(settings.threshold, settings.fix_boost, settings.shaping)

    def select(self, batch: Batch, wants: str) -> Selection:
        if batch.earlier_reward is None:
            raise ValueError("the revisions selector needs a revising sampler's attempts")
        if wants == "groups":
            return revision_groups(batch.attempts, batch.scores, batch.reward, batch.earlier_reward, self.shaping)
        return select_revisions(batch.attempts, batch.scores, batch.reward, batch.earlier_reward, self.threshold,
                                self.fix_boost)
