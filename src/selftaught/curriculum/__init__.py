"""Curricula: which problems the model attempts next."""

from selftaught.curriculum.easy_to_hard import EasyToHard
from selftaught.curriculum.uniform import Uniform

__all__ = ["EasyToHard", "Uniform"]
