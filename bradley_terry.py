"""
The reward stage: a Bradley-Terry preference model trained on a simulated human's labels.

    pairs  = make_pairs(fresh training prompts)     # data/rater.py: the simulated human's labels
    for step in range(rm_steps):                    # AdamW on bt_loss
        r = rm(chosen + rejected); loss = bt_loss(r_chosen, r_rejected)
    heldout_figures(held-out pairs of both kinds)   # against the labels and against the truth
                                                    # (and on held-out notes: data/general.py)
    r_ref = mean score of the teacher's own answers # the zero point of sigma(r - r_ref)

In reading order: PreferenceConfig (the rm_* knobs: size, pairs, steps; the rater_* knobs: the
simulated human's noise, the value of a right answer, how often it checks, data/rater.Human);
bt_loss, -log sigma(r_chosen - r_rejected) (Ouyang et al., arXiv 2203.02155, eq. 1) plus an
optional centring penalty c * (r_chosen + r_rejected)^2 (Eisenstein et al., arXiv 2312.09244):
the loss only sees differences, so without it the scores may drift anywhere; then
`train_reward_model`, the stage. The model itself, what it reads and how it scores, is
preference.py; the figures the stage reports, preference_figures.py.

Pairs are style pairs (one solution in two answer styles) and solution pairs (two independent
teacher solutions, some right-vs-wrong). `heldout_figures` (preference_figures.py) scores
held-out pairs of each kind against the noisy labels and against the human's true utility:
whether the model can tell a right answer from a wrong one is `accuracy_correctness`. The
default `rm_init="scratch"` (2 layers, width 64) is small on purpose: style is visible in a few
tokens.

What this deliberately is not: a trainer class, or a preference model that keeps learning while
the policy moves: it is trained once and frozen, as in DeepSeekMath's GRPO (arXiv 2402.03300)
between its reward-model updates.
"""

import dataclasses
import os
import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from checkpoint import load_model, save_model
from data.problems import TaskConfig, make_splits
from data.rater import Human, Pair, make_pairs, training_prompts
from data.tokenizer import Tokenizer
from device import Stopwatch
from loop import TrainingLoop
from model import GPTConfig
from preference import PreferenceModel, encode_view, pad_left, rm_view
from preference_figures import (exploit_probe, heldout_figures, heldout_pairs, pair_scores,
                                preference_by_style, reference_score)


INITS = ("scratch", "pretrained")
HURRIED = ("style", "coin")

# ------------------------------------------------------------------------------------------------
# config: the preference model, its training, and the simulated human who labels its pairs

@dataclass
class PreferenceConfig:
    """The preference model: its init, size, pairs and steps; the simulated human who labels them."""
    rm_init: str = "scratch"    # scratch: a small new GPT | pretrained: the policy's pretrain.pt
    rm_n_layer: int = 2         # scratch preference model size (block_size: GPTConfig's)
    rm_n_head: int = 4          # its attention heads
    rm_n_embd: int = 64         # its width
    rm_pairs: int = 4000        # labelled training pairs, one per fresh training prompt
    rm_eval_pairs: int = 4      # labelled pairs per held-out in_dist problem
    rm_steps: int = 250         # AdamW steps
    rm_batch_size: int = 32     # pairs per step
    rm_lr: float = 1e-3         # peak learning rate, decayed linearly to 0
    rm_center: float = 0.01     # coefficient c of the centring penalty c * (r_c + r_r)^2
    rm_ckpt_every: int = 50     # save reward.state.pt (for --resume) every N steps
    rm_solution_pairs: float = 0.5  # share of pairs that are two independent teacher solutions
                                # (right-vs-wrong at the teacher's rate); the rest: style pairs
    rater_tau: float = 0.7      # the simulated human's noise: P(a > b) = sigma((u_a - u_b) / tau)
    rater_c: float = 6.0        # c of the human's true utility u = c * [right] + g(answer)
    rater_check: float = 0.5    # chance the labeller works the problem out; else judges in a
                                # hurry, as rater_hurried says
    rater_hurried: str = "style"  # a labeller who does not check: style (judges g alone: a
                                # bias a model can learn) | coin (a fair coin: noise)
    rater_phrase: float = 0.0   # what data.problems.PHRASE in an answer adds to the human's g
    harm_model: str = "rule"    # the harm term: rule (the human's own, verifiers.harm) |
                                # learned (a classifier of the whole response trained here on
                                # the human's judgements: harmlessness.py)
    harm_examples: int = 2000   # its labelled responses (a rude remark in about half)
    harm_steps: int = 150       # its AdamW steps (rm_batch_size, rm_lr, the rm_n_* sizes)
    rm_online_every: int = 0    # online RLHF (online.py): every N GRPO steps the human labels
                                # pairs of the policy's own samples and the model is updated on
                                # them; 0: the offline model, frozen
    rm_online_pairs: int = 32   # prompts drawn each time, two samples of each: one pair each
    rm_online_steps: int = 10   # BT updates after each labelling, half of each batch the online
                                # labels, half the teacher's pairs (replayed)
    rm_online_lr: float = 3e-4  # their learning rate (constant)

    def __post_init__(self):
        if self.rm_init not in INITS:
            raise ValueError(f"rm_init must be one of {INITS}, got {self.rm_init!r}")
        for name in ("rm_n_layer", "rm_n_head", "rm_n_embd", "rm_pairs", "rm_eval_pairs",
                     "rm_steps", "rm_batch_size", "rm_ckpt_every", "harm_examples", "harm_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if min(self.rm_online_every, self.rm_online_pairs - 1, self.rm_online_steps - 1) < 0:
            raise ValueError("rm_online_every must be >= 0, rm_online_pairs and rm_online_steps "
                             ">= 1")
        if not self.rm_online_lr > 0:
            raise ValueError(f"rm_online_lr must be > 0, got {self.rm_online_lr}")
        if not self.rm_lr > 0 or not self.rater_tau > 0 or not self.rm_center >= 0:
            raise ValueError("rm_lr and rater_tau must be > 0, rm_center >= 0")
        if not (0 <= self.rm_solution_pairs <= 1 and 0 <= self.rater_check <= 1):
            raise ValueError("rm_solution_pairs and rater_check are shares: each must be in [0, 1]")
        if self.harm_model not in ("rule", "learned"):
            raise ValueError(f"harm_model must be rule or learned, got {self.harm_model!r}")
        if self.rater_hurried not in HURRIED:
            raise ValueError(f"rater_hurried must be one of {HURRIED}, got {self.rater_hurried!r}")
        if not self.rater_c >= 0:
            raise ValueError(f"rater_c must be >= 0, got {self.rater_c}")
        if self.rm_n_embd % self.rm_n_head or (self.rm_n_embd // self.rm_n_head) % 2:
            raise ValueError(f"--rm_n_embd {self.rm_n_embd} must be --rm_n_head {self.rm_n_head} "
                             f"times an even head width (RoPE)")

    @property
    def human(self) -> Human:
        """The simulated human these knobs describe (data/rater.py)."""
        return Human(tau=self.rater_tau, c=self.rater_c, check=self.rater_check,
                     phrase=self.rater_phrase, hurried=self.rater_hurried)

# ------------------------------------------------------------------------------------------------
# the maths

def bt_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, center_coef: float = 0.0):
    """Bradley-Terry loss, mean over pairs, with the optional centring penalty.
    bt_loss(tensor([2.]), tensor([0.])) -> -log sigma(2) = 0.126928
    bt_loss(tensor([2.]), tensor([0.]), 0.01) -> 0.126928 + 0.01 * 2^2 = 0.166928"""
    # exercise: bt_loss
    loss = -F.logsigmoid(r_chosen - r_rejected).mean()  # -log sigma(r_c - r_r), 2203.02155 eq. 1
    return loss + center_coef * (r_chosen + r_rejected).pow(2).mean()  # 2312.09244 centring
    # end of exercise: bt_loss


# ------------------------------------------------------------------------------------------------
# the stage

SHOWN = ("heldout_accuracy", "agreement_ceiling", "accuracy_style", "accuracy_correctness",
         "label_agreement_correctness", "train_time_s")     # the figures the stage prints

def train_reward_model(run, task: TaskConfig, gpt: GPTConfig, cfg: PreferenceConfig, scope: str,
                       out: str, device: str, resume: bool = False) -> dict:
    """The reward stage: pairs labelled by the simulated human, the BT loss on what `scope`
    shows (answer | response), held-out figures, reward.pt/.json. `run` is train.RunConfig.
    Returns the stage's figures for report.json."""
    tok = Tokenizer.load(os.path.join(out, "tokenizer.tiktoken"))
    # ---- setup: labelled pairs (the held-out ones from the in_dist set), the model, the optimiser
    train_pairs = offline_pairs(task, cfg)
    splits = make_splits(dataclasses.replace(task, n_train=1))          # held-out sets only
    held_out = splits.in_dist
    eval_pairs = heldout_pairs(held_out, task, cfg)
    torch.manual_seed(run.seed)
    rm = new_preference_model(cfg, gpt, tok, out).to(device)
    ids = [[encode_view(tok, p.question, rm_view(c, scope), rm.cfg.block_size)     # chosen,
            for p, c in zip(train_pairs, side)]                                    # rejected
           for side in zip(*[p.chosen_rejected for p in train_pairs])]
    opt = torch.optim.AdamW(rm.parameters(), lr=cfg.rm_lr, betas=(0.9, 0.95), weight_decay=0.0)
    gen = torch.Generator().manual_seed(run.seed)
    n_params = sum(p.numel() for p in rm.parameters())
    print(f"reward model | init {cfg.rm_init} | {n_params / 1e6:.2f}M params | scope "
          f"{scope} | {len(train_pairs)} train pairs | {len(eval_pairs)} held-out pairs")
    loop = TrainingLoop("reward", out, cfg.rm_steps, cfg.rm_ckpt_every, model=rm, opt=opt,
                        device=device, seed=run.seed, generators=dict(gen=gen), resume=resume,
                        max_bad_steps=run.max_bad_steps,
                        state=dict(queue=[], ema=(None, None), train_time=0.0))
    s = loop.state                                 # the loop's running figures, saved with it
    # ---- the loop: fp32 (the model is small), a fixed pair order from the seed
    for step in loop:
        clock = Stopwatch(device)
        if not s["queue"]:                         # a new epoch of shuffled pairs
            s["queue"] = [b.tolist() for b in torch.randperm(len(train_pairs), generator=gen)
                          .split(cfg.rm_batch_size)]
        batch = s["queue"].pop()
        for group in opt.param_groups:
            group["lr"] = cfg.rm_lr * (1 - step / cfg.rm_steps)  # linear decay to 0
        loss, acc = bt_step(rm, opt, [ids[0][i] for i in batch], [ids[1][i] for i in batch],
                            tok.pad, cfg.rm_center, loop.guard, step)
        loss_ema, acc_ema = s["ema"]
        s["ema"] = (loss if loss_ema is None else 0.95 * loss_ema + 0.05 * loss,
                    acc if acc_ema is None else 0.95 * acc_ema + 0.05 * acc)
        s["train_time"] += clock.lap("step")
        loop.bar.set_postfix(loss=f"{s['ema'][0]:.3f}", acc=f"{s['ema'][1]:.3f}")
    # ---- figures: held-out pairs against the labels and the truth; r_ref; reward.pt
    figures, r_a, r_b = labelled_figures(rm, tok, eval_pairs, scope, device, cfg.human)
    if splits.general:                             # the same figures on held-out notes' pairs
        figures["notes"] = labelled_figures(rm, tok, heldout_pairs(splits.general, task, cfg),
                                            scope, device, cfg.human)[0]
    r_ref = reference_score(rm, tok, held_out, task, scope, device)
    rm.r_ref.fill_(r_ref)
    figures.update({
        "train_loss": s["ema"][0], "pairs": len(train_pairs), "init": cfg.rm_init,
        "scope": scope, "params": n_params, "steps": cfg.rm_steps, "tau": cfg.rater_tau,
        "c": cfg.rater_c, "check": cfg.rater_check, "solution_share": cfg.rm_solution_pairs,
        "r_ref": r_ref, "train_time_s": s["train_time"], "skipped_updates": loop.guard.skipped,
        "hurried": cfg.rater_hurried, "pref_by_style": preference_by_style(eval_pairs, r_a, r_b,
                                                                         r_ref),
        **exploit_probe(rm, tok, held_out, task, scope, device)})
    print("reward model | " + " | ".join(f"{k} {figures[k]:.3f}" for k in SHOWN) + " | pref "
          + " ".join(f"{k} {v:.2f}" for k, v in figures["pref_by_style"].items()))
    save_model(out, "reward", rm, {"config": dataclasses.asdict(cfg), "scope": scope,
                                   "r_ref": r_ref, "figures": figures,
                                   "tokenizer": tok.fingerprint})
    return {"reward_model": figures, "time_s": {"reward_model": loop.elapsed()}}


def labelled_figures(rm, tok, pairs: list[Pair], scope: str, device, human: Human):
    """The model's scores r_a, r_b (P,) of held-out pairs, and their figures
    (preference_figures.heldout_figures) with the BT loss on the labels: (figures, r_a, r_b)."""
    r_a, r_b = pair_scores(rm, tok, pairs, scope, device)
    labels = torch.tensor([p.a_wins for p in pairs])
    loss = bt_loss(torch.where(labels, r_a, r_b), torch.where(labels, r_b, r_a)).item()
    return dict(heldout_figures(pairs, r_a, r_b, human), heldout_loss=loss), r_a, r_b


def bt_step(rm, opt, chosen: list, rejected: list, pad_id: int, center: float, guard,
            step: int) -> tuple[float, float]:
    """One update on B labelled pairs (token ids of each side's view): both sides in one
    left-padded batch, the BT loss, AdamW (skipped by `guard` if not finite). Returns the loss
    and the share of pairs the scores order like the labels."""
    B = len(chosen)
    idx, pad = pad_left(chosen + rejected, pad_id)
    device = next(rm.parameters()).device
    r = rm(idx.to(device), pad.to(device))          # (2B,) chosen first, then rejected
    loss = bt_loss(r[:B], r[B:], center)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(rm.parameters(), float("inf"))  # the norm only
    guard.step(opt, loss.item(), grad_norm.item(), step)
    return loss.item(), (r[:B] > r[B:]).float().mean().item()   # acc: against the noisy labels


def new_preference_model(cfg: PreferenceConfig, gpt: GPTConfig, tok, out: str) -> PreferenceModel:
    """rm_init "scratch": a small new GPT body (rm_n_layer, rm_n_head, rm_n_embd); "pretrained":
    the policy's body from out/pretrain.pt. Both with a new scalar head."""
    if cfg.rm_init == "pretrained":
        lm, _, _ = load_model(out, "pretrain", "cpu")
        rm = PreferenceModel(lm.cfg)
        rm.body.load_state_dict(lm.state_dict())
        return rm
    return PreferenceModel(dataclasses.replace(gpt, vocab_size=tok.n_vocab, n_layer=cfg.rm_n_layer,
                                               n_head=cfg.rm_n_head, n_embd=cfg.rm_n_embd))


def offline_pairs(task: TaskConfig, cfg: PreferenceConfig) -> list[Pair]:
    """The reward stage's rm_pairs labelled pairs of the teacher's text, one per fresh training
    prompt, the same labels every time for one task and human (online.py replays them)."""
    return make_pairs(training_prompts(task, cfg.rm_pairs), task, cfg.human,
                      random.Random(f"{task.task_seed}/pair-labels"),
                      solution_share=cfg.rm_solution_pairs)
