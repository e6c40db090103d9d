"""Curricula: which problems the model attempts next."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from selftaught.curriculum.easy_to_hard import EasyToHard
from selftaught.curriculum.outcome import Outcome
from selftaught.curriculum.uniform import Uniform
from selftaught.select.consensus import Selection
from selftaught.tasks.base import Problem, Task

if TYPE_CHECKING:
    from selftaught.curriculum.challenger import Proposal


class Curriculum(Protocol):
    frontier: int  # hardest difficulty the model is trusted on

    def propose(self, task: Task, rng: random.Random) -> list[Problem]: ...

    def admit(self, outcome: Outcome, selection: Selection) -> Selection:
        """What of the round's selection may be trained on (an easy-to-hard gate drops the labels
        past where it stopped; a challenger keeps the problems whose solve rate is in its band)."""
        ...

    def update(self, outcome: Outcome) -> dict[str, float]:
        """Learn from the round (after the learner): move a frontier, a task choice, a buffer, or
        train a challenger. Returns figures of the round, by name."""
        ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@runtime_checkable
class WritesProblems(Protocol):
    """A curriculum whose problems the model writes (a challenger): the store keeps every proposal."""

    def proposals(self) -> list[Proposal]: ...


__all__ = ["Curriculum", "EasyToHard", "Outcome", "Uniform", "WritesProblems"]
