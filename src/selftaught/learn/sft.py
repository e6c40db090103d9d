"""Supervised fine-tuning on (prompt, answer) pairs, with the loss on answer tokens only."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from selftaught.policy import Policy


@dataclass
class Example:
    prompt: str
    answer: str
    member: int | None = None  # the one member this is for (multiagent); None = every member


def tail_mean(steps: list[tuple[int, int, float]]) -> float:
    """Mean loss over each member's last tenth of (member, step, loss) steps (the round's loss figure)."""
    if not steps:
        return float("nan")
    last = max(s for _, s, _ in steps) + 1
    tail = [v for _, s, v in steps if s >= last - max(1, last // 10)]
    return sum(tail) / len(tail)


def wsd_lr(step: int, total: int, peak: float, warmup: int, decay_frac: float) -> float:
    """Warmup-stable-decay (the SIT paper's schedule): linear up, flat, linear down to 10%."""
    if step < warmup:
        return peak * (step + 1) / warmup
    decay_start = total * (1 - decay_frac)
    if step < decay_start:
        return peak
    return peak * (1 - 0.9 * (step - decay_start) / max(1.0, total - decay_start))


@dataclass
class SFTSettings:
    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 0.01
    warmup_steps: int = 50
    decay_fraction: float = 0.2


def sft_steps(
    policy: Policy,
    draw_batch: Callable[[random.Random, int], list[Example]],
    steps: int,
    settings: SFTSettings,
    rng: random.Random,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Run ``steps`` optimizer steps on batches from ``draw_batch``; returns the loss of each step."""
    def one_step(step: int) -> float:
        batch = draw_batch(rng, settings.batch_size)
        return policy.answer_loss_backward([e.prompt for e in batch], [e.answer for e in batch])

    return optimizer_steps(policy, steps, settings, one_step, "training loss", on_step)


def optimizer_steps(policy: Policy, steps: int, settings: SFTSettings, one_step: Callable[[int], float], what: str,
                    on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """The loop every learner shares: warmup-stable-decay rate, ``one_step(step)`` (which runs the
    backward passes and returns the step's loss), one policy step, a check that the loss is
    finite. Returns the loss of each step."""
    policy.train()
    losses = []
    for step in range(steps):
        lr = wsd_lr(step, steps, settings.lr, min(settings.warmup_steps, max(1, steps // 10)),
                    settings.decay_fraction)
        value = policy.step(lr, lambda step=step: one_step(step))
        if not math.isfinite(value):
            raise FloatingPointError(f"{what} became {value} at step {step}")
        losses.append(value)
        if on_step is not None:
            on_step(step, value)
    policy.eval()
    return losses
