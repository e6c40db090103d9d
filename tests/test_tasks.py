import random

import pytest

from selftaught.tasks import CharTokenizer, ReversedAddition, StringCopy, StringReverse, TaskImportError, load_task
from selftaught.tasks.tokenizer import EOS


def test_reversed_addition_target_carries_and_pads():
    task = ReversedAddition()
    p = task.make(95, 7)  # 95 + 7 = 102; operands reversed: "59", "7"
    assert p.prompt == "59+7="
    assert task.target(p) == "201"
    assert task.check(p, "201") and not task.check(p, "102")
    p = task.make(12, 34)  # 46, padded to 3 digits: "046" reversed -> "640"
    assert task.target(p) == "640"
    assert task.answer_length(p) == 3


@pytest.mark.parametrize("difficulty", [1, 2, 5, 17])
def test_reversed_addition_sample_matches_arithmetic(difficulty):
    task, rng = ReversedAddition(), random.Random(difficulty)
    for _ in range(200):
        p = task.sample(rng, difficulty)
        ra, rb = p.prompt[:-1].split("+")
        a, b = int(ra[::-1]), int(rb[::-1])
        assert max(len(ra), len(rb)) == difficulty == p.difficulty
        assert int(task.target(p)[::-1]) == a + b
        assert len(task.target(p)) == difficulty + 1
        assert str(a) == ra[::-1] and str(b) == rb[::-1]  # no leading zeros in operands


def test_operand_lengths_are_independent():
    task, rng = ReversedAddition(), random.Random(0)
    shapes = set()
    for _ in range(500):
        ra, rb = task.sample(rng, 4).prompt[:-1].split("+")
        shapes.add((len(ra), len(rb)))
    assert shapes == {(4, k) for k in range(1, 5)} | {(k, 4) for k in range(1, 5)}


def test_equivalent_is_commuted():
    task = ReversedAddition()
    (q,) = task.equivalents(task.make(123, 4))
    assert q.prompt == "4+321="
    assert task.target(q) == task.target(task.make(123, 4))


def test_same_seed_same_problems():
    task = ReversedAddition()
    a = [task.sample(random.Random(7), 9).prompt for _ in range(3)]
    b = [task.sample(random.Random(7), 9).prompt for _ in range(3)]
    assert a == b


def test_copy_and_reverse():
    rng = random.Random(0)
    c, r = StringCopy(), StringReverse()
    p = c.sample(rng, 6)
    assert len(p.prompt) == 7 and c.target(p) == p.prompt[:-1]
    q = r.sample(rng, 5)
    assert r.target(q) == q.prompt[:-1][::-1] and r.check(q, q.prompt[:-1][::-1])
    assert not r.check(q, q.prompt[:-1] + "x")


def test_tokenizer_round_trip():
    tok = CharTokenizer(ReversedAddition().alphabet)
    text = "0123+98765=4"
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.decode(ids + [EOS] + tok.encode("77")) == text
    with pytest.raises(ValueError, match="not in the alphabet"):
        tok.encode("1-2")


def test_load_task_by_import_path():
    task = load_task("selftaught.tasks.strings:StringReverse")
    assert task.name == "reverse"
    with pytest.raises(TaskImportError, match="cannot import"):
        load_task("no_such_module_xyz:Task")
    with pytest.raises(TaskImportError, match="unknown task"):
        load_task("addition")


def test_word_arithmetic_reads_the_last_number_of_a_free_text_reply():
    from selftaught.tasks.words import KINDS, WordArithmetic, last_number

    task = WordArithmetic()
    rng = random.Random(0)
    for d, (op, (lo_a, hi_a), (lo_b, hi_b)) in KINDS.items():
        p = task.sample(rng, d)
        a, got_op, b = p.data
        assert p.prompt == f"What is {a} {op} {b}?" and got_op == op and lo_a <= a <= hi_a and lo_b <= b <= hi_b
        right = str(a + b if op == "+" else a * b)
        assert task.target(p) == right
        assert task.check(p, f"{a} {op} {b} = {right}") and task.check(p, f"The answer is {right}.")
        assert not task.check(p, f"{right} is wrong, it is {int(right) + 1}") and not task.check(p, "no idea")
    assert last_number("it is 1,234 or -5") == "-5" and last_number("1,234") == "1234" and last_number("x") is None
    p = task.make(3, "+", 4, 1)
    assert [q.prompt for q in task.equivalents(p)] == ["What is 4 + 3?"]


def test_majority_vote_on_free_text_counts_the_answers_not_the_wording():
    from selftaught.judge import MajorityVoteJudge
    from selftaught.sample import Attempt
    from selftaught.tasks.words import WordArithmetic

    task = WordArithmetic()
    p = task.make(3, "+", 4, 1)
    texts = ["3 + 4 = 7", "The answer is 7.", "7", "It is 8", "no number"]
    scores = MajorityVoteJudge(0.5).score(task, [Attempt(0, p, 0, t, sample=k) for k, t in enumerate(texts)])
    assert [s.passed for s in scores] == [True, True, True, False, False]
    assert [s.value for s in scores] == [0.6, 0.6, 0.6, 0.2, 0.2]
