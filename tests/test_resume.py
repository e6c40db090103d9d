"""Exact resume: a run killed with SIGKILL at a named point and resumed ends bitwise where an
uninterrupted run ends. Every run here is a real process, killed for real."""

import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from selftaught import faults
from selftaught.cli import app
from selftaught.store import RunInUseError, RunStore
from selftaught.store.fingerprint import run_fingerprint as fingerprint

runner = CliRunner()

RECIPE = """
[run]
rounds = 3
seed = 7
time_budget_minutes = 0
[task]
name = "reversed-addition"
seed_max_difficulty = 3
seed_examples = 300
[model]
n_layers = 1
d_model = 32
n_heads = 4
d_ff = 64
members = 2
[sampler]
type = "temperature"
temperature = 1.0
batch_size = 24
[[judges]]
type = "length"
[learner]
seed_steps = 20
steps_per_round = 10
batch_size = 32
[curriculum]
problems_per_round = 48
gate = 0.0
[monitor]
eval_per_difficulty = 8
"""


def selftaught(*args: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != faults.ENV}
    if kill_at:
        env[faults.ENV] = kill_at
    return subprocess.run([sys.executable, "-m", "selftaught.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("resume")
    recipe = root / "tiny.toml"
    recipe.write_text(RECIPE)
    out = root / "reference"
    done = selftaught("run", str(recipe), "--out", str(out))
    assert done.returncode == 0, done.stderr
    return recipe, out, fingerprint(out)


# Each chain kills a run, kills its resume at a later point, and so on: every kill point is checked,
# and so is resuming a run that was itself resumed. Two chains, not one test a point: a process
# start and a whole run less for each point.
@pytest.mark.parametrize("chain", [("learn:0", "sample:2", "checkpoint:2"), ("commit:0", "learn:2", "commit:2")])
def test_killed_and_resumed_run_is_bitwise_identical(reference, tmp_path, chain):
    recipe, _, expected = reference
    assert expected["final_round"] == 3
    out = tmp_path / "run"
    for i, kill_at in enumerate(chain):
        args = ("run", str(recipe), "--out", str(out)) if i == 0 else ("resume", str(out))
        killed = selftaught(*args, kill_at=kill_at)
        assert killed.returncode == -signal.SIGKILL, (kill_at, killed.stderr)
        point, round_ = kill_at.split(":")
        with RunStore(out) as store:  # only whole rounds were committed
            assert store.last_round() == (None if round_ == "0" else int(round_) - 1), kill_at
        if point == "checkpoint":  # the files were on disk, the round was not: resume must redo it
            assert (out / "checkpoints" / f"round-{round_}").is_dir()
    resumed = selftaught("resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert fingerprint(out) == expected


def test_a_finished_run_given_more_rounds_ends_where_a_run_given_them_from_the_start_ends(reference, tmp_path):
    """`resume --set run.rounds=N` on a run that finished at fewer: bitwise the longer run, and the
    store and recipe.toml say what changed."""
    recipe, _, expected = reference
    out = tmp_path / "run"
    short = selftaught("run", str(recipe), "--set", "run.rounds=1", "--out", str(out))
    assert short.returncode == 0, short.stderr
    again = selftaught("resume", str(out))  # finished: nothing to do, and it says how to go on
    assert again.returncode == 0 and "--set run.rounds=N" in " ".join(again.stdout.split())
    longer = selftaught("resume", str(out), "--set", "run.rounds=3")
    assert longer.returncode == 0, longer.stderr
    assert "run.rounds: 1 → 3" in longer.stdout
    assert fingerprint(out) == expected
    with RunStore(out) as store:
        info = store.run_info()
    assert info["recipe"]["run"]["rounds"] == 3
    assert [(c["after_round"], c["set"]) for c in info["limit_changes"]] == [(1, {"run.rounds": 3})]
    assert "rounds = 3" in (out / "recipe.toml").read_text()


def test_only_a_runs_limits_change_on_resume(reference, tmp_path):
    _, finished, _ = reference
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and not p.name.endswith(("-shm", "-wal"))}
    for setting, words in [("model.d_model=64", ["--set model.d_model", "only run.rounds", "different recipe"]),
                           ("run.seed=3", ["--set run.seed", "only run.rounds"]),
                           ("run.rounds=2", ["run.rounds=2", "committed round 3 already"]),
                           ("run.rounds=many", ["--set run.rounds", "expected int"])]:
        result = runner.invoke(app, ["resume", str(run), "--set", setting])
        assert result.exit_code == 2, (setting, result.output)
        line = " ".join(result.stderr.split())
        assert all(w in line for w in words), (setting, line)
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and not p.name.endswith(("-shm", "-wal"))}
    assert after == before


ON_POLICY_GRPO = """
[run]
rounds = 2
seed = 3
[task]
name = "countdown"
seed_min_difficulty = 2
seed_max_difficulty = 3
seed_examples = 400
[model]
n_layers = 2
d_model = 64
n_heads = 4
d_ff = 128
max_len = 64
[sampler]
type = "temperature"
samples = 4
batch_size = 24
[[judges]]
type = "verifier"
[selector]
type = "groups"
[learner]
type = "grpo"
on_policy = true
lr = 0.0003
beta = 0.1
seed_steps = 150
seed_lr = 0.003
seed_batch_size = 64
steps_per_round = 6
[curriculum]
type = "uniform"
problems_per_round = 30
[monitor]
eval_per_difficulty = 8
eval_ahead = 0
pass_k = 4
"""


@pytest.mark.slow(12)
def test_on_policy_grpo_killed_while_it_samples_between_steps_resumes_bitwise(tmp_path):
    """Here sampling, judging and learning interleave inside one phase; the round still commits whole."""
    recipe = tmp_path / "grpo.toml"
    # ten problems a step: with five, seed 3's last three steps of round 2 drew no mixed group on
    # one machine, so nothing was learned after the kill point and the test proved nothing
    recipe.write_text(ON_POLICY_GRPO.replace("problems_per_round = 30", "problems_per_round = 60"))
    done = selftaught("run", str(recipe), "--out", str(tmp_path / "reference"))
    assert done.returncode == 0, done.stderr
    expected = fingerprint(tmp_path / "reference")
    assert expected["final_round"] == 2 and len(expected["attempts"]) == 2 * 60 * 4
    with RunStore(tmp_path / "reference") as store:  # round 2 learned after the kill point, so resuming matters
        assert any(int(a["reason"].split()[4].rstrip(";")) >= 3 for a in store.attempts(2, kept=True, limit=200))
    out = tmp_path / "run"
    killed = selftaught("run", str(recipe), "--out", str(out), kill_at="learn:2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with RunStore(out) as store:
        assert store.last_round() == 1
    resumed = selftaught("resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert fingerprint(out) == expected


TWO_TURN_GRPO = (ON_POLICY_GRPO.replace('type = "temperature"\nsamples = 4\n',
                                        'type = "revise"\nsamples = 4\nrevisions = 2\n')
                 .replace('type = "groups"', 'type = "revisions"\nshaping = 10.0')
                 .replace('on_policy = true', 'on_policy = true\nsft_rounds = 1'))


@pytest.mark.slow(30)
def test_two_turn_grpo_killed_in_its_sft_and_its_rl_round_resumes_bitwise(tmp_path):
    """Round 1 learns by SFT on correction traces (its data must come back from the store), round 2
    by GRPO on revision groups sampled between its steps. Killed in round 1, resumed, killed again in
    round 2, resumed."""
    recipe = tmp_path / "two-turn.toml"
    recipe.write_text(TWO_TURN_GRPO)
    done = selftaught("run", str(recipe), "--out", str(tmp_path / "reference"))
    assert done.returncode == 0, done.stderr
    expected = fingerprint(tmp_path / "reference")
    # round 1 revises each first attempt once, round 2 twice
    assert expected["final_round"] == 2 and len(expected["attempts"]) == 30 * 4 + 30 * 4 * 2
    out = tmp_path / "run"
    killed = selftaught("run", str(recipe), "--out", str(out), kill_at="learn:1")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    killed = selftaught("resume", str(out), kill_at="learn:2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with RunStore(out) as store:
        assert store.last_round() == 1
    resumed = selftaught("resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert fingerprint(out) == expected


def test_damaged_checkpoint_is_never_loaded_and_from_round_falls_back(reference, tmp_path):
    _, ref_dir, expected = reference
    out = tmp_path / "run"
    shutil.copytree(ref_dir, out)
    weights = out / "checkpoints" / "round-3" / "member-1" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    before = snapshot(out)

    failed = selftaught("resume", str(out))
    assert failed.returncode == 2
    assert str(weights) in failed.stderr and "checksum" in failed.stderr and "--from-round 2" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert changed(before, snapshot(out)) == []

    resumed = selftaught("resume", str(out), "--from-round", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert fingerprint(out) == expected  # round 3 done again, from round 2's state, exactly


def test_a_second_writer_is_told_the_pid_of_the_first(reference, tmp_path):
    _, ref_dir, _ = reference
    out = tmp_path / "run"
    shutil.copytree(ref_dir, out)
    with RunStore(out, write=True):
        with pytest.raises(RunInUseError, match=f"in use by PID {os.getpid()}"):
            RunStore(out, write=True)
        other = selftaught("resume", str(out))
        assert other.returncode == 2 and f"in use by PID {os.getpid()}" in other.stderr
    with RunStore(out, write=True):  # released with its holder
        pass


def snapshot(run_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file()}


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Files added, removed or modified, apart from SQLite's own shared-memory/WAL files of a reader."""
    names = set(before) | set(after)
    return sorted(n for n in names if before.get(n) != after.get(n) and not n.endswith(("-shm", "-wal")))


def bad_runs(ref_dir: Path, root: Path) -> dict[str, tuple[Path, str]]:
    """Each kind of bad run directory, with what its message must say."""
    cases = {}
    empty = root / "empty"
    empty.mkdir()
    cases["not a run"] = (empty, "not a selftaught run")

    newer = root / "newer"
    shutil.copytree(ref_dir, newer)
    db = sqlite3.connect(newer / "run.sqlite")
    with db:
        db.execute("UPDATE run SET value = '99' WHERE key = 'schema_version'")
    db.close()
    cases["newer schema"] = (newer, "newer selftaught")

    truncated = root / "truncated"
    shutil.copytree(ref_dir, truncated)
    db_file = truncated / "run.sqlite"
    db_file.write_bytes(db_file.read_bytes()[:6000])
    cases["truncated"] = (truncated, "truncated or")

    missing = root / "missing"
    shutil.copytree(ref_dir, missing)
    (missing / "checkpoints" / "round-3" / "member-0" / "optimizer.pt").unlink()
    cases["missing checkpoint"] = (missing, "optimizer.pt: checkpoint file is missing")
    return cases


def test_bad_run_directories_get_one_line_exit_2_and_stay_untouched(reference, tmp_path):
    _, ref_dir, _ = reference
    for name, (run_dir, says) in bad_runs(ref_dir, tmp_path).items():
        commands = [["resume", str(run_dir)]]
        if name != "missing checkpoint":  # readers need no checkpoint
            commands += [["summary", str(run_dir)], ["inspect", str(run_dir), "--round", "1"],
                         ["report", str(run_dir)]]
        for command in commands:
            before = snapshot(run_dir)
            result = runner.invoke(app, command)
            assert result.exit_code == 2, (name, command, result.output)
            message = " ".join(result.stderr.split())  # rich wraps long lines
            assert says in message and str(run_dir) in message, (name, command, message)
            assert result.exception is None or isinstance(result.exception, SystemExit)
            assert changed(before, snapshot(run_dir)) == [], (name, command)
