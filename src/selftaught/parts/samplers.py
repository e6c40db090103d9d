"""Samplers: the ``[sampler]`` section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

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


@dataclass
class SearchSettings(TemperatureSettings):
    width: int = setting(3, "next steps drawn at each leaf the search grows", min=1)
    iterations: int = setting(16, "leaves grown per tree", min=1)
    max_tokens: int = setting(0, "tokens sampled per tree at most (0 = no cap): set it to compare with best-of-N "
                              "at equal cost", min=0)
    selection: Literal["uct", "puct"] = setting("uct", "which leaf grows next: uct (ReST-MCTS*) or puct, whose "
                                                "prior is the policy's probability of the step (rStar-Math)")
    exploration: float = setting(0.4, "exploration constant c of the selection (0.4 in ReST-MCTS*, 2 in "
                                 "rStar-Math's puct)", min=0.0)
    max_steps: int = setting(8, "steps a path may have: a node this deep is an answer", min=1)
    step_tokens: int = setting(24, "tokens one step may take; a step cut there (a long line) is not an answer: the "
                               "next step goes on with it", min=1)
    value: str = setting("process-value", "the judge (its type, one of the recipe's [[judges]]) whose score "
                         "evaluates each node")

    def check(self, recipe, where: str) -> None:
        names = [j.type for j in recipe.judges]
        if self.value not in names:
            raise RecipeError(f"{where}.value = '{self.value}' names no judge of this recipe: add a [[judges]] "
                              f"table with type = '{self.value}', or name one of {names}")

    def check_task(self, task, where: str) -> None:
        if not getattr(task, "step_separator", None):
            raise RecipeError(f"{where}.type = '{self.type}' searches over steps, and task.name = '{task.name}' "
                              "does not write its answers as steps (it has no step_separator)")


register_role("sampler", SamplerSettings)
register("sampler", "greedy", SamplerSettings, "selftaught.sample.samplers:Sampling.greedy",
         "the most likely answer")
register("sampler", "temperature", TemperatureSettings, "selftaught.sample.samplers:Sampling.from_settings",
         "answers sampled at a temperature (optionally top-k, top-p)")
register("sampler", "revise", ReviseSettings, "selftaught.sample.samplers:Revise.from_settings",
         "attempt, then revise it seeing `prompt attempt |` (a chat model: a user turn asking it to revise; "
         "self-correction)")
register("sampler", "mcts", SearchSettings, "selftaught.sample.search:TreeSearch.from_settings",
         "Monte-Carlo tree search over steps, each node scored by a judge (ReST-MCTS*, rStar-Math)")
