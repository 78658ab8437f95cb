"""
The grpo stage: from out/pretrain.pt to out/rl.pt, steps of grpo.grpo_step on the corpus's
prompts, with the run's log (grpo_log.py), its checkpoints for --resume (loop.py), the held-out
watch, and the online relabelling of the preference model when asked (online.py).

    policy, ref = pretrain.pt, a frozen copy     # the reference only logs the KL at β = 0
    reward = Reward(blend, preference model, harmlessness model)
    for step in loop:                            # every rank draws the same prompts
        problems = pick B (more, with dynamic sampling) of the corpus's prompts
        grpo_step(policy, ..., problems, reward)     # grpo.py: the step, one screen
        log a row (grpo_log.step_metrics), every N steps the held-out watch
    rl.pt, and the figures for report.json

With requests for a note among the prompts (data/general.py) they are drawn at the corpus's
share, and the held-out watch runs on the held-out requests too (keys "heldout_general/...").

What this is deliberately not: the step itself (grpo.py) or a trainer class.
"""

import copy
import math
import os
import random

import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

import dist
from checkpoint import load_model, save_model
from device import large_blocks_mapped, release_free_memory
from evaluate import evaluate
from grpo import GRPOConfig, grpo_step
from grpo_log import heldout_watch, step_line, step_metrics
from harmlessness import load_harm_model
from loop import TrainingLoop
from online import OnlineLabels
from preference import load_reward_model
from reward import Reward


def train_grpo(run, rcfg, prefcfg, cfg: GRPOConfig, out: str, device: str, splits,
               resume: bool = False, task=None) -> dict:
    """The grpo stage: cfg.rl_steps of grpo_step from out/pretrain.pt on the corpus's questions
    (never a held-out one), on the reward of reward.py; writes grpo_log.jsonl (a row a step)
    and rl.pt. `run` is train.RunConfig; the preference model is loaded whenever the run has
    one (at w_pref = 0 for the log only), and with --rm_online_every kept on the policy's
    samples by fresh labels (online.py; `task`, the corpus's TaskConfig, gives the teacher's
    pairs it replays); the harmlessness model with --harm_model learned (harmlessness.py).
    Returns the stage's figures for report.json."""
    rank, world = dist.rank(), dist.world()
    if cfg.prompts_per_step % world:
        raise ValueError(f"--prompts_per_step {cfg.prompts_per_step} is not a multiple of the "
                         f"{world} processes")
    if prefcfg.rm_online_every and (world > 1 or task is None):
        raise ValueError("--rm_online_every labels in one process (not under torchrun)")
    # ---- setup: the policy, its frozen start (the reference), the reward, the optimiser
    large_blocks_mapped()                # or a step's peak grows on pretraining's heap
    policy, tok, _ = load_model(out, "pretrain", device)
    ref = copy.deepcopy(policy).eval().requires_grad_(False) if cfg.watch_kl else None
    has_rm = rcfg.w_pref or os.path.exists(os.path.join(out, "reward.pt"))
    reward = Reward(rcfg, tok, load_reward_model(out, device)[0] if has_rm else None, device,
                    prefcfg.human, seed=run.seed,
                    harm_rm=(load_harm_model(out, device) if prefcfg.harm_model == "learned"
                             else None))
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.rl_lr, betas=(0.9, 0.95),
                            weight_decay=0.0)
    gen = torch.Generator(device=device).manual_seed(run.seed)       # the sampling noise
    pick = random.Random(run.seed)                                   # the prompts
    loop = TrainingLoop("grpo", out, cfg.rl_steps, cfg.rl_ckpt_every, model=policy, opt=opt,
                        device=device, seed=run.seed,
                        generators=dict(gen=gen, pick=pick, flips=reward.flips),
                        resume=resume, max_bad_steps=run.max_bad_steps, log="grpo_log.jsonl",
                        state=dict(history=[], no_signal=0))
    trainer = DDP(policy) if world > 1 else policy                   # averages grads over ranks
    policy.eval()                                                    # dropout off, always
    prompts = [p for p, _ in splits.train]
    online = (OnlineLabels(reward, tok, prefcfg, task, prompts, splits.in_dist, device, run.seed,
                           cfg.rl_temperature, run.max_new_tokens)
              if prefcfg.rm_online_every else None)                  # online RLHF (online.py)
    if online and "online" in loop.state:
        online.load(loop.state["online"])                            # --resume
    labels = online.labels if online else prefcfg.rm_pairs * (rcfg.w_pref > 0)  # human labels
    over = cfg.oversample if rcfg.w_correct > 0 else 1.0             # no verifier paid: no
    b = math.ceil(over * (cfg.prompts_per_step // world))            # selection; drawn per rank
    held_out = {"heldout": splits.in_dist[:cfg.heldout_prompts],    # the held-out watch's sets
                "heldout_general": splits.general[:cfg.heldout_prompts]}  # (none without notes)

    def watch() -> dict:                                             # grpo_log.heldout_watch
        return {k: v for name, problems in held_out.items() if problems
                for k, v in heldout_watch(policy, tok, problems, reward, cfg.group_size,
                                          run.max_new_tokens, run.seed, cfg.rl_temperature,
                                          name).items()}
    # ---- the loop: every rank draws the same prompts and takes its b with all their samples
    for step in loop:
        if rank == 0 and step % cfg.rl_eval_every == 0:
            quick_eval(policy, tok, splits, run, step, cfg.rl_steps)
        held = watch() if rank == 0 and cfg.heldout_every and step % cfg.heldout_every == 0 else {}
        release_free_memory()                # or the heap grows step by step (rollouts vary)
        problems = [pick.choice(prompts) for _ in range(b * world)]
        s = grpo_step(policy, opt, tok, problems[rank * b:(rank + 1) * b], reward, cfg,
                      step=step, gen=gen, guard=loop.guard, max_new_tokens=run.max_new_tokens,
                      ref=ref, trainer=trainer)
        loop.state["no_signal"] += int(not s.updated)
        row = {"step": step, **step_metrics(s), **held, "skipped": loop.guard.skipped,
               "no_signal": loop.state["no_signal"]}
        if online and (step + 1) % prefcfg.rm_online_every == 0:     # label the policy's samples
            row.update(online(policy, step))
            loop.state["online"], labels = online.state(), online.labels
        row["labels"] = labels
        loop.log(row)
        if rank == 0:
            tqdm.write(step_line(row, list(s.scored.terms)))
            loop.bar.set_postfix(reward=f"{row['reward']:.3f}", acc=f"{row['accuracy']:.2f}")
    if rank > 0:
        return {}
    # ---- figures: a last quick evaluation, the training batch's accuracy, rl.pt
    final = quick_eval(policy, tok, splits, run, cfg.rl_steps, cfg.rl_steps)
    save_model(out, "rl", policy, {"step": cfg.rl_steps, "init": "pretrain",
                                   "tokenizer": tok.fingerprint})
    acc = [h["drawn_accuracy"] for h in loop.state["history"]]     # every completion drawn
    summary = {"steps": cfg.rl_steps, "final_quick_greedy_accuracy": final,
               "train_accuracy_first10": sum(acc[:10]) / len(acc[:10]),
               "train_accuracy_last10": sum(acc[-10:]) / len(acc[-10:]),
               "skipped_updates": loop.guard.skipped, "no_signal_steps": loop.state["no_signal"],
               "time_s": loop.elapsed(), "labels": labels}
    if online:                                                       # the model it ended with
        save_model(out, "reward_online", reward.rm, {"labels": labels, "scope": rcfg.pref_scope,
                                                     "tokenizer": tok.fingerprint})
    if cfg.heldout_every:                                            # after the last step
        summary["heldout_final"] = watch()
    return {"grpo": summary, "time_s": {"grpo": summary["time_s"]}}


def quick_eval(policy, tok, splits, run, step: int, steps: int) -> float:
    """Greedy accuracy on the first 64 held-out problems, printed; the loop's progress check."""
    quick = evaluate(policy, tok, splits.in_dist[:64], k=1, max_new_tokens=run.max_new_tokens,
                     seed=run.seed, desc="quick eval")
    tqdm.write(f"step {step:04d}/{steps} | eval/greedy_acc {quick['greedy_accuracy']:.3f} | "
               f"eval/format {quick['format_rate']:.3f} (held-out, greedy)")
    return quick["greedy_accuracy"]
