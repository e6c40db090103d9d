"""Curricula: the ``[curriculum]`` section."""

from __future__ import annotations

from dataclasses import dataclass

from selftaught.registry import register, register_role
from selftaught.settings import RecipeError, setting


@dataclass
class CurriculumSettings:
    type: str = setting("easy-to-hard", "which problems come next")
    problems_per_round: int = setting(4000, "new problems the model labels each round", min=1)


@dataclass
class EasyToHardSettings(CurriculumSettings):
    span: int = setting(1, "difficulties above the frontier probed in one round (labels past the first one that "
                        "fails the gate are not trained on)", min=1)
    gate: float = setting(0.8, "share of a difficulty's problems that must be kept to advance past it",
                          min=0.0, max=1.0)


@dataclass
class UniformSettings(CurriculumSettings):
    min_difficulty: int = setting(0, "easiest difficulty (0 = task.seed_min_difficulty)", min=0)
    max_difficulty: int = setting(0, "hardest difficulty (0 = task.seed_max_difficulty)", min=0)
    difficulty_weights: list[float] = setting([], "relative share of each difficulty from the easiest to the "
                                              "hardest (empty = equal)")

    def uniform_range(self, task) -> tuple[int, int]:
        """The easiest and hardest difficulty (a 0 bound is the seed set's)."""
        return self.min_difficulty or task.seed_min_difficulty, self.max_difficulty or task.seed_max_difficulty

    def check(self, recipe, where: str) -> None:
        if self.min_difficulty and self.max_difficulty and self.min_difficulty > self.max_difficulty:
            raise RecipeError(f"{where}.min_difficulty ({self.min_difficulty}) exceeds {where}.max_difficulty "
                              f"({self.max_difficulty})")
        if self.difficulty_weights:
            low, high = self.uniform_range(recipe.task)
            if len(self.difficulty_weights) != high - low + 1:
                raise RecipeError(f"{where}.difficulty_weights has {len(self.difficulty_weights)} weights for the "
                                  f"{high - low + 1} difficulties {low}..{high}: give one for each")
            if min(self.difficulty_weights) < 0 or not sum(self.difficulty_weights) > 0:
                raise RecipeError(f"{where}.difficulty_weights must be >= 0 and not all 0 "
                                  f"(found {self.difficulty_weights})")


register_role("curriculum", CurriculumSettings)
register("curriculum", "easy-to-hard", EasyToHardSettings,
         "selftaught.curriculum.easy_to_hard:EasyToHard.from_settings",
         "raise the difficulty past a competence gate on the model's own keep rate")
register("curriculum", "uniform", UniformSettings, "selftaught.curriculum.uniform:Uniform.from_settings",
         "fresh problems from a fixed range of difficulties, optionally weighted")
