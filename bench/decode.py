"""New tokens per second of our decoder vs Hugging Face ``generate`` on the same Llama-shaped model.

Both decode the same batch of reversed-addition prompts greedily with the same weights (our model
in rope mode, copied into ``LlamaForCausalLM``), in the same process. Target: ratio >= 5x.

    python bench/decode.py [--batch 256] [--new-tokens 24] [--repeats 3] [--checkpoint DIR]

It also prints the ceiling: both decoders' weight-matmul FLOP rate as a share of this machine's fp32
GEMM rate, so a ratio can be judged against what the hardware allows.

With ``--checkpoint`` (a trained rope model) rows finish at different lengths, which our decoder
exploits and Hugging Face's does not; without it the weights are random and every row runs to the
token limit, so the figure is pure per-token speed.
"""

from __future__ import annotations

import argparse
import random
import time

import torch

from gemm import gemm_flops  # bench/gemm.py: scripts here run with bench/ on sys.path
from selftaught.models import Transformer, TransformerConfig, generate
from selftaught.models.llama import to_llama
from selftaught.tasks import CharTokenizer, ReversedAddition
from selftaught.tasks.tokenizer import EOS, PAD


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--new-tokens", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--checkpoint", default=None)
    args = ap.parse_args()

    task = ReversedAddition()
    tok = CharTokenizer(task.alphabet)
    torch.manual_seed(0)
    if args.checkpoint:
        model = Transformer.load(args.checkpoint).eval()
    else:
        model = Transformer(TransformerConfig(vocab_size=tok.vocab_size, n_layers=4, d_model=128, n_heads=8,
                                              d_ff=512, positional="rope")).eval()
    hf = to_llama(model)
    rng = random.Random(0)
    prompts = [tok.encode(task.sample(rng, rng.randint(1, 12)).prompt) for _ in range(args.batch)]
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), PAD)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):  # left padding, as batched generation needs
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1

    def ours() -> list[list[int]]:
        return generate(model, prompts, args.new_tokens)

    def theirs() -> list[list[int]]:
        with torch.inference_mode():
            out = hf.generate(ids, attention_mask=mask, max_new_tokens=args.new_tokens, do_sample=False,
                              eos_token_id=EOS, pad_token_id=PAD)[:, width:].tolist()
        return [row[: row.index(EOS)] if EOS in row else row for row in out]

    results = {}
    for name, fn in (("selftaught", ours), ("transformers", theirs)):
        fn()  # warm-up
        best = float("inf")
        for _ in range(args.repeats):
            t = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - t)
        tokens = sum(len(o) + (len(o) < args.new_tokens) for o in out)  # EOS counts as generated
        results[name] = (out, tokens / best, best)
        print(f"{name:>12}: {tokens} new tokens in {best:.3f}s = {tokens / best:,.0f} tokens/s")
    same = results["selftaught"][0] == results["transformers"][0]
    print(f"identical greedy outputs: {same}")
    print(f"threads: {torch.get_num_threads()}, batch {args.batch}, "
          f"params {model.num_params():,}, transformers {__import__('transformers').__version__}")
    ratio = results["selftaught"][1] / results["transformers"][1]
    print(f"ratio (selftaught / transformers): {ratio:.2f}x  (target >= 5x)")
    # The ceiling: weight matmuls alone (2 x params per token, prompt and new tokens) at this
    # machine's GEMM rate. A decoder already near it cannot be beaten by much, however lean.
    peak = gemm_flops()
    new_tokens = sum(len(o) for o in results["transformers"][0])
    work = 2 * model.num_params() * (args.batch * width + new_tokens)
    for name, (_, _, seconds) in results.items():
        print(f"{name:>12}: {work / seconds / 1e9:.1f} GFLOP/s of weight matmuls = "
              f"{work / seconds / peak:.0%} of the fp32 2048^2 GEMM ({peak / 1e9:.0f} GFLOP/s)")


if __name__ == "__main__":
    main()
