"""The run store: durable state of a run."""

from selftaught.store.sqlite import FILENAME, NotARunError, RunStore

__all__ = ["FILENAME", "NotARunError", "RunStore"]
