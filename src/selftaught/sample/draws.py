"""Where sampling randomness comes from: keys, not a running generator.

A run's sampling calls happen in program order on the driver: round r's n-th call (the sampler's,
a judge's rollouts, the probe of a tuning selector, each on-policy step's) gets the key
(run seed, r, n). The call's rows (problem x sample, stably sorted by prompt length so that a shard
pads little) are cut into shards of a fixed number of rows (``engine.shard_size``), and shard s
draws from a torch generator seeded by (key, s). So what a row draws depends on the run seed, the
round, the call and the rows it shares a shard with, never on which process drew it or what that
process drew before: a run spread over any number of workers draws what a one-process run draws,
and a round re-run after a crash or a resume draws the same again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class CallKey:
    """One sampling call: (run seed, round, call index within the round)."""

    seed: int
    round: int
    call: int

    def shard_seed(self, shard: int) -> int:
        """The seed of shard ``shard``'s generator: 63 bits of a hash of the key, so that nearby
        keys give unrelated streams."""
        text = f"selftaught-draw:{self.seed}:{self.round}:{self.call}:{shard}".encode()
        return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


class Draws:
    """The run's source of sampling keys; ``start_round`` at the top of every round."""

    def __init__(self, seed: int):
        self.seed, self.round, self.calls = seed, 0, 0

    def start_round(self, round_: int) -> None:
        self.round, self.calls = round_, 0

    def next_call(self) -> CallKey:
        key = CallKey(self.seed, self.round, self.calls)
        self.calls += 1
        return key


def shards(n: int, size: int) -> list[range]:
    """Rows 0..n-1 cut into consecutive shards of ``size`` (the last may be shorter)."""
    return [range(start, min(n, start + size)) for start in range(0, n, max(1, size))]
