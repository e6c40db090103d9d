"""Problems from a JSONL file: one JSON object a line, with a question, a reference answer and
optionally a difficulty, as GSM8K and most math sets ship them.

Problems are drawn from the training split only; ``held_out`` is the evaluation split, fixed by
``split_seed`` and disjoint from training (a question that appears twice in the file is kept once,
so it cannot sit on both sides). A reply is checked on its extracted answer (``answer``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from selftaught.parts.tasks import JsonlSettings
from selftaught.settings import RecipeError
from selftaught.tasks.answers import after_marker, last_boxed, last_number, math_verify_equal, numeric_equal
from selftaught.tasks.base import Problem

GSM8K_MARKER = "####"


@dataclass
class JsonlTask:
    train: dict[int, list[Problem]]
    test: dict[int, list[Problem]]
    extract: Callable[[str], str | None]
    equal: Callable[[str, str], bool]
    max_answer_tokens: int = 256
    source: str = ""
    name: str = "jsonl"
    alphabet: str = field(default="")

    @classmethod
    def from_settings(cls, settings: JsonlSettings, context=None) -> JsonlTask:
        extract = {"last-number": last_number, "boxed": last_boxed,
                   "marker": lambda text: after_marker(text, settings.marker)}[settings.extract]
        equal = numeric_equal if settings.checker == "numeric" else math_verify_equal
        # a reply that states the reference as the extraction reads answers: if even it is not
        # scored right, no reply to the problem ever is
        written = {"last-number": str, "boxed": lambda ref: f"\\boxed{{{ref}}}",
                   "marker": lambda ref: f"{settings.marker} {ref}"}[settings.extract]

        def answerable(reference: str) -> bool:
            found = extract(written(reference))
            return found is not None and equal(found, reference)

        how = f"task.extract = '{settings.extract}' and task.checker = '{settings.checker}'"
        rows = read_problems(Path(settings.path).expanduser(), settings.question_field, settings.answer_field,
                             settings.difficulty_field, answerable, how)
        train, test = split(rows, settings.held_out, settings.split_seed)
        chars = {c for p in rows for c in p.prompt + p.data[0]}
        return cls(train, test, extract, equal, settings.max_answer_tokens, settings.path,
                   alphabet="".join(sorted(chars)))

    @property
    def difficulties(self) -> set[int]:
        """The difficulties that have training problems."""
        return set(self.train)

    @property
    def min_difficulty(self) -> int:
        return min(self.train)

    def sample(self, rng: random.Random, difficulty: int) -> Problem:
        pool = self.train.get(difficulty)
        if not pool:
            raise ValueError(f"{self.source} has no training problems of difficulty {difficulty} (it has "
                             f"{sorted(self.train)})")
        return pool[rng.randrange(len(pool))]

    def held_out(self, per_difficulty: int, max_difficulty: int) -> dict[int, list[Problem]]:
        """The evaluation split, at most ``per_difficulty`` problems of each difficulty."""
        return {d: ps[:per_difficulty] for d, ps in sorted(self.test.items()) if d <= max_difficulty}

    def target(self, problem: Problem) -> str:
        return problem.data[0]

    def answer(self, reply: str) -> str | None:
        """What the checker reads of a reply."""
        return self.extract(reply)

    def check(self, problem: Problem, reply: str) -> bool:
        found = self.answer(reply)
        return found is not None and self.equal(found, problem.data[1])

    def answer_length(self, problem: Problem) -> None:
        return None

    def equivalents(self, problem: Problem) -> list[Problem]:
        return []


def read_problems(path: Path, question: str, answer: str, difficulty: str,
                  answerable: Callable[[str], bool] = lambda reference: True, how: str = "") -> list[Problem]:
    """Every problem of the file, in file order; the first bad line is a ``RecipeError`` naming
    ``path:line`` and what is wrong with it, a reference answer that ``answerable`` (the task's
    checker, ``how``) refuses among them. Blank lines are skipped."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RecipeError(f"task.path: cannot read {path}: {e.strerror}") from None
    problems, seen = [], set()
    for number, line in enumerate(raw.splitlines(), 1):
        where = f"{path}:{number}"
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise RecipeError(f"{where}: not UTF-8 text") from None
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as e:
            raise RecipeError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(row, dict):
            raise RecipeError(f"{where}: expected a JSON object, found {type(row).__name__}")
        for key in (question, answer) + ((difficulty,) if difficulty else ()):
            if key not in row:
                raise RecipeError(f"{where}: no {key!r} field (it has {', '.join(map(repr, row)) or 'none'}; "
                                  "set task.question_field / answer_field / difficulty_field)")
        prompt, reply = row[question], row[answer]
        if not isinstance(prompt, str) or not prompt.strip():
            raise RecipeError(f"{where}: {question!r} must be a non-empty string, found {prompt!r}")
        if isinstance(reply, bool) or not isinstance(reply, str | int | float) or not str(reply).strip():
            raise RecipeError(f"{where}: {answer!r} must be a non-empty string or a number, found {reply!r}")
        level = row[difficulty] if difficulty else 1
        if isinstance(level, bool) or not isinstance(level, int) or level < 1:
            raise RecipeError(f"{where}: {difficulty!r} must be an integer >= 1, found {level!r}")
        reply = str(reply)
        reference = reply.rpartition(GSM8K_MARKER)[2].strip() if GSM8K_MARKER in reply else reply.strip()
        if not reference:
            raise RecipeError(f"{where}: {answer!r} has nothing after {GSM8K_MARKER!r}")
        if not answerable(reference):
            raise RecipeError(f"{where}: the reference answer {reference!r} can never be matched: under {how}, "
                              "even a reply stating it is scored wrong (write it as the checker reads answers, or "
                              "change task.extract / task.checker)")
        if prompt in seen:
            continue
        seen.add(prompt)
        problems.append(Problem(prompt, level, (reply, reference)))
    if not problems:
        raise RecipeError(f"task.path: {path} holds no problems")
    return problems


def split(problems: list[Problem], share: float, seed: int) -> tuple[dict[int, list[Problem]],
                                                                      dict[int, list[Problem]]]:
    """(train, test) by difficulty: ``share`` of each difficulty held out (at least one problem
    when the share is positive and the difficulty has two or more), chosen by ``seed`` alone."""
    by_level: dict[int, list[Problem]] = {}
    for p in problems:
        by_level.setdefault(p.difficulty, []).append(p)
    train, test = {}, {}
    rng = random.Random(f"split-{seed}")
    for level, ps in sorted(by_level.items()):
        order = list(range(len(ps)))
        rng.shuffle(order)
        n = round(share * len(ps))
        n = max(n, 1) if share > 0 and len(ps) > 1 else n
        if n:
            test[level] = [ps[i] for i in sorted(order[:n])]
        if len(ps) > n:
            train[level] = [ps[i] for i in sorted(order[n:])]
    if not train:
        raise RecipeError("task.held_out leaves no problem to train on")
    return train, test
