"""What the run lends its parts: ``Context`` when they are made, ``Tools`` for a round's work that
is their own (B-STaR's probe, teaching the self-verdict, on-policy sampling inside a learner)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from selftaught.judge.filters import Score
from selftaught.learn.replay import ReplayMix
from selftaught.learn.sft import SFTSettings
from selftaught.policy import Policy
from selftaught.sample.attempts import Attempt
from selftaught.tasks.base import Problem, Task


class Phase(Protocol):
    def advance(self, n: int = 1) -> None: ...


@dataclass
class Context:
    """The run's shared state, as its parts are made."""

    recipe: Any  # selftaught.recipe.Recipe
    task: Task
    control_marks: bool  # the policies read and write the loop's verdict and revision marks
    policies: list[Policy]  # empty while the [model] part itself is made
    generator: Any  # the run's torch.Generator: the one source of sampling randomness
    replay: list[ReplayMix]  # each member's training mix (round 0's data, then what SFT keeps)
    supervised: SFTSettings  # round 0's supervised settings (seed_lr, seed_batch_size)


@dataclass
class Tools:
    """What a part may use of the run during one round."""

    round: int
    seed: int  # the run's seed: parts derive their own generators from it
    phase: Callable[[str, int], AbstractContextManager[Phase]]  # a timed phase with a progress bar of ``total``
    propose: Callable[[], list[Problem]]  # more problems from the curriculum (drawn from the loop's generator)
    sample: Callable[[list[Problem], float], list[Attempt]]  # every member's attempts at a temperature
    judge: Callable[[list[Attempt]], dict[str, list[Score]]]  # every judge's scores
    reward: Callable[[dict[str, list[Score]]], list[float]]  # the judges' weighted values
    seed_problems: Callable[[], list[Problem]]  # the labelled seed problems
