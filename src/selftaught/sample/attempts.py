"""Turn problems into attempts: every member model answers every problem (and its equivalents)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from selftaught.models.generate import generate
from selftaught.models.transformer import Transformer
from selftaught.tasks.base import Problem, Task
from selftaught.tasks.tokenizer import CharTokenizer


@dataclass
class Attempt:
    problem_id: int  # index of the problem in this round's list
    problem: Problem
    member: int  # which member model made it
    text: str
    equivalent_texts: list[str] = field(default_factory=list)  # its answers to task.equivalents(problem)


def answer(
    model: Transformer,
    tokenizer: CharTokenizer,
    task: Task,
    problems: Sequence[Problem],
    *,
    temperature: float = 0.0,
    top_k: int = 0,
    batch_size: int = 512,
    generator: torch.Generator | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> list[str]:
    """Decoded answers in the order of ``problems``. Prompts are batched by length so that little
    padding is decoded; the token limit comes from the task's expected length where it has one."""
    order = sorted(range(len(problems)), key=lambda i: len(problems[i].prompt))
    out: list[str] = [""] * len(problems)
    cap = model.cfg.max_len
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        prompts = [tokenizer.encode(problems[i].prompt) for i in idx]
        limits = []
        for i, p in zip(idx, prompts):
            n = task.answer_length(problems[i])
            limits.append(min(cap - len(p), (n + 2) if n is not None else cap - len(p)))
        texts = generate(model, prompts, limits, temperature=temperature, top_k=top_k or None, generator=generator)
        for i, t in zip(idx, texts):
            out[i] = tokenizer.decode(t)
        if on_batch is not None:
            on_batch(len(idx))
    return out


def sample_attempts(
    members: Sequence[Transformer],
    tokenizer: CharTokenizer,
    task: Task,
    problems: Sequence[Problem],
    *,
    temperature: float = 0.0,
    top_k: int = 0,
    batch_size: int = 512,
    generator: torch.Generator | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> list[Attempt]:
    """One attempt per (problem, member), with the member's answers to the problem's equivalents."""
    equivalents = [task.equivalents(p) for p in problems]
    flat = list(problems) + [e for eqs in equivalents for e in eqs]
    attempts = []
    for m, model in enumerate(members):
        texts = answer(model, tokenizer, task, flat, temperature=temperature, top_k=top_k,
                       batch_size=batch_size, generator=generator, on_batch=on_batch)
        cursor = len(problems)
        for i, p in enumerate(problems):
            n = len(equivalents[i])
            attempts.append(Attempt(i, p, m, texts[i], texts[cursor:cursor + n]))
            cursor += n
    return attempts
