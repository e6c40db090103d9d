"""Selectors: decide what the learner sees."""

from selftaught.select.consensus import (
    Group,
    Pair,
    Selection,
    drop_harder_than,
    keep_if_all_judges_pass,
    keep_own_agreeing,
)
from selftaught.select.reward import (
                                      build_groups,
                                      build_pairs,
                                      rewards,
                                      select_rebalanced,
                                      select_threshold,
                                      select_top_k,
)

__all__ = ["Group", "Pair", "Selection", "build_groups", "build_pairs", "drop_harder_than", "keep_if_all_judges_pass",
           "keep_own_agreeing", "rewards", "select_rebalanced", "select_threshold", "select_top_k"]
