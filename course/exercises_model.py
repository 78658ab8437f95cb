"""
The exercises of the model: the tokenizer's merge step, rotary embeddings, the attention mask
for left-padded rows, attention written out, and the KV cache.

Each is an `Exercise` (course/checks.py); the handouts are docs/course.md, the references each
body implements its own module's docstring (Sennrich et al., arXiv 1508.07909; RoFormer, arXiv
2104.09864; Vaswani et al., arXiv 1706.03762).

What this deliberately is not: tests of the repository (tests/test_model.py holds those).
"""

import torch

from course.checks import Exercise, Mistake, require

# ------------------------------------------------------------------------------------------------
# the tokenizer's merge step

TEXTS = ["Ann has 52 apples. She gives 17 to Tom.", "aaab aaab", "Tom has 9 pears.",
         "She buys 8 more apples."]


def bpe_probe(m):
    ranks = m.train_bpe(TEXTS, 256 + 6 + 40)
    return [token for token, rank in sorted(ranks.items(), key=lambda kv: kv[1])][256:]


def merges_are_pairs(m):
    ranks = m.train_bpe(TEXTS, 256 + 6 + 40)
    require(sorted(ranks.values()) == list(range(len(ranks))), "ranks are 0, 1, 2, ... in "
            "merge order, with no gap")
    seen = set(t for t, r in ranks.items() if r < 256)
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1])[256:]:
        require(any(token[:i] in seen and token[i:] in seen for i in range(1, len(token))),
                f"merge {rank} ({token!r}) is not two earlier tokens joined")
        seen.add(token)


BPE_MERGE = Exercise(
    "bpe_merge", "data/tokenizer.py", "The tokenizer's merge step: byte-level BPE", 30,
    bpe_probe, (merges_are_pairs,), (
        Mistake("counts_distinct_chunks", "a pair's count is summed over every occurrence of "
                "every chunk: weight each chunk's pairs by how often the chunk occurs (n).",
                (("pairs[pair] += n", "pairs[pair] += 1"),)),
        Mistake("ties_to_the_last", "among the most frequent pairs the one that sorts FIRST "
                "wins (a fixed rule, so training is deterministic).",
                (("best = min(pairs, key=lambda p: (-pairs[p], p))",
                  "best = max(pairs, key=lambda p: (pairs[p], p))"),)),
        Mistake("overlapping_merges", "after a merge, skip both merged tokens (i += 2): "
                "\"aaa\" becomes \"aa\", \"a\", not \"aa\", \"aa\".",
                (("                    i += 2", "                    i += 1"),)),
        Mistake("no_early_stop", "stop when the best pair occurs only once: such a merge "
                "compresses nothing.",
                (("        if pairs[best] < 2:\n            break\n", ""),))))

# ------------------------------------------------------------------------------------------------
# rotary position embeddings


def rope_inputs(positions):
    from model import rope_tables
    cos, sin = rope_tables(16, 8, 10000.0)                           # (16, 4) each
    pos = torch.as_tensor(positions)                                 # (B, T)
    return cos[pos][:, None], sin[pos][:, None]                      # (B, 1, T, 4)


def rope_probe(m):
    x = torch.randn(2, 2, 5, 8, generator=torch.Generator().manual_seed(0))
    cos, sin = rope_inputs([[0, 1, 2, 3, 4], [0, 0, 1, 2, 3]])
    return m.apply_rope(x, cos, sin)


def rope_properties(m):
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(1, 1, 1, 8, generator=g), torch.randn(1, 1, 1, 8, generator=g)
    dot = {}
    for a, b in ((3, 1), (9, 7)):
        qa = m.apply_rope(q, *rope_inputs([[a]]))
        kb = m.apply_rope(k, *rope_inputs([[b]]))
        require(torch.allclose(qa.norm(), q.norm(), atol=1e-5), "a rotation keeps the norm")
        dot[a, b] = (qa * kb).sum().item()
    require(abs(dot[3, 1] - dot[9, 7]) < 1e-4, f"q·k should depend only on m - n: positions "
            f"(3, 1) give {dot[3, 1]:.5f}, (9, 7) give {dot[9, 7]:.5f}")


ROPE = Exercise(
    "rope", "model.py", "Rotary position embeddings", 20, rope_probe, (rope_properties,), (
        Mistake("adjacent_pairs", "a rotation, but of the pairs (2i, 2i + 1), RoFormer's "
                "layout; this model pairs dim i with i + d/2 (\"rotate half\"), and its weights "
                "and the Triton kernel expect that.",
                (("x1, x2 = x[..., :d], x[..., d:]", "x1, x2 = x[..., 0::2], x[..., 1::2]"),)),
        Mistake("rotated_backwards", "R_m rotates by +mθ: [x1 cos - x2 sin, x1 sin + x2 cos].",
                (("x1 * cos - x2 * sin, x1 * sin + x2 * cos",
                  "x1 * cos + x2 * sin, -x1 * sin + x2 * cos"),))))

# ------------------------------------------------------------------------------------------------
# the attention mask for left-padded rows

MASK_CASES = {"prefill": (0, 4, 4), "decode": (4, 1, 5), "static cache": (4, 1, 8)}  # t0, T, Tk


def mask_probe(m):
    pad = torch.tensor([0, 2, 1])
    return {label: m.attention_mask(pad, t0, T, Tk) for label, (t0, T, Tk) in MASK_CASES.items()}


def mask_properties(m):
    got = m.attention_mask(torch.tensor([0]), 0, 5, 5)
    require(got.shape == (1, 1, 5, 5), f"the mask is (B, 1, T, Tk), got {tuple(got.shape)}")
    require(torch.equal(got[0, 0], torch.ones(5, 5, dtype=torch.bool).tril()),
            "with no padding and t0 = 0 the mask is lower-triangular: query i sees keys 0..i")
    got = m.attention_mask(torch.tensor([3]), 0, 5, 5)
    require(bool(got.any(-1).all()), "every query must see at least one key (a pad query "
            "sees itself): a row of all -inf makes softmax NaN")


ATTENTION_MASK = Exercise(
    "attention_mask", "model.py", "The causal mask for left-padded rows, with a cache", 20,
    mask_probe, (mask_properties,), (
        Mistake("sees_the_next_token", "query i may see keys 0..i, itself included, and never "
                "i + 1: that is the token it must predict.", (("(k <= q)", "(k <= q + 1)"),)),
        Mistake("padding_on_the_right", "rows are LEFT-padded here: the first pad_len keys of "
                "a row are padding.", (("k[None] >= pad_len[:, None, None]",
                                        "k[None] < Tk - pad_len[:, None, None]"),)),
        Mistake("no_self_key", "a pad query sees no real key; let every query see itself, or "
                "its row is all -inf and softmax gives NaN.", ((" | (k == q))", ")"),)),
        Mistake("ignores_t0", "with a KV cache the T new queries sit at positions t0 .. t0 + T "
                "- 1, not 0 .. T - 1.", (("q = t0 + torch.arange(", "q = torch.arange("),))))

# ------------------------------------------------------------------------------------------------
# attention written out


def explicit_model(m, impl: str = "explicit"):
    torch.manual_seed(0)
    return m.GPT(m.GPTConfig(vocab_size=32, block_size=16, n_layer=2, n_head=2, n_embd=16,
                             attn_impl=impl)).eval()


def attention_probe(m):
    model = explicit_model(m)
    ids = torch.randint(3, 32, (3, 7), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return {"padded": model(ids, pad_len=torch.tensor([0, 2, 1]))[0],
                "no padding": model(ids)[0]}


def attention_properties(m):
    ids = torch.randint(3, 32, (2, 7), generator=torch.Generator().manual_seed(2))
    changed = ids.clone()
    changed[:, -1] = 2
    with torch.no_grad():
        a, b = explicit_model(m)(ids)[0], explicit_model(m)(changed)[0]
        sdpa = explicit_model(m, "sdpa")(ids, pad_len=torch.tensor([0, 3]))[0]
        mine = explicit_model(m)(ids, pad_len=torch.tensor([0, 3]))[0]
    require(torch.allclose(a[:, :-1], b[:, :-1], atol=1e-5), "changing the last token changed "
            "the logits before it: a query must not see later keys")
    require(torch.allclose(sdpa, mine, atol=1e-4), "on a left-padded batch the explicit path "
            "should give F.scaled_dot_product_attention's logits")


ATTENTION = Exercise(
    "attention", "model.py", "Attention written out: softmax(QKᵀ/√d) V with the mask", 25,
    attention_probe, (attention_properties,), (
        Mistake("no_scaling", "divide the scores by √d (d: the head's width), or the softmax "
                "saturates as d grows.", ((" / math.sqrt(self.head_dim)", ""),)),
        Mistake("softmax_over_queries", "each query's weights over the keys sum to 1: softmax "
                "over the last dim (keys).",
                (("F.softmax(att, dim=-1)", "F.softmax(att, dim=-2)"),)),
        Mistake("mask_after_softmax", "set forbidden scores to -inf BEFORE the softmax: zeroed "
                "after it, the allowed weights no longer sum to 1.",
                (("att = att.masked_fill(~mask, float(\"-inf\"))", "att = att"),
                 ("att = F.softmax(att, dim=-1)",
                  "att = F.softmax(att, dim=-1).masked_fill(~mask, 0.0)"))),
        Mistake("mask_ignored", "the mask must act: forbidden keys (later positions, padding) "
                "get -inf.", (("att = att.masked_fill(~mask, float(\"-inf\"))", "att = att"),))))

# ------------------------------------------------------------------------------------------------
# the KV cache


def decode(m, static: bool, steps: int = 3):
    """Prefill 2 left-padded prompts into the module's KVCache, then feed `steps` tokens one at a
    time: the logits of every position, prefill and decode, (2, 4 + steps, V)."""
    from course.exercises_rl import tiny_model
    model = tiny_model(seed=0)
    ids = torch.randint(3, 32, (2, 4 + steps), generator=torch.Generator().manual_seed(3))
    ids[0, 0] = 0
    pad = torch.tensor([1, 0])
    cache = m.KVCache(model.cfg, 2, static=static, max_len=4 + steps + 1)
    with torch.no_grad():
        logits = [model(ids[:, :4], pad_len=pad, kv_cache=cache)[0]]
        for t in range(4, 4 + steps):
            logits.append(model(ids[:, t:t + 1], pad_len=pad, kv_cache=cache)[0])
        full = model(ids, pad_len=pad)[0]
    return torch.cat(logits, 1), full


def cache_probe(m):
    return {"filled prefix": decode(m, False)[0], "static": decode(m, True)[0]}


def cache_equals_full_forward(m):
    for static in (False, True):
        cached, full = decode(m, static)
        require(torch.allclose(cached, full, atol=1e-5), f"static={static}: "
                f"decoding token by token through the cache should give the full forward's "
                f"logits at every position")


KV_CACHE = Exercise(
    "kv_cache", "sampler.py", "The KV cache: write this step's keys, attend over all", 20,
    cache_probe, (cache_equals_full_forward,), (
        Mistake("written_at_zero", "write the T new keys at [length, length + T): every step "
                "at 0 overwrites the prompt's.", (("self.length : self.length + T", "0 : T"),)),
        Mistake("written_one_late", "positions fill from `length`, the number written so far: "
                "writing at length + 1 leaves a hole the mask lets every query see.",
                (("self.length : self.length + T", "self.length + 1 : self.length + T + 1"),))))
