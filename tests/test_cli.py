"""The command line, invoked in-process: exit codes, one-line errors, nothing written on bad input."""

import json

from typer.testing import CliRunner

from selftaught.cli import app

runner = CliRunner()


def test_recipes_lists_builtins():
    result = runner.invoke(app, ["recipes"])
    assert result.exit_code == 0
    assert "sit-addition" in result.output and "reversed addition" in result.output


def test_missing_recipe_file_is_one_line_exit_2(tmp_path):
    result = runner.invoke(app, ["run", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "nope.toml" in result.output and "not found" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_unknown_key_in_set_names_closest_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", "sit-addition", "--set", "learner.steps_per_rund=3", "--out", str(out)])
    assert result.exit_code == 2
    assert "sit-addition.toml" in result.output and "steps_per_round" in result.output
    assert not out.exists()


def test_unknown_task_import_path_exit_2(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", "sit-addition", "-s", 'task.name="nosuchpkg.mod:Task"', "--out", str(out)])
    assert result.exit_code == 2 and "nosuchpkg.mod" in result.output
    assert not out.exists()


def test_debug_shows_the_traceback(tmp_path):
    result = runner.invoke(app, ["run", str(tmp_path / "nope.toml"), "--debug"])
    assert result.exit_code != 2 and result.exception is not None


def test_summary_of_a_directory_that_is_not_a_run(tmp_path):
    result = runner.invoke(app, ["summary", str(tmp_path)])
    assert result.exit_code == 2 and "not a selftaught run" in result.output


def test_run_then_summary_json(tmp_path):
    out = tmp_path / "run"
    sets = ["learner.seed_steps=10", "learner.steps_per_round=2", "run.rounds=1", "curriculum.problems_per_round=32",
            "model.n_layers=1", "model.d_model=16", "model.n_heads=2", "model.d_ff=32", "task.seed_examples=100",
            "monitor.eval_per_difficulty=8"]
    args = ["run", "sit-addition", "--out", str(out), "--seed", "3"]
    for s in sets:
        args += ["--set", s]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["summary", str(out), "--json"])
    assert result.exit_code == 0
    s = json.loads(result.output)
    assert s["seed"] == 3 and [r["round"] for r in s["rounds"]] == [0, 1]
    assert s["rounds"][1]["labels_made"] == 32
    # reach agrees with the stored accuracy table
    acc = {int(d): v for d, v in s["final_accuracy"].items()}
    expected = 0
    while acc.get(expected + 1, 0) >= 0.95:
        expected += 1
    assert s["reach"] == expected
    # the same run directory cannot be reused
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "already holds a run" in result.output
