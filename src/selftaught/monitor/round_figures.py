"""Every round's figures over the round's own samples: sampling power, diversity, judge quality,
selection balance and the collapse alarm. Ground truth (``task.check``) is used here for
measurement only, after selection has been made."""

from __future__ import annotations

import math
from collections.abc import Sequence

from selftaught.judge.filters import Score
from selftaught.monitor import measures as m
from selftaught.sample.attempts import Attempt
from selftaught.select.consensus import Selection
from selftaught.select.reward import by_query
from selftaught.tasks.base import Task

Figure = tuple[str, float]


def sample_figures(task: Task, attempts: Sequence[Attempt], scores: dict[str, list[Score]], reward: Sequence[float],
                   selection: Selection, *, pass_k: int, pass_s: int, balance_target: int) -> dict[str, float]:
    if not attempts:
        return {}
    correct = [task.check(a.problem, a.text) for a in attempts]
    queries = list(by_query(attempts).values())
    k = max(len(q) for q in queries)  # a search may return fewer answers for some queries
    out: dict[str, float] = {"sample_accuracy": sum(correct) / len(correct)}

    def mean(xs: Sequence[float]) -> float:
        xs = [x for x in xs if x == x]
        return sum(xs) / len(xs) if xs else float("nan")

    distinct_correct = [len({attempts[i].text for i in q if correct[i]}) for q in queries]
    if k > 1:
        for kk in sorted({1, min(pass_k, k)}):
            # (a search returns up to k answers a query: a query with fewer has no pass@k)
            out[f"pass@{kk}_samples"] = mean([m.pass_at_k(len(q), sum(correct[i] for i in q), kk) for q in queries
                                              if len(q) >= kk])
        out["distinct_answers"] = mean([m.distinct_share([attempts[i].text for i in q]) for q in queries])
        out["answer_entropy"] = mean([m.answer_entropy([attempts[i].text for i in q]) for q in queries])
        out["distinct_correct"] = mean(distinct_correct)
        out[f"exploration_pass@{k}-{pass_s}"] = m.pass_at_k_s(distinct_correct, pass_s)
        out[f"exploitation_reward@{k}-{pass_s}"] = m.reward_at_k_s(
            [[(reward[i], correct[i]) for i in q] for q in queries], pass_s)
        out["best_of_k"] = m.reward_at_k_s([[(reward[i], correct[i]) for i in q] for q in queries], 1)
    members = {a.member for a in attempts}
    if len(members) > 1:  # multiagent: do the models still answer differently?
        per_problem: dict[int, list[str]] = {}
        for a in attempts:
            per_problem.setdefault(a.problem_id, []).append(a.text)
        out["cross_member_distinct"] = mean([m.distinct_share(t) for t in per_problem.values()])
    out["unsolved_fraction"] = sum(d == 0 for d in distinct_correct) / len(queries)
    # the round's sampling cost: a search's trees' tokens, each attempt's own otherwise
    trees = {id(a.tree): a.tree for a in attempts if a.tree is not None}
    out["sampled_tokens"] = float(sum(t.tokens for t in trees.values()) + sum(a.tokens for a in attempts))
    if trees:
        out["search_nodes"] = mean([len(t.nodes) - 1 for t in trees.values()])

    kept_correct = [c for c, kept in zip(correct, selection.kept_attempts) if kept]
    if selection.pairs:  # a pair is right when its chosen answer is right and its rejected one wrong
        right = {(a.problem_id, a.text): c for a, c in zip(attempts, correct)}
        sides = [(right[pid, p.chosen], right[pid, p.rejected])
                 for pid, p in zip(selection.kept_problems, selection.pairs)]
        out["pair_accuracy"] = mean([float(c and not r) for c, r in sides])
        out["chosen_precision"] = mean([float(c) for c, _ in sides])
    elif selection.groups:
        pass  # groups use every sample, right or wrong: precision says nothing
    elif kept_correct:
        out["kept_precision"] = sum(kept_correct) / len(kept_correct)
    out["balance"] = m.balance_score(
        [[(attempts[i].text, correct[i]) for i in q if selection.kept_attempts[i]] for q in queries], balance_target)
    out["kept_gini"] = m.gini([sum(selection.kept_attempts[i] for i in q) for q in queries])

    for name, ss in scores.items():
        passed = [s.passed for s in ss]
        out[f"judge_accuracy/{name}"] = sum(p == c for p, c in zip(passed, correct)) / len(correct)
        # a judge that could not read a judgment gives no value (NaN): ranked over the values it gave
        valued = [(s.value, c) for s, c in zip(ss, correct) if not math.isnan(s.value)]
        out[f"judge_auroc/{name}"] = m.auroc([v for v, _ in valued], [c for _, c in valued])
        if len(valued) < len(ss):
            out[f"judge_readable/{name}"] = len(valued) / len(ss)
        gap, relative = m.verification_gap(correct, passed)
        out[f"gv_gap/{name}"], out[f"gv_gap_relative/{name}"] = gap, relative
        if name == "self-verdict":
            out["verdict_ece"] = m.expected_calibration_error([s.value for s in ss], correct)

    if attempts[0].first is not None:
        first = [task.check(a.problem, a.first) for a in attempts]
        out["sample_accuracy_turn1"] = sum(first) / len(first)
        out["sample_delta_wrong_to_right"], out["sample_delta_right_to_wrong"] = m.correction_transitions(first,
                                                                                                          correct)
    return {name: v for name, v in out.items()}


def collapse_alarm(figures: dict[str, float], min_diversity: float, min_entropy: float,
                   min_proposals: float = 0.0) -> list[str]:
    """What fell past its bound this round (empty when nothing did, or the bounds are off)."""
    fired = []
    distinct = figures.get("proposal_distinct")
    if min_proposals and distinct is not None and distinct < min_proposals:
        fired.append(f"distinct proposals {distinct:.3f} < {min_proposals:g}: the challenger repeats itself")
    div, ent = figures.get("distinct_answers"), figures.get("answer_entropy")
    if min_diversity and div is not None and div < min_diversity:
        fired.append(f"distinct answers per query {div:.3f} < {min_diversity:g}")
    if min_entropy and ent is not None and ent < min_entropy:
        fired.append(f"answer entropy {ent:.3f} nats < {min_entropy:g}")
    return fired
