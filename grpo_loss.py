"""
GRPO's loss and its update: the clipped surrogate, the k3 KL, and one AdamW step over
micro-batches.

    J(θ) = agg_{i,t} [ min(ρ_it A_i, clip(ρ_it, 1 - ε_low, 1 + ε_high) A_i) - β k3_it ]
    ρ_it = π_θ(o_it | q, o_i<t) / π_old(o_it | q, o_i<t),  k3 = π_ref/π_θ - log(π_ref/π_θ) - 1

(DeepSeekMath, arXiv 2402.03300, eq. 3 and 4.) `policy_loss` negates J and aggregates it over
the tokens kept, three ways (DAPO's token mean, DeepSeekMath's sequence mean, Dr. GRPO's
constant); `update` runs it over micro-batches of rows, whose gradients add up to the whole
batch's, and takes the AdamW step through the guard on non-finite updates. `cfg` is
grpo.GRPOConfig. Each piece is tested against groups worked by hand (tests/test_grpo.py), and
the micro-batched update against one backward over every row.

What this is deliberately not: a value loss or an entropy bonus (GRPO has neither).
"""

from contextlib import nullcontext

import torch

import dist
from logprobs import micro_batches, token_logprobs


# |log ratio| is bounded before exp: at a position after a row stopped (masked out of the loss)
# log π_θ of the pad token can be very negative, exp would overflow to inf, and inf * 0 is NaN,
# in the loss or in its gradient. exp(20) ~ 5e8 stays finite; a real token never gets there.
LOG_RATIO_BOUND = 20.0


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 per token: π_ref/π_θ - log(π_ref/π_θ) - 1 >= 0 (DeepSeekMath eq. 4)."""
    # exercise: kl_k3
    log_ratio = (ref_logp - logp).clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND)  # log π_ref/π_θ
    return torch.exp(log_ratio) - log_ratio - 1
    # end of exercise: kl_k3


def policy_loss(logp, old_logp, adv, mask, *, agg: str = "token", clip_low: float = 0.2,
                clip_high: float = 0.28, max_len: int | None = None, kl=None, beta: float = 0.0,
                n_tokens=None, n_seqs=None, n_rows=None):
    """The clipped surrogate, negated to a loss, aggregated over the tokens in `mask`.

    logp, old_logp, mask (N, T); adv (N,), or (N, T) per token (targeted_advantages); kl (N, T)
    or None. Returns (loss, clip_fraction).
    Rows with no token in the mask (dropped groups, masked truncations) are left out of every
    sum and of the token and sequence counts:
      token:    Σ_i Σ_t ℓ_it / Σ_i |o_i|                        (DAPO)
      seq:      1/N' Σ_i (1/|o_i|) Σ_t ℓ_it, N' = rows kept     (DeepSeekMath eq. 3)
      constant: Σ_i Σ_t ℓ_it / (N · max_len), N = all rows     (Dr. GRPO: a constant)
    When these rows are one rank's share of a global batch, n_tokens (Σ_i |o_i|), n_seqs (N')
    and n_rows (N) are the global batch's, so the ranks' losses sum to the global loss.
    """
    # exercise: policy_loss
    n_tokens = mask.sum() if n_tokens is None else n_tokens
    n_seqs = mask.any(1).sum() if n_seqs is None else n_seqs
    n_rows = mask.shape[0] if n_rows is None else n_rows
    log_ratio = (logp - old_logp).clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND)
    ratio = torch.exp(log_ratio)                                     # (N, T) ρ, in log space
    a = adv[:, None] if adv.dim() == 1 else adv                      # (N, 1) or (N, T) per token
    surrogate = torch.min(ratio * a, ratio.clamp(1 - clip_low, 1 + clip_high) * a)  # (N, T)
    per_token = -surrogate + (beta * kl if kl is not None else 0.0)  # (N, T) ℓ_it
    per_token = torch.where(mask, per_token, 0.0)                    # (N, T) selected, not * 0
    if agg == "token":
        loss = per_token.sum() / n_tokens.clamp(min=1)
    elif agg == "seq":
        per_seq = per_token.sum(1) / mask.sum(1).clamp(min=1)        # (N,) mean over o_i's tokens
        loss = per_seq.sum() / torch.as_tensor(n_seqs).clamp(min=1)
    else:
        loss = per_token.sum() / (n_rows * (max_len or mask.shape[1]))
    clipped = ((ratio < 1 - clip_low) & (a < 0)) | ((ratio > 1 + clip_high) & (a > 0))
    clip_frac = (clipped & mask).sum() / mask.sum().clamp(min=1)
    return loss, clip_frac
    # end of exercise: policy_loss


def update(trainer, opt, ids, pad, n_prompt: int, old_logp, adv, mask, real, cfg, *,
           guard, step: int, lr: float, max_len: int, n_tokens, n_seqs, n_rows: int,
           ref_logp=None):
    """μ = cfg.inner_epochs policy-gradient updates on one batch of rollouts: teacher-forced
    log-probs, the clipped loss, backward, clip, AdamW (skipped by `guard` if not finite).
    Each update accumulates its gradient over micro_batches of cfg.rl_micro_batch rows: the loss
    is a sum over rows divided by the global batch's counts, so the chunks' losses add up to the
    whole batch's and so do their gradients. Under DDP only the last chunk's backward averages
    the gradients over ranks. mask (n, T): tokens in the loss; real (n, T): generated tokens.
    Returns (logp, entropy, kl, loss, clip_frac, grad_norm) of the last epoch."""
    # exercise: update
    chunks = micro_batches(real, pad, n_prompt, cfg.rl_micro_batch)
    for _ in range(cfg.inner_epochs):
        logp = torch.zeros(real.shape, device=ids.device)             # (n, T)
        entropy = torch.zeros(real.shape, device=ids.device)          # (n, T)
        loss, n_clipped = torch.zeros((), device=ids.device), torch.zeros((), device=ids.device)
        for i, (rows, lo, hi) in enumerate(chunks):
            T = hi - n_prompt                                        # the chunk's completions
            last = i == len(chunks) - 1
            with trainer.no_sync() if hasattr(trainer, "no_sync") and not last else nullcontext():
                lp, entropy[rows, :T] = token_logprobs(trainer, ids[rows, lo:hi], pad[rows] - lo,
                                                       n_prompt - lo, with_entropy=True,
                                                       temperature=cfg.rl_temperature)
                kl = kl_k3(lp, ref_logp[rows, :T]) if cfg.kl_beta > 0 else None
                a = adv[rows] if adv.dim() == 1 else adv[rows, :T]   # (rows,) or (rows, T)
                part, clip_frac = policy_loss(lp, old_logp[rows, :T], a, mask[rows, :T],
                                              agg=cfg.loss_agg, clip_low=cfg.clip_low,
                                              clip_high=cfg.clip_high, max_len=max_len, kl=kl,
                                              beta=cfg.kl_beta, n_tokens=n_tokens,
                                              n_seqs=n_seqs, n_rows=n_rows)
                (part * dist.world()).backward()                     # DDP divides by world
            logp[rows, :T], loss = lp.detach(), loss + part.detach()
            n_clipped = n_clipped + clip_frac * mask[rows, :T].sum()
        for group in opt.param_groups:
            group["lr"] = lr
        grad_norm = torch.nn.utils.clip_grad_norm_(trainer.parameters(), cfg.rl_grad_clip)
        loss = dist.all_sum(loss)                                    # the global batch's loss
        guard.step(opt, loss.item(), grad_norm.item(), step)
    kl = kl_k3(logp, ref_logp) if ref_logp is not None else None     # (n, T), for the log
    return logp, entropy, kl, loss, n_clipped / mask.sum().clamp(min=1), grad_norm
    # end of exercise: update
