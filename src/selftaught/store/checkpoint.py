"""Checkpoints: written whole or not at all, and never loaded unless every checksum matches.

A round's checkpoint is a directory ``checkpoints/round-N`` with, per member, the weights
(safetensors + config.json) and optimizer state, and one ``state.pt`` with every RNG state and the
curriculum and selector state. It is written under a temporary name, fsynced and renamed; the
sha256 of each file goes into the store in the same transaction as the round.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from selftaught.store.sqlite import StoreError, fsync_path


class CheckpointError(StoreError):
    """A checkpoint file that is missing or whose checksum does not match the store."""


def round_dir(run_dir: Path, round_: int) -> Path:
    return run_dir / "checkpoints" / f"round-{round_}"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_checkpoint(run_dir: Path, round_: int, write: Callable[[Path], None]) -> dict[str, str]:
    """Run ``write(directory)`` into a temporary directory, make it durable, move it into place.
    Returns {path relative to the run: sha256}."""
    final = round_dir(run_dir, round_)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    files = sorted(p for p in tmp.rglob("*") if p.is_file())
    digests = {str((final / p.relative_to(tmp)).relative_to(run_dir)): sha256(p) for p in files}
    for p in files:
        fsync_path(p)
    for d in sorted({p.parent for p in files}, reverse=True):
        fsync_path(d)
    if final.exists():  # left by a round that died before it committed
        shutil.rmtree(final)
    os.replace(tmp, final)
    fsync_path(final.parent)
    return digests


def verify(run_dir: Path, files: dict[str, str], round_: int) -> None:
    """Raise CheckpointError naming the first missing or damaged file."""
    if not files:
        raise CheckpointError(f"{run_dir}: round {round_} has no checkpoint recorded in the store")
    hint = f"; resume from an earlier round with `selftaught resume {run_dir} --from-round {round_ - 1}`" \
        if round_ > 0 else "; the run cannot be resumed"
    for rel, digest in files.items():
        path = run_dir / rel
        if not path.is_file():
            raise CheckpointError(f"{path}: checkpoint file is missing{hint}")
        if sha256(path) != digest:
            raise CheckpointError(f"{path}: checksum does not match the store (file changed or damaged){hint}")


def rng_states(loop_rng: random.Random) -> dict:
    """Every random state the loop draws from, in a form ``torch.load(weights_only=True)`` reads
    (sampling has none: its keys are the round's, ``selftaught.sample.draws``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "loop": loop_rng.getstate(),
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }


def restore_rng_states(states: dict, loop_rng: random.Random) -> None:
    loop_rng.setstate(_tuples(states["loop"]))
    random.setstate(_tuples(states["python"]))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])


def _tuples(x):
    """Python's random state is nested tuples; serialisation may hand them back as lists."""
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x
