"""Selectors decide what the learner sees. ``Selection`` is what every selector returns: examples
for SFT, pairs for DPO or groups for GRPO, and per attempt whether it was used and why."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from selftaught.judge.filters import Score
from selftaught.learn.sft import Example
from selftaught.sample.attempts import Attempt


@dataclass
class Pair:
    prompt: str
    chosen: str
    rejected: str
    member: int = 0  # the member whose samples these are, and who learns from them


@dataclass
class Group:
    """The samples of one prompt with their rewards (a GRPO group). A group may also compare
    completions of different prompts drawn for one query (a revision of each first attempt):
    ``prompts`` then gives each completion's own."""

    prompt: str
    completions: list[str]
    rewards: list[float]
    member: int = 0
    prompts: list[str] | None = None

    def each_prompt(self) -> list[str]:
        return self.prompts if self.prompts is not None else [self.prompt] * len(self.completions)


@dataclass
class Selection:
    examples: list[Example]  # SFT data (shared by every member unless member_examples is set)
    kept_problems: list[int]  # problem ids, parallel to examples
    kept_attempts: list[bool]  # per attempt: used for training
    reasons: list[str]  # per attempt: why it was kept or not
    rejected_by: dict[str, int] = field(default_factory=dict)  # attempts each judge rejected
    pairs: list[Pair] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    member_examples: list[list[Example]] | None = None  # each member's own data (multiagent)


def rejected_counts(scores: dict[str, list[Score]]) -> dict[str, int]:
    return {name: sum(not s.passed for s in ss) for name, ss in scores.items()}


def keep_if_all_judges_pass(attempts: Sequence[Attempt], scores: dict[str, list[Score]], labels: int = 1
                            ) -> Selection:
    """An attempt is kept when every judge passes it; a problem's labels are the ``labels`` distinct
    answers most of its kept attempts give (ties: the first drawn). Rejections are counted per judge
    (an attempt may be rejected by several)."""
    kept = [all(ss[i].passed for ss in scores.values()) for i in range(len(attempts))]
    answers: dict[int, Counter] = defaultdict(Counter)
    first: dict[int, Attempt] = {}
    for a, k in zip(attempts, kept):
        if k:
            answers[a.problem_id][a.text] += 1
            first.setdefault(a.problem_id, a)
    ids = sorted(answers)
    chosen = {i: [text for text, _ in answers[i].most_common(labels)] for i in ids}
    examples = [Example(first[i].problem.prompt, text) for i in ids for text in chosen[i]]
    reasons = []
    for i, a in enumerate(attempts):
        failed = [name for name, ss in scores.items() if not ss[i].passed]
        if failed:
            reasons.append("rejected by " + ", ".join(failed))
        elif a.text in chosen[a.problem_id]:
            reasons.append(f"passed every judge; a label of the problem ({answers[a.problem_id][a.text]} of its "
                           f"{sum(answers[a.problem_id].values())} kept attempts give it)")
        else:
            reasons.append(f"passed every judge, but the problem's {labels} label(s) are other kept answers")
    return Selection(examples, [i for i in ids for _ in chosen[i]], kept, reasons, rejected_counts(scores))


def keep_own_agreeing(attempts: Sequence[Attempt], scores: dict[str, list[Score]], members: int) -> Selection:
    """Multiagent fine-tuning: every member trains on its *own* attempts that pass every judge
    (e.g. agree with the vote across members), so the members stay specialised and diverse."""
    kept = [all(ss[i].passed for ss in scores.values()) for i in range(len(attempts))]
    own: list[list[Example]] = [[] for _ in range(members)]
    own_ids: list[list[int]] = [[] for _ in range(members)]
    seen: set[tuple[int, int, str]] = set()
    for a, k in zip(attempts, kept):
        if k and (a.member, a.problem_id, a.text) not in seen:
            seen.add((a.member, a.problem_id, a.text))
            own[a.member].append(Example(a.problem.prompt, a.text))
            own_ids[a.member].append(a.problem_id)
    reasons = ["passed every judge; kept for its own member" if k else
               "rejected by " + ", ".join(n for n, ss in scores.items() if not ss[i].passed)
               for i, k in enumerate(kept)]
    ids = [i for mine in own_ids for i in mine]  # parallel to examples, as in every selection
    examples = [e for mine in own for e in mine]
    return Selection(examples, ids, kept, reasons, rejected_counts(scores), member_examples=own)


def drop_harder_than(selection: Selection, attempts: Sequence[Attempt], top: int) -> Selection:
    """The selection without its examples of problems harder than ``top`` (an easy-to-hard
    curriculum's gate); their attempts are marked as not used, with the reason."""
    return keep_problems(selection, attempts, lambda a: a.problem.difficulty <= top,
                         f"difficulty above {top}, where the gate stopped: not trained on")


def keep_problems(selection: Selection, attempts: Sequence[Attempt], keep: Callable[[Attempt], bool], why: str
                  ) -> Selection:
    """The selection without the examples of problems ``keep`` refuses (judged on any of their
    attempts); their attempts are marked as not used, with ``why``. Pairs and groups are left whole."""
    ok = [keep(a) for a in attempts]
    if all(ok) or not selection.examples:
        return selection
    by_prompt = {a.problem.prompt: k for a, k in zip(attempts, ok)}
    by_id = {a.problem_id: k for a, k in zip(attempts, ok)}
    own = selection.member_examples
    return replace(
        selection,
        examples=[e for e in selection.examples if by_prompt[e.prompt]],
        kept_problems=[i for i in selection.kept_problems if by_id[i]],
        kept_attempts=[k and good for k, good in zip(selection.kept_attempts, ok)],
        reasons=[f"{r}; {why}" if k and not good else r
                 for r, k, good in zip(selection.reasons, selection.kept_attempts, ok)],
        member_examples=None if own is None else [[e for e in mine if by_prompt[e.prompt]] for mine in own])
