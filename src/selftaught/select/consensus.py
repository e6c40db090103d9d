"""Selectors decide what the learner sees."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from selftaught.judge.filters import Score
from selftaught.learn.sft import Example
from selftaught.sample.attempts import Attempt


@dataclass
class Selection:
    examples: list[Example]  # one self-label per kept problem
    kept_problems: list[int]  # problem ids, parallel to examples
    kept_attempts: list[bool]  # per attempt: passed every judge
    rejected_by: dict[str, int] = field(default_factory=dict)  # attempts each judge rejected


def keep_if_all_judges_pass(attempts: Sequence[Attempt], scores: dict[str, list[Score]]) -> Selection:
    """An attempt is kept when every judge passes it; a problem gets the answer most of its kept
    attempts give. Rejections are counted per judge (an attempt may be rejected by several)."""
    rejected_by = {name: sum(not s.passed for s in ss) for name, ss in scores.items()}
    kept = [all(ss[i].passed for ss in scores.values()) for i in range(len(attempts))]
    answers: dict[int, Counter] = defaultdict(Counter)
    first: dict[int, Attempt] = {}
    for a, k in zip(attempts, kept):
        if k:
            answers[a.problem_id][a.text] += 1
            first.setdefault(a.problem_id, a)
    ids = sorted(answers)
    examples = [Example(first[i].problem.prompt, answers[i].most_common(1)[0][0]) for i in ids]
    return Selection(examples, ids, kept, rejected_by)
