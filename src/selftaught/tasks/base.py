"""The Task protocol: problems with a checkable answer, parameterised by difficulty."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Problem:
    """One problem instance. It carries no answer: ground truth is only reachable through
    ``Task.check`` and ``Task.target``, so code that must not use it cannot do so by accident."""

    prompt: str
    difficulty: int
    data: tuple = field(default=(), compare=False)
    prefix: str = ""  # text the reply already begins with (ExIt's partial solution); the model goes on from it


@runtime_checkable
class Task(Protocol):
    """A family of problems. Implementations keep generator, checker and formatting together."""

    name: str
    alphabet: str  # every character a prompt or answer may contain

    def sample(self, rng: random.Random, difficulty: int) -> Problem:
        """Draw one problem of the given difficulty using only ``rng`` for randomness."""
        ...

    def target(self, problem: Problem) -> str:
        """The ground-truth answer text (used for seed training and evaluation only)."""
        ...

    def check(self, problem: Problem, answer: str) -> bool:
        """Whether ``answer`` is correct. Ground truth: never called by training-data selection."""
        ...

    def answer_length(self, problem: Problem) -> int | None:
        """Length the answer must have, as known from the prompt's format alone (None = unknown)."""
        ...

    def equivalents(self, problem: Problem) -> list[Problem]:
        """Other phrasings of the same problem that must have the same answer (e.g. b+a for a+b)."""
        ...


class ProposalError(ValueError):
    """Why a proposed problem is refused (one line): it costs the proposal its reward, never the run."""


@runtime_checkable
class Proposes(Protocol):
    """A task whose problems a model may write itself (a challenger curriculum)."""

    def challenge(self, examples: list[str]) -> str:
        """The prompt asking for one new problem, showing ``examples`` (earlier proposals' prompts)."""
        ...

    def proposal(self, reply: str) -> Problem:
        """The problem a challenger's ``reply`` proposes, its answer computed by the task's executor
        where it has one; raises ``ProposalError`` saying why it cannot be read or computed."""
        ...
