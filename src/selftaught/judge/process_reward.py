"""Process reward from Monte-Carlo rollouts (Math-Shepherd, ReST-MCTS*): the value of a step is
the share of completions from the prefix ending at that step that reach a correct answer.

The attempt's score is its weakest step (B-STaR uses the minimum step score of a PRM), so one bad
step sinks an answer that happened to end right. Completions are checked with the task's checker:
this judge uses ground truth, as the rollout estimates in those papers do.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from selftaught.judge.filters import Score
from selftaught.policy import Policy
from selftaught.sample.attempts import Attempt
from selftaught.tasks.base import Task


def step_prefixes(answer: str, separator: str) -> list[str]:
    """The prefixes that end after each step but the last: ``a;b;c`` -> ``a;``, ``a;b;``."""
    steps = answer.split(separator)
    return [separator.join(steps[: k + 1]) + separator for k in range(len(steps) - 1)]


class ProcessRewardJudge:
    name = "process-reward"
    uses_ground_truth = True

    def __init__(self, members: Sequence[Policy], rollouts: int = 4, threshold: float = 0.5, temperature: float = 1.0,
                 batch_size: int = 512, generator: torch.Generator | None = None):
        self.members = members
        self.rollouts, self.threshold, self.temperature = rollouts, threshold, temperature
        self.batch_size, self.generator = batch_size, generator

    @classmethod
    def from_settings(cls, settings, context) -> ProcessRewardJudge:
        return cls(context.policies, settings.rollouts, settings.threshold, settings.rollout_temperature,
                   context.recipe.sampler.batch_size, context.generator)

    def step_values(self, task: Task, attempts: Sequence[Attempt]) -> list[list[float]]:
        """Per attempt, the value of each step; the last step's value is whether the answer is right."""
        sep = task.step_separator
        values: list[list[float]] = [[] for _ in attempts]
        for m, model in enumerate(self.members):
            jobs = [(i, prefix) for i, a in enumerate(attempts) if a.member == m
                    for prefix in step_prefixes(a.text, sep)]
            prompts = [attempts[i].problem.prompt for i, _ in jobs for _ in range(self.rollouts)]
            prefixes = [prefix for _, prefix in jobs for _ in range(self.rollouts)]  # in the reply, not the prompt
            tails = [c.text for c in model.generate(prompts, [None] * len(prompts), temperature=self.temperature,
                                                    batch_size=self.batch_size, generator=self.generator,
                                                    prefixes=prefixes)]
            for j, (i, prefix) in enumerate(jobs):
                wins = sum(task.check(attempts[i].problem, prefix + t)
                           for t in tails[j * self.rollouts:(j + 1) * self.rollouts])
                values[i].append(wins / self.rollouts)
        for v, a in zip(values, attempts):
            v.append(float(task.check(a.problem, a.text)))
        return values

    def score(self, task: Task, attempts: Sequence[Attempt]) -> list[Score]:
        scores = []
        for v in self.step_values(task, attempts):
            worst = min(v)
            scores.append(Score(self.name, worst, worst >= self.threshold,
                                "step values " + " ".join(f"{x:.2f}" for x in v)))
        return scores
