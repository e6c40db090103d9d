"""Fresh problems each round from a fixed range of difficulties: the setting of STaR, B-STaR,
Self-Rewarding and GRPO, where the model gets better at the same kind of problem."""

from __future__ import annotations

import random
from dataclasses import dataclass

from selftaught.curriculum.outcome import Outcome
from selftaught.select.consensus import Selection
from selftaught.tasks.base import Problem, Task


@dataclass
class Uniform:
    low: int
    high: int
    problems_per_round: int = 1000
    # relative share of each difficulty from low to high; empty: all alike. Problems a model already
    # solves every time teach GRPO nothing (their groups are all right), so weight the others.
    weights: tuple[float, ...] = ()

    @classmethod
    def from_settings(cls, settings, context) -> Uniform:
        return cls(*settings.uniform_range(context.recipe.task), settings.problems_per_round,
                   tuple(settings.difficulty_weights))

    @property
    def frontier(self) -> int:
        return self.high

    def difficulties(self) -> list[int]:
        return list(range(self.low, self.high + 1))

    def propose(self, task: Task, rng: random.Random) -> list[Problem]:
        if self.weights:
            levels = rng.choices(self.difficulties(), self.weights, k=self.problems_per_round)
            return [task.sample(rng, d) for d in levels]
        return [task.sample(rng, rng.randint(self.low, self.high)) for _ in range(self.problems_per_round)]

    def admit(self, outcome: Outcome, selection: Selection) -> Selection:
        return selection

    def update(self, outcome: Outcome) -> dict[str, float]:
        return {}  # the range is fixed

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
