"""The model's certainty in its own attempt: the geometric-mean probability of the answer's tokens.

No ground truth and no training: the member that wrote an attempt scores it (its end of sequence
included, so an answer cut short or run on is doubted too). Where the self-verdict tells easy
problems from hard ones but ranks one problem's own attempts poorly, certainty does the opposite:
on countdown, right above wrong among a query's four samples 85% of the time against the
verdict's 68% (LOG.md, session 7). That ranking is what a preference pair needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from selftaught.judge.filters import Score, each_members_own
from selftaught.policy import Policy
from selftaught.sample.attempts import Attempt
from selftaught.tasks.base import Task


@torch.inference_mode()
def certainty(policy: Policy, prompts: Sequence[str], answers: Sequence[str], batch_size: int = 512) -> list[float]:
    """exp(mean log-probability of each answer's tokens and its end of sequence) under ``model``."""
    out: list[float] = []
    for start in range(0, len(prompts), batch_size):
        logps, mask = policy.token_logps(prompts[start:start + batch_size], answers[start:start + batch_size])
        out += torch.exp(logps.sum(1) / mask.sum(1)).tolist()
    return out


class SelfCertaintyJudge:
    """Each member scores its own attempts; passes when the certainty is >= ``threshold``."""

    name = "self-certainty"
    uses_ground_truth = False

    def __init__(self, members: Sequence[Policy], threshold: float = 0.5, batch_size: int = 512):
        self.members, self.threshold, self.batch_size = members, threshold, batch_size

    @classmethod
    def from_settings(cls, settings, context) -> SelfCertaintyJudge:
        return cls(context.policies, settings.threshold, context.recipe.sampler.batch_size)

    def score(self, task: Task, attempts: Sequence[Attempt]) -> list[Score]:
        values = each_members_own(self.members, attempts, lambda model, mine: certainty(
            model, [a.problem.prompt for a in mine], [a.text for a in mine], self.batch_size))
        return [Score(self.name, v, v >= self.threshold, f"own certainty (geometric-mean token probability) "
                      f"{v:.3f}") for v in values]
