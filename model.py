"""
A small GPT language model, written to be read top to bottom (its sampler is sampler.py).

What it is: a decoder-only transformer (Vaswani et al.) in the modern pre-norm form: token
embeddings tied to the output head, rotary position embeddings (RoPE) on queries and keys, RMSNorm
instead of LayerNorm, causal self-attention, a 4x GELU MLP, no biases. It handles LEFT-padded
batches (prompts of different lengths side by side): each row's positions restart at 0 after its
pad and its pad keys are masked out. Given a KV cache (sampler.KVCache), a forward pass writes
its keys and values there and attends over the cached ones, so decoding feeds one token a step.

What it deliberately is not: no loading of pretrained weights (checkpoints are plain state_dicts),
no mixed-precision or torch.compile code (both can be applied from outside), no grouped-query
attention, no sliding window, no beam search, no top-p, no speculative decoding.

Reading path: GPTConfig -> RMSNorm -> rotary -> CausalSelfAttention (study the explicit path and
SDPA; the third, our Triton kernel, is flash_attention.py) -> Block -> GPT. The init and
`attention_mask` can be skimmed.

References:
  Attention Is All You Need, Vaswani et al. 2017, arXiv:1706.03762
  RoFormer: Enhanced Transformer with Rotary Position Embedding, Su et al. 2021, arXiv:2104.09864
  Root Mean Square Layer Normalization, Zhang & Sennrich 2019, arXiv:1910.07467
  FlashAttention, Dao et al. 2022, arXiv:2205.14135 (a kernel behind F.scaled_dot_product_attention)
"""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

ATTN_IMPLS = ("sdpa", "explicit", "triton")

# ---------------------------------------------------------------------------------------------
# Config

@dataclass
class GPTConfig:
    """The policy's shape (the preference model's too with --rm_init pretrained)."""
    vocab_size: int = 512  # number of token ids covered by the embedding and the head
    block_size: int = 256  # max sequence length (prompt + completion); also the KV cache length
    n_layer: int = 4  # number of transformer blocks
    n_head: int = 4  # attention heads per block
    n_embd: int = 128  # width of the residual stream
    dropout: float = 0.0  # on attention probs and residual branches, only in training mode
    attn_impl: str = "sdpa"  # "sdpa": F.scaled_dot_product_attention (Flash / mem-efficient
    # kernels on CUDA); "explicit": softmax(q k^T / sqrt(d)) v written out (readable reference);
    # "triton": our own FlashAttention kernel (flash_attention.py; a GPU, or TRITON_INTERPRET=1)
    rope_base: float = 10000.0  # theta in the RoPE frequencies theta^(-2i/d)

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"n_embd {self.n_embd} must be divisible by n_head {self.n_head}")
        if (self.n_embd // self.n_head) % 2 != 0:
            raise ValueError(f"n_embd / n_head = {self.n_embd // self.n_head} must be even (RoPE)")
        if self.attn_impl not in ATTN_IMPLS:
            raise ValueError(f"attn_impl must be one of {ATTN_IMPLS}, got {self.attn_impl!r}")
        if self.attn_impl == "triton" and self.dropout > 0:
            raise ValueError(f"attn_impl triton has no attention dropout: use --dropout 0 or "
                             f"another attn_impl, got dropout {self.dropout}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not self.rope_base > 0:
            raise ValueError(f"rope_base must be > 0, got {self.rope_base!r}")


# ---------------------------------------------------------------------------------------------
# Building blocks: RMSNorm, rotary embeddings, the attention mask

class RMSNorm(nn.Module):
    """LayerNorm without the mean subtraction and the bias (1910.07467), with a learnable gain."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))  # (C,) the gain g

    def forward(self, x):
        xf = x.to(torch.promote_types(x.dtype, torch.float32))  # bf16 -> f32 for the reduction
        rms = torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)  # (..., 1)
        return (xf * rms).type_as(x) * self.weight  # (..., C) y = x / RMS(x) * g, 1910.07467 eq. 4


def rope_tables(block_size: int, head_dim: int, base: float):
    """cos, sin of the RoPE angles m * base^(-2i/d) at every position m: (block_size, d/2) each."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # (d/2,)
    angles = torch.outer(torch.arange(block_size, dtype=torch.float64), inv_freq)  # (L, d/2)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x, cos, sin):
    """Rotate each pair of dims of x by its position's angle (RoFormer 2104.09864 eq. 34).

    x (B, H, T, d); cos, sin (B, 1, T, d/2). Dim i is paired with dim i + d/2 ("rotate half"), not
    RoFormer's adjacent (2i, 2i+1): the same rotation up to a fixed permutation of the head dims,
    which the learnt q/k projections absorb. q_m . k_n then depends only on m - n.
    """
    # exercise: rope
    d = x.shape[-1] // 2
    x1, x2 = x[..., :d], x[..., d:]  # (B, H, T, d/2) each
    out = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (B, H, T, d) R_m x
    return out.type_as(x)
    # end of exercise: rope


def attention_mask(pad_len, t0: int, T: int, Tk: int):
    """Boolean mask (B, 1, T, Tk), True = the query may attend to the key, for left-padded rows.

    Query i sits at absolute position t0 + i, key j at position j. The query sees key j when
    j <= t0 + i (causal) and j >= pad_len (not padding). Every query also sees itself, so pad
    queries keep one allowed key: a row of all -inf would make softmax return NaN.
    Example: pad_len=[1], t0=0, T=Tk=3 -> [[1,0,0], [0,1,0], [0,1,1]].
    """
    # exercise: attention_mask
    q = t0 + torch.arange(T, device=pad_len.device)[:, None]  # (T, 1)
    k = torch.arange(Tk, device=pad_len.device)[None, :]  # (1, Tk)
    real = k[None] >= pad_len[:, None, None]  # (B, 1, Tk) key is not padding
    return ((k <= q) & real | (k == q))[:, None]  # (B, 1, T, Tk)
    # end of exercise: attention_mask


# ---------------------------------------------------------------------------------------------
# Attention, MLP, Block

class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig, layer_idx: int):
        super().__init__()
        self.n_head, self.head_dim = cfg.n_head, cfg.n_embd // cfg.n_head
        self.impl, self.dropout, self.layer_idx = cfg.attn_impl, cfg.dropout, layer_idx
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=False)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x, cos, sin, mask=None, kv_cache=None, pad=None):
        """x (B, T, C); mask (B, 1, T, Tk) bool or None = plain causal (then Tk == T); pad (B,)
        the rows' left padding, which the triton path reads instead of a mask."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, T, d)
        k = k.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, T, d)
        v = v.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, T, d)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)  # (B, H, T, d) positions baked in
        if kv_cache is not None:  # write this step's keys/values, attend over the cached ones
            k, v = kv_cache.update(self.layer_idx, k, v)  # (B, H, Tk, d) each
        p = self.dropout if self.training else 0.0
        if self.impl == "triton" and kv_cache is None:
            from flash_attention import flash_attention  # optional: Triton only on this path
            y = flash_attention(q, k, v, pad)  # (B, H, T, d), the mask computed in its tiles
        elif self.impl in ("sdpa", "triton"):  # decoding one query a step: nothing to tile
            # one fused kernel; with mask=None, is_causal lets CUDA pick Flash (2205.14135) and no
            # (T, T) mask is ever built. An explicit mask falls back to the mem-efficient kernel.
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=p, is_causal=mask is None
            )  # (B, H, T, d)
        else:  # the same written out: Attention(Q,K,V) = softmax(QK^T/sqrt(d))V, 1706.03762 eq. 1
            # exercise: attention
            if mask is None:
                mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()  # (T, T)
            att = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, H, T, Tk) QK^T/sqrt(d)
            att = att.masked_fill(~mask, float("-inf"))  # (B, H, T, Tk) forbidden keys -> -inf
            att = F.softmax(att, dim=-1)  # (B, H, T, Tk) each row sums to 1
            if p > 0:
                att = F.dropout(att, p)  # (B, H, T, Tk)
            y = att @ v  # (B, H, T, d) weighted sum of values
            # end of exercise: attention
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C) heads side by side
        return self.resid_drop(self.proj(y))  # (B, T, C)


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=False)
        self.proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=False)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.drop(self.proj(F.gelu(self.fc(x))))  # (B, T, C) via (B, T, 4C)


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig, layer_idx: int):
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(cfg.n_embd), RMSNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg, layer_idx)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, mask=None, kv_cache=None, pad=None):
        x = x + self.attn(self.norm1(x), cos, sin, mask, kv_cache, pad)  # (B, T, C) pre-norm
        x = x + self.mlp(self.norm2(x))  # (B, T, C)
        return x


# ---------------------------------------------------------------------------------------------
# The model

class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.norm_f = RMSNorm(cfg.n_embd)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying, as in 1706.03762 section 3.4
        # FOOTGUN: model.to(torch.bfloat16) also rounds these tables; prefer autocast for bf16.
        cos, sin = rope_tables(cfg.block_size, cfg.n_embd // cfg.n_head, cfg.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)  # (L, d/2), not in state_dict
        self.register_buffer("rope_sin", sin, persistent=False)  # (L, d/2)
        # init: N(0, 0.02) everywhere; the two projections that write into the residual stream
        # get std / sqrt(2 * n_layer) so the stream's variance does not grow with depth (GPT-2)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * cfg.n_layer) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, mean=0.0, std=std)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())  # the tied matrix is counted once

    def hidden(self, idx, pad_len=None, kv_cache=None):
        """Final-normed hidden states (B, T, C) for token ids idx (B, T).

        pad_len (B,): number of LEFT pad tokens per row, or None for unpadded rows. kv_cache: a
        KVCache holding earlier positions; idx is then the next T tokens and gets written into it.
        """
        B, T = idx.shape
        t0 = 0 if kv_cache is None else kv_cache.length
        if t0 + T > self.cfg.block_size:
            raise ValueError(f"{t0 + T} positions exceed block_size {self.cfg.block_size}")
        pos = t0 + torch.arange(T, device=idx.device)  # (T,) absolute positions
        pad = torch.as_tensor(0 if pad_len is None else pad_len, device=idx.device).expand(B)
        if pad_len is None and kv_cache is None:  # pad (B,): each row's left padding
            mask, pos = None, pos.expand(B, T)  # plain causal: no mask tensor at all
        else:
            Tk = T if kv_cache is None else kv_cache.key_length(T)
            own = self.cfg.attn_impl == "triton" and kv_cache is None  # the kernel reads pad
            mask = None if own else attention_mask(pad, t0, T, Tk)  # (B, 1, T, Tk)
            # (B, T) first real token at 0. RoPE only sees m - n, so in exact arithmetic the shift
            # is invisible; it makes a row's floats independent of its batch-mates' lengths.
            pos = (pos[None, :] - pad[:, None]).clamp(min=0)
        cos, sin = self.rope_cos[pos][:, None], self.rope_sin[pos][:, None]  # (B, 1, T, d/2)
        x = self.wte(idx)  # (B, T, C)
        for block in self.blocks:
            x = block(x, cos, sin, mask, kv_cache, pad)  # (B, T, C)
        if kv_cache is not None:
            kv_cache.length += T
        return self.norm_f(x)  # (B, T, C)

    def forward(self, idx, targets=None, pad_len=None, kv_cache=None):
        """Logits (B, T, V) in float32 (float64 for a float64 model) and the mean cross-entropy
        over targets != -1 (None without targets). pad_len and kv_cache: see `hidden`."""
        logits = self.lm_head(self.hidden(idx, pad_len, kv_cache))  # (B, T, V)
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # (B, T, V)
        loss = None
        if targets is not None:  # L = -mean_t log p(x_t+1 | x_<=t)
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
        return logits, loss
