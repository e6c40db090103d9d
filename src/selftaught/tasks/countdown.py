"""Countdown: reach a target from given numbers with + - *, written as one step per operation.

``3,5,7:22=`` -> ``3*5=15;15+7=22``. Each step combines two numbers still available (given, or
made by an earlier step) and makes a new one; the last one made must be the target. Numbers need
not all be used, so most problems have several solutions: attempts differ, and diversity means
something. Difficulty = how many numbers are given.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass

from selftaught.tasks.base import Problem

_STEP = re.compile(r"^(\d+)([+\-*])(\d+)=(\d+)$")
_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def apply_steps(numbers: list[int], steps: list[str]) -> int | None:
    """The last number the steps make, or None if any step is malformed, uses a number that is not
    available, computes wrongly or goes negative."""
    pool = Counter(numbers)
    last = None
    for step in steps:
        m = _STEP.match(step)
        if not m:
            return None
        a, op, b, c = int(m[1]), m[2], int(m[3]), int(m[4])
        pool[a] -= 1
        pool[b] -= 1
        if pool[a] < 0 or pool[b] < 0 or _OPS[op](a, b) != c or c < 0:
            return None
        pool[c] += 1
        last = c
    return last


@dataclass
class Countdown:
    name: str = "countdown"
    alphabet: str = "0123456789,:=+-*;"
    step_separator: str = ";"
    min_difficulty: int = 2
    largest: int = 9  # given numbers are 1..largest
    ceiling: int = 99  # every number made on the way stays at or below this

    def sample(self, rng: random.Random, difficulty: int) -> Problem:
        if difficulty < 2:
            raise ValueError(f"countdown needs at least 2 numbers, got difficulty {difficulty}")
        while True:
            numbers = [rng.randint(1, self.largest) for _ in range(difficulty)]
            steps = self._chain(rng, numbers)
            if steps is not None:
                target = int(steps[-1].rsplit("=", 1)[1])
                prompt = ",".join(map(str, numbers)) + f":{target}="
                return Problem(prompt, difficulty, (tuple(numbers), target, ";".join(steps)))

    def _chain(self, rng: random.Random, numbers: list[int]) -> list[str] | None:
        """Combine the numbers left to right with random operations (one way to make a target)."""
        order = numbers[:]
        rng.shuffle(order)
        acc, steps = order[0], []
        for x in order[1:]:
            options = []
            for op in "+-*":
                a, b = (acc, x) if op != "-" or acc >= x else (x, acc)
                c = _OPS[op](a, b)
                if 0 < c <= self.ceiling and not (op == "*" and 1 in (a, b)):
                    options.append((a, op, b, c))
            if not options:
                return None
            a, op, b, acc = rng.choice(options)
            steps.append(f"{a}{op}{b}={acc}")
        return steps

    def target(self, problem: Problem) -> str:
        return problem.data[2]

    def check(self, problem: Problem, answer: str) -> bool:
        numbers, target, _ = problem.data
        return bool(answer) and apply_steps(list(numbers), answer.split(";")) == target

    def answer_length(self, problem: Problem) -> int | None:
        return None  # solutions differ in length

    def equivalents(self, problem: Problem) -> list[Problem]:
        return []  # a reordering of the numbers may be solved another way: no answer must agree
