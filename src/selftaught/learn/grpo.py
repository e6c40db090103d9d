"""Group relative policy optimisation (DeepSeekMath): rewards normalised within each prompt's group
of samples, a clipped importance ratio against the policy that drew the samples, and an optional
KL penalty to a reference (the model as the round began).

Two ways to feed it: ``grpo_steps`` reuses one round's groups for every step (sampled once, so the
ratio and its clip matter); ``grpo_fresh_steps`` samples each step's groups from the policy as it is
then, uses them once, and so never trains on stale samples."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import torch

from selftaught.learn.sft import SFTSettings, optimizer_steps
from selftaught.policy import Policy
from selftaught.select.consensus import Group


def group_advantages(rewards: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """[groups, samples] rewards -> (r - group mean) / (group std + eps), std with Bessel's correction."""
    return (rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + eps)


def grpo_loss(logps: torch.Tensor, old_logps: torch.Tensor, ref_logps: torch.Tensor | None, advantages: torch.Tensor,
              mask: torch.Tensor, clip_low: float = 0.2, clip_high: float = 0.2, beta: float = 0.0) -> torch.Tensor:
    """Per token: -min(ρ·A, clip(ρ, 1-clip_low, 1+clip_high)·A) + β·KL, with ρ = π/π_old and the
    k3 estimator KL = exp(ref - log π) - (ref - log π) - 1; averaged over each sequence's tokens,
    then over sequences. ``logps``, ``old_logps``, ``ref_logps``, ``mask``: [batch, tokens];
    ``advantages``: [batch]."""
    ratio = torch.exp(logps - old_logps)
    adv = advantages[:, None]
    per_token = -torch.min(ratio * adv, ratio.clamp(1 - clip_low, 1 + clip_high) * adv)
    if beta:
        delta = ref_logps - logps
        per_token = per_token + beta * (torch.exp(delta) - delta - 1)
    mask = mask.to(per_token.dtype)
    return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()


def grpo_steps(policy: Policy, groups: Sequence[Group], steps: int, settings: SFTSettings, temperature: float,
               clip: float, beta: float, rng: random.Random,
               on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """``steps`` optimizer steps, each on whole groups drawn from this round's samples."""
    if not groups:
        return []
    prompts, completions, advantages = flatten(groups)
    start = [0]
    for g in groups:
        start.append(start[-1] + len(g.completions))
    with torch.no_grad():  # the sampling policy, before any update; it is also the KL reference
        policy.eval()
        old, _ = policy.token_logps(prompts, completions, temperature)
    per_step = max(1, settings.batch_size // max(1, len(groups[0].completions)))

    def one_step(step: int) -> float:
        chosen = [rng.randrange(len(groups)) for _ in range(min(per_step, len(groups)))]
        idx = [i for g in chosen for i in range(start[g], start[g + 1])]
        logps, mask = policy.token_logps([prompts[i] for i in idx], [completions[i] for i in idx], temperature)
        old_b = _fit(old[idx], logps.shape[1])
        loss = grpo_loss(logps, old_b, old_b if beta else None, advantages[idx], mask, clip, clip, beta)
        loss.backward()
        return loss.item()

    return optimizer_steps(policy, steps, settings, one_step, "GRPO loss", on_step)


def grpo_fresh_steps(policy: Policy, draw: Callable[[int], tuple[Sequence[Group], int]], steps: int,
                     settings: SFTSettings, temperature: float, beta: float, reference: Policy | None,
                     on_step: Callable[[int, float], None] | None = None, micro_batch: int = 0) -> list[float]:
    """``steps`` optimizer steps, each on the groups ``draw(step)`` samples from the model as it is
    then; ``draw`` also returns how many problems it sampled. The ratio is 1 (its gradient is the
    policy gradient; the clip never acts). Groups whose rewards are all equal are left out of the
    groups but counted in ``drawn``, so a step's size does not grow as fewer of them are mixed.
    ``micro_batch``: completions a forward and backward pass (0 = the step's all at once); the
    gradients add up to the same step."""
    def one_step(step: int) -> float:
        groups, drawn = draw(step)
        if not groups:
            return 0.0
        prompts, completions, advantages = flatten(groups)
        n = len(completions)
        size = micro_batch or n
        total = 0.0
        for lo in range(0, n, size):
            part = slice(lo, lo + size)
            logps, mask = policy.token_logps(prompts[part], completions[part], temperature)
            ref = None
            if beta:
                with torch.no_grad():
                    ref, _ = reference.token_logps(prompts[part], completions[part], temperature)
            # the loss is a mean over completions: each part weighs its share of them
            loss = grpo_loss(logps, logps.detach(), ref, advantages[part], mask, beta=beta) * (
                len(groups) / drawn) * (logps.shape[0] / n)
            loss.backward()
            total += loss.item()
        return total

    return optimizer_steps(policy, steps, settings, one_step, "GRPO loss", on_step)


def flatten(groups: Sequence[Group]) -> tuple[list[str], list[str], torch.Tensor]:
    """Prompts, completions and group-normalised advantages, one per completion."""
    prompts = [p for g in groups for p in g.each_prompt()]
    completions = [c for g in groups for c in g.completions]
    advantages = torch.cat([group_advantages(torch.tensor([g.rewards], dtype=torch.float32))[0] for g in groups])
    return prompts, completions, advantages


def _fit(x: torch.Tensor, width: int) -> torch.Tensor:
    """Crop or zero-pad the token axis: a sub-batch is padded only to its own longest sequence."""
    if x.shape[1] >= width:
        return x[:, :width]
    return torch.nn.functional.pad(x, (0, width - x.shape[1]))
