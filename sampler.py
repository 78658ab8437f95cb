"""
Sampling from model.GPT: a preallocated KV cache, the exponential-race sampler, and `generate`,
the one sampler shared by pretraining's quick evaluation, GRPO rollouts and evaluation.

What it is: `generate` draws G completions for each of B left-padded prompts with ONE prefill
per prompt (its cache then copied to its G samples) plus one single-token forward per new token,
stops each row at its own stop token (finished rows leave the batch and the cache, an eighth at
a time), and returns a `Rollout`: the tokens, the log-probability of each under the
distribution it was drawn from, and which positions are real.

What it deliberately is not: no beam search, no top-p, no speculative decoding, no CUDA graphs
(with compact=False and a static cache every step has the same shapes, so they could be added).

Reading path: KVCache -> Rollout -> _sample -> generate.
"""

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from model import GPT, GPTConfig


# ---------------------------------------------------------------------------------------------
# KV cache

class KVCache:
    """Preallocated keys and values per layer, each (B, H, L, d) with L = max_len, by default
    block_size (`generate` asks for the prompt plus max_new_tokens, no more).

    The buffers never change shape: step t writes its keys at position `length`. With
    static=True attention reads the whole buffer (`attention_mask` hides unwritten slots and
    each row's left pad), so every decode step has identical shapes, as CUDA graphs and
    torch.compile want (neither is used here). By default it reads only the filled prefix
    [0, length + T): the same numbers, less memory traffic; decoding is memory-bound on a CPU,
    so it makes rollouts faster there (docs/speed.md).
    One tensor per layer rather than one big one, so that a prefill stays differentiable.
    Usage: prefill B prompts, then `expand(G)` so every prompt is encoded once and its cache is
    shared by its G samples (row i*G + j = sample j of prompt i).
    """

    def __init__(self, cfg: GPTConfig, batch_size: int, device=None, dtype=torch.float32,
                 static: bool = False, max_len: int | None = None):
        max_len = max_len or cfg.block_size
        if max_len > cfg.block_size:
            raise ValueError(f"a cache of {max_len} positions exceeds block_size {cfg.block_size}")
        shape = (batch_size, cfg.n_head, max_len, cfg.n_embd // cfg.n_head)
        self.static = static
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layer)]
        self.length = 0  # positions written so far (same for every row: rows are left-padded)
        self.max_len = max_len  # L, the buffer length

    def key_length(self, T: int) -> int:
        """How many key positions a step of T new tokens attends over: L, or the filled prefix."""
        return self.max_len if self.static else self.length + T

    def update(self, layer: int, k, v):
        """Write k, v (B, H, T, d) at [length, length + T); return the keys and values to attend
        over, (B, H, Tk, d) each with Tk = key_length(T)."""
        # exercise: kv_cache
        T = k.shape[2]
        self.k[layer][:, :, self.length : self.length + T] = k
        self.v[layer][:, :, self.length : self.length + T] = v
        Tk = self.key_length(T)
        return self.k[layer][:, :, :Tk], self.v[layer][:, :, :Tk]
        # end of exercise: kv_cache

    def expand(self, n: int) -> "KVCache":
        """Repeat every row n times in place: row i becomes rows i*n .. i*n + n - 1. One buffer
        at a time, so that only one old buffer is alive beside the new ones."""
        for buffers in (self.k, self.v):
            for i, t in enumerate(buffers):
                buffers[i] = t.repeat_interleave(n, dim=0)  # (B * n, H, L, d)
        return self

    def keep(self, rows: torch.Tensor) -> "KVCache":
        """Keep only `rows` (an index tensor), in that order, in place: the rows that are still
        decoding. Only the filled prefix [0, length) is copied, one buffer at a time."""
        for buffers in (self.k, self.v):
            for i, t in enumerate(buffers):
                buffers[i] = t.new_zeros((len(rows), *t.shape[1:]))  # (n, H, L, d)
                buffers[i][:, :, :self.length] = t[rows, :, :self.length]
                del t
        return self


# ---------------------------------------------------------------------------------------------
# Sampling

@dataclass
class Rollout:
    """What `generate` returns; N = B*G rows, row i*G + j is sample j of prompt i."""

    prompt_ids: torch.Tensor  # (N, Tp) long, left-padded prompts
    prompt_pad: torch.Tensor  # (N,) long, number of left pad tokens per row
    tokens: torch.Tensor  # (N, T_new) long, generated ids, pad_id after a row stopped
    logprobs: torch.Tensor  # (N, T_new) float32, log softmax(logits / T) per token; 0 after stop
    mask: torch.Tensor  # (N, T_new) bool, True for real generated tokens (stop token included)
    lengths: torch.Tensor  # (N,) long, number of real generated tokens
    truncated: torch.Tensor  # (N,) bool, hit max_new_tokens without emitting a stop id

    def texts(self, decode) -> list[str]:
        """Each generated row decoded up to and including its stop token (decode: ids -> str,
        e.g. the tokenizer's)."""
        return [decode(row[m].tolist()) for row, m in zip(self.tokens, self.mask)]

    def sequences(self):
        """Full ids (N, Tp + T_new) and pad counts (N,), ready for a teacher-forced forward."""
        return torch.cat([self.prompt_ids, self.tokens], dim=1), self.prompt_pad

    def left_pad(self, width: int, pad_id: int) -> "Rollout":
        """The same rollout with its prompts left-padded to `width` columns (>= today's)."""
        extra = width - self.prompt_ids.shape[1]
        pad = torch.full((len(self.prompt_ids), extra), pad_id, dtype=self.prompt_ids.dtype,
                         device=self.prompt_ids.device)
        return dataclasses.replace(self, prompt_ids=torch.cat([pad, self.prompt_ids], 1),
                                   prompt_pad=self.prompt_pad + extra)

    def select(self, rows: torch.Tensor) -> "Rollout":
        """The rollout of `rows` (indices) alone, in that order; widths stay as they are."""
        return Rollout(*(getattr(self, f.name)[rows.to(getattr(self, f.name).device)]
                         for f in dataclasses.fields(self)))


def _sample(logits, temperature: float, top_k, generator, shard: tuple[int, int] = (0, 1),
            rows=None, n_rows: int | None = None):
    """Next ids (N,) from logits (N, V): argmax at temperature 0, else softmax(logits / temp).

    Sampling is the exponential race: with E_i ~ Exp(1), argmax_i p_i / E_i is i with probability
    p_i (the Gumbel-max trick with the exp taken). It is exactly how torch.multinomial draws one
    sample, so it draws the same ids from the same generator. Written out, the noise can be drawn
    for a global batch: shard = (rank, world) draws it for world * N rows, the same on every
    rank, and keeps this rank's N, so a row's sample does not depend on how rows are split."""
    if temperature == 0:
        return logits.argmax(dim=-1)  # (N,) greedy
    logits = logits / temperature  # (N, V)
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # (N, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))  # (N, V) keep the top k
    probs = F.softmax(logits, dim=-1)  # (N, V)
    rank, world = shard
    n, V = probs.shape
    N = n if rows is None else n_rows
    noise = torch.empty(world * N, V, device=probs.device, dtype=probs.dtype)
    noise = noise.exponential_(1, generator=generator)[rank * N:(rank + 1) * N]  # (N, V) E ~ Exp(1)
    if rows is not None:
        noise = noise[rows]  # (n, V) the rows still decoding
    return (probs / noise).argmax(dim=-1)  # (n,)


@torch.no_grad()
def generate(model: GPT, prompts: list[list[int]], *, num_samples: int = 1,
             max_new_tokens: int = 128, temperature: float = 1.0, top_k: int | None = None,
             stop_ids: Sequence[int] = (), pad_id: int = 0,
             generator: torch.Generator | None = None, use_cache: bool = True,
             shard: tuple[int, int] = (0, 1),
             all_stopped: Callable[[torch.Tensor], bool] | None = None,
             compact: bool = True) -> Rollout:
    """Sample num_samples (G) completions for each of the B prompts; see `Rollout` for the layout.

    Rows stop independently at their first id in stop_ids (which is kept); the loop ends as soon
    as every row has stopped, so T_new can be < max_new_tokens. Sampling runs on the model's
    device and `generator` must live on that same device (seed it for reproducible rollouts).
    The model is put in eval mode (no dropout) and its previous mode restored afterwards.

    logprobs are log_softmax(logits / temperature) of each sampled token (of the untempered
    logits at temperature 0): the distribution the row was drawn from, so that GRPO's update is
    the policy gradient of what was sampled, and the quantity the trainer recomputes with a
    teacher-forced forward at the same temperature (logprobs.token_logprobs), so the two can be
    compared. top_k's filtering is not in it: with top_k it is not the sampler's probability.
    pad_id must be a valid token id: pad positions are fed to the model (and masked out).
    use_cache=False recomputes the whole sequence every step (the slow reference path).
    shard=(rank, world): data-parallel GRPO, these prompts are the rank-th share of a global batch.
    Every rank draws the global batch's sampling noise (see `_sample`), so each row gets the
    tokens it would get in one process. all_stopped(done) -> bool, given the (N,) stopped flags,
    says when decoding may end: by default when every row here has stopped; data-parallel GRPO
    passes one that waits for every rank's rows (dist.all_true), so the ranks step together.
    compact: stop computing finished rows. Whenever an eighth of the rows still decoded have
    stopped, they leave the batch and the cache (KVCache.keep); each row's numbers are the same
    but for float rounding, and its sampling noise is the same (see `_sample`). Completions of
    unequal length make most of a rollout's rows short, so most of the late forwards were
    spent on rows that only emit pad_id. compact=False keeps the shapes fixed.
    """
    if not prompts or not all(len(p) > 0 for p in prompts):
        raise ValueError("prompts must be a non-empty list of non-empty token lists")
    if num_samples < 1 or max_new_tokens < 1 or temperature < 0 or top_k is not None and top_k < 1:
        raise ValueError("need num_samples >= 1, max_new_tokens >= 1, temperature >= 0, top_k >= 1")
    B, G, Tp = len(prompts), num_samples, max(len(p) for p in prompts)
    if Tp + max_new_tokens > model.cfg.block_size:
        raise ValueError(f"prompt of {Tp} tokens + max_new_tokens {max_new_tokens} "
                         f"exceeds block_size {model.cfg.block_size}")
    param = next(model.parameters())
    device = param.device
    prompt = torch.tensor([[pad_id] * (Tp - len(p)) + list(p) for p in prompts], device=device)
    pad = torch.tensor([Tp - len(p) for p in prompts], device=device)  # (B,)
    stop = torch.tensor(list(stop_ids), dtype=torch.long, device=device)  # (S,)

    was_training = model.training
    model.eval()
    try:
        if use_cache:  # encode each prompt once, then share its cache among its G samples
            cache = KVCache(model.cfg, B, device=device, dtype=param.dtype,
                            max_len=Tp + max_new_tokens)
            logits = model(prompt, pad_len=pad, kv_cache=cache)[0][:, -1]  # (B, V)
            cache.expand(G)
            logits = logits.repeat_interleave(G, dim=0)  # (N, V)
        prompt, pad = prompt.repeat_interleave(G, dim=0), pad.repeat_interleave(G)  # (N, Tp), (N,)
        seq, N = prompt, B * G
        tokens = torch.full((N, max_new_tokens), pad_id, dtype=torch.long, device=device)
        logprobs = torch.zeros(N, max_new_tokens, dtype=torch.float32, device=device)
        mask = torch.zeros(N, max_new_tokens, dtype=torch.bool, device=device)
        done = torch.zeros(N, dtype=torch.bool, device=device)  # (N,) row has emitted a stop id
        rows, row_pad = torch.arange(N, device=device), pad  # (n,) the rows still decoded
        for t in range(max_new_tokens):
            if not use_cache:  # reference path: full forward over prompt + everything so far
                logits = model(seq, pad_len=pad)[0][:, -1]  # (N, V)
            nxt = _sample(logits, temperature, top_k, generator, shard, rows, N)  # (n,)
            z = logits.float() / temperature if temperature not in (0, 1) else logits.float()
            lp = F.log_softmax(z, dim=-1).gather(-1, nxt[:, None])[:, 0]  # (n,) log π_T(o_t)
            alive = ~done[rows]  # (n,)
            nxt = torch.where(alive, nxt, pad_id)  # (n,) finished rows only emit pad_id
            tokens[rows, t], logprobs[rows, t] = nxt, torch.where(alive, lp, 0.0)
            mask[rows, t] = alive
            done[rows] = ~alive | torch.isin(nxt, stop)  # (N,)
            T_new = t + 1
            n_done = int(done[rows].sum())  # the one read of the device per token (+ all_stopped's)
            finished = all_stopped(done) if all_stopped else n_done == len(rows)
            if T_new == max_new_tokens or finished:
                break
            # rows stop being decoded an eighth at a time; under torchrun a rank whose rows have
            # all stopped keeps decoding them while other ranks finish (never an empty batch)
            if use_cache and compact and max(1, len(rows) // 8) <= n_done < len(rows):
                live = done[rows].int().argsort(stable=True)[:len(rows) - n_done]  # (n',) no read
                rows, row_pad, nxt = rows[live], row_pad[live], nxt[live]
                cache.keep(live)
            if use_cache:  # one new position for every row still decoded
                logits = model(nxt[:, None], pad_len=row_pad, kv_cache=cache)[0][:, -1]  # (n, V)
            else:
                seq = torch.cat([seq, nxt[:, None]], dim=1)  # (N, Tp + t + 1)
    finally:
        model.train(was_training)
    mask = mask[:, :T_new]
    return Rollout(prompt_ids=prompt, prompt_pad=pad, tokens=tokens[:, :T_new],
                   logprobs=logprobs[:, :T_new], mask=mask, lengths=mask.sum(dim=1),
                   truncated=~done)
