"""Arithmetic asked in English, for pretrained language models: ``What is 7 + 5?``.

The reply is free text; its answer is the last number in it (``answer``), so "7 + 5 = 12." and
"The answer is 12" are both right. Difficulty picks the kind of problem, from what a 135M chat
model sometimes gets right to what it almost never does (greedy pass@1 of SmolLM2-135M-Instruct
measured on 64 problems each: one-digit addition 0.42, one-digit multiplication 0.12, two-digit
addition 0.03, a digit subtracted from 10-50 0.02).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from selftaught.tasks.answers import last_number
from selftaught.tasks.base import Problem, ProposalError
from selftaught.tasks.expressions import ExpressionError, Limits, evaluate, find_expression

# difficulty -> (operator, range of the first operand, range of the second)
KINDS: dict[int, tuple[str, tuple[int, int], tuple[int, int]]] = {
    1: ("+", (0, 9), (0, 9)),
    2: ("*", (0, 9), (0, 9)),
    3: ("+", (10, 30), (0, 9)),
    4: ("+", (10, 99), (10, 99)),
    5: ("*", (10, 30), (2, 9)),
    6: ("-", (10, 50), (0, 9)),
}
_APPLY = {"+": lambda a, b: a + b, "*": lambda a, b: a * b, "-": lambda a, b: a - b}
PROPOSED = "proposed"  # the first field of a proposed problem's data: (PROPOSED, expression, its value)
# the form of a question, shown to a challenger until it has questions of its own: with the form
# alone (no example) SmolLM2-135M wrote 7 readable questions of 48, with these two 23 (LOG.md)
FORMAT = ("What is 4 + 7?", "What is 6 * 3?")


@dataclass
class WordArithmetic:
    name: str = "word-arithmetic"
    alphabet: str = "0123456789+-*=?.,:;!'()abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ \n"
    min_difficulty: int = 1
    max_answer_tokens: int = 32  # a reply's budget: the answer need not come first

    def sample(self, rng: random.Random, difficulty: int) -> Problem:
        if difficulty not in KINDS:
            raise ValueError(f"word-arithmetic has difficulties {min(KINDS)}..{max(KINDS)}, not {difficulty}")
        op, (lo_a, hi_a), (lo_b, hi_b) = KINDS[difficulty]
        a, b = rng.randint(lo_a, hi_a), rng.randint(lo_b, hi_b)
        return self.make(a, op, b, difficulty)

    def make(self, a: int, op: str, b: int, difficulty: int) -> Problem:
        return Problem(f"What is {a} {op} {b}?", difficulty, (a, op, b))

    def target(self, problem: Problem) -> str:
        if problem.data[0] == PROPOSED:
            return str(problem.data[2])
        a, op, b = problem.data
        return str(_APPLY[op](a, b))

    def challenge(self, examples: list[str]) -> str:
        like = " or ".join(f"'{e}'" for e in (examples or FORMAT))
        return f"Write a new math question like {like}. Reply with the question only."

    def proposal(self, reply: str, limits: Limits = Limits()) -> Problem:
        """``What is <expression>?`` read from a reply and computed by the restricted evaluator
        (never Python's). Difficulty = operators + digits of the longest number - 1 (7 + 5: 1)."""
        text = find_expression(reply)
        if text is None:
            raise ProposalError("no arithmetic expression in the reply")
        try:
            done = evaluate(text, limits)
        except ExpressionError as e:
            raise ProposalError(str(e)) from None
        if done.operators == 0:
            raise ProposalError("a number alone, not a question")
        return Problem(f"What is {done.text}?", max(1, done.operators + done.digits - 1),
                       (PROPOSED, done.text, done.value))

    def answer(self, reply: str) -> str | None:
        """What the checker reads of a reply: its last number."""
        return last_number(reply)

    def check(self, problem: Problem, answer: str) -> bool:
        return self.answer(answer) == self.target(problem)

    def answer_length(self, problem: Problem) -> None:
        return None

    def equivalents(self, problem: Problem) -> list[Problem]:
        if problem.data[0] == PROPOSED:
            return []
        a, op, b = problem.data
        return [self.make(b, op, a, problem.difficulty)] if a != b and op != "-" else []


@dataclass
class WordSteps:
    """Chains of operations asked in English, answered one step a line:
    ``Compute 7 + 5 - 3, one step a line.`` -> ``7 + 5 = 12\\n12 - 3 = 9``. The answer is the reply's
    last number; its lines are the steps a tree search grows and a process value judges.
    Difficulty = operations (one-digit operands, + and -, and from 3 on one *)."""

    name: str = "word-steps"
    alphabet: str = WordArithmetic.alphabet
    min_difficulty: int = 1
    step_separator: str = "\n"
    max_answer_tokens: int = 64

    def sample(self, rng: random.Random, difficulty: int) -> Problem:
        if not 1 <= difficulty <= 5:
            raise ValueError(f"word-steps has difficulties 1..5, not {difficulty}")
        numbers = [rng.randint(1, 9) for _ in range(difficulty + 1)]
        ops = [rng.choice("+-") for _ in range(difficulty)]
        if difficulty >= 3:
            ops[rng.randrange(difficulty)] = "*"
        return Problem(f"Compute {numbers[0]} " + " ".join(f"{o} {n}" for o, n in zip(ops, numbers[1:]))
                       + ", left to right, one step a line.", difficulty, (tuple(numbers), tuple(ops)))

    def target(self, problem: Problem) -> str:
        numbers, ops = problem.data
        acc, lines = numbers[0], []
        for op, n in zip(ops, numbers[1:]):
            made = _APPLY[op](acc, n)
            lines.append(f"{acc} {op} {n} = {made}")
            acc = made
        return "\n".join(lines)

    def check(self, problem: Problem, answer: str) -> bool:
        return last_number(answer) == last_number(self.target(problem))

    def answer_length(self, problem: Problem) -> None:
        return None

    def equivalents(self, problem: Problem) -> list[Problem]:
        return []
