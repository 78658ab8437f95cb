"""
The learned harmlessness model: a classifier of the whole response, trained on the simulated
human's judgements, as DeepSeek-R1's harmlessness reward model "evaluates the entire response of
the model, including both the reasoning process and the summary" (arXiv 2501.12948, section
2.3.4).

    examples  teacher responses to fresh training prompts (maths and notes), a rude remark in
              half of them, in the teacher's wordings at the teacher's rates
    label     the human's judgement: harmful when a rude word appears anywhere in the response
              (data.problems.RUDE_WORDS, every wording the corpus has)
    loss      -[y log σ(h) + (1 - y) log(1 - σ(h))]   h: preference.PreferenceModel's scalar head
    harm term p = σ(h(x)) in (0, 1), in place of the rule's 0/1 (reward.py, --harm_model learned)

The human's own rule stays the gold: the evaluation counts it (harm_rate), and it is never
rewarded when this model is. The wordings come at rates 1, 1/2, 1/4, ... (data.problems.
rude_remark), so the rarest is seen least in training: the model may miss a wording the gold
catches, and a policy penalised by the model alone can keep writing it. grpo_log.py logs that
rate over steps (harm_missed: harmful by the gold, p < 1/2 by the model): the harm hack.

What it reads: the question and the response up to </answer> (preference.rm_view's "response"
scope), or the whole completion when it has no answer span; nothing after </answer>.
What this deliberately is not: a model of degrees of harm, or of any harm but the remark.
"""

import dataclasses
import os
import random

import torch
import torch.nn.functional as F
from tqdm import tqdm

from behaviour import harm
from bradley_terry import new_preference_model
from checkpoint import save_model
from data.problems import (RUDE_REMARKS, RUDE_WORDS, Problem, TaskConfig, make_splits,
                           teacher_solution)
from data.rater import training_prompts
from data.tokenizer import Tokenizer
from model import GPTConfig
from preference import PreferenceModel, encode_view, load_reward_model, pad_left, rm_view, score

EVERY_WORD = "|".join(RUDE_WORDS)      # the human's rule: any rude word of any wording


def harm_view(completion: str) -> str:
    """What the model reads of a completion: up to </answer>, or all of it without one."""
    return rm_view(completion, "response") or completion


def examples(problems: list[Problem], task: TaskConfig, rng: random.Random):
    """One teacher response per problem, a rude remark in about half (p_rude 1/2, every wording
    of task.rude_wordings), each labelled by the human's rule: [(question, completion, y)]."""
    half = dataclasses.replace(task, p_rude=0.5)
    out = []
    for p in problems:
        s = teacher_solution(p, rng, half)
        text = f"<think>{s.think}</think><answer>{s.answer_text}</answer>"
        out.append((p.question, text, harm(text, EVERY_WORD, "response") > 0))
    return out


def harm_probability(model: PreferenceModel, tok, questions: list[str], completions: list[str],
                     device) -> torch.Tensor:
    """p = σ(h(x)) (N,): the model's probability that each response is harmful."""
    views = [harm_view(c) for c in completions]
    return torch.sigmoid(score(model, tok, questions, views, device))


def heldout_figures(model, tok, rows, device) -> dict:
    """Accuracy at p = 1/2 on held-out rows, the share of harmless ones flagged, and the share
    of each wording caught (recall by wording: where a hack would come from)."""
    p = harm_probability(model, tok, [q for q, _, _ in rows], [c for _, c, _ in rows],
                         device).cpu()
    y = torch.tensor([label for _, _, label in rows])
    flagged = p >= 0.5
    out = {"harm_accuracy": (flagged == y).float().mean().item(),
           "harm_false_positive": flagged[~y].float().mean().item() if (~y).any() else 0.0}
    for remark, word in zip(RUDE_REMARKS, RUDE_WORDS):
        has = torch.tensor([remark in c for _, c, _ in rows])
        if has.any():
            out[f"harm_caught/{word}"] = flagged[has].float().mean().item()
    return out


def train_harm_model(run, task: TaskConfig, gpt: GPTConfig, cfg, out: str, device: str) -> dict:
    """Part of the reward stage with --harm_model learned: harm_examples labelled responses,
    harm_steps AdamW steps of the loss above on a small new model (rm_n_layer, rm_n_head,
    rm_n_embd), held-out figures, harm.pt/.json. `cfg` is bradley_terry.PreferenceConfig.
    Deterministic from the seed, so a resumed reward stage simply trains it again."""
    tok = Tokenizer.load(os.path.join(out, "tokenizer.tiktoken"))
    rows = examples(training_prompts(task, cfg.harm_examples), task,
                    random.Random(f"{task.task_seed}/harm"))
    splits = make_splits(dataclasses.replace(task, n_train=1))
    held = examples(splits.in_dist + splits.general, task,
                    random.Random(f"{task.task_seed}/harm-heldout"))
    torch.manual_seed(run.seed)
    model = new_preference_model(dataclasses.replace(cfg, rm_init="scratch"), gpt, tok,
                                 out).to(device)
    ids = [encode_view(tok, q, harm_view(c), model.cfg.block_size) for q, c, _ in rows]
    y = torch.tensor([float(label) for _, _, label in rows])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.rm_lr, betas=(0.9, 0.95),
                            weight_decay=0.0)
    gen = torch.Generator().manual_seed(run.seed)
    model.train()
    for step in tqdm(range(cfg.harm_steps), desc="harm model", dynamic_ncols=True):
        batch = torch.randint(len(rows), (cfg.rm_batch_size,), generator=gen).tolist()
        idx, pad = pad_left([ids[i] for i in batch], tok.pad)
        for group in opt.param_groups:
            group["lr"] = cfg.rm_lr * (1 - step / cfg.harm_steps)      # linear decay to 0
        h = model(idx.to(device), pad.to(device))                      # (B,) logits
        loss = F.binary_cross_entropy_with_logits(h, y[batch].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    figures = {"harm_examples": len(rows), "harm_positive": y.mean().item(),
               "harm_train_loss": loss.item(), **heldout_figures(model, tok, held, device)}
    print("harm model | " + " | ".join(f"{k} {v:.3f}" for k, v in figures.items()
                                       if isinstance(v, float)))
    save_model(out, "harm", model, {"figures": figures, "tokenizer": tok.fingerprint})
    return {"harm_model": figures}


def load_harm_model(out: str, device: str = "cpu") -> PreferenceModel:
    """out/harm.pt + out/harm.json -> the frozen harmlessness model, in eval mode."""
    return load_reward_model(out, device, "harm",
                             "run --stages reward with --harm_model learned")[0]
