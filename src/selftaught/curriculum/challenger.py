"""The challenger: the model writes the round's problems and learns to write ones it can just
about solve (self-play: Absolute Zero, R-Zero).

Each round it is asked ``problems_per_round / group`` times for a new problem (each prompt showing
a few of its earlier valid proposals), ``group`` samples a prompt. The task reads each reply as a
problem and computes its answer with its executor; a reply it cannot read costs that proposal its
reward, never the run. The solver attempts the distinct problems; the challenger's reward for a
proposal is its learnability from the solver's solve rate p (AZR: 1 - p for 0 < p < 1; R-Zero:
min(p, 1 - p)) minus R-Zero's repetition penalty, and it takes group-relative policy-gradient steps
on it after the solver has learnt. Without the executor (``executor = false``) a problem's label is
the solver's majority answer and p its share (R-Zero), and the executor's answer only audits it.
The solver trains only on problems whose p lies in ``band``.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from selftaught.curriculum.outcome import Outcome
from selftaught.curriculum.repetition import cluster_shares
from selftaught.engine.executors import trainable_copy
from selftaught.learn.grpo import grpo_steps
from selftaught.learn.sft import SFTSettings
from selftaught.policy import Policy
from selftaught.select.consensus import Group, Selection, keep_problems
from selftaught.tasks.base import Problem, ProposalError, Task

HISTOGRAM = 5  # bins of the solve-rate histogram the report draws


@dataclass
class Proposal:
    """One reply of the challenger, what it proposed and how it fared (a row of the store)."""

    group: int  # which of the round's challenger prompts it answers
    prompt: str  # that prompt
    text: str  # the reply
    problem: Problem | None  # the problem read from it (None: refused)
    reason: str = ""  # why it was refused
    problem_id: int | None = None  # the round's problem it became (shared by identical proposals)
    solve_rate: float = math.nan
    label: str | None = None  # the solver's majority answer (its label without an executor)
    reward: float = math.nan

    def row(self, task: Task) -> tuple:
        """As the store's ``proposals`` table keeps it (the executor's answer read through the task)."""
        problem = difficulty = answer = None
        if self.problem is not None:
            problem, difficulty, answer = self.problem.prompt, self.problem.difficulty, task.target(self.problem)
        return (self.group, self.prompt, self.text, problem, difficulty, self.reason, answer, self.label,
                self.solve_rate, self.reward)


def learnability(p: float, kind: str) -> float:
    """The challenger's reward for a proposal its solver solves at rate ``p``."""
    if kind == "azr":
        return 1.0 - p if 0.0 < p < 1.0 else 0.0
    return min(p, 1.0 - p)


class Challenger:
    def __init__(self, settings, task: Task, policies: list, draws, supervised: SFTSettings, seed: int,
                 frontier: int):
        self.s, self.task, self.policies, self.draws, self.seed = settings, task, policies, draws, seed
        self.frontier = frontier  # the held-out difficulties the monitor measures
        self.training = SFTSettings(lr=settings.lr, batch_size=settings.batch_size,
                                    weight_decay=supervised.weight_decay, warmup_steps=supervised.warmup_steps,
                                    decay_fraction=supervised.decay_fraction)
        # the challenger's own model, made from the starting weights (None: it is the policy itself)
        self.own: Policy | None = {"policy": lambda: None, "separate": lambda: trainable_copy(policies[0]),
                                   "frozen": lambda: policies[0].frozen_copy()}[settings.model]()
        self.buffer: list[str] = []  # earlier valid proposals' prompts, the oldest first
        self.round: list[Proposal] = []

    @classmethod
    def from_settings(cls, settings, context) -> Challenger:
        return cls(settings, context.task, context.policies, context.generator, context.supervised,
                   context.recipe.run.seed, context.recipe.task.seed_max_difficulty)

    @property
    def challenger(self) -> Policy:
        return self.own if self.own is not None else self.policies[0]

    def propose(self, task: Task, rng: random.Random) -> list[Problem]:
        s = self.s
        prompts = [task.challenge(rng.sample(self.buffer, min(s.references, len(self.buffer))))
                   for _ in range(s.problems_per_round // s.group)]
        flat = [p for p in prompts for _ in range(s.group)]
        generator = self.draws if self.own is None else torch.Generator().manual_seed(
            self.draws.next_call().shard_seed(0))
        done = self.challenger.generate(flat, [s.max_tokens] * len(flat), temperature=s.temperature,
                                        generator=generator)
        problems: list[Problem] = []
        ids: dict[str, int] = {}
        self.round = []
        for k, (prompt, reply) in enumerate(zip(flat, done)):
            try:
                problem = task.proposal(reply.text)
            except ProposalError as e:
                self.round.append(Proposal(k // s.group, prompt, reply.text, None, str(e)))
                continue
            if problem.prompt not in ids:
                ids[problem.prompt] = len(problems)
                problems.append(problem)
            self.round.append(Proposal(k // s.group, prompt, reply.text, problem, problem_id=ids[problem.prompt]))
        return problems

    def solve_rates(self, outcome: Outcome) -> tuple[dict[int, float], dict[int, str | None]]:
        """Per problem, the solver's solve rate and its majority answer. With the executor the rate
        is the share of attempts every judge passed; without, the majority answer's share (R-Zero)."""
        answers: dict[int, Counter] = {}
        read = getattr(self.task, "answer", lambda text: text)
        for a in outcome.batch.attempts:
            answers.setdefault(a.problem_id, Counter())[read(a.text)] += 1
        labels = {i: c.most_common(1)[0][0] for i, c in answers.items()}
        if self.s.executor:
            return outcome.solve_rates(), labels
        return {i: (c[labels[i]] / c.total() if labels[i] is not None else 0.0) for i, c in answers.items()}, labels

    def admit(self, outcome: Outcome, selection: Selection) -> Selection:
        low, high = self.s.band
        rates, _ = self.solve_rates(outcome)
        return keep_problems(selection, outcome.batch.attempts, lambda a: low <= rates[a.problem_id] <= high,
                             f"solve rate outside the band [{low:g}, {high:g}]: not trained on")

    def update(self, outcome: Outcome) -> dict[str, float]:
        s = self.s
        rates, labels = self.solve_rates(outcome)
        valid = [p for p in self.round if p.problem is not None]
        # R-Zero's share is of the whole batch (its refused proposals, empty questions, cluster with none)
        scale = len(valid) / max(1, len(self.round))
        shares = [c * scale for c in cluster_shares([p.problem.prompt for p in valid])] if s.repetition \
            else [0.0] * len(valid)
        for p in self.round:
            p.reward = s.invalid_reward
        for p, share in zip(valid, shares):
            p.solve_rate, p.label = rates.get(p.problem_id, 0.0), labels.get(p.problem_id)
            p.reward = learnability(p.solve_rate, s.reward) - s.repetition * share
        losses = self._train(outcome)
        fresh = [p.problem.prompt for p in valid if 0.0 < p.solve_rate < 1.0]
        self.buffer = [b for b in self.buffer if b not in fresh] + list(dict.fromkeys(fresh))
        self.buffer = self.buffer[-s.buffer_size:]
        return self._figures(valid, shares, losses)

    def _train(self, outcome: Outcome) -> list[float]:
        """Group-relative policy-gradient steps on the round's proposals (groups whose rewards are all
        alike teach nothing and are left out)."""
        s = self.s
        if not s.steps or s.model == "frozen":
            return []
        groups = []
        for g in range(s.problems_per_round // s.group):
            mine = [p for p in self.round if p.group == g]
            if mine and len({p.reward for p in mine}) > 1:
                groups.append(Group(mine[0].prompt, [p.text for p in mine], [p.reward for p in mine]))
        if not groups:
            return []
        rng = random.Random(f"{self.seed}-challenger-{outcome.tools.round}")
        with outcome.tools.phase("challenger", s.steps) as bar:
            return grpo_steps(self.challenger, groups, s.steps, self.training, s.temperature, s.clip, 0.0, rng,
                              on_step=lambda step, loss: bar.advance())

    def _figures(self, valid: list[Proposal], shares: list[float], losses: list[float]) -> dict[str, float]:
        n, low, high = max(1, len(self.round)), *self.s.band
        rates = [p.solve_rate for p in valid]
        figures = {"proposal_valid": len(valid) / n,
                   "proposal_distinct": len({p.problem.prompt for p in valid}) / max(1, len(valid)),
                   "proposal_repetition": _mean(shares), "proposal_ngram_repetition": ngram_repetition(
                       [p.problem.data[1] if len(p.problem.data) > 1 else p.problem.prompt for p in valid]),
                   "proposal_reward": _mean([p.reward for p in self.round]), "proposal_solve_rate": _mean(rates),
                   "proposal_difficulty": _mean([p.problem.difficulty for p in valid]),
                   "proposal_in_band": sum(low <= r <= high for r in rates) / max(1, len(valid)),
                   "challenger_buffer": len(self.buffer)}
        for b in range(HISTOGRAM):
            figures[f"proposal_solve_{b}"] = sum(min(HISTOGRAM - 1, int(r * HISTOGRAM)) == b for r in rates) / max(
                1, len(valid))
        if losses:
            figures["challenger_loss"] = _mean(losses)
        if not self.s.executor:  # how often the vote's label is the executor's answer (R-Zero's weak point)
            right = [self.task.check(p.problem, p.label) for p in valid if p.label is not None]
            figures["pseudo_label_precision"] = _mean([float(r) for r in right])
        return figures

    def proposals(self) -> list[Proposal]:
        """The round's proposals with their fate, for the store."""
        return self.round

    def state_dict(self) -> dict:
        return {"buffer": list(self.buffer)}

    def load_state_dict(self, state: dict) -> None:
        self.buffer = list(state["buffer"])

    def save(self, directory: Path) -> None:
        if self.s.model == "separate":
            self.own.save(directory)

    def load(self, directory: Path) -> None:
        if self.s.model == "separate":
            self.own.load(directory)


def ngram_repetition(texts: list[str], n: int = 2) -> float:
    """The share of the batch's word n-grams that repeat one seen before (0: all distinct)."""
    grams = [tuple(words[i:i + n]) for t in texts for words in [t.split()] for i in range(len(words) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan
