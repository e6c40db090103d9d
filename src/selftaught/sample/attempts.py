"""Turn problems into attempts: every member model answers every problem (and its equivalents)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from selftaught.conversation import Conversation
from selftaught.policy import Completion, Policy
from selftaught.tasks.base import Problem, Task
from selftaught.tasks.tokenizer import REVISE


@dataclass
class Attempt:
    problem_id: int  # index of the problem in this round's list
    problem: Problem
    member: int  # which member model made it
    text: str
    equivalent_texts: list[str] = field(default_factory=list)  # its answers to task.equivalents(problem)
    sample: int = 0  # which of the member's samples of this problem
    first: str | None = None  # two-turn sampling: the first attempt, which ``text`` revises
    finished: bool = True  # the reply ended on its own (EOS, a stop string) before its token budget
    worker: str = "local"  # the process that drew ``text``
    version: int = 0  # the version of its member's weights that drew ``text``
    tree: Any = None  # a search sampler's tree of its problem (``sample.tree.Tree``), shared by its answers
    tokens: int = 0  # tokens sampled to make it (its equivalents' and first attempt's included; a tree's: 0)

    @property
    def transcript(self) -> str:
        """Everything the model wrote for this attempt."""
        return self.text if self.first is None else f"{self.first}{REVISE}{self.text}"


def answer_limit(task: Task, problem: Problem) -> int | None:
    """Tokens an answer may take: the task's expected length plus two of slack, so that a wrong
    length shows; else the task's ``max_answer_tokens`` (a free-text reply's budget), else None
    (up to the model's length)."""
    n = task.answer_length(problem)
    return getattr(task, "max_answer_tokens", None) if n is None else n + 2


def answer(
    policy: Policy,
    task: Task,
    problems: Sequence[Problem],
    *,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    batch_size: int = 512,
    generator: torch.Generator | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> list[str]:
    """Decoded answers in the order of ``problems``, each limited by ``answer_limit``."""
    return [c.text for c, _ in replies(policy, task, problems, temperature=temperature, top_k=top_k, top_p=top_p,
                                       batch_size=batch_size, generator=generator, on_batch=on_batch)]


def replies(policy: Policy, task: Task, problems: Sequence[Problem], **decoding: Any) -> list[tuple[Completion, bool]]:
    """Each answer as ``answer`` decodes it, and whether it ended on its own within its budget."""
    limits = [answer_limit(task, p) for p in problems]
    prefixes = [p.prefix for p in problems]
    if not any(prefixes):
        done = policy.generate([p.prompt for p in problems], limits, **decoding)
        return [(c, ended(c, n)) for c, n in zip(done, limits)]
    # a reply begun by its problem (ExIt): the policy writes the rest, within what the prefix leaves
    # of the budget; the text is the whole reply (the checker and SFT see it), ids and logps the rest's
    limits = [n if n is None or not x else max(1, n - len(policy.tokenizer.encode(x)))
              for n, x in zip(limits, prefixes)]
    done = policy.generate([p.prompt for p in problems], limits, prefixes=prefixes, **decoding)
    return [(replace(c, text=x + c.text), ended(c, n)) for c, n, x in zip(done, limits, prefixes)]


def ended(completion: Completion, limit: int | None) -> bool:
    """Whether a reply ended on its own (EOS, a stop string) rather than at its token budget."""
    return limit is None or len(completion.ids) < limit


def sample_attempts(
    members: Sequence[Policy],
    task: Task,
    problems: Sequence[Problem],
    *,
    samples: int = 1,
    equivalents: bool = True,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    batch_size: int = 512,
    generator: torch.Generator | None = None,
    on_batch: Callable[[int], None] | None = None,
    member_ids: Sequence[int] | None = None,
) -> list[Attempt]:
    """``samples`` attempts per (problem, member), ordered by member, problem, sample; with
    ``equivalents``, each attempt also answers the problem's other phrasings. ``member_ids``: the
    run's indices of ``members`` (default 0, 1, ...)."""
    eqs = [task.equivalents(p) if equivalents else [] for p in problems]
    repeated = [p for p in problems for _ in range(samples)]
    flat = repeated + [e for p, es in zip(problems, eqs) for _ in range(samples) for e in es]
    attempts = []
    for m, model in zip(member_ids if member_ids is not None else range(len(members)), members, strict=True):
        done = replies(model, task, flat, temperature=temperature, top_k=top_k, top_p=top_p,
                       batch_size=batch_size, generator=generator, on_batch=on_batch)
        texts = [c.text for c, _ in done]
        cursor = len(repeated)
        for i, p in enumerate(problems):
            for s in range(samples):
                n = len(eqs[i])
                c, finished = done[i * samples + s]
                tokens = len(c.ids) + sum(len(e.ids) for e, _ in done[cursor:cursor + n])
                attempts.append(Attempt(i, p, m, c.text, texts[cursor:cursor + n], sample=s, finished=finished,
                                        worker=c.worker, version=c.version, tokens=tokens))
                cursor += n
    return attempts


def revise_attempts(
    members: Sequence[Policy],
    task: Task,
    attempts: Sequence[Attempt],
    *,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    batch_size: int = 512,
    generator: torch.Generator | None = None,
    on_batch: Callable[[int], None] | None = None,
    member_ids: Sequence[int] | None = None,
) -> list[Attempt]:
    """The second turn: each member revises its own attempts, seeing ``revision_prompt``
    (``member_ids`` as in ``sample_attempts``)."""
    revised: list[Attempt | None] = [None] * len(attempts)
    for m, model in zip(member_ids if member_ids is not None else range(len(members)), members, strict=True):
        mine = [i for i, a in enumerate(attempts) if a.member == m]
        # a first attempt that ran long is cut, so that prompt, attempt and revision fit the model
        room = [(model.max_len - len(model.tokenizer.encode(attempts[i].problem.prompt))) // 2 - 1 for i in mine]
        firsts = [_cut(model, attempts[i].text, n) for i, n in zip(mine, room)]
        prompts = [revision_prompt(attempts[i].problem, f) for i, f in zip(mine, firsts)]
        limits = [answer_limit(task, attempts[i].problem) for i in mine]
        done = model.generate(prompts, limits, temperature=temperature, top_k=top_k, top_p=top_p,
                              batch_size=batch_size, generator=generator, on_batch=on_batch)
        for i, f, c, n in zip(mine, firsts, done, limits):
            a = attempts[i]
            revised[i] = Attempt(a.problem_id, a.problem, a.member, c.text, a.equivalent_texts, a.sample, first=f,
                                 finished=ended(c, n), worker=c.worker, version=c.version,
                                 tokens=a.tokens + len(c.ids))
    return revised


def _cut(policy: Policy, text: str, tokens: int) -> str:
    """``text`` cut to its first ``tokens`` tokens (none when ``tokens`` < 1)."""
    ids = policy.tokenizer.encode(text)
    return text if len(ids) <= tokens else policy.tokenizer.decode(ids[: max(0, tokens)])


# the user's turn that asks a chat model to revise (SCoRe's self-correction instruction)
REVISE_INSTRUCTION = ("There might be an error in the solution above because of lack of understanding of the "
                      "question. Please correct the error, if any, and rewrite the solution.")


def revision_prompt(problem: Problem, first: str) -> Conversation:
    """What the revision answers: ``prompt + attempt + REVISE`` to a policy without a chat format;
    to a chat policy three turns, the problem, the attempt as the model's reply, and
    ``REVISE_INSTRUCTION``."""
    return Conversation(f"{problem.prompt}{first}{REVISE}", (problem.prompt, first, REVISE_INSTRUCTION))
