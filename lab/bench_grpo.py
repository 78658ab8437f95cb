"""
One GRPO step timed: grpo.grpo_step, the function the training loop runs, split into rollout,
reward and train, its peak memory, and how the memory of one update grows with the rows in it.
lab/bench.py calls it at each preset's sizes (its docstring, item 4, says what is measured and
docs/speed.md what the figures are).

What this deliberately is not: a trainer. Weights are random and one step's work is timed
several times over; nothing learns.

Reference: Shao et al., "DeepSeekMath", arXiv 2402.03300 (GRPO).
"""

import dataclasses
import random
import statistics

import torch

from data.problems import TaskConfig, teacher_solution
from device import sync
from grpo import GRPOConfig, grpo_step
from grpo_loss import update
from guard import SkipNonFinite
from lab.measure import PeakMemory, SavedBytes
from reward import Reward, RewardConfig


def bench_grpo(policy, tok, problems, rm, task: TaskConfig, rcfg: RewardConfig,
               gcfg: GRPOConfig, max_new: int, device: str, cfg):
    """grpo.grpo_step, the function the training loop runs, on the prompts a step draws (more
    than B with --oversample), timed in its three pieces, its peak memory, and the update's
    memory at B*G/4, B*G/2, B*G rows of the same rollout. cfg is bench.BenchConfig (its seed,
    warmup and gen_repeats). Returns (grpo_step, memory_scaling)."""
    rows = [p for p in problems for _ in range(gcfg.group_size)]
    # A random policy never closes an <answer> tag, so its completions would skip the preference
    # model. The score scores teacher-written completions instead: every row pays for the
    # preference model, as a trained policy's completions do. The rollout is still decoded.
    rng = random.Random(cfg.seed)
    teacher = []
    for p in rows:
        s = teacher_solution(p, rng, task)
        ids, n_prompt = tok.render(p.prompt, s.think, s.answer_text)
        teacher.append(tok.decode(ids[n_prompt:]))      # <think>...</answer><|endoftext|>

    reward = Reward(rcfg, tok, rm, device)

    def score(problems, texts):                          # texts decoded, then replaced
        return reward(rows, teacher)

    opt = torch.optim.AdamW(policy.parameters(), lr=gcfg.rl_lr, betas=(0.9, 0.95),
                            weight_decay=0.0)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    guard = SkipNonFinite("bench", 1)
    policy.eval()                                        # dropout off, as in train_grpo

    def step():
        return grpo_step(policy, opt, tok, problems, score, gcfg, step=0, gen=gen, guard=guard,
                         max_new_tokens=max_new)

    for _ in range(cfg.warmup):
        step()
    times, peak = [], 0
    for _ in range(cfg.gen_repeats):
        sync(device)
        with PeakMemory(device) as mem:
            s = step()
        times.append((s.laps["rollout"], s.laps["reward"], s.laps["ref"] + s.laps["update"]))
        peak = max(peak, mem.bytes)
    rollout_s, reward_s, train_s = (statistics.median(col) for col in zip(*times))
    roll = s.rollout
    ids, pad = roll.sequences()
    n_prompt, N, T = roll.prompt_ids.shape[1], ids.shape[0], ids.shape[1]
    grpo_step_figures = {"rows": N, "seq_len": T, "rollout_s": rollout_s, "reward_s": reward_s,
                         "train_s": train_s, "step_s": rollout_s + reward_s + train_s,
                         "rollout_fraction": rollout_s / (rollout_s + reward_s + train_s),
                         "peak_mem_bytes": peak, "peak_mem_kind": mem.kind}

    # ---- memory of the update at growing B*G, same T (rows of the last rollout, A = 1), all
    # rows in one backward: what --rl_micro_batch divides (the step above used the preset's)
    scaling, whole = [], dataclasses.replace(gcfg, rl_micro_batch=0)
    for n in (N // 4, N // 2, N):                        # B*G >= 16 in every preset
        mask = roll.mask[:n]
        with PeakMemory(device) as mem, SavedBytes(policy) as saved:
            update(policy, opt, ids[:n], pad[:n], n_prompt, roll.logprobs[:n],
                   torch.ones(n, device=device), mask, mask, whole, guard=guard, step=0,
                   lr=gcfg.rl_lr, max_len=max_new, n_tokens=mask.sum(), n_seqs=n, n_rows=n)
        scaling.append({"bgt": n * T, "peak_mem_bytes": mem.bytes, "activation_bytes": saved.bytes})
    grpo_step_figures["activation_bytes"] = scaling[-1]["activation_bytes"]
    return grpo_step_figures, scaling
