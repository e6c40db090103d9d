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
    reasons: list[str]  # per attempt: why it was kept or not
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
    labels = {i: answers[i].most_common(1)[0][0] for i in ids}
    examples = [Example(first[i].problem.prompt, labels[i]) for i in ids]
    reasons = []
    for i, a in enumerate(attempts):
        failed = [name for name, ss in scores.items() if not ss[i].passed]
        if failed:
            reasons.append("rejected by " + ", ".join(failed))
        elif labels[a.problem_id] == a.text:
            reasons.append(f"passed every judge; the problem's label ({answers[a.problem_id][a.text]} of its "
                           f"{sum(answers[a.problem_id].values())} kept attempts agree)")
        else:
            reasons.append("passed every judge, but another kept answer became the problem's label")
    return Selection(examples, ids, kept, reasons, rejected_by)
