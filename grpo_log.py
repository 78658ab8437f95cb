"""
What a GRPO step logs: one JSON row in grpo_log.jsonl and one printed line.

A row holds the reward and each of its terms, the training batch's accuracy, the groups with no
signal (all right or all wrong), lengths of right and wrong completions, truncations, entropy,
clip fraction, gradient norm, the KL from the initial policy, and what the run watches but never
optimises: the human's true utility (gold), the preference model's raw score (proxy), how
often that score ranks the verifier's right answers above its wrong ones (rank_agreement) and how
often the reward itself does (reward_agreement: 1 - p for a verifier flipped at rate p, so a
noisy verifier and a learned model can be matched on one number). `heldout_watch` measures the
same things where they can be trusted: on a fixed held-out set, at a fixed cadence, never on the
training batch (whose prompts the policy is being fitted to, step by step).
docs/how-it-works.md says what each column is for and what a healthy run's look like.

What this is deliberately not: a metrics framework (no logger objects, no remote sinks).
"""

import torch

import dist
from advantages import zero_variance_groups
from preference import raw_scores
from reward import reward_terms, watched
from sampler import generate


def step_metrics(s) -> dict:
    """grpo.Step s -> its diagnostics over the global batch (all-reduced or gathered over ranks);
    docs/how-it-works.md's table says what each one is for."""
    real = s.rollout.mask                                            # (n, T) generated tokens
    entropy_sum, clip_sum, n_real, n_mask = dist.all_sum(torch.stack([
        torch.where(real, s.entropy, 0.0).sum(), s.clip_frac * s.mask.sum(), real.sum(),
        s.mask.sum()]))
    reward, verifier = dist.gather_rows(s.scored.total), dist.gather_rows(s.verifier)
    terms = {k: dist.gather_rows(v) for k, v in s.scored.terms.items()}
    keep, truncated = dist.gather_rows(s.keep), dist.gather_rows(s.rollout.truncated)
    right = verifier.flatten() > 0
    lengths = dist.gather_rows(s.rollout.lengths).float()
    step_s = sum(s.laps.values())
    row = {"reward": reward.mean().item(), "reward_std": reward.std().item(),
           "used": keep.float().mean().item(),
           **{f"r/{k}": v.float().mean().item() for k, v in terms.items()},
           "accuracy": right.float().mean().item(),
           "drawn_accuracy": dist.gather_rows(s.drawn).float().mean().item(),  # oversampled
           "zero_var": zero_variance_groups(verifier).float().mean().item(),
           "all_right": verifier.all(1).float().mean().item(),
           "all_wrong": (~verifier.bool().any(1)).float().mean().item(),
           "len_right": lengths[right].mean().item() if right.any() else float("nan"),
           "len_wrong": lengths[~right].mean().item() if (~right).any() else float("nan"),
           "truncated": truncated.float().mean().item(),
           "entropy": (entropy_sum / n_real).item(),
           "clip_frac": (clip_sum / n_mask.clamp(min=1)).item(),
           "grad_norm": s.grad_norm.item(), "loss": s.loss.item(),
           "rollout_s": s.laps["rollout"], "reward_s": s.laps["reward"], "ref_s": s.laps["ref"],
           "step_s": step_s,
           "tok_per_s": n_real.item() / step_s}
    # what is watched, not optimised: the human's true utility (gold), the preference model's raw
    # score (proxy), and whether the preference model ranks the verifier's right answers first
    gold, proxy = (dist.gather_rows(s.scored.watched[k].to(reward.device)) for k in ("gold", "proxy"))
    pref = terms["pref"].view(verifier.shape)                        # (B, G)
    agree, n_pairs = ranking_agreement(pref, verifier > 0)
    agree_r, _ = ranking_agreement(reward.view(verifier.shape), verifier > 0)
    row.update({"gold": gold.mean().item(),
                "proxy": proxy.nanmean().item() if (~proxy.isnan()).any() else float("nan"),
                "pref_right": pref[verifier > 0].mean().item() if right.any() else float("nan"),
                "pref_wrong": pref[verifier == 0].mean().item() if (~right).any() else float("nan"),
                "rank_agreement": agree / n_pairs if n_pairs else float("nan"),
                "rank_pairs": n_pairs,
                "reward_agreement": agree_r / n_pairs if n_pairs else float("nan"),
                **{k: dist.gather_rows(v.to(reward.device)).mean().item()  # phrase_think, ...
                   for k, v in s.scored.watched.items() if k not in ("gold", "proxy")}})
    if s.log_ratio is not None:
        kl_seq = dist.gather_rows(torch.where(real, s.log_ratio, 0.0).sum(1))  # Σ_t log π/π_ref
        row["kl_k1_seq"] = kl_seq.mean().item()
        row["kl_k3"] = (dist.all_sum(torch.where(real, s.kl, 0.0).sum()) / n_real).item()
    return row


def ranking_agreement(score: torch.Tensor, right: torch.Tensor) -> tuple[float, int]:
    """How often a score ranks the verifier's right answers above its wrong ones in a group:
    over every pair (i right, j wrong) of one group, [s_i > s_j] + 1/2 [s_i = s_j], summed, and
    the number of such pairs (PRIME, Cui et al., arXiv 2502.01456, logs this agreement of its
    reward model with the outcome verifier). score, right (B, G).
    ranking_agreement(tensor([[0.9, 0.2, 0.5]]), tensor([[True, False, False]])) -> (2.0, 2)"""
    diff = score[:, :, None] - score[:, None, :]                     # (B, G, G) s_i - s_j
    pairs = right[:, :, None] & ~right[:, None, :]                   # (B, G, G) i right, j wrong
    hit = torch.where(diff > 0, 1.0, torch.where(diff == 0, 0.5, 0.0))  # (B, G, G)
    return (hit * pairs).sum().item(), int(pairs.sum().item())


@torch.no_grad()
def heldout_watch(policy, tok, problems, reward, k: int, max_new_tokens: int, seed: int,
                  temperature: float = 1.0, prefix: str = "heldout") -> dict:
    """The policy on a fixed held-out set, k samples per problem at the rollout temperature, with
    the same sampling noise at every call (seed): accuracy (the exact match, never flipped), gold
    (the human's true utility), proxy (the preference model's raw score) and its spread over the
    samples (proxy_std), and how often its σ(r - r_ref) ranks a right sample above a wrong one
    of the same problem. Keys "<prefix>/..."; the proxy's are NaN without a preference model.
    On requests for a note (data/general.py) accuracy is the share passing on the right count,
    the human's own check, which no reward reads."""
    device = next(policy.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    texts = generate(policy, [tok.encode(p.prompt) for p in problems], num_samples=k,
                     max_new_tokens=max_new_tokens, temperature=temperature,
                     stop_ids=[tok.answer_end, tok.eot], pad_id=tok.pad,
                     generator=gen).texts(tok.decode)
    each = [p for p in problems for _ in range(k)]                   # problem of each text
    proxy = (raw_scores(reward.rm, tok, [p.question for p in each], texts, reward.cfg.pref_scope,
                        device) if reward.rm is not None else None)
    terms = reward_terms(each, texts, reward.rm, tok, reward.cfg, device, proxy)
    right = terms["correct"].cpu()                                   # (n * k,) exact, unflipped
    seen = watched(texts, right, proxy, reward.human)
    agree, n_pairs = ranking_agreement(terms["pref"].cpu().view(-1, k), right.view(-1, k) > 0)
    scored = seen["proxy"][~seen["proxy"].isnan()]                   # samples with an answer
    return {f"{prefix}/accuracy": right.mean().item(),
            f"{prefix}/gold": seen["gold"].mean().item(),
            f"{prefix}/proxy": scored.mean().item() if len(scored) else float("nan"),
            f"{prefix}/proxy_std": scored.std().item() if len(scored) > 1 else float("nan"),
            f"{prefix}/rank_agreement": (agree / n_pairs if n_pairs and reward.rm is not None
                                         else float("nan"))}


def step_line(row: dict, terms: list[str]) -> str:
    """The one line a step prints (the same numbers are in grpo_log.jsonl)."""
    terms_txt = " ".join(f"{k} {row[f'r/{k}']:.2f}" for k in terms)
    return (f"step {row['step']:04d} | reward {row['reward']:.3f} ± {row['reward_std']:.2f} | "
            f"{terms_txt} | acc {row['accuracy']:.2f} | gold {row['gold']:.2f} | "
            f"proxy {row['proxy']:.2f} | zero_var {row['zero_var']:.2f} | "
            f"len ok/bad {row['len_right']:.0f}/{row['len_wrong']:.0f} | "
            f"trunc {row['truncated']:.2f} | H {row['entropy']:.3f} | "
            f"clip {row['clip_frac']:.2f} | gnorm {row['grad_norm']:.2f} | "
            + (f"kl {row['kl_k1_seq']:.2f} | " if "kl_k1_seq" in row else "")
            + f"{row['step_s'] * 1000:.0f}ms")
