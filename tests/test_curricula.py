"""Curricula on hand-made rounds: learning progress (absolute and Trinity-RFT's diff-based) and ExIt's
buffer of partial solutions; their state survives a checkpoint exactly, and a real run resumed from
its first round ends where the uninterrupted run ends."""

import io
import math
import random
from collections import Counter
from types import SimpleNamespace

import pytest
import torch

from selftaught.builtin_recipes import resolve
from selftaught.context import Tools
from selftaught.curriculum import Outcome
from selftaught.curriculum.exit import Exit, draw_by_priority, step_cuts
from selftaught.curriculum.learning_progress import LearningProgress
from selftaught.curriculum.uniform import Uniform
from selftaught.engine import Run
from selftaught.judge import Score
from selftaught.models import Transformer, TransformerConfig
from selftaught.models.char_policy import CharPolicy
from selftaught.policy import Completion
from selftaught.recipe import RecipeError, load_recipe
from selftaught.sample.attempts import Attempt, sample_attempts
from selftaught.select.selectors import Batch
from selftaught.store.fingerprint import run_fingerprint
from selftaught.tasks import Countdown, Problem
from selftaught.tasks.tokenizer import tokenizer_for
from tiny_recipes import countdown_header


class Levels:
    """A task whose problems say their difficulty and the draw that made them."""

    def sample(self, rng: random.Random, difficulty: int) -> Problem:
        return Problem(f"{difficulty}:{rng.random()}", difficulty)


def outcome(groups: list[tuple[Problem, list[tuple[str, float]]]], round_: int = 1, seed: int = 0) -> Outcome:
    """A round whose problem ``i`` got the attempts ``(text, reward)`` of ``groups[i]``; an attempt
    passes when its reward is 1."""
    attempts, rewards = [], []
    for pid, (problem, replies) in enumerate(groups):
        for s, (text, r) in enumerate(replies):
            attempts.append(Attempt(pid, problem, 0, text, sample=s))
            rewards.append(r)
    scores = {"verifier": [Score("verifier", r, r == 1.0, "") for r in rewards]}
    return Outcome([p for p, _ in groups], Batch(attempts, scores, rewards), {},
                   Tools(round_, seed, None, None, None, None, None, None))


def rates(by_difficulty: dict[int, float], n: int = 20) -> Outcome:
    """A round with one problem per difficulty and ``n`` attempts each, the given share passing."""
    return outcome([(Problem(f"p{d}", d), [("x", 1.0 if i < round(r * n) else 0.0) for i in range(n)])
                    for d, r in by_difficulty.items()])


def checkpointed(state: dict) -> dict:
    """``state`` as the loop's checkpoint holds it (torch.save, then torch.load(weights_only=True))."""
    buffer = io.BytesIO()
    torch.save({"curriculum": state}, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)["curriculum"]


# ---- learning progress ---------------------------------------------------------------------------------


def test_learning_progress_moves_its_choice_to_the_difficulty_whose_success_rate_changes():
    lp = LearningProgress(1, 3, problems_per_round=600)
    assert lp.shares() == pytest.approx([1 / 3] * 3)  # none measured: all alike
    for r2 in (0.1, 0.5, 0.9):  # difficulty 2 climbs, 1 is solved, 3 is out of reach
        figures = lp.update(rates({1: 1.0, 2: r2, 3: 0.0}))
    shares = lp.shares()
    assert shares[1] > max(shares[0], shares[2]) + 0.5, shares
    assert figures["lp_choice_2"] == pytest.approx(shares[1])
    assert figures["lp_score_2"] > 0.3 and figures["lp_score_1"] == figures["lp_score_3"] == 0.0
    counts = Counter(p.difficulty for p in lp.propose(Levels(), random.Random(0)))
    assert counts[2] > 400 and counts[1] < 100 and counts[3] < 100, counts


def test_absolute_learning_progress_is_the_gap_of_two_moving_averages():
    lp = LearningProgress(1, 2, fast=0.5, slow=0.1)
    lp.update(rates({1: 0.1}))
    assert lp.estimates[1] == pytest.approx([0.1, 0.1]) and lp.score(1) == 0.0  # both start at the first rate
    lp.update(rates({1: 0.5}))
    assert lp.estimates[1] == pytest.approx([0.3, 0.14]) and lp.score(1) == pytest.approx(0.16)
    assert lp.score(2) == 1.0  # never measured: the largest score, tried first


def test_diff_based_score_equals_a_hand_computation():
    lp = LearningProgress(1, 3, measure="diff-based", target_rate=0.5, discount=0.2, temperature=0.1, explore=0.3)
    lp.update(rates({1: 0.7, 3: 0.0}, n=10))
    lp.update(rates({1: 0.2}, n=10))  # difficulty 3 has no attempts this round: it keeps its counts
    # Beta(1, 1); a <- 0.8 a + 0.2 + passed, b <- 0.8 b + 0.2 + failed
    a1, b1 = 0.8 * 1 + 0.2 + 7, 0.8 * 1 + 0.2 + 3  # 8, 4
    a1, b1 = 0.8 * a1 + 0.2 + 2, 0.8 * b1 + 0.2 + 8  # 8.6, 11.4
    a3, b3 = 1.0, 11.0
    assert lp.estimates == {1: pytest.approx([a1, b1]), 3: pytest.approx([a3, b3])}
    scores = [-abs(0.5 - a1 / (a1 + b1)), 0.0, -abs(0.5 - a3 / (a3 + b3))]  # 2: never measured, the top score
    assert [lp.score(d) for d in (1, 2, 3)] == pytest.approx(scores)
    assert scores[0] == pytest.approx(-0.07)
    e = [math.exp(s / 0.1) for s in scores]
    assert lp.shares() == pytest.approx([0.7 * x / sum(e) + 0.1 for x in e])


def test_learning_progress_state_round_trips_exactly():
    for measure in ("absolute", "diff-based"):
        lp = LearningProgress(1, 3, problems_per_round=50, measure=measure)
        for r in (0.2, 0.45, 0.7):
            lp.update(rates({1: 1.0, 2: r, 3: r / 2}, n=7))
        again = LearningProgress(1, 3, problems_per_round=50, measure=measure)
        again.load_state_dict(checkpointed(lp.state_dict()))
        assert again.estimates == lp.estimates
        rng = random.Random(3)
        state = rng.getstate()
        expected = lp.propose(Levels(), rng)
        rng.setstate(state)
        assert again.propose(Levels(), rng) == expected


# ---- ExIt ----------------------------------------------------------------------------------------------

TASK = Countdown()
P = Problem("3,5,7:22=", 3, ((3, 5, 7), 22, "3*5=15;15+7=22"))
Q = Problem("2,4,6:14=", 3, ((2, 4, 6), 14, "2*4=8;8+6=14"))
R = Problem("1,2,9:27=", 3, ((1, 2, 9), 27, "1+2=3;3*9=27"))


def exit_curriculum(**kw) -> Exit:
    return Exit(Uniform(2, 3, kw.pop("problems_per_round", 8)), ";", **kw)


def test_exit_group_of_equal_rewards_adds_nothing():
    ex = exit_curriculum()
    figures = ex.update(outcome([(P, [("3*5=15;15+7=22", 1.0)] * 4), (Q, [("2+4=6;6*6=36", 0.0)] * 4)]))
    assert ex.buffer == {} and figures["exit_buffer"] == 0 and figures["exit_share"] == 0
    assert math.isnan(figures["exit_priority_mean"])


def test_exit_pushes_a_partial_solution_cut_at_a_step_boundary():
    replies = [("3*5=15;15+7=22", 1.0), ("3+5=8;8*7=56", 0.0), ("7*3=21;21+5=26;26-5=21", 0.0), ("22", 0.0)]
    ex = exit_curriculum()
    figures = ex.update(outcome([(P, replies)]))
    [(problem, priority)] = ex.buffer.items()
    assert (problem.prompt, problem.difficulty, problem.data) == (P.prompt, P.difficulty, P.data)
    assert priority == pytest.approx(0.1875) and figures["exit_priority_mean"] == pytest.approx(0.1875)
    assert problem.prefix.endswith(";") and any(t.startswith(problem.prefix) and t != problem.prefix
                                                for t, _ in replies)
    assert problem != P  # the prefix is part of what the problem is
    other = exit_curriculum()
    other.update(outcome([(P, replies)]))
    assert other.buffer == ex.buffer  # its own generator: the run's seed and round decide the cut
    assert step_cuts("7*3=21;21+5=26;26-5=21", 0, ";") == [7, 15]
    assert step_cuts("7*3=21;21+5=26;26-5=21", 7, ";") == [15]  # past the prefix a reply began with
    assert step_cuts("22", 0, ";") == []


def test_exit_buffer_is_bounded_and_kept_by_priority():
    ex = exit_curriculum(buffer_size=2)
    texts = ["3*5=15;15+7=22", "3+5=8;8*7=56"]
    ex.update(outcome([(P, [(texts[0], 1.0), (texts[1], 0.0)]),  # variance 0.25
                       (Q, [("2*4=8;8+6=14", 1.0)] + [("2+4=6;6*6=36", 0.0)] * 7),  # 0.109
                       (R, [("1+2=3;3*9=27", 1.0)] + [("1*2=2;2*9=18", 0.0)] * 3)]))  # 0.1875
    assert [(p.prompt, w) for p, w in ex.buffer.items()] == [(P.prompt, pytest.approx(0.25)),
                                                             (R.prompt, pytest.approx(0.1875))]
    # a buffer problem attempted again takes its own group's variance; 0 and it leaves
    again = list(ex.buffer)
    figures = ex.update(outcome([(again[0], [(again[0].prefix + "x", 1.0)] * 2),
                                 (again[1], [(again[1].prefix + "1+2=3", 1.0), (again[1].prefix + "9", 0.0)])],
                                round_=2))
    assert again[0] not in ex.buffer and ex.buffer[again[1]] == pytest.approx(0.25)
    assert figures["exit_share"] == 1.0 and figures["exit_buffer"] == len(ex.buffer)


def test_exit_draws_buffer_problems_by_priority():
    entries = [(P, 0.3), (Q, 0.1)]
    firsts = Counter(draw_by_priority(entries, 1, random.Random(i))[0] for i in range(4000))
    assert firsts[P] / 4000 == pytest.approx(0.75, abs=0.03)
    assert sorted(draw_by_priority(entries, 5, random.Random(0)), key=lambda p: p.prompt) == [Q, P]  # distinct


def test_exit_proposes_its_share_from_the_buffer_and_uniform_problems_when_empty():
    task = Countdown()
    ex = exit_curriculum(problems_per_round=10, buffer_share=0.3)
    assert ex.propose(task, random.Random(5)) == Uniform(2, 3, 10).propose(task, random.Random(5))
    ex.buffer = {Problem(P.prompt, 3, P.data, "3*5=15;"): 0.2, Problem(Q.prompt, 3, Q.data, "2*4=8;"): 0.1}
    proposed = ex.propose(task, random.Random(5))
    assert len(proposed) == 10 and sum(bool(p.prefix) for p in proposed) == 2  # 3 asked, 2 in the buffer
    ex.buffer |= {Problem(R.prompt, 3, R.data, "1+2=3;"): 0.3, Problem(P.prompt, 3, P.data, "3+5=8;"): 0.1}
    assert sum(bool(p.prefix) for p in ex.propose(task, random.Random(5))) == 3


def test_exit_state_round_trips_exactly():
    ex = exit_curriculum(problems_per_round=6, buffer_share=0.5)
    ex.update(outcome([(P, [("3*5=15;15+7=22", 1.0), ("3+5=8;8*7=56", 1 / 3)]),
                       (Q, [("2*4=8;8+6=14", 1.0), ("2+4=6;6*6=36", 0.1)])]))
    again = exit_curriculum(problems_per_round=6, buffer_share=0.5)
    again.load_state_dict(checkpointed(ex.state_dict()))
    assert list(again.buffer.items()) == list(ex.buffer.items())
    assert [p.data for p in again.buffer] == [p.data for p in ex.buffer]
    rng = random.Random(1)
    state = rng.getstate()
    expected = ex.propose(TASK, rng)
    rng.setstate(state)
    got = again.propose(TASK, rng)
    assert got == expected and [p.data for p in got] == [p.data for p in expected]


class Scripted:
    """A policy that answers "9" after whatever it is given, and records what that was."""

    def __init__(self):
        self.tokenizer = SimpleNamespace(encode=list)  # a character a token
        self.calls = []

    def generate(self, prompts, limits, *, prefixes=None, **decoding):
        self.calls.append((list(prompts), list(limits), prefixes))
        return [Completion("9", [9], [0.0]) for _ in prompts]


def test_a_buffer_problems_attempt_begins_with_its_prefix():
    begun = Problem(P.prompt, 3, P.data, "3*5=15;")
    policy = Scripted()
    attempts = sample_attempts([policy], TASK, [P, begun], samples=2)
    assert [a.text for a in attempts] == ["9", "9", "3*5=15;9", "3*5=15;9"]
    assert [a.tokens for a in attempts] == [1] * 4  # the tokens sampled: the prefix is not
    assert policy.calls[0][2] == ["", "", "3*5=15;", "3*5=15;"]
    sample_attempts([policy], TASK, [P], samples=1)
    assert policy.calls[1][2] is None  # no prefix: generate is called as before
    # our model goes on from the prefix: its continuation is what it writes after prompt + prefix
    tok = tokenizer_for(TASK.alphabet, control=False)
    model = Transformer(TransformerConfig(vocab_size=tok.vocab_size, n_layers=1, d_model=16, n_heads=2, d_ff=32,
                                          max_len=40)).eval()
    char = CharPolicy(model, tok)
    [a] = sample_attempts([char], TASK, [begun])
    [plain] = char.generate([P.prompt + begun.prefix], [None])
    assert a.text == begun.prefix + plain.text and a.tokens == len(plain.ids)


def test_exit_is_refused_where_it_cannot_run():
    with pytest.raises(RecipeError, match=r"curriculum.type = 'exit'.*task.name = 'reversed-addition'"):
        load_recipe(resolve("star"), ["curriculum.type=exit", "task.name=reversed-addition"])
    with pytest.raises(RecipeError, match=r"curriculum.type = 'exit'.*sampler.type = 'mcts'"):
        load_recipe(resolve("rest-mcts"), ["curriculum.type=exit"])
    with pytest.raises(RecipeError, match="slow"):
        load_recipe(resolve("star"), ["curriculum.type=learning-progress", "curriculum.fast=0.1"])


# ---- in a real run -------------------------------------------------------------------------------------

RECIPE = countdown_header(3, 3, 48) + """
[sampler]
type = "temperature"
samples = 4
[[judges]]
type = "self-certainty"
threshold = 0.06
[selector]
type = "threshold"
threshold = 0.0
[learner]
seed_steps = 30
steps_per_round = 4
batch_size = 16
[curriculum]
type = "{type}"
problems_per_round = 12
max_difficulty = 4
[monitor]
eval_per_difficulty = 4
eval_max_difficulty = 4
"""


@pytest.mark.parametrize("kind", ["exit", "learning-progress"])
def test_a_run_resumed_from_its_first_round_ends_where_the_uninterrupted_one_ends(tmp_path, kind):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(RECIPE.replace("{type}", kind))
    out = tmp_path / "run"
    reports = Run(load_recipe(recipe), out).execute()
    expected = run_fingerprint(out)
    if kind == "exit":  # the self-certainty reward spreads every group: round 2 poses partial solutions
        assert reports[1].figures["exit_buffer"] > 0 and reports[2].figures["exit_share"] > 0
    else:
        assert sum(reports[1].figures[f"lp_choice_{d}"] for d in (2, 3, 4)) == pytest.approx(1.0)
    Run.resume(out, from_round=1).continue_run()
    assert run_fingerprint(out) == expected
