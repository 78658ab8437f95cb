"""
What the reward stage reports about a preference model: how it orders held-out pairs, against
the simulated human's noisy labels and against the truth; the zero point of its score; and an
exploit probe, what dressing a wrong answer up buys against being right.

    heldout_figures(pairs, r_a, r_b, human)   # accuracy against labels, truth, style, correctness
    exploit_probe(rm, tok, held_out, ...)     # style_lift, correctness_lift, dressed_beats_right
    reference_score(rm, tok, held_out, ...)   # r_ref, the zero point of sigma(r - r_ref)

bradley_terry.train_reward_model calls them after training; online.py after each round of
fresh labels. Whether a preference model can tell right from wrong is `accuracy_correctness`;
whether a policy could find its errors, `dressed_beats_right` (Manheim & Garrabrant's extremal
Goodhart, arXiv 1803.04585; held-out accuracy as a weak predictor of what RL does: Wen et al.,
arXiv 2410.05584).

What this deliberately is not: a benchmark of reward models (RewardBench and the like); every
figure here reads this task's simulated human.
"""

import random

import torch

from data.problems import TaskConfig, answer_text, teacher_solution
from data.rater import Human, Pair, agreement_ceiling, make_pairs
from preference import rm_view, score


def pairwise_accuracy(r_a: torch.Tensor, r_b: torch.Tensor, a_wins: torch.Tensor) -> float:
    """Share of pairs the scores order like the labels; a tie counts one half.
    pairwise_accuracy(tensor([1., 0., 2.]), tensor([0., 1., 2.]), tensor([True, True, False]))
    -> (1 + 0 + 0.5) / 3 = 0.5"""
    hit = torch.where(r_a == r_b, 0.5, ((r_a > r_b) == a_wins).float())  # (P,)
    return hit.mean(dtype=torch.float64).item()


def pair_scores(rm, tok, pairs, scope: str, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The scores r_a, r_b (P,) of each pair's two sides, in what `scope` shows."""
    return tuple(score(rm, tok, [p.question for p in pairs],
                       [rm_view(p.completion(side), scope) for p in pairs], device).cpu()
                 for side in ("a", "b"))


def heldout_pairs(held_out, task: TaskConfig, cfg) -> list[Pair]:
    """rm_eval_pairs style pairs, then as many solution pairs, of the held-out problems (cfg:
    bradley_terry.PreferenceConfig)."""
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
