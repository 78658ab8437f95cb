"""
The GRPO stage around grpo.grpo_step: prompts, steps, the log, the quick evaluation, --resume.

    for step in range(rl_steps):
        problems = B prompts drawn from the corpus's questions (never a held-out one)
        s = grpo_step(policy, opt, tok, problems, score, cfg, ...)   # grpo.py: the algorithm
        log step_metrics(s)                                          # one line, one JSON row

Every cfg.rl_ckpt_every steps the policy, the optimizer, the generators and the log so far go to
grpo.state.pt (checkpoint.save_training), and resume=True continues there as if never stopped.
Under torchrun (dist.py) every rank draws the same B prompts and keeps its B / world of them
with all their G samples, so a group's baseline never straddles two ranks; grpo_step samples
with the global batch's noise and normalises by the global batch's counts, and DDP averages the
gradients: the step is the one a single process takes (tests/test_distributed.py). Metrics are
gathered over the ranks; rank 0 alone writes and prints.

What this is deliberately not: a trainer class. One function, a flat loop, top to bottom.
"""

import json
import math
import os
import random
import time

import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

import dist
from checkpoint import open_log, resume_training, save_training
from evaluate import evaluate
from grpo import GRPOConfig, Step, grpo_step, zero_variance_groups
from guard import SkipNonFinite


def train_grpo(policy, tok, cfg: GRPOConfig, *, prompts_pool, eval_problems, score, ref=None,
               max_new_tokens: int, seed: int, out_dir: str, device: str, resume: bool = False,
               max_bad_steps: int = 5, floor: float = 0.0, answer_only=None):
    """Run cfg.rl_steps GRPO steps on `policy` in place; returns a summary dict (rank 0).

    prompts_pool: Problems to draw RL prompts from; eval_problems: a held-out slice for the
    quick evaluation; score(problems, texts) -> (terms dict of (N,) tensors, total (N,));
    floor: the reward of a truncated completion with --truncation floor; answer_only: the part
    of the reward only the answer's tokens get (grpo.grpo_step). Steps that made no
    update (nothing to learn) are counted: `no_signal` in the log, `no_signal_steps` here.
    Writes out_dir/grpo_log.jsonl, one line per step."""
    rank, world = dist.rank(), dist.world()
    B = cfg.prompts_per_step
    if B % world:
        raise ValueError(f"--prompts_per_step {B} is not a multiple of the {world} processes")
    b = B // world                                                   # prompts on this rank
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.rl_lr, betas=(0.9, 0.95),
                            weight_decay=0.0)
    gen = torch.Generator(device=device).manual_seed(seed)           # the sampling noise
    pick = random.Random(seed)                                       # the prompts
    guard = SkipNonFinite("grpo", max_bad_steps)
    start, history, elapsed, no_signal = 0, [], 0.0, 0
    state = resume_training(out_dir, "grpo", model=policy, opt=opt, device=device, seed=seed,
                            generators=dict(gen=gen, pick=pick)) if resume else None
    if state is not None:                                            # continue where it stopped
        start, history, elapsed = state["step"], state["history"], state["elapsed"]
        no_signal = state["no_signal"]
        guard = SkipNonFinite("grpo", max_bad_steps, **state["guard"])
        if rank == 0:
            print(f"grpo | resuming at step {start}")
    trainer = DDP(policy) if world > 1 else policy                   # averages grads over ranks
    policy.eval()                                                    # dropout off, always
    if rank == 0:                                                    # the log up to `start`
        log = open_log(os.path.join(out_dir, "grpo_log.jsonl"), history)
    t_start = time.time()
    bar = tqdm(range(start, cfg.rl_steps + 1), desc="grpo", initial=start,
               total=cfg.rl_steps + 1, dynamic_ncols=True, mininterval=1.0, disable=rank > 0)
    for step in bar:
        last_step = step == cfg.rl_steps
        if rank == 0 and step > start and step % cfg.rl_ckpt_every == 0 and not last_step:
            save_training(out_dir, "grpo", step=step, model=policy, opt=opt, device=device,
                          generators=dict(gen=gen, pick=pick), history=history,
                          elapsed=elapsed + time.time() - t_start, guard=guard.state(),
                          no_signal=no_signal)
        if rank == 0 and (step % cfg.rl_eval_every == 0 or last_step):  # evaluate, now and then
            quick = evaluate(policy, tok, eval_problems, k=1, max_new_tokens=max_new_tokens,
                             seed=seed, desc="quick eval")
            tqdm.write(f"step {step:04d}/{cfg.rl_steps} | eval/greedy_acc "
                       f"{quick['greedy_accuracy']:.3f} | eval/format {quick['format_rate']:.3f}")
        if last_step:
            break
        problems = [pick.choice(prompts_pool) for _ in range(B)]     # the same on every rank
        s = grpo_step(policy, opt, tok, problems[rank * b:(rank + 1) * b], score, cfg,
                      step=step, gen=gen, guard=guard, max_new_tokens=max_new_tokens,
                      floor=floor, ref=ref, trainer=trainer, answer_only=answer_only)
        no_signal += int(not s.updated)
        row = {"step": step, **step_metrics(s), "skipped": guard.skipped,
               "no_signal": no_signal}
        history.append(row)
        if rank > 0:
            continue
        log.write(json.dumps(row) + "\n")
        log.flush()
        tqdm.write(step_line(row, list(s.terms)))
        bar.set_postfix(reward=f"{row['reward']:.3f}", acc=f"{row['accuracy']:.2f}")
    if rank > 0:
        return None
    log.close()
    return {"steps": cfg.rl_steps, "final_quick_greedy_accuracy": quick["greedy_accuracy"],
            "train_accuracy_first10": _mean([h["accuracy"] for h in history[:10]]),
            "train_accuracy_last10": _mean([h["accuracy"] for h in history[-10:]]),
            "skipped_updates": guard.skipped, "no_signal_steps": no_signal,
            "time_s": elapsed + time.time() - t_start}


def step_metrics(s: Step) -> dict:
    """The step's diagnostics over the global batch (all-reduced or gathered over ranks); the
    README's table says what each one is for."""
    real = s.rollout.mask                                            # (n, T) generated tokens
    entropy_sum, clip_sum, n_real, n_mask = dist.all_sum(torch.stack([
        torch.where(real, s.entropy, 0.0).sum(), s.clip_frac * s.mask.sum(), real.sum(),
        s.mask.sum()]))
    reward, verifier = dist.gather_rows(s.reward), dist.gather_rows(s.verifier)
    terms = {k: dist.gather_rows(v) for k, v in s.terms.items()}
    keep, truncated = dist.gather_rows(s.keep), dist.gather_rows(s.rollout.truncated)
    right = verifier.flatten() > 0
    lengths = dist.gather_rows(s.rollout.lengths).float()
    step_s = s.rollout_s + s.reward_s + s.train_s
    row = {"reward": reward.mean().item(), "reward_std": reward.std().item(),
           "used": keep.float().mean().item(),
           **{f"r/{k}": v.float().mean().item() for k, v in terms.items()},
           "accuracy": right.float().mean().item(),
           "zero_var": zero_variance_groups(verifier).float().mean().item(),
           "all_right": verifier.all(1).float().mean().item(),
           "all_wrong": (~verifier.bool().any(1)).float().mean().item(),
           "len_right": lengths[right].mean().item() if right.any() else float("nan"),
           "len_wrong": lengths[~right].mean().item() if (~right).any() else float("nan"),
           "truncated": truncated.float().mean().item(),
           "entropy": (entropy_sum / n_real).item(),
           "clip_frac": (clip_sum / n_mask.clamp(min=1)).item(),
           "grad_norm": s.grad_norm.item(), "loss": s.loss.item(),
           "rollout_s": s.rollout_s, "reward_s": s.reward_s, "ref_s": s.ref_s, "step_s": step_s,
           "tok_per_s": n_real.item() / step_s}
    # what is watched, not optimised: the human's true utility (gold), the preference model's raw
    # score (proxy), and whether the preference model ranks the verifier's right answers first
    gold, proxy = (dist.gather_rows(s.watch[k].to(reward.device)) for k in ("gold", "proxy"))
    pref = terms["pref"].view(verifier.shape)                        # (B, G)
    agree, n_pairs = ranking_agreement(pref, verifier > 0)
    row.update({"gold": gold.mean().item(),
                "proxy": proxy.nanmean().item() if (~proxy.isnan()).any() else float("nan"),
                "pref_right": pref[verifier > 0].mean().item() if right.any() else float("nan"),
                "pref_wrong": pref[verifier == 0].mean().item() if (~right).any() else float("nan"),
                "rank_agreement": agree / n_pairs if n_pairs else float("nan"),
                "rank_pairs": n_pairs,
                **{k: dist.gather_rows(v.to(reward.device)).mean().item()  # phrase_think, ...
                   for k, v in s.watch.items() if k not in ("gold", "proxy")}})
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


def _mean(xs):
    return sum(xs) / len(xs) if xs else math.nan
