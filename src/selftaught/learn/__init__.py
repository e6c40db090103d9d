"""Learners: update the policy."""

from selftaught.learn.replay import Dataset, ReplayMix
from selftaught.learn.sft import Example, SFTSettings, sft_steps

__all__ = ["Dataset", "Example", "ReplayMix", "SFTSettings", "sft_steps"]
