"""Selection for two-turn self-correction (S²R, Self-rewarding correction: rejection-sampled
correction traces, then SFT). Each attempt's first turn becomes a revision example whose target is
a good answer: its own first turn when that was good (a right answer must survive revision), its
revision when that fixed it (repeated ``fix_boost`` times: the wrong→right transitions are what
the method is for), else another good answer to the same query. Good answers are also first-turn
examples, so the first attempt improves as in STaR.

In GRPO's rounds (SCoRe's two-turn RL) the attempts make groups instead (``revision_groups``):
each query's first attempts, rewarded by the first turn's reward r1, and the revisions of all of
them, rewarded by SCoRe's shaped r2 + shaping * (r2 - r1). The revisions of one query share a
group although each revises its own first attempt: between two revisions of the same attempt the
shaping only scales their difference, while across attempts it sets a fix above a right answer
kept and a break below a wrong answer kept.
"""

from __future__ import annotations

from collections.abc import Sequence

from selftaught.judge.filters import Score
from selftaught.learn.sft import Example
from selftaught.sample.attempts import Attempt, revision_prompt
from selftaught.select.consensus import Group, Selection, rejected_counts
from selftaught.select.reward import by_query


def select_revisions(attempts: Sequence[Attempt], scores: dict[str, list[Score]], reward: Sequence[float],
                     first_reward: Sequence[float], threshold: float, fix_boost: int) -> Selection:
    examples, ids = [], []
    kept = [False] * len(attempts)
    reasons = [""] * len(attempts)
    for (pid, _), idx in sorted(by_query(attempts).items()):
        good: list[str] = []
        for i in idx:
            for text, r in ((attempts[i].first, first_reward[i]), (attempts[i].text, reward[i])):
                if r >= threshold and text not in good:
                    good.append(text)
        examples += [Example(attempts[idx[0]].problem.prompt, g) for g in good]
        ids += [pid] * len(good)
        for i in idx:
            a = attempts[i]
            first_ok, second_ok = first_reward[i] >= threshold, reward[i] >= threshold
            if first_ok:
                target, copies, why = a.first, 1, "first turn good: the revision keeps it"
            elif second_ok:
                target, copies, why = a.text, fix_boost, f"wrong→right: revision kept, repeated {fix_boost}x"
            elif good:
                target, copies, why = good[0], 1, "both turns wrong: revise towards another good answer"
            else:
                reasons[i] = "no good answer to this query: nothing to revise towards"
                continue
            examples += [Example(revision_prompt(a.problem, a.first), target)] * copies
            ids += [pid] * copies
            kept[i], reasons[i] = True, why
    return Selection(examples, ids, kept, reasons, rejected_counts(scores))


def revision_groups(attempts: Sequence[Attempt], scores: dict[str, list[Score]], reward: Sequence[float],
                    first_reward: Sequence[float], shaping: float) -> Selection:
    """Per query, its first attempts (each once, however many revisions it has) and its revisions.
    Groups whose rewards are all equal carry no advantage and are left out."""
    groups, ids = [], []
    kept = [False] * len(attempts)
    reasons = ["its query's turns all scored alike: no advantage"] * len(attempts)
    for (pid, member), idx in sorted(by_query(attempts).items()):
        firsts = list({attempts[i].sample: i for i in idx}.values())
        problem = attempts[idx[0]].problem
        shaped = [reward[i] + shaping * (reward[i] - first_reward[i]) for i in idx]
        first = Group(problem.prompt, [attempts[i].first for i in firsts], [first_reward[i] for i in firsts], member)
        second = Group(problem.prompt, [attempts[i].text for i in idx], shaped, member,
                       [revision_prompt(problem, attempts[i].first) for i in idx])
        if max(first.rewards) > min(first.rewards):
            groups.append(first)
            ids.append(pid)
        if max(shaped) == min(shaped):
            continue
        groups.append(second)
        ids.append(pid)
        mean = sum(shaped) / len(shaped)
        for i, r in zip(idx, shaped):
            kept[i] = True
            reasons[i] = f"revision in a group with shaped reward {r:.3f} (group mean {mean:.3f})"
    return Selection([], ids, kept, reasons, rejected_counts(scores), groups=groups)
