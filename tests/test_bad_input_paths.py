"""Bad input on the paths beyond a recipe file: Hugging Face models (a path or a GGUF file), JSONL
datasets, Ray settings, a user's own parts, and damaged run stores. Each is one line on stderr that
names the key or file and what to do, exit code 2, no traceback, and nothing written.
``test_bad_input.py`` holds the corpus for recipe files and the command line."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import pytest

from selftaught.recipe import load_recipe
from test_bad_input import changed, invoke, one_line_exit_2, snapshot

transformers = pytest.importorskip("transformers")

from test_hf_policy import build_tiny  # noqa: E402

TASK = '[task]\nname = "reversed-addition"\nseed_max_difficulty = 2\n'
JUDGE = '[[judges]]\ntype = "length"\n'


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("tiny-llama"))


def model_copy(tiny: Path, tmp: Path, drop: tuple[str, ...] = ()) -> Path:
    """A copy of the tiny model's directory without the files in ``drop``."""
    out = tmp / "model"
    shutil.copytree(tiny, out, ignore=shutil.ignore_patterns(*drop))
    return out


def with_config(directory: Path, **changes) -> Path:
    config = json.loads((directory / "config.json").read_text())
    config.update(changes)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def hf_recipe(model: str, extra: str = "", task: str = TASK) -> str:
    return task + f'[model]\ntype = "hf"\n{model}\n' + extra + JUDGE


def _model_cases():
    """(id, how to make the model's files in tmp (-> the [model] key naming them), extra recipe text,
    words the message must hold)."""
    def gguf_file(content: bytes):
        def make(tiny, tmp):
            (tmp / "m.gguf").write_bytes(content)
            return f'gguf = "{tmp / "m.gguf"}"'
        return make

    def directory(drop=(), **config):
        def make(tiny, tmp):
            return f'path = "{with_config(model_copy(tiny, tmp, drop), **config)}"'
        return make

    def config_text(text):
        def make(tiny, tmp):
            d = model_copy(tiny, tmp)
            (d / "config.json").write_text(text)
            return f'path = "{d}"'
        return make

    def truncated_weights(tiny, tmp):
        d = model_copy(tiny, tmp)
        data = (d / "model.safetensors").read_bytes()
        (d / "model.safetensors").write_bytes(data[: len(data) // 3])
        return f'path = "{d}"'

    def no_template(tiny, tmp):
        d = model_copy(tiny, tmp)
        config = json.loads((d / "tokenizer_config.json").read_text())
        config.pop("chat_template", None)
        (d / "tokenizer_config.json").write_text(json.dumps(config))
        (d / "chat_template.jinja").unlink(missing_ok=True)
        return f'path = "{d}"'

    def two_token_verdict(tiny, tmp):
        d = model_copy(tiny, tmp)
        tok = json.loads((d / "tokenizer.json").read_text())
        vocab = tok["model"]["vocab"]
        vocab["Yes"] = vocab.pop("Y")  # "Y" has no token of its own any more
        (d / "tokenizer.json").write_text(json.dumps(tok))
        return f'path = "{d}"'

    return [
        ("gguf that is a text file", gguf_file(b"not a model\n"), "", ["model.gguf", "m.gguf", "not a GGUF file"]),
        ("gguf that is empty", gguf_file(b""), "", ["model.gguf", "m.gguf", "not a GGUF file"]),
        ("gguf cut off after its magic", gguf_file(b"GGUF\x03\x00\x00\x00\x01"), "",
         ["model.gguf", "m.gguf", "cannot be read"]),
        ("unknown model_type", directory(model_type="llamma9"), "",
         ["model.path", "config.json", "model_type 'llamma9'", "transformers"]),
        ("config that is not JSON", config_text("{ not json"), "", ["model.path", "config.json", "not valid JSON"]),
        ("config without model_type", config_text('{"hidden_size": 32}'), "",
         ["model.path", "config.json", "no model_type"]),
        ("model that is not a causal LM", config_text('{"model_type": "vit"}'), "",
         ["model.path", "'vit'", "causal"]),
        ("no weights", directory(drop=("model.safetensors",)), "", ["model.path", "no weights", "model.safetensors"]),
        ("weights cut off", truncated_weights, "", ["model.path", "model.safetensors", "cannot be read"]),
        ("no tokenizer", directory(drop=("tokenizer*", "special_tokens_map.json", "chat_template.jinja")), "",
         ["model.path", "tokenizer"]),
        ("vocabulary larger than the embedding", directory(vocab_size=8), "",
         ["model.path", "tokenizer", "vocab_size"]),
        ("chat prompts without a chat template", no_template, "",
         ["task.chat = true", "model.path", "chat template"]),
        ("a verdict token of two tokens", two_token_verdict, '[[judges]]\ntype = "self-verdict"\n',
         ["judges[0].type = 'self-verdict'", "'Y'", "one token"]),
    ]


@pytest.mark.parametrize("case, make, extra, words", _model_cases(), ids=[c[0] for c in _model_cases()])
def test_bad_hugging_face_models(tiny, tmp_path, case, make, extra, words):
    task = TASK + ("chat = true\n" if "chat" in case else "")
    path = tmp_path / "r.toml"
    path.write_text(hf_recipe(make(tiny, tmp_path), extra, task))
    out = tmp_path / "out"
    before = snapshot(tmp_path)
    one_line_exit_2(invoke(["run", str(path), "--out", str(out)]), str(path), *words)
    assert not out.exists() and changed(before, snapshot(tmp_path)) == []


def _jsonl_cases():
    """(id, the data file's lines, extra [task] keys, words the message must hold)."""
    good = '{"question": "What is 2 + 2?", "answer": "#### 4"}'
    return [
        ("reference the checker cannot read", [good, '{"question": "q", "answer": "#### four"}'], "",
         ["data.jsonl:2", "'four'", "never", "checker"]),
        ("reference without a number", [good, '{"question": "q", "answer": "none"}'], "",
         ["data.jsonl:2", "'none'", "never"]),
        ("boxed reference with unmatched braces", ['{"question": "q", "answer": "{1"}'], 'extract = "boxed"\n',
         ["data.jsonl:1", "'{1'", "never"]),
        ("held-out share leaves nothing to train", [good], "held_out = 0.9\n",
         ["task.held_out", "no problem to train on"]),
        ("a directory for a file", None, "", ["task.path", "is a directory"]),
    ]


@pytest.mark.parametrize("case, lines, extra, words", _jsonl_cases(), ids=[c[0] for c in _jsonl_cases()])
def test_bad_jsonl_datasets(tmp_path, case, lines, extra, words):
    data = tmp_path / "data.jsonl"
    if lines is None:
        data.mkdir()
    else:
        data.write_text("\n".join(lines) + "\n")
    path = tmp_path / "r.toml"
    path.write_text(f'[task]\nname = "jsonl"\npath = "{data}"\n{extra}[[judges]]\ntype = "verifier"\n')
    out = tmp_path / "out"
    one_line_exit_2(invoke(["run", str(path), "--out", str(out)]), str(path), *words)
    assert not out.exists()


def test_a_reference_any_reply_can_match_is_accepted(tmp_path):
    """The refusal above is not over-eager: text references the 'marker' extraction can reach, and
    numeric ones under every extraction, load."""
    data = tmp_path / "data.jsonl"
    data.write_text('{"question": "Capital of France?", "answer": "Paris"}\n{"question": "2+2?", "answer": "4"}\n')
    for extract in ("marker", "last-number", "boxed"):
        lines = data.read_text() if extract == "marker" else '{"question": "2+2?", "answer": "4"}\n'
        (tmp_path / "d2.jsonl").write_text(lines)
        path = tmp_path / "r.toml"
        path.write_text(f'[task]\nname = "jsonl"\npath = "{tmp_path / "d2.jsonl"}"\nextract = "{extract}"\n'
                        'held_out = 0.0\nseed_max_difficulty = 1\n[[judges]]\ntype = "verifier"\n')
        assert load_recipe(path).task.extract == extract


def _ray_cases():
    return [
        ("GPUs a local cluster does not have", "[engine]\nexecutor = \"ray\"\nnum_gpus = 1.0\n",
         ["engine.num_gpus", "no CUDA device"]),
        ("a cluster that does not answer", "[engine]\nexecutor = \"ray\"\naddress = \"127.0.0.1:1\"\n",
         ["engine.address", "cannot reach"]),
        ("workers below one", "[engine]\nexecutor = \"ray\"\nworkers = 0\n", ["engine.workers", "expected a value in"]),
        ("an executor that does not exist", "[engine]\nexecutor = \"dask\"\n", ["engine.executor", "'local' | 'ray'"]),
        ("a negative shard", "[engine]\nshard_size = -4\n", ["engine.shard_size", "expected a value in"]),
    ]


@pytest.mark.parametrize("case, engine, words", _ray_cases(), ids=[c[0] for c in _ray_cases()])
def test_bad_ray_settings(tmp_path, case, engine, words):
    pytest.importorskip("ray")
    path = tmp_path / "r.toml"
    path.write_text(TASK + JUDGE + engine)
    out = tmp_path / "out"
    one_line_exit_2(invoke(["run", str(path), "--out", str(out)]), *words)
    assert not out.exists()


def test_ray_not_installed_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed: `import ray` fails
    monkeypatch.setitem(sys.modules, "selftaught.engine.ray_executor", None)  # also where another test imported it
    path = tmp_path / "r.toml"
    path.write_text(TASK + JUDGE + "[engine]\nexecutor = \"ray\"\n")
    one_line_exit_2(invoke(["run", str(path), "--out", str(tmp_path / "out")]), "engine.executor = 'ray'",
                    "pip install 'selftaught[ray]'")
    assert not (tmp_path / "out").exists()


USER_PARTS = '''
from dataclasses import dataclass

from selftaught.parts import SelectorSettings


class Exploding:
    """A selector whose constructor fails."""

    def __init__(self, settings, context):
        raise KeyError("threshold")

    def select(self, batch, wants):
        return None


class NoSelect:
    """A selector without a select method."""

    def __init__(self, settings, context):
        pass


class BadSettings:
    Settings = dict


@dataclass
class WrongBase:
    x: int = 1


class WrongBaseSettings:
    Settings = WrongBase


@dataclass
class OwnSettings(SelectorSettings):
    keep: int = 3


class WithSettings:
    Settings = OwnSettings

    def __init__(self, settings, context):
        pass

    def select(self, batch, wants):
        return None
'''


def _user_part_cases():
    return [
        ("constructor raises", '[selector]\ntype = "my_parts:Exploding"\n',
         ["selector.type = 'my_parts:Exploding'", "raised KeyError: 'threshold'"]),
        ("no select method", '[selector]\ntype = "my_parts:NoSelect"\n',
         ["selector.type = 'my_parts:NoSelect'", "has no method select"]),
        ("Settings that is not a dataclass", '[selector]\ntype = "my_parts:BadSettings"\n',
         ["my_parts:BadSettings.Settings", "dataclass"]),
        ("Settings of the wrong role", '[selector]\ntype = "my_parts:WrongBaseSettings"\n',
         ["WrongBaseSettings.Settings", "SelectorSettings"]),
        ("a key its Settings lacks", '[selector]\ntype = "my_parts:WithSettings"\nkepe = 2\n',
         ["selector.kepe", "keep"]),
        ("a module attribute that is a module", '[[judges]]\ntype = "my_parts:dataclass.__module__"\n',
         ["my_parts:dataclass.__module__", "not a class"]),
    ]


@pytest.mark.parametrize("case, part, words", _user_part_cases(), ids=[c[0] for c in _user_part_cases()])
def test_bad_user_parts(tmp_path, monkeypatch, case, part, words):
    (tmp_path / "my_parts.py").write_text(USER_PARTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_parts", raising=False)
    path = tmp_path / "r.toml"
    path.write_text(TASK + JUDGE + part)
    out = tmp_path / "out"
    one_line_exit_2(invoke(["run", str(path), "--out", str(out)]), str(path), *words)
    assert not out.exists()


SMALL_RUN = TASK + JUDGE + """
[run]
rounds = 1
time_budget_minutes = 0
[model]
n_layers = 1
d_model = 16
n_heads = 2
d_ff = 32
[learner]
seed_steps = 2
steps_per_round = 1
[curriculum]
problems_per_round = 8
[monitor]
eval_per_difficulty = 4
"""


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("finished")
    (tmp / "r.toml").write_text(SMALL_RUN)
    result = invoke(["run", str(tmp / "r.toml"), "--out", str(tmp / "run")])
    assert result.exit_code == 0, result.output
    return tmp / "run"


def _store_cases():
    """(id, how to damage a copy of a finished run, the command (RUN for the copy), words)."""
    def garbage(run):
        (run / "run.sqlite").write_bytes(b"this is not a database" * 100)

    def cut(run):
        data = (run / "run.sqlite").read_bytes()
        (run / "run.sqlite").write_bytes(data[: len(data) // 2])

    def no_checkpoint(run):
        shutil.rmtree(run / "checkpoints" / "round-1")

    def weights_changed(run):
        weights = next((run / "checkpoints" / "round-1").rglob("*.safetensors"))
        data = bytearray(weights.read_bytes())
        data[-1] ^= 1
        weights.write_bytes(bytes(data))

    def newer_schema(run):
        with closing(sqlite3.connect(run / "run.sqlite")) as db, db:
            db.execute("UPDATE run SET value = '99' WHERE key = 'schema_version'")

    def no_tables(run):
        (run / "run.sqlite").unlink()
        sqlite3.connect(run / "run.sqlite").close()

    def recipe_damaged(run):
        with closing(sqlite3.connect(run / "run.sqlite")) as db, db:
            (info,) = db.execute("SELECT value FROM run WHERE key = 'recipe'").fetchone()
            recipe = json.loads(info)
            recipe["model"]["d_model"] = "wide"
            db.execute("UPDATE run SET value = ? WHERE key = 'recipe'", (json.dumps(recipe),))

    return [
        ("garbage store, resume", garbage, ["resume"], ["run.sqlite", "not a readable run store"]),
        ("garbage store, summary", garbage, ["summary"], ["run.sqlite", "not a readable run store"]),
        ("half a store, report", cut, ["report"], ["run.sqlite"]),
        ("checkpoint gone", no_checkpoint, ["resume"], ["round-1", "--from-round"]),
        ("checkpoint changed", weights_changed, ["resume"], ["checksum", "--from-round"]),
        ("store of a newer schema", newer_schema, ["resume"], ["run.sqlite", "schema"]),
        ("store without tables", no_tables, ["inspect", "--round", "0"], ["run.sqlite", "not a readable run store"]),
        ("stored recipe damaged", recipe_damaged, ["resume"], ["run.sqlite", "model.d_model", "'wide'"]),
    ]


@pytest.mark.parametrize("case, damage, command, words", _store_cases(), ids=[c[0] for c in _store_cases()])
def test_damaged_run_stores(finished_run, tmp_path, case, damage, command, words):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    damage(run)
    before = snapshot(tmp_path)
    one_line_exit_2(invoke([command[0], str(run), *command[1:]]), *words)
    assert changed(before, snapshot(tmp_path)) == [], command


def test_the_recipe_is_checked_once_a_command(tmp_path, monkeypatch, finished_run):
    """`run` and `resume` check the recipe (task import, model files) once, not once more when the
    run is built: a GGUF's tokenizer or a JSONL file is read once."""
    import selftaught.engine.loop as loop
    import selftaught.preflight as preflight

    calls = []
    real = preflight.check_runnable

    def counted(recipe):
        calls.append(recipe.run.name)
        return real(recipe)

    monkeypatch.setattr(preflight, "check_runnable", counted)
    monkeypatch.setattr(loop, "check_runnable", counted)
    (tmp_path / "r.toml").write_text(SMALL_RUN.replace("rounds = 1", "rounds = 0"))
    assert invoke(["run", str(tmp_path / "r.toml"), "--out", str(tmp_path / "run")]).exit_code == 0
    assert len(calls) == 1
    shutil.copytree(finished_run, tmp_path / "again")
    assert invoke(["resume", str(tmp_path / "again")]).exit_code == 0
    assert len(calls) == 2
