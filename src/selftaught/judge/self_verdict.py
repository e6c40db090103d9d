"""The model's own verdict on its attempt: ``prompt answer ?`` -> ``Y`` or ``N``.

The verdict is learned from the model's own earlier attempts at the labelled seed problems; at
judging time no ground truth is used at all. The score is the model's probability of ``Y`` against
``N``, so it can be thresholded, ranked (AUROC) and checked for calibration (ECE).

Two things keep learning to judge from costing the model its answers. The verdict is a two-way
choice between ``Y`` and ``N`` at the verdict mark, not an SFT answer (a next-token loss over the
whole vocabulary, end-of-sequence included, pushed up ``Y`` and EOS wherever the model stood, and a
small model cut its answers short: countdown pass@1 0.51 -> 0.12 in one round). And every verdict
step also trains on the model's own greedy answers, an anchor that holds how it answers where it
was without showing it any label.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from selftaught.judge.filters import Score, each_members_own
from selftaught.learn.sft import Example, SFTSettings, optimizer_steps, tail_mean
from selftaught.policy import Policy
from selftaught.sample.attempts import Attempt, answer, sample_attempts
from selftaught.tasks.base import Problem, Task
from selftaught.tasks.tokenizer import NO, VERDICT, YES

if TYPE_CHECKING:
    from selftaught.context import Tools


def verdict_prompt(problem: Problem, answer: str) -> str:
    return f"{problem.prompt}{answer}{VERDICT}"


@torch.inference_mode()
def verdict_probability(policy: Policy, texts: Sequence[str], batch_size: int = 512, yes: str = YES, no: str = NO,
                        prompts: bool = False) -> list[float]:
    """P(yes) / (P(yes) + P(no)) after each text (``prompts``: as the first token of the reply to each
    text as a prompt, see ``Policy.log_odds``)."""
    return [p for start in range(0, len(texts), batch_size)
            for p in torch.sigmoid(policy.log_odds(texts[start:start + batch_size], yes, no, prompts)).tolist()]


@dataclass
class VerdictExample:
    text: str  # prompt + answer + VERDICT
    correct: float  # 1 or 0; a process value's target may lie between


def verdict_examples(task: Task, attempts: Sequence[Attempt]) -> list[VerdictExample]:
    """Verdict training data from attempts on *labelled* problems: correct when the checker accepts."""
    return [VerdictExample(verdict_prompt(a.problem, a.text), task.check(a.problem, a.text)) for a in attempts]


def verdict_steps(policy: Policy, examples: Sequence[VerdictExample], anchor: Sequence[Example], steps: int,
                  settings: SFTSettings, rng: random.Random,
                  on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """Teach the verdict: each step, the logistic loss of the verdict's log-odds on a batch of
    ``examples`` (unweighted, so that P(YES) stays calibrated to how often the model is right) plus
    the answer loss on a batch of ``anchor`` (the model's own answers). Returns each step's
    verdict loss."""
    if not examples:
        return []

    def one_step(step: int) -> float:
        batch = [rng.choice(examples) for _ in range(settings.batch_size)]
        logits = policy.log_odds([e.text for e in batch], YES, NO)
        target = torch.as_tensor([float(e.correct) for e in batch], device=logits.device)
        loss = F.binary_cross_entropy_with_logits(logits, target)
        loss.backward()
        if anchor:
            own = [rng.choice(anchor) for _ in range(settings.batch_size)]
            policy.answer_loss_backward([e.prompt for e in own], [e.answer for e in own])
        return loss.item()

    return optimizer_steps(policy, steps, settings, one_step, "verdict loss", on_step)


@dataclass
class VerdictTraining:
    """How the verdict is taught each round (after the learner): ``problems`` labelled seed
    problems attempted ``samples`` times each at ``temperature`` (a verdict must see wrong
    attempts too), ``steps`` steps at ``settings``."""

    problems: int
    steps: int
    settings: SFTSettings
    samples: int = 1
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    generator: torch.Generator | None = None


class SelfVerdictJudge:
    """Each member judges its own attempts; passes when P(YES) >= ``threshold``. With ``training``,
    each member is taught its verdict every round (``train``)."""

    name = "self-verdict"
    uses_ground_truth = False

    def __init__(self, members: Sequence[Policy], threshold: float = 0.5, batch_size: int = 512,
                 training: VerdictTraining | None = None):
        self.members, self.threshold, self.batch_size, self.training = members, threshold, batch_size, training

    @classmethod
    def from_settings(cls, settings, context) -> SelfVerdictJudge:
        s = context.recipe.sampler
        supervised = replace(context.supervised, lr=settings.lr) if settings.lr else context.supervised
        training = VerdictTraining(settings.train_problems, settings.train_steps, supervised, max(1, s.samples),
                                   s.temperature if s.random else 1.0, getattr(s, "top_k", 0),
                                   getattr(s, "top_p", 1.0), context.generator)
        return cls(context.policies, settings.threshold, s.batch_size, training)

    def score(self, task: Task, attempts: Sequence[Attempt]) -> list[Score]:
        values = each_members_own(self.members, attempts, lambda model, mine: verdict_probability(
            model, [verdict_prompt(a.problem, a.text) for a in mine], self.batch_size))
        return [Score(self.name, v, v >= self.threshold, f"own verdict P(correct) = {v:.3f}") for v in values]

    def train(self, task: Task, tools: Tools) -> dict[str, float]:
        """Teach each member to judge its own attempts: it attempts labelled seed problems and learns
        which ones the checker accepts (the only ground truth the verdict sees), anchored by its
        own greedy answers to the same problems. Returns the verdict's final loss as a figure."""
        t = self.training
        if t is None or not t.steps:
            return {}
        with tools.phase("verdict", t.steps * len(self.members)) as bar:
            pool = tools.seed_problems()
            rng = random.Random(f"{tools.seed}-verdict-{tools.round}")
            problems = [rng.choice(pool) for _ in range(t.problems)]
            attempts = sample_attempts(self.members, task, problems, samples=t.samples, equivalents=False,
                                       temperature=t.temperature, top_k=t.top_k, top_p=t.top_p,
                                       batch_size=self.batch_size, generator=t.generator)
            losses = []
            for i, model in enumerate(self.members):
                own = answer(model, task, problems, batch_size=self.batch_size)
                anchor = [Example(p.prompt, a) for p, a in zip(problems, own)]
                losses.append(verdict_steps(model, verdict_examples(task, [a for a in attempts if a.member == i]),
                                            anchor, t.steps, t.settings, rng, on_step=lambda step, loss: bar.advance()))
        return {"verdict_loss": tail_mean([(0, k, x) for k, x in enumerate(losses[0])])}
