"""
The learned half of the reward: a Bradley-Terry preference model of a simulated human.

What this is, in reading order:
  1. What the model reads: `rm_view` (of verifiers.answer_span), `encode_view`. With scope
     "answer" (the default, reward.RewardConfig.pref_scope) it reads the question plus the final
     answer span ONLY, as DeepSeek-R1's helpfulness reward model judges only the final summary
     (arXiv 2501.12948, section 2.3.4):
         encode(question + "\\n") <answer> encode(answer span) </answer>
     so no edit of the <think> block can ever change its score (tests/test_reward.py checks).
     Scope "response" feeds everything up to </answer>, reasoning included: the ablation.
  2. PreferenceModel: the GPT body of model.py plus a scalar head on the hidden state of the last
     token. Inputs are LEFT-padded, so position -1 is always the last real token (</answer>).
  3. `raw_scores` (r, NaN without an answer: the proxy GRPO logs) and `preference`:
     sigma(r - r_ref), the Bradley-Terry probability that the human prefers this answer to the
     teacher's average answer; the `pref` term of reward.py's blend.
  4. load_reward_model, eval_scorers: a trained one back from its run directory, and the
     evaluation's scorers (the human's true utility, its style score, the preference score).
How it is trained, on pairs labelled by a simulated human, is bradley_terry.py (the reward
stage).

What this deliberately is not: a reward model of each reasoning step (a process reward model),
an ensemble, or a model that keeps learning during GRPO: it is trained once and frozen, as in
DeepSeekMath's GRPO (arXiv 2402.03300) between its reward-model updates.
"""

import os
import re
from collections.abc import Callable

import torch
import torch.nn as nn

from checkpoint import load_weights, read_checkpoint
from data.rater import Human
from data.tokenizer import Tokenizer
from model import GPT, GPTConfig
from verifiers import ANSWER_CLOSE, TAGS, answer_span, math_reward

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
        with torch.autocast(idx.device.type, enabled=False):  # r in fp32 under bf16 autocast:
            return self.head(h[:, -1].float())[:, 0]  # (N,) r = w . h_last + b; bf16 would tie


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
# loading a trained one, and its scorers for the evaluation

def load_reward_model(out: str, device: str = "cpu", name: str = "reward",
                      hint: str = "run --stages reward") -> tuple[PreferenceModel, dict]:
    """out/<name>.pt + .json -> (frozen PreferenceModel in eval mode, meta); name "harm" is the
    harmlessness model (harmlessness.py), the same architecture."""
    if not os.path.exists(os.path.join(out, f"{name}.pt")):
        raise FileNotFoundError(f"{name} model file not found: {out}/{name}.pt ({hint})")
    state, meta, cfg = read_checkpoint(out, name, device)
    rm = PreferenceModel(cfg)
    load_weights(rm, state, os.path.join(out, f"{name}.pt"))
    rm.requires_grad_(False)
    return rm.to(device).eval(), meta


def eval_scorers(out: str, tok: Tokenizer, device: str, human: Human) -> dict[str, Callable]:
    """Scorers for evaluate(): the human's true utility gold_utility = c * [right] + g (0 without
    an answer), the style score gold_score = g of the answer span (0 without one) and, when the
    run has a reward model, pref_score = sigma(r - r_ref) in the scope it was trained for."""
    scorers = {"gold_utility": lambda p, c: human.utility(math_reward(c, str(p.answer)) > 0,
                                                          answer_span(c) or ""),
               "gold_score": lambda p, c: human.style(answer_span(c) or "")}
    if os.path.exists(os.path.join(out, "reward.pt")):
        rm, meta = load_reward_model(out, device)
        scorers["pref_score"] = lambda p, c: preference(rm, tok, [p.question], [c], meta["scope"],
                                                        device)[0].item()
    return scorers
