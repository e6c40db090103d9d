"""Reversed addition, as in the Self-Improving Transformers paper.

Operands are written least-significant digit first and the sum is written the same way,
zero-padded to ``max(len(a), len(b)) + 1`` digits, so output digit i depends only on input
digits <= i and a carry: the form that transformers learn and extend to longer lengths.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from selftaught.tasks.base import Problem


def _number(rng: random.Random, digits: int) -> int:
    if digits == 1:
        return rng.randrange(10)
    return rng.randrange(10 ** (digits - 1), 10**digits)


@dataclass
class ReversedAddition:
    """``a_rev+b_rev=`` -> reversed sum. Difficulty = the longer operand's length; the other
    operand's length is drawn uniformly from 1..difficulty, so lengths are independent."""

    name: str = "reversed-addition"
    alphabet: str = "0123456789+="

    def make(self, a: int, b: int) -> Problem:
        ra, rb = str(a)[::-1], str(b)[::-1]
        return Problem(f"{ra}+{rb}=", max(len(ra), len(rb)), (a, b))

    def sample(self, rng: random.Random, difficulty: int) -> Problem:
        if difficulty < 1:
            raise ValueError(f"difficulty must be >= 1, got {difficulty}")
        other = rng.randint(1, difficulty)
        la, lb = (difficulty, other) if rng.random() < 0.5 else (other, difficulty)
        return self.make(_number(rng, la), _number(rng, lb))

    def target(self, problem: Problem) -> str:
        a, b = problem.data
        width = self.answer_length(problem)
        return str(a + b).zfill(width)[::-1]

    def check(self, problem: Problem, answer: str) -> bool:
        return answer == self.target(problem)

    def answer_length(self, problem: Problem) -> int:
        ra, rb = problem.prompt[:-1].split("+")
        return max(len(ra), len(rb)) + 1

    def equivalents(self, problem: Problem) -> list[Problem]:
        a, b = problem.data
        return [self.make(b, a)] if a != b else []
