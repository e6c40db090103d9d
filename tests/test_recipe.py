from pathlib import Path

import pytest

from selftaught.builtin_recipes import builtin_recipes
from selftaught.recipe import Recipe, RecipeError, describe, load_recipe, to_dict, to_toml

GOOD = """
[run]
rounds = 2
[task]
name = "reversed-addition"
[model]
d_model = 64
[[judges]]
type = "length"
[[judges]]
type = "majority-vote"
min_agreement = 0.6
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", sorted(builtin_recipes()))
def test_every_builtin_recipe_validates(name):
    recipe = load_recipe(builtin_recipes()[name])
    assert isinstance(recipe, Recipe) and recipe.judges


def test_values_and_defaults(tmp_path):
    r = load_recipe(write(tmp_path, GOOD))
    assert r.run.rounds == 2 and r.model.d_model == 64 and r.model.n_layers == 4
    assert [j.type for j in r.judges] == ["length", "majority-vote"]
    assert r.judges[1].min_agreement == 0.6


def test_unknown_key_names_file_key_and_closest(tmp_path):
    path = write(tmp_path, "[learner]\nsteps_per_rond = 3\n")
    with pytest.raises(RecipeError) as e:
        load_recipe(path)
    msg = str(e.value)
    assert str(path) in msg and "learner.steps_per_rond" in msg and "steps_per_round" in msg


def test_unknown_section(tmp_path):
    with pytest.raises(RecipeError, match="unknown key 'modle'.*'model'"):
        load_recipe(write(tmp_path, "[modle]\nd_model = 3\n"))


@pytest.mark.parametrize("text, expected, found", [
    ('[model]\nd_model = "big"\n', "expected int", "str 'big'"),
    ("[learner]\nlr = -1.0\n", "expected a value in 0.0 ..", "-1.0"),
    ('[model]\npositional = "alibi"\n', "expected one of 'none' | 'rope'", "'alibi'"),
    ("[[judges]]\ntype = \"majority-vote\"\nmin_agreement = 1.5\n", "judges[0].min_agreement", "1.5"),
])
def test_wrong_type_or_range_names_expected_and_found(tmp_path, text, expected, found):
    path = write(tmp_path, text)
    with pytest.raises(RecipeError) as e:
        load_recipe(path)
    assert str(path) in str(e.value) and expected in str(e.value) and found in str(e.value)


def test_int_is_accepted_for_float_but_not_bool_for_int(tmp_path):
    assert load_recipe(write(tmp_path, GOOD + "[learner]\nlr = 1\n")).learner.lr == 1.0
    with pytest.raises(RecipeError, match="expected int, found bool"):
        load_recipe(write(tmp_path, "[run]\nrounds = true\n"))


def test_bad_combination(tmp_path):
    with pytest.raises(RecipeError, match="divisible"):
        load_recipe(write(tmp_path, "[model]\nd_model = 30\nn_heads = 4\n"))


@pytest.mark.parametrize("text, message", [
    ("difficulty_weights = [1.0, 3.0, 1.0]", r"3 weights for the 2 difficulties 2..3"),
    ("difficulty_weights = [-1.0, 3.0]", r">= 0 and not all 0"),
    ("difficulty_weights = [0.0, 0.0]", r">= 0 and not all 0"),
    ('type = "easy-to-hard"\ndifficulty_weights = [1.0, 3.0]', r"curriculum.type = 'uniform'"),
])
def test_difficulty_weights_must_fit_the_range(tmp_path, text, message):
    path = write(tmp_path, f"[task]\nseed_min_difficulty = 2\nseed_max_difficulty = 3\n[curriculum]\n"
                           f"type = \"uniform\"\n{text}\n".replace('type = "uniform"\ntype', "type"))
    with pytest.raises(RecipeError, match=message) as e:
        load_recipe(path)
    assert str(path) in str(e.value) and "curriculum.difficulty_weights" in str(e.value)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "nope.toml")
    with pytest.raises(RecipeError, match="line 1"):
        load_recipe(write(tmp_path, "[run\n"))


def test_overrides(tmp_path):
    path = write(tmp_path, GOOD)
    r = load_recipe(path, ["run.rounds=5", "judges.1.min_agreement=0.8", 'task.name="copy"'])
    assert r.run.rounds == 5 and r.judges[1].min_agreement == 0.8 and r.task.name == "copy"
    with pytest.raises(RecipeError, match="unknown key 'run.roundz'"):
        load_recipe(path, ["run.roundz=5"])
    with pytest.raises(RecipeError, match="has no item 7"):
        load_recipe(path, ["judges.7.type=length"])


def test_resolved_recipe_round_trips_through_toml(tmp_path):
    r = load_recipe(write(tmp_path, GOOD))
    again = load_recipe(write(tmp_path, to_toml(to_dict(r))))
    assert again == r


def test_every_setting_has_help():
    rows = describe()
    assert len(rows) > 30
    assert all(help_ for _, _, _, help_ in rows)
