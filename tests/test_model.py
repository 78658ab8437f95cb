"""Tests for model.py and sampler.py: reference equivalences (explicit vs SDPA attention, KV cache vs full forward,
sampled log-probs vs teacher forcing), invariances (causality, left padding) and the sampler's
contract (seeds, greedy, stop ids, group layout). All on CPU with a tiny model, a few seconds."""

import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from model import GPT, GPTConfig, apply_rope, attention_mask, rope_tables  # noqa: E402
from sampler import KVCache, _sample, generate  # noqa: E402

V = 64  # vocab of the tiny test model


def tiny(attn_impl="sdpa", dtype=torch.float32, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(vocab_size=V, block_size=48, n_layer=2, n_head=4, n_embd=32, attn_impl=attn_impl)
    return GPT(GPTConfig(**{**cfg, **kw})).to(dtype).eval()


def twins(dtype=torch.float64, **kw):
    """The same weights under both attention implementations."""
    a, b = tiny("explicit", dtype, **kw), tiny("sdpa", dtype, **kw)
    b.load_state_dict(a.state_dict())
    return a, b


def rand_ids(B, T, seed=1):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------
# Config and building blocks


@pytest.mark.parametrize("kw, field", [
    (dict(n_embd=30, n_head=4), "n_embd"),
    (dict(n_embd=12, n_head=4), "n_embd / n_head"),  # head_dim 3 cannot be rotated in pairs
    (dict(attn_impl="flash"), "attn_impl"),
    (dict(n_layer=0), "n_layer"),
    (dict(vocab_size=-1), "vocab_size"),
    (dict(block_size=2.5), "block_size"),
    (dict(dropout=1.0), "dropout"),
    (dict(dropout=-0.1), "dropout"),
    (dict(rope_base=0.0), "rope_base"),
    (dict(attn_impl="triton", dropout=0.1), "no attention dropout"),
])
def test_config_validation_names_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        GPTConfig(**kw)


def test_attention_mask_known_answer():
    # row 0: no padding -> lower triangle; row 1: one pad token -> key 0 hidden from real queries,
    # but the pad query 0 still sees itself (a row of all False would give NaN in softmax)
    m = attention_mask(torch.tensor([0, 1]), t0=0, T=3, Tk=3)
    assert m.shape == (2, 1, 3, 3)
    assert m[0, 0].int().tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    assert m[1, 0].int().tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    # decode step at t0=3 over a 5-slot cache: keys 1..3 visible, key 4 not yet written
    assert attention_mask(torch.tensor([1]), 3, 1, 5)[0, 0].int().tolist() == [[0, 1, 1, 1, 0]]


def test_rope_is_a_rotation_that_only_sees_relative_position():
    # RoFormer 2104.09864 eq. 16: <R_m q, R_n k> depends on m - n only; rotations keep norms
    cos, sin = rope_tables(32, 8, 10000.0)
    cos, sin = cos.double(), sin.double()
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(8, dtype=torch.float64, generator=g), torch.randn(8, dtype=torch.float64,
                                                                          generator=g)
    rot = lambda x, m: apply_rope(x[None, None, None], cos[m], sin[m])[0, 0, 0]  # noqa: E731
    # the tables are float32, so equalities hold to float32 precision
    torch.testing.assert_close(rot(q, 5).norm(), q.norm(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(rot(q, 7) @ rot(k, 3), rot(q, 24) @ rot(k, 20), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(rot(q, 7) @ rot(k, 3), rot(q, 7) @ rot(k, 5))
    torch.testing.assert_close(rot(q, 0), q)  # position 0 is the identity


def test_param_count_and_weight_tying():
    m = tiny()
    C, L = 32, 2  # tied embedding + per block (qkv, proj, fc, proj, 2 gains) + final gain
    assert m.num_params() == V * C + L * (3 * C * C + C * C + 8 * C * C + 2 * C) + C
    assert m.lm_head.weight is m.wte.weight
    assert not any("rope" in k for k in m.state_dict())  # tables are recomputed, not saved


def test_loss_ignores_minus_one_targets():
    m, idx = tiny(), rand_ids(2, 10)
    tgt = rand_ids(2, 10, seed=2)
    tgt[0, :4] = -1
    logits, loss = m(idx, tgt)
    assert logits.dtype == torch.float32 and logits.shape == (2, 10, V)
    keep = tgt != -1
    manual = -F.log_softmax(logits, -1)[keep].gather(-1, tgt[keep][:, None]).mean()
    torch.testing.assert_close(loss, manual)
    assert m(idx)[1] is None
    assert m.hidden(idx).shape == (2, 10, 32)


# ---------------------------------------------------------------------------------------------
# Explicit attention == F.scaled_dot_product_attention (outputs and gradients, float64)


@pytest.mark.parametrize("padded", [False, True])
def test_explicit_matches_sdpa_outputs_and_param_grads(padded):
    a, b = twins()
    idx, tgt = rand_ids(3, 12), rand_ids(3, 12, seed=2)
    pad = torch.tensor([0, 3, 7]) if padded else None
    for m in (a, b):
        m.zero_grad()
        m(idx, tgt, pad_len=pad)[1].backward()
    torch.testing.assert_close(a(idx, pad_len=pad)[0], b(idx, pad_len=pad)[0], rtol=0, atol=1e-12)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, rtol=0, atol=1e-12, msg=name)


@pytest.mark.parametrize("padded", [False, True])
def test_explicit_matches_sdpa_input_grads(padded):
    a, b = twins()
    x = torch.randn(2, 9, 32, dtype=torch.float64, requires_grad=True)
    cos, sin = a.rope_cos[:9][None, None], a.rope_sin[:9][None, None]  # (1, 1, T, d/2)
    mask = attention_mask(torch.tensor([0, 4]), 0, 9, 9) if padded else None
    ys = [m.blocks[0].attn(x, cos, sin, mask) for m in (a, b)]
    grads = [torch.autograd.grad(y.pow(2).sum(), x)[0] for y in ys]
    torch.testing.assert_close(ys[0], ys[1], rtol=0, atol=1e-12)
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-12)


def test_explicit_matches_sdpa_with_kv_cache():
    a, b = twins()
    prompt, pad = rand_ids(2, 6), torch.tensor([0, 2])
    steps = rand_ids(2, 4, seed=3)
    outs = []
    for m in (a, b):
        cache = KVCache(m.cfg, 2, dtype=torch.float64)
        m.zero_grad()
        logits = m(prompt, pad_len=pad, kv_cache=cache)[0]  # prefill, differentiable
        logits.pow(2).mean().backward()
        with torch.no_grad():
            for t in range(4):
                step = m(steps[:, t:t + 1], pad_len=pad, kv_cache=cache)[0]  # (2, 1, V)
                logits = torch.cat([logits, step], 1)
        outs.append((logits, [p.grad for p in m.parameters()]))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=0, atol=1e-12)
    for ga, gb in zip(outs[0][1], outs[1][1]):
        torch.testing.assert_close(ga, gb, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Causality and left padding


@pytest.mark.parametrize("impl", ["explicit", "sdpa"])
@pytest.mark.parametrize("padded", [False, True])
def test_future_tokens_never_change_earlier_logits(impl, padded):
    m, idx = tiny(impl), rand_ids(2, 16)
    pad = torch.tensor([0, 5]) if padded else None
    for t in (8, 15):
        changed = idx.clone()
        changed[:, t:] = (changed[:, t:] + 1) % V
        before, after = m(idx, pad_len=pad)[0], m(changed, pad_len=pad)[0]
        torch.testing.assert_close(before[:, :t], after[:, :t], rtol=0, atol=1e-6)
        assert not torch.allclose(before[:, t:], after[:, t:])  # the test can see a change


@pytest.mark.parametrize("impl", ["explicit", "sdpa"])
def test_left_padding_invariance(impl):
    m = tiny(impl)
    short, long = rand_ids(1, 7)[0].tolist(), rand_ids(1, 12, seed=5)[0].tolist()
    alone = m(torch.tensor([short]))[0][0]  # (7, V), no padding at all
    pad_id = 13  # any id: the pad region is masked out, its value must not matter
    batch = torch.tensor([[pad_id] * 5 + short, long])
    padded = m(batch, pad_len=torch.tensor([5, 0]))[0]  # (2, 12, V)
    torch.testing.assert_close(padded[0, 5:], alone, rtol=0, atol=1e-5)
    torch.testing.assert_close(padded[1], m(torch.tensor([long]))[0][0], rtol=0, atol=1e-5)
    batch[0, :5] = 41  # different pad ids -> identical logits at the real positions
    torch.testing.assert_close(m(batch, pad_len=torch.tensor([5, 0]))[0][0, 5:], padded[0, 5:],
                               rtol=0, atol=1e-6)


def test_padded_rows_restart_positions_at_zero():
    # RoPE only sees m - n, so shifting a row's positions changes nothing in exact arithmetic; but
    # the float32-rounded cos/sin tables make a shifted row drift by ~1e-11 in float64, while
    # restarting at 0 after the pad reuses the very same table entries (drift ~1e-17).
    m = tiny(dtype=torch.float64)
    short, long = rand_ids(1, 7), rand_ids(1, 12, seed=5)
    padded = m(torch.cat([torch.cat([torch.zeros(1, 5, dtype=torch.long), short], 1), long]),
               pad_len=torch.tensor([5, 0]))[0]
    torch.testing.assert_close(padded[0, 5:], m(short)[0][0], rtol=0, atol=1e-13)


# ---------------------------------------------------------------------------------------------
# KV cache


@pytest.mark.parametrize("static", [False, True])
@pytest.mark.parametrize("impl", ["explicit", "sdpa"])
def test_kv_cache_decode_equals_full_forward(impl, static):
    m = tiny(impl)
    prompt, pad, steps = rand_ids(3, 8), torch.tensor([0, 2, 5]), rand_ids(3, 5, seed=4)
    full = m(torch.cat([prompt, steps], 1), pad_len=pad)[0]  # (3, 13, V)
    cache = KVCache(m.cfg, 3, static=static)  # static: attend over the whole buffer
    got = [m(prompt, pad_len=pad, kv_cache=cache)[0]]  # prefill (3, 8, V)
    for t in range(5):
        got.append(m(steps[:, t:t + 1], pad_len=pad, kv_cache=cache)[0])  # (3, 1, V) each
        assert cache.k[0].shape == (3, 4, 48, 8)  # static shape, never grows
    assert cache.length == 13
    torch.testing.assert_close(torch.cat(got, 1), full, rtol=0, atol=1e-5)


def test_cache_expand_shares_one_prefill_per_prompt():
    m, G = tiny(), 3
    prompt, pad = rand_ids(2, 6), torch.tensor([1, 0])
    shared, separate = KVCache(m.cfg, 2), KVCache(m.cfg, 2 * G)
    m(prompt, pad_len=pad, kv_cache=shared)
    shared.expand(G)  # row i*G + j = sample j of prompt i
    m(prompt.repeat_interleave(G, 0), pad_len=pad.repeat_interleave(G), kv_cache=separate)
    for ks, kr in zip(shared.k + shared.v, separate.k + separate.v):
        torch.testing.assert_close(ks, kr, rtol=0, atol=1e-6)
    nxt = rand_ids(2 * G, 1, seed=9)  # each sample continues differently
    out = m(nxt, pad_len=pad.repeat_interleave(G), kv_cache=shared)[0][:, 0]
    full = m(torch.cat([prompt.repeat_interleave(G, 0), nxt], 1), pad_len=pad.repeat_interleave(G))
    torch.testing.assert_close(out, full[0][:, -1], rtol=0, atol=1e-5)
    # and generate() really prefills only B rows: the first embedding call sees (B, Tp)
    shapes = []
    hook = m.wte.register_forward_hook(lambda mod, inp, out: shapes.append(tuple(inp[0].shape)))
    generate(m, [[1, 2, 3], [4, 5]], num_samples=G, max_new_tokens=3, temperature=0)
    hook.remove()
    assert shapes == [(2, 3), (2 * G, 1), (2 * G, 1)]


# ---------------------------------------------------------------------------------------------
# Sampler


class CounterModel(GPT):
    """Mock: always predicts (last token + 1) % V, so stop times are known in advance."""

    def forward(self, idx, targets=None, pad_len=None, kv_cache=None):
        if kv_cache is not None:
            kv_cache.length += idx.shape[1]
        return 20.0 * F.one_hot((idx + 1) % V, V).float(), None


def test_same_seed_same_tokens_different_seed_different_tokens():
    m, prompts = tiny(), [[1, 2, 3], [4, 5]]
    run = lambda s: generate(m, prompts, num_samples=4, max_new_tokens=10,  # noqa: E731
                             generator=torch.Generator().manual_seed(s)).tokens
    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))
    assert len(set(run(0).flatten().tolist())) > 20  # near-uniform model at temperature 1


def test_the_exponential_race_draws_what_multinomial_draws():
    """_sample's argmax(p / E), E ~ Exp(1), takes the same ids from the same generator as
    torch.multinomial(p, 1): the generator's stream is consumed identically."""
    logits = torch.randn(6, V, generator=torch.Generator().manual_seed(0)) * 2
    ours, theirs = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    for _ in range(5):
        expected = torch.multinomial(F.softmax(logits, -1), 1, generator=theirs)[:, 0]
        assert torch.equal(_sample(logits, 1.0, None, ours), expected)
    # and its frequencies are the softmax's: 20000 draws of one row, within 4 standard errors
    p = F.softmax(torch.tensor([[0.0, 1.0, 2.0, -1.0]]), -1)[0]
    draws = _sample(torch.log(p).expand(20000, 4), 1.0, None, torch.Generator().manual_seed(1))
    freq = torch.bincount(draws, minlength=4).float() / 20000
    assert ((freq - p).abs() < 4 * (p * (1 - p) / 20000).sqrt()).all()


def test_a_rank_samples_its_rows_of_the_global_batch():
    """shard=(rank, world): rows 2-3 of a 4-row global batch, sampled on 'rank 1 of 2', get the
    ids the whole batch gives them in one process."""
    logits = torch.randn(4, V, generator=torch.Generator().manual_seed(0))
    whole = _sample(logits, 1.0, None, torch.Generator().manual_seed(3))
    part = _sample(logits[2:], 1.0, None, torch.Generator().manual_seed(3), shard=(1, 2))
    assert torch.equal(part, whole[2:])


def test_greedy_is_deterministic_and_the_argmax_of_a_full_forward():
    m = tiny()
    r = generate(m, [[5, 6, 7, 8], [9, 10]], num_samples=2, max_new_tokens=8, temperature=0)
    assert torch.equal(r.tokens, generate(m, [[5, 6, 7, 8], [9, 10]], num_samples=2,
                                          max_new_tokens=8, temperature=0).tokens)
    ids, pad = r.sequences()
    logits = m(ids, pad_len=pad)[0][:, 3:-1]  # (N, T_new, V): position Tp-1+t predicts token t
    assert torch.equal(logits.argmax(-1), r.tokens)
    top1 = generate(m, [[5, 6, 7, 8], [9, 10]], num_samples=2, max_new_tokens=8, top_k=1,
                    generator=torch.Generator().manual_seed(0))
    assert torch.equal(top1.tokens, r.tokens)  # top_k=1 sampling is greedy


def test_max_new_tokens_respected_and_truncated_set():
    r = generate(tiny(), [[1], [2, 3]], num_samples=2, max_new_tokens=7, stop_ids=(),
                 generator=torch.Generator().manual_seed(0))
    assert r.tokens.shape == r.logprobs.shape == r.mask.shape == (4, 7)
    assert r.mask.all() and r.truncated.all() and r.lengths.tolist() == [7] * 4


@pytest.mark.parametrize("use_cache", [True, False])
def test_rows_stop_independently(use_cache):
    m = CounterModel(GPTConfig(vocab_size=V, block_size=48, n_layer=1, n_head=2, n_embd=8))
    r = generate(m, [[1, 2, 3], [7], [20, 21]], num_samples=2, max_new_tokens=6, stop_ids=(5, 9),
                 pad_id=0, temperature=0, use_cache=use_cache)
    assert r.tokens.tolist() == [[4, 5, 0, 0, 0, 0]] * 2 + [[8, 9, 0, 0, 0, 0]] * 2 + [
        [22, 23, 24, 25, 26, 27]] * 2  # the stop token is kept, pad_id after it
    assert r.lengths.tolist() == [2, 2, 2, 2, 6, 6]
    assert r.truncated.tolist() == [False] * 4 + [True] * 2
    assert torch.equal(r.mask, r.tokens != 0) and (r.logprobs[~r.mask] == 0).all()
    # the loop ends early once every row has stopped
    r = generate(m, [[1], [3]], max_new_tokens=10, stop_ids=(5,), temperature=0)
    assert r.tokens.tolist() == [[2, 3, 4, 5], [4, 5, 0, 0]] and not r.truncated.any()


def test_stop_on_real_model_leaves_other_rows_untouched():
    m, prompts = tiny(), [[1, 2, 3], [4, 5]]
    run = lambda stop: generate(m, prompts, num_samples=4, max_new_tokens=12,  # noqa: E731
                                stop_ids=stop, generator=torch.Generator().manual_seed(3))
    free = run(())
    stop = free.tokens[0, 3].item()
    r = run((stop,))
    stopped = 0
    for row, toks in enumerate(free.tokens.tolist()):
        n = toks.index(stop) + 1 if stop in toks else len(toks)
        stopped += stop in toks
        assert r.tokens[row, :n].tolist() == toks[:n] and (r.tokens[row, n:] == 0).all()
        assert r.lengths[row] == n and r.truncated[row] == (stop not in toks)
    assert 0 < stopped < len(free.tokens)  # some rows stop, some run to the end


def test_group_layout_row_i_times_G_plus_j_is_prompt_i():
    m, G, prompts = tiny(), 3, [[1, 2, 3, 4], [5], [6, 7]]
    r = generate(m, prompts, num_samples=G, max_new_tokens=5, temperature=0, pad_id=0)
    assert r.prompt_ids.shape == (9, 4) and r.prompt_pad.tolist() == [0] * 3 + [3] * 3 + [2] * 3
    for i, p in enumerate(prompts):
        solo = generate(m, [p], max_new_tokens=5, temperature=0).tokens[0]
        for j in range(G):
            assert r.prompt_ids[i * G + j].tolist() == [0] * (4 - len(p)) + p
            assert torch.equal(r.tokens[i * G + j], solo)


@pytest.mark.parametrize("use_cache", [True, False])
def test_sampled_logprobs_equal_teacher_forced_logprobs(use_cache):
    m = tiny()
    r = generate(m, [[1, 2, 3, 4, 5], [6, 7]], num_samples=3, max_new_tokens=10, stop_ids=(11,),
                 generator=torch.Generator().manual_seed(1), use_cache=use_cache)
    ids, pad = r.sequences()
    logp = F.log_softmax(m(ids, pad_len=pad)[0], -1)[:, 4:-1]  # (N, T_new, V)
    teacher = logp.gather(-1, r.tokens[..., None])[..., 0]  # (N, T_new) log pi(o_t | q, o_<t)
    assert r.logprobs.dtype == torch.float32
    torch.testing.assert_close(r.logprobs[r.mask], teacher[r.mask], rtol=0, atol=1e-5)


def test_logprobs_are_tempered_and_top_k_filters():
    m = tiny()
    r = generate(m, [[1, 2, 3, 4, 5], [6, 7]], num_samples=4, max_new_tokens=10, temperature=0.7,
                 top_k=5, generator=torch.Generator().manual_seed(2))
    ids, pad = r.sequences()
    logits = m(ids, pad_len=pad)[0][:, 4:-1]  # (N, T_new, V)
    teacher = F.log_softmax(logits / 0.7, -1).gather(-1, r.tokens[..., None])[..., 0]  # (N, T_new)
    torch.testing.assert_close(r.logprobs, teacher, rtol=0, atol=1e-5)  # log softmax(z / 0.7),
    # before the top-k filter: the distribution GRPO trains (logprobs.token_logprobs, temperature)
    top5 = logits.topk(5, dim=-1).indices  # (N, T_new, 5)
    assert (top5 == r.tokens[..., None]).any(-1).all()  # every sampled id was in the top 5


@pytest.mark.parametrize("seed", [None, 7])  # None: greedy; 7: sampling with a seeded generator
def test_cache_and_no_cache_agree(seed):
    m, prompts = tiny(), [[3, 1, 4, 1, 5], [9, 2], [6]]
    out = []
    for use_cache in (True, False):
        kw = dict(temperature=0) if seed is None else dict(
            generator=torch.Generator().manual_seed(seed))
        out.append(generate(m, prompts, num_samples=2, max_new_tokens=12, use_cache=use_cache,
                            **kw))
    assert torch.equal(out[0].tokens, out[1].tokens)
    torch.testing.assert_close(out[0].logprobs, out[1].logprobs, rtol=0, atol=1e-5)


def test_too_long_prompt_raises():
    with pytest.raises(ValueError, match="prompt of 40 tokens \\+ max_new_tokens 10 exceeds"):
        generate(tiny(), [[1] * 40], max_new_tokens=10)
    with pytest.raises(ValueError, match="block_size"):
        tiny()(rand_ids(1, 49))


@pytest.mark.parametrize("kw", [dict(top_k=0), dict(temperature=-1.0), dict(num_samples=0),
                                dict(max_new_tokens=0), dict(prompts=[[1], []])])
def test_generate_rejects_bad_arguments(kw):
    with pytest.raises(ValueError):
        generate(tiny(), **{"prompts": [[1, 2]], **kw})


def test_dropout_in_training_only_and_generate_restores_mode():
    m = tiny(dropout=0.5).train()
    idx = rand_ids(2, 10)
    assert not torch.equal(m(idx)[0], m(idx)[0])  # dropout active
    a = generate(m, [[1, 2]], max_new_tokens=6, temperature=0)
    b = generate(m, [[1, 2]], max_new_tokens=6, temperature=0)
    assert torch.equal(a.tokens, b.tokens) and m.training  # eval inside, train mode restored
    m.eval()
    assert torch.equal(m(idx)[0], m(idx)[0])


# ---------------------------------------------------------------------------------------------
# Training smoke


def test_a_few_adamw_steps_reduce_the_loss():
    m = tiny().train()
    seq = torch.tensor([[3, 14, 15, 9, 26, 5] * 6])  # (1, 36) a repeating pattern
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = m(seq[:, :-1], seq[:, 1:])[1]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 0.9 * math.log(V) and losses[-1] < 0.3 * losses[0]


def test_decoding_reads_the_device_once_per_token(monkeypatch):
    """On CUDA each read of a tensor's value on the host (bool(), .item(), .tolist(), int(),
    float(), .nonzero()) waits for the GPU to catch up. The decode loop may do that once per
    token: to ask whether every row has stopped. Counted on CPU by wrapping those methods."""
    reads = []
    for name in ("__bool__", "item", "tolist", "__int__", "__float__", "nonzero"):
        method = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name,
                            lambda self, *a, _m=method, _n=name, **k: reads.append(_n) or _m(
                                self, *a, **k))
    m = tiny()
    r = generate(m, [[1, 2, 3, 4], [5, 6]], num_samples=3, max_new_tokens=12, stop_ids=[7],
                 generator=torch.Generator().manual_seed(0))
    n_tokens = r.tokens.shape[1]
    assert n_tokens >= 2 and len(reads) <= n_tokens, reads


def test_finished_rows_leave_the_batch_without_changing_any_row():
    """With compaction (the default) rows that have stopped stop being computed; every row's
    tokens are the ones it gets when all rows are decoded to the end, its log-probs the same
    to rounding, and the rows did stop at different times (so rows did leave the batch)."""
    m = tiny(block_size=64)
    kw = dict(num_samples=8, max_new_tokens=40, stop_ids=[1, 2, 3, 4, 5, 6], pad_id=0)
    full = generate(m, [[7, 8, 9], [10, 11, 12, 13, 14]], compact=False,
                    generator=torch.Generator().manual_seed(2), **kw)
    lean = generate(m, [[7, 8, 9], [10, 11, 12, 13, 14]],
                    generator=torch.Generator().manual_seed(2), **kw)
    assert len(set(full.lengths.tolist())) >= 4 and (full.lengths < full.tokens.shape[1]).sum() > 2
    assert torch.equal(full.tokens, lean.tokens) and torch.equal(full.mask, lean.mask)
    assert torch.allclose(full.logprobs, lean.logprobs, atol=1e-5)


def test_a_cache_keeps_the_rows_asked_for():
    cache = KVCache(tiny().cfg, 3)
    for layer in range(2):
        cache.k[layer][:, :, :2] = torch.arange(3.0)[:, None, None, None]
    cache.length = 2
    cache.keep(torch.tensor([2, 0]))
    assert cache.k[0].shape[0] == 2 and cache.k[1][:, 0, 0, 0].tolist() == [2.0, 0.0]
