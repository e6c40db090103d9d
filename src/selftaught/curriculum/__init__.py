"""Curricula: decide which tasks come next."""

from selftaught.curriculum.easy_to_hard import EasyToHard

__all__ = ["EasyToHard"]
