"""Judges: give each attempt a score and a verdict. Each is registered under its recipe name in
``selftaught.parts.judges`` and made by its ``from_settings``."""

from __future__ import annotations

from selftaught.judge.filters import ConsistencyJudge, Judge, LengthJudge, MajorityVoteJudge, Score, Trains
from selftaught.judge.process_reward import ProcessRewardJudge
from selftaught.judge.self_certainty import SelfCertaintyJudge
from selftaught.judge.self_verdict import SelfVerdictJudge
from selftaught.judge.verifier import VerifierJudge

__all__ = ["ConsistencyJudge", "Judge", "LengthJudge", "MajorityVoteJudge", "ProcessRewardJudge", "Score",
           "SelfCertaintyJudge", "SelfVerdictJudge", "Trains", "VerifierJudge"]
