"""Recipes: a TOML file naming the parts of a run, validated into plain dataclasses.

Every setting a recipe can name is a dataclass field declared with ``setting(...)``: its default,
its one-line help and its bounds live there and nowhere else, so ``docs/recipes.md``,
``selftaught recipes --keys`` and every error message come from the same place.
"""

from __future__ import annotations

import difflib
import tomllib
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal


class RecipeError(ValueError):
    """A recipe that cannot be run. The message names the file and the key."""


def setting(default: Any, help: str, *, min: float | None = None, max: float | None = None) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, "min": min, "max": max})
    return field(default=default, metadata={"help": help, "min": min, "max": max})


@dataclass
class RunSettings:
    name: str = setting("run", "name shown in progress output and the run store")
    seed: int = setting(0, "seed of every random generator in the run", min=0)
    rounds: int = setting(10, "self-improvement rounds after the seed round", min=0)
    time_budget_minutes: float = setting(0.0, "start no round that would end after this long (0 = no limit)", min=0)
    stop_at_reach: int = setting(0, "stop once reach is at least this (0 = never)", min=0)


@dataclass
class TaskSettings:
    name: str = setting("reversed-addition", "built-in task name or 'package.module:ClassName'")
    seed_min_difficulty: int = setting(1, "easiest difficulty of the ground-truth seed data", min=1)
    seed_max_difficulty: int = setting(6, "hardest difficulty of the ground-truth seed data", min=1)
    seed_examples: int = setting(50000, "size of the fixed ground-truth seed set", min=1)


@dataclass
class ModelSettings:
    n_layers: int = setting(4, "transformer blocks", min=1)
    d_model: int = setting(128, "residual width", min=8)
    n_heads: int = setting(8, "attention heads (d_model must divide by it)", min=1)
    d_ff: int = setting(512, "SwiGLU hidden width", min=8)
    positional: Literal["none", "rope"] = setting("none", "positional encoding: none (NoPE) or rope")
    max_len: int = setting(256, "longest sequence the model handles", min=8)
    members: int = setting(1, "independently seeded models; majority-vote judges vote across them", min=1)
    device: str = setting("cpu", "torch device the models live on: cpu, cuda, cuda:1, ...")


@dataclass
class SamplerSettings:
    type: Literal["greedy", "temperature"] = setting("greedy", "how attempts are decoded")
    samples: int = setting(1, "attempts per problem and member", min=1)
    turns: int = setting(1, "1: attempt; 2: attempt, then revise it (self-correction)", min=1, max=2)
    revisions: int = setting(1, "turns = 2: revisions drawn of each first attempt in GRPO's rounds, which "
                             "compare them (SFT rounds revise each attempt once)", min=1)
    temperature: float = setting(1.0, "sampling temperature (type = temperature)", min=0.0)
    top_k: int = setting(0, "keep only the k most likely tokens when sampling (0 = all)", min=0)
    batch_size: int = setting(512, "prompts decoded together", min=1)


@dataclass
class JudgeSettings:
    type: Literal["length", "consistency", "majority-vote", "verifier", "self-verdict", "self-certainty",
                  "process-reward"] = setting(
        "length", "length: answer has the length the prompt implies; consistency: equivalent phrasings "
        "get the same answer; majority-vote: attempts (all members and samples) agree; verifier: the task's "
        "checker (ground truth); self-verdict: the model's own Y/N verdict; self-certainty: the model's "
        "geometric-mean probability of its answer; process-reward: weakest step's share of successful rollouts "
        "(ground truth)")
    min_agreement: float = setting(0.5, "majority-vote: share of the votes the kept answer needs", min=0.0, max=1.0)
    weight: float = setting(1.0, "weight of this judge's value in an attempt's reward")
    threshold: float = setting(0.5, "self-verdict, self-certainty, process-reward: value an attempt needs to pass",
                               min=0.0, max=1.0)
    rollouts: int = setting(4, "process-reward: completions sampled from each step's prefix", min=1)
    rollout_temperature: float = setting(1.0, "process-reward: temperature of the rollouts", min=0.0)
    train_problems: int = setting(256, "self-verdict: labelled seed problems attempted each round to train the "
                                  "verdict on", min=1)
    train_steps: int = setting(100, "self-verdict: verdict training steps each round", min=0)
    lr: float = setting(0.0, "self-verdict: peak learning rate of verdict training (0 = learner.seed_lr)", min=0.0)


@dataclass
class SelectorSettings:
    type: Literal["all-judges", "own-agreeing", "threshold", "top-k", "bstar", "rebalance", "pairs", "groups",
                  "revisions"] = setting(
        "all-judges", "all-judges: keep attempts every judge passes; own-agreeing: the same, each member keeping "
        "its own; threshold / top-k / bstar / rebalance: by reward; pairs: best vs worst per query (DPO); "
        "groups: every query's samples (GRPO); revisions: self-correction traces (SFT), or with grpo "
        "each query's first attempts and their revisions (SCoRe)")
    threshold: float = setting(1.0, "reward an attempt needs to be kept (bstar: chosen each round)")
    max_per_query: int = setting(0, "distinct answers kept per query (0 = all)", min=0)
    k: int = setting(4, "top-k: answers kept per query", min=1)
    head_cap: int = setting(2, "rebalance: answers kept per query", min=1)
    tail_rate: float = setting(0.25, "rebalance: pass rate at or below which a query is in the tail",
                               min=0.0, max=1.0)
    tail_boost: int = setting(3, "rebalance: copies of each answer kept for a tail query", min=1)
    margin: float = setting(0.5, "pairs: reward gap a chosen/rejected pair needs", min=0.0)
    fix_boost: int = setting(2, "revisions: copies of each wrong→right revision", min=1)
    shaping: float = setting(0.0, "revisions with grpo: SCoRe's bonus, a revision's reward is r2 + shaping * "
                             "(r2 - r1), so a fix outranks a right answer kept and a break a wrong one kept",
                             min=0.0)
    temperatures: list[float] = setting([0.6, 0.8, 1.0, 1.2], "bstar: sampling temperatures tried on the probe set")
    thresholds: list[float] = setting([0.5, 0.75, 1.0], "bstar: reward thresholds tried on the probe set")
    probe_problems: int = setting(128, "bstar: problems in each round's probe set", min=1)
    balance_target: int = setting(4, "bstar: n*, distinct correct answers a query needs to score fully", min=1)


@dataclass
class LearnerSettings:
    type: Literal["sft", "dpo", "grpo"] = setting("sft", "how the policy is updated: sft on kept examples, dpo on "
                                                  "pairs, grpo on groups")
    lr: float = setting(1e-3, "peak learning rate (AdamW)", min=0.0)
    seed_lr: float = setting(0.0, "peak learning rate of round 0's supervised training and of verdict training "
                             "(0 = lr); RL learners want a far smaller lr than SFT", min=0.0)
    batch_size: int = setting(128, "examples per optimizer step (grpo: completions, in whole groups)", min=1)
    seed_batch_size: int = setting(0, "examples per step of round 0's supervised training and of verdict "
                                   "training (0 = batch_size)", min=0)
    weight_decay: float = setting(0.01, "AdamW weight decay", min=0.0)
    warmup_steps: int = setting(100, "linear warmup steps of each training phase", min=0)
    decay_fraction: float = setting(0.2, "share of each phase spent decaying the rate", min=0.0, max=1.0)
    seed_steps: int = setting(3000, "steps of supervised training on the seed data (round 0)", min=0)
    steps_per_round: int = setting(400, "steps of training in each self-improvement round", min=0)
    newest_share: float = setting(0.5, "share of each batch drawn from the newest self-labels", min=0.0, max=1.0)
    beta: float = setting(0.1, "dpo: preference strength; grpo: weight of the KL to the round's start", min=0.0)
    clip: float = setting(0.2, "grpo: clip range of the importance ratio", min=0.0)
    on_policy: bool = setting(False, "grpo: sample each step's groups from the policy as it is then (the round's "
                              "problems are shared out across its steps, each used once; batch_size and clip "
                              "are unused); false: sample once a round and reuse the groups every step")
    sft_rounds: int = setting(0, "grpo: rounds after the seed round that learn by SFT on the selector's examples "
                              "(at seed_lr and seed_batch_size) before RL starts, so that RL starts from a model "
                              "that already writes the format (selector.type = 'revisions')", min=0)
    sft_weight: float = setting(0.0, "dpo: weight of the chosen answers' log-likelihood added to the DPO loss "
                                "(RPO)", min=0.0)


@dataclass
class CurriculumSettings:
    type: Literal["easy-to-hard", "uniform"] = setting(
        "easy-to-hard", "easy-to-hard: raise difficulty past a competence gate; uniform: fresh problems from a "
        "fixed difficulty range")
    min_difficulty: int = setting(0, "uniform: easiest difficulty (0 = task.seed_min_difficulty)", min=0)
    max_difficulty: int = setting(0, "uniform: hardest difficulty (0 = task.seed_max_difficulty)", min=0)
    problems_per_round: int = setting(4000, "new problems the model labels each round", min=1)
    difficulty_weights: list[float] = setting([], "uniform: relative share of each difficulty from the easiest "
                                              "to the hardest (empty = equal)")
    span: int = setting(1, "difficulties above the frontier probed in one round (labels past the first one "
                                   "that fails the gate are not trained on)", min=1)
    gate: float = setting(0.8, "share of a difficulty's problems that must be kept to advance past it",
                          min=0.0, max=1.0)

    def uniform_range(self, task: TaskSettings) -> tuple[int, int]:
        """The uniform curriculum's easiest and hardest difficulty (a 0 bound is the seed set's)."""
        return self.min_difficulty or task.seed_min_difficulty, self.max_difficulty or task.seed_max_difficulty


@dataclass
class MonitorSettings:
    eval_per_difficulty: int = setting(128, "held-out problems per difficulty", min=1)
    eval_ahead: int = setting(3, "evaluate difficulties up to frontier + this", min=0)
    eval_max_difficulty: int = setting(40, "largest difficulty ever evaluated", min=1)
    threshold: float = setting(0.95, "accuracy a difficulty needs to count towards reach", min=0.0, max=1.0)
    pass_k: int = setting(4, "k of pass@k over each round's samples (at most sampler.samples)", min=1)
    pass_s: int = setting(2, "S of Pass@K-S and Reward@K-S (distinct correct answers a query needs)", min=1)
    collapse_diversity: float = setting(0.0, "alarm when the share of distinct answers per query falls below this "
                                        "(0 = off)", min=0.0, max=1.0)
    collapse_entropy: float = setting(0.0, "alarm when answer entropy per query (nats) falls below this (0 = off)",
                                      min=0.0)


@dataclass
class Recipe:
    run: RunSettings = field(default_factory=RunSettings)
    task: TaskSettings = field(default_factory=TaskSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    judges: list[JudgeSettings] = field(default_factory=list)
    selector: SelectorSettings = field(default_factory=SelectorSettings)
    learner: LearnerSettings = field(default_factory=LearnerSettings)
    curriculum: CurriculumSettings = field(default_factory=CurriculumSettings)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)


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
        if is_dataclass(tp):
            kwargs[key] = _build(tp, value, at)
        elif typing.get_origin(tp) is list:
            (item,) = typing.get_args(tp)
            if not isinstance(value, list):
                what = "an array of tables" if is_dataclass(item) else f"an array of {item.__name__}"
                raise RecipeError(f"{at}: expected {what}, found {type(value).__name__} {value!r}")
            if is_dataclass(item):
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
    t = recipe.task
    if t.seed_min_difficulty > t.seed_max_difficulty:
        raise RecipeError(f"task.seed_min_difficulty ({t.seed_min_difficulty}) exceeds "
                          f"task.seed_max_difficulty ({t.seed_max_difficulty})")
    m = recipe.model
    if m.d_model % m.n_heads:
        raise RecipeError(f"model.d_model ({m.d_model}) must be divisible by model.n_heads ({m.n_heads})")
    if (m.d_model // m.n_heads) % 2 and m.positional == "rope":
        raise RecipeError("model: rope needs an even head width (d_model / n_heads)")
    _check_method(recipe)


# what each learner trains on, and the selector that makes it
_LEARNER_NEEDS = {"dpo": "pairs", "grpo": "groups"}


def _check_method(recipe: Recipe) -> None:
    """Parts that do not fit together: each message names the keys to change."""
    s, sel, lr, mon = recipe.sampler, recipe.selector, recipe.learner, recipe.monitor
    judges = [j.type for j in recipe.judges]
    wanted = _LEARNER_NEEDS.get(lr.type)
    two_turn_rl = lr.type == "grpo" and sel.type == "revisions"  # revisions also makes revision groups
    if wanted and sel.type != wanted and not two_turn_rl:
        raise RecipeError(f"learner.type = '{lr.type}' trains on {wanted}: set selector.type = '{wanted}' "
                          f"(found '{sel.type}')")
    for selector, learner in ((v, k) for k, v in _LEARNER_NEEDS.items()):
        if sel.type == selector and lr.type != learner:
            raise RecipeError(f"selector.type = '{selector}' makes {selector} for learner.type = '{learner}' "
                              f"(found learner.type = '{lr.type}')")
    if lr.on_policy:
        if lr.type != "grpo":
            raise RecipeError(f"learner.on_policy = true samples groups for GRPO's steps: set learner.type = 'grpo' "
                              f"(found '{lr.type}')")
        if lr.steps_per_round < 1:
            raise RecipeError("learner.on_policy = true samples a round's attempts at its steps: set "
                              "learner.steps_per_round >= 1 (found 0)")
        if recipe.curriculum.problems_per_round < lr.steps_per_round:
            raise RecipeError(f"learner.on_policy = true shares curriculum.problems_per_round "
                              f"({recipe.curriculum.problems_per_round}) out across learner.steps_per_round "
                              f"({lr.steps_per_round}): each step needs at least one problem")
    if sel.type not in ("all-judges", "own-agreeing") and not judges:
        raise RecipeError(f"selector.type = '{sel.type}' selects by reward: add at least one [[judges]] table")
    if sel.type in ("pairs", "groups", "bstar", "top-k") and s.samples < 2:
        raise RecipeError(f"selector.type = '{sel.type}' compares samples of a query: set sampler.samples >= 2 "
                          f"(found {s.samples})")
    if (sel.type == "bstar" or lr.type == "grpo") and s.type != "temperature":
        who = "selector.type = 'bstar'" if sel.type == "bstar" else "learner.type = 'grpo'"
        raise RecipeError(f"{who} needs sampled attempts: set sampler.type = 'temperature' (found '{s.type}')")
    if sel.type == "bstar" and "verifier" not in judges:
        raise RecipeError("selector.type = 'bstar' scores balance with the checker: add a [[judges]] table with "
                          "type = 'verifier'")
    if (sel.type == "revisions") != (s.turns == 2):
        raise RecipeError(f"selector.type = 'revisions' and sampler.turns = 2 go together (found selector.type = "
                          f"'{sel.type}', sampler.turns = {s.turns})")
    for key, value, used, purpose in (
            ("sampler.revisions", s.revisions, s.revisions > 1, "draws several revisions of each attempt for GRPO's "
             "revision groups"),
            ("selector.shaping", sel.shaping, sel.shaping > 0, "shapes the reward of GRPO's revision groups"),
            ("learner.sft_rounds", lr.sft_rounds, lr.sft_rounds > 0, "warms GRPO up by SFT on the selector's "
             "examples")):
        if used and not two_turn_rl:
            raise RecipeError(f"{key} = {value:g} {purpose}: set learner.type = 'grpo' and selector.type = 'revisions' "
                              f"(found '{lr.type}', '{sel.type}')")
    if sel.type == "own-agreeing" and recipe.model.members < 2:
        raise RecipeError("selector.type = 'own-agreeing' needs several models: set model.members >= 2")
    if s.samples > 1 and mon.pass_k > s.samples:
        raise RecipeError(f"monitor.pass_k ({mon.pass_k}) exceeds sampler.samples ({s.samples})")
    c = recipe.curriculum
    if c.type == "uniform" and c.min_difficulty and c.max_difficulty and c.min_difficulty > c.max_difficulty:
        raise RecipeError(f"curriculum.min_difficulty ({c.min_difficulty}) exceeds curriculum.max_difficulty "
                          f"({c.max_difficulty})")
    if c.difficulty_weights:
        if c.type != "uniform":
            raise RecipeError(f"curriculum.difficulty_weights weighs a fixed range: set curriculum.type = 'uniform' "
                              f"(found '{c.type}')")
        low, high = c.uniform_range(recipe.task)
        if len(c.difficulty_weights) != high - low + 1:
            raise RecipeError(f"curriculum.difficulty_weights has {len(c.difficulty_weights)} weights for the "
                              f"{high - low + 1} difficulties {low}..{high}: give one for each")
        if min(c.difficulty_weights) < 0 or not sum(c.difficulty_weights) > 0:
            raise RecipeError(f"curriculum.difficulty_weights must be >= 0 and not all 0 "
                              f"(found {c.difficulty_weights})")


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

        check_runnable(recipe)
    except RecipeError as e:
        raise RecipeError(f"{path}: {e}") from None
    return recipe


def notes(recipe: Recipe) -> list[str]:
    """What a user should know before a legitimate but unusual recipe starts."""
    out = []
    if not recipe.judges and recipe.run.rounds:
        out.append("the recipe has no [[judges]]: every self-label will be kept (a no-filter ablation)")
    return out


def from_dict(data: dict, source: str) -> Recipe:
    """A recipe from plain data (as ``to_dict`` wrote it into a run's store); errors name ``source``."""
    try:
        recipe = _build(Recipe, data, "")
        _check_combinations(recipe)
        from selftaught.preflight import check_runnable

        check_runnable(recipe)
    except RecipeError as e:
        raise RecipeError(f"{source}: {e}") from None
    return recipe


def to_dict(obj: Any) -> Any:
    """The fully resolved recipe as plain data (written into the run directory)."""
    if is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, list):
        return [to_dict(v) for v in obj]
    return obj


def describe(cls: type = Recipe, prefix: str = "") -> list[tuple[str, str, Any, str]]:
    """(key, type, default, help) for every setting: the source of docs/recipes.md."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        tp, key = hints[f.name], f"{prefix}{f.name}"
        if is_dataclass(tp):
            rows += describe(tp, key + ".")
        elif typing.get_origin(tp) is list and is_dataclass(typing.get_args(tp)[0]):
            rows += describe(typing.get_args(tp)[0], f"{key}[].")
        else:
            default = f.default if f.default is not MISSING else f.default_factory()
            rows.append((key, _type_name(tp), default, f.metadata.get("help", "")))
    return rows


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
    rows += [f"| `{k}` | {t} | `{d!r}` | {h} |" for k, t, d, h in describe()]
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
