"""Judges: give each attempt a score and a verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from selftaught.judge.filters import ConsistencyJudge, Judge, LengthJudge, MajorityVoteJudge, Score
from selftaught.judge.process_reward import ProcessRewardJudge
from selftaught.judge.self_certainty import SelfCertaintyJudge
from selftaught.judge.self_verdict import SelfVerdictJudge
from selftaught.judge.verifier import VerifierJudge
from selftaught.policy import Policy

__all__ = ["ConsistencyJudge", "Judge", "JudgeContext", "LengthJudge", "MajorityVoteJudge", "ProcessRewardJudge",
           "Score", "SelfCertaintyJudge", "SelfVerdictJudge", "VerifierJudge", "build_judge"]


@dataclass
class JudgeContext:
    """What judges that consult the models need from the run."""

    members: Sequence[Policy]
    batch_size: int = 512
    generator: torch.Generator | None = None


def build_judge(settings, context: JudgeContext | None = None) -> Judge:
    kind = settings.type
    if kind == "length":
        return LengthJudge()
    if kind == "consistency":
        return ConsistencyJudge()
    if kind == "majority-vote":
        return MajorityVoteJudge(settings.min_agreement)
    if kind == "verifier":
        return VerifierJudge()
    if context is None:
        raise ValueError(f"judge {kind!r} consults the models: it needs a JudgeContext")
    if kind == "self-verdict":
        return SelfVerdictJudge(context.members, settings.threshold, context.batch_size)
    if kind == "self-certainty":
        return SelfCertaintyJudge(context.members, settings.threshold, context.batch_size)
    if kind == "process-reward":
        return ProcessRewardJudge(context.members, settings.rollouts, settings.threshold,
                                  settings.rollout_temperature, context.batch_size, context.generator)
    raise ValueError(f"unknown judge type {kind!r}")
