"""The run store: durable state of a run."""

from selftaught.store.checkpoint import CheckpointError
from selftaught.store.sqlite import (
    FILENAME,
    AttemptRecord,
    NotARunError,
    RoundRecord,
    RunInUseError,
    RunStore,
    StoreError,
)

__all__ = ["FILENAME", "AttemptRecord", "CheckpointError", "NotARunError", "RoundRecord", "RunInUseError",
           "RunStore", "StoreError"]
