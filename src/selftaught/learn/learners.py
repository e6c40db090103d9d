"""Learners: update every member's policy on what the selector kept.

``SFT`` trains on examples mixed with replay, ``DPO`` on preference pairs, ``GRPO`` on groups. A
learner that ``gathers`` is handed the round's sampling instead of its results: on-policy GRPO
samples each step's share of the round's problems from the policy as it is then.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from selftaught import faults
from selftaught.context import Context, Tools
from selftaught.learn.dpo import dpo_steps
from selftaught.learn.grpo import grpo_fresh_steps, grpo_steps
from selftaught.learn.replay import Dataset, ReplayMix
from selftaught.learn.sft import Example, SFTSettings, sft_steps
from selftaught.policy import Policy
from selftaught.select.consensus import Selection, rejected_counts
from selftaught.select.selectors import Batch
from selftaught.tasks.base import Problem

Steps = list[tuple[int, int, float]]  # (member, step, loss) of every step
# problems (ids counted from ``offset``) -> their judged attempts and the selector's choice
Gather = Callable[[Sequence[Policy], Sequence[int], list[Problem], int], tuple[Batch, Selection]]


@dataclass
class LearnJob:
    round: int
    problems: list[Problem]
    tools: Tools
    temperature: float  # the round's sampling temperature
    batch: Batch | None = None  # the round's judged attempts (None for a learner that gathers)
    selection: Selection | None = None
    gather: Gather | None = None  # for a learner that gathers


@dataclass
class Learned:
    steps: Steps
    data: Dataset | None = None  # new training data, as the store keeps it (SFT)
    batch: Batch | None = None  # a learner that gathered: the round's judged attempts
    selection: Selection | None = None  # and what it selected


class Learner(Protocol):
    consumes: str  # what it trains on: examples, pairs or groups
    gathers: bool  # it samples as it learns (``LearnJob.gather``) rather than learning from a batch

    def for_round(self, round_: int) -> Learner:
        """The learner that acts in this round (itself, or a warm-up learner it names)."""
        ...

    def learn(self, job: LearnJob) -> Learned: ...


def train_members(round_: int, seed: int, policies: Sequence[Policy], steps: int, tools: Tools,
                  one: Callable[[int, Policy, random.Random, Callable[[int, float], None]], list[float]]) -> Steps:
    """``one(i, policy, rng, on_step)`` trains member i for ``steps`` steps; a progress bar and the
    ``learn`` fault point (halfway) for all of them."""
    losses: Steps = []
    with tools.phase("learn", steps * len(policies)) as bar:
        def stepped(step: int, loss: float) -> None:
            bar.advance()
            if step == steps // 2:
                faults.point("learn", round_)

        for i, policy in enumerate(policies):
            rng = random.Random(f"{seed}-learn-{round_}-{i}")
            losses += [(i, s, v) for s, v in enumerate(one(i, policy, rng, stepped))]
    return losses


def _sft_settings(s) -> SFTSettings:
    return SFTSettings(lr=s.lr, batch_size=s.batch_size, weight_decay=s.weight_decay, warmup_steps=s.warmup_steps,
                       decay_fraction=s.decay_fraction)


class SFT:
    """SFT on each member's training mix: the round's kept examples are its newest part."""

    consumes = "examples"
    gathers = False

    def __init__(self, policies: Sequence[Policy], replay: Sequence[ReplayMix], settings: SFTSettings, steps: int,
                 seed: int):
        self.policies, self.replay, self.settings, self.steps, self.seed = policies, replay, settings, steps, seed

    @classmethod
    def from_settings(cls, settings, context: Context) -> SFT:
        return cls(context.policies, context.replay, _sft_settings(settings), settings.steps_per_round,
                   context.recipe.run.seed)

    def for_round(self, round_: int) -> SFT:
        return self

    def learn(self, job: LearnJob) -> Learned:
        selection = job.selection
        levels = tuple(sorted(Counter(job.problems[i].difficulty for i in set(selection.kept_problems))))
        own = selection.member_examples
        for i, mix in enumerate(self.replay):
            mix.add(Dataset(own[i] if own is not None else selection.examples, levels))
        if own is None:
            data = Dataset(selection.examples, levels)
        else:  # each member's own data, tagged with the member
            data = Dataset([Example(e.prompt, e.answer, m) for m, mine in enumerate(own) for e in mine], levels)
        return Learned(self.train(job.round, job.tools) if selection.examples else [], data)

    def train(self, round_: int, tools: Tools) -> Steps:
        return train_members(round_, self.seed, self.policies, self.steps, tools, lambda i, policy, rng, on_step:
                             sft_steps(policy, self.replay[i].draw, self.steps, self.settings, rng, on_step=on_step))


class DPO:
    """DPO on each member's own pairs, against the member as the round began."""

    consumes = "pairs"
    gathers = False

    def __init__(self, policies: Sequence[Policy], settings: SFTSettings, steps: int, beta: float, sft_weight: float,
                 seed: int):
        self.policies, self.settings, self.steps, self.seed = policies, settings, steps, seed
        self.beta, self.sft_weight = beta, sft_weight

    @classmethod
    def from_settings(cls, settings, context: Context) -> DPO:
        return cls(context.policies, _sft_settings(settings), settings.steps_per_round, settings.beta,
                   settings.sft_weight, context.recipe.run.seed)

    def for_round(self, round_: int) -> DPO:
        return self

    def learn(self, job: LearnJob) -> Learned:
        pairs = job.selection.pairs
        if not pairs:
            return Learned([])
        return Learned(train_members(job.round, self.seed, self.policies, self.steps, job.tools,
                                     lambda i, policy, rng, on_step: dpo_steps(
                                         policy, [p for p in pairs if p.member == i], self.steps, self.settings,
                                         self.beta, rng, self.sft_weight, on_step=on_step)))


class GRPO:
    """GRPO on each member's own groups: reused for every step of the round, or (``on_policy``)
    sampled for each step from the policy as it is then. ``sft_rounds``: the first rounds learn by
    SFT at round 0's settings instead, so that RL starts from a model that writes the format."""

    consumes = "groups"

    def __init__(self, policies: Sequence[Policy], settings: SFTSettings, steps: int, clip: float, beta: float,
                 on_policy: bool, seed: int, warm_up: SFT | None = None, sft_rounds: int = 0, micro_batch: int = 0):
        self.policies, self.settings, self.steps = policies, settings, steps
        self.clip, self.beta, self.gathers, self.seed = clip, beta, on_policy, seed
        self.warm_up, self.sft_rounds, self.micro_batch = warm_up, sft_rounds, micro_batch

    @classmethod
    def from_settings(cls, settings, context: Context) -> GRPO:
        seed = context.recipe.run.seed
        warm_up = SFT(context.policies, context.replay, context.supervised, settings.steps_per_round, seed)
        return cls(context.policies, _sft_settings(settings), settings.steps_per_round, settings.clip, settings.beta,
                   settings.on_policy, seed, warm_up, settings.sft_rounds, settings.micro_batch)

    def for_round(self, round_: int) -> SFT | GRPO:
        return self.warm_up if round_ <= self.sft_rounds else self

    def learn(self, job: LearnJob) -> Learned:
        if self.gathers:
            return self._learn_on_policy(job)
        groups = job.selection.groups
        if not groups:
            return Learned([])
        return Learned(train_members(job.round, self.seed, self.policies, self.steps, job.tools,
                                     lambda i, policy, rng, on_step: grpo_steps(
                                         policy, [g for g in groups if g.member == i], self.steps, self.settings,
                                         job.temperature, self.clip, self.beta, rng, on_step=on_step)))

    def _learn_on_policy(self, job: LearnJob) -> Learned:
        """The round's problems are shared out across its steps; each step samples its share from
        the member as it is then, judges the attempts, and steps once on their groups. The round's
        attempts are ordered by member, problem, sample, as a batch sampled at once would be."""
        n, problems = self.steps, job.problems
        bounds = [len(problems) * k // n for k in range(n + 1)]
        batches: list[Batch] = []
        parts: list[tuple[int, Selection]] = []

        def one(i: int, policy: Policy, rng: random.Random, on_step: Callable[[int, float], None]) -> list[float]:
            reference = policy.frozen_copy() if self.beta else None  # the KL's anchor: the round's start

            def draw(step: int) -> tuple[list, int]:
                share = problems[bounds[step]:bounds[step + 1]]
                policy.eval()
                batch, selection = job.gather([policy], [i], share, bounds[step])
                policy.train()
                batches.append(batch)
                parts.append((step, selection))
                return selection.groups, len(share)

            return grpo_fresh_steps(policy, draw, n, self.settings, job.temperature, self.beta, reference,
                                    on_step=on_step, micro_batch=self.micro_batch)

        steps = train_members(job.round, self.seed, self.policies, n, job.tools, one)
        batch = Batch([a for b in batches for a in b.attempts],
                      {name: [s for b in batches for s in b.scores[name]] for name in batches[0].scores} if batches
                      else {}, [r for b in batches for r in b.reward])
        return Learned(steps, batch=batch, selection=_merge(parts, batch.scores))


def _merge(parts: list[tuple[int, Selection]], scores: dict) -> Selection:
    """One selection from the steps' selections, in the order their attempts were made; each reason
    says which step's policy made the attempt."""
    return Selection([], [pid for _, p in parts for pid in p.kept_problems],
                     [k for _, p in parts for k in p.kept_attempts],
                     [f"sampled for learn step {step}; {why}" for step, p in parts for why in p.reasons],
                     rejected_counts(scores), groups=[g for _, p in parts for g in p.groups])
