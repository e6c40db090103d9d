"""Learners: the ``[learner]`` section. The common settings also drive round 0's supervised
training on the seed data, which every recipe starts with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from selftaught.registry import register, register_role
from selftaught.settings import RecipeError, setting


@dataclass
class LearnerSettings:
    type: str = setting("sft", "how the policy is updated")
    lr: float = setting(1e-3, "peak learning rate (AdamW)", min=0.0)
    seed_lr: float = setting(0.0, "peak learning rate of round 0's supervised training and of verdict training "
                             "(0 = lr); RL learners want a far smaller lr than SFT", min=0.0)
    batch_size: int = setting(128, "examples per optimizer step (grpo: completions, in whole groups)", min=1)
    seed_batch_size: int = setting(0, "examples per step of round 0's supervised training and of verdict "
                                   "training (0 = batch_size)", min=0)
    weight_decay: float = setting(0.01, "AdamW weight decay", min=0.0)
    warmup_steps: int = setting(100, "linear warmup steps of each training phase", min=0)
    decay_fraction: float = setting(0.2, "share of each phase spent decaying the rate", min=0.0, max=1.0)
    seed_steps: int = setting(3000, "steps of supervised training on the seed data (round 0)", min=0)
    steps_per_round: int = setting(400, "steps of training in each self-improvement round", min=0)
    newest_share: float = setting(0.5, "share of each SFT batch drawn from the newest self-labels", min=0.0, max=1.0)

    consumes: ClassVar[str] = "examples"  # what it trains on: examples, pairs or groups
    random_samples: ClassVar[bool] = False  # needs a sampler that draws at random


@dataclass
class DPOSettings(LearnerSettings):
    beta: float = setting(0.1, "preference strength", min=0.0)
    sft_weight: float = setting(0.0, "weight of the chosen answers' log-likelihood added to the DPO loss (RPO)",
                                min=0.0)

    consumes: ClassVar[str] = "pairs"


@dataclass
class GRPOSettings(LearnerSettings):
    beta: float = setting(0.1, "weight of the KL to the round's start", min=0.0)
    clip: float = setting(0.2, "clip range of the importance ratio", min=0.0)
    on_policy: bool = setting(False, "sample each step's groups from the policy as it is then (the round's "
                              "problems are shared out across its steps, each used once; batch_size and clip "
                              "are unused); false: sample once a round and reuse the groups every step")
    micro_batch: int = setting(0, "on-policy: completions a forward and backward pass within a step (0 = the "
                               "step's all at once); the same gradient in less memory, and faster where a step's "
                               "logits outgrow the caches (a large vocabulary)", min=0)
    sft_rounds: int = setting(0, "rounds after the seed round that learn by SFT on the selector's examples "
                              "(at seed_lr and seed_batch_size) before RL starts, so that RL starts from a model "
                              "that already writes the format", min=0)

    consumes: ClassVar[str] = "groups"
    random_samples: ClassVar[bool] = True

    def check(self, recipe, where: str) -> None:
        if self.sft_rounds and "examples" not in recipe.selector.makes:
            raise RecipeError(f"{where}.sft_rounds = {self.sft_rounds} warms up by SFT on the selector's examples: "
                              f"selector.type = '{recipe.selector.type}' makes none (set selector.type = 'revisions')")
        if self.on_policy:
            if self.steps_per_round < 1:
                raise RecipeError(f"{where}.on_policy = true samples a round's attempts at its steps: set "
                                  f"{where}.steps_per_round >= 1 (found 0)")
            n = recipe.curriculum.problems_per_round
            if n < self.steps_per_round:
                raise RecipeError(f"{where}.on_policy = true shares curriculum.problems_per_round ({n}) out across "
                                  f"{where}.steps_per_round ({self.steps_per_round}): each step needs at least one "
                                  "problem")


register_role("learner", LearnerSettings)
register("learner", "sft", LearnerSettings, "selftaught.learn.learners:SFT.from_settings",
         "SFT on the kept examples, mixed with replay of earlier rounds")
register("learner", "dpo", DPOSettings, "selftaught.learn.learners:DPO.from_settings",
         "DPO on preference pairs against the model as the round began (+ the chosen answers' NLL: RPO)")
register("learner", "grpo", GRPOSettings, "selftaught.learn.learners:GRPO.from_settings",
         "group-normalised policy gradient; groups reused for a round, or sampled fresh for every step")
