"""Shards on Ray actors, each holding a replica of every member's policy.

The driver publishes a member's weights once per version (``ray.put`` of a frozen copy) and
names the version in every shard; a worker whose replica is older fetches that object before it
runs the shard, so no shard is ever run with other weights than it asks for. A worker that dies
(its process killed, its node lost) is replaced and the shards it held run again elsewhere: a
shard's rows, weights and random seed are fixed by the shard, so the rerun draws what the lost
one would have.
"""

from __future__ import annotations

import math
import os
import random
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import ray
import torch
from ray.exceptions import RayActorError

from selftaught.engine.executors import ClusterError, Shard, run_shard
from selftaught.policy import Policy

IN_FLIGHT = 2  # shards queued on a worker at once: it starts the next as soon as it sends a result back


@contextmanager
def _driver_randomness_kept() -> Iterator[None]:
    """Ray draws from Python's global generator (ports, ids), which a run restores on resume and
    a user's task may draw from: leave it as the local executor would."""
    python, numpy = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)


def _answers(address: str, timeout_s: float = 5.0) -> None:
    """Fail at once where nothing listens at ``host:port`` (``ray.init`` retries for minutes)."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or address, int(port) if port.isdigit() else 6379), timeout_s).close()
    except OSError as e:
        raise ClusterError(f"engine.address: cannot reach the Ray cluster at {address!r}: {e.strerror or e}; "
                           "start one with `ray start --head`, or leave engine.address empty to start Ray "
                           "on this machine") from None


@ray.remote
class PolicyWorker:
    def __init__(self, name: str, threads: int, gpu: bool):
        torch.set_num_threads(threads)
        self.name, self.gpu = f"{name}@{socket.gethostname()}", gpu
        self.replicas: dict[int, tuple[int, Policy]] = {}  # member -> (version, replica)

    def pid(self) -> int:
        return os.getpid()

    def run(self, shard: Shard, weights: list) -> tuple[Any, str]:
        """``weights`` holds the object of the shard's (member, version), nested in a list so that
        Ray hands over the reference, and the object is fetched only when this replica is older."""
        held = self.replicas.get(shard.member)
        if held is None or held[0] != shard.version:
            policy = ray.get(weights[0])
            if self.gpu and hasattr(policy, "model"):
                policy.model.to("cuda")
            self.replicas[shard.member] = held = (shard.version, policy)
        return run_shard(held[1], shard), self.name


class RayExecutor:
    name = "ray"

    def __init__(self, settings):
        self.settings = settings
        self.workers: list[Any] = []
        self.weights: dict[int, tuple[int, Any]] = {}  # member -> (version, object ref of its frozen copy)
        self.started_ray = False
        self.spawned = 0
        self.publish_s = 0.0  # time spent publishing weights (copy + put), for the scale-out bench
        self.replaced = 0  # workers lost and replaced
        with _driver_randomness_kept():
            self._connect()

    # ---- the cluster -------------------------------------------------------------------------------

    def _connect(self) -> None:
        """Join the cluster, or start Ray on this machine (loopback), unless this process already
        has: a cluster that cannot be reached fails the run before it writes anything."""
        s = self.settings
        if ray.is_initialized():
            return
        if s.address and s.address != "auto":
            _answers(s.address)
        try:
            if s.address:
                ray.init(address=s.address, log_to_driver=False)
            else:
                ray.init(num_cpus=max(1, math.ceil(s.workers * s.num_cpus)), include_dashboard=False,
                         log_to_driver=False, _node_ip_address="127.0.0.1")
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"the Ray cluster at {s.address!r}" if s.address else "Ray on this machine"
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ClusterError(f"engine.address: cannot reach {where}: {first}") from None
        self.started_ray = True

    def _start(self) -> None:
        """The workers, started when the first weights are published (after a ``close``, again)."""
        if not self.workers:
            with _driver_randomness_kept():
                self._connect()
                self.workers = [self._spawn() for _ in range(self.settings.workers)]

    def _spawn(self) -> Any:
        s = self.settings
        self.spawned += 1
        return PolicyWorker.options(num_cpus=s.num_cpus, num_gpus=s.num_gpus).remote(
            f"w{self.spawned - 1}", s.threads, s.num_gpus > 0)

    def pids(self) -> list[int]:
        self._start()
        return ray.get([w.pid.remote() for w in self.workers])

    # ---- the protocol ------------------------------------------------------------------------------

    def publish(self, member: int, version: int, policy: Policy) -> None:
        if self.weights.get(member, (None,))[0] == version:
            return
        self._start()
        start = time.perf_counter()
        with _driver_randomness_kept():
            self.weights[member] = (version, ray.put(policy.frozen_copy()))  # the older version's object is freed
        self.publish_s += time.perf_counter() - start

    def run(self, shards: Sequence[Shard], done: Callable[[int], None]) -> list[tuple[Any, str]]:
        self._start()
        with _driver_randomness_kept():
            return self._run(shards, done)

    def _run(self, shards: Sequence[Shard], done: Callable[[int], None]) -> list[tuple[Any, str]]:
        for shard in shards:
            if self.weights.get(shard.member, (None,))[0] != shard.version:
                raise RuntimeError(f"member {shard.member}: version {shard.version} was never published")
        queue = deque(range(len(shards)))
        results: list[Any] = [None] * len(shards)
        pending: dict[Any, tuple[int, int, Any]] = {}  # ref -> (shard, worker slot, worker)

        def submit(slot: int) -> None:
            i = queue.popleft()
            worker = self.workers[slot]
            pending[worker.run.remote(shards[i], [self.weights[shards[i].member][1]])] = (i, slot, worker)

        for slot in range(len(self.workers)):
            for _ in range(IN_FLIGHT):
                if queue:
                    submit(slot)
        while pending:
            (ref,), _ = ray.wait(list(pending))  # the first to finish
            i, slot, worker = pending.pop(ref)
            try:
                results[i] = ray.get(ref)
            except RayActorError:  # the worker died (its process killed, its node lost)
                queue.appendleft(i)  # run again: same rows, weights and seed, so the same result
                if self.workers[slot] is worker:  # the first of its lost shards replaces it
                    self.workers[slot] = self._spawn()
                    self.replaced += 1
            else:
                done(i)
            if queue:
                submit(slot)
        return results

    def close(self) -> None:
        with _driver_randomness_kept():
            for worker in self.workers:
                ray.kill(worker)
            self.workers, self.weights = [], {}
            if self.started_ray:
                ray.shutdown()
                self.started_ray = False
