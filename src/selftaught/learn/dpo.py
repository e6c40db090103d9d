"""Direct preference optimisation against a frozen reference (Rafailov et al. 2023), the learner
of Self-Rewarding's iterative DPO: the reference is the model as the round began.

With ``sft_weight`` > 0 the chosen answers' negative log-likelihood is added (Iterative RPO, Pang
et al. 2024): plain DPO may lower the chosen answers' likelihood too, as long as the rejected ones
fall faster, and on reasoning tasks that drains a small model's accuracy."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from selftaught.learn.sft import SFTSettings, optimizer_steps
from selftaught.policy import Policy
from selftaught.select.consensus import Pair


def dpo_loss(chosen: torch.Tensor, rejected: torch.Tensor, ref_chosen: torch.Tensor, ref_rejected: torch.Tensor,
             beta: float) -> torch.Tensor:
    """Mean over pairs of -log σ(β · ((log π(y+) - log π_ref(y+)) - (log π(y-) - log π_ref(y-))))
    from sequence log-probabilities."""
    margin = (chosen - ref_chosen) - (rejected - ref_rejected)
    return -F.logsigmoid(beta * margin).mean()


def preference_loss(logps: torch.Tensor, mask: torch.Tensor, ref_chosen: torch.Tensor, ref_rejected: torch.Tensor,
                    beta: float, sft_weight: float = 0.0) -> torch.Tensor:
    """DPO plus ``sft_weight`` times the chosen tokens' mean negative log-likelihood, from token
    log-probabilities ``logps`` and their ``mask`` ([2n, width]: the n chosen rows, then the n
    rejected ones), as TRL's ``loss_type=["sigmoid", "sft"]`` weighs them."""
    n = len(ref_chosen)
    sequences = logps.sum(-1)
    loss = dpo_loss(sequences[:n], sequences[n:], ref_chosen, ref_rejected, beta)
    if sft_weight:
        loss = loss - sft_weight * logps[:n][mask[:n]].mean()
    return loss


def sequence_logps(policy: Policy, prompts: Sequence[str], completions: Sequence[str]) -> torch.Tensor:
    logps, _ = policy.token_logps(prompts, completions)
    return logps.sum(-1)


def dpo_steps(policy: Policy, pairs: Sequence[Pair], steps: int, settings: SFTSettings, beta: float,
              rng: random.Random, sft_weight: float = 0.0,
              on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """``steps`` optimizer steps on batches of pairs drawn with replacement; returns each loss."""
    if not pairs:
        return []
    reference = policy.frozen_copy()
    with torch.no_grad():  # the reference never changes within the round: score every pair once
        ref_c = sequence_logps(reference, [p.prompt for p in pairs], [p.chosen for p in pairs])
        ref_r = sequence_logps(reference, [p.prompt for p in pairs], [p.rejected for p in pairs])
    def one_step(step: int) -> float:
        idx = [rng.randrange(len(pairs)) for _ in range(min(settings.batch_size, 2 * len(pairs)))]
        batch = [pairs[i] for i in idx]
        prompts = [p.prompt for p in batch]
        # chosen and rejected in one forward pass
        logps, mask = policy.token_logps(prompts + prompts, [p.chosen for p in batch] + [p.rejected for p in batch])
        loss = preference_loss(logps, mask, ref_c[idx], ref_r[idx], beta, sft_weight)
        loss.backward()
        return loss.item()

    return optimizer_steps(policy, steps, settings, one_step, "DPO loss", on_step)
