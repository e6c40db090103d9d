"""The ground-truth verifier: for STaR-style recipes that may train on checked answers."""

from __future__ import annotations

from collections.abc import Sequence

from selftaught.judge.filters import Score
from selftaught.sample.attempts import Attempt
from selftaught.tasks.base import Task


class VerifierJudge:
    """1 when the task's checker accepts the attempt's (final) answer, else 0."""

    name = "verifier"
    uses_ground_truth = True

    @classmethod
    def from_settings(cls, settings, context) -> VerifierJudge:
        return cls()

    def score(self, task: Task, attempts: Sequence[Attempt]) -> list[Score]:
        scores = []
        for a in attempts:
            ok = task.check(a.problem, a.text)
            scores.append(Score(self.name, float(ok), ok, "the checker accepts it" if ok else "the checker rejects it"))
        return scores
