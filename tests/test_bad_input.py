"""Every bad input a user can give the command line: one line on stderr that names the file (or
option) and what to do, exit code 2, no traceback, and nothing written."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from selftaught.builtin_recipes import resolve
from selftaught.cli import app
from selftaught.recipe import load_recipe, to_dict
from selftaught.store import RunStore
from selftaught.tasks import ReversedAddition

runner = CliRunner()


def invoke(args: list[str]):
    return runner.invoke(app, args, prog_name="selftaught")  # as the installed command names itself

GOOD = """
[task]
name = "reversed-addition"
seed_max_difficulty = 3
[[judges]]
type = "length"
"""


class NeedsArguments:
    """A class that is not a task: its constructor wants arguments."""

    def __init__(self, size):
        self.size = size


@dataclass
class QuestionMarks(ReversedAddition):
    """A task whose alphabet uses the verdict mark."""

    alphabet: str = "0123456789+=?"


def recipe_with(tmp: Path, body: str, name: str = "r.toml") -> Path:
    path = tmp / name
    path.write_text(body)
    return path


def fake_run(tmp: Path, recipe: dict | None = None) -> Path:
    """A run directory holding a store and its recipe but no committed round."""
    run_dir = tmp / "a-run"
    info = {"recipe": recipe if recipe is not None else to_dict(load_recipe(resolve("star"))), "seed": 0}
    with RunStore(run_dir, create=True, info=info):
        pass
    return run_dir


def _recipe_cases():
    """(id, body of the recipe file, words the message must hold)."""
    return [
        ("invalid TOML", "[run\n", ["not valid TOML", "line 1"]),
        ("empty recipe", "", ["names no task", "[task]"]),
        ("unknown section", GOOD + "[modle]\nd_model = 3\n", ["unknown key 'modle'", "'model'"]),
        ("unknown key", GOOD + "[learner]\nsteps_per_rond = 3\n", ["learner.steps_per_rond", "steps_per_round"]),
        ("wrong type", GOOD + '[model]\nd_model = "big"\n', ["model.d_model", "expected int", "'big'"]),
        ("out of range", GOOD + "[learner]\nlr = -1.0\n", ["learner.lr", "expected a value in"]),
        ("bad choice", GOOD + '[model]\npositional = "alibi"\n', ["model.positional", "'none' | 'rope'"]),
        ("section not a table", "run = 3\n" + GOOD, ["run", "expected a table"]),
        ("judges not an array", GOOD.replace("[[judges]]", "[judges]"), ["judges", "expected an array of tables"]),
        ("array item of wrong type", GOOD + '[selector]\ntype = "bstar"\ntemperatures = ["hot"]\n',
         ["selector.temperatures[0]", "expected float"]),
        ("empty array", GOOD + '[selector]\ntype = "bstar"\ntemperatures = []\n',
         ["selector.temperatures", "non-empty"]),
        ("key of another type", GOOD + "[selector]\ntemperatures = [1.0]\n",
         ["selector.temperatures", "selector.type = 'bstar'", "not 'all-judges'"]),
        ("unknown type", GOOD + '[learner]\ntype = "ppo"\n', ["learner.type = 'ppo'", "'sft'", "'grpo'",
                                                              "package.module:ClassName"]),
        ("part that cannot be imported", GOOD + '[selector]\ntype = "no_such_module:Picky"\n',
         ["selector.type = 'no_such_module:Picky'", "cannot import module 'no_such_module'"]),
        ("parts that do not fit", GOOD + '[learner]\ntype = "dpo"\n', ["learner.type = 'dpo'", "selector.type"]),
        ("heads do not divide", GOOD + "[model]\nd_model = 30\nn_heads = 4\n", ["model.d_model", "divisible"]),
        ("process reward without steps", GOOD + '[[judges]]\ntype = "process-reward"\n',
         ["judges[1].type = 'process-reward'", "reversed-addition"]),
        ("task needs arguments", GOOD.replace('"reversed-addition"', '"test_bad_input:NeedsArguments"'),
         ["task.name", "NeedsArguments", "without arguments"]),
        ("task module raises on import", GOOD.replace('"reversed-addition"', '"bad_task_module:Task"'),
         ["task.name", "bad_task_module", "raised ZeroDivisionError"]),
        ("task module missing", GOOD.replace('"reversed-addition"', '"nosuchpkg.mod:Task"'),
         ["task.name", "cannot import", "nosuchpkg.mod"]),
        ("task class missing", GOOD.replace('"reversed-addition"', '"selftaught.tasks:NoSuchTask"'),
         ["task.name", "no attribute 'NoSuchTask'"]),
        ("unknown built-in task", GOOD.replace('"reversed-addition"', '"additon"'), ["task.name", "unknown task"]),
        ("task that is not a class", GOOD.replace('"reversed-addition"', '"os:sep"'), ["os:sep", "not a class"]),
        ("task without a checker", GOOD.replace('"reversed-addition"', '"collections:OrderedDict"'),
         ["is not a Task", "sample"]),
        ("task empty import path", GOOD.replace('"reversed-addition"', '":Task"'), ["package.module:ClassName"]),
        ("alphabet clashes with verdict marks",
         GOOD.replace('"reversed-addition"', '"test_bad_input:QuestionMarks"') + '[[judges]]\ntype = "self-verdict"\n',
         ["self-verdict", "'?'", "QuestionMarks"]),
        ("not a torch device", GOOD + '[model]\ndevice = "tpu9"\n', ["model.device", "not a torch device"]),
    ]


def _jsonl_cases():
    """(id, the data file's lines (None: no file), extra [task] keys, words the message must hold)."""
    good = '{"question": "What is 2 + 2?", "answer": "#### 4", "level": 1}'
    return [
        ("not JSON", [good, '{"question": "x"'], "", ["data.jsonl:2", "not valid JSON"]),
        ("not an object", ["[1, 2]"], "", ["data.jsonl:1", "expected a JSON object, found list"]),
        ("field missing", [good, '{"question": "What is 1 + 1?", "level": 1}'], "",
         ["data.jsonl:2", "no 'answer' field", "answer_field"]),
        ("renamed field missing", [good], 'question_field = "problem"\n', ["data.jsonl:1", "no 'problem' field"]),
        ("empty question", ['{"question": "  ", "answer": "1", "level": 1}'], "",
         ["data.jsonl:1", "'question' must be a non-empty string"]),
        ("bad difficulty", [good, "", '{"question": "q", "answer": "1", "level": 0}'], "",
         ["data.jsonl:3", "'level' must be an integer >= 1, found 0"]),
        ("nothing after the GSM8K marker", ['{"question": "q", "answer": "so ####", "level": 1}'], "",
         ["data.jsonl:1", "nothing after '####'"]),
        ("not UTF-8", None, "", ["data.jsonl:1", "not UTF-8"]),
        ("empty file", ["", " "], "", ["holds no problems"]),
        ("missing file", [], 'path = "/no/such/data.jsonl"\n', ["task.path = '/no/such/data.jsonl'", "no such file"]),
        ("no path", [], 'path = ""\n', ["task.name = 'jsonl'", "set task.path"]),
        ("seed difficulty absent", [good], "seed_min_difficulty = 2\n", ["seed_min_difficulty", "[2]"]),
    ]


@pytest.mark.parametrize("case, lines, extra, words", _jsonl_cases(), ids=[c[0] for c in _jsonl_cases()])
def test_bad_jsonl_tasks(tmp_path, case, lines, extra, words):
    """A JSONL task's file is read before anything is written: a bad line is named file:line."""
    data = tmp_path / "data.jsonl"
    if lines is None:
        data.write_bytes(b'{"question": "caf\xe9", "answer": "1"}\n')
    else:
        data.write_text("\n".join(lines) + "\n")
    body = (f'[task]\nname = "jsonl"\npath = "{data}"\ndifficulty_field = "level"\n'
            f'seed_max_difficulty = {2 if "seed_min" in extra else 1}\n' + extra)
    if "path = " in extra:
        body = body.replace(f'path = "{data}"\n', "", 1)
    path = recipe_with(tmp_path, body + "[[judges]]\ntype = \"verifier\"\n")
    out = tmp_path / "out"
    one_line_exit_2(invoke(["run", str(path), "--out", str(out)]), str(path), *words)
    assert not out.exists()


def test_a_jsonl_key_under_another_task_names_its_owner(tmp_path):
    path = recipe_with(tmp_path, GOOD.replace('seed_max_difficulty = 3', 'seed_max_difficulty = 3\npath = "d.jsonl"'))
    one_line_exit_2(invoke(["run", str(path), "--out", str(tmp_path / "o")]), "task.path belongs to task.name = "
                    "'jsonl'", "not 'reversed-addition'")


@pytest.fixture
def bad_module(tmp_path, monkeypatch):
    (tmp_path / "bad_task_module.py").write_text("1 / 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def one_line_exit_2(result, *words: str) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.mark.parametrize("case, body, words", _recipe_cases(), ids=[c[0] for c in _recipe_cases()])
def test_bad_recipe_files(tmp_path, bad_module, case, body, words):
    path = recipe_with(tmp_path, body)
    out = tmp_path / "out"
    one_line_exit_2(invoke(["run", str(path), "--out", str(out)]), str(path), *words)
    assert not out.exists()


def test_no_cuda_device_is_refused_naming_the_key(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    path = recipe_with(tmp_path, GOOD + '[model]\ndevice = "cuda"\n')
    result = invoke(["run", str(path), "--out", str(tmp_path / "out")])
    one_line_exit_2(result, str(path), "model.device = 'cuda'", "no CUDA device")
    assert not (tmp_path / "out").exists()


def test_recipe_that_is_not_utf8_or_a_directory(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('[task]\nname = "reversed-addition"\n# caf\xe9\n'.encode("latin-1"))
    one_line_exit_2(invoke(["run", str(path), "--out", str(tmp_path / "o")]), str(path), "line 3",
                    "not UTF-8", "0xe9")
    one_line_exit_2(invoke(["run", str(tmp_path), "--out", str(tmp_path / "o")]), str(tmp_path),
                    "is a directory")
    one_line_exit_2(invoke(["run", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "o")]),
                    "nope.toml", "not found")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("assignment, words", [
    ("run.rounds", ["--set 'run.rounds'", "expected key=value"]),
    ("=3", ["expected key=value"]),
    ("run..rounds=3", ["expected key=value"]),
    ("run.rounds.x=3", ["run.rounds", "is a setting", "not a table"]),
    ("judges.5.type=length", ["has no item 5"]),
    ("judges.type=length", ["'judges' is an array", "judges.0.type"]),
    ("run.rounds=abc", ["run.rounds", "expected int", "'abc'"]),
    ("learner.steps_per_rund=3", ["learner.steps_per_rund", "steps_per_round"]),
])
def test_bad_set_overrides(tmp_path, assignment, words):
    out = tmp_path / "out"
    result = invoke(["run", "sit-addition", "--set", assignment, "--out", str(out)])
    one_line_exit_2(result, "sit-addition.toml", *words)
    assert not out.exists()


def test_bad_out_directories(tmp_path):
    recipe = str(recipe_with(tmp_path, GOOD))
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    a_run = fake_run(tmp_path)
    for out, words in [(a_file / "sub", ["is a file, so no directory can be made below it"]),
                       (a_file, ["is a file; choose a directory"]),
                       (full, ["exists and is not empty"]),
                       (a_run, ["already holds a run", "selftaught resume"])]:
        before = snapshot(tmp_path)
        one_line_exit_2(invoke(["run", recipe, "--out", str(out)]), f"--out {out}", *words)
        assert snapshot(tmp_path) == before
    one_line_exit_2(invoke(["run", recipe, "--seed", "-1", "--out", str(tmp_path / "o")]), "run.seed",
                    "expected a value in")
    assert not (tmp_path / "o").exists()


def test_bad_run_directories(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    empty = tmp_path / "empty"
    empty.mkdir()
    a_run = fake_run(tmp_path)
    gone = fake_run(tmp_path / "gone", to_dict(load_recipe(resolve("star"))) | {"task": {
        **to_dict(load_recipe(resolve("star")))["task"], "name": "deleted_module:Task"}})
    cases = [
        (["resume", str(tmp_path / "missing")], ["missing", "no such directory"]),
        (["resume", str(a_file)], ["a-file", "is a file, not a run directory"]),
        (["summary", str(empty)], ["empty", "not a selftaught run"]),
        (["report", str(empty)], ["empty", "not a selftaught run"]),
        (["inspect", str(a_run), "--round", "5"], ["--round 5", "no round is committed yet"]),
        (["inspect", str(a_run)], ["give either --round N or --attempt ID"]),
        (["inspect", str(a_run), "--round", "0", "--kept", "--rejected"], ["--kept and --rejected"]),
        (["inspect", str(a_run), "--attempt", "7"], ["no attempt 7"]),
        (["resume", str(a_run), "--from-round", "3"], ["--from-round 3", "no round was committed yet"]),
        (["resume", str(gone)], ["run.sqlite", "task.name = 'deleted_module:Task'", "cannot import"]),
        (["report", str(a_run), "--out", str(tmp_path)], ["is a directory", "report.html"]),
        (["report", str(a_run), "--out", str(tmp_path / "no" / "r.html")], ["is not an existing directory"]),
    ]
    for args, words in cases:
        before = snapshot(tmp_path)
        one_line_exit_2(invoke(args), *words)
        assert changed(before, snapshot(tmp_path)) == [], args


@pytest.mark.parametrize("args, words", [
    (["run", "sit-addition", "--bogus"], ["selftaught run", "No such option: --bogus", "--help"]),
    (["run"], ["selftaught run", "Missing argument"]),
    (["frobnicate"], ["No such command 'frobnicate'"]),
    (["run", "sit-addition", "--seed", "abc"], ["--seed", "Invalid value"]),
    (["inspect", ".", "--round", "1", "--limit", "0"], ["--limit"]),
    (["run", "sit-addition", "extra"], ["unexpected extra argument"]),
])
def test_bad_command_lines(tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)  # where a run would write runs/NAME-TIME by default
    one_line_exit_2(invoke(args), *words)
    assert list(tmp_path.iterdir()) == []


def test_a_recipe_without_judges_says_every_label_is_kept(tmp_path):
    body = GOOD.replace('[[judges]]\ntype = "length"\n', "") + (
        "[run]\nrounds = 1\n[model]\nn_layers = 1\nd_model = 16\nn_heads = 2\nd_ff = 32\n[learner]\nseed_steps = 2\n"
        "steps_per_round = 1\n[curriculum]\nproblems_per_round = 8\n[monitor]\neval_per_difficulty = 4\n")
    result = invoke(["run", str(recipe_with(tmp_path, body)), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "no [[judges]]: every self-label will be kept" in " ".join(result.output.split())


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".venv" not in p.parts and ".git" not in p.parts}


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Files added, removed or changed, apart from SQLite's shared-memory and WAL files of a reader."""
    return sorted(n for n in set(before) | set(after)
                  if before.get(n) != after.get(n) and not n.endswith(("-shm", "-wal", "run.lock")))
