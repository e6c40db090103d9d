"""Samplers: policies + problems -> attempts. ``Sampling`` decodes greedily or at a temperature,
K samples per problem; ``Revise`` makes a first attempt and then revises it (self-correction)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from selftaught.judge.filters import Score
from selftaught.monitor.measures import correction_transitions
from selftaught.policy import Policy
from selftaught.sample.attempts import Attempt, answer, revise_attempts, sample_attempts
from selftaught.tasks.base import Problem, Task


@dataclass
class Request:
    """How one call samples, as the round wants it."""

    temperature: float
    equivalents: bool  # also answer each problem's equivalent phrasings (a judge compares them)
    compare: bool  # the round's learner compares attempts (groups): revise each one several times
    judge: Callable[[list[Attempt]], dict[str, list[Score]]]
    phase: Callable[[str, int], AbstractContextManager[Any]]  # a progress bar for a named part of the work
    generator: Any = None
    on_batch: Callable[[int], None] | None = None  # after each batch of first attempts
    members: Sequence[int] | None = None  # the run's indices of the policies sampled (default 0, 1, ...)
    score: Callable[[str, list[Attempt]], list[Score]] | None = None  # one judge's scores, by its name


@dataclass
class Sampled:
    attempts: list[Attempt]
    earlier: dict[str, list[Score]] | None = None  # per attempt, the scores of the attempt it revises


class Sampler(Protocol):
    name: str
    temperature: float  # what it samples at unless the round is tuned
    random: bool  # several samples of a query differ
    revises: bool  # an attempt's text revises its first attempt
    evaluation_passes: int  # decoding passes of ``measure`` over the held-out set

    def sample(self, policies: Sequence[Policy], task: Task, problems: Sequence[Problem], request: Request
               ) -> Sampled: ...

    def describe(self, temperature: float) -> str: ...

    def measure(self, policy: Policy, task: Task, problems: Sequence[Problem], batch: Callable[[int], None]
                ) -> dict[str, float]:
        """Figures of its own on the held-out problems (beyond greedy accuracy)."""
        ...


class Sampling:
    """``samples`` attempts per problem and member, greedy (temperature 0) or at a temperature."""

    revises = False
    evaluation_passes = 1

    def __init__(self, name: str, samples: int, temperature: float, top_k: int, batch_size: int, random: bool,
                 top_p: float = 1.0):
        self.name, self.samples, self.temperature, self.top_k, self.top_p = name, samples, temperature, top_k, top_p
        self.batch_size, self.random = batch_size, random

    @classmethod
    def greedy(cls, settings, context) -> Sampling:
        return cls(settings.type, settings.samples, 0.0, 0, settings.batch_size, random=False)

    @classmethod
    def from_settings(cls, settings, context) -> Sampling:
        return cls(settings.type, settings.samples, settings.temperature, settings.top_k, settings.batch_size,
                   random=True, top_p=settings.top_p)

    def sample(self, policies: Sequence[Policy], task: Task, problems: Sequence[Problem], request: Request
               ) -> Sampled:
        n = len(policies) * self.samples * sum(1 + (len(task.equivalents(p)) if request.equivalents else 0)
                                               for p in problems)
        with request.phase("sample", n) as bar:
            def sampled(k: int) -> None:
                bar.advance(k)
                if request.on_batch is not None:
                    request.on_batch(k)

            return Sampled(sample_attempts(policies, task, problems, samples=self.samples,
                                           equivalents=request.equivalents, temperature=request.temperature,
                                           top_k=self.top_k, top_p=self.top_p, batch_size=self.batch_size,
                                           generator=request.generator,
                                           on_batch=sampled, member_ids=request.members))

    def describe(self, temperature: float) -> str:
        return f"{self.name} temperature={temperature:g} top_k={self.top_k}" + (
            f" top_p={self.top_p:g}" if self.top_p < 1 else "") + (
            f" samples={self.samples}" if self.samples > 1 else "")

    def measure(self, policy: Policy, task: Task, problems: Sequence[Problem], batch: Callable[[int], None]
                ) -> dict[str, float]:
        return {}


class Revise:
    """A first attempt, judged, then revised seeing ``revision_prompt`` (``prompt attempt |``, or a
    chat model's three turns); in rounds whose learner compares attempts each first attempt is
    revised ``revisions`` times (its revisions follow one another), else once."""

    revises = True
    random = True
    evaluation_passes = 2

    def __init__(self, first: Sampling, revisions: int):
        self.first, self.revisions = first, revisions
        self.name, self.temperature = first.name, first.temperature

    @classmethod
    def from_settings(cls, settings, context) -> Revise:
        return cls(Sampling.from_settings(settings, context), settings.revisions)

    def sample(self, policies: Sequence[Policy], task: Task, problems: Sequence[Problem], request: Request
               ) -> Sampled:
        firsts = self.first.sample(policies, task, problems, request).attempts
        n = self.revisions if request.compare else 1
        earlier = {name: [x for x in ss for _ in range(n)] for name, ss in request.judge(firsts).items()}
        firsts = [a for a in firsts for _ in range(n)]
        with request.phase("revise", len(firsts)) as bar:
            revised = revise_attempts(policies, task, firsts, temperature=request.temperature,
                                      top_k=self.first.top_k, top_p=self.first.top_p,
                                      batch_size=self.first.batch_size, generator=request.generator,
                                      on_batch=bar.advance, member_ids=request.members)
        return Sampled(revised, earlier)

    def describe(self, temperature: float) -> str:
        return self.first.describe(temperature)

    def measure(self, policy: Policy, task: Task, problems: Sequence[Problem], batch: Callable[[int], None]
                ) -> dict[str, float]:
        """Greedy accuracy after revision and the transitions between the turns."""
        first = answer(policy, task, problems, batch_size=self.first.batch_size)
        firsts = [Attempt(i, p, 0, t) for i, (p, t) in enumerate(zip(problems, first))]
        revised = revise_attempts([policy], task, firsts, batch_size=self.first.batch_size, on_batch=batch)
        ok1 = [task.check(p, t) for p, t in zip(problems, first)]
        ok2 = [task.check(a.problem, a.text) for a in revised]
        figures = {"pass@1_turn2": sum(ok2) / len(ok2)}
        figures["delta_wrong_to_right"], figures["delta_right_to_wrong"] = correction_transitions(ok1, ok2)
        return figures
