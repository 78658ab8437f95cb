"""
Online RLHF: fresh human labels on the policy's own samples while it trains, and the preference
model updated on them, with every label counted.

    every K GRPO steps (--rm_online_every K):
        draw n training prompts, two samples of each from the current policy (as GRPO draws them)
        the simulated human labels each pair (data/rater.Human: checks with --rater_check,
            else judges in a hurry as --rater_hurried says)
        rm_online_steps Bradley-Terry updates, each on rm_batch_size pairs: half drawn from
            every online label so far, half from the teacher's pairs the reward stage used
        r_ref re-measured on the teacher's held-out answers (the zero point of σ(r - r_ref))

Why replay the teacher's pairs: the policy's samples drift towards what the model overrates,
and a model trained on those alone forgets the style it learned, which the human still cares
about; half a batch from each keeps both (the mixing of fresh and earlier comparisons in
Bai et al.'s iterated online RLHF, arXiv 2204.05862 §4.5, and in Llama 2's reward-model rounds,
arXiv 2307.09288 §3.2.2). Every online label is kept: they are what the human paid for.

What a run reports: `labels`, the human labels spent so far (the reward stage's pairs plus the
online ones), in every row of grpo_log.jsonl and in report.json, beside the verifier, which
costs none.

What this deliberately is not: a labelling interface, active selection of which pairs to label
(Dong et al., arXiv 2405.07863), or a run over several processes (one process labels; the
stage refuses --rm_online_every under torchrun).
"""

import random

import torch

from bradley_terry import bt_step, offline_pairs
from checkpoint import _tuples
from guard import SkipNonFinite
from preference import encode_view, rm_view
from preference_figures import reference_score
from sampler import generate
from verifiers import answer_span, math_reward


class OnlineLabels:
    """The preference model of `reward` kept on the policy's distribution (module docstring).
    state() / load() carry it through --resume: the model, its optimiser, every label, the
    random streams."""

    def __init__(self, reward, tok, prefcfg, task, prompts, held_out, device, seed: int,
                 temperature: float, max_new_tokens: int):
        self.reward, self.tok, self.cfg, self.task = reward, tok, prefcfg, task
        self.prompts, self.held_out, self.device = prompts, held_out, device
        self.temperature, self.max_new_tokens = temperature, max_new_tokens
        rm, scope = reward.rm, reward.cfg.pref_scope
        rm.requires_grad_(True)                                      # loaded frozen: it learns
        teacher = offline_pairs(task, prefcfg)                       # the reward stage's pairs
        self.teacher = [[encode_view(tok, p.question, rm_view(c, scope), rm.cfg.block_size)
                         for c in p.chosen_rejected] for p in teacher]
        self.online: list[list[list[int]]] = []                      # [chosen ids, rejected ids]
        self.opt = torch.optim.AdamW(rm.parameters(), lr=prefcfg.rm_online_lr, betas=(0.9, 0.95),
                                     weight_decay=0.0)
        self.pick = random.Random(f"{seed}/online")                  # prompts, batches, labels
        self.gen = torch.Generator(device=device).manual_seed(seed + 1)  # the samples
        self.guard = SkipNonFinite("online labels", limit=3)

    @property
    def labels(self) -> int:
        """Human labels spent: the reward stage's pairs and every online pair."""
        return len(self.teacher) + len(self.online)

    def label(self, policy) -> int:
        """Two samples of each of rm_online_pairs prompts from `policy`, labelled by the human;
        a pair is kept when both samples have an answer span for the model to read. Returns the
        number of new labels."""
        scope, human = self.reward.cfg.pref_scope, self.cfg.human
        problems = [self.pick.choice(self.prompts) for _ in range(self.cfg.rm_online_pairs)]
        texts = generate(policy, [self.tok.encode(p.prompt) for p in problems], num_samples=2,
                         max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                         stop_ids=[self.tok.answer_end, self.tok.eot], pad_id=self.tok.pad,
                         generator=self.gen).texts(self.tok.decode)
        new = 0
        for p, a, b in zip(problems, texts[0::2], texts[1::2]):
            views = [rm_view(c, scope) for c in (a, b)]
            if None in views:
                continue                                             # nothing to judge
            right = [math_reward(c, str(p.answer)) > 0 for c in (a, b)]
            a_wins, _ = human.label(right[0], answer_span(a), right[1], answer_span(b), self.pick)
            ids = [encode_view(self.tok, p.question, v, self.reward.rm.cfg.block_size)
                   for v in views]
            self.online.append(ids if a_wins else ids[::-1])         # [chosen, rejected]
            new += 1
        return new

    def update(self, step: int) -> dict:
        """rm_online_steps BT updates, half of each batch online labels, half the teacher's;
        then r_ref re-measured. Returns the mean loss and the batches' label agreement."""
        rm, half = self.reward.rm, max(1, self.cfg.rm_batch_size // 2)
        rm.train()
        losses, accs = [], []
        for _ in range(self.cfg.rm_online_steps if self.online else 0):
            batch = ([self.pick.choice(self.online) for _ in range(half)]
                     + [self.pick.choice(self.teacher) for _ in range(half)])
            loss, acc = bt_step(rm, self.opt, [c for c, _ in batch], [r for _, r in batch],
                                self.tok.pad, self.cfg.rm_center, self.guard, step)
            losses.append(loss)
            accs.append(acc)
        rm.eval()
        rm.r_ref.fill_(reference_score(rm, self.tok, self.held_out, self.task,
                                       self.reward.cfg.pref_scope, self.device))
        mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
        return {"rm_online_loss": mean(losses), "rm_online_acc": mean(accs)}

    def __call__(self, policy, step: int) -> dict:
        """Label, then update: what a GRPO step logs of it."""
        new = self.label(policy)
        return {"labels_new": new, **self.update(step)}

    def state(self) -> dict:
        return {"rm": self.reward.rm.state_dict(), "opt": self.opt.state_dict(),
                "online": self.online, "pick": self.pick.getstate(),
                "gen": self.gen.get_state(), "skipped": self.guard.skipped}

    def load(self, state: dict) -> None:
        self.reward.rm.load_state_dict(state["rm"])
        self.opt.load_state_dict(state["opt"])
        self.online = [list(map(list, pair)) for pair in state["online"]]
        self.pick.setstate(_tuples(state["pick"]))
        self.gen.set_state(state["gen"])
        self.guard.skipped = state["skipped"]
