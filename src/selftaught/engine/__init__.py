"""The engine drives the loop."""

from selftaught.engine.loop import Reporter, RoundReport, Run, SilentReporter

__all__ = ["Reporter", "RoundReport", "Run", "SilentReporter"]
