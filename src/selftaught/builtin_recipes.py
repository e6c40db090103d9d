"""Where the built-in recipes live: inside the installed package, or ``recipes/`` of a checkout."""

from __future__ import annotations

import tomllib
from pathlib import Path


def recipes_dir() -> Path:
    packaged = Path(__file__).parent / "recipes"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "recipes"


def builtin_recipes() -> dict[str, Path]:
    d = recipes_dir()
    return {p.stem: p for p in sorted(d.glob("*.toml"))} if d.is_dir() else {}


def resolve(name_or_path: str) -> Path:
    """A recipe file path, or the name of a built-in recipe (with or without ``.toml``)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    return builtin_recipes().get(path.stem if path.suffix == ".toml" else name_or_path, path)


def summary_line(path: Path) -> str:
    """The recipe's first comment line, which says what it is."""
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    try:
        return tomllib.loads(path.read_text()).get("run", {}).get("name", "")
    except tomllib.TOMLDecodeError:
        return "(not valid TOML)"
