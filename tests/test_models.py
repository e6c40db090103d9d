import pytest
import torch

from selftaught.models import KVCache, Transformer, TransformerConfig, generate, score
from selftaught.tasks.tokenizer import EOS, PAD


def tiny(positional="none", **kw):
    cfg = TransformerConfig(vocab_size=16, n_layers=2, d_model=32, n_heads=4, d_ff=64, positional=positional, **kw)
    model = Transformer(cfg).eval()
    with torch.no_grad():  # weights large enough that every token's context changes the argmax
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.3)
    return model


def prompts():
    g = torch.Generator().manual_seed(1)
    return [torch.randint(2, 16, (int(n),), generator=g).tolist() for n in (3, 7, 5, 1, 9, 4)]


def test_kv_cache_logits_equal_full_recomputation():
    for positional in ("none", "rope"):
        model = tiny(positional)
        seq = torch.randint(2, 16, (3, 12))
        full = model(seq)
        cache = KVCache(2, 3, 4, 12, 8)
        step_logits = [model(seq[:, :5], torch.arange(5).expand(3, 5), cache)[:, -1]]
        cache.advance(5)
        for t in range(5, 12):
            step_logits.append(model(seq[:, t:t + 1], torch.full((3, 1), t), cache)[:, -1])
            cache.advance(1)
        torch.testing.assert_close(torch.stack(step_logits, 1), full[:, 4:], atol=1e-5, rtol=0)


def greedy_by_recomputation(model, prompt, n):
    seq = list(prompt)
    for _ in range(n):
        nxt = int(model(torch.tensor([seq]))[0, -1].argmax())
        if nxt in (EOS, PAD):  # a generated PAD ends a row too: no target ever contains it
            break
        seq.append(nxt)
    return seq[len(prompt):]


def test_batched_left_padded_generation_equals_one_by_one_recomputation():
    for positional in ("none", "rope"):
        model = tiny(positional)
        ps = prompts()
        out = generate(model, ps, 10)
        assert out == [greedy_by_recomputation(model, p, 10) for p in ps]


def test_finished_rows_stop_and_per_row_limits_hold():
    model = tiny()
    with torch.no_grad():  # make EOS likely so that rows finish at different steps
        model.head.weight[EOS] += 0.5 * model.head.weight[5]
    ps = prompts() * 10
    limits = [1 + i % 7 for i in range(len(ps))]
    out = generate(model, ps, limits, compact_below=0.99)
    assert all(len(o) <= n for o, n in zip(out, limits))
    assert out == generate(model, ps, limits, compact_below=0.0)  # compaction changes nothing
    assert out == [greedy_by_recomputation(model, p, n) for p, n in zip(ps, limits)]


def test_seeded_sampling_is_reproducible_and_seed_dependent():
    model = tiny()
    ps = prompts()

    def run(seed):
        return generate(model, ps, 12, temperature=1.0, top_k=8, generator=torch.Generator().manual_seed(seed))

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_score_matches_manual_log_probs():
    model = tiny()
    p, c = [3, 4, 5], [6, 7]
    with torch.no_grad():
        logits = model(torch.tensor([p + c]))[0]
    logp = torch.log_softmax(logits, -1)
    expected = float(logp[2, 6] + logp[3, 7])
    assert abs(score(model, [p], [c])[0] - expected) < 1e-5


def test_save_load_round_trip(tmp_path):
    model = tiny("rope")
    model.save(tmp_path / "m")
    loaded = Transformer.load(tmp_path / "m")
    x = torch.randint(0, 16, (2, 9))
    assert torch.equal(model(x), loaded(x))
    assert loaded.head.weight.data_ptr() == loaded.embed.weight.data_ptr()
    assert loaded.cfg == model.cfg


@pytest.mark.parametrize("positional", ["none", "rope"])
@pytest.mark.parametrize("groups", [None, [2, 2], [1, 2, 1]])
def test_packed_forward_equals_padded_forward_on_real_tokens(positional, groups):
    # Right-padded rows of different lengths, sorted longest last as training sorts them; per-token
    # layers then run on real tokens only, and each group of rows is attended at its own length.
    model = tiny(positional)
    g = torch.Generator().manual_seed(3)
    lengths = [1, 3, 5, 7]
    idx = torch.full((len(lengths), max(lengths) + 2), PAD)  # wider than its longest row
    for i, n in enumerate(lengths):
        idx[i, :n] = torch.randint(2, model.cfg.vocab_size, (n,), generator=g)
    valid = idx != PAD
    padded = model(idx)
    packed = model(idx, valid=valid, groups=groups)
    assert packed.shape == (sum(lengths), model.cfg.vocab_size)
    torch.testing.assert_close(packed, padded[valid], atol=1e-5, rtol=1e-5)
    # and the gradients agree, so training on the packed path is the same training
    g_padded = torch.autograd.grad(padded[valid].square().sum(), model.blocks[0].qkv.weight)[0]
    g_packed = torch.autograd.grad(model(idx, valid=valid, groups=groups).square().sum(),
                                   model.blocks[0].qkv.weight)[0]
    torch.testing.assert_close(g_packed, g_padded, atol=1e-4, rtol=1e-4)


def test_groups_must_cover_the_batch():
    idx = torch.tensor([[3, 4, PAD], [3, 4, 5]])
    with pytest.raises(ValueError, match="do not add up"):
        tiny()(idx, valid=idx != PAD, groups=[1])
    with pytest.raises(ValueError, match="no cache and no attn_mask"):  # a group is attended at its own length
        tiny()(idx, valid=idx != PAD, attn_mask=torch.ones(2, 1, 3, 3, dtype=torch.bool))


def test_banned_tokens_are_never_generated():
    model = tiny()
    ps = prompts()
    free = generate(model, ps, 10)
    common = max(range(2, 16), key=lambda t: sum(o.count(t) for o in free))  # the token greedy emits most
    assert any(common in o for o in free)
    for temperature in (0.0, 1.0):
        out = generate(model, ps * 20, 10, temperature=temperature, banned=[common],
                       generator=torch.Generator().manual_seed(0))
        assert not any(common in o for o in out)
    # banning a token greedy never picks changes nothing
    unused = next(t for t in range(2, 16) if not any(t in o for o in free))
    assert generate(model, ps, 10, banned=[unused]) == free


def test_generated_log_probs_equal_an_independent_forward_pass():
    """The decoder's per-token log-probabilities (KV cache, left padding, compaction) against the
    policy's ``token_logps`` (one full forward pass per batch, right padding): at temperature 1 the
    same distribution, and greedy's are the model's own."""
    from selftaught.models.char_policy import CharPolicy
    from selftaught.tasks.tokenizer import CharTokenizer

    tok = CharTokenizer("0123456789+=ab")  # 14 characters + PAD and EOS: the tiny model's 16
    policy = CharPolicy(tiny(), tok)
    texts = ["12+3=", "7+45=", "9=", "ab1", "5+5+5+5="]
    for temperature, top_k in ((1.0, 0), (0.0, 0), (0.7, 0)):
        done = policy.generate(texts * 4, [6] * 20, temperature=temperature, top_k=top_k,
                               generator=torch.Generator().manual_seed(3), batch_size=7)
        assert len({c.text for c in done}) > 3  # not one answer for every prompt
        logps, mask = policy.token_logps(texts * 4, [c.text for c in done], temperature=temperature or 1.0)
        for i, c in enumerate(done):
            assert c.text == tok.decode(c.ids) and len(c.logps) == len(c.ids)
            expected = logps[i][mask[i]][: len(c.ids)]  # the completion's tokens; its EOS (if any) follows
            torch.testing.assert_close(torch.tensor(c.logps), expected.float(), atol=1e-4, rtol=1e-4)


def test_nucleus_keeps_the_tokens_transformers_top_p_keeps():
    """Our top-p filter against transformers' TopPLogitsWarper (an independent implementation)."""
    import pytest

    from selftaught.models.generate import nucleus

    warper = pytest.importorskip("transformers").TopPLogitsWarper
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 50, generator=g) * 3
    for top_p in (0.05, 0.3, 0.9, 0.99):
        ours = torch.isfinite(nucleus(logits, top_p))
        theirs = torch.isfinite(warper(top_p)(None, logits.clone()))
        assert torch.equal(ours, theirs), top_p
        kept = torch.softmax(logits, -1).masked_fill(~ours, 0).sum(-1)
        assert bool((kept >= top_p - 1e-6).all()) and 1 <= int(ours.sum(-1).min())
    model = tiny()
    sampled = generate(model, prompts(), 12, temperature=1.0, top_p=0.05, generator=torch.Generator().manual_seed(2))
    free = generate(model, prompts(), 12, temperature=1.0, generator=torch.Generator().manual_seed(2))
    # the most likely of 16 tokens holds at least 1/16 > 0.05 of the mass: that nucleus is it alone
    assert sampled == generate(model, prompts(), 12) != free


def test_the_inverse_cdf_draw_follows_the_distribution_and_never_draws_a_masked_token():
    """One uniform number a row found in the cumulative sum: over 20,000 rows the frequencies of
    the tokens match their probabilities within 0.015 (4 standard errors at p = 0.5), the token
    top-k removes is never drawn, and each draw's log-probability is its token's (as for
    torch.multinomial, checked alike)."""
    from selftaught.models.generate import _pick

    probs = torch.tensor([0.02, 0.4, 0.3, 0.2, 0.08])
    kept = torch.tensor([0.0, 0.4, 0.3, 0.2, 0.08]) / 0.98  # top-4 drops the 0.02
    for draw in ("multinomial", "inverse-cdf"):
        tok, logp = _pick(probs.log().expand(20000, 5), 1.0, 4, torch.Generator().manual_seed(0), with_logp=True,
                          draw=draw)
        freq = torch.bincount(tok, minlength=5).float() / len(tok)
        assert freq[0] == 0
        torch.testing.assert_close(freq, kept, atol=0.015, rtol=0)
        torch.testing.assert_close(logp, kept.log()[tok], atol=1e-5, rtol=0)
