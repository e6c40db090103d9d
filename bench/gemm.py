"""The reference every throughput benchmark is measured against: this machine's fp32 GEMM rate."""

from __future__ import annotations

import time

import torch


def gemm_flops(n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of an n x n fp32 matrix product, after a short warm-up."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t)
