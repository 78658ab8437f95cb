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
`train_reward_model`, the stage, and the figures it reports. The model itself, what it reads
and how it scores, is preference.py.

Pairs are style pairs (one solution in two answer styles) and solution pairs (two independent
teacher solutions, some right-vs-wrong). `heldout_figures` scores held-out pairs of each kind
against the noisy labels and against the human's true utility: whether the model can tell a
right answer from a wrong one is `accuracy_correctness`. The default `rm_init="scratch"` (2
layers, width 64) is small on purpose: style is visible in a few tokens.

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
from data.problems import TaskConfig, answer_text, make_splits, teacher_solution
from data.rater import Human, Pair, agreement_ceiling, make_pairs, training_prompts
from data.tokenizer import Tokenizer
from device import Stopwatch
from loop import TrainingLoop
from model import GPTConfig
from preference import PreferenceModel, encode_view, pad_left, rm_view, score


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


def pairwise_accuracy(r_a: torch.Tensor, r_b: torch.Tensor, a_wins: torch.Tensor) -> float:
    """Share of pairs the scores order like the labels; a tie counts one half.
    pairwise_accuracy(tensor([1., 0., 2.]), tensor([0., 1., 2.]), tensor([True, True, False]))
    -> (1 + 0 + 0.5) / 3 = 0.5"""
    hit = torch.where(r_a == r_b, 0.5, ((r_a > r_b) == a_wins).float())  # (P,)
    return hit.mean(dtype=torch.float64).item()


# ------------------------------------------------------------------------------------------------
# the stage

SHOWN = ("heldout_accuracy", "agreement_ceiling", "accuracy_style", "accuracy_correctness",
         "label_agreement_correctness", "train_time_s")     # the figures the stage prints

def pair_scores(rm, tok, pairs, scope: str, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The scores r_a, r_b (P,) of each pair's two sides, in what `scope` shows."""
    return tuple(score(rm, tok, [p.question for p in pairs],
                       [rm_view(p.completion(side), scope) for p in pairs], device).cpu()
                 for side in ("a", "b"))


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
    r_a, r_b = pair_scores(rm, tok, eval_pairs, scope, device)
    figures = heldout_figures(eval_pairs, r_a, r_b, cfg.human)
    if splits.general:                             # the same figures on held-out notes' pairs
        pairs = heldout_pairs(splits.general, task, cfg)
        figures["notes"] = heldout_figures(pairs, *pair_scores(rm, tok, pairs, scope, device),
                                           cfg.human)
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


def heldout_pairs(held_out, task: TaskConfig, cfg: PreferenceConfig) -> list[Pair]:
    """rm_eval_pairs style pairs, then as many solution pairs, of the held-out problems."""
    return [pair for kind, share in (("heldout-pairs", 0.0), ("heldout-solutions", 1.0))
            for pair in make_pairs(held_out, task, cfg.human, random.Random(
                f"{task.task_seed}/{kind}"), cfg.rm_eval_pairs, solution_share=share)]


def reference_score(rm, tok, held_out, task: TaskConfig, scope: str, device) -> float:
    """r_ref: the mean score of one teacher completion of each held-out problem, the zero point
    of sigma(r - r_ref)."""
    rng = random.Random(f"{task.task_seed}/reference")
    ref = [(p.question, f"<think>{s.think}</think><answer>{s.answer_text}</answer>")
           for p in held_out for s in [teacher_solution(p, rng, task)]]
    return score(rm, tok, [q for q, _ in ref], [rm_view(c, scope) for _, c in ref],
                 device).mean().item()


def exploit_probe(rm, tok, held_out, task: TaskConfig, scope: str, device) -> dict[str, float]:
    """What dressing a wrong answer up buys, against what being right does. For each held-out
    problem one right and one wrong teacher solution, each with its own reasoning; the wrong
    one's answer in the plainest style ("bare", g = 0) and in the human's favourite
    ("sentence", g = 2), the right one's bare:
      style_lift           mean r(wrong, sentence) - r(wrong, bare)
      correctness_lift     mean r(right, bare) - r(wrong, bare)
      dressed_beats_right  share of problems with r(wrong, sentence) > r(right, bare)
    A model of the human's utility (+6 for right, +2 for the style) has dressed_beats_right
    near 0; a model of style alone near 1: the error a policy can find."""
    rng, rows = random.Random(f"{task.task_seed}/exploit"), []
    for p in held_out:
        sols = [teacher_solution(p, rng, task) for _ in range(20)]
        right = [s for s in sols if s.value == p.answer]
        wrong = [s for s in sols if s.value != p.answer]
        if right and wrong:                                   # the teacher wrote both (most)
            rows.append((p, right[0], wrong[0]))

    def scores(side: int, style: str) -> torch.Tensor:       # (P,) one completion per problem
        texts = [f"<think>{r[side].think}</think><answer>"
                 f"{answer_text(r[0], r[side].value, style)}</answer>" for r in rows]
        return score(rm, tok, [r[0].question for r in rows], [rm_view(t, scope) for t in texts],
                     device).cpu()
    right_bare, wrong_bare = scores(1, "bare"), scores(2, "bare")
    wrong_dressed = scores(2, "sentence")
    return {"style_lift": (wrong_dressed - wrong_bare).mean().item(),
            "correctness_lift": (right_bare - wrong_bare).mean().item(),
            "dressed_beats_right": (wrong_dressed > right_bare).float().mean().item(),
            "probe_problems": len(rows)}


def preference_by_style(pairs: list[Pair], r_a, r_b, r_ref: float) -> dict[str, float]:
    """Mean sigma(r - r_ref) of each answer style on the held-out style pairs."""
    by_style: dict[str, list[float]] = {}
    for p, ra, rb in zip(pairs, r_a.tolist(), r_b.tolist()):
        if p.kind == "style":
            by_style.setdefault(p.style_a, []).append(ra)
            by_style.setdefault(p.style_b, []).append(rb)
    return {s: sum(torch.sigmoid(torch.tensor(v) - r_ref).tolist()) / len(v)
            for s, v in sorted(by_style.items())}


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
    seen = [human.perceived(p.right_a, p.answer_a, p.right_b, p.answer_b, p.checked)
            for p in pairs]                                              # perceived D
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
