"""Judges that need no ground truth: each gives every attempt a score, a verdict and a reason."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from selftaught.sample.attempts import Attempt
from selftaught.tasks.base import Task


@dataclass
class Score:
    judge: str
    value: float
    passed: bool
    reason: str


class Judge(Protocol):
    name: str
    uses_ground_truth: bool  # monitoring says so; recipes that must not use it are checked against it

    def score(self, task: Task, attempts: Sequence[Attempt]) -> list[Score]: ...


@runtime_checkable
class Trains(Protocol):
    """A judge that is itself taught each round, after the learner (the self-verdict)."""

    def train(self, task: Task, tools: Any) -> dict[str, float]:
        """Returns figures of the training (its loss), recorded with the round's."""
        ...


@runtime_checkable
class Keeps(Protocol):
    """A judge with weights of its own (a separate value model), saved with every round's checkpoint
    and loaded back on resume."""

    def save(self, directory: Path) -> None: ...

    def load(self, directory: Path) -> None: ...


@runtime_checkable
class ReadsEarlier(Protocol):
    """A judge whose scores depend on the judges listed before it (the exploration bonus, gated by a
    verifier's verdicts): the loop calls ``score_after`` in place of ``score``."""

    def score_after(self, task: Task, attempts: Sequence[Attempt], earlier: dict[str, list[Score]]) -> list[Score]:
        """Scores as ``score``'s, given ``earlier``: the scores of the judges before it, by name."""
        ...


def each_members_own(members: Sequence, attempts: Sequence[Attempt],
                     values: Callable[[object, list[Attempt]], list[float]]) -> list[float]:
    """A value for every attempt from the member that made it: ``values(model, its attempts)``.
    (Judges that consult the models judge each one's attempts with that model only.)"""
    out = [0.0] * len(attempts)
    for m, model in enumerate(members):
        mine = [i for i, a in enumerate(attempts) if a.member == m]
        if mine:
            for i, v in zip(mine, values(model, [attempts[i] for i in mine]), strict=True):
                out[i] = v
    return out


class LengthJudge:
    """The answer has the length the prompt's format implies (the SIT paper's length filter)."""

    name = "length"
    uses_ground_truth = False

    @classmethod
    def from_settings(cls, settings, context) -> LengthJudge:
        return cls()

    def score(self, task: Task, attempts: Sequence[Attempt]) -> list[Score]:
        scores = []
        for a in attempts:
            want = task.answer_length(a.problem)
            ok = want is None or len(a.text) == want
            scores.append(Score(self.name, float(ok), ok, f"length {len(a.text)}, expected {want}"))
        return scores


class ConsistencyJudge:
    """Equivalent phrasings of a problem (b+a for a+b) must get the same answer from the same model."""

    name = "consistency"
    uses_ground_truth = False

    @classmethod
    def from_settings(cls, settings, context) -> ConsistencyJudge:
        return cls()

    def score(self, task: Task, attempts: Sequence[Attempt]) -> list[Score]:
        scores = []
        for a in attempts:
            if not a.equivalent_texts:
                scores.append(Score(self.name, 1.0, True, "no equivalent phrasing"))
                continue
            agree = sum(t == a.text for t in a.equivalent_texts)
            ok = agree == len(a.equivalent_texts)
            scores.append(Score(self.name, agree / len(a.equivalent_texts), ok,
                                f"{agree}/{len(a.equivalent_texts)} equivalent phrasings agree"))
        return scores


class MajorityVoteJudge:
    """Every attempt at a problem votes (all members, all samples): an attempt passes when its answer
    is the most common one, has at least ``min_agreement`` of the votes (the SIT paper used 4 of
    5 seeds) and at least ``min_votes`` of them. With ``finished_only``, an attempt cut off at its
    token budget does not vote and never passes."""

    name = "majority-vote"
    uses_ground_truth = False

    def __init__(self, min_agreement: float = 0.5, min_votes: int = 1, finished_only: bool = False):
        self.min_agreement, self.min_votes, self.finished_only = min_agreement, min_votes, finished_only

    @classmethod
    def from_settings(cls, settings, context) -> MajorityVoteJudge:
        return cls(settings.min_agreement, settings.min_votes, settings.finished_only)

    def score(self, task: Task, attempts: Sequence[Attempt]) -> list[Score]:
        # a task whose replies are free text votes on the answer its checker reads of them
        read = getattr(task, "answer", None) or (lambda text: text)
        said = [read(a.text) for a in attempts]
        votes: dict[int, Counter] = defaultdict(Counter)
        for a, s in zip(attempts, said):
            if a.finished or not self.finished_only:
                votes[a.problem_id][s] += 1
        scores = []
        for a, s in zip(attempts, said):
            if self.finished_only and not a.finished:
                scores.append(Score(self.name, 0.0, False, "cut off at its token budget: it does not vote"))
                continue
            counts = votes[a.problem_id]
            total = sum(counts.values())
            share = counts[s] / total
            ok = (s is not None and share >= self.min_agreement and counts[s] == max(counts.values())
                  and counts[s] >= self.min_votes)
            scores.append(Score(self.name, share, ok, f"{counts[s]}/{total} members agree"))
        return scores
