"""Learning progress: each round's problems go where the model's success rate is moving.

Every difficulty of a fixed range gets a score from what the rounds so far measured there (the share
of its attempts that passed), by one of two measures:

- ``absolute``: absolute learning progress, |fast - slow|, two exponential moving averages of the
  success rate (rates ``fast`` > ``slow``). A difficulty whose rate climbs or falls scores high; one
  already solved, or hopeless, scores near 0 once both averages have settled. Both start at the first
  rate measured, so a difficulty needs two measurements before it shows any progress (Kanitscheider
  et al. 2021; MAGELLAN's online-ALP baseline).
- ``diff-based``: Trinity-RFT's ``diff_based`` selector, here per difficulty: a Beta(a, b) posterior
  of the pass rate, its counts discounted each round it is measured (a <- (1 - discount) a + discount
  + passed, b likewise with the failures, from Beta(1, 1)); the score is -|target_rate - a / (a + b)|,
  so the difficulties the model solves about ``target_rate`` of the time come first.

A difficulty never measured gets the largest score its measure can give (1, resp. 0): it is tried
first. The shares are a softmax of the scores at ``temperature``, mixed with an ``explore`` share
spread evenly so that every difficulty keeps being measured; each problem's difficulty is drawn from
them with the loop's generator. A difficulty with no attempts in a round keeps its estimate.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from selftaught.curriculum.outcome import Outcome
from selftaught.select.consensus import Selection
from selftaught.tasks.base import Problem, Task

TOP_SCORE = {"absolute": 1.0, "diff-based": 0.0}  # the largest score each measure can give


@dataclass
class LearningProgress:
    low: int
    high: int
    problems_per_round: int = 1000
    measure: str = "absolute"  # "absolute" | "diff-based"
    fast: float = 0.5
    slow: float = 0.1
    target_rate: float = 0.5
    discount: float = 0.2
    temperature: float = 0.1
    explore: float = 0.2
    # per measured difficulty: [fast, slow] moving averages (absolute) or [a, b] Beta counts (diff-based)
    estimates: dict[int, list[float]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings, context) -> LearningProgress:
        return cls(*settings.uniform_range(context.recipe.task), settings.problems_per_round, settings.measure,
                   settings.fast, settings.slow, settings.target_rate, settings.discount, settings.temperature,
                   settings.explore)

    @property
    def frontier(self) -> int:
        return self.high

    def difficulties(self) -> list[int]:
        return list(range(self.low, self.high + 1))

    def rate(self, d: int) -> float:
        """The estimated success rate at ``d`` (nan: never measured)."""
        if d not in self.estimates:
            return math.nan
        x, y = self.estimates[d]
        return x if self.measure == "absolute" else x / (x + y)

    def score(self, d: int) -> float:
        if d not in self.estimates:
            return TOP_SCORE[self.measure]
        if self.measure == "absolute":
            fast, slow = self.estimates[d]
            return abs(fast - slow)
        return -abs(self.target_rate - self.rate(d))

    def shares(self) -> list[float]:
        """Each difficulty's expected share of the next round's problems, from the easiest."""
        scores = [self.score(d) for d in self.difficulties()]
        top = max(scores)
        weights = [math.exp((s - top) / self.temperature) for s in scores]
        total = sum(weights)
        k = len(scores)
        return [(1 - self.explore) * w / total + self.explore / k for w in weights]

    def propose(self, task: Task, rng: random.Random) -> list[Problem]:
        levels = rng.choices(self.difficulties(), self.shares(), k=self.problems_per_round)
        return [task.sample(rng, d) for d in levels]

    def admit(self, outcome: Outcome, selection: Selection) -> Selection:
        return selection

    def update(self, outcome: Outcome) -> dict[str, float]:
        for d, (passed, n) in outcome.success_by_difficulty().items():
            if not self.low <= d <= self.high or n == 0:
                continue
            if self.measure == "absolute":
                r = passed / n
                fast, slow = self.estimates.get(d, [r, r])
                self.estimates[d] = [fast + self.fast * (r - fast), slow + self.slow * (r - slow)]
            else:
                a, b = self.estimates.get(d, [1.0, 1.0])
                keep = 1 - self.discount
                self.estimates[d] = [keep * a + self.discount + passed, keep * b + self.discount + (n - passed)]
        figures = {}
        for d, share in zip(self.difficulties(), self.shares()):
            figures |= {f"lp_score_{d}": self.score(d), f"lp_rate_{d}": self.rate(d), f"lp_choice_{d}": share}
        return figures

    def state_dict(self) -> dict:
        return {"estimates": {d: list(v) for d, v in self.estimates.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.estimates = {int(d): [float(x) for x in v] for d, v in state["estimates"].items()}
