"""Modular arithmetic chains, answered step by step.

``3+4*2-6=`` -> ``7;4;8``: start from the first digit, apply each operation in turn modulo 10,
and write every intermediate value. Difficulty = the number of operations; the answer has one
step per operation, so process rewards and step-level correction have steps to judge.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from selftaught.tasks.base import Problem

_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


@dataclass
class ModularChain:
    name: str = "modular-chain"
    alphabet: str = "0123456789+-*=;"
    step_separator: str = ";"
    modulus: int = 10

    def sample(self, rng: random.Random, difficulty: int) -> Problem:
        if difficulty < 1:
            raise ValueError(f"difficulty must be >= 1, got {difficulty}")
        start = rng.randrange(self.modulus)
        ops = [(rng.choice("+-*"), rng.randrange(self.modulus)) for _ in range(difficulty)]
        prompt = str(start) + "".join(f"{op}{x}" for op, x in ops) + "="
        return Problem(prompt, difficulty, (start, tuple(ops)))

    def values(self, problem: Problem) -> list[int]:
        start, ops = problem.data
        out, v = [], start
        for op, x in ops:
            v = _OPS[op](v, x) % self.modulus
            out.append(v)
        return out

    def target(self, problem: Problem) -> str:
        return ";".join(map(str, self.values(problem)))

    def check(self, problem: Problem, answer: str) -> bool:
        return answer == self.target(problem)

    def answer_length(self, problem: Problem) -> int:
        return 2 * len(problem.data[1]) - 1

    def equivalents(self, problem: Problem) -> list[Problem]:
        return []
