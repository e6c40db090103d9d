"""Judges: give each attempt a score and a verdict."""

from selftaught.judge.filters import ConsistencyJudge, Judge, LengthJudge, MajorityVoteJudge, Score

__all__ = ["ConsistencyJudge", "Judge", "LengthJudge", "MajorityVoteJudge", "Score", "build_judge"]


def build_judge(settings) -> Judge:
    if settings.type == "length":
        return LengthJudge()
    if settings.type == "consistency":
        return ConsistencyJudge()
    if settings.type == "majority-vote":
        return MajorityVoteJudge(settings.min_agreement)
    raise ValueError(f"unknown judge type {settings.type!r}")
