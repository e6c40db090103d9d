"""Samplers: the ``[sampler]`` section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from selftaught.registry import register, register_role
from selftaught.settings import RecipeError, setting


@dataclass
class SamplerSettings:
    type: str = setting("greedy", "how attempts are made")
    samples: int = setting(1, "attempts per problem and member", min=1)
    batch_size: int = setting(512, "prompts decoded together", min=1)

    random: ClassVar[bool] = False  # draws attempts at random (several samples of a query differ)
    revises: ClassVar[bool] = False  # each attempt is a first attempt and its revision
    control_marks: ClassVar[bool] = False  # the model reads and writes the loop's revision mark


@dataclass
class TemperatureSettings(SamplerSettings):
    temperature: float = setting(1.0, "sampling temperature", min=0.0)
    top_k: int = setting(0, "keep only the k most likely tokens when sampling (0 = all)", min=0)
    top_p: float = setting(1.0, "keep only the most likely tokens whose probabilities sum to top_p (nucleus "
                           "sampling; 1 = all)", min=0.01, max=1.0)

    random: ClassVar[bool] = True


@dataclass
class ReviseSettings(TemperatureSettings):
    revisions: int = setting(1, "revisions drawn of each first attempt in rounds whose learner compares them "
                             "(groups); rounds that learn from examples revise each attempt once", min=1)

    revises: ClassVar[bool] = True
    control_marks: ClassVar[bool] = True  # the revision mark

    def check(self, recipe, where: str) -> None:
        if self.revisions > 1 and recipe.learner.consumes != "groups":
            raise RecipeError(f"{where}.revisions = {self.revisions} draws several revisions of each attempt for a "
                              f"learner that compares them: set learner.type = 'grpo' (found learner.type = "
                              f"'{recipe.learner.type}')")


register_role("sampler", SamplerSettings)
register("sampler", "greedy", SamplerSettings, "selftaught.sample.samplers:Sampling.greedy",
         "the most likely answer")
register("sampler", "temperature", TemperatureSettings, "selftaught.sample.samplers:Sampling.from_settings",
         "answers sampled at a temperature (optionally top-k, top-p)")
register("sampler", "revise", ReviseSettings, "selftaught.sample.samplers:Revise.from_settings",
         "attempt, then revise it seeing `prompt attempt |` (self-correction)")
