"""The reference every throughput benchmark is measured against: this machine's GEMM rate, fp32 and
bf16 (a CPU with AMX or avx512_bf16 multiplies bf16 several times faster), measured side by side.

    python bench/gemm.py [--n 2048]
"""

from __future__ import annotations

import argparse
import time

import torch


def gemm_flops(n: int = 2048, repeats: int = 10, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of an n x n matrix product in ``dtype``, after a short warm-up."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    for _ in range(3):
        a @ b
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t)


def rates() -> dict[str, float]:
    """fp32 and bf16 GEMM FLOP/s, each the mean of a measurement before and after the other's."""
    fp32, bf16 = gemm_flops(), gemm_flops(dtype=torch.bfloat16, repeats=30)
    return {"fp32": (fp32 + gemm_flops()) / 2, "bf16": (bf16 + gemm_flops(dtype=torch.bfloat16, repeats=30)) / 2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2048)
    args = ap.parse_args()
    fp32 = gemm_flops(args.n)
    bf16 = gemm_flops(args.n, repeats=30, dtype=torch.bfloat16)
    print(f"{args.n}^2 GEMM, torch threads {torch.get_num_threads()}: fp32 {fp32 / 1e9:.0f} GFLOP/s, "
          f"bf16 {bf16 / 1e9:.0f} GFLOP/s, bf16 / fp32 = {bf16 / fp32:.1f}x")


if __name__ == "__main__":
    main()
