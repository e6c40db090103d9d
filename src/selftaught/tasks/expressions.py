"""Integer arithmetic that a model proposes, evaluated without ever running it.

A proposing model writes problems such as "What is (3 + 4) * 12?". Its reply is data from an
untrusted writer, never code: it goes to no eval, exec, ast or compile, but to the small parser
below, which bounds the text's length, each literal's digits, the operators, the nesting and the
size of every intermediate result, so that no reply can cost the harness unbounded time or memory.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple


class ExpressionError(ValueError):
    """Why a proposal's expression is refused (the message is the reason, one line)."""


@dataclass(frozen=True)
class Limits:
    max_chars: int = 80  # longest expression text
    max_digits: int = 6  # longest integer literal
    max_result_digits: int = 12  # largest |value| of any intermediate or final result, in digits
    max_operators: int = 6
    max_depth: int = 8  # deepest nesting of parentheses


@dataclass(frozen=True)
class Evaluated:
    value: int
    operators: int  # binary operators used
    digits: int  # digits of the longest literal (as normalised: no leading zeros)
    text: str  # the expression normalised: single spaces around binary operators, e.g. "(3 + 4) * 12"


class _Token(NamedTuple):
    kind: str  # "n" for a number, else the operator or parenthesis in normal form
    text: str  # as written
    at: int
    value: int = 0


_NUMBER = re.compile(r"[0-9]+")  # not str.isdigit: that also admits "²" and other scripts' digits
_SYMBOLS = {"+": "+", "-": "-", "*": "*", "×": "*", "/": "/", "^": "^", "(": "(", ")": ")"}


def _tokens(text: str, limits: Limits) -> Iterator[_Token]:
    """Tokens as the parser asks for them, so that a refusal costs only the text read up to it."""
    i = 0
    while i < len(text):
        if number := _NUMBER.match(text, i):
            written = number.group()
            if len(written) > limits.max_digits:  # refuse by length: int() of a huge literal is itself costly
                raise ExpressionError(f"literal of {len(written)} digits (at most {limits.max_digits})")
            yield _Token("n", written, i, int(written))
            i = number.end()
        elif text.startswith("**", i):
            yield _Token("^", "**", i)
            i += 2
        elif text[i] in _SYMBOLS:
            yield _Token(_SYMBOLS[text[i]], text[i], i)
            i += 1
        elif text[i].isspace():
            i += 1
        else:
            raise ExpressionError(f"unexpected {text[i]!r} at {i}")


class _Parser:
    """Recursive descent that computes as it parses; each rule returns (value, normalised text)."""

    def __init__(self, text: str, limits: Limits):
        self.stream, self.limits, self.last = _tokens(text, limits), limits, None
        self.ahead = next(self.stream, None)
        self.operators = self.depth = self.digits = 0
        self.bound = 10**limits.max_result_digits

    def peek(self, *kinds: str) -> _Token | None:
        return self.ahead if self.ahead is not None and (not kinds or self.ahead.kind in kinds) else None

    def take(self) -> _Token:
        self.last, self.ahead = self.ahead, next(self.stream, None)
        return self.last

    def binary(self) -> str:
        self.operators += 1
        if self.operators > self.limits.max_operators:
            raise ExpressionError(f"more than {self.limits.max_operators} operators")
        return self.take().kind

    def sized(self, value: int) -> int:
        if abs(value) >= self.bound:
            raise ExpressionError(f"result of more than {self.limits.max_result_digits} digits")
        return value

    def expression(self) -> tuple[int, str]:
        return self.left_to_right(("+", "-"), self.term)

    def term(self) -> tuple[int, str]:
        return self.left_to_right(("*", "/"), self.signed_power)

    def left_to_right(self, ops: tuple[str, ...], operand) -> tuple[int, str]:
        value, text = operand()
        while self.peek(*ops):
            op = self.binary()
            right, right_text = operand()
            value, text = self.sized(_APPLY[op](value, right)), f"{text} {op} {right_text}"
        return value, text

    def signed_power(self) -> tuple[int, str]:
        # As in Python, a minus left of ** binds looser (-2**2 == -4) and one right of it tighter (2**-1).
        # Gathered in a loop and folded from the right, so a long chain cannot exhaust the stack.
        chain = []
        while True:
            signs = 0
            while self.peek("-"):
                self.take()
                signs += 1
            chain.append((signs, *self.atom()))
            if not self.peek("^"):
                break
            self.binary()
        value, text = 0, ""
        for signs, base, base_text in reversed(chain):
            value, text = (self.power(base, value), f"{base_text} ^ {text}") if text else (base, base_text)
            value, text = (-value if signs % 2 else value), "-" * signs + text
        return value, text

    def power(self, base: int, exponent: int) -> int:
        if exponent < 0:
            raise ExpressionError(f"negative exponent {exponent}")
        # estimate first: 9 ^ 9 ^ 9 must be refused, not computed
        if abs(base) > 1 and exponent * math.log10(abs(base)) > self.limits.max_result_digits + 1:
            raise ExpressionError(f"result of more than {self.limits.max_result_digits} digits")
        return self.sized(base**exponent)

    def atom(self) -> tuple[int, str]:
        token = self.peek()
        if token is None and self.last is None:
            raise ExpressionError("empty expression")
        if token is None:
            raise ExpressionError(f"expression ends after {self.last.text!r} at {self.last.at}: a number is missing")
        self.take()
        if token.kind == "n":
            self.digits = max(self.digits, len(str(token.value)))
            return self.sized(token.value), str(token.value)
        if token.kind != "(":
            raise _unexpected(token)
        self.depth += 1
        if self.depth > self.limits.max_depth:
            raise ExpressionError(f"parentheses nested deeper than {self.limits.max_depth}")
        value, text = self.expression()
        if self.peek() is None:
            raise ExpressionError(f"unclosed '(' at {token.at}")
        if not self.peek(")"):
            raise _unexpected(self.peek())
        self.take()
        self.depth -= 1
        return value, f"({text})"


def _divide(a: int, b: int) -> int:
    if b == 0:
        raise ExpressionError("division by zero")
    quotient, remainder = divmod(a, b)
    if remainder:
        raise ExpressionError(f"{a} / {b} is not a whole number")
    return quotient


def _unexpected(token: _Token) -> ExpressionError:
    return ExpressionError(f"unexpected {token.text!r} at {token.at}")


_APPLY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": _divide}


def evaluate(text: str, limits: Limits = Limits()) -> Evaluated:
    """The value of a proposed integer expression, or ExpressionError saying why it is refused."""
    if len(text) > limits.max_chars:  # before anything else looks at the text
        raise ExpressionError(f"expression of {len(text)} characters (at most {limits.max_chars})")
    parser = _Parser(text, limits)
    value, normal = parser.expression()
    if (rest := parser.peek()) is not None:
        raise _unexpected(rest)
    return Evaluated(value, parser.operators, parser.digits, normal)


_WHAT_IS = re.compile(r"\bwhat\s+is\b", re.IGNORECASE)
_RUN = re.compile(r"[0-9+\-*/()^× ]+")
_BINARY = re.compile(r"[0-9][ )]*[+\-*/^×][+\-*/^× (]*[0-9]")


def find_expression(reply: str) -> str | None:
    """The arithmetic a free-text reply proposes: what follows its last "What is" up to the next "?";
    without such a question, the longest run of arithmetic characters with a binary operator between digits."""
    asked = list(_WHAT_IS.finditer(reply))
    if asked:
        rest = reply[asked[-1].end():]
        if "?" in rest and (question := rest[: rest.index("?")].strip()):
            return question
    runs = [run.strip() for run in _RUN.findall(reply) if _BINARY.search(run)]
    return max(runs, key=len) if runs else None
