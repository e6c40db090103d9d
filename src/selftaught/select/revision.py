"""Selection for two-turn self-correction (S²R, Self-rewarding correction: rejection-sampled
correction traces, then SFT). Each attempt's first turn becomes a revision example whose target is
a good answer: its own first turn when that was good (a right answer must survive revision), its
revision when that fixed it (repeated ``fix_boost`` times: the wrong→right transitions are what
the method is for), else another good answer to the same query. Good answers are also first-turn
examples, so the first attempt improves as in STaR.
"""

from __future__ import annotations

from collections.abc import Sequence

from selftaught.judge.filters import Score
from selftaught.learn.sft import Example
from selftaught.sample.attempts import Attempt, revision_prompt
from selftaught.select.consensus import Selection, rejected_counts
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
