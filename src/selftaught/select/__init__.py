"""Selectors: decide what the learner sees."""

from selftaught.select.consensus import Selection, keep_if_all_judges_pass

__all__ = ["Selection", "keep_if_all_judges_pass"]
