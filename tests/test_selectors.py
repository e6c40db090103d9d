"""Judges and selectors on small hand-made cases with known answers."""

import math
import random
from types import SimpleNamespace

import pytest
import torch

from selftaught.curriculum import EasyToHard
from selftaught.curriculum.uniform import Uniform
from selftaught.judge import Score, VerifierJudge
from selftaught.judge.process_reward import ProcessRewardJudge, step_prefixes
from selftaught.judge.self_certainty import SelfCertaintyJudge
from selftaught.judge.self_verdict import SelfVerdictJudge, verdict_examples, verdict_probability
from selftaught.learn.grpo import flatten
from selftaught.models import Transformer, TransformerConfig
from selftaught.models.char_policy import CharPolicy
from selftaught.models.generate import score as sequence_logp
from selftaught.monitor import label_precision
from selftaught.policy import Completion
from selftaught.sample.attempts import Attempt
from selftaught.select import (
    build_groups,
    build_pairs,
    drop_harder_than,
    keep_if_all_judges_pass,
    keep_own_agreeing,
    rewards,
    select_rebalanced,
    select_threshold,
    select_top_k,
)
from selftaught.select.balance import balance_at, choose
from selftaught.select.revision import revision_groups, select_revisions
from selftaught.tasks import Countdown, ModularChain, Problem
from selftaught.tasks.tokenizer import EOS, tokenizer_for

TASK = ModularChain()
P0 = Problem("3+4*2=", 2, (3, (("+", 4), ("*", 2))))  # 7;4
P1 = Problem("5-7=", 1, (5, (("-", 7),)))  # 8


def attempts(texts_by_problem: dict, member: int = 0) -> list[Attempt]:
    out = []
    for pid, (problem, texts) in enumerate(texts_by_problem):
        out += [Attempt(pid, problem, member, t, sample=s) for s, t in enumerate(texts)]
    return out


def verify(atts):
    return {"verifier": VerifierJudge().score(TASK, atts)}


def test_tasks_write_checkable_steps():
    assert TASK.target(P0) == "7;4" and TASK.check(P0, "7;4") and not TASK.check(P0, "7;5")
    cd = Countdown()
    p = Problem("3,5,7:22=", 3, ((3, 5, 7), 22, "3*5=15;15+7=22"))
    assert cd.check(p, "3*5=15;15+7=22") and cd.check(p, "5*3=15;7+15=22")
    assert not cd.check(p, "3*5=15;15+7=23")  # wrong arithmetic
    assert not cd.check(p, "3*3=9;9+13=22")  # uses a 3 twice and a 13 it does not have
    assert not cd.check(p, "")
    rng = random.Random(0)
    for d in (2, 3, 4):
        for _ in range(50):
            q = cd.sample(rng, d)
            assert cd.check(q, cd.target(q)) and len(q.data[0]) == d
    assert step_prefixes("7;4;1", ";") == ["7;", "7;4;"]


def test_verifier_and_threshold_selection():
    atts = attempts([(P0, ["7;4", "7;4", "7;5", "1;2"]), (P1, ["3", "8"])])
    scores = verify(atts)
    assert [s.value for s in scores["verifier"]] == [1, 1, 0, 0, 0, 1]
    sel = select_threshold(atts, scores, rewards(scores, {"verifier": 1.0}), 1.0)
    assert sel.kept_attempts == [True, False, False, False, False, True]  # the duplicate "7;4" is dropped
    assert [(e.prompt, e.answer) for e in sel.examples] == [(P0.prompt, "7;4"), (P1.prompt, "8")]
    assert "already kept" in sel.reasons[1] and "< threshold" in sel.reasons[2]


def test_top_k_and_rebalance():
    texts = ["a", "b", "c", "d"]
    atts = attempts([(P0, texts), (P1, texts)])
    value = {"judge": [Score("judge", v, True, "") for v in (0.9, 0.8, 0.7, 0.1, 0.2, 0.1, 0.6, 0.3)]}
    reward = rewards(value, {"judge": 2.0})
    assert reward == pytest.approx([1.8, 1.6, 1.4, 0.2, 0.4, 0.2, 1.2, 0.6])
    top = select_top_k(atts, value, reward, 2, 0.5)
    assert top.kept_attempts == [True, True, False, False, False, False, True, True]
    # P0 passes 3/4 (head: capped at 1); P1 passes 1/4 (tail: its one answer repeated 3 times)
    reb = select_rebalanced(atts, value, reward, 1.0, head_cap=1, tail_rate=0.25, tail_boost=3)
    assert [e.answer for e in reb.examples] == ["a", "c", "c", "c"]
    assert "tail query" in reb.reasons[6]


def test_pairs_and_groups():
    atts = attempts([(P0, ["7;4", "7;5", "7;4"]), (P1, ["8", "8"])])
    scores = verify(atts)
    reward = rewards(scores, {"verifier": 1.0})
    sel = build_pairs(atts, scores, reward, margin=0.5)
    assert [(p.prompt, p.chosen, p.rejected) for p in sel.pairs] == [(P0.prompt, "7;4", "7;5")]
    assert "no pair" in sel.reasons[3]  # P1: both right, no gap
    groups = build_groups(atts, scores, reward)
    assert len(groups.groups) == 1 and groups.groups[0].rewards == [1.0, 0.0, 1.0]


def test_a_pair_chooses_only_an_answer_every_judge_passes():
    atts = attempts([(P0, ["7;4", "7;5", "1;4"]), (P1, ["8", "3"])])
    # a gate judge (passes 7;5, 1;4 and 8) beside a ranking judge (prefers 7;4, then 1;4, and 3)
    gate = [Score("gate", 0.0, ok, "") for ok in (False, True, True, True, False)]
    rank = [Score("rank", v, True, "") for v in (0.9, 0.1, 0.6, 0.2, 0.8)]
    scores = {"gate": gate, "rank": rank}
    reward = rewards(scores, {"gate": 0.0, "rank": 1.0})
    sel = build_pairs(atts, scores, reward, margin=0.3)
    # P0: 7;4 ranks best but fails the gate, so 1;4 (the best that passes) is chosen against 7;5.
    # P1: 8 passes but ranks below 3: no pair (chosen must outrank rejected by the margin).
    assert [(p.chosen, p.rejected) for p in sel.pairs] == [("1;4", "7;5")]
    assert sel.kept_attempts == [False, True, True, False, False]
    nobody = build_pairs(atts, {"gate": [Score("gate", 0.0, False, "")] * 5, "rank": rank}, reward, margin=0.3)
    assert nobody.pairs == [] and "passes every judge" in nobody.reasons[0]


def test_own_agreeing_keeps_each_members_data_apart():
    a0 = attempts([(P0, ["7;4"]), (P1, ["8"])], member=0)
    a1 = attempts([(P0, ["7;4"]), (P1, ["3"])], member=1)
    atts = a0 + a1
    scores = {"vote": [Score("vote", 1, ok, "") for ok in (True, True, True, False)]}
    sel = keep_own_agreeing(atts, scores, 2)
    assert [[e.answer for e in mine] for mine in sel.member_examples] == [["7;4", "8"], ["7;4"]]
    assert [(i, e.answer) for i, e in zip(sel.kept_problems, sel.examples)] == [(0, "7;4"), (1, "8"), (0, "7;4")]


def test_label_precision_matches_each_members_labels_to_their_problems():
    # member 0 keeps only P1 (right); member 1 keeps P0 (wrong) and P1 (right): 2 of 3 labels right
    atts = attempts([(P0, ["7;4"]), (P1, ["8"])], member=0) + attempts([(P0, ["9;9"]), (P1, ["8"])], member=1)
    scores = {"vote": [Score("vote", 1, ok, "") for ok in (False, True, True, True)]}
    sel = keep_own_agreeing(atts, scores, 2)
    labelled = [[P0, P1][i] for i in sel.kept_problems]  # as the loop pairs labels with problems
    assert label_precision(TASK, labelled, [e.answer for e in sel.examples]) == pytest.approx(2 / 3)


def test_gate_drops_labels_past_the_first_difficulty_it_stops_at():
    # span 2 above frontier 0: difficulty 1 passes the gate, difficulty 2 fails -> both trained on;
    # difficulty 1 fails -> difficulty 2's labels come from an untrusted model and are dropped
    curriculum = EasyToHard(frontier=0, span=2, gate=0.8)
    assert curriculum.trained_up_to({1: 0.9, 2: 0.5}) == 2
    assert curriculum.trained_up_to({1: 0.7, 2: 0.9}) == 1
    assert curriculum.trained_up_to({1: 0.9, 2: 0.9}) == 2

    atts = attempts([(P0, ["7;4", "7;4"]), (P1, ["8"])])  # P0 is difficulty 2, P1 difficulty 1
    sel = keep_if_all_judges_pass(atts, verify(atts))
    assert [e.answer for e in sel.examples] == ["7;4", "8"]
    easy = drop_harder_than(sel, atts, 1)
    assert [e.answer for e in easy.examples] == ["8"] and easy.kept_problems == [1]
    assert easy.kept_attempts == [False, False, True]
    assert all("gate stopped" in r for r in easy.reasons[:2]) and "gate" not in easy.reasons[2]
    assert drop_harder_than(sel, atts, 2) is sel

    own = keep_own_agreeing(atts, verify(atts), 1)
    assert [[e.answer for e in m] for m in drop_harder_than(own, atts, 1).member_examples] == [["8"]]


def test_accelerated_schedule_passes_lengths_past_the_first_only_at_its_own_bar():
    # frontier 4, span 3: difficulty 5 needs the gate (0.8); 6 and 7 need accelerate (0.99)
    fast = EasyToHard(frontier=4, span=3, gate=0.8, accelerate=0.99)
    assert [fast.bar(d) for d in fast.difficulties()] == [0.8, 0.99, 0.99]
    outcome = SimpleNamespace(keep_rate={5: 0.85, 6: 0.995, 7: 0.97})
    assert fast.stopped_at(outcome.keep_rate) == 7 and fast.trained_up_to(outcome.keep_rate) == 7
    fast.update(outcome)
    assert fast.frontier == 6 and fast.difficulties() == [7, 8, 9]  # two lengths in one round
    # the same keep rates under the plain gate would have passed all three
    plain = EasyToHard(frontier=4, span=3, gate=0.8)
    plain.update(outcome)
    assert plain.frontier == 7
    # a first length under the gate stops everything, however well the later ones are kept
    stuck = EasyToHard(frontier=4, span=3, gate=0.8, accelerate=0.99)
    stuck.update(SimpleNamespace(keep_rate={5: 0.7, 6: 1.0, 7: 1.0}))
    assert stuck.frontier == 4 and stuck.trained_up_to({5: 0.7, 6: 1.0, 7: 1.0}) == 5


def test_all_judges_keeps_a_problems_most_common_distinct_answers_up_to_its_label_count():
    # P0: only "7;4" passes (three times), so one label whatever the count; P1 passes two
    # distinct texts: the one given twice first, then the other
    atts = attempts([(P0, ["7;4", "7;5", "7;4", "7;4"]), (P1, ["8", "08", "08"])])
    everyone = {"all": [Score("all", 1.0, a.text != "7;5", "") for a in atts]}
    one = keep_if_all_judges_pass(atts, everyone)
    assert [e.answer for e in one.examples] == ["7;4", "08"] and one.kept_problems == [0, 1]
    two = keep_if_all_judges_pass(atts, everyone, labels=2)
    assert [e.answer for e in two.examples] == ["7;4", "08", "8"] and two.kept_problems == [0, 1, 1]
    assert "a label of the problem (1 of its 3" in two.reasons[4]
    assert "label(s) are other kept answers" in one.reasons[4]
    # the recipe's selector, built from its settings as a run builds it, passes its count on
    from selftaught.parts.selectors import AllJudgesSettings
    from selftaught.select.selectors import Batch, KeepIfAllPass

    selector = KeepIfAllPass.from_settings(AllJudgesSettings(labels_per_problem=2), None)
    chosen = selector.select(Batch(atts, everyone, [1.0] * len(atts)), "examples")
    assert [e.answer for e in chosen.examples] == ["7;4", "08", "8"]


def test_uniform_curriculum_draws_difficulties_in_proportion_to_their_weights():
    task = Countdown()
    levels = [p.difficulty for p in Uniform(2, 4, 3000, (1.0, 0.0, 3.0)).propose(task, random.Random(0))]
    assert set(levels) == {2, 4}  # a weight of 0 is never drawn
    assert levels.count(4) / len(levels) == pytest.approx(0.75, abs=0.03)
    plain = [p.difficulty for p in Uniform(2, 4, 3000).propose(task, random.Random(0))]
    assert all(abs(plain.count(d) / 3000 - 1 / 3) < 0.03 for d in (2, 3, 4))


def test_revisions():
    first = ["7;5", "7;4", "1;1"]
    second = ["7;4", "7;5", "1;2"]
    atts = [Attempt(0, P0, 0, t2, sample=i, first=t1) for i, (t1, t2) in enumerate(zip(first, second))]
    r2 = [1.0, 0.0, 0.0]
    r1 = [0.0, 1.0, 0.0]
    sel = select_revisions(atts, verify(atts), r2, r1, 1.0, fix_boost=2)
    pairs = [(e.prompt, e.answer) for e in sel.examples]
    assert pairs.count((P0.prompt, "7;4")) == 1  # the one good answer as a first-turn example
    assert pairs.count((f"{P0.prompt}7;5|", "7;4")) == 2  # wrong→right, boosted
    assert pairs.count((f"{P0.prompt}7;4|", "7;4")) == 1  # a right first turn is kept through revision
    assert pairs.count((f"{P0.prompt}1;1|", "7;4")) == 1  # both wrong: revise towards the good answer


def test_revision_groups_give_scores_shaped_reward_and_each_revision_its_own_prompt():
    # two first attempts (samples 0 and 1), each revised twice; r1 = 1 for sample 0, 0 for sample 1
    firsts, r1 = {0: "7;4", 1: "1;1"}, {0: 1.0, 1: 0.0}
    revs = [(0, "7;4", 1.0), (0, "1;2", 0.0), (1, "7;4", 1.0), (1, "1;1", 0.0)]  # keep, break, fix, keep-wrong
    atts = [Attempt(0, P0, 0, t, sample=k, first=firsts[k]) for k, t, _ in revs]
    sel = revision_groups(atts, verify(atts), [r for *_, r in revs], [r1[k] for k, *_ in revs], shaping=3.0)
    first, second = sel.groups
    assert (first.prompt, first.completions, first.rewards) == (P0.prompt, ["7;4", "1;1"], [1.0, 0.0])
    assert first.each_prompt() == [P0.prompt] * 2
    # r2 + 3 (r2 - r1): kept right 1, broken -3, fixed 4, kept wrong 0
    assert second.rewards == [1.0, -3.0, 4.0, 0.0]
    assert second.completions == ["7;4", "1;2", "7;4", "1;1"]
    assert second.each_prompt() == [f"{P0.prompt}7;4|", f"{P0.prompt}7;4|", f"{P0.prompt}1;1|", f"{P0.prompt}1;1|"]
    # GRPO sees every revision after its own first attempt
    assert sel.kept_attempts == [True] * 4 and sel.examples == []
    prompts, completions, advantages = flatten(sel.groups)
    assert prompts[2:] == second.each_prompt() and completions[2:] == second.completions
    assert advantages[2:].argmax() == 2 and advantages[2:].argmin() == 1  # the fix leads, the break trails
    # a query whose every turn is right gives no group (no advantage to learn from)
    same = [Attempt(0, P0, 0, "7;4", sample=k, first="7;4") for k in range(2)]
    none = revision_groups(same, verify(same), [1.0, 1.0], [1.0, 1.0], shaping=3.0)
    assert none.groups == [] and none.kept_attempts == [False, False]


def test_balance_choice():
    atts = attempts([(P0, ["7;4", "7;4", "x", "y"])])
    correct = [True, True, False, False]
    # threshold 0.5 keeps the two correct (one distinct): min(1/2,1) * 1/2 = 0.25
    assert balance_at(atts, [1, 1, 0, 0], correct, 0.5, 2) == pytest.approx(0.25)
    # a probe whose high temperature yields two distinct correct answers and one wrong
    def probe(t):
        texts = ["7;4", "7;4", "x", "y"] if t < 1 else ["7;4", "z", "x", "y"]
        ok = [True, True, False, False] if t < 1 else [True, True, False, False]
        return attempts([(P0, texts)]), [1.0 if o else 0.2 for o in ok], ok

    choice = choose(probe, [0.5, 1.2], [0.1, 0.5], target=2)
    assert (choice.temperature, choice.threshold) == (1.2, 0.5)
    assert choice.balance == pytest.approx(1.0)  # two distinct correct of two selected


def _tiny(seed=0):
    tok = tokenizer_for(TASK.alphabet, control=True)
    torch.manual_seed(seed)
    model = Transformer(TransformerConfig(vocab_size=tok.vocab_size, n_layers=1, d_model=16, n_heads=2, d_ff=32,
                                          max_len=32)).eval()
    return model, tok


def test_self_verdict_reads_the_models_yes_no_probability():
    model, tok = _tiny()
    yes, no = tok.encode("YN")
    atts = attempts([(P0, ["7;4", "7;5"])])
    with torch.no_grad():
        model.head.weight[yes] = model.head.weight[no]  # equal logits for Y and N: P(Y) = 0.5 on any input
    judge = SelfVerdictJudge([CharPolicy(model, tok)], threshold=0.6)
    s = judge.score(TASK, atts)
    assert [x.value for x in s] == pytest.approx([0.5, 0.5]) and not any(x.passed for x in s)
    ex = verdict_examples(TASK, atts)
    assert [(e.text, e.correct) for e in ex] == [("3+4*2=7;4?", True), ("3+4*2=7;5?", False)]


def test_process_reward_is_the_weakest_steps_rollout_success():
    model, tok = _tiny()

    class Scripted:  # the task's checker sees what the rollouts wrote; fix them by the prefix
        name, alphabet, step_separator = TASK.name, TASK.alphabet, ";"

        def check(self, problem, answer):
            return answer in ("7;4", "1;4")

        def answer_length(self, problem):
            return None

    outcomes = {"3+4*2=7;": ["4", "4", "5", "4"], "3+4*2=1;": ["9", "9", "9", "4"]}
    policy = CharPolicy(model, tok)
    # a rollout goes on from its step prefix, inside the reply
    policy.generate = lambda prompts, limits, prefixes, **kw: [Completion(outcomes[p + x].pop(), [], [])
                                                               for p, x in zip(prompts, prefixes)]
    judge = ProcessRewardJudge([policy], rollouts=4, threshold=0.5)
    values = judge.step_values(Scripted(), attempts([(P0, ["7;4", "1;4"])]))
    assert values == [[0.75, 1.0], [0.25, 1.0]]  # 3 of 4 rollouts from "7;" succeed, 1 of 4 from "1;"


def test_verdict_probability_is_the_full_models_yes_against_no():
    model, tok = _tiny(3)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    texts = ["3+4*2=7;4?", "3+4*2=1;8?", "3+4*2=7?"]
    yes, no = tok.encode("YN")
    expected = []
    for t in texts:  # one text at a time through the ordinary forward pass
        logits = model(torch.tensor([tok.encode(t)]))[0, -1]
        expected.append(torch.softmax(logits[[yes, no]], -1)[0].item())
    assert verdict_probability(CharPolicy(model, tok), texts) == pytest.approx(expected, abs=1e-6)
    assert max(expected) - min(expected) > 0.02  # the texts are told apart: not a constant


def test_self_certainty_is_the_answers_geometric_mean_probability():
    model, tok = _tiny(3)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    atts = attempts([(P0, ["7;4", "1;48"]), (P1, ["8"])])
    # independently: the full forward pass's summed log-probability of answer + EOS, over its length
    expected = [math.exp(sequence_logp(model, [tok.encode(a.problem.prompt)], [tok.encode(a.text) + [EOS]])[0]
                         / (len(a.text) + 1)) for a in atts]
    low, mid, _ = sorted(expected)
    s = SelfCertaintyJudge([CharPolicy(model, tok)], threshold=(low + mid) / 2).score(TASK, atts)
    assert [x.value for x in s] == pytest.approx(expected, abs=1e-6)
    assert max(expected) > 1.1 * min(expected)  # not a constant
    assert [x.passed for x in s] == [v > low for v in expected]


def test_round_figures_grade_preference_pairs():
    """A pair is right only when its chosen answer is right and its rejected one wrong; countdown
    has several right answers, so both sides can be right."""
    from selftaught.monitor.round_figures import sample_figures
    q = Problem("3,2:5=", 2, ((3, 2), 5, "3+2=5"))
    atts = attempts([(q, ["3+2=5", "3*2=6"]),   # chosen right, rejected wrong: the only right pair
                     (q, ["3-2=1", "2+3=5"]),   # the judge is misled
                     (q, ["3+2=5", "2+3=5"]),   # both right: nothing to learn from the pair
                     (q, ["3*2=6", "3-2=1"])])  # both wrong
    scores = {"judge": [Score("judge", v, v > 0.5, "") for v in (0.9, 0.1) * 4]}  # first answer preferred
    reward = rewards(scores, {"judge": 1.0})
    sel = build_pairs(atts, scores, reward, margin=0.5)
    assert len(sel.pairs) == 4
    figures = sample_figures(Countdown(), atts, scores, reward, sel, pass_k=2, pass_s=1, balance_target=2)
    assert figures["pair_accuracy"] == 0.25
    assert figures["chosen_precision"] == 0.5  # the first and third pairs chose a right answer
    assert "kept_precision" not in figures
