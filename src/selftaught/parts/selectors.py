"""Selectors: the ``[selector]`` section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from selftaught.registry import register, register_role
from selftaught.settings import RecipeError, setting


@dataclass
class SelectorSettings:
    type: str = setting("all-judges", "what the learner sees")

    makes: ClassVar[tuple[str, ...]] = ("examples",)  # what it builds: examples, pairs, groups
    by_reward: ClassVar[bool] = False  # ranks or thresholds the judges' weighted values
    compares_samples: ClassVar[bool] = False  # needs several samples of each query
    random_samples: ClassVar[bool] = False  # needs a sampler that draws at random
    revisions: ClassVar[bool] = False  # reads first attempts and their revisions


_THRESHOLD = "reward an attempt needs to be kept"


@dataclass
class AllJudgesSettings(SelectorSettings):
    labels_per_problem: int = setting(1, "distinct kept answers a problem contributes, most common first (free-text "
                                      "replies that agree on their answer differ in wording)", min=1)


@dataclass
class OwnAgreeingSettings(SelectorSettings):
    def check(self, recipe, where: str) -> None:
        if recipe.model.members < 2:
            raise RecipeError(f"{where}.type = 'own-agreeing' needs several models: set model.members >= 2")


@dataclass
class ThresholdSettings(SelectorSettings):
    threshold: float = setting(1.0, _THRESHOLD)
    max_per_query: int = setting(0, "distinct answers kept per query (0 = all)", min=0)

    by_reward: ClassVar[bool] = True


@dataclass
class TopKSettings(SelectorSettings):
    threshold: float = setting(1.0, _THRESHOLD)
    k: int = setting(4, "answers kept per query", min=1)

    by_reward: ClassVar[bool] = True
    compares_samples: ClassVar[bool] = True


@dataclass
class RebalanceSettings(SelectorSettings):
    threshold: float = setting(1.0, _THRESHOLD)
    head_cap: int = setting(2, "answers kept per query", min=1)
    tail_rate: float = setting(0.25, "pass rate at or below which a query is in the tail", min=0.0, max=1.0)
    tail_boost: int = setting(3, "copies of each answer kept for a tail query", min=1)

    by_reward: ClassVar[bool] = True


@dataclass
class BStarSettings(SelectorSettings):
    max_per_query: int = setting(0, "distinct answers kept per query (0 = all)", min=0)
    temperatures: list[float] = setting([0.6, 0.8, 1.0, 1.2], "sampling temperatures tried on the probe set")
    thresholds: list[float] = setting([0.5, 0.75, 1.0], "reward thresholds tried on the probe set")
    probe_problems: int = setting(128, "problems in each round's probe set", min=1)

    by_reward: ClassVar[bool] = True
    compares_samples: ClassVar[bool] = True
    random_samples: ClassVar[bool] = True

    def check(self, recipe, where: str) -> None:
        if "verifier" not in [j.type for j in recipe.judges]:
            raise RecipeError(f"{where}.type = 'bstar' scores balance with the checker: add a [[judges]] table with "
                              "type = 'verifier'")


@dataclass
class PairsSettings(SelectorSettings):
    margin: float = setting(0.5, "reward gap a chosen/rejected pair needs", min=0.0)

    makes: ClassVar[tuple[str, ...]] = ("pairs",)
    by_reward: ClassVar[bool] = True
    compares_samples: ClassVar[bool] = True


@dataclass
class GroupsSettings(SelectorSettings):
    makes: ClassVar[tuple[str, ...]] = ("groups",)
    by_reward: ClassVar[bool] = True
    compares_samples: ClassVar[bool] = True


@dataclass
class RevisionsSettings(SelectorSettings):
    threshold: float = setting(1.0, _THRESHOLD)
    fix_boost: int = setting(2, "copies of each wrong→right revision kept for SFT", min=1)
    shaping: float = setting(0.0, "rounds that learn from groups: SCoRe's bonus, a revision's reward is r2 + shaping "
                             "* (r2 - r1), so a fix outranks a right answer kept and a break a wrong one kept",
                             min=0.0)

    makes: ClassVar[tuple[str, ...]] = ("examples", "groups")
    by_reward: ClassVar[bool] = True
    revisions: ClassVar[bool] = True

    def check(self, recipe, where: str) -> None:
        if self.shaping > 0 and recipe.learner.consumes != "groups":
            raise RecipeError(f"{where}.shaping = {self.shaping:g} shapes the reward of revision groups: set "
                              f"learner.type = 'grpo' (found learner.type = '{recipe.learner.type}')")


register_role("selector", SelectorSettings)
for _name, _settings, _target, _summary in (
        ("all-judges", AllJudgesSettings, "KeepIfAllPass", "keep attempts every judge passes; a problem's label is "
         "the answer most of its kept attempts give"),
        ("own-agreeing", OwnAgreeingSettings, "OwnAgreeing", "the same, each member keeping its own (multiagent)"),
        ("threshold", ThresholdSettings, "Threshold", "keep distinct answers whose reward reaches the threshold "
         "(STaR, ReST-EM)"),
        ("top-k", TopKSettings, "TopK", "keep each query's k best answers above the threshold"),
        ("rebalance", RebalanceSettings, "Rebalance", "cap easy queries, repeat the answers of hard ones"),
        ("bstar", BStarSettings, "BStar", "B-STaR: each round, the (temperature, threshold) with the best balance "
         "score on a probe set"),
        ("pairs", PairsSettings, "Pairs", "best vs worst answer per query (DPO)"),
        ("groups", GroupsSettings, "Groups", "every query's samples with their rewards (GRPO)"),
        ("revisions", RevisionsSettings, "Revisions", "self-correction traces (SFT), or each query's first attempts "
         "and their revisions (SCoRe's groups)")):
    register("selector", _name, _settings, f"selftaught.select.selectors:{_target}.from_settings", _summary)
