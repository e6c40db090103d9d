"""The registry of parts: every built-in type resolves, recipes validate against the chosen type's
settings only, a user's part is named by import path (the example in docs/recipes.md, run as it
is written there), and the round names no method."""

import inspect
import re
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from selftaught import registry
from selftaught.cli import app
from selftaught.engine import Run
from selftaught.engine import loop as loop_module
from selftaught.recipe import RecipeError, load_recipe
from selftaught.store import RunStore

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("role", list(registry.ROLES))
def test_every_registered_part_resolves_to_a_factory_and_extends_its_roles_settings(role):
    base = registry.base_settings(role)
    parts = registry.parts(role)
    assert parts, role
    for name, part in parts.items():
        assert callable(part.factory()), name
        assert is_dataclass(part.settings) and issubclass(part.settings, base), name
        assert all(f.metadata.get("help") for f in fields(part.settings) if f.name != "type"), name
        assert part.summary, name


def test_components_lists_every_registered_type_with_its_own_settings():
    out = CliRunner().invoke(app, ["components"], terminal_width=200)
    assert out.exit_code == 0, out.output
    for role in registry.ROLES:
        assert f"{role} ·" in out.output
        for name in registry.parts(role):
            assert name in out.output
    top_k = next(line for line in out.output.splitlines() if "│ top-k " in line)
    assert "threshold, k" in top_k  # its own settings, from its dataclass
    bad = CliRunner().invoke(app, ["components", "judges"])
    assert bad.exit_code == 2 and "no such role" in bad.output


def _example(heading: str) -> tuple[str, str]:
    """The python and toml blocks of a docs/recipes.md section."""
    text = (ROOT / "docs" / "recipes.md").read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    python = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    toml = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    return python, toml


TINY = """
[run]
rounds = 1
[task]
name = "reversed-addition"
seed_max_difficulty = 3
seed_examples = 300
[model]
n_layers = 1
d_model = 32
n_heads = 4
d_ff = 64
[sampler]
type = "temperature"
[[judges]]
type = "length"
{judge}
[learner]
seed_steps = 0
steps_per_round = 5
batch_size = 32
[curriculum]
problems_per_round = 60
[monitor]
eval_per_difficulty = 8
"""


def test_a_users_judge_named_by_import_path_runs_as_the_docs_show(tmp_path, monkeypatch):
    python, toml = _example("Parts of your own")
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "judges.py").write_text(python)
    monkeypatch.syspath_prepend(str(tmp_path))
    # an untrained model sampled at temperature 1 ends its answers anywhere up to their limit (7
    # characters here): 4 splits them
    docs_limit = re.search(r"limit = \d+", toml).group(0)
    toml, limit = toml.replace(docs_limit, "limit = 4"), 4
    path = tmp_path / "r.toml"
    path.write_text(TINY.format(judge=toml))
    recipe = load_recipe(path)
    assert recipe.judges[1].limit == limit and recipe.judges[1].weight == 0.5  # its own setting and the common one
    Run(recipe, tmp_path / "run").execute()
    with RunStore(tmp_path / "run") as store:
        rows = store.attempts(1, limit=1000)
    assert len(rows) == 60
    verdicts = [next(s["passed"] for s in row["scores"] if s["judge"] == "max-length") for row in rows]
    assert 10 <= sum(verdicts) <= 50, sum(verdicts)  # both verdicts occur, so the rule below is tested
    for row in rows:
        mine = next(s for s in row["scores"] if s["judge"] == "max-length")
        assert mine["passed"] == (len(row["text"]) <= limit), row
        # the selector (all-judges) keeps only what every judge passed, this one included
        assert not row["kept"] or all(s["passed"] for s in row["scores"])
    # its settings are validated like a built-in's
    for bad, message in (("limit = 0", r"judges\[1\].limit: expected a value in 1"),
                         ("limitt = 3", r"unknown key 'judges\[1\].limitt' \(did you mean 'limit'\?\)")):
        path.write_text(TINY.format(judge=toml.replace(f"limit = {limit}", bad)))
        with pytest.raises(RecipeError, match=message):
            load_recipe(path)


def test_a_part_of_your_own_must_bring_settings_of_its_role(tmp_path, monkeypatch):
    (tmp_path / "oddparts.py").write_text("class Odd:\n    Settings = dict\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "r.toml"
    path.write_text(TINY.format(judge='[[judges]]\ntype = "oddparts:Odd"'))
    with pytest.raises(RecipeError, match=r"judges\[1\].type = 'oddparts:Odd'.*extending .*JudgeSettings"):
        load_recipe(path)


def test_the_round_names_no_method_and_fits_on_a_screen():
    """The done criteria of issue 20, kept: no method's name in engine/, and ``improve`` (the
    function that runs one round) at most 40 lines."""
    for source in (ROOT / "src" / "selftaught" / "engine").glob("*.py"):
        hits = [line for line in source.read_text().splitlines()
                if re.search(r"bstar|grpo|dpo|revisions|self-verdict|on_policy|turns", line)]
        assert not hits, (source.name, hits)
    assert len(inspect.getsource(loop_module.Run.improve).splitlines()) <= 40


def test_the_methods_a_users_part_must_have_are_its_protocols():
    """``registry.METHODS`` (checked on a user's class while a recipe loads) names exactly the
    methods each role's protocol declares."""
    from selftaught.curriculum import Curriculum
    from selftaught.judge.filters import Judge
    from selftaught.learn.learners import Learner
    from selftaught.sample.samplers import Sampler
    from selftaught.select.selectors import Selector

    protocols = {"sampler": Sampler, "judge": Judge, "selector": Selector, "learner": Learner,
                 "curriculum": Curriculum}
    for role, protocol in protocols.items():
        declared = {n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")}
        assert set(registry.METHODS[role]) == declared, role
    assert set(registry.METHODS) == set(protocols)
