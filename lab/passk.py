"""
pass@k and maj@k from n samples per problem: how much of what RL reaches was already within
sampling's reach, before and after RL (DeepSeekMath, arXiv 2402.03300, Fig. 7; Yue et al.,
arXiv 2504.13837; Zhang, Neubig & Yue, arXiv 2512.07783).

  pass@k  the chance that at least one of k samples is right, estimated without bias from n >= k
          samples of which c are right: 1 - C(n - c, k) / C(n, k) (Chen et al., "Evaluating
          Large Language Models Trained on Code", arXiv 2107.03374, eq. 1).
  maj@k   the chance that the most frequent answer of k samples is right (self-consistency,
          Wang et al., arXiv 2203.11171), estimated over the n / k disjoint blocks of k samples;
          a tie goes to the answer seen first, and a sample with no answer does not vote.

What this deliberately is not: a sampler of its own (evaluate.sample_texts draws the samples) or a
judge of equivalent answers (answers are compared exactly, as the verifier compares them:
verifiers.is_equal).
"""

import math
import os
from collections import Counter

import numpy as np

from checkpoint import load_model, read_json, write_json
from data.problems import make_splits
from lab import summary
from evaluate import sample_texts
from verifiers import extract_answer, is_equal


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n - c, k) / C(n, k): pass_at_k(4, 1, 2) = 1 - C(3, 2)/C(4, 2) = 1 - 3/6 = 0.5."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def maj_at_k(answers: list, gold: str, k: int) -> float:
    """The share of the len(answers) / k disjoint blocks of k answers whose most frequent
    answer (None never votes; a tie goes to the one seen first) is gold.
    maj_at_k(["3", "4", "4", "3", None, "3"], "3", 3) -> blocks ("3","4","4") -> "4",
    ("3", None, "3") -> "3": 0.5"""
    if len(answers) % k:
        raise ValueError(f"k = {k} does not divide the {len(answers)} samples")
    hits = []
    for i in range(0, len(answers), k):
        votes = Counter(a for a in answers[i:i + k] if a is not None)
        hits.append(float(bool(votes) and is_equal(votes.most_common(1)[0][0], gold)))
    return sum(hits) / len(hits)


def curves(answers: list[list], golds: list[str], ks: list[int]) -> dict:
    """{"pass@k": ..., "maj@k": ...} for each k, averaged over problems; answers[i] holds the
    n extracted answers (None: no answer) of problem i, golds[i] its right answer."""
    out = {}
    for k in ks:
        out[f"pass@{k}"] = float(np.mean([pass_at_k(len(a), sum(is_equal(x, g) for x in a), k)
                                          for a, g in zip(answers, golds)]))
        out[f"maj@{k}"] = float(np.mean([maj_at_k(a, g, k) for a, g in zip(answers, golds)]))
    return out


def sample_answers(model, tok, problems, n: int, max_new_tokens: int, seed: int) -> list[list]:
    """n samples of each problem at temperature 1; returns each problem's n extracted answers."""
    return [[extract_answer(t) for t in texts] for texts in
            sample_texts(model, tok, problems, n, max_new_tokens, seed, desc="pass@k samples")]


def passk_run(run_dir: str, configs: list, n: int, n_prompts: int, seed: int) -> dict:
    """pass@k and maj@k, k = 1, 4, 16, ... n, of run_dir's pretrained (pretrain.pt) and RL
    (rl.pt) models on the first n_prompts problems of each held-out set; writes
    run_dir/passk.json and returns {model: {set: curves}}. Skipped when passk.json exists."""
    path = os.path.join(run_dir, "passk.json")
    if os.path.exists(path):
        return read_json(path)["curves"]
    run, task = configs[0], configs[1]
    splits = make_splits(task)
    ks = [4 ** i for i in range(int(math.log(n, 4)) + 1)]            # 1, 4, 16, 64
    out = {}
    for model in ("pretrain", "rl"):
        policy, tok, _ = load_model(run_dir, model, "cpu")
        for name, problems in (("in_dist", splits.in_dist), ("harder", splits.harder)):
            problems = problems[:n_prompts]
            answers = sample_answers(policy.eval(), tok, problems, n, run.max_new_tokens, seed)
            out.setdefault(model, {})[name] = curves(answers, [str(p.answer) for p in problems],
                                                     ks)
    write_json(path, {"n": n, "prompts": n_prompts, "seed": seed, "curves": out})
    return out


def markdown(by_arm: dict, mean_std) -> str:
    """One row per arm, model and held-out set: pass@k and maj@k, mean ± std over seeds (as
    mean_std(values) writes it). by_arm: {arm: {seed: {model: {set: curves}}}}."""
    first = next(iter(next(iter(by_arm.values())).values()))
    keys = sorted(first["pretrain"]["in_dist"],                     # pass@1 ... then maj@1 ...
                  key=lambda k: (k.startswith("maj"), int(k.split("@")[1])))
    lines = ["## pass@k and maj@k before and after RL", "",
             "| arm | model | set | " + " | ".join(keys) + " |",
             "|---|---|---|" + "---|" * len(keys)]
    for arm, by_seed in by_arm.items():
        for model in ("pretrain", "rl"):
            for name in ("in_dist", "harder"):
                cells = [mean_std([s[model][name][k] for s in by_seed.values()]) for k in keys]
                lines.append(f"| {arm} | {model} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(by_arm: dict, path: str) -> bool:
    """passk.png: pass@k (solid) and maj@k (dashed) against k, one panel per held-out set, one
    colour per arm and model (mean over seeds). False when matplotlib is not installed."""
    plt = summary.pyplot()
    if plt is None:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    for ax, name in zip(axes, ("in_dist", "harder")):
        for arm, by_seed in by_arm.items():
            for model in ("pretrain", "rl"):
                runs = [s[model][name] for s in by_seed.values()]
                ks = sorted(int(k[5:]) for k in runs[0] if k.startswith("pass@"))
                line, = ax.plot(ks, [np.mean([r[f"pass@{k}"] for r in runs]) for k in ks], "o-",
                                label=f"{arm}, {'RL' if model == 'rl' else 'pretrained'}")
                ax.plot(ks, [np.mean([r[f"maj@{k}"] for r in runs]) for k in ks], "x--",
                        color=line.get_color())
        ax.set_xscale("log", base=4)
        ax.set_xticks(ks, [str(k) for k in ks], minor=False)
        ax.minorticks_off()
        ax.set_xlabel("k, samples per problem")
        where = {"in_dist": "in distribution", "harder": "harder: one step more"}[name]
        ax.set_title(f"held-out, {where}\npass@k (solid), majority vote maj@k (dashed)",
                     fontsize=9)
    axes[0].set_ylabel("share of problems")
    axes[0].legend(fontsize=7)
    summary.save(fig, path)
    return True
