"""Supervised fine-tuning on (prompt, answer) pairs, with the loss on answer tokens only."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from selftaught.models.transformer import Transformer
from selftaught.tasks.tokenizer import EOS, PAD, CharTokenizer

IGNORE = -100


@dataclass
class Example:
    prompt: str
    answer: str
    member: int | None = None  # the one member this is for (multiagent); None = every member


def collate(tokenizer: CharTokenizer, examples: Sequence[Example]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded inputs and next-token labels; labels are IGNORE outside the answer + EOS."""
    seqs, starts = [], []
    for ex in examples:
        p = tokenizer.encode(ex.prompt)
        seqs.append(p + tokenizer.encode(ex.answer) + [EOS])
        starts.append(len(p))
    width = max(len(s) for s in seqs) - 1
    inputs = torch.full((len(seqs), width), PAD, dtype=torch.long)
    labels = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
    for i, (s, st) in enumerate(zip(seqs, starts)):
        t = torch.as_tensor(s)
        inputs[i, : len(s) - 1] = t[:-1]
        labels[i, st - 1: len(s) - 1] = t[st:]
    return inputs, labels


def bucket_by_length(tokenizer: CharTokenizer, examples: Sequence[Example], n: int, device):
    """Length-sorted micro-batches, each with its share of the batch's answer tokens, so that the
    summed gradient equals that of the whole batch's token-mean loss."""
    examples = sorted(examples, key=lambda e: len(e.prompt) + len(e.answer))
    size = -(-len(examples) // max(1, n))
    parts = [collate(tokenizer, examples[i:i + size]) for i in range(0, len(examples), size)]
    total = sum(int((labels != IGNORE).sum()) for _, labels in parts)
    return [(x.to(device), y.to(device), int((y != IGNORE).sum()) / total) for x, y in parts]


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
    # Each batch is sorted by length and run as this many micro-batches, each padded only to its
    # own longest sequence: the gradient is the same, and mixed-length batches waste far less.
    length_buckets: int = 4


def make_optimizer(model: Transformer, s: SFTSettings) -> torch.optim.AdamW:
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": s.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=s.lr, betas=(0.9, 0.98),
    )


def sft_steps(
    model: Transformer,
    optimizer: torch.optim.Optimizer,
    tokenizer: CharTokenizer,
    draw_batch: Callable[[random.Random, int], list[Example]],
    steps: int,
    settings: SFTSettings,
    rng: random.Random,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Run ``steps`` optimizer steps on batches from ``draw_batch``; returns the loss of each step."""
    def one_step(step: int) -> float:
        return answer_loss_backward(model, tokenizer, draw_batch(rng, settings.batch_size), settings.length_buckets)

    return optimizer_steps(model, optimizer, steps, settings, one_step, "training loss", on_step)


def answer_loss_backward(model: Transformer, tokenizer: CharTokenizer, examples: Sequence[Example],
                         buckets: int) -> float:
    """Back-propagate the token-mean next-token loss of ``examples``' answers; returns its value."""
    value = 0.0
    for inputs, labels, weight in bucket_by_length(tokenizer, examples, buckets, model.embed.weight.device):
        valid = inputs != PAD
        logits = model(inputs, valid=valid)  # real tokens only: padding costs nothing per token
        loss = F.cross_entropy(logits, labels[valid], ignore_index=IGNORE)
        (loss * weight).backward()  # weight = this bucket's share of the answer tokens
        value += loss.item() * weight
    return value


def optimizer_steps(model: Transformer, optimizer: torch.optim.Optimizer, steps: int, settings: SFTSettings,
                    one_step: Callable[[int], float], what: str,
                    on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """The loop every learner shares: warmup-stable-decay rate, ``one_step(step)`` (which runs the
    backward passes and returns the step's loss), gradient clipping, the optimizer step, a check
    that the loss is finite. Returns the loss of each step."""
    model.train()
    losses = []
    for step in range(steps):
        lr = wsd_lr(step, steps, settings.lr, min(settings.warmup_steps, max(1, steps // 10)),
                    settings.decay_fraction)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        value = one_step(step)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if not math.isfinite(value):
            raise FloatingPointError(f"{what} became {value} at step {step}")
        losses.append(value)
        if on_step is not None:
            on_step(step, value)
    model.eval()
    return losses
