from pathlib import Path

from selftaught.recipe import describe

ROOT = Path(__file__).resolve().parents[1]


def test_docs_list_every_recipe_setting():
    text = (ROOT / "docs" / "recipes.md").read_text()
    missing = [key for key, *_ in describe() if f"`{key}`" not in text]
    assert not missing, f"docs/recipes.md lacks {missing}: regenerate with `python -m selftaught.recipe`"
