"""Training throughput as a share of this machine's fp32 matmul throughput, measured in one run.

The reference is a 2048 x 2048 fp32 GEMM. Training FLOPs are counted as 6 x parameters x tokens
for the weight matmuls plus 12 x layers x width x (sequence length / 2) per token for causal
attention, over real (unpadded) tokens only, so padding is never counted as useful work.
Target: >= 55% of the GEMM throughput (issue 43).

    python bench/train.py [--steps 30] [--batch 128] [--max-difficulty 12]
"""

from __future__ import annotations

import argparse
import random
import time

import torch

from gemm import gemm_flops  # bench/gemm.py: scripts here run with bench/ on sys.path
from selftaught.learn import Example, SFTSettings, sft_steps
from selftaught.models import Transformer, TransformerConfig
from selftaught.models.char_policy import LENGTH_BUCKETS, CharPolicy, length_sorted
from selftaught.models.optim import make_optimizer
from selftaught.models.transformer import Packing
from selftaught.tasks import CharTokenizer, ReversedAddition
from selftaught.tasks.tokenizer import PAD


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--max-difficulty", type=int, default=12)
    args = ap.parse_args()

    task = ReversedAddition()
    tok = CharTokenizer(task.alphabet)
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(vocab_size=tok.vocab_size, n_layers=4, d_model=128, n_heads=8, d_ff=512))
    settings = SFTSettings(batch_size=args.batch)
    policy = CharPolicy(model, tok, make_optimizer(model, settings.lr, settings.weight_decay))
    rng = random.Random(0)
    pool = []
    for _ in range(20000):
        p = task.sample(rng, rng.randint(1, args.max_difficulty))
        pool.append(Example(p.prompt, task.target(p)))

    batches = []

    def draw(r: random.Random, n: int) -> list[Example]:
        batch = r.sample(pool, n)
        batches.append(batch)
        return batch

    sft_steps(policy, draw, 5, settings, random.Random(1))  # warm-up
    batches.clear()
    peak = gemm_flops()
    t = time.perf_counter()
    sft_steps(policy, draw, args.steps, settings, random.Random(2))
    elapsed = time.perf_counter() - t
    peak = (peak + gemm_flops()) / 2  # before and after, in case the machine's clock moved

    cfg = model.cfg
    # Every parameter is a matmul weight per token: the tied embedding counts once, as the head.
    dense = model.num_params()
    useful = padded = tokens = 0.0
    for batch in batches:
        inputs, _, groups = length_sorted(tok, [e.prompt for e in batch], [e.answer for e in batch], LENGTH_BUCKETS)
        for n in (inputs != PAD).sum(1).tolist():
            useful += 6 * dense * n + 6 * cfg.n_layers * cfg.d_model * n * n  # causal attention: ~n^2/2 pairs
            tokens += n
        padded += sum(n * t for n, t in Packing(inputs != PAD, groups).shapes)  # each group at its own length
    rate = useful / elapsed
    print(f"fp32 GEMM 2048^2: {peak / 1e9:.1f} GFLOP/s  (threads {torch.get_num_threads()})")
    ms = elapsed / args.steps * 1000
    print(f"training: {args.steps} steps of {args.batch} in {elapsed:.2f}s = {ms:.0f} ms/step, "
          f"{tokens / elapsed:,.0f} tokens/s")
    print(f"padding: {tokens / padded:.0%} of attention positions are real; other layers see real tokens only")
    print(f"training: {rate / 1e9:.1f} GFLOP/s of useful work")
    print(f"ratio (training / GEMM): {rate / peak:.1%}  (target >= 55%)")


if __name__ == "__main__":
    main()
