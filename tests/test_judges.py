from selftaught.judge import ConsistencyJudge, LengthJudge, MajorityVoteJudge
from selftaught.sample import Attempt
from selftaught.select import keep_if_all_judges_pass
from selftaught.tasks import ReversedAddition

task = ReversedAddition()
P0, P1 = task.make(12, 5), task.make(999, 1)  # answers "710" and "0001"


def attempts():
    return [
        Attempt(0, P0, 0, "710", ["710"]),   # right, consistent
        Attempt(0, P0, 1, "710", ["711"]),   # inconsistent with its own b+a answer
        Attempt(0, P0, 2, "71", ["71"]),     # too short
        Attempt(1, P1, 0, "0001", ["0001"]),
        Attempt(1, P1, 1, "0002", ["0002"]),
        Attempt(1, P1, 2, "0003", ["0003"]),
    ]


def test_length_judge():
    passed = [s.passed for s in LengthJudge().score(task, attempts())]
    assert passed == [True, True, False, True, True, True]


def test_consistency_judge():
    scores = ConsistencyJudge().score(task, attempts())
    assert [s.passed for s in scores] == [True, False, True, True, True, True]
    assert scores[1].value == 0.0 and "0/1" in scores[1].reason


def test_majority_vote_judge():
    scores = MajorityVoteJudge(min_agreement=0.6).score(task, attempts())
    # problem 0: "710" has 2 of 3 votes; problem 1: three different answers, none reaches 0.6
    assert [s.passed for s in scores] == [True, True, False, False, False, False]
    assert abs(scores[0].value - 2 / 3) < 1e-12
    loose = MajorityVoteJudge(min_agreement=0.3).score(task, attempts())
    assert [s.passed for s in loose][3:] == [True, True, True]  # a three-way tie is all plurality


def test_selector_keeps_problems_every_judge_passes_and_counts_rejections():
    atts = attempts()
    judges = [LengthJudge(), ConsistencyJudge(), MajorityVoteJudge(0.6)]
    sel = keep_if_all_judges_pass(atts, {j.name: j.score(task, atts) for j in judges})
    assert sel.kept_problems == [0]
    assert [(e.prompt, e.answer) for e in sel.examples] == [("21+5=", "710")]
    assert sel.kept_attempts == [True, False, False, False, False, False]
    assert sel.rejected_by == {"length": 1, "consistency": 1, "majority-vote": 4}
