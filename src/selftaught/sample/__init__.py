"""Samplers: turn tasks into attempts."""

from selftaught.sample.attempts import Attempt, answer, sample_attempts

__all__ = ["Attempt", "answer", "sample_attempts"]
