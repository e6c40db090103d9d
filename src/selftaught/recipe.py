"""Recipes: a TOML file naming the parts of a run, validated into plain dataclasses.

Every setting a recipe can name is a dataclass field declared with ``setting(...)``: its default,
its one-line help and its bounds live there and nowhere else, so ``docs/recipes.md``,
``selftaught components`` and every error message come from the same place. The sections that name
a part (``[model]``, ``[sampler]``, ``[[judges]]``, ``[selector]``, ``[learner]``, ``[curriculum]``)
validate against the settings of the type they name, as the registry holds them: a key of another
type is an error that names the type it belongs to.
"""

from __future__ import annotations

import copy
import difflib
import tomllib
import typing
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

from selftaught import registry
from selftaught.parts import (
    CurriculumSettings,
    JudgeSettings,
    LearnerSettings,
    ModelSettings,
    SamplerSettings,
    SelectorSettings,
    TaskSettings,
)
from selftaught.parts.curricula import EasyToHardSettings
from selftaught.parts.models import TransformerSettings
from selftaught.parts.selectors import AllJudgesSettings
from selftaught.settings import RecipeError, setting

if typing.TYPE_CHECKING:
    from selftaught.tasks import Task

__all__ = ["Recipe", "RecipeError", "describe", "from_dict", "load_checked", "load_recipe", "notes", "setting",
           "to_dict", "to_toml", "with_limits"]


@dataclass
class RunSettings:
    name: str = setting("run", "name shown in progress output and the run store")
    seed: int = setting(0, "seed of every random generator in the run", min=0)
    rounds: int = setting(10, "self-improvement rounds after the seed round", min=0)
    time_budget_minutes: float = setting(0.0, "start no round that would end after this long (0 = no limit)", min=0)
    stop_at_reach: int = setting(0, "stop once reach is at least this (0 = never)", min=0)


@dataclass
class MonitorSettings:
    eval_per_difficulty: int = setting(128, "held-out problems per difficulty", min=1)
    eval_ahead: int = setting(3, "evaluate difficulties up to frontier + this", min=0)
    eval_max_difficulty: int = setting(40, "largest difficulty ever evaluated", min=1)
    threshold: float = setting(0.95, "accuracy a difficulty needs to count towards reach", min=0.0, max=1.0)
    pass_k: int = setting(4, "k of pass@k over each round's samples (at most sampler.samples)", min=1)
    pass_s: int = setting(2, "S of Pass@K-S and Reward@K-S (distinct correct answers a query needs)", min=1)
    eval_samples: int = setting(0, "held-out pass@k: replies sampled for each held-out problem at the sampler's "
                                "temperature, for pass@1, 2, 4, ... up to this (0 = greedy pass@1 only)", min=0)
    collapse_diversity: float = setting(0.0, "alarm when the share of distinct answers per query falls below this "
                                        "(0 = off)", min=0.0, max=1.0)
    collapse_entropy: float = setting(0.0, "alarm when answer entropy per query (nats) falls below this (0 = off)",
                                      min=0.0)
    collapse_proposals: float = setting(0.5, "alarm when the share of distinct problems among a challenger's "
                                        "valid proposals falls below this (0 = off)", min=0.0, max=1.0)
    balance_target: int = setting(4, "n* of the balance score: distinct correct answers a query needs to score "
                                  "fully (B-STaR's selector maximises the same score)", min=1)


@dataclass
class EngineSettings:
    """Where decoding and model judging run. Results depend on ``shard_size``, never on the
    executor or the number of workers."""

    executor: Literal["local", "ray"] = setting("local", "run shards here, or on Ray workers (pip install "
                                                "'selftaught[ray]')")
    workers: int = setting(2, "Ray workers (actors), each holding a replica of every member", min=1)
    address: str = setting("", "Ray cluster to join, such as 10.0.0.5:6379 or 'auto' (empty: start Ray on this "
                           "machine)")
    num_cpus: float = setting(1.0, "CPUs each Ray worker reserves", min=0.0)
    num_gpus: float = setting(0.0, "GPUs each Ray worker reserves (its replicas move to its GPU)", min=0.0)
    threads: int = setting(1, "torch threads in each Ray worker", min=1)
    shard_size: int = setting(0, "rows (prompt x sample) a shard holds, the unit of work a worker takes and of "
                              "random keys (0 = the sampler's batch size; scoring then runs in one shard)", min=0)


def part(role: str, default: type) -> Any:
    """A section that names a part of ``role``; ``default`` when the recipe leaves it out."""
    return field(default_factory=default, metadata={"role": role})


@dataclass
class Recipe:
    run: RunSettings = field(default_factory=RunSettings)
    task: TaskSettings = part("task", TaskSettings)
    model: ModelSettings = part("model", TransformerSettings)
    sampler: SamplerSettings = part("sampler", SamplerSettings)
    judges: list[JudgeSettings] = field(default_factory=list, metadata={"role": "judge"})
    selector: SelectorSettings = part("selector", AllJudgesSettings)
    learner: LearnerSettings = part("learner", LearnerSettings)
    curriculum: CurriculumSettings = part("curriculum", EasyToHardSettings)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)

    def parts(self) -> list[tuple[str, str, Any]]:
        """(role, section key, settings) of every part the recipe names."""
        out = [("task", "task", self.task), ("model", "model", self.model), ("sampler", "sampler", self.sampler)]
        out += [("judge", f"judges[{i}]", j) for i, j in enumerate(self.judges)]
        return out + [("selector", "selector", self.selector), ("learner", "learner", self.learner),
                      ("curriculum", "curriculum", self.curriculum)]


# ---- validation ----------------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is list:
        return f"list[{_type_name(typing.get_args(tp)[0])}]"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise RecipeError(f"{where}: expected one of {_type_name(tp)}, found {value!r}")
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool):
        if type(value) is not tp:
            raise RecipeError(f"{where}: expected {tp.__name__}, found {type(value).__name__} {value!r}")
        return value
    raise TypeError(f"unsupported setting type {tp!r} at {where}")


def _build_part(role: str, table: Any, where: str) -> Any:
    """A part's settings: the table validated against the settings of the type it names."""
    if not isinstance(table, dict):
        raise RecipeError(f"{where}: expected a table, found {type(table).__name__} {table!r}")
    tkey = registry.type_key(role)
    name = table.get(tkey, getattr(registry.base_settings(role)(), tkey))
    if not isinstance(name, str):
        raise RecipeError(f"{where}.{tkey}: expected str, found {type(name).__name__} {name!r}")
    try:
        settings = registry.lookup(role, name).settings
    except registry.RegistryError as e:
        raise RecipeError(f"{where}.{tkey} = {name!r}: {e}") from None
    known = {f.name for f in fields(settings)}
    for key in table:
        owners = [o for o in registry.owners(role, key) if o != name]
        if key not in known and owners:
            raise RecipeError(f"{where}.{key} belongs to {where}.{tkey} = {' or '.join(map(repr, owners))}, not "
                              f"{name!r}: remove it, or change the {tkey} ({name!r} takes "
                              f"{', '.join(sorted(known - {tkey})) or 'no other keys'})")
    return _build(settings, table, where)


def _build(cls: type, table: Any, where: str) -> Any:
    if not isinstance(table, dict):
        raise RecipeError(f"{where}: expected a table, found {type(table).__name__} {table!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in table.items():
        at = f"{where}.{key}" if where else key
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (valid keys: {', '.join(known)})"
            raise RecipeError(f"unknown key '{at}'{hint}")
        f, tp = known[key], hints[key]
        role = f.metadata.get("role")
        if role and typing.get_origin(tp) is not list:
            kwargs[key] = _build_part(role, value, at)
        elif is_dataclass(tp):
            kwargs[key] = _build(tp, value, at)
        elif typing.get_origin(tp) is list:
            (item,) = typing.get_args(tp)
            if not isinstance(value, list):
                what = "an array of tables" if is_dataclass(item) else f"an array of {item.__name__}"
                raise RecipeError(f"{at}: expected {what}, found {type(value).__name__} {value!r}")
            if role:
                kwargs[key] = [_build_part(role, v, f"{at}[{i}]") for i, v in enumerate(value)]
            elif is_dataclass(item):
                kwargs[key] = [_build(item, v, f"{at}[{i}]") for i, v in enumerate(value)]
            else:
                if not value and f.default_factory():  # empty only where the default is
                    raise RecipeError(f"{at}: expected a non-empty array")
                kwargs[key] = [_convert(v, item, f"{at}[{i}]") for i, v in enumerate(value)]
        else:
            value = _convert(value, tp, at)
            lo, hi = f.metadata.get("min"), f.metadata.get("max")
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                bounds = f"{'' if lo is None else lo} .. {'' if hi is None else hi}"
                raise RecipeError(f"{at}: expected a value in {bounds}, found {value!r}")
            kwargs[key] = value
    return cls(**kwargs)


def _check_combinations(recipe: Recipe) -> None:
    """Parts that do not fit together: each message names the keys to change. Checked from what
    each part declares (``selftaught.parts``), never from type names; then each part's own check."""
    s, sel, lr = recipe.sampler, recipe.selector, recipe.learner
    if lr.consumes not in sel.makes:
        makers = [n for n, p in registry.parts("selector").items() if lr.consumes in p.settings.makes]
        raise RecipeError(f"learner.type = '{lr.type}' trains on {lr.consumes}, but selector.type = '{sel.type}' "
                          f"makes {' and '.join(sel.makes)}: set selector.type to one of "
                          f"{', '.join(map(repr, makers))}, or a learner of {' or '.join(sel.makes)}")
    if sel.by_reward and not recipe.judges:
        raise RecipeError(f"selector.type = '{sel.type}' selects by reward: add at least one [[judges]] table")
    if sel.compares_samples and s.samples < 2:
        raise RecipeError(f"selector.type = '{sel.type}' compares samples of a query: set sampler.samples >= 2 "
                          f"(found {s.samples})")
    for who, needs in ((f"selector.type = '{sel.type}'", sel.random_samples),
                       (f"learner.type = '{lr.type}'", lr.random_samples)):
        if needs and not s.random:
            raise RecipeError(f"{who} needs sampled attempts: set sampler.type = 'temperature' (found '{s.type}')")
    if sel.revisions and not s.revises:
        raise RecipeError(f"selector.type = '{sel.type}' selects revisions: set sampler.type = 'revise' "
                          f"(found '{s.type}')")
    if s.revises and not sel.revisions:
        raise RecipeError(f"sampler.type = '{s.type}' makes first attempts and their revisions: set selector.type "
                          f"= 'revisions' (found '{sel.type}')")
    mon = recipe.monitor
    if s.samples > 1 and mon.pass_k > s.samples:
        raise RecipeError(f"monitor.pass_k ({mon.pass_k}) exceeds sampler.samples ({s.samples})")
    for _, where, settings in recipe.parts():
        check = getattr(settings, "check", None)
        if check is not None:
            check(recipe, where)


def parse_value(text: str) -> Any:
    """A ``--set`` value: TOML syntax when it parses (numbers, booleans, quoted strings), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(data: dict, assignment: str) -> None:
    """Apply ``a.b.c=value`` (``judges.1.min_agreement=0.6`` indexes arrays) to raw recipe data."""
    key, sep, raw = assignment.partition("=")
    parts = key.strip().split(".")
    if not sep or not key.strip() or not all(parts):
        raise RecipeError(f"--set {assignment!r}: expected key=value, such as learner.lr=0.001")
    node = data
    for i, part in enumerate(parts[:-1]):
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise RecipeError(f"--set {key}: '{'.'.join(parts[:i])}' has no item {part}")
            node = node[int(part)]
        else:
            node = node.setdefault(part, {})
        if not isinstance(node, dict | list):
            raise RecipeError(f"--set {key}: '{where}' is a setting ({node!r}), not a table")
    if isinstance(node, list):
        raise RecipeError(f"--set {key}: '{'.'.join(parts[:-1])}' is an array: name an item, such as "
                          f"{'.'.join(parts[:-1])}.0.{parts[-1]}")
    node[parts[-1]] = parse_value(raw.strip())


# what a resumed run may be given anew: when it stops, not what it does
RESUMABLE = ("run.rounds", "run.time_budget_minutes", "run.stop_at_reach")


def with_limits(data: dict, assignments: Sequence[str]) -> tuple[dict, dict[str, tuple[Any, Any]]]:
    """A stored recipe's data with new limits (``--set run.rounds=20`` on resume), and each key
    that changed as (old, new). Anything but ``RESUMABLE`` is refused: it would make the run's
    rounds so far the rounds of another recipe."""
    new = copy.deepcopy(data)
    for assignment in assignments:
        key = assignment.partition("=")[0].strip()
        if key not in RESUMABLE:
            raise RecipeError(f"--set {key}: only {', '.join(RESUMABLE)} can change when a run resumes; another "
                              f"{key} would make it a different recipe (start a new run for that)")
        apply_override(new, assignment)
    try:
        limits = _build(RunSettings, new["run"], "run")
    except RecipeError as e:
        raise RecipeError(f"--set {e}") from None
    changed = {}
    for key in RESUMABLE:
        name = key.split(".")[1]
        old = data["run"].get(name)
        if getattr(limits, name) != old:
            changed[key] = (old, getattr(limits, name))
    new["run"] = to_dict(limits)
    return new, changed


def read_recipe_text(path: Path) -> dict:
    """The raw TOML data of a recipe file; every way of failing names the file."""
    if path.is_dir():
        raise RecipeError(f"{path}: is a directory; give a recipe file (.toml) or a built-in recipe's name")
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found (`selftaught recipes` lists the built-in ones)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise RecipeError(f"{path}: line {line}: not UTF-8 text (byte 0x{raw[e.start]:02x}); a recipe is a TOML "
                          "file saved as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: not valid TOML: {e}") from None


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    """Read, override and validate a recipe, including the checks that need its task and model
    (``selftaught.preflight``), so that a recipe that loads is one that can start. Every error
    names the file."""
    return load_checked(path, overrides)[0]


def load_checked(path: str | Path, overrides: list[str] = ()) -> tuple[Recipe, Task]:
    """``load_recipe``, and the task its checks built (a run given it need not check again)."""
    path = Path(path)
    data = read_recipe_text(path)
    try:
        for assignment in overrides:
            apply_override(data, assignment)
        recipe = _build(Recipe, data, "")
        _check_combinations(recipe)
        # after the keys are checked, so a misspelt [tsak] is named as such; an empty file would
        # otherwise quietly run the library's defaults
        if "name" not in data.get("task", {}):
            raise RecipeError("names no task: add a [task] table with name = \"...\" (a built-in task such as "
                              "\"reversed-addition\", or \"package.module:ClassName\")")
        from selftaught.preflight import check_runnable

        task = check_runnable(recipe)
    except RecipeError as e:
        raise RecipeError(f"{path}: {e}") from None
    return recipe, task


def notes(recipe: Recipe) -> list[str]:
    """What a user should know before a legitimate but unusual recipe starts."""
    out = []
    if not recipe.judges and recipe.run.rounds:
        out.append("the recipe has no [[judges]]: every self-label will be kept (a no-filter ablation)")
    return out


def from_dict(data: dict, source: str) -> tuple[Recipe, Task]:
    """A recipe from plain data (as ``to_dict`` wrote it into a run's store), checked as
    ``load_checked`` checks a file, and its task; errors name ``source``."""
    try:
        recipe = _build(Recipe, data, "")
        _check_combinations(recipe)
        from selftaught.preflight import check_runnable

        task = check_runnable(recipe)
    except RecipeError as e:
        raise RecipeError(f"{source}: {e}") from None
    return recipe, task


def to_dict(obj: Any) -> Any:
    """The fully resolved recipe as plain data (written into the run directory)."""
    if is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, list):
        return [to_dict(v) for v in obj]
    return obj


def describe(cls: type = Recipe, prefix: str = "") -> list[tuple[str, str, Any, str]]:
    """(key, type, default, help) for every setting: the source of docs/recipes.md. A part's
    section lists its common settings, its ``type`` with the registered choices, then each type's
    own settings with the types they belong to."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        tp, key = hints[f.name], f"{prefix}{f.name}"
        role = f.metadata.get("role")
        if role:
            rows += describe_part(role, f"{key}[]." if typing.get_origin(tp) is list else key + ".")
        elif is_dataclass(tp):
            rows += describe(tp, key + ".")
        else:
            rows.append(_row(f, tp, key))
    return rows


def describe_part(role: str, prefix: str) -> list[tuple[str, str, Any, str]]:
    base = registry.base_settings(role)
    hints = typing.get_type_hints(base)
    rows = []
    for f in fields(base):
        row = _row(f, hints[f.name], prefix + f.name)
        if f.name == registry.type_key(role):
            row = (*row[:3], f"{row[3]}: {', '.join(registry.parts(role))}, or 'package.module:ClassName'")
        rows.append(row)
    common = {f.name for f in fields(base)}
    own: dict[str, tuple] = {}  # repr of a row -> (the row, the types that have it)
    for name, p in registry.parts(role).items():
        hints = typing.get_type_hints(p.settings)
        for f in fields(p.settings):
            if f.name not in common:
                row = _row(f, hints[f.name], prefix + f.name)
                own.setdefault(repr(row), (row, []))[1].append(name)
    return rows + [(k, t, d, f"{' / '.join(types)}: {h}") for (k, t, d, h), types in own.values()]


def _row(f: Any, tp: Any, key: str) -> tuple[str, str, Any, str]:
    default = f.default if f.default is not MISSING else f.default_factory()
    return key, _type_name(tp), default, f.metadata.get("help", "")


def to_toml(data: dict) -> str:
    """Write resolved recipe data back as TOML (tables and arrays of tables only, as recipes are)."""
    lines: list[str] = []

    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        return repr(v)

    for section, body in data.items():
        items = body if isinstance(body, list) else [body]
        header = f"[[{section}]]" if isinstance(body, list) else f"[{section}]"
        for item in items:
            lines.append(header)
            lines += [f"{k} = {scalar(v)}" for k, v in item.items()]
            lines.append("")
    return "\n".join(lines)


def settings_table() -> str:
    """Markdown table of every setting (pasted into docs/recipes.md; a test keeps them in step)."""
    rows = ["| key | type | default | what it does |", "|---|---|---|---|"]
    rows += [f"| `{k}` | {t.replace('|', '&#124;')} | `{d!r}` | {h} |" for k, t, d, h in describe()]
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
