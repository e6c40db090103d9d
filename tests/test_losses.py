"""DPO and GRPO losses against TRL's own implementations on identical inputs (float64), and on
small hand-made cases whose values are known in closed form."""

import math
import types
from collections import defaultdict

import pytest
import torch

from selftaught.learn.dpo import dpo_loss, preference_loss, sequence_logps
from selftaught.learn.grpo import group_advantages, grpo_loss
from selftaught.models import Transformer, TransformerConfig
from selftaught.models.char_policy import CharPolicy
from selftaught.tasks.tokenizer import PAD, CharTokenizer

trl = pytest.importorskip("trl")
from accelerate import Accelerator  # noqa: E402  (installed with trl)
from trl import DPOTrainer, GRPOTrainer  # noqa: E402
from trl.trainer.utils import add_fused_lm_head, nanstd  # noqa: E402

from selftaught.models.llama import to_llama  # noqa: E402

TOK = CharTokenizer("0123456789+=")


def _model(seed: int) -> Transformer:
    torch.manual_seed(seed)
    cfg = TransformerConfig(vocab_size=TOK.vocab_size, n_layers=2, d_model=32, n_heads=4, d_ff=64, max_len=64,
                            positional="rope")
    return Transformer(cfg).double().eval()


def _trl_stub(cls, **attrs):
    """A TRL trainer object with only the attributes its loss reads (its __init__ wants datasets)."""
    stub = object.__new__(cls)
    stub.__dict__.update(accelerator=Accelerator(cpu=True), _metrics=defaultdict(lambda: defaultdict(list)),
                         aux_loss_enabled=False, **attrs)
    return stub


PROMPTS = ["12+3=", "7+45=", "99+1=", "5+5="]
CHOSEN = ["42", "28", "001", "01"]
REJECTED = ["52", "2", "0101", "1"]


@pytest.mark.filterwarnings("ignore::FutureWarning")  # transformers deprecation inside TRL
@pytest.mark.parametrize("sft_weight", [0.0, 0.7])
def test_dpo_loss_equals_trl(sft_weight):
    policy, reference = _model(0), _model(1)
    beta = 0.3
    ours_policy, ours_ref = CharPolicy(policy, TOK), CharPolicy(reference, TOK)
    logps, mask = ours_policy.token_logps(PROMPTS + PROMPTS, CHOSEN + REJECTED)
    ours = preference_loss(logps, mask, sequence_logps(ours_ref, PROMPTS, CHOSEN),
                           sequence_logps(ours_ref, PROMPTS, REJECTED), beta, sft_weight)

    hf_policy, hf_ref = to_llama(policy).double(), to_llama(reference).double()
    for m in (hf_policy, hf_ref):
        add_fused_lm_head(m, outputs=("log_probs", "entropy", "mean_logits", "is_top1"))
    seqs, completion = [], []
    for p, c in [*zip(PROMPTS, CHOSEN), *zip(PROMPTS, REJECTED)]:  # TRL's batch is [chosen; rejected]
        ids = TOK.encode(p) + TOK.encode(c) + [1]  # completion ends with EOS, as ours does
        seqs.append(ids)
        completion.append([0] * len(p) + [1] * (len(ids) - len(p)))
    width = max(map(len, seqs))
    input_ids = torch.tensor([s + [PAD] * (width - len(s)) for s in seqs])
    attention = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    completion_mask = torch.tensor([c + [0] * (width - len(c)) for c in completion])
    stub = _trl_stub(DPOTrainer, model=hf_policy.train(), ref_model=hf_ref, beta=beta, ld_alpha=None,
                     precompute_ref_logps=False, f_divergence_type="reverse_kl",
                     loss_types=["sigmoid", "sft"], loss_weights=[1.0, sft_weight], use_weighting=False,
                     _total_train_tokens=0, _tp_size=1,
                     args=types.SimpleNamespace(gradient_checkpointing_kwargs=None))
    theirs = DPOTrainer._compute_loss(stub, hf_policy, {"input_ids": input_ids, "attention_mask": attention,
                                                        "completion_mask": completion_mask}, return_outputs=False)
    assert abs(ours.item() - theirs.item()) < 1e-6
    assert 0.1 < ours.item() < 5.0  # a real loss, not a degenerate 0 or log 2 of equal models


def _grpo_inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    B, T = 6, 5
    logps = (-torch.rand(B, T, generator=g, dtype=torch.float64) * 3).requires_grad_()
    old = logps.detach() + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.4  # ratios beyond the clip range
    ref = logps.detach() + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.2
    mask = torch.ones(B, T, dtype=torch.long)
    mask[0, 3:] = 0
    mask[4, 1:] = 0
    rewards = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.5]], dtype=torch.float64)
    return logps, old, ref, mask, rewards


@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_grpo_loss_and_gradient_equal_trl(beta):
    logps, old, ref, mask, rewards = _grpo_inputs(0)
    advantages = group_advantages(rewards).reshape(-1)
    # TRL's group normalisation, from its own nanstd
    theirs_adv = (rewards - rewards.mean(1, keepdim=True)) / (nanstd(rewards, dim=1, keepdim=True) + 1e-4)
    assert torch.allclose(advantages, theirs_adv.reshape(-1), atol=1e-12)

    ours = grpo_loss(logps, old, ref if beta else None, advantages, mask, 0.2, 0.28, beta)
    (g_ours,) = torch.autograd.grad(ours, logps)

    stub = _trl_stub(GRPOTrainer, model=types.SimpleNamespace(training=True), beta=beta, loss_type="grpo",
                     epsilon_low=0.2, epsilon_high=0.28, top_entropy_quantile=1.0, off_policy_mask_threshold=None,
                     importance_sampling_level="token", use_vllm=False, vllm_importance_sampling_correction=False,
                     current_gradient_accumulation_steps=1, _entropy_bonus_enabled=False,
                     args=types.SimpleNamespace(use_bias_correction_kl=False, delta=None))
    stub._get_per_token_logps_and_entropies = lambda *a, **k: (logps, torch.zeros_like(logps), None)
    B, T = logps.shape
    inputs = {"prompt_ids": torch.zeros(B, 2, dtype=torch.long), "prompt_mask": torch.ones(B, 2, dtype=torch.long),
              "completion_ids": torch.zeros(B, T, dtype=torch.long), "completion_mask": mask,
              "advantages": advantages, "old_per_token_logps": old, "ref_per_token_logps": ref}
    theirs = GRPOTrainer._compute_loss(stub, None, inputs)
    (g_theirs,) = torch.autograd.grad(theirs, logps)
    assert abs(ours.item() - theirs.item()) < 1e-6
    assert torch.allclose(g_ours, g_theirs, atol=1e-9)
    assert ours.item() != 0.0


def test_dpo_loss_hand_made():
    zero = torch.zeros(1, dtype=torch.float64)
    # equal log-ratios: -log σ(0) = log 2
    assert dpo_loss(zero, zero, zero, zero, 0.1).item() == pytest.approx(math.log(2))
    # chosen up by 2 nats against the reference, rejected down by 1: margin 3, beta 0.5
    loss = dpo_loss(torch.tensor([-1.0]), torch.tensor([-6.0]), torch.tensor([-3.0]), torch.tensor([-5.0]), 0.5)
    assert loss.item() == pytest.approx(math.log1p(math.exp(-1.5)))


def test_grpo_hand_made():
    # one group, rewards 1 and 0: advantages ±1/sqrt(0.5) (Bessel std of {1, 0} is sqrt(0.5))
    adv = group_advantages(torch.tensor([[1.0, 0.0]]))[0]
    assert adv.tolist() == pytest.approx([0.5 / (math.sqrt(0.5) + 1e-4), -0.5 / (math.sqrt(0.5) + 1e-4)])
    # on-policy (ratio 1), no KL: the loss is minus the mean advantage = 0, and the gradient pushes
    # the positive sample's log-prob up and the negative one's down, each by A / tokens
    logps = torch.tensor([[-1.0, -2.0], [-1.0, -2.0]], requires_grad=True)
    mask = torch.ones(2, 2)
    loss = grpo_loss(logps, logps.detach(), None, adv, mask)
    (g,) = torch.autograd.grad(loss, logps)
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    assert g[0].tolist() == pytest.approx([-adv[0].item() / 4] * 2)
    assert g[1].tolist() == pytest.approx([-adv[1].item() / 4] * 2)
    # a ratio past 1 + clip with a positive advantage is clipped: no gradient through it
    loss = grpo_loss(logps[:1], logps[:1].detach() - 1.0, None, torch.tensor([1.0]), torch.ones(1, 2))
    (g,) = torch.autograd.grad(loss, logps)
    assert g.abs().sum().item() == 0.0


# ---- the same cross-checks on a Hugging Face policy (a tiny Llama and tokenizer built in the test)


def _hf_policy(tmp_path, seed: int):
    from selftaught.models.hf_policy import HFPolicy, load_pretrained
    from test_hf_policy import build_tiny

    model, tokenizer = load_pretrained(path=str(build_tiny(tmp_path / f"tiny-{seed}", seed)))
    return HFPolicy(model.double(), tokenizer)


def _trl_batch(policy, prompts, completions):
    """TRL's inputs, made from the tokenizer directly: prompt (with its BOS), completion, EOS."""
    tok = policy.tokenizer
    rows = [(tok(p)["input_ids"], tok(c, add_special_tokens=False)["input_ids"] + [tok.eos_token_id])
            for p, c in zip(prompts, completions)]
    width = max(len(p) + len(c) for p, c in rows)
    ids = torch.tensor([p + c + [tok.pad_token_id] * (width - len(p) - len(c)) for p, c in rows])
    attention = torch.tensor([[1] * (len(p) + len(c)) + [0] * (width - len(p) - len(c)) for p, c in rows])
    completion = torch.tensor([[0] * len(p) + [1] * len(c) + [0] * (width - len(p) - len(c)) for p, c in rows])
    return ids, attention, completion, rows


HF_PROMPTS = ["what is 12+3?", "7+45=", "ab ", "5+5 is"]


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_dpo_loss_on_an_hf_policy_equals_trl(tmp_path):
    policy, reference = _hf_policy(tmp_path, 0), _hf_policy(tmp_path, 1)
    beta, chosen, rejected = 0.3, ["15", "52 it is", "ba", "ten"], ["16", "2", "abab a", "10"]
    logps, mask = policy.token_logps(HF_PROMPTS + HF_PROMPTS, chosen + rejected)
    ours = preference_loss(logps, mask, sequence_logps(reference, HF_PROMPTS, chosen),
                           sequence_logps(reference, HF_PROMPTS, rejected), beta, 0.0)
    for m in (policy.model, reference.model):
        add_fused_lm_head(m, outputs=("log_probs", "entropy", "mean_logits", "is_top1"))
    ids, attention, completion, _ = _trl_batch(policy, HF_PROMPTS + HF_PROMPTS, chosen + rejected)
    stub = _trl_stub(DPOTrainer, model=policy.model.train(), ref_model=reference.model, beta=beta, ld_alpha=None,
                     precompute_ref_logps=False, f_divergence_type="reverse_kl", loss_types=["sigmoid"],
                     loss_weights=[1.0], use_weighting=False, _total_train_tokens=0, _tp_size=1,
                     args=types.SimpleNamespace(gradient_checkpointing_kwargs=None))
    theirs = DPOTrainer._compute_loss(stub, policy.model, {"input_ids": ids, "attention_mask": attention,
                                                           "completion_mask": completion}, return_outputs=False)
    assert abs(ours.item() - theirs.item()) < 1e-6
    assert 0.1 < ours.item() < 5.0


@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_grpo_loss_on_an_hf_policy_equals_trl(tmp_path, beta):
    """Ours from the policy's ``token_logps``; TRL's from its own forward of the same model."""
    policy = _hf_policy(tmp_path, 0)
    prompts = [p for p in HF_PROMPTS[:2] for _ in range(3)]
    completions = ["15", "1 5", "16 and", "52", "fifty", "2"]
    logps, mask = policy.token_logps(prompts, completions)
    g = torch.Generator().manual_seed(0)
    old = logps.detach() + torch.randn(logps.shape, generator=g, dtype=torch.float64) * 0.4
    ref = logps.detach() + torch.randn(logps.shape, generator=g, dtype=torch.float64) * 0.2
    advantages = group_advantages(torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.5]], dtype=torch.float64)).reshape(-1)
    ours = grpo_loss(logps, old, ref if beta else None, advantages, mask.long(), 0.2, 0.28, beta)

    add_fused_lm_head(policy.model, outputs=("log_probs", "entropy", "mean_logits", "is_top1"))
    ids, attention, completion, rows = _trl_batch(policy, prompts, completions)
    # TRL's layout: left-padded prompts, right-padded completions, the completion columns last
    P, C = max(len(p) for p, _ in rows), max(len(c) for _, c in rows)
    pad = policy.tokenizer.pad_token_id
    prompt_ids = torch.tensor([[pad] * (P - len(p)) + p for p, _ in rows])
    prompt_mask = torch.tensor([[0] * (P - len(p)) + [1] * len(p) for p, _ in rows])
    completion_ids = torch.tensor([c + [pad] * (C - len(c)) for _, c in rows])
    completion_mask = torch.tensor([[1] * len(c) + [0] * (C - len(c)) for _, c in rows])
    stub = _trl_stub(GRPOTrainer, model=policy.model.train(), beta=beta, loss_type="grpo", epsilon_low=0.2,
                     epsilon_high=0.28, top_entropy_quantile=1.0, off_policy_mask_threshold=None,
                     importance_sampling_level="token", use_vllm=False, vllm_importance_sampling_correction=False,
                     current_gradient_accumulation_steps=1, _entropy_bonus_enabled=False, temperature=1.0,
                     args=types.SimpleNamespace(use_bias_correction_kl=False, delta=None))
    inputs = {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": completion_ids,
              "completion_mask": completion_mask, "advantages": advantages,
              "old_per_token_logps": old[:, :C], "ref_per_token_logps": ref[:, :C]}
    theirs = GRPOTrainer._compute_loss(stub, policy.model, inputs)
    assert abs(ours.item() - theirs.item()) < 1e-6 and ours.item() != 0.0
