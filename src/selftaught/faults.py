"""Fault injection for the resume tests: kill this process at a named point of a named round.

``SELFTAUGHT_KILL_AT=POINT:ROUND`` (test-only) sends SIGKILL to the run at that point, as a crash or
an out-of-memory kill would: no handler runs, nothing is flushed. Points:

- ``sample``: after the first batch of attempts of the round
- ``learn``: halfway through the round's training steps
- ``checkpoint``: after the round's checkpoint is on disk, before the round commits
- ``commit``: inside the round's database transaction
"""

from __future__ import annotations

import os
import signal

ENV = "SELFTAUGHT_KILL_AT"
POINTS = ("sample", "learn", "checkpoint", "commit")


def point(name: str, round_: int) -> None:
    if os.environ.get(ENV) == f"{name}:{round_}":
        os.kill(os.getpid(), signal.SIGKILL)
