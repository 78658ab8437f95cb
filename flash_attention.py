"""
Causal attention as a GPU kernel of our own: FlashAttention's tiled online softmax, forward and
backward, written in Triton, with the left-padding mask the model uses.

What it computes is model.CausalSelfAttention's explicit path, Y = softmax(Q K^T / √d + M) V per
head, where key j is visible to query i when j <= i and j >= pad (causal, not padding), or when
j == i (a pad query sees itself, so no row of the softmax is empty: model.attention_mask). How:
it never builds the (T, T) matrix. Each program takes BLOCK_M queries and walks over the keys in
tiles of BLOCK_N, keeping for each query a running maximum m, a running sum l and an unnormalised
output acc (Dao et al., arXiv 2205.14135, Alg. 1; the FlashAttention-2 loop order, arXiv
2307.08691, Alg. 1):

    s   = q k^T / √d                  (BLOCK_M, BLOCK_N), -inf where not visible
    m'  = max(m, rowmax(s))           the new running maximum
    p   = exp(s - m')                 this tile's unnormalised probabilities
    l   = l exp(m - m') + rowsum(p)   the old sum rescaled to the new maximum, plus this tile's
    acc = acc exp(m - m') + p v
    y   = acc / l,   L = m + log l    (L: the log-sum-exp, saved for the backward)

The backward recomputes P = exp(S - L) tile by tile instead of storing it (Alg. 2 of both
papers), with D = rowsum(dY ∘ Y):

    dV = P^T dY     dP = dY V^T     dS = P ∘ (dP - D)     dK = dS^T Q / √d     dQ = dS K / √d

one program per key tile for dK and dV, one per query tile for dQ (no atomics: deterministic).
Tiles skip what the mask hides: no key after a tile's last query, no key before the row's
padding but for the pad queries' own. A head width that is not a power of two is padded to one
inside the kernel and masked, so any even width of the presets works.

Where it runs (docs/speed.md): `--attn_impl triton` uses it wherever the model attends over a
whole sequence without a KV cache (pretraining, the preference model, the GRPO update's and the
reference's log-probabilities). Sampling (sampler.py) prefills into the cache and then decodes
one query a step, where a tiled kernel has little to tile: it keeps to SDPA. On a CPU the kernel runs only under
Triton's interpreter (TRITON_INTERPRET=1, the tests' way), far slower than the explicit path.

What this deliberately is not: a tuned kernel (no autotuning, no warp specialisation, no FP8), or
attention with dropout (the runs that use this kernel use none; the model refuses the pair).
Triton is an optional extra (`pip install -e ".[gpu]"`), imported only when this path is chosen.
"""

import torch
import triton
import triton.language as tl


@triton.jit
def _visible(rows, cols, pad, T):
    """(BLOCK_M, BLOCK_N) bool: query i may see key j (the model's attention_mask), both < T."""
    i, j = rows[:, None], cols[None, :]
    return (((j <= i) & (j >= pad)) | (j == i)) & (j < T) & (i < T)


@triton.jit
def _tile(ptr, rows, T, D, D_PAD: tl.constexpr):
    """Load a (len(rows), D_PAD) tile of one head's (T, D) matrix at ptr, zeros outside it."""
    cols = tl.arange(0, D_PAD)
    return tl.load(ptr + rows[:, None] * D + cols[None, :],
                   mask=(rows[:, None] < T) & (cols[None, :] < D), other=0.0)


@triton.jit
def _put(ptr, rows, T, D, value, D_PAD: tl.constexpr):
    """Store a (len(rows), D_PAD) tile into one head's (T, D) matrix at ptr, inside it only."""
    cols = tl.arange(0, D_PAD)
    tl.store(ptr + rows[:, None] * D + cols[None, :], value.to(ptr.dtype.element_ty),
             mask=(rows[:, None] < T) & (cols[None, :] < D))


@triton.jit
def _forward(Q, K, V, Y, L, PAD, H, T, D, scale,
             BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, D_PAD: tl.constexpr):
    """One program: BLOCK_M queries of one (batch row, head). Q, K, V, Y (B*H, T, D); L (B*H, T)."""
    bh, start_m = tl.program_id(1), tl.program_id(0) * BLOCK_M
    head, pad = bh * T * D, tl.load(PAD + bh // H)
    rows = start_m + tl.arange(0, BLOCK_M)
    q = _tile(Q + head, rows, T, D, D_PAD)                            # (BLOCK_M, D_PAD)
    m = tl.full([BLOCK_M], -1.0e30, tl.float32)                       # running max (finite: a
    l = tl.zeros([BLOCK_M], tl.float32)                               # fully hidden tile gives
    acc = tl.zeros([BLOCK_M, D_PAD], tl.float32)                      # p = 0, never NaN)
    lo = (tl.minimum(pad, start_m) // BLOCK_N) * BLOCK_N              # keys before the pad: only
    hi = tl.minimum(start_m + BLOCK_M, T)                             # a pad query's own
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + tl.arange(0, BLOCK_N)
        k = _tile(K + head, cols, T, D, D_PAD)                        # (BLOCK_N, D_PAD)
        v = _tile(V + head, cols, T, D, D_PAD)
        s = tl.dot(q, tl.trans(k)) * scale                            # (BLOCK_M, BLOCK_N) qk^T/√d
        s = tl.where(_visible(rows, cols, pad, T), s, float("-inf"))
        m_new = tl.maximum(m, tl.max(s, 1))                           # m' = max(m, rowmax(s))
        p = tl.exp(s - m_new[:, None])                                # p = exp(s - m')
        alpha = tl.exp(m - m_new)                                     # exp(m - m'): rescales
        l = l * alpha + tl.sum(p, 1)                                  # l = l e^(m-m') + rowsum(p)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)         # acc = acc e^(m-m') + p v
        m = m_new
    l = tl.where(rows < T, l, 1.0)                                    # rows past T: no 0 / 0
    _put(Y + head, rows, T, D, acc / l[:, None], D_PAD)               # y = acc / l
    tl.store(L + bh * T + rows, m + tl.log(l), mask=rows < T)         # L = m + log l


@triton.jit
def _backward_kv(Q, K, V, DY, L, DELTA, DK, DV, PAD, H, T, D, scale,
                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, D_PAD: tl.constexpr):
    """One program: dK and dV of BLOCK_N keys of one (batch row, head), over every query that
    can see them (from the key tile's first query on: causal)."""
    bh, start_n = tl.program_id(1), tl.program_id(0) * BLOCK_N
    head, pad = bh * T * D, tl.load(PAD + bh // H)
    cols = start_n + tl.arange(0, BLOCK_N)
    k = _tile(K + head, cols, T, D, D_PAD)                            # (BLOCK_N, D_PAD)
    v = _tile(V + head, cols, T, D, D_PAD)
    dk = tl.zeros([BLOCK_N, D_PAD], tl.float32)
    dv = tl.zeros([BLOCK_N, D_PAD], tl.float32)
    for start_m in range((start_n // BLOCK_M) * BLOCK_M, T, BLOCK_M):
        rows = start_m + tl.arange(0, BLOCK_M)
        q = _tile(Q + head, rows, T, D, D_PAD)                        # (BLOCK_M, D_PAD)
        dy = _tile(DY + head, rows, T, D, D_PAD)
        lse = tl.load(L + bh * T + rows, mask=rows < T, other=0.0)     # (BLOCK_M,)
        delta = tl.load(DELTA + bh * T + rows, mask=rows < T, other=0.0)
        s = tl.dot(q, tl.trans(k)) * scale                            # (BLOCK_M, BLOCK_N)
        p = tl.where(_visible(rows, cols, pad, T), tl.exp(s - lse[:, None]), 0.0)  # P = e^(S-L)
        dv += tl.dot(tl.trans(p).to(dy.dtype), dy)                    # dV += P^T dY
        dp = tl.dot(dy, tl.trans(v))                                  # dP = dY V^T
        ds = p * (dp - delta[:, None])                                # dS = P ∘ (dP - D)
        dk += tl.dot(tl.trans(ds).to(q.dtype), q) * scale             # dK += dS^T Q / √d
    _put(DK + head, cols, T, D, dk, D_PAD)
    _put(DV + head, cols, T, D, dv, D_PAD)


@triton.jit
def _backward_q(Q, K, V, DY, L, DELTA, DQ, PAD, H, T, D, scale,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, D_PAD: tl.constexpr):
    """One program: dQ of BLOCK_M queries of one (batch row, head), over the keys they see."""
    bh, start_m = tl.program_id(1), tl.program_id(0) * BLOCK_M
    head, pad = bh * T * D, tl.load(PAD + bh // H)
    rows = start_m + tl.arange(0, BLOCK_M)
    q = _tile(Q + head, rows, T, D, D_PAD)
    dy = _tile(DY + head, rows, T, D, D_PAD)
    lse = tl.load(L + bh * T + rows, mask=rows < T, other=0.0)
    delta = tl.load(DELTA + bh * T + rows, mask=rows < T, other=0.0)
    dq = tl.zeros([BLOCK_M, D_PAD], tl.float32)
    lo = (tl.minimum(pad, start_m) // BLOCK_N) * BLOCK_N
    for start_n in range(lo, tl.minimum(start_m + BLOCK_M, T), BLOCK_N):
        cols = start_n + tl.arange(0, BLOCK_N)
        k = _tile(K + head, cols, T, D, D_PAD)
        v = _tile(V + head, cols, T, D, D_PAD)
        s = tl.dot(q, tl.trans(k)) * scale
        p = tl.where(_visible(rows, cols, pad, T), tl.exp(s - lse[:, None]), 0.0)  # P = e^(S-L)
        ds = p * (tl.dot(dy, tl.trans(v)) - delta[:, None])          # dS = P ∘ (dY V^T - D)
        dq += tl.dot(ds.to(k.dtype), k) * scale                       # dQ += dS K / √d
    _put(DQ + head, rows, T, D, dq, D_PAD)


def _launch_shape(q: torch.Tensor, block: int):
    """(B*H, T, D) views' sizes, the padded head width and the tile size for q (B, H, T, D)."""
    B, H, T, D = q.shape
    return B, H, T, D, max(16, triton.next_power_of_2(D)), max(16, min(block, 64))


class FlashAttention(torch.autograd.Function):
    """y = flash_attention(q, k, v, pad) with its backward; q, k, v (B, H, T, D), pad (B,)."""

    @staticmethod
    def forward(ctx, q, k, v, pad, block):
        B, H, T, D, D_PAD, BLOCK = _launch_shape(q, block)
        q, k, v = (x.contiguous() for x in (q, k, v))
        y = torch.empty_like(q)
        lse = torch.empty(B * H, T, device=q.device, dtype=torch.float32)   # L, for backward
        grid = (triton.cdiv(T, BLOCK), B * H)
        _forward[grid](q, k, v, y, lse, pad, H, T, D, D ** -0.5,
                       BLOCK_M=BLOCK, BLOCK_N=BLOCK, D_PAD=D_PAD)
        ctx.save_for_backward(q, k, v, y, lse, pad)
        ctx.block = block
        return y

    @staticmethod
    def backward(ctx, dy):
        q, k, v, y, lse, pad = ctx.saved_tensors
        B, H, T, D, D_PAD, BLOCK = _launch_shape(q, ctx.block)
        dy = dy.contiguous()
        delta = (dy.float() * y.float()).sum(-1).view(B * H, T)      # D = rowsum(dY ∘ Y)
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        grid = (triton.cdiv(T, BLOCK), B * H)
        _backward_kv[grid](q, k, v, dy, lse, delta, dk, dv, pad, H, T, D, D ** -0.5,
                           BLOCK_M=BLOCK, BLOCK_N=BLOCK, D_PAD=D_PAD)
        _backward_q[grid](q, k, v, dy, lse, delta, dq, pad, H, T, D, D ** -0.5,
                          BLOCK_M=BLOCK, BLOCK_N=BLOCK, D_PAD=D_PAD)
        return dq, dk, dv, None, None


def flash_attention(q, k, v, pad=None, block: int = 64):
    """Causal attention over left-padded rows, (B, H, T, D) -> (B, H, T, D): what model.py's
    explicit path computes with attention_mask(pad, 0, T, T). pad (B,) left-pad lengths, or
    None (no padding). block: the tile size, 16 to 64 (the tests use 16 to cross tiles)."""
    B, _, T, _ = q.shape
    if pad is None:
        pad = torch.zeros(B, dtype=torch.int32, device=q.device)
    pad = torch.as_tensor(pad, device=q.device).to(torch.int32).expand(B).contiguous()
    return FlashAttention.apply(q, k, v, pad, block)
