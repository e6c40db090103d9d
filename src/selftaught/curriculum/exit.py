"""ExIt: the model's own partial solutions become new problems (*Bootstrapping Task Spaces for
Self-Improvement*, Jiang et al. 2025).

Each round ``buffer_share`` of the problems come from a bounded buffer, drawn without replacement
with probability proportional to their priority; the rest are fresh, drawn as ``Uniform`` draws
them (an empty buffer proposes exactly what ``Uniform`` would). After the round, every problem whose
group of attempts has rewards of variance > 0 (some attempts better than others: something to learn)
gives one of its attempts, cut after a random number of its steps (the task's ``step_separator``),
as a new problem: the same prompt, with the reply begun by that partial solution
(``Problem.prefix``), at priority = the group's reward variance. A buffer problem attempted again
takes its own group's variance as its priority (0: it leaves). Only the ``buffer_size`` problems of
highest priority stay.

Which attempt and where it is cut are drawn from a generator seeded by the run's seed and the round,
not the loop's: ``update`` then changes no state but the buffer, which the checkpoint holds.
"""

from __future__ import annotations

import ast
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field, replace

from selftaught.curriculum.outcome import Outcome
from selftaught.curriculum.uniform import Uniform
from selftaught.sample.attempts import Attempt
from selftaught.select.consensus import Selection
from selftaught.tasks.base import Problem, Task


def variance(values: list[float]) -> float:
    """Population variance (a group's spread of rewards)."""
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / len(values)


def step_cuts(text: str, start: int, separator: str) -> list[int]:
    """Lengths at which ``text`` can be cut just after a separator, beyond ``start`` and short of
    its end (a cut leaves something to write, and goes past the prefix the text began with).

    >>> step_cuts("3*5=15;15+7=22;22-1=21", 0, ";")
    [7, 15]
    """
    cuts, i = [], text.find(separator, start)
    while i != -1:
        end = i + len(separator)
        if start < end < len(text):
            cuts.append(end)
        i = text.find(separator, end)
    return cuts


def draw_by_priority(entries: list[tuple[Problem, float]], k: int, rng: random.Random) -> list[Problem]:
    """``k`` distinct entries, each draw proportional to priority among those left (Efraimidis and
    Spirakis: the ``k`` largest log(u) / priority)."""
    keys = [(math.log(1.0 - rng.random()) / w, i) for i, (_, w) in enumerate(entries)]
    return [entries[i][0] for _, i in sorted(keys, reverse=True)[:k]]


@dataclass
class Exit:
    fresh: Uniform  # where fresh problems come from, and how many problems a round has
    separator: str  # the task's step separator
    buffer_size: int = 256
    buffer_share: float = 0.5
    buffer: dict[Problem, float] = field(default_factory=dict)  # problem -> priority, in the order pushed

    @classmethod
    def from_settings(cls, settings, context) -> Exit:
        return cls(Uniform.from_settings(settings, context), context.task.step_separator, settings.buffer_size,
                   settings.buffer_share)

    @property
    def frontier(self) -> int:
        return self.fresh.high

    def propose(self, task: Task, rng: random.Random) -> list[Problem]:
        n = self.fresh.problems_per_round
        k = min(len(self.buffer), round(self.buffer_share * n))
        again = draw_by_priority(list(self.buffer.items()), k, rng) if k else []
        return replace(self.fresh, problems_per_round=n - k).propose(task, rng) + again

    def admit(self, outcome: Outcome, selection: Selection) -> Selection:
        return selection

    def update(self, outcome: Outcome) -> dict[str, float]:
        groups: dict[int, list[tuple[Attempt, float]]] = defaultdict(list)
        for a, r in zip(outcome.batch.attempts, outcome.batch.reward):
            groups[a.problem_id].append((a, r))
        rng = random.Random(f"{outcome.tools.seed}-exit-{outcome.tools.round}")
        again: dict[Problem, list[float]] = defaultdict(list)  # buffer problems attempted: their groups' variances
        pushed: list[tuple[Problem, float]] = []
        for _, group in sorted(groups.items()):
            problem, v = group[0][0].problem, variance([r for _, r in group])
            if problem in self.buffer:
                again[problem].append(v)
            if v <= 0:
                continue
            # cut past the prefix a reply began with (a revision is a whole reply of its own)
            starts = [len(problem.prefix) if a.text.startswith(problem.prefix) else 0 for a, _ in group]
            cuttable = [(a, cuts) for (a, _), s in zip(group, starts) if (cuts := step_cuts(a.text, s, self.separator))]
            if cuttable:
                a, cuts = rng.choice(cuttable)
                pushed.append((replace(problem, prefix=a.text[:rng.choice(cuts)]), v))
        for problem, vs in again.items():  # attempted again (by several groups, on-policy): their mean
            self.buffer[problem] = sum(vs) / len(vs)
        for problem, v in pushed:
            self.buffer[problem] = max(v, self.buffer.get(problem, 0.0))
        # the highest priorities stay; among equals, the earlier pushed (a stable sort keeps dict order)
        kept = sorted(((p, w) for p, w in self.buffer.items() if w > 0), key=lambda pw: -pw[1])[: self.buffer_size]
        self.buffer = dict(kept)
        ids = {a.problem_id: a.problem for a in outcome.batch.attempts}
        from_buffer = sum(bool(p.prefix) for p in ids.values())
        priorities = list(self.buffer.values())
        return {"exit_buffer": float(len(self.buffer)), "exit_share": from_buffer / max(1, len(ids)),
                "exit_added": float(len(pushed)),
                "exit_priority_mean": sum(priorities) / len(priorities) if priorities else math.nan}

    def state_dict(self) -> dict:
        # a task's data is a literal (tuples of ints and strings for the built-in tasks): stored as its
        # repr, so that torch.load(weights_only=True) reads the checkpoint whatever the task keeps there
        rows = []
        for p, w in self.buffer.items():
            data = repr(p.data)
            if ast.literal_eval(data) != p.data:
                raise ValueError(f"curriculum exit: a problem's data ({data[:80]}) is not a Python literal, so the "
                                 "buffer cannot be checkpointed; keep Problem.data to tuples of numbers and strings")
            rows.append((p.prompt, p.difficulty, data, p.prefix, w))
        return {"buffer": rows}

    def load_state_dict(self, state: dict) -> None:
        self.buffer = {Problem(prompt, int(d), ast.literal_eval(data), prefix): float(w)
                       for prompt, d, data, prefix, w in state["buffer"]}
