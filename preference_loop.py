"""
The preference model's stage: labelled pairs -> Bradley-Terry training -> held-out figures.

    pairs  = make_pairs(fresh training prompts)     # data/rater.py: the simulated human's labels
    for step in range(rm_steps):                    # AdamW on bt_loss (preference.py)
        r = rm(chosen + rejected); loss = bt_loss(r_chosen, r_rejected)
    heldout_figures(held-out pairs of both kinds)   # against the labels and against the truth
    r_ref = mean score of the teacher's own answers # the zero point of sigma(r - r_ref)

Pairs are labelled by the simulated human of data/rater.py: style pairs (one solution in two
answer styles) and solution pairs (two independent teacher solutions, some right-vs-wrong).
`heldout_figures` scores held-out pairs of each kind against the noisy labels and against the
human's true utility: whether the model can tell a right answer from a wrong one is
`accuracy_correctness` (the README compares both scopes and both inits). The default
`rm_init="scratch"` (2 layers, width 64) is small on purpose: style is visible in a few tokens.
Every rm_ckpt_every steps the model, the optimizer and the pair queue go to reward.state.pt, and
resume=True continues there (checkpoint.save_training).

What this deliberately is not: a trainer class, or a preference model that keeps learning while
the policy moves (it is trained once and frozen; preference.py says why).
"""

import dataclasses
import os
import random
import time

import torch
from tqdm import tqdm

from checkpoint import load_model, resume_training, save_model, save_training
from data.problems import TaskConfig, make_splits, teacher_solution
from data.rater import Human, Pair, agreement_ceiling, make_pairs, training_prompts
from data.tokenizer import Tokenizer
from guard import SkipNonFinite
from model import GPTConfig
from preference import (PreferenceConfig, PreferenceModel, bt_loss, encode_view, pad_left,
                        pairwise_accuracy, rm_view, score)


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
    eval_pairs = (make_pairs(held_out, task, human,                       # style pairs, then
                             random.Random(f"{task.task_seed}/heldout-pairs"),
                             cfg.rm_eval_pairs, solution_share=0.0)
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
