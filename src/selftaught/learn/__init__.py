"""Learners: update the policy."""

from selftaught.learn.replay import Dataset, ReplayMix
from selftaught.learn.sft import Example, SFTSettings, collate, make_optimizer, sft_steps

__all__ = ["Dataset", "Example", "ReplayMix", "SFTSettings", "collate", "make_optimizer", "sft_steps"]
