"""Monitors: measure every round with ground truth, for reporting only."""

from selftaught.monitor.accuracy import (
    held_out_figures,
    held_out_set,
    label_precision,
    pass1_with_error,
    reach,
    sampled_pass_at_k,
    standard_error,
)

__all__ = ["held_out_figures", "held_out_set", "label_precision", "pass1_with_error", "reach", "sampled_pass_at_k",
           "standard_error"]
