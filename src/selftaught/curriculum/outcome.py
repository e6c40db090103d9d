"""What a round showed, as a curriculum learns from it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from selftaught.tasks.base import Problem

if TYPE_CHECKING:
    from selftaught.context import Tools
    from selftaught.select.selectors import Batch


@dataclass
class Outcome:
    problems: list[Problem]  # the round's problems, by problem id
    batch: Batch  # their judged attempts; ``batch.reward`` is the judges' weighted value of each
    keep_rate: dict[int, float]  # per difficulty, the share of problems with an attempt kept
    tools: Tools

    def passed(self) -> list[bool]:
        """Per attempt, whether every judge passed it (the judges' verdict: ground truth only where a
        judge uses it)."""
        scores = self.batch.scores.values()
        return [all(ss[i].passed for ss in scores) for i in range(len(self.batch.attempts))]

    def solve_rates(self) -> dict[int, float]:
        """Per problem id, the share of its attempts that passed."""
        per: dict[int, list[bool]] = defaultdict(list)
        for a, ok in zip(self.batch.attempts, self.passed()):
            per[a.problem_id].append(ok)
        return {i: sum(v) / len(v) for i, v in sorted(per.items())}

    def success_by_difficulty(self) -> dict[int, tuple[int, int]]:
        """Per difficulty, (attempts that passed, attempts)."""
        out: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for a, ok in zip(self.batch.attempts, self.passed()):
            out[a.problem.difficulty][0] += ok
            out[a.problem.difficulty][1] += 1
        return {d: (n, m) for d, (n, m) in sorted(out.items())}
