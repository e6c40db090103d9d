"""Monitors: measure every round with ground truth, for reporting only."""

from selftaught.monitor.accuracy import held_out_figures, held_out_set, label_precision, reach

__all__ = ["held_out_figures", "held_out_set", "label_precision", "reach"]
