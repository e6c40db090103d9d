"""Tree search inside self-training (ReST-MCTS*): the tree's arithmetic against hand computations,
stop strings that end a step while decoding, a search that an oracle value steers to every answer,
the same tree after a SIGKILL and resume, and bad settings refused in one line."""

import itertools
import math
import os
import random
import signal
import subprocess
import sys

import pytest
import torch

from selftaught import faults
from selftaught.builtin_recipes import resolve
from selftaught.cli import search_path
from selftaught.judge.filters import Score
from selftaught.judge.process_value import label
from selftaught.models.char_policy import CharPolicy
from selftaught.models.transformer import TransformerConfig
from selftaught.policy import Completion
from selftaught.recipe import RecipeError, load_recipe
from selftaught.sample.samplers import Request
from selftaught.sample.search import Budget, TreeSearch, tokens_of
from selftaught.sample.tree import Tree, monte_carlo_targets, prefix_tree, puct, rest_mcts_targets, select, uct
from selftaught.store import RunStore
from selftaught.store.fingerprint import run_fingerprint
from selftaught.store.sqlite import SCHEMA_VERSION
from selftaught.tasks.countdown import Countdown, apply_steps
from selftaught.tasks.tokenizer import CharTokenizer
from tiny_recipes import countdown_header

# A search recipe small enough for a test: every path of the search (steps drawn at a stop string,
# the value judge on prefixes, its teaching on the trees, the finishing of trees that ended no path),
# with the value a separate model, saved and loaded with the run's checkpoints.
SEARCH = countdown_header(2, 3, 64) + """
[sampler]
type = "mcts"
samples = 2
width = 2
iterations = 4
max_steps = 3
step_tokens = 10
batch_size = 64
[[judges]]
type = "verifier"
[[judges]]
type = "process-value"
weight = 0.1
train_problems = 24
train_steps = 4
model = "separate"
[selector]
type = "top-k"
threshold = 1.0
k = 1
[learner]
seed_steps = 20
steps_per_round = 4
batch_size = 16
[curriculum]
type = "uniform"
problems_per_round = 24
[monitor]
eval_per_difficulty = 12
eval_max_difficulty = 3
eval_ahead = 0
pass_k = 2
[engine]
shard_size = 16
"""


# ---- the tree's arithmetic ------------------------------------------------------------------------


def hand_tree() -> Tree:
    """root -> a (0.6) -> a1 (0.9), a2 (0.3);  root -> b (0.2). a grown once, with two children."""
    tree = Tree()
    a = tree.add(0, "a;", 0.6, False, prior=0.7)
    b = tree.add(0, "b;", 0.2, False, prior=0.3)
    tree.backup(0, [0.6, 0.2])
    tree.add(a, "a1", 0.9, True)
    tree.add(a, "a2", 0.3, False)
    tree.backup(a, [0.9, 0.3])
    tree.nodes[0].expansions = tree.nodes[a].expansions = 1
    assert (a, b) == (1, 2)
    return tree


def test_backup_counts_every_evaluation_once_along_its_path():
    tree = hand_tree()
    root, a, b = tree.nodes[0], tree.nodes[1], tree.nodes[2]
    assert (root.visits, a.visits, b.visits) == (4, 3, 1)
    assert a.q == pytest.approx((0.6 + 0.9 + 0.3) / 3)
    assert root.q == pytest.approx((0.6 + 0.2 + 0.9 + 0.3) / 4)
    assert tree.prefix(3) == "a;a1" and tree.path(3) == [1, 3] and tree.depth(4) == 2


def test_uct_and_puct_pick_the_child_their_formulas_rank_first():
    tree = hand_tree()
    root, a, b = tree.nodes[0], tree.nodes[1], tree.nodes[2]
    # by hand: UCT(a) = 0.6 + c*sqrt(ln 4 / 3), UCT(b) = 0.2 + c*sqrt(ln 4 / 1)
    assert uct(root, a, 0.4) == pytest.approx(0.6 + 0.4 * math.sqrt(math.log(4) / 3))
    assert uct(root, b, 0.4) == pytest.approx(0.2 + 0.4 * math.sqrt(math.log(4)))
    # PUCT(a) = 0.6 + c*0.7*sqrt(4)/4, PUCT(b) = 0.2 + c*0.3*sqrt(4)/2
    assert puct(root, a, 2.0) == pytest.approx(0.6 + 2.0 * 0.7 * 2 / 4)
    assert puct(root, b, 2.0) == pytest.approx(0.2 + 2.0 * 0.3 * 2 / 2)
    # 4 visits and 1 expansion at the root: floor(sqrt(4)) = 2 > 1, so new steps are drawn there
    assert select(tree, uct, 0.4) == 0
    tree.nodes[0].expansions = 2
    # then UCT: a (0.872) over b (0.671); at a (3 visits, 1 expansion: floor(sqrt(3)) = 1) its one
    # unended child a2 is grown
    assert select(tree, uct, 0.4) == 4
    assert select(tree, uct, 3.0) == 2  # c = 3: b (0.2 + 3·1.177 = 3.73) over a (2.64)
    # a node whose children are all answers draws new steps; PUCT goes the same way here (only a is open)
    tree.nodes[2].terminal = tree.nodes[4].terminal = True
    assert select(tree, uct, 0.4) == 1 and select(tree, puct, 2.0) == 1


def labelled_tree() -> Tree:
    """root -> x -> x1 -> x1a (correct) ; x1 -> x1b (wrong) ; x -> x2 (wrong) ; root -> y -> y1
    (wrong) ; root -> z (open, nothing ended below it)."""
    tree = Tree()
    x = tree.add(0, "x;", 0, False)
    x1 = tree.add(x, "x1;", 0, False)
    tree.add(x1, "x1a", 0, True)
    tree.add(x1, "x1b", 0, True)
    tree.add(x, "x2", 0, True)
    y = tree.add(0, "y;", 0, False)
    tree.add(y, "y1", 0, True)
    tree.add(0, "z;", 0, False)
    for i, right in {3: True, 4: False, 5: False, 7: False}.items():
        tree.nodes[i].correct = right
    return tree


def test_rest_mcts_targets_equal_the_formula_worked_by_hand():
    """V_k = max(0, V_{k-1} + (1 - V_{k-1}) r_k / m_k), V_0 = 0, m_k counting step k:
    x: r=+1, 3 steps to x1a -> 0 + 1/3 = 1/3;  x1: r=+1, m=2 -> 1/3 + (2/3)/2 = 2/3;
    x1a: m=1 -> 2/3 + 1/3 = 1;  x1b: r=-1, m=1 -> max(0, 2/3 - 1/3) = 1/3;
    x2: r=-1, m=1 -> max(0, 1/3 - 2/3) = 0;  y: r=-1, m=2 -> max(0, -1/2) = 0;  y1: 0;  z: unlabelled."""
    targets = rest_mcts_targets(labelled_tree())
    assert targets.keys() == {1, 2, 3, 4, 5, 6, 7}
    for node, want in {1: 1 / 3, 2: 2 / 3, 3: 1.0, 4: 1 / 3, 5: 0.0, 6: 0.0, 7: 0.0}.items():
        assert targets[node] == pytest.approx(want), node


def test_monte_carlo_targets_are_the_share_of_correct_answers_below():
    targets = monte_carlo_targets(labelled_tree())
    assert targets == pytest.approx({1: 1 / 3, 2: 1 / 2, 3: 1.0, 4: 0.0, 5: 0.0, 6: 0.0, 7: 0.0})


def test_ended_paths_are_labelled_by_the_checker_or_without_ground_truth_by_the_value():
    class NoTruth(Countdown):
        def check(self, problem, answer):
            raise AssertionError("labels = 'verdict' must not use the checker")

    tree = Tree()
    a = tree.add(0, "1+2=3;", 0.4, False)
    tree.add(a, "3*3=9", 0.7, True)
    tree.add(a, "3+3=6", 0.2, True)
    problem = Countdown().sample(random.Random(0), 2)
    label(NoTruth(), problem, tree, 0.5)
    assert [tree.nodes[i].correct for i in tree.terminals()] == [True, False]
    numbers, target, _ = problem.data
    label(Countdown(), problem, tree, None)
    assert [tree.nodes[i].correct for i in tree.terminals()] == [apply_steps(list(numbers), ["1+2=3", s]) == target
                                                                 for s in ("3*3=9", "3+3=6")]


def test_sampled_answers_form_the_tree_of_their_shared_steps():
    tree = prefix_tree(["1+2=3;3*3=9", "1+2=3;3+3=6", "1+2=3;3*3=9", "2*3=6"], ";")
    assert [n.step for n in tree.nodes] == ["", "1+2=3;", "3*3=9", "3+3=6", "2*3=6"]
    assert [n.parent for n in tree.nodes] == [None, 0, 1, 1, 0]
    assert tree.terminals() == [2, 3, 4]


def test_the_stored_path_is_found_from_the_answer_it_wrote():
    tree = labelled_tree()
    rows = [{"node": k, "parent": n.parent, "step": n.step, "terminal": n.terminal} for k, n in enumerate(tree.nodes)]
    assert search_path(rows, "x;x1;x1b") == [1, 2, 4]
    assert search_path(rows, "x;x1") == []  # not an ended path of the tree


# ---- stop strings while decoding ------------------------------------------------------------------


def test_a_stop_string_ends_a_reply_where_it_is_written():
    """Greedy replies with stop=';' are the unstopped replies cut just after their first ';', and
    decoding stopped there (no token was drawn past it)."""
    torch.manual_seed(0)
    tok = CharTokenizer(Countdown().alphabet)
    policy = CharPolicy.create(TransformerConfig(vocab_size=tok.vocab_size, n_layers=1, d_model=32, n_heads=4,
                                                 d_ff=64, max_len=64), tok)
    with torch.no_grad():
        for p in policy.model.parameters():
            p.normal_(0, 0.5)
    prompts = [f"{a},{b},{c}:{t}=" for a, b, c, t in itertools.product((1, 7), (3, 9), (2,), (12, 40))]
    whole = policy.generate(prompts, [30] * len(prompts))
    stopped = policy.generate(prompts, [30] * len(prompts), stop=(";",))
    assert any(";" in c.text for c in whole) and any(";" not in c.text for c in whole)
    for w, s in zip(whole, stopped):
        cut = w.text[: w.text.index(";") + 1] if ";" in w.text else w.text
        assert s.text == cut and len(s.ids) == len(cut)


# ---- the search ----------------------------------------------------------------------------------


class RandomSteps:
    """A stand-in policy that writes valid countdown steps at random (never the answer it is asked
    for): each reply is one step on two numbers still available, ending the answer (no separator)
    when one number would be left, else with probability 1/2."""

    max_len = 64

    def generate(self, prompts, limits, *, temperature=0.0, generator=None, stop=(), prefixes=None, **_):
        out = []
        for prompt in (prompts if prefixes is None else [p + x for p, x in zip(prompts, prefixes)]):
            head, steps = prompt.split("=", 1)
            pool = [int(x) for x in head.split(":")[0].split(",")]
            for step in filter(None, steps.split(";")):
                lhs, made = step.split("=")
                k = next(k for k in range(1, len(lhs)) if lhs[k] in "+-*")
                pool.remove(int(lhs[:k]))
                pool.remove(int(lhs[k + 1:]))
                pool.append(int(made))
            draw = (lambda n: int(torch.randint(n, (1,), generator=generator))) if temperature > 0 else (lambda n: 0)
            i, j = (0, 1) if temperature == 0 else torch.randperm(len(pool), generator=generator)[:2].tolist()
            x, y = max(pool[i], pool[j]), min(pool[i], pool[j])
            op = "+-*"[draw(3)]
            value = {"+": x + y, "-": x - y, "*": x * y}[op]
            ends = len(pool) == 2 or draw(2) == 0
            text = f"{x}{op}{y}={value}" + ("" if ends else ";")
            out.append(Completion(text, list(range(len(text))), [-0.5] * len(text)))
        return out


def reachable(pool: list[int], target: int) -> bool:
    """Whether some further steps (at least one) make ``target`` last, by brute force."""
    for i, j in itertools.permutations(range(len(pool)), 2):
        x, y = pool[i], pool[j]
        rest = [p for k, p in enumerate(pool) if k not in (i, j)]
        for made in (x + y, x - y, x * y):
            if made >= 0 and (made == target or (rest and reachable(rest + [made], target))):
                return True
    return False


def oracle(task: Countdown, attempts) -> list[Score]:
    """1 where a correct answer can still be reached (or is reached), else 0: ground truth."""
    out = []
    for a in attempts:
        numbers, target, _ = a.problem.data
        if a.finished:
            v = float(task.check(a.problem, a.text))
        else:
            steps = a.text.rstrip(";").split(";")
            made = apply_steps(list(numbers), steps)
            pool = list(numbers)
            for s in steps:  # what is left after the steps
                lhs, res = s.split("=")
                k = next(k for k in range(1, len(lhs)) if lhs[k] in "+-*")
                pool.remove(int(lhs[:k]))
                pool.remove(int(lhs[k + 1:]))
                pool.append(int(res))
            v = float(made is not None and len(pool) > 1 and reachable(pool, target))
        out.append(Score("oracle", v, v > 0, ""))
    return out


def request(task, score) -> Request:
    from contextlib import nullcontext

    class Bar:
        def advance(self, n=1):
            pass

    return Request(1.0, False, False, lambda attempts: {}, lambda name, total: nullcontext(Bar()),
                   torch.Generator().manual_seed(0), score=lambda name, attempts: score(task, attempts))


def test_a_search_steered_by_an_oracle_value_solves_every_small_countdown_problem():
    """Budget: 32 iterations of width 6 a tree (24 of width 3 left 3 of the 40 unsolved: the stand-in
    draws a given first step 1 time in 18). Steps come at random; only the value knows where the
    answer is: a flat value (0.5 everywhere) on the same budget returns a right answer by chance."""
    task = Countdown()
    rng = random.Random(1)
    problems = [task.sample(rng, 3) for _ in range(40)]
    search = TreeSearch("mcts", Budget(32, 0, 6, 3, 16), "uct", 0.4, "oracle", 1, 1.0, 0, 1.0, 64)
    got = search.sample([RandomSteps()], task, problems, request(task, oracle)).attempts
    assert [a.problem_id for a in got] == list(range(40))
    assert all(task.check(a.problem, a.text) for a in got)
    flat = search.sample([RandomSteps()], task, problems,
                         request(task, lambda t, attempts: [Score("flat", 0.5, True, "")] * len(attempts))).attempts
    assert sum(task.check(a.problem, a.text) for a in flat) < 20
    assert tokens_of(got) == sum(a.tree.tokens for a in got)  # one answer a tree here


class LongLines:
    """A stand-in policy whose every step runs to its token budget without a separator."""

    max_len = 64

    def generate(self, prompts, limits, *, temperature=0.0, generator=None, stop=(), **_):
        return [Completion("7" * (n or 8), [7] * (n or 8), [-0.1] * (n or 8)) for n in limits]


def test_a_step_cut_by_its_budget_is_continued_not_taken_for_an_answer():
    task = Countdown()
    problems = [task.sample(random.Random(3), 3)]
    search = TreeSearch("mcts", Budget(20, 0, 1, 3, 4), "uct", 0.4, "oracle", 1, 1.0, 0, 1.0, 64)
    flat = request(task, lambda t, attempts: [Score("flat", 0.5, True, "")] * len(attempts))
    tree = search.sample([LongLines()], task, problems, flat).attempts[0].tree
    # one chain (a step drawn again is the same child): two cut steps go on, the third is an answer
    # only because it is max_steps deep
    assert [(n.step, n.terminal) for n in tree.nodes[1:]] == [("7777", False), ("7777", False), ("7777", True)]


def test_a_token_budget_stops_each_tree_once_spent():
    task = Countdown()
    problems = [task.sample(random.Random(2), 3) for _ in range(10)]
    search = TreeSearch("mcts", Budget(100, 30, 3, 3, 16), "uct", 0.4, "oracle", 1, 1.0, 0, 1.0, 64)
    got = search.sample([RandomSteps()], task, problems, request(task, oracle)).attempts
    for a in got:  # a tree stops at the first iteration that reaches 30 tokens; one iteration draws < 3 * 12
        assert a.tree.tokens < 30 + 3 * 12 and a.tree.iterations < 100


@pytest.mark.parametrize("overrides, message", [
    (["sampler.width=0"], r"sampler.width: expected a value in 1 .*found 0"),
    (['sampler.value="self-verdict"'], r"sampler.value = 'self-verdict' names no judge of this recipe"),
    (['task.name="reversed-addition"'], r"sampler.type = 'mcts' searches over steps.*reversed-addition"),
    (['sampler.selection="best"'], r"sampler.selection"),
])
def test_bad_search_settings_are_one_line_errors(tmp_path, overrides, message):
    path = tmp_path / "search.toml"
    path.write_text(SEARCH)
    load_recipe(path)
    with pytest.raises(RecipeError, match=message) as e:
        load_recipe(path, overrides)
    assert "\n" not in str(e.value)


def test_the_rest_mcts_recipe_loads():
    recipe = load_recipe(resolve("rest-mcts"))
    assert recipe.sampler.type == "mcts" and [j.type for j in recipe.judges] == ["verifier", "process-value"]


# ---- a run that searches --------------------------------------------------------------------------


def selftaught(*args: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != faults.ENV} | ({faults.ENV: kill_at} if kill_at else {})
    return subprocess.run([sys.executable, "-m", "selftaught.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.slow(20)
def test_a_search_run_killed_mid_search_resumes_to_the_same_trees(tmp_path):
    path = tmp_path / "search.toml"
    path.write_text(SEARCH)
    done = selftaught("run", str(path), "--out", str(tmp_path / "reference"))
    assert done.returncode == 0, done.stderr
    expected = run_fingerprint(tmp_path / "reference")
    assert len(expected["nodes"]) > 2 * 24 * 3  # trees of every problem of both rounds were stored
    killed = selftaught("run", str(path), "--out", str(tmp_path / "run"), kill_at="sample:2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = selftaught("resume", str(tmp_path / "run"))
    assert resumed.returncode == 0, resumed.stderr
    assert run_fingerprint(tmp_path / "run") == expected
    # every stored answer of a search is an ended path of its problem's stored tree
    with RunStore(tmp_path / "run") as store:
        for row in store.attempts(2, limit=48):
            assert search_path(store.tree(2, row["problem"], row["member"]), row["text"]), row["text"]
        assert {"value_step_auroc", "value_step_accuracy", "sampled_tokens"} <= set(store.metric_names())
        # every stored node's step was drawn at least once (a character a token), and no tree drew past
        # its budget of iterations x width steps of step_tokens each (a finished tree's greedy tail aside)
        drawn = store.db.execute("SELECT SUM(LENGTH(step)) FROM nodes WHERE round = 2").fetchone()[0]
        assert drawn <= store.metric("sampled_tokens")[2] <= 24 * (4 * 2 * 10 + 64)
        shown = selftaught("inspect", str(tmp_path / "run"), "--attempt", str(row["id"]))
    assert shown.returncode == 0 and "search tree" in shown.stdout and "taken" in shown.stdout
    reported = selftaught("report", str(tmp_path / "run"))  # with the process value's panel
    assert reported.returncode == 0, reported.stderr


@pytest.mark.slow(15)
def test_the_smollm2_search_recipe_runs_its_rounds_on_a_tiny_llama(tmp_path):
    """The real-model recipe, its model swapped for a tiny Llama whose tokenizer writes its task:
    every step a tree grew is one line (the decoder stopped at the line's end), and the trees and
    the value's figures are stored."""
    from selftaught.engine import Run
    from selftaught.tasks.words import WordSteps
    from test_hf_policy import build_tiny

    tiny = build_tiny(tmp_path / "tiny", chars="".join(dict.fromkeys(WordSteps.alphabet + "YN?|")))
    recipe = load_recipe(resolve("smollm2-rest-mcts"), [
        'model.gguf=""', f'model.path="{tiny}"', "run.rounds=1", "curriculum.problems_per_round=6",
        "sampler.iterations=3", "sampler.step_tokens=8", "sampler.max_steps=3", "judges.1.train_steps=2",
        "judges.1.train_problems=4", "learner.steps_per_round=2", "monitor.eval_per_difficulty=2"])
    Run(recipe, tmp_path / "run").execute()
    with RunStore(tmp_path / "run") as store:
        nodes = store.db.execute("SELECT step, terminal FROM nodes WHERE round = 1").fetchall()
        assert store.metric("sampled_tokens")[1] > 0 and "value_loss" in store.metric_names()
    inner = [step for step, terminal in nodes[1:] if step and not terminal]
    # a step ends at its line's end, or its token budget cut a long line (and the next step goes on)
    assert len(nodes) > 6 and all(step.count("\n") == step.endswith("\n") for step in inner)


def test_a_store_of_the_schema_before_trees_opens_and_gains_them_when_written(tmp_path):
    import sqlite3

    with RunStore(tmp_path / "run", create=True, info={"seed": 0}):
        pass
    db = sqlite3.connect(tmp_path / "run" / "run.sqlite")
    with db:  # as schema 3 wrote it: no nodes table
        db.execute("DROP TABLE nodes")
        db.execute("UPDATE run SET value = '3' WHERE key = 'schema_version'")
    db.close()
    with RunStore(tmp_path / "run") as store:
        assert store.tree(0, 0, 0) == [] and store.last_round() is None
    with RunStore(tmp_path / "run", write=True):
        pass
    with RunStore(tmp_path / "run") as store:
        version = store.db.execute("SELECT value FROM run WHERE key = 'schema_version'").fetchone()[0]
        assert version == str(SCHEMA_VERSION) and store.db.execute("SELECT COUNT(*) FROM nodes").fetchone()[0] == 0
        assert store.proposals(0) == []
