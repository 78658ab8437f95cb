"""
The whole pipeline in one run directory: corpus + tokenizer, pretraining, the preference model,
GRPO, evaluation, report.

    python train.py                        # cpu preset without a GPU (minutes), gpu preset with one
    python train.py --preset smoke         # seconds: the pipeline end to end on a toy model
    python train.py --stages eval          # re-run a stage on an existing run directory
    python train.py --n_layer 6 --lr 1e-3  # any config field; `python train.py --help` lists them

Stages (run in this order, `--stages` picks a subset):
  pretrain  generate the fallible teacher's corpus (data/problems.py), train the BPE tokenizer
            (data/tokenizer.py), then next-token pretraining of the GPT in model.py;
  reward    pairs of final answers labelled by a simulated human (data/rater.py), then a small
            Bradley-Terry preference model on the answer span only (reward.py), saved as
            out/<run>/reward.pt beside the policy;
  grpo      GRPO on the blended reward (grpo.py, reward.py), starting from the pretrained model;
            the RL policy is saved as out/<run>/rl.pt, one log line per step in grpo_log.jsonl;
  eval      held-out greedy accuracy, pass@1, pass@k and format rate (evaluate.py), in
            distribution and on harder problems, next to the teacher's imitation ceiling, plus
            the human's gold_score and the preference model's pref_score of the sampled answers.
Each stage merges its figures into out/<run>/report.json.

Pretraining details: loss on completion tokens only (`<think>` ... `<|endoftext|>`): the prompt's
numbers are random, so predicting them teaches nothing the model will ever use. AdamW (Loshchilov &
Hutter, arXiv 1711.05101) with linear warm-up and cosine decay, gradient clipping, bf16 autocast
on CUDA. On CPU we stay in fp32: a bf16 matmul measured slower than fp32 on the 2-core machine
this was written on (145 vs 171 GFLOP/s at 1024^3).

What this is deliberately not: a framework. The loop is flat, top to bottom, no callbacks.
"""

import copy
import dataclasses
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass

import torch
from tqdm import tqdm

import config
from checkpoint import load_model, save_model, update_report, write_json, write_text
from data.problems import (TaskConfig, imitation_ceiling, make_splits, teacher_solution,
                           uses_misconception)
from data.rater import wrong_unit
from data.tokenizer import Tokenizer, train_bpe
from evaluate import evaluate
from grpo import GRPOConfig, train_grpo
from model import GPT, GPTConfig
from reward import (RewardConfig, answer_span, blend, eval_scorers, load_reward_model,
                    reward_terms, train_reward_model)

STAGES = ("pretrain", "reward", "grpo", "eval")


@dataclass
class RunConfig:
    preset: str = ""            # cpu | gpu | smoke; empty = gpu when CUDA is available, else cpu
    stages: str = ",".join(STAGES)
    out: str = ""               # run directory; empty = out/<preset>
    device: str = ""            # cpu | cuda | cuda:N; empty = cuda when available
    seed: int = 1337            # model init, batch order and sampling
    eval_k: int = 4             # samples per held-out prompt for pass@1 / pass@k
    max_new_tokens: int = 192   # completion budget at evaluation and in RL

    def __post_init__(self):
        if self.preset not in ("", *PRESETS):
            raise ValueError(f"--preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        bad = [s for s in self.stages.split(",") if s not in STAGES]
        if bad:
            raise ValueError(f"--stages: unknown stage {bad[0]!r} (stages: {', '.join(STAGES)})")
        if self.eval_k < 1 or self.max_new_tokens < 1:
            raise ValueError("--eval_k and --max_new_tokens must be >= 1")


@dataclass
class PretrainConfig:
    batch_size: int = 32        # documents per step
    pretrain_steps: int = 800
    lr: float = 3e-3            # peak learning rate
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1   # cosine decays to lr * min_lr_ratio
    weight_decay: float = 0.1   # on matrices only, not on norms
    grad_clip: float = 1.0
    eval_every: int = 200       # validation loss + quick greedy accuracy every N steps

    def __post_init__(self):
        for name in ("batch_size", "pretrain_steps", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or not 0 <= self.min_lr_ratio <= 1 or self.warmup_steps < 0:
            raise ValueError("--lr must be > 0, --min_lr_ratio in [0, 1], --warmup_steps >= 0")


# Each preset is a set of overrides on the defaults above (which are the cpu preset).
PRESETS = {
    "cpu": {},
    "smoke": dict(n_train=400, n_eval=8, vocab_size=320, n_layer=1, n_head=2, n_embd=32,
                  batch_size=8, pretrain_steps=12, warmup_steps=2, eval_every=6, eval_k=2,
                  max_new_tokens=48, rm_pairs=64, rm_eval_pairs=2, rm_steps=4, rm_batch_size=8,
                  rm_n_layer=1, rm_n_embd=32, rl_steps=3, prompts_per_step=4, group_size=4,
                  rl_eval_every=2),
    "gpu": dict(max_value=999, min_steps=2, max_steps=4, harder_steps=6, n_train=200_000,
                n_eval=500, vocab_size=1024, block_size=384, n_layer=8, n_head=8, n_embd=384,
                batch_size=128, pretrain_steps=6000, lr=1.5e-3, warmup_steps=300,
                max_new_tokens=320, eval_every=1000, rm_pairs=20000, rm_steps=1500,
                rm_batch_size=64, prompts_per_step=32, rl_steps=200, rl_lr=1.5e-4),
}


def lr_at(step: int, cfg: PretrainConfig) -> float:
    """Linear warm-up to cfg.lr, then cosine decay to cfg.lr * cfg.min_lr_ratio."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.pretrain_steps - cfg.warmup_steps)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def make_optimizer(model, cfg: PretrainConfig, fused: bool = False) -> torch.optim.AdamW:
    """AdamW (betas 0.9, 0.95) with weight decay on matrices only, not on norms' gains."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=cfg.lr, betas=(0.9, 0.95), fused=fused)


def train_step(model, opt, x, y, grad_clip: float, autocast) -> torch.Tensor:
    """One pretraining update on a packed batch; returns the loss (a 0-dim tensor)."""
    with autocast:
        _, loss = model(x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    return loss


def pack(docs: list[tuple[list[int], int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded inputs and next-token targets; prompt and padding targets are -1 (ignored).

    doc = prompt p0 p1 | completion c0 c1 c2 ->  x = p0 p1 c0 c1,  y = -1 c0 c1 c2
    """
    width = max(len(ids) for ids, _ in docs) - 1
    x = torch.full((len(docs), width), pad, dtype=torch.long)
    y = torch.full((len(docs), width), -1, dtype=torch.long)
    for i, (ids, n_prompt) in enumerate(docs):
        t = torch.tensor(ids)
        x[i, :len(ids) - 1] = t[:-1]
        y[i, :len(ids) - 1] = t[1:]
        y[i, :n_prompt - 1] = -1                       # targets that are prompt tokens
    return x, y


# ------------------------------------------------------------------------------------------------
# stage: pretrain

def pretrain(run: RunConfig, task: TaskConfig, gpt: GPTConfig, cfg: PretrainConfig,
             out: str, device: str) -> dict:
    t0 = time.time()
    # ---- corpus and tokenizer
    splits = make_splits(task)
    tok = Tokenizer(train_bpe([p.prompt + s.think + s.answer_text for p, s in splits.train],
                              gpt.vocab_size))
    tok.save(os.path.join(out, "tokenizer.tiktoken"))
    docs = [tok.render(p.prompt, s.think, s.answer_text) for p, s in splits.train]
    rng = random.Random(f"{task.task_seed}/val")
    val_docs = [tok.render(p.prompt, s.think, s.answer_text)
                for p in splits.in_dist for s in [teacher_solution(p, rng, task)]]
    x_val, y_val = pack(val_docs, tok.pad)
    # bucket documents of similar length so a batch carries little padding
    order = sorted(range(len(docs)), key=lambda i: len(docs[i][0]))
    batches = [order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]

    # ---- model and optimiser
    torch.manual_seed(run.seed)
    model_cfg = dataclasses.replace(gpt, vocab_size=tok.n_vocab)
    model = GPT(model_cfg).to(device)
    opt = make_optimizer(model, cfg, fused=device.startswith("cuda"))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda"))
    gen = torch.Generator().manual_seed(run.seed)
    print(f"pretrain | {model.num_params() / 1e6:.2f}M params | vocab {tok.n_vocab} | "
          f"{len(docs)} docs | {sum(len(d) for d, _ in docs) / 1e6:.2f}M tokens")

    # ---- training loop
    queue: list[int] = []
    tokens_seen, train_time, loss_ema = 0, 0.0, None
    bar = tqdm(range(cfg.pretrain_steps + 1), desc="pretrain", dynamic_ncols=True, mininterval=1.0)
    for step in bar:
        last_step = step == cfg.pretrain_steps
        if step % cfg.eval_every == 0 or last_step:           # once in a while: validate
            model.eval()
            with torch.no_grad(), autocast:
                val_loss = sum(model(xb.to(device), yb.to(device))[1].item()
                               for xb, yb in zip(x_val.split(64), y_val.split(64)))
            val_loss /= len(x_val.split(64))
            quick = evaluate(model, tok, splits.in_dist[:64], k=1, max_new_tokens=run.max_new_tokens,
                             seed=run.seed, desc="quick eval")
            tqdm.write(f"step {step:05d}/{cfg.pretrain_steps} | train loss {loss_ema or 0:.4f} | "
                       f"val loss {val_loss:.4f} | greedy acc {quick['greedy_accuracy']:.3f} | "
                       f"format {quick['format_rate']:.3f} | "
                       f"tok/s {tokens_seen / max(train_time, 1e-9):.0f}")
            model.train()
        if last_step:
            break
        if not queue:                                          # a new epoch of shuffled buckets
            queue = [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
        x, y = pack([docs[i] for i in queue.pop()], tok.pad)
        t1 = time.time()
        x, y = x.to(device), y.to(device)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        loss = train_step(model, opt, x, y, cfg.grad_clip, autocast)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        train_time += time.time() - t1
        tokens_seen += int((x != tok.pad).sum())
        loss_ema = loss.item() if loss_ema is None else 0.95 * loss_ema + 0.05 * loss.item()
        bar.set_postfix(loss=f"{loss_ema:.3f}", tok_s=f"{tokens_seen / train_time:.0f}")

    save_model(out, "pretrain", model, {"step": cfg.pretrain_steps})
    figures = {
        "pretrain": {"params": model.num_params(), "steps": cfg.pretrain_steps,
                     "tokens_per_s": tokens_seen / train_time, "train_loss": loss_ema,
                     "val_loss": val_loss, "corpus_tokens": sum(len(d) for d, _ in docs),
                     "corpus_accuracy": sum(s.value == p.answer for p, s in splits.train)
                     / len(splits.train)},
        "imitation_ceiling": {**imitation_ceiling(splits.in_dist, task),
                              "harder": imitation_ceiling(splits.harder, task)},
        "time_s": {"pretrain": time.time() - t0},
    }
    return figures


# ------------------------------------------------------------------------------------------------
# stage: eval

def grpo_stage(run: RunConfig, task: TaskConfig, rcfg: RewardConfig, gcfg: GRPOConfig,
               out: str, device: str) -> dict:
    t0 = time.time()
    policy, tok, meta = load_model(out, "pretrain", device)
    rm = load_reward_model(out, device)[0] if rcfg.w_pref else None
    ref = copy.deepcopy(policy).eval().requires_grad_(False) if gcfg.kl_beta > 0 else None
    splits = make_splits(task)                 # RL prompts: the corpus's questions, never held out

    def score(problems, texts):
        terms = reward_terms(problems, texts, rm, tok, rcfg, device)
        return terms, blend(terms, rcfg)

    summary = train_grpo(policy, tok, gcfg, prompts_pool=[p for p, _ in splits.train],
                         eval_problems=splits.in_dist[:64], score=score, ref=ref,
                         max_new_tokens=run.max_new_tokens, seed=run.seed,
                         log_path=os.path.join(out, "grpo_log.jsonl"), device=device)
    save_model(out, "rl", policy, {"step": gcfg.rl_steps, "init": "pretrain"})
    return {"grpo": summary, "time_s": {"grpo": time.time() - t0}}


def evaluate_stage(run: RunConfig, task: TaskConfig, out: str, device: str) -> dict:
    t0 = time.time()
    splits = make_splits(dataclasses.replace(task, n_train=1))   # held-out sets only
    results = {}
    for name in ("pretrained", "rl"):
        ckpt = {"pretrained": "pretrain", "rl": "rl"}[name]
        if name == "rl" and not os.path.exists(os.path.join(out, "rl.pt")):
            continue                                          # no GRPO stage in this run yet
        model, tok, _ = load_model(out, ckpt, device)
        scorers = eval_scorers(out, tok, device)  # gold_score, and pref_score after the reward stage
        scorers["misconception_rate"] = lambda p, c: float(uses_misconception(c))
        scorers["wrong_unit_rate"] = lambda p, c: float(wrong_unit(p, answer_span(c) or ""))
        results[name] = {}
        for split, problems in (("in_dist", splits.in_dist), ("harder", splits.harder)):
            m = evaluate(model, tok, problems, k=run.eval_k, max_new_tokens=run.max_new_tokens,
                         seed=run.seed, desc=f"eval {name}/{split}", scorers=scorers)
            results[name][split] = m
            print(f"eval {name}/{split} | " + " | ".join(
                f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in m.items()))
    return {"eval": results, "time_s": {"eval": time.time() - t0}}


def report_markdown(report: dict) -> str:
    """report.json as a page a person reads: the held-out table, the ceilings, the timings."""
    cols = ["greedy_accuracy", "pass@1", "pass@k", "format_rate", "gold_score", "pref_score",
            "misconception_rate", "wrong_unit_rate", "mean_length"]
    lines = ["# Run report", "", "| model | set | " + " | ".join(cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for model, sets in report.get("eval", {}).items():
        for split, m in sets.items():
            cells = [f"{m[c]:.3f}" if isinstance(m.get(c), float) else "-" for c in cols]
            lines.append(f"| {model} | {split} | " + " | ".join(cells) + " |")
    ceiling = report.get("imitation_ceiling")
    if ceiling:
        lines += ["", f"Imitation ceiling (a perfect copy of the teacher), in distribution: greedy "
                      f"{ceiling['greedy']:.3f}, sampled {ceiling['sampled']:.3f}; harder: greedy "
                      f"{ceiling['harder']['greedy']:.3f}, sampled "
                      f"{ceiling['harder']['sampled']:.3f}."]
    rm = report.get("reward_model")
    if rm:
        lines += ["", f"Preference model: held-out accuracy {rm['heldout_accuracy']:.3f} against "
                      f"the rater's agreement ceiling {rm['agreement_ceiling']:.3f}; agreement "
                      f"with the noise-free gold order {rm['gold_agreement']:.3f}."]
    lines += ["", "Time (s): " + ", ".join(f"{k} {v:.0f}" for k, v in report["time_s"].items())]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------

def main(argv: list[str]) -> None:
    configs = [RunConfig(), TaskConfig(), GPTConfig(), PretrainConfig(), RewardConfig(),
               GRPOConfig()]
    if argv in (["-h"], ["--help"]):
        print(__doc__ + "\n" + config.help_text(configs) + "\n\npresets: " + ", ".join(PRESETS))
        return
    pairs = config.parse_pairs(argv)
    preset = pairs.get("preset") or ("gpu" if torch.cuda.is_available() else "cpu")
    if preset not in PRESETS:
        raise config.ConfigError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    configs = config.apply(configs, {**PRESETS[preset], "preset": preset})
    run, task, gpt, pcfg, rcfg, gcfg = config.apply(configs, pairs)
    device = run.device or ("cuda" if torch.cuda.is_available() else "cpu")
    out = run.out or os.path.join("out", preset)
    os.makedirs(out, exist_ok=True)

    # the run directory belongs to one config: refuse to mix two runs in one folder
    described = config.as_dict([task, gpt, pcfg, rcfg, gcfg])
    described["RunConfig"] = {k: v for k, v in dataclasses.asdict(run).items()
                              if k not in ("stages", "device", "out")}
    path = os.path.join(out, "config.json")
    if os.path.exists(path) and json.load(open(path)) != described:
        raise config.ConfigError(f"{out} holds a run with a different config; use another --out "
                                 f"or delete it")
    write_json(path, described)

    stages = run.stages.split(",")
    if "pretrain" in stages:
        update_report(out, pretrain(run, task, gpt, pcfg, out, device))
    if "reward" in stages:
        update_report(out, train_reward_model(run, task, gpt, rcfg, out, device))
    if "grpo" in stages:
        update_report(out, grpo_stage(run, task, rcfg, gcfg, out, device))
    if "eval" in stages:
        update_report(out, evaluate_stage(run, task, out, device))
    times = json.load(open(os.path.join(out, "report.json"))).get("time_s", {})
    total = sum(v for k, v in times.items() if k != "total")     # the stages' times, summed
    report = update_report(out, {"time_s": {"total": total}})
    write_text(os.path.join(out, "report.md"), report_markdown(report))
    print(f"done in {report['time_s']['total']:.0f}s | report: {os.path.join(out, 'report.json')}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (config.ConfigError, FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
