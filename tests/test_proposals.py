"""Proposals a model writes: the restricted arithmetic evaluator and R-Zero's repetition penalty."""

import math
import random
import time

import pytest

from selftaught.curriculum.repetition import average_linkage_clusters, bleu_distances, cluster_shares, sentence_bleu
from selftaught.tasks.expressions import Evaluated, ExpressionError, Limits, evaluate, find_expression

# ---- evaluate: values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, value, normal",
    [
        ("(3+4)*12", 84, "(3 + 4) * 12"),
        ("2 + 3 * 4", 14, "2 + 3 * 4"),
        ("10 - 4 - 3", 3, "10 - 4 - 3"),  # left to right
        ("48 / 4 / 2", 6, "48 / 4 / 2"),
        ("-3 * -4", 12, "-3 * -4"),
        ("5--3", 8, "5 - -3"),
        ("-(2 + 3) * 2", -10, "-(2 + 3) * 2"),
        ("-7 / 7", -1, "-7 / 7"),
        ("14/-7", -2, "14 / -7"),
        ("2 ^ 10", 1024, "2 ^ 10"),
        ("2**3**2", 512, "2 ^ 3 ^ 2"),  # right-associative
        ("-2^2", -4, "-2 ^ 2"),  # as Python: -2**2 == -4
        ("(-2)^3", -8, "(-2) ^ 3"),
        ("2 ^ (1 + 1) * 3", 12, "2 ^ (1 + 1) * 3"),
        ("6 × 7", 42, "6 * 7"),
        ("007 + 1", 8, "7 + 1"),
        ("  42 ", 42, "42"),
        ("0 ^ 0", 1, "0 ^ 0"),
        ("1 ^ 999999", 1, "1 ^ 999999"),
        ("999999 * 999999", 999998000001, "999999 * 999999"),  # 12 digits: at the limit
    ],
)
def test_evaluate_computes_and_normalises(text, value, normal):
    result = evaluate(text)
    assert (result.value, result.text) == (value, normal)
    assert evaluate(result.text) == result  # the normal form reads back as itself


def test_evaluate_counts_operators_and_digits():
    assert evaluate("(3 + 4) * 12") == Evaluated(84, 2, 2, "(3 + 4) * 12")
    assert evaluate("-5").operators == 0


# ---- evaluate: refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty expression"),
        ("   ", "empty expression"),
        ("(3 + 4", "unclosed '(' at 0"),
        ("3 + 4)", "unexpected ')' at 5"),
        ("()", "unexpected ')' at 1"),
        ("3 +", "expression ends after '+' at 2"),
        ("3 4", "unexpected '4' at 2"),
        ("(3)(4)", "unexpected '(' at 3"),
        ("3 + a", "unexpected 'a' at 4"),
        ("3 x 4", "unexpected 'x' at 2"),
        ("3.5 + 1", "unexpected '.' at 1"),
        ("* 3", "unexpected '*' at 0"),
        ("²", "unexpected '²' at 0"),  # str.isdigit() says yes; we do not
        ("7 / 2", "7 / 2 is not a whole number"),
        ("7 / (3 - 3)", "division by zero"),
        ("2 ^ -1", "negative exponent -1"),
        ("1234567 + 1", "literal of 7 digits (at most 6)"),
        ("1+1+1+1+1+1+1+1", "more than 6 operators"),
        ("((((((((( 1 )))))))))", "parentheses nested deeper than 8"),
        ("999999 * 999999 * 10", "result of more than 12 digits"),
        ("10 ^ 12", "result of more than 12 digits"),
        ("1" * 81, "expression of 81 characters (at most 80)"),
    ],
)
def test_evaluate_refuses_with_a_reason(text, reason):
    with pytest.raises(ExpressionError) as refused:
        evaluate(text)
    assert reason in str(refused.value)
    assert "\n" not in str(refused.value)


_LONG = Limits(max_chars=10**6)  # past the length check, so that each later check must refuse on its own
_MANY = Limits(max_chars=10**6, max_operators=10**6)
_HUGE = [
    ("9**9**9", Limits(), "digits"),
    ("9^9^9^9", _MANY, "digits"),
    ("*".join(["999999"] * 7), Limits(), "digits"),
    ("999999*" * 2_000 + "1", _MANY, "digits"),
    ("9" * 10_000, Limits(), "characters"),
    ("9" * 10_000, _LONG, "literal of 10000 digits"),
    ("(" * 10_000, Limits(), "characters"),
    ("(" * 10_000, _LONG, "nested"),
    ("(" * 10_000 + "1" + ")" * 10_000, _LONG, "nested"),
    ("1+" * 5_000 + "1", _LONG, "operators"),
]


@pytest.mark.parametrize("text, limits, reason", _HUGE, ids=range(len(_HUGE)))
def test_oversize_refused_fast(text, limits, reason):
    start = time.perf_counter()
    with pytest.raises(ExpressionError, match=reason):
        evaluate(text, limits)
    assert time.perf_counter() - start < 0.05


def _reference(result: Evaluated) -> int:
    # Python as an independent reference, in the test only, on text our parser accepted and normalised
    # (no leading zeros); every division in it was exact, so // is the same as /.
    return eval(result.text.replace("^", "**").replace("/", "//"))


def test_fuzz_random_strings_only_refuse_or_agree_with_python():
    rng = random.Random(1234)
    alphabet = "0123456789+-*/()^ x×."
    accepted = 0
    for _ in range(4000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.choice([rng.randint(0, 12), rng.randint(0, 100)])))
        try:
            result = evaluate(text)
        except ExpressionError:
            continue
        accepted += 1
        assert result.value == _reference(result), text
    assert accepted > 100  # the fuzz reached the evaluator, not only the tokenizer


def _random_expression(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.3:
        return "-" * rng.choice([0, 0, 0, 1, 2]) + str(rng.randint(0, rng.choice([9, 99, 999999])))
    left, right = _random_expression(rng, depth - 1), _random_expression(rng, depth - 1)
    op = rng.choice(["+", "-", "*", "×", "/", "^", "**"])
    text = f"{left}{rng.choice(['', ' '])}{op}{rng.choice(['', ' '])}{right}"
    return f"({text})" if rng.random() < 0.5 else text


def test_fuzz_well_formed_expressions_agree_with_python():
    rng = random.Random(99)
    accepted = 0
    for _ in range(3000):
        text = _random_expression(rng, 3)
        try:
            result = evaluate(text)
        except ExpressionError as refused:
            assert any(why in str(refused) for why in ("digits", "whole", "zero", "exponent", "operators")), text
            continue
        accepted += 1
        assert result.value == _reference(result), text
    assert accepted > 500


# ---- find_expression ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply, expression",
    [
        ("Sure! Here is one: What is 12 * (3 + 4)?", "12 * (3 + 4)"),
        ("Question: 5+7", "5+7"),
        ("hello", None),
        ("what is 2^10? Think carefully.", "2^10"),
        ("What is 1 + 1? Too easy. What is 17 × 23 - 4?", "17 × 23 - 4"),
        ("What is 3 * 4", "3 * 4"),  # no "?": the longest run instead
        ("Call 555 1234 for help", None),  # digits but no operator between them
        ("Try 2 + 2, or better 123 * (45 - 6) + 7.", "123 * (45 - 6) + 7"),
    ],
)
def test_find_expression(reply, expression):
    assert find_expression(reply) == expression


# ---- BLEU and the repetition penalty ------------------------------------------------------------------


def test_sentence_bleu_by_hand():
    # hypothesis "the cat sat on the mat", reference "the cat is on the mat" (6 words each: no brevity penalty)
    # 1-grams: the×2 cat sat on mat; clipped matches the×2 cat on mat             -> 5/6
    # 2-grams: the-cat cat-sat sat-on on-the the-mat; matches the-cat on-the the-mat -> 3/5
    # 3-grams: the-cat-sat cat-sat-on sat-on-the on-the-mat; matches on-the-mat    -> 1/4
    # 4-grams: the-cat-sat-on cat-sat-on-the sat-on-the-mat; no match, method1     -> 0.1/3
    # BLEU = (5/6 * 3/5 * 1/4 * 0.1/3) ** (1/4) = (1/240) ** (1/4)
    hypothesis, reference = "the cat sat on the mat".split(), "the cat is on the mat".split()
    assert sentence_bleu(hypothesis, reference) == pytest.approx((1 / 240) ** 0.25, rel=1e-12)


@pytest.mark.parametrize(
    "hypothesis, reference, expected",
    [  # expected: nltk 3.10.4, sentence_bleu([reference.split()], hypothesis.split(), SmoothingFunction().method1)
        ("the cat sat on the mat", "the cat is on the mat", 0.25406637407730737),
        ("What is 12 * ( 3 + 4 ) ?", "What is 12 * ( 3 + 5 ) ?", 0.7071067811865475),
        ("What is 2 + 2 ?", "Compute 2 + 2 please", 0.20205155046766235),
        ("5 + 7", "5 + 7", 0.5623413251903491),  # no 4-gram: 0/1 smoothed to 0.1, so identical is not 1
        ("5 7", "5 7", 0.316227766016838),
        ("5", "5", 0.1778279410038923),
        ("a b", "a b c d e f", 0.04279677428117006),  # brevity penalty exp(1 - 6/2)
        ("x y", "p q", 0.0),  # no word in common: 0 before smoothing
        ("", "p q", 0.0),
    ],
)
def test_sentence_bleu_matches_nltk(hypothesis, reference, expected):
    assert sentence_bleu(hypothesis.split(), reference.split()) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_identical_texts_are_one_cluster():
    texts = ["What is 12 * ( 3 + 4 ) ?"] * 5
    assert bleu_distances(texts) == [[0.0] * 5 for _ in texts]
    assert cluster_shares(texts) == [1.0] * 5


def test_unrelated_texts_are_each_alone():
    texts = ["alpha beta gamma", "one two three four", "red green blue", "7 * 8 - 1"]
    assert all(d == 1.0 for i, row in enumerate(bleu_distances(texts)) for j, d in enumerate(row) if i != j)
    assert cluster_shares(texts) == [0.25] * 4
    assert cluster_shares([]) == []
    assert cluster_shares(["lonely"]) == [1.0]


@pytest.mark.parametrize(
    "texts, shares",
    [  # shares: R-Zero's cluster_share_per_problem with nltk 3.10.4 and scikit-learn 1.9.1
        (
            ["What is 12 * ( 3 + 4 ) ?", "What is 12 * ( 3 + 5 ) ?", "What is 12 * ( 3 + 4 ) ?",
             "Compute the product of 17 and 23 .", "Compute the product of 17 and 29 .",
             "How many primes are below 100 ?"],
            [1 / 2, 1 / 2, 1 / 2, 1 / 3, 1 / 3, 1 / 6],
        ),
        (
            ["What is 1 + 1 ?", "What is 1 + 2 ?", "What is 1 + 3 ?", "What is 1 + 4 ?",
             "Find 9 * 9 - 3 quickly", "Tell me 7 ^ 3 now"],
            [2 / 3, 2 / 3, 2 / 3, 2 / 3, 1 / 6, 1 / 6],
        ),
    ],
)
def test_cluster_shares_match_r_zero(texts, shares):
    assert cluster_shares(texts) == pytest.approx(shares)


def test_mixed_distances_match_nltk():
    texts = ["What is 1 + 1 ?", "What is 1 + 2 ?", "What is 1 + 3 ?", "What is 1 + 4 ?",
             "Find 9 * 9 - 3 quickly", "Tell me 7 ^ 3 now"]
    expected = [  # 1 - BLEU as R-Zero computes it, nltk 3.10.4, rounded to 6 places
        [0.0, 0.462715, 0.462715, 0.462715, 1.0, 1.0],
        [0.462715, 0.0, 0.462715, 0.462715, 1.0, 1.0],
        [0.462715, 0.462715, 0.0, 0.462715, 0.965443, 0.959175],
        [0.462715, 0.462715, 0.462715, 0.0, 1.0, 1.0],
        [1.0, 1.0, 0.965443, 1.0, 0.0, 0.966968],
        [1.0, 1.0, 0.959175, 1.0, 0.966968, 0.0],
    ]
    for row, want in zip(bleu_distances(texts), expected):
        assert row == pytest.approx(want, abs=5e-7)


def test_average_linkage_by_hand():
    # a-b 0.2 merge first; c is 0.4 from a but 0.9 from b: mean 0.65 >= 0.5, so c stays alone
    # (single linkage would have taken it); d is exactly 0.5 from c: not merged, as in sklearn
    distances = [
        [0.0, 0.2, 0.4, 1.0],
        [0.2, 0.0, 0.9, 1.0],
        [0.4, 0.9, 0.0, 0.5],
        [1.0, 1.0, 0.5, 0.0],
    ]
    assert average_linkage_clusters(distances) == [0, 0, 1, 2]
    # below 0.7, c and d (0.5) merge before c could join a-b (0.65); a-b to c-d is then (0.4+1+0.9+1)/4 = 0.825
    assert average_linkage_clusters(distances, threshold=0.7) == [0, 0, 1, 1]
    assert average_linkage_clusters(distances, threshold=2.0) == [0, 0, 0, 0]
    assert average_linkage_clusters([]) == []


def test_labels_numbered_by_first_appearance():
    distances = [[0.0, 1.0, 0.1], [1.0, 0.0, 1.0], [0.1, 1.0, 0.0]]
    assert average_linkage_clusters(distances) == [0, 1, 0]
    assert math.isclose(sum(cluster_shares(["p q r", "x y z", "p q r"])), 5 / 3)
