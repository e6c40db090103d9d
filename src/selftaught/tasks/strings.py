"""String copy and string reverse: the simplest length-generalisation tasks of the SIT paper."""

from __future__ import annotations

import random
from dataclasses import dataclass

from selftaught.tasks.base import Problem

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass
class _StringTask:
    name: str = ""
    alphabet: str = _LETTERS + "="

    def sample(self, rng: random.Random, difficulty: int) -> Problem:
        if difficulty < 1:
            raise ValueError(f"difficulty must be >= 1, got {difficulty}")
        text = "".join(rng.choice(_LETTERS) for _ in range(difficulty))
        return Problem(f"{text}=", difficulty, (text,))

    def transform(self, text: str) -> str:
        raise NotImplementedError

    def target(self, problem: Problem) -> str:
        return self.transform(problem.data[0])

    def check(self, problem: Problem, answer: str) -> bool:
        return answer == self.target(problem)

    def answer_length(self, problem: Problem) -> int:
        return len(problem.prompt) - 1

    def equivalents(self, problem: Problem) -> list[Problem]:
        return []


@dataclass
class StringCopy(_StringTask):
    """``s=`` -> s."""

    name: str = "copy"

    def transform(self, text: str) -> str:
        return text


@dataclass
class StringReverse(_StringTask):
    """``s=`` -> reversed(s)."""

    name: str = "reverse"

    def transform(self, text: str) -> str:
        return text[::-1]
