"""The loop end to end on tiny settings: ground truth never reaches selection, and the model learns."""

import threading
from pathlib import Path

import pytest

import selftaught.engine.loop as loop
from selftaught.engine import Run
from selftaught.recipe import load_recipe
from selftaught.store import RunStore
from selftaught.tasks import ReversedAddition

_monitoring = threading.local()
SEED_MAX = 3


class GuardedAddition(ReversedAddition):
    """Reversed addition whose ground truth raises outside the monitor. ``target`` is allowed for
    the seed data only, which is the one place the recipe grants ground-truth labels."""

    calls = {"check": 0, "target": 0}

    def check(self, problem, answer):
        if not getattr(_monitoring, "on", False):
            raise AssertionError("ground truth (check) used outside the monitor")
        GuardedAddition.calls["check"] += 1
        return super().check(problem, answer)

    def target(self, problem):
        if problem.difficulty > SEED_MAX and not getattr(_monitoring, "on", False):
            raise AssertionError(f"ground-truth target used for an unseen difficulty {problem.difficulty}")
        GuardedAddition.calls["target"] += 1
        return super().target(problem)


def monitored(fn):
    def wrapper(*args, **kwargs):
        _monitoring.on = True
        try:
            return fn(*args, **kwargs)
        finally:
            _monitoring.on = False
    return wrapper


TINY = f"""
[run]
rounds = 2
[task]
name = "test_loop:GuardedAddition"
seed_max_difficulty = {SEED_MAX}
seed_examples = 500
[model]
n_layers = 2
d_model = 32
n_heads = 4
d_ff = 64
members = 2
[[judges]]
type = "length"
[[judges]]
type = "consistency"
[[judges]]
type = "majority-vote"
min_agreement = 1.0
[learner]
seed_steps = 20
steps_per_round = 5
batch_size = 32
[curriculum]
problems_per_round = 100
gate = 0.0
[monitor]
eval_per_difficulty = 16
"""


def test_selection_never_touches_ground_truth(tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "accuracy_by_difficulty", monitored(loop.accuracy_by_difficulty))
    monkeypatch.setattr(loop, "label_precision", monitored(loop.label_precision))
    GuardedAddition.calls.update(check=0, target=0)
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    reports = Run(load_recipe(path), tmp_path / "run").execute()
    assert [r.round for r in reports] == [0, 1, 2]
    assert reports[-1].made == 2 * 100  # two members answered every problem
    assert GuardedAddition.calls["check"] > 0  # the monitor did grade, inside the guard
    # and the guard bites: outside the monitor, check raises
    with pytest.raises(AssertionError, match="outside the monitor"):
        GuardedAddition().check(GuardedAddition().make(1, 2), "30")


def test_run_store_holds_every_round(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.replace("test_loop:GuardedAddition", "reversed-addition"))
    reports = Run(load_recipe(path), tmp_path / "run").execute()
    with RunStore(tmp_path / "run") as store:
        assert [r["round"] for r in store.rounds()] == [0, 1, 2]
        assert store.metric("labels_made") == {1: 200.0, 2: 200.0}
        acc = store.metric_by_difficulty("accuracy")
        assert acc[2] == reports[2].accuracy
        assert store.run_info()["recipe"]["model"]["members"] == 2
    assert (tmp_path / "run" / "recipe.toml").is_file()
    assert (tmp_path / "run" / "checkpoints" / "round-2" / "member-1" / "model.safetensors").is_file()


LEARN = """
[run]
rounds = 3
seed = 0
[task]
seed_max_difficulty = 3
seed_examples = 20000
[model]
n_layers = 3
d_model = 64
n_heads = 4
d_ff = 256
[[judges]]
type = "length"
[[judges]]
type = "consistency"
[learner]
lr = 0.003
batch_size = 64
seed_steps = 700
steps_per_round = 150
[curriculum]
problems_per_round = 1000
gate = 0.6
[monitor]
eval_per_difficulty = 128
eval_ahead = 2
"""


def test_self_improvement_raises_accuracy_beyond_the_taught_lengths(tmp_path):
    """Taught 1..3 digits with ground truth; after rounds of self-labelling with no ground truth,
    accuracy on 4 and 5 digits must rise well above the seed model's."""
    path = Path(tmp_path) / "learn.toml"
    path.write_text(LEARN)
    reports = Run(load_recipe(path), tmp_path / "run").execute()
    seed, last = reports[0], reports[-1]
    assert min(seed.accuracy[d] for d in (1, 2, 3)) >= 0.9  # the seed model learned what it was taught
    before = (seed.accuracy[4] + seed.accuracy[5]) / 2
    after = (last.accuracy[4] + last.accuracy[5]) / 2
    assert after >= before + 0.25, (before, after, [r.accuracy for r in reports])
    assert last.frontier >= 5
