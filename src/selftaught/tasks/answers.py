"""Reading the answer out of a free-text reply, and comparing it with a reference answer."""

from __future__ import annotations

import re
from fractions import Fraction

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")


def last_number(text: str) -> str | None:
    """The last number written in ``text`` (integer, decimal or a/b; None when there is none)."""
    found = _NUMBER.findall(text.replace(",", ""))
    return found[-1] if found else None


def last_boxed(text: str) -> str | None:
    r"""The contents of the last ``\boxed{...}`` in ``text``, braces matched (None when there is none)."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 1, start + len("\\boxed{")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j].strip()
    return None  # unclosed: the reply was cut off before its answer ended


def after_marker(text: str, marker: str) -> str | None:
    """The first line of what follows the last ``marker`` (None when the marker is absent)."""
    at = text.rfind(marker)
    if at < 0:
        return None
    rest = text[at + len(marker):].strip()
    return rest.splitlines()[0].strip() if rest else None


def as_number(text: str) -> Fraction | None:
    """``text`` as an exact number when it is one ("1,234", "$5", "3.50", "-1/2", "7."); else None."""
    cleaned = text.strip().replace(",", "").removeprefix("$").removesuffix(".").strip()
    try:
        return Fraction(cleaned)
    except (ValueError, ZeroDivisionError):
        return None


def numeric_equal(answer: str, reference: str) -> bool:
    """Equal as numbers when both are numbers, else equal as text (case and spacing aside)."""
    a, b = as_number(answer), as_number(reference)
    if a is not None and b is not None:
        return a == b
    return " ".join(answer.split()).casefold() == " ".join(reference.split()).casefold()


def math_verify_equal(answer: str, reference: str) -> bool:
    """Equal by math-verify (LaTeX and symbolic answers); the optional ``math`` extra."""
    from math_verify import parse, verify

    def latex(text: str) -> str:  # math-verify reads LaTeX between dollars; a bare "1/2" is wrapped
        return text if "$" in text or "\\" in text else f"${text}$"

    return bool(verify(parse(latex(reference)), parse(latex(answer))))
