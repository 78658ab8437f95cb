"""
The exercises of GRPO's update: the clipped surrogate with its three aggregations, and the update
over micro-batches whose gradients add up to the whole batch's.

Each is an `Exercise` (course/checks.py); the handouts are docs/course.md, the equations
grpo_loss.py's docstring (DeepSeekMath, arXiv 2402.03300, eq. 3; DAPO, arXiv 2503.14476; Dr.
GRPO, arXiv 2503.20783).

What this deliberately is not: tests of the repository (tests/test_grpo.py holds those).
"""

import copy

import torch

from course.checks import Exercise, Mistake, require
from course.exercises_rl import tiny_model

# ------------------------------------------------------------------------------------------------
# the clipped loss


def loss_inputs():
    """4 rows of 6 tokens: row 2 dropped (no token in the mask), rows of 6, 4 and 2 tokens; the
    ratios spread around 1 so that both clips act."""
    g = torch.Generator().manual_seed(0)
    old = -2 * torch.rand(4, 6, generator=g)
    logp = (old + 0.6 * torch.randn(4, 6, generator=g)).requires_grad_()
    lengths = torch.tensor([6, 4, 0, 2])
    mask = torch.arange(6)[None] < lengths[:, None]                  # (4, 6)
    adv = torch.tensor([1.0, -0.5, 2.0, -1.5])
    kl = torch.rand(4, 6, generator=g)
    return logp, old, adv, mask, kl


def loss_probe(m):
    out = {}
    for agg in ("token", "seq", "constant"):
        for beta in (0.0, 0.1):
            logp, old, adv, mask, kl = loss_inputs()
            loss, clip_frac = m.policy_loss(logp, old, adv, mask, agg=agg, max_len=6, kl=kl,
                                            beta=beta)
            grad, = torch.autograd.grad(loss, logp)
            out[f"{agg}, β={beta}"] = {"loss": loss, "clip_frac": clip_frac, "grad": grad}
    logp, old, adv, mask, _ = loss_inputs()
    per_token = adv[:, None] * torch.linspace(0.5, 1.5, 6)           # (4, 6) targeted A_it
    loss, _ = m.policy_loss(logp, old, per_token, mask, agg="token")
    out["per-token A"] = {"loss": loss, "grad": torch.autograd.grad(loss, logp)[0]}
    return out


def gradient_at_ratio_one(m):
    """At π_θ = π_old the clip is inactive and ∂loss/∂log π_it = -A_i / Σ|o_i| on the mask."""
    logp, _, adv, mask, _ = loss_inputs()
    loss, _ = m.policy_loss(logp, logp.detach(), adv, mask, agg="token")
    grad, = torch.autograd.grad(loss, logp)
    want = torch.where(mask, -adv[:, None] / mask.sum(), 0.0)
    require(torch.allclose(grad, want, atol=1e-6), f"at ratio 1 (token mean) the gradient of "
            f"each kept token should be -A_i / (tokens in the mask) = {want[0, 0].item():.5f} "
            f"for row 0, got {grad[0, 0].item():.5f}")


def dropped_rows_do_nothing(m):
    logp, old, adv, mask, _ = loss_inputs()
    other = adv.clone()
    other[2] = -100.0                                                # row 2 has no kept token
    for agg in ("token", "seq", "constant"):
        a, _ = m.policy_loss(logp, old, adv, mask, agg=agg, max_len=6)
        b, _ = m.policy_loss(logp, old, other, mask, agg=agg, max_len=6)
        require(torch.allclose(a, b), f"{agg}: a row with no token in the mask must not count")


POLICY_LOSS = Exercise(
    "policy_loss", "grpo_loss.py", "The clipped surrogate and its three aggregations", 35,
    loss_probe, (gradient_at_ratio_one, dropped_rows_do_nothing), (
        Mistake("max_not_min", "the surrogate is the pessimistic min of the unclipped and the "
                "clipped term; max lets the ratio run as far as the advantage pulls it.",
                (("torch.min(ratio * a", "torch.max(ratio * a"),)),
        Mistake("pad_tokens_counted", "the token mean divides by the tokens in the mask; "
                "dividing by N·T counts padding and dropped rows, so the step's size depends on "
                "the lengths of other completions.",
                (("n_tokens = mask.sum() if n_tokens is None",
                  "n_tokens = torch.tensor(mask.numel()) if n_tokens is None"),)),
        Mistake("dropped_rows_counted", "the sequence mean is over the rows kept (N'): a dropped "
                "row (no token in the mask) is not a sequence of the loss.",
                (("n_seqs = mask.any(1).sum() if n_seqs is None",
                  "n_seqs = mask.shape[0] if n_seqs is None"),)),
        Mistake("seq_mean_for_token", "agg \"token\" is DAPO's token mean, Σ ℓ / Σ|o_i|: every "
                "token weighs the same. A mean per sequence, then over sequences, is \"seq\": "
                "it weighs a short completion's tokens more.",
                (("loss = per_token.sum() / n_tokens.clamp(min=1)",
                  "loss = (per_token.sum(1) / mask.sum(1).clamp(min=1)).sum() / "
                  "mask.any(1).sum().clamp(min=1)"),)),
        Mistake("seq_mean_over_padding", "a sequence's mean is over its own |o_i| tokens, not "
                "over the T columns of the batch.",
                (("per_token.sum(1) / mask.sum(1).clamp(min=1)",
                  "per_token.sum(1) / mask.shape[1]"),)),
        Mistake("kl_rewarded", "J subtracts β·k3, so the loss (-J) adds it: the KL is a "
                "penalty.", (("-surrogate + (beta * kl", "-surrogate - (beta * kl"),)),
        Mistake("unclipped", "clip the ratio to [1 - ε_low, 1 + ε_high] in the second term.",
                (("ratio.clamp(1 - clip_low, 1 + clip_high) * a", "ratio * a"),))))

# ------------------------------------------------------------------------------------------------
# the update over micro-batches


def update_inputs():
    from sampler import generate
    model = tiny_model(seed=0, vocab=64)
    rollout = generate(model, [[3, 4, 5], [6, 7, 8, 9, 10]], num_samples=3, max_new_tokens=10,
                       stop_ids=[1, 2, 3, 4], pad_id=0, generator=torch.Generator().manual_seed(1))
    ids, pad = rollout.sequences()
    return model, rollout, ids, pad, rollout.prompt_ids.shape[1]


def run_update(m, micro_batch: int):
    """One update of the tiny model by the module's `update`: SGD at lr 0.1 (so the weights
    compare gradients), a gradient clip that acts, the KL term on; -> weights after, outputs."""
    from grpo import GRPOConfig
    from guard import SkipNonFinite
    from logprobs import token_logprobs
    model, rollout, ids, pad, n_prompt = update_inputs()
    real = rollout.mask
    ref_logp = token_logprobs(model, ids, pad, n_prompt).detach() - 0.1
    cfg = GRPOConfig(loss_agg="seq", kl_beta=0.1, rl_micro_batch=micro_batch, rl_grad_clip=0.05)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    adv = torch.linspace(-1, 1, len(ids))
    logp, entropy, kl, loss, clip_frac, grad_norm = m.update(
        model, opt, ids, pad, n_prompt, rollout.logprobs, adv, real, real, cfg,
        guard=SkipNonFinite("course", 1), step=0, lr=0.05, max_len=10, n_tokens=real.sum(),
        n_seqs=len(ids), n_rows=len(ids), ref_logp=ref_logp)
    weights = torch.cat([p.detach().flatten() for p in model.parameters()])
    return weights, {"logp": torch.where(real, logp, 0.0), "loss": loss, "grad_norm": grad_norm}


def update_probe(m):
    weights, out = run_update(m, micro_batch=2)
    return dict(out, weights=weights)


def micro_batches_add_up(m):
    """Micro-batches of 2 rows and one pass over all 6 rows move the weights alike."""
    w2, _ = run_update(m, 2)
    w0, _ = run_update(m, 0)
    before = torch.cat([p.flatten() for p in copy.deepcopy(update_inputs()[0]).parameters()])
    require(bool((w0 - before).abs().max() > 1e-6), "the update did not move the weights")
    require(torch.allclose(w2, w0, atol=1e-6), "micro-batches of 2 rows should move the weights "
            "exactly as one pass over every row: the chunks' losses must add up to the batch's")


UPDATE = Exercise(
    "update", "grpo_loss.py", "The update over micro-batches: one AdamW step for the batch", 40,
    update_probe, (micro_batches_add_up,), (
        Mistake("chunk_normalised", "each micro-batch is normalised by its own counts, so the "
                "gradients add up to a sum of chunk means, not the batch's mean: pass the whole "
                "batch's n_tokens, n_seqs and n_rows to the loss.",
                (("beta=cfg.kl_beta, n_tokens=n_tokens,", "beta=cfg.kl_beta, n_tokens=None,"),
                 ("n_seqs=n_seqs, n_rows=n_rows)", "n_seqs=None, n_rows=None)"))),
        Mistake("old_logp_not_detached", "π_old is the rollout's log-probs (old_logp), fixed: "
                "with the new log-probs themselves in the ratio, ρ = exp(lp - lp) has zero "
                "gradient and nothing is learned.", (("old_logp[rows, :T]", "lp"),)),
        Mistake("lr_not_set", "the schedule's learning rate must be written into the optimiser's "
                "param groups before its step.", (("group[\"lr\"] = lr", "pass"),)),
        Mistake("not_clipped", "clip the gradient's norm to cfg.rl_grad_clip before the step "
                "(clip_grad_norm_ returns the norm before clipping, for the log).",
                (("clip_grad_norm_(trainer.parameters(), cfg.rl_grad_clip)",
                  "clip_grad_norm_(trainer.parameters(), float(\"inf\"))"),))))
