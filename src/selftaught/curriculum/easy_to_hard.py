"""Easy-to-hard expansion with a competence gate.

Advancing every round regardless of competence collapses a weak model within a few rounds
(DESIGN.md), so the frontier moves past a difficulty only when the model's own filters kept at
least ``gate`` of its labels there. That is the model's agreement with itself, not ground truth.

``accelerate`` is the SIT paper's accelerated schedule in the same currency: every probed length
past the first whose labels the model already keeps at this rate (it agrees with itself almost
always there) is labelled and joins the frontier in the same round.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from selftaught.curriculum.outcome import Outcome
from selftaught.select.consensus import Selection, drop_harder_than
from selftaught.tasks.base import Problem, Task


@dataclass
class EasyToHard:
    frontier: int  # hardest difficulty the model is trusted on
    problems_per_round: int = 4000
    span: int = 1
    gate: float = 0.8
    accelerate: float = 0.0  # 0: every probed difficulty passes at the gate

    @classmethod
    def from_settings(cls, settings, context) -> EasyToHard:
        return cls(context.recipe.task.seed_max_difficulty, settings.problems_per_round, settings.span, settings.gate,
                   settings.accelerate)

    def difficulties(self) -> list[int]:
        return list(range(self.frontier + 1, self.frontier + 1 + self.span))

    def propose(self, task: Task, rng: random.Random) -> list[Problem]:
        ds = self.difficulties()
        return [task.sample(rng, ds[i % len(ds)]) for i in range(self.problems_per_round)]

    def bar(self, difficulty: int) -> float:
        """The keep rate ``difficulty`` must reach: the gate, or past the first probed difficulty, ``accelerate``."""
        return self.gate if difficulty == self.frontier + 1 else max(self.gate, self.accelerate)

    def stopped_at(self, keep_rate: dict[int, float]) -> int | None:
        """The first probed difficulty whose keep rate is under its bar (None: all passed)."""
        return next((d for d in self.difficulties() if keep_rate.get(d, 0.0) < self.bar(d)), None)

    def trained_up_to(self, keep_rate: dict[int, float]) -> int:
        """The hardest difficulty whose labels may be trained on: the first one the gate stops at.
        Labels past it come from a model not yet trusted one level below, so they are dropped
        (training on them is how ``span`` > 1 collapsed). With ``span`` = 1 nothing is dropped."""
        stop = self.stopped_at(keep_rate)
        return self.difficulties()[-1] if stop is None else stop

    def admit(self, outcome: Outcome, selection: Selection) -> Selection:
        return drop_harder_than(selection, outcome.batch.attempts, self.trained_up_to(outcome.keep_rate))

    def update(self, outcome: Outcome) -> dict[str, float]:
        stop = self.stopped_at(outcome.keep_rate)
        self.frontier = self.difficulties()[-1] if stop is None else stop - 1
        return {}

    def state_dict(self) -> dict:
        return {"frontier": self.frontier}

    def load_state_dict(self, state: dict) -> None:
        self.frontier = int(state["frontier"])
