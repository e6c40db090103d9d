import json
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
    from selftaught.tasks.answers import last_number
    from selftaught.tasks.words import KINDS, WordArithmetic

    task = WordArithmetic()
    rng = random.Random(0)
    for d, (op, (lo_a, hi_a), (lo_b, hi_b)) in KINDS.items():
        p = task.sample(rng, d)
        a, got_op, b = p.data
        assert p.prompt == f"What is {a} {op} {b}?" and got_op == op and lo_a <= a <= hi_a and lo_b <= b <= hi_b
        right = str({"+": a + b, "*": a * b, "-": a - b}[op])
        assert task.target(p) == right
        assert task.check(p, f"{a} {op} {b} = {right}") and task.check(p, f"The answer is {right}.")
        assert not task.check(p, f"{right} is wrong, it is {int(right) + 1}") and not task.check(p, "no idea")
    assert last_number("it is 1,234 or -5") == "-5" and last_number("1,234") == "1234" and last_number("x") is None
    p = task.make(3, "+", 4, 1)
    assert [q.prompt for q in task.equivalents(p)] == ["What is 4 + 3?"]
    assert task.equivalents(task.make(30, "-", 4, 6)) == []  # 4 - 30 is another question


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


def test_a_vote_among_finished_replies_ignores_the_cut_off_ones():
    from selftaught.judge import MajorityVoteJudge
    from selftaught.sample import Attempt
    from selftaught.tasks.words import WordArithmetic

    task = WordArithmetic()
    p = task.make(3, "+", 4, 1)
    said = [("To add 3 and 4 we", False), ("To add 3 and 4, one", False), ("Adding 4", False), ("3 + 4 = 7", True),
            ("7", True), ("It is 8", True)]
    attempts = [Attempt(0, p, 0, t, sample=k, finished=f) for k, (t, f) in enumerate(said)]
    plain = MajorityVoteJudge(0.5).score(task, attempts)
    assert [s.passed for s in plain] == [True, True, True, False, False, False]  # the operand 4 wins
    finished = MajorityVoteJudge(0.6, min_votes=2, finished_only=True).score(task, attempts)
    assert [s.passed for s in finished] == [False, False, False, True, True, False]
    assert finished[3].value == pytest.approx(2 / 3) and "cut off" in finished[0].reason
    assert not any(s.passed for s in MajorityVoteJudge(0.6, min_votes=3, finished_only=True).score(task, attempts))


class _Replies:
    """A policy whose reply to prompt i is i tokens long: the budget decides which ones were cut."""

    def generate(self, prompts, limits, **decoding):
        from selftaught.policy import Completion

        return [Completion(f"it is {k}", list(range(min(k, n))), [0.0] * min(k, n))
                for k, n in zip(range(len(prompts)), limits)]


def test_replies_that_reach_their_budget_count_as_cut_off():
    from selftaught.monitor.accuracy import held_out_figures
    from selftaught.sample.attempts import sample_attempts
    from selftaught.tasks.words import WordArithmetic

    task = WordArithmetic(max_answer_tokens=3)
    problems = [task.make(k, "+", 0, 1) for k in range(6)]  # prompt k: the right answer is k
    attempts = sample_attempts([_Replies()], task, problems, equivalents=False)
    assert [a.finished for a in attempts] == [True, True, True, False, False, False]
    accuracy, figures = held_out_figures(_Replies(), task, {1: problems})
    assert accuracy == {1: 1.0} and figures == {"readable": 0.5}  # right, but only 0..2 ended on their own


def test_answers_are_read_and_compared_as_numbers():
    from selftaught.tasks.answers import after_marker, last_boxed, last_number, numeric_equal

    assert last_number("3 apples cost $1.50, so 2.5 or 7/2") == "7/2" and last_number("1,234.") == "1234"
    assert last_boxed(r"so \boxed{\frac{1}{2}} and \boxed{x^{2}}") == "x^{2}" and last_boxed(r"\boxed{3") is None
    assert last_boxed("no box") is None
    assert after_marker("work\n#### 72\nmore", "####") == "72" and after_marker("72", "####") is None
    assert numeric_equal("1,234", "1234") and numeric_equal("3.50", "3.5") and numeric_equal("$5", "5.")
    assert numeric_equal("7/2", "3.5") and not numeric_equal("3.5", "35") and not numeric_equal("0.1", "0.10001")
    assert numeric_equal("Paris ", "paris") and not numeric_equal("Paris", "Rome")


def _gsm8k_file(path, n=40, levels=(1, 2)):
    """GSM8K-shaped lines (worked answers ending in '#### N'), one duplicate, one blank line."""
    lines = [json.dumps({"question": f"Tom has {i} apples and buys {i % 7} more. How many now?",
                         "answer": f"{i} + {i % 7} = <<{i}+{i % 7}={i + i % 7}>>{i + i % 7}\n#### {i + i % 7:,}",
                         "level": levels[i % len(levels)]}) for i in range(n)]
    path.write_text("\n".join(lines[:5] + [lines[3], ""] + lines[5:]) + "\n")
    return path


def test_jsonl_task_reads_gsm8k_lines_and_splits_by_its_own_seed(tmp_path):
    from selftaught.parts.tasks import JsonlSettings

    data = _gsm8k_file(tmp_path / "gsm.jsonl", n=1040)
    settings = JsonlSettings(name="jsonl", path=str(data), difficulty_field="level", held_out=0.25)
    task = load_task(settings)
    train = {d: {p.prompt for p in ps} for d, ps in task.train.items()}
    test = task.held_out(10_000, 10)
    assert set(test) == {1, 2} and task.difficulties == {1, 2} and task.min_difficulty == 1
    for d in (1, 2):
        assert len(test[d]) == 130 and len(train[d]) == 390  # the duplicate line is kept once
        assert not train[d] & {p.prompt for p in test[d]}
    assert task.held_out(7, 1).keys() == {1} and len(task.held_out(7, 1)[1]) == 7
    again = load_task(settings).held_out(10_000, 10)
    assert [p.prompt for p in again[2]] == [p.prompt for p in test[2]]
    other = load_task(JsonlSettings(name="jsonl", path=str(data), difficulty_field="level", held_out=0.25,
                                    split_seed=1)).held_out(10_000, 10)
    assert {p.prompt for p in other[2]} != {p.prompt for p in test[2]}
    rng = random.Random(0)
    drawn = [task.sample(rng, 2) for _ in range(300)]
    assert all(p.prompt in train[2] for p in drawn) and len({p.prompt for p in drawn}) > 150
    p = drawn[0]
    i = int(p.prompt.split()[2])
    right = i + i % 7
    assert task.target(p).endswith(f"#### {right:,}")  # the worked answer is what seed training imitates
    assert task.check(p, f"So {i} + {i % 7} = {right}.") and task.check(p, f"The answer is {right:,}")
    assert not task.check(p, f"{right} is wrong; {right + 1}") and not task.check(p, "I do not know")
    with pytest.raises(ValueError, match="no training problems of difficulty 3"):
        task.sample(rng, 3)


def test_jsonl_task_extractors_and_a_run_on_its_split(tmp_path):
    from selftaught.parts.tasks import JsonlSettings

    data = tmp_path / "boxed.jsonl"
    data.write_text("\n".join(json.dumps({"problem": f"Compute {i}/4.", "solution": str(i / 4)}) for i in range(1, 9)))
    boxed = load_task(JsonlSettings(name="jsonl", path=str(data), question_field="problem", answer_field="solution",
                                    extract="boxed", held_out=0.5))
    p = boxed.sample(random.Random(0), 1)
    value = p.data[1]
    assert boxed.check(p, rf"It is \boxed{{{value}}}, not 9") and not boxed.check(p, f"It is {value}")
    marked = load_task(JsonlSettings(name="jsonl", path=str(data), question_field="problem", answer_field="solution",
                                     extract="marker", marker="Answer:"))
    assert marked.check(p, f"2 steps. Answer: {value}\nDone") and not marked.check(p, f"{value}")
    recipe = load_recipe_from_text(tmp_path, f"""
[task]
name = "jsonl"
path = "{data}"
question_field = "problem"
answer_field = "solution"
seed_max_difficulty = 1
held_out = 0.5
""")
    from selftaught.monitor.accuracy import held_out_set

    held = held_out_set(load_task(recipe.task), 0, 100, 5)
    assert sorted(p.prompt for p in held[1]) == sorted(p.prompt for p in boxed.held_out(100, 5)[1])
    assert len(held[1]) == 4


def load_recipe_from_text(tmp_path, text):
    from selftaught.recipe import load_recipe

    path = tmp_path / "r.toml"
    path.write_text(text + '[[judges]]\ntype = "verifier"\n')
    return load_recipe(path)


def test_jsonl_task_checks_latex_answers_with_math_verify(tmp_path):
    """math-verify, an independent checker, accepts what numbers alone cannot compare."""
    pytest.importorskip("math_verify")
    from selftaught.parts.tasks import JsonlSettings

    data = tmp_path / "latex.jsonl"
    data.write_text("\n".join(json.dumps({"question": q, "answer": a}) for q, a in [
        ("Half of one?", r"\frac{1}{2}"), ("Expand (x+1)^2.", "x^2+2x+1"), ("Root of 4?", "2")]))
    settings = dict(name="jsonl", path=str(data), extract="boxed", held_out=0.0)
    latex = load_task(JsonlSettings(**settings, checker="math-verify"))
    numeric = load_task(JsonlSettings(**settings))
    half, square, root = latex.train[1]
    assert latex.check(half, r"so \boxed{0.5}") and not numeric.check(half, r"so \boxed{0.5}")
    assert latex.check(square, r"\boxed{(x+1)^2}") and not latex.check(square, r"\boxed{x^2+1}")
    assert latex.check(root, r"\boxed{2}") and numeric.check(root, r"\boxed{2}") and not latex.check(root, r"\boxed{3}")
