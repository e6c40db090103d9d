"""The model's own verdict on its attempt: ``prompt answer ?`` -> ``Y`` or ``N``.

The verdict is learned like any other answer (SFT on the model's own earlier attempts, labelled on
the labelled seed problems); at judging time no ground truth is used at all. The score is the
model's probability of ``Y`` against ``N``, so it can be thresholded, ranked (AUROC) and checked
for calibration (ECE).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from selftaught.judge.filters import Score
from selftaught.learn.sft import Example
from selftaught.models.transformer import Transformer
from selftaught.sample.attempts import Attempt
from selftaught.tasks.base import Problem, Task
from selftaught.tasks.tokenizer import NO, PAD, VERDICT, YES, CharTokenizer


def verdict_prompt(problem: Problem, answer: str) -> str:
    return f"{problem.prompt}{answer}{VERDICT}"


@torch.inference_mode()
def verdict_probability(model: Transformer, tokenizer: CharTokenizer, texts: Sequence[str],
                        batch_size: int = 512) -> list[float]:
    """P(YES) / (P(YES) + P(NO)) after each text (one forward pass per batch)."""
    yes, no = tokenizer.encode(YES + NO)
    device = model.embed.weight.device
    out: list[float] = []
    for start in range(0, len(texts), batch_size):
        encoded = [tokenizer.encode(t) for t in texts[start:start + batch_size]]
        width = max(len(e) for e in encoded)
        tokens = torch.full((len(encoded), width), PAD, dtype=torch.long)
        for i, e in enumerate(encoded):
            tokens[i, : len(e)] = torch.as_tensor(e)
        last = torch.as_tensor([len(e) - 1 for e in encoded])
        logits = model(tokens.to(device))[torch.arange(len(encoded)), last.to(device)].float()
        out += torch.softmax(logits[:, [yes, no]], dim=-1)[:, 0].tolist()
    return out


def verdict_examples(task: Task, attempts: Sequence[Attempt]) -> list[Example]:
    """Verdict training data from attempts on *labelled* problems: Y when the checker accepts."""
    return [Example(verdict_prompt(a.problem, a.text), YES if task.check(a.problem, a.text) else NO)
            for a in attempts]


class SelfVerdictJudge:
    """Each member judges its own attempts; passes when P(YES) >= ``threshold``."""

    name = "self-verdict"
    uses_ground_truth = False

    def __init__(self, members: Sequence[Transformer], tokenizer: CharTokenizer, threshold: float = 0.5,
                 batch_size: int = 512):
        self.members, self.tokenizer, self.threshold, self.batch_size = members, tokenizer, threshold, batch_size

    def score(self, task: Task, attempts: Sequence[Attempt]) -> list[Score]:
        values = [0.0] * len(attempts)
        for m, model in enumerate(self.members):
            mine = [i for i, a in enumerate(attempts) if a.member == m]
            probs = verdict_probability(model, self.tokenizer,
                                        [verdict_prompt(attempts[i].problem, attempts[i].text) for i in mine],
                                        self.batch_size)
            for i, p in zip(mine, probs):
                values[i] = p
        return [Score(self.name, v, v >= self.threshold, f"own verdict P(correct) = {v:.3f}") for v in values]
