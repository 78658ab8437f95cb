"""
The learned half of the reward: a Bradley-Terry preference model of a simulated human.

What this is, in reading order:
  1. PreferenceConfig: how the preference model is built and trained (the rm_* knobs) and how
     noisy the human labelling its pairs is (rater_tau).
  2. What the model reads: `rm_view` (of verifiers.answer_span), `encode_view`. With scope
     "answer" (the default, reward.RewardConfig.pref_scope) it reads the question plus the final
     answer span ONLY, as DeepSeek-R1's helpfulness reward model judges only the final summary
     (arXiv 2501.12948, section 2.3.4):
         encode(question + "\\n") <answer> encode(answer span) </answer>
     so no edit of the <think> block can ever change its score (tests/test_reward.py checks).
     Scope "response" feeds everything up to </answer>, reasoning included: the ablation.
  3. PreferenceModel: the GPT body of model.py plus a scalar head on the hidden state of the last
     token. Inputs are LEFT-padded, so position -1 is always the last real token (</answer>).
  4. bt_loss: -log sigma(r_chosen - r_rejected) (Ouyang et al., arXiv 2203.02155, eq. 1), plus an
     optional centring penalty c * (r_chosen + r_rejected)^2 (Eisenstein et al., arXiv 2312.09244;
     TRL's reward trainer suggests c = 0.01): the loss only sees differences, so without it the
     scores may drift anywhere.
  5. `preference`: sigma(r - r_ref), the Bradley-Terry probability that the human prefers this
     answer to the teacher's average answer; the `pref` term of reward.py's blend.
  6. train_reward_model: the stage. Pairs labelled by the simulated human of data/rater.py (same
     prompt, same number, two answer styles), AdamW, held-out pairwise accuracy next to the
     rater's agreement ceiling, then r_ref, the mean score of the teacher's own answers. The
     default `rm_init="scratch"` (2 layers, width 64) reached the same held-out accuracy as an
     init from the pretrained policy, in a fraction of the time (figures in the README): style
     is visible in a few tokens, so the task is easy on purpose.

What this deliberately is not: a reward model of the reasoning (a process reward model), an
ensemble, or a model that keeps learning during GRPO: it is trained once and frozen, as in
DeepSeekMath's GRPO (arXiv 2402.03300) between its reward-model updates.
"""

import dataclasses
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from checkpoint import (load_model, load_weights, read_checkpoint, resume_training, save_model,
                        save_training)
from data.problems import TaskConfig, make_splits, teacher_solution
from data.rater import Human, Pair, agreement_ceiling, gold_score, make_pairs, training_prompts
from data.tokenizer import Tokenizer
from guard import SkipNonFinite
from model import GPT, GPTConfig
from verifiers import ANSWER_CLOSE, TAGS, answer_span, math_reward

INITS = ("scratch", "pretrained")

# ------------------------------------------------------------------------------------------------
# config

@dataclass
class PreferenceConfig:
    """The preference model: its init and size, its training pairs and steps, the human's noise."""
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
    rater_check: float = 0.5    # chance the labeller works the problem out; else judges g alone

    def __post_init__(self):
        if self.rm_init not in INITS:
            raise ValueError(f"rm_init must be one of {INITS}, got {self.rm_init!r}")
        for name in ("rm_n_layer", "rm_n_head", "rm_n_embd", "rm_pairs", "rm_eval_pairs",
                     "rm_steps", "rm_batch_size", "rm_ckpt_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.rm_lr > 0 or not self.rater_tau > 0 or not self.rm_center >= 0:
            raise ValueError("rm_lr and rater_tau must be > 0, rm_center >= 0")
        if not (0 <= self.rm_solution_pairs <= 1 and 0 <= self.rater_check <= 1):
            raise ValueError("rm_solution_pairs and rater_check are shares: each must be in [0, 1]")
        if not self.rater_c >= 0:
            raise ValueError(f"rater_c must be >= 0, got {self.rater_c}")
        if self.rm_n_embd % self.rm_n_head or (self.rm_n_embd // self.rm_n_head) % 2:
            raise ValueError(f"--rm_n_embd {self.rm_n_embd} must be --rm_n_head {self.rm_n_head} "
                             f"times an even head width (RoPE)")

    @property
    def human(self) -> Human:
        """The simulated human these knobs describe (data/rater.py)."""
        return Human(tau=self.rater_tau, c=self.rater_c, check=self.rater_check)

# ------------------------------------------------------------------------------------------------
# what the preference model reads

def rm_view(completion: str, scope: str) -> str | None:
    """What the preference model reads of a completion; None when it has no answer span.
    rm_view("<think>x</think><answer>3</answer><|endoftext|>", "answer") -> "<answer>3</answer>"
    rm_view(same, "response") -> "<think>x</think><answer>3</answer>" """
    span = answer_span(completion)
    if span is None:
        return None
    if scope == "answer":
        return f"<answer>{span}</answer>"
    return completion[:completion.index(ANSWER_CLOSE) + len(ANSWER_CLOSE)]


_TAG = re.compile("(" + "|".join(re.escape(t) for t in TAGS) + ")")


def encode_view(tok: Tokenizer, question: str, view: str, block_size: int) -> list[int]:
    """Token ids of question + view; the literal tags of the view become the special tokens the
    tokenizer's template uses. Left-truncated to block_size (the end carries the score)."""
    special = dict(zip(TAGS, (tok.think, tok.think_end, tok.answer, tok.answer_end)))
    ids = tok.encode(question + "\n")
    for piece in _TAG.split(view):                 # "<answer>3</answer>" -> "", tag, "3", tag, ""
        ids += [special[piece]] if piece in special else tok.encode(piece)
    return ids[-block_size:]


def pad_left(seqs: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ids (N, T) and pad counts (N,), the layout model.GPT.hidden expects."""
    T = max(len(s) for s in seqs)
    idx = torch.tensor([[pad] * (T - len(s)) + s for s in seqs], dtype=torch.long)
    return idx, torch.tensor([T - len(s) for s in seqs], dtype=torch.long)

# ------------------------------------------------------------------------------------------------
# the preference model and its loss

class PreferenceModel(nn.Module):
    """r(x, y): a GPT body (model.py) and a linear head on the last token's final hidden state."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.body = GPT(cfg)                       # its lm_head is unused (tied to wte: no cost)
        self.head = nn.Linear(cfg.n_embd, 1)
        self.register_buffer("r_ref", torch.zeros(()))  # mean score of the teacher's answers

    def forward(self, idx, pad_len=None):
        """Scores (N,) for left-padded ids (N, T) with pad counts (N,)."""
        h = self.body.hidden(idx, pad_len)         # (N, T, C) final-normed hidden states
        return self.head(h[:, -1])[:, 0]           # (N,) r = w . h_last + b


def bt_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, center_coef: float = 0.0):
    """Bradley-Terry loss, mean over pairs, with the optional centring penalty.
    bt_loss(tensor([2.]), tensor([0.])) -> -log sigma(2) = 0.126928
    bt_loss(tensor([2.]), tensor([0.]), 0.01) -> 0.126928 + 0.01 * 2^2 = 0.166928"""
    loss = -F.logsigmoid(r_chosen - r_rejected).mean()  # -log sigma(r_c - r_r), 2203.02155 eq. 1
    return loss + center_coef * (r_chosen + r_rejected).pow(2).mean()  # 2312.09244 centring


def pairwise_accuracy(r_a: torch.Tensor, r_b: torch.Tensor, a_wins: torch.Tensor) -> float:
    """Share of pairs the scores order like the labels; a tie counts one half.
    pairwise_accuracy(tensor([1., 0., 2.]), tensor([0., 1., 2.]), tensor([True, True, False]))
    -> (1 + 0 + 0.5) / 3 = 0.5"""
    hit = torch.where(r_a == r_b, 0.5, ((r_a > r_b) == a_wins).float())  # (P,)
    return hit.mean(dtype=torch.float64).item()


@torch.no_grad()
def score(rm: PreferenceModel, tok: Tokenizer, questions: list[str], views: list[str],
          device, batch_size: int = 256) -> torch.Tensor:
    """Raw scores r (N,) of question/view pairs (views from `rm_view`), in batches."""
    was_training = rm.training
    rm.eval()
    out = []
    for i in range(0, len(views), batch_size):
        seqs = [encode_view(tok, q, v, rm.cfg.block_size)
                for q, v in zip(questions[i:i + batch_size], views[i:i + batch_size])]
        idx, pad = pad_left(seqs, tok.pad)
        out.append(rm(idx.to(device), pad.to(device)).float())  # (n,)
    rm.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, device=device)


def raw_scores(rm: PreferenceModel, tok: Tokenizer, questions: list[str], completions: list[str],
               scope: str, device) -> torch.Tensor:
    """The preference model's raw score r (N,) of each completion in `scope`, NaN for one without
    a well-formed answer span (it has nothing to judge)."""
    views = [rm_view(c, scope) for c in completions]
    ok = [i for i, v in enumerate(views) if v is not None]
    out = torch.full((len(completions),), float("nan"), device=device)
    if ok:
        out[ok] = score(rm, tok, [questions[i] for i in ok], [views[i] for i in ok], device)
    return out


def preference(rm: PreferenceModel, tok: Tokenizer, questions: list[str], completions: list[str],
               scope: str, device, raw: torch.Tensor | None = None) -> torch.Tensor:
    """sigma(r - r_ref) (N,) for each completion, 0 for one without a well-formed answer span:
    the probability that the human prefers it to the teacher's average answer. `raw`: the
    completions' raw_scores, when already computed."""
    r = raw_scores(rm, tok, questions, completions, scope, device) if raw is None else raw
    return torch.where(r.isnan(), 0.0, torch.sigmoid(r - rm.r_ref))  # (N,) BT win vs the reference

# ------------------------------------------------------------------------------------------------
# stage: train the preference model

def _views(pairs, scope: str) -> tuple[list[str], list[str]]:
    """(view of side a, view of side b) for each pair."""
    return ([rm_view(p.completion("a"), scope) for p in pairs],
            [rm_view(p.completion("b"), scope) for p in pairs])


def train_reward_model(run, task: TaskConfig, gpt: GPTConfig, cfg: PreferenceConfig, scope: str,
                       out: str, device: str, resume: bool = False) -> dict:
    """Build labelled pairs, train with the BT loss on what `scope` shows (answer | response),
    evaluate held-out, save reward.pt/.json. Saves out/reward.state.pt every cfg.rm_ckpt_every
    steps; resume=True continues it. `run` is train.RunConfig (its seed and max_bad_steps)."""
    t0 = time.time()
    tok = Tokenizer.load(os.path.join(out, "tokenizer.tiktoken"))
    # ---- pairs, labelled by the simulated human; the held-out ones come from the in_dist set
    human = cfg.human
    train_pairs = make_pairs(training_prompts(task, cfg.rm_pairs), task, human,
                             random.Random(f"{task.task_seed}/pair-labels"),
                             solution_share=cfg.rm_solution_pairs)
    held_out = make_splits(dataclasses.replace(task, n_train=1)).in_dist
    eval_pairs = (make_pairs(held_out, task, human, random.Random(f"{task.task_seed}/heldout-pairs"),
                             cfg.rm_eval_pairs, solution_share=0.0)       # style pairs, then
                  + make_pairs(held_out, task, human,                     # solution pairs
                               random.Random(f"{task.task_seed}/heldout-solutions"),
                               cfg.rm_eval_pairs, solution_share=1.0))

    # ---- model: a small new GPT, or the pretrained policy's body
    torch.manual_seed(run.seed)
    if cfg.rm_init == "pretrained":
        lm, _, _ = load_model(out, "pretrain", "cpu")
        rm = PreferenceModel(lm.cfg)
        rm.body.load_state_dict(lm.state_dict())
    else:
        rm = PreferenceModel(dataclasses.replace(gpt, vocab_size=tok.n_vocab, n_layer=cfg.rm_n_layer,
                                                 n_head=cfg.rm_n_head, n_embd=cfg.rm_n_embd))
    rm = rm.to(device)
    block = rm.cfg.block_size
    chosen, rejected = zip(*[p.chosen_rejected for p in train_pairs])
    ids_c = [encode_view(tok, p.question, rm_view(c, scope), block)
             for p, c in zip(train_pairs, chosen)]
    ids_r = [encode_view(tok, p.question, rm_view(r, scope), block)
             for p, r in zip(train_pairs, rejected)]
    opt = torch.optim.AdamW(rm.parameters(), lr=cfg.rm_lr, betas=(0.9, 0.95), weight_decay=0.0)
    gen = torch.Generator().manual_seed(run.seed)
    n_params = sum(p.numel() for p in rm.parameters())
    print(f"reward model | init {cfg.rm_init} | {n_params / 1e6:.2f}M params | scope "
          f"{scope} | {len(train_pairs)} train pairs | {len(eval_pairs)} held-out pairs")

    # ---- training loop: fp32 (the model is small), fixed pair order from the seed
    queue: list[list[int]] = []
    loss_ema = acc_ema = None
    start, train_time, elapsed = 0, 0.0, 0.0
    guard = SkipNonFinite("reward model", run.max_bad_steps)
    state = resume_training(out, "reward", model=rm, opt=opt, device=device, seed=run.seed,
                            generators=dict(gen=gen)) if resume else None
    if state is not None:                          # continue where it stopped
        start, queue, loss_ema, acc_ema = state["step"], state["queue"], *state["ema"]
        train_time, elapsed = state["train_time"], state["elapsed"]
        guard = SkipNonFinite("reward model", run.max_bad_steps, **state["guard"])
        print(f"reward model | resuming at step {start}")
    t1 = time.time()
    bar = tqdm(range(start, cfg.rm_steps), desc="reward model", initial=start, total=cfg.rm_steps,
               dynamic_ncols=True, mininterval=1.0)
    for step in bar:
        if step > start and step % cfg.rm_ckpt_every == 0:
            save_training(out, "reward", step=step, model=rm, opt=opt, device=device,
                          generators=dict(gen=gen), queue=queue, ema=(loss_ema, acc_ema),
                          train_time=train_time + time.time() - t1,
                          elapsed=elapsed + time.time() - t0, guard=guard.state())
        if not queue:                              # a new epoch of shuffled pairs
            queue = torch.randperm(len(ids_c), generator=gen).split(cfg.rm_batch_size)
            queue = [b.tolist() for b in queue]
        batch = queue.pop()
        B = len(batch)
        idx, pad = pad_left([ids_c[i] for i in batch] + [ids_r[i] for i in batch], tok.pad)
        r = rm(idx.to(device), pad.to(device))    # (2B,) chosen first, then rejected
        loss = bt_loss(r[:B], r[B:], cfg.rm_center)
        for group in opt.param_groups:
            group["lr"] = cfg.rm_lr * (1 - step / cfg.rm_steps)  # linear decay to 0
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(rm.parameters(), float("inf"))  # the norm only
        guard.step(opt, loss.item(), grad_norm.item(), step)
        acc = (r[:B] > r[B:]).float().mean().item()  # agreement with the noisy labels
        loss_ema = loss.item() if loss_ema is None else 0.95 * loss_ema + 0.05 * loss.item()
        acc_ema = acc if acc_ema is None else 0.95 * acc_ema + 0.05 * acc
        bar.set_postfix(loss=f"{loss_ema:.3f}", acc=f"{acc_ema:.3f}")
    train_time += time.time() - t1

    # ---- held-out: against the human's noisy labels and against the truth, for each kind of pair
    va, vb = _views(eval_pairs, scope)
    questions = [p.question for p in eval_pairs]
    r_a = score(rm, tok, questions, va, device).cpu()
    r_b = score(rm, tok, questions, vb, device).cpu()
    figures = heldout_figures(eval_pairs, r_a, r_b, human)
    # ---- the reference: mean score of the teacher's own completions on the held-out prompts
    ref_rng = random.Random(f"{task.task_seed}/reference")
    ref = [(p.question, f"<think>{s.think}</think><answer>{s.answer_text}</answer>")
           for p in held_out for s in [teacher_solution(p, ref_rng, task)]]
    r_ref = score(rm, tok, [q for q, _ in ref], [rm_view(c, scope) for _, c in ref],
                  device).mean().item()
    rm.r_ref.fill_(r_ref)
    by_style: dict[str, list[float]] = {}
    for p, ra, rb in zip(eval_pairs, r_a.tolist(), r_b.tolist()):
        if p.kind == "style":
            by_style.setdefault(p.style_a, []).append(ra)
            by_style.setdefault(p.style_b, []).append(rb)
    figures.update({
        "train_loss": loss_ema, "pairs": len(train_pairs), "init": cfg.rm_init, "scope": scope,
        "params": n_params, "steps": cfg.rm_steps, "tau": cfg.rater_tau, "c": cfg.rater_c,
        "check": cfg.rater_check, "solution_share": cfg.rm_solution_pairs, "r_ref": r_ref,
        "train_time_s": train_time, "skipped_updates": guard.skipped,
        "pref_by_style": {s: sum(torch.sigmoid(torch.tensor(v) - r_ref).tolist()) / len(v)
                          for s, v in sorted(by_style.items())},
    })
    print("reward model | " + " | ".join(f"{k} {figures[k]:.3f}" for k in (
        "heldout_accuracy", "agreement_ceiling", "accuracy_style", "accuracy_correctness",
        "label_agreement_correctness", "train_time_s")) + " | pref " + " ".join(f"{s} {v:.2f}"
                                                 for s, v in figures["pref_by_style"].items()))

    save_model(out, "reward", rm, {"config": dataclasses.asdict(cfg), "scope": scope,
                                   "r_ref": r_ref, "figures": figures,
                                   "tokenizer": tok.fingerprint})
    return {"reward_model": figures, "time_s": {"reward_model": elapsed + time.time() - t0}}


def heldout_figures(pairs: list[Pair], r_a: torch.Tensor, r_b: torch.Tensor,
                    human: Human) -> dict:
    """Held-out figures of scores r_a, r_b (P,) on labelled pairs of both kinds:
      heldout_accuracy     the scores order pairs like the noisy labels (all pairs), beside
      agreement_ceiling    E[sigma(|D| / tau)], D the perceived utility difference: what a model
                           of the labellers' own perception would agree with;
      gold_agreement       the scores order pairs like the true utility u (all pairs);
      accuracy_style       the same on style pairs (the same number: u orders them by g), beside
      label_agreement_style        how often the labels themselves order them like u;
      accuracy_correctness on right-vs-wrong solution pairs, the share in which the right side
                           scores higher (judged against the truth, not the label), beside
      label_agreement_correctness  how often the labels prefer the right side.
    Ties count one half."""
    u_a = torch.tensor([human.utility(p.right_a, p.answer_a) for p in pairs])   # (P,) true u
    u_b = torch.tensor([human.utility(p.right_b, p.answer_b) for p in pairs])
    seen = [human.utility(p.right_a and p.checked, p.answer_a)
            - human.utility(p.right_b and p.checked, p.answer_b) for p in pairs]  # perceived D
    labels = torch.tensor([p.a_wins for p in pairs])
    out = {"heldout_accuracy": pairwise_accuracy(r_a, r_b, labels),
           "agreement_ceiling": agreement_ceiling(seen, human.tau),
           "gold_agreement": pairwise_accuracy(r_a, r_b, u_a > u_b),
           "heldout_loss": bt_loss(torch.where(labels, r_a, r_b),        # chosen by the label
                                   torch.where(labels, r_b, r_a)).item(),
           "heldout_pairs": len(pairs)}
    out["accuracy_to_ceiling"] = out["heldout_accuracy"] / out["agreement_ceiling"]
    subsets = {"style": [p.kind == "style" for p in pairs],
               "correctness": [p.kind == "solution" and p.right_vs_wrong for p in pairs]}
    for name, sel in subsets.items():
        sel = torch.tensor(sel)
        if sel.any():
            truth = (u_a > u_b)[sel]                                     # a is the better side
            out[f"accuracy_{name}"] = pairwise_accuracy(r_a[sel], r_b[sel], truth)
            out[f"label_agreement_{name}"] = (labels[sel] == truth).double().mean().item()
        else:
            out[f"accuracy_{name}"] = out[f"label_agreement_{name}"] = float("nan")
        out[f"{name}_pairs"] = int(sel.sum())
    return out


def load_reward_model(out: str, device: str = "cpu") -> tuple[PreferenceModel, dict]:
    """out/reward.pt + out/reward.json -> (frozen PreferenceModel in eval mode, meta)."""
    if not os.path.exists(os.path.join(out, "reward.pt")):
        raise FileNotFoundError(f"reward model file not found: {out}/reward.pt (run --stages reward)")
    state, meta, cfg = read_checkpoint(out, "reward", device)
    rm = PreferenceModel(cfg)
    load_weights(rm, state, os.path.join(out, "reward.pt"))
    rm.requires_grad_(False)
    return rm.to(device).eval(), meta


def eval_scorers(out: str, tok: Tokenizer, device: str, human: Human) -> dict[str, Callable]:
    """Scorers for evaluate(): the human's true utility gold_utility = c * [right] + g (0 without
    an answer), the style score gold_score = g of the answer span (0 without one) and, when the
    run has a reward model, pref_score = sigma(r - r_ref) in the scope it was trained for."""
    scorers = {"gold_utility": lambda p, c: human.utility(math_reward(c, str(p.answer)) > 0,
                                                          answer_span(c) or ""),
               "gold_score": lambda p, c: gold_score(answer_span(c) or "")}
    if os.path.exists(os.path.join(out, "reward.pt")):
        rm, meta = load_reward_model(out, device)
        scorers["pref_score"] = lambda p, c: preference(rm, tok, [p.question], [c], meta["scope"],
                                                        device)[0].item()
    return scorers
