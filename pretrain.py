"""
Pretraining: next-token prediction on the fallible teacher's worked solutions.

    L_LM = -1/|o| Σ_t log π_θ(o_t | q, o_<t)        over the completion tokens o only

The prompt's numbers are random, so predicting them would teach nothing the model ever uses:
prompt and padding targets are -1 (`pack`). Documents of similar length are batched together
(length buckets), so a batch carries little padding. AdamW (Loshchilov & Hutter, arXiv
1711.05101) with weight decay on matrices only, linear warm-up and cosine decay, gradient
clipping, bf16 autocast on CUDA; on CPU fp32 (a bf16 matmul is slower there: lab/bench.py measures
both; `--precision`, device.py). With CUDA the step runs under torch.compile (`--compile`): its
shapes repeat, bucket after bucket. Every cfg.ckpt_every steps the run's state goes to
pretrain.state.pt (--resume).

Under torchrun (dist.py) every rank computes the same batch order and takes `batch[rank::world]`
of each global batch, its loss scaled by its share of the batch's target tokens, so that the
averaged gradient is the one-process gradient.

What this is deliberately not: a general trainer (no gradient accumulation, no mixed precision
on CPU, no learning-rate finder).
"""

import dataclasses
import math
import os
import random
from dataclasses import dataclass

import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

import dist
from checkpoint import save_model, state_path
from data.ceiling import imitation_ceiling
from data.problems import Splits, TaskConfig, teacher_solution
from data.tokenizer import Tokenizer
from device import Stopwatch, autocast as device_autocast, precision
from evaluate import evaluate
from guard import SkipNonFinite
from loop import TrainingLoop
from model import GPT, GPTConfig


@dataclass
class PretrainConfig:
    """Next-token pretraining on the teacher's corpus (AdamW, warm-up, cosine decay)."""
    batch_size: int = 32        # documents per step
    pretrain_steps: int = 1600  # optimizer steps: the cpu model's greedy accuracy reaches the
                                # teacher's imitation ceiling (data/ceiling.py)
    lr: float = 3e-3            # peak learning rate
    warmup_steps: int = 100     # linear warm-up from 0 to lr
    min_lr_ratio: float = 0.1   # cosine decays to lr * min_lr_ratio
    weight_decay: float = 0.1   # on matrices only, not on norms
    grad_clip: float = 1.0      # max gradient norm, > 0 (inf: no clipping)
    eval_every: int = 200       # validation loss + quick greedy accuracy every N steps
    ckpt_every: int = 100       # save pretrain.state.pt (for --resume) every N steps

    def __post_init__(self):
        for name in ("batch_size", "pretrain_steps", "eval_every", "ckpt_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or not 0 <= self.min_lr_ratio <= 1 or self.warmup_steps < 0:
            raise ValueError("--lr must be > 0, --min_lr_ratio in [0, 1], --warmup_steps >= 0")
        if not self.grad_clip > 0:                 # a clip of 0 would zero every gradient
            raise ValueError(f"--grad_clip must be > 0, got {self.grad_clip}")



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


def train_step(model, opt, x, y, grad_clip: float, autocast, guard: SkipNonFinite, step: int,
               share: float = 1.0) -> tuple[float, float]:
    """One pretraining update on a packed batch; returns (loss, grad norm) of the global batch.

    The model returns the mean loss over this batch's targets. Under DDP, `share` is this rank's
    fraction of the global batch's targets: each rank backpropagates mean * share * world, DDP
    averages the gradients over the world, and the result is the gradient of the mean over all
    targets, as one process would compute it (in one process share * world = 1)."""
    with autocast:
        _, loss = model(x, y)
    (loss * (share * dist.world())).backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip).item()
    loss = dist.all_sum(loss.detach() * share).item()              # mean over all targets
    guard.step(opt, loss, grad_norm, step)                         # skipped if not finite
    return loss, grad_norm


def length_buckets(docs: list, size: int) -> list[list[int]]:
    """Document indices in batches of `size` whose lengths are alike, so a batch carries little
    padding; full batches only (preflight: size <= the corpus, and the world divides it).
    length_buckets([([1, 2, 3], 1), ([1], 1), ([1, 2], 1)], 2) -> [[1, 2]]"""
    order = sorted(range(len(docs)), key=lambda i: len(docs[i][0]))
    return [order[i:i + size] for i in range(0, len(order) - size + 1, size)]


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
# the stage: pretrain

def pretrain(run, task: TaskConfig, gpt: GPTConfig, cfg: PretrainConfig, out: str, device: str,
             splits: Splits, tok: Tokenizer, docs: list, resume: bool = False) -> dict:
    """The pretrain stage: next-token pretraining on `docs` (the corpus `splits.train` rendered
    by `tok`, as train.prepare_corpus makes them); saves pretrain.pt and the tokenizer beside
    it. `run` is train.RunConfig. Returns the stage's figures for report.json."""
    rank, world = dist.rank(), dist.world()
    if rank == 0 and not (resume and os.path.exists(state_path(out, "pretrain"))):
        tok.save(os.path.join(out, "tokenizer.tiktoken"))     # the run's; a resume has it
    # ---- setup: batches of similar length (little padding), the model, the optimiser
    batches = length_buckets(docs, cfg.batch_size)
    torch.manual_seed(run.seed)
    model = GPT(dataclasses.replace(gpt, vocab_size=tok.n_vocab)).to(device)
    opt = make_optimizer(model, cfg, fused=device.startswith("cuda"))
    autocast = device_autocast(device, precision(device, run.precision))  # bf16 on a GPU
    fast = run.compile == "on" or (run.compile == "auto" and device.startswith("cuda"))
    gen = torch.Generator().manual_seed(run.seed)
    if rank == 0:
        print(f"pretrain | {model.num_params() / 1e6:.2f}M params | vocab {tok.n_vocab} | "
              f"{len(docs)} docs | {sum(len(d) for d, _ in docs) / 1e6:.2f}M tokens | "
              f"{world} process(es)")
    loop = TrainingLoop("pretrain", out, cfg.pretrain_steps, cfg.ckpt_every, model=model, opt=opt,
                        device=device, seed=run.seed, generators=dict(gen=gen), resume=resume,
                        max_bad_steps=run.max_bad_steps, log="pretrain_log.jsonl",
                        state=dict(queue=[], history=[], tokens=0, train_time=0.0, ema=None))
    s = loop.state                               # the loop's running figures, saved with it
    trainer = torch.compile(model) if fast else model          # one graph: the shapes repeat
    trainer = DDP(trainer) if world > 1 else trainer           # averages grads over ranks
    validate = Validation(model, tok, splits, task, run, autocast, device)
    # ---- the loop
    for step in loop:
        if rank == 0 and step % cfg.eval_every == 0:           # validate, now and then
            validate(step, cfg.pretrain_steps, s)
        if not s["queue"]:                                     # a new epoch of shuffled buckets
            s["queue"] = [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
        batch = s["queue"].pop()                               # the global batch: doc indices
        x, y = pack([docs[i] for i in batch[rank::world]], tok.pad)   # this rank's share
        n_targets = sum(len(docs[i][0]) - docs[i][1] for i in batch)  # targets in the global batch
        clock = Stopwatch(device)
        x, y = x.to(device), y.to(device)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        loss, grad_norm = train_step(trainer, opt, x, y, cfg.grad_clip, autocast, loop.guard,
                                     step, share=int((y != -1).sum()) / n_targets)
        s["train_time"] += clock.lap("step")
        s["tokens"] += sum(len(docs[i][0]) - 1 for i in batch)  # non-pad inputs, global batch
        if math.isfinite(loss):
            s["ema"] = loss if s["ema"] is None else 0.95 * s["ema"] + 0.05 * loss
        loop.log({"step": step, "loss": loss, "lr": lr_at(step, cfg), "grad_norm": grad_norm,
                  "skipped": loop.guard.skipped})
        loop.bar.set_postfix(loss=f"{s['ema'] if s['ema'] is not None else math.nan:.3f}",
                             tok_s=f"{s['tokens'] / s['train_time']:.0f}")
    if rank > 0:
        return {}
    # ---- figures: a last validation, pretrain.pt, the teacher's imitation ceiling
    val_loss = validate(cfg.pretrain_steps, cfg.pretrain_steps, s)
    save_model(out, "pretrain", model, {"step": cfg.pretrain_steps, "tokenizer": tok.fingerprint})
    return {
        "pretrain": {"params": model.num_params(), "steps": cfg.pretrain_steps,
                     "tokens_per_s": s["tokens"] / s["train_time"], "train_loss": s["ema"],
                     "val_loss": val_loss, "corpus_tokens": sum(len(d) for d, _ in docs),
                     "corpus_accuracy": sum(sol.value == p.answer for p, sol in splits.train)
                     / len(splits.train), "skipped_updates": loop.guard.skipped},
        "imitation_ceiling": {**imitation_ceiling(splits.in_dist, task),
                              "harder": imitation_ceiling(splits.harder, task)},
        "time_s": {"pretrain": loop.elapsed()},
    }


class Validation:
    """The loss on one teacher solution of each held-out problem, and greedy accuracy on the
    first 64: validate(step, steps, state) prints both and returns the loss."""

    def __init__(self, model, tok, splits, task, run, autocast, device):
        rng = random.Random(f"{task.task_seed}/val")
        docs = [tok.render(p.prompt, s.think, s.answer_text)
                for p in splits.in_dist for s in [teacher_solution(p, rng, task)]]
        x, y = pack(docs, tok.pad)
        self.batches = list(zip(x.split(64), y.split(64)))
        self.model, self.tok, self.problems = model, tok, splits.in_dist[:64]
        self.run, self.autocast, self.device = run, autocast, device

    def __call__(self, step: int, steps: int, state: dict) -> float:
        self.model.eval()
        with torch.no_grad(), self.autocast:
            val_loss = sum(self.model(xb.to(self.device), yb.to(self.device))[1].item()
                           for xb, yb in self.batches) / len(self.batches)
        quick = evaluate(self.model, self.tok, self.problems, k=1,
                         max_new_tokens=self.run.max_new_tokens, seed=self.run.seed,
                         desc="quick eval")
        self.model.train()
        train = f"{state['ema']:.4f}" if state["ema"] is not None else "(no step yet)"
        tqdm.write(f"step {step:05d}/{steps} | train loss {train} | val loss {val_loss:.4f} | "
                   f"held-out greedy acc {quick['greedy_accuracy']:.3f} | format "
                   f"{quick['format_rate']:.3f} | tok/s "
                   f"{state['tokens'] / max(state['train_time'], 1e-9):.0f}")
        return val_loss
