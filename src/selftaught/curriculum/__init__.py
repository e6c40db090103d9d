"""Curricula: which problems the model attempts next."""

from __future__ import annotations

import random
from typing import Protocol

from selftaught.curriculum.easy_to_hard import EasyToHard
from selftaught.curriculum.uniform import Uniform
from selftaught.tasks.base import Problem, Task


class Curriculum(Protocol):
    frontier: int  # hardest difficulty the model is trusted on

    def propose(self, task: Task, rng: random.Random) -> list[Problem]: ...

    def trained_up_to(self, keep_rate: dict[int, float]) -> int:
        """The hardest difficulty whose kept examples may be trained on, given each difficulty's keep rate."""
        ...

    def update(self, keep_rate: dict[int, float]) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


__all__ = ["Curriculum", "EasyToHard", "Uniform"]
