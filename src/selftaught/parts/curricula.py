"""Curricula: the ``[curriculum]`` section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
    accelerate: float = setting(0.0, "the share a probed difficulty past the first must have kept to be labelled and "
                                "passed in the same round (the SIT paper's accelerated schedule; 0 = the gate)",
                                min=0.0, max=1.0)


@dataclass
class DifficultyRangeSettings(CurriculumSettings):
    min_difficulty: int = setting(0, "easiest difficulty (0 = task.seed_min_difficulty)", min=0)
    max_difficulty: int = setting(0, "hardest difficulty (0 = task.seed_max_difficulty)", min=0)

    def uniform_range(self, task) -> tuple[int, int]:
        """The easiest and hardest difficulty (a 0 bound is the seed set's)."""
        return self.min_difficulty or task.seed_min_difficulty, self.max_difficulty or task.seed_max_difficulty

    def check(self, recipe, where: str) -> None:
        if self.min_difficulty and self.max_difficulty and self.min_difficulty > self.max_difficulty:
            raise RecipeError(f"{where}.min_difficulty ({self.min_difficulty}) exceeds {where}.max_difficulty "
                              f"({self.max_difficulty})")


@dataclass
class UniformSettings(DifficultyRangeSettings):
    difficulty_weights: list[float] = setting([], "relative share of each difficulty from the easiest to the "
                                              "hardest (empty = equal)")

    def check(self, recipe, where: str) -> None:
        super().check(recipe, where)
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


@dataclass
class LearningProgressSettings(DifficultyRangeSettings):
    measure: Literal["absolute", "diff-based"] = setting(
        "absolute", "what a difficulty is scored by: absolute = abs(fast - slow), two moving averages of its success "
        "rate (absolute learning progress); diff-based = -abs(target_rate - its Beta posterior pass rate) "
        "(Trinity-RFT)")
    fast: float = setting(0.5, "smoothing rate of the fast moving average of a difficulty's success rate, the share "
                          "of a new round's rate it takes in (measure = absolute)", min=0.0, max=1.0)
    slow: float = setting(0.1, "smoothing rate of the slow moving average, below fast (measure = absolute)",
                          min=0.0, max=1.0)
    target_rate: float = setting(0.5, "the pass rate aimed at, Trinity-RFT's target_reward (measure = diff-based)",
                                 min=0.0, max=1.0)
    discount: float = setting(0.2, "share of a difficulty's past pass/fail counts forgotten each round it is "
                              "measured, Trinity-RFT's lamb (measure = diff-based)", min=0.0, max=1.0)
    temperature: float = setting(0.1, "softmax temperature over the difficulties' scores (scores lie in [0, 1] "
                                 "or [-1, 0])", min=1e-6)
    explore: float = setting(0.2, "share of the problems spread evenly over the difficulties, so that every one "
                             "keeps being measured", min=0.0, max=1.0)

    def check(self, recipe, where: str) -> None:
        super().check(recipe, where)
        if self.measure == "absolute" and not self.slow < self.fast:
            raise RecipeError(f"{where}.slow ({self.slow}) must be below {where}.fast ({self.fast}): learning "
                              "progress is the gap between a fast and a slow moving average")


@dataclass
class ExitSettings(UniformSettings):
    buffer_size: int = setting(256, "partial solutions kept as new problems (those of highest priority)",
                               min=1)
    buffer_share: float = setting(0.5, "share of a round's problems drawn from the buffer (by priority); "
                                  "the rest are fresh", min=0.0, max=1.0)

    def check(self, recipe, where: str) -> None:
        super().check(recipe, where)
        if recipe.sampler.type == "mcts":
            raise RecipeError(f"{where}.type = 'exit' poses partial solutions, and sampler.type = 'mcts' searches "
                              "from an empty reply: use sampler.type = 'temperature'")

    def check_task(self, task, where: str) -> None:
        if not getattr(task, "step_separator", None):
            raise RecipeError(f"{where}.type = 'exit' cuts attempts into steps, and task.name = '{task.name}' does "
                              "not write its answers as steps (it has no step_separator)")


register("curriculum", "learning-progress", LearningProgressSettings,
         "selftaught.curriculum.learning_progress:LearningProgress.from_settings",
         "more problems where the success rate moves (absolute learning progress) or nears a target (diff-based)")
register("curriculum", "exit", ExitSettings, "selftaught.curriculum.exit:Exit.from_settings",
         "attempts' partial solutions of high reward variance become new problems (ExIt)")


@dataclass
class ChallengerSettings(CurriculumSettings):
    """problems_per_round: proposals the challenger writes each round (in groups of ``group``)."""

    group: int = setting(8, "proposals written for one challenger prompt: the group its policy gradient compares",
                         min=2)
    references: int = setting(3, "earlier valid proposals shown in each challenger prompt as examples (AZR's "
                              "references; none exist in the first round)", min=0)
    buffer_size: int = setting(256, "valid proposals kept to draw references from (the oldest leave first)", min=1)
    temperature: float = setting(1.0, "the challenger's sampling temperature", min=0.0)
    max_tokens: int = setting(48, "a proposal's token budget", min=1)
    executor: bool = setting(True, "label proposals by the task's executor (AZR); false: by the solver's majority "
                             "vote (R-Zero), with a vote judge")
    reward: Literal["azr", "r-zero"] = setting(
        "r-zero", "the challenger's learnability reward from the solve rate p: azr = 1 - p for 0 < p < 1 (else 0); "
        "r-zero = min(p, 1 - p)")
    invalid_reward: float = setting(-1.0, "reward of a proposal the task cannot read or the executor refuses")
    repetition: float = setting(1.0, "weight of R-Zero's repetition penalty (the share of the round's proposals in "
                                "the proposal's BLEU cluster); 0 = off", min=0.0)
    band: list[float] = setting([0.3, 0.8], "the solver trains only on proposals whose solve rate lies in "
                                "[low, high] (R-Zero)")
    model: Literal["policy", "separate", "frozen"] = setting(
        "policy", "who proposes: the policy itself (one model, both roles), a separate copy of the starting model "
        "trained as challenger, or the starting model untrained (a control)")
    lr: float = setting(5e-6, "the challenger's learning rate", min=0.0)
    steps: int = setting(8, "the challenger's policy-gradient steps per round (0 = never trained)", min=0)
    batch_size: int = setting(32, "proposals per challenger step (whole groups)", min=1)
    clip: float = setting(0.2, "the challenger's ratio clip", min=0.0)

    def check(self, recipe, where: str) -> None:
        if len(self.band) != 2 or not 0 <= self.band[0] <= self.band[1] <= 1:
            raise RecipeError(f"{where}.band = {self.band}: give [low, high] with 0 <= low <= high <= 1")
        if self.problems_per_round % self.group:
            raise RecipeError(f"{where}.problems_per_round ({self.problems_per_round}) must be a multiple of "
                              f"{where}.group ({self.group}): proposals come in whole groups")
        if getattr(recipe.learner, "on_policy", False):
            raise RecipeError(f"{where}.type = 'challenger' needs a learner that learns from the round's batch: "
                              "set learner.on_policy = false")
        judged_by_truth = [j.type for j in recipe.judges if j.type in ("verifier", "process-reward")]
        if not self.executor and judged_by_truth:
            raise RecipeError(f"{where}.executor = false labels proposals by the solver's vote: judges "
                              f"{judged_by_truth} read the executor's answer; use judges.type = 'majority-vote'")

    def check_task(self, task, where: str) -> None:
        from selftaught.tasks.base import Proposes

        if not isinstance(task, Proposes):
            raise RecipeError(f"{where}.type = 'challenger' has the model write problems, and task.name = "
                              f"'{task.name}' cannot read a written problem (it has no challenge and proposal)")


register("curriculum", "challenger", ChallengerSettings, "selftaught.curriculum.challenger:Challenger.from_settings",
         "the policy writes the round's problems and is trained to write learnable ones (self-play: AZR, R-Zero)")
