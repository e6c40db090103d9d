"""TensorBoard scalars for each round, written when the optional ``tensorboard`` extra is installed.

The store stays the source of truth; this is a view of it where many users already look.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path


class Board:
    def __init__(self, writer):
        self.writer = writer

    def round(self, round_: int, metrics: list[tuple[str, int | None, float]], phases: dict[str, float]) -> None:
        for name, difficulty, value in metrics:
            if value is None or value != value:  # NaN: nothing measured
                continue
            tag = name if difficulty is None else f"{name}/difficulty-{difficulty:02d}"
            self.writer.add_scalar(tag, value, round_)
        for phase, seconds in phases.items():
            self.writer.add_scalar(f"seconds/{phase}", seconds, round_)
        self.writer.flush()


@contextmanager
def open_writer(run_dir: Path, first_round: int):
    """A ``Board`` over ``run_dir/tensorboard``, or None without tensorboard. Steps from
    ``first_round`` on are purged, so a resumed run does not show the abandoned rounds twice."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        yield None
        return
    writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=first_round or None)
    try:
        yield Board(writer)
    finally:
        writer.close()
