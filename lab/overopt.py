"""
Over-optimisation of a learned reward, measured as Gao, Schulman & Hilton measure it ("Scaling
Laws for Reward Model Overoptimization", arXiv 2210.10760): the gold score of a policy against
d = √KL(π ‖ π_init), the distance it has moved from the initial policy, when it is pushed to
score well on a proxy (our preference model) rather than on the gold (the simulated human's
true utility, data/rater.py).

Two ways to push:
  best-of-n   draw n completions from the pretrained policy, keep the one the proxy scores
              highest. Its KL from the policy has a closed form, KL_bon(n) = log n - (n - 1)/n
              (Gao et al. §2; Stiennon et al., arXiv 2009.01325, appendix). `best_of_n_curve`
              estimates the gold and proxy of the kept completion for every n <= n_max from one
              draw of n_max samples per prompt: its n_max / n disjoint blocks of n are n_max / n
              independent best-of-n draws, averaged.
  RL          GRPO on the proxy alone; d at each step from the logged KL (grpo_log.jsonl's
              kl_k1_seq, Σ_t log π/π_init per sample, an unbiased estimate of KL per sequence).
The fits are Gao et al.'s functional forms, with R the gold minus the initial policy's gold:
  R_bon(d) = d (α - β d)         peak at d* = α / (2β)            (eq. 1)
  R_RL(d)  = d (α - β log d)     peak at d* = exp(α / β - 1)      (eq. 2)
both linear in (α, β), so ordinary least squares (numpy) solves them; R² says how well.

What this deliberately is not: Gao et al.'s sweep over reward-model sizes, or a KL estimate for
best-of-n from samples (the closed form is exact for a continuous proxy with no ties).
"""

import math
import os

import numpy as np

from checkpoint import load_model, read_json, write_json
from data.problems import make_splits
from evaluate import sample_texts
from preference import load_reward_model
from lab import summary
from reward import Reward


def kl_bon(n: int) -> float:
    """KL(best-of-n ‖ π) = log n - (n - 1) / n nats: kl_bon(1) = 0, kl_bon(2) = log 2 - 1/2."""
    return math.log(n) - (n - 1) / n


def best_of_n_curve(proxy: np.ndarray, gold: np.ndarray, ns: list[int]) -> list[dict]:
    """proxy, gold (P, n_max): the scores of n_max samples of each of P prompts (NaN proxy:
    never chosen, unless every sample of a block is NaN). For each n (dividing n_max): the mean
    over prompts and over the n_max / n disjoint blocks of n samples of the gold and the proxy
    of each block's highest-proxy sample, with KL_bon(n) and d = √KL.
    best_of_n_curve(proxy [[1, 3, 2, 0]], gold [[5, 1, 4, 0]], [1, 2, 4]):
      n=1: gold mean(5, 1, 4, 0) = 2.5; n=2: blocks (1, 3) -> gold 1, (2, 0) -> gold 4: 2.5;
      n=4: the sample of proxy 3 -> gold 1."""
    P, n_max = proxy.shape
    score = np.where(np.isnan(proxy), -np.inf, proxy)
    rows = []
    for n in ns:
        if n_max % n:
            raise ValueError(f"n = {n} does not divide the {n_max} samples per prompt")
        blocks = score.reshape(P, n_max // n, n)                       # (P, n_max / n, n)
        pick = blocks.argmax(-1)[..., None]                            # (P, n_max / n, 1)
        chosen_gold = np.take_along_axis(gold.reshape(blocks.shape), pick, -1)
        chosen_proxy = np.take_along_axis(proxy.reshape(blocks.shape), pick, -1)
        kl = kl_bon(n)
        rows.append({"n": n, "kl": kl, "d": math.sqrt(kl), "gold": float(chosen_gold.mean()),
                     "proxy": float(np.nanmean(chosen_proxy))})
    return rows


def _least_squares(columns: list[np.ndarray], y: np.ndarray) -> tuple[np.ndarray, float]:
    """Coefficients of y ~ Σ c_j columns_j (no intercept) and the fit's R² = 1 - SS_res/SS_tot."""
    X = np.stack(columns, 1)                                           # (m, k)
    coef = np.linalg.lstsq(X, y, rcond=None)[0]                        # (k,)
    ss_res = float(((y - X @ coef) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return coef, 1 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def fit_bon(d, r) -> dict:
    """R(d) = d (α - β d) = α d - β d² by least squares; d* = α / (2β) where β > 0.
    Points on R = 2d - 0.5 d² give α = 2, β = 0.5, d* = 2, R² = 1."""
    d, r = np.asarray(d, float), np.asarray(r, float)
    (alpha, neg_beta), r2 = _least_squares([d, -d ** 2], r)
    return {"alpha": float(alpha), "beta": float(neg_beta), "r2": r2,
            "d_peak": float(alpha / (2 * neg_beta)) if neg_beta > 0 else float("inf")}


def fit_rl(d, r) -> dict:
    """R(d) = d (α - β log d) = α d - β d log d by least squares, over d > 0; its peak, where
    dR/dd = α - β log d - β = 0, is d* = exp(α / β - 1) where β > 0.
    Points on R = d (1 - 0.5 log d) give α = 1, β = 0.5, d* = e."""
    d, r = np.asarray(d, float), np.asarray(r, float)
    d, r = d[d > 0], r[d > 0]
    (alpha, beta), r2 = _least_squares([d, -d * np.log(d)], r)
    peak = math.exp(min(alpha / beta - 1, 700)) if beta > 0 else float("inf")
    return {"alpha": float(alpha), "beta": float(beta), "r2": r2, "d_peak": peak}


def sample_scores(policy, tok, problems, reward: Reward, n_max: int, max_new_tokens: int,
                  seed: int, pool: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """n_max samples of each problem from `policy` at temperature 1 (evaluate.sample_texts),
    scored by `reward`'s preference model (the proxy: its raw score r) and its human (the gold:
    true utility). Returns proxy, gold (P, n_max). pool: a JSON file that keeps the samples, so
    that every preference model of one seed is scored on the same ones (drawn once)."""
    if pool and os.path.exists(pool):
        texts = read_json(pool)["texts"]
    else:
        texts = sample_texts(policy, tok, problems, n_max, max_new_tokens, seed,
                             desc="best-of-n samples")
        if pool:
            os.makedirs(os.path.dirname(pool), exist_ok=True)
            write_json(pool, {"seed": seed, "texts": texts})
    proxy, gold = [], []
    for p, row in zip(problems, texts):                                # scored a prompt at a time
        watched = reward([p] * n_max, row).watched
        proxy.append(watched["proxy"].numpy())
        gold.append(watched["gold"].numpy())
    return np.stack(proxy), np.stack(gold)


def best_of_n_run(out: str, policy_dir: str, rm_dir: str, configs: list, n_max: int,
                  n_prompts: int, seed: int, pool: str | None = None) -> list[dict]:
    """Best-of-n on the pretrained policy of policy_dir against the preference model of rm_dir,
    on the first n_prompts held-out in-distribution problems; writes out/bon.json and returns
    its rows (one per n = 1, 2, 4, ... n_max). Skipped when out/bon.json exists. pool: the
    samples' file, shared by every preference model of the seed (sample_scores)."""
    path = os.path.join(out, "bon.json")
    if os.path.exists(path):
        return read_json(path)["rows"]
    run, task, _, _, rcfg, prefcfg, _ = configs
    policy, tok, _ = load_model(policy_dir, "pretrain", "cpu")
    rm = load_reward_model(rm_dir, "cpu")[0]
    problems = make_splits(task).in_dist[:n_prompts]
    proxy, gold = sample_scores(policy.eval(), tok, problems, Reward(rcfg, tok, rm, "cpu",
                                                                     prefcfg.human),
                                n_max, run.max_new_tokens, seed, pool)
    ns = [2 ** i for i in range(int(math.log2(n_max)) + 1)]
    rows = best_of_n_curve(proxy, gold, ns)
    os.makedirs(out, exist_ok=True)
    write_json(path, {"n_max": n_max, "prompts": len(problems), "seed": seed, "rows": rows})
    return rows


def rl_points(curves: dict) -> tuple[np.ndarray, np.ndarray]:
    """One GRPO run's (d, R) from its grpo_log curves: d = √max(KL, 0) with KL the mean
    Σ_t log π/π_init per sample, R = gold - the gold at step 0 (before any update). With the
    held-out watch (--heldout_every) the gold is the held-out one, at the steps it was taken
    (the watch after the last step at the last step's KL); without it, the training batch's
    at every step, which is measured on the prompts the policy is being fitted to."""
    d = np.sqrt(np.clip(np.asarray(curves["kl_k1_seq"], float), 0, None))
    if "heldout/gold" in curves:
        d, gold = summary.at_watch(d, curves["heldout/gold"])
        return d, gold - gold[0]
    gold = np.asarray(curves["gold"], float)
    return d, gold - gold[0]


def markdown(bon: dict, arms: dict, mean_std) -> str:
    """The overopt tables: best-of-n's gold and proxy against d (mean ± std over seeds, as
    mean_std(values) writes it), and each fit's α, β, d*, R² (best-of-n over every seed's
    points, each RL arm over every step of every seed). bon: {seed: rows}; arms: {arm: {seed:
    {"curves": ...}}}."""
    seeds = list(bon)
    lines = ["## best-of-n on the pretrained policy, chosen by the preference model", "",
             "| n | KL (nats) | d | gold | proxy |", "|---|---|---|---|---|"]
    for i, row in enumerate(bon[seeds[0]]):
        lines.append(f"| {row['n']} | {row['kl']:.3f} | {row['d']:.3f} | "
                     f"{mean_std([bon[s][i]['gold'] for s in seeds])} | "
                     f"{mean_std([bon[s][i]['proxy'] for s in seeds])} |")
    d = np.array([r["d"] for s in seeds for r in bon[s]])
    r = np.array([r["gold"] - bon[s][0]["gold"] for s in seeds for r in bon[s]])
    fits = [("best-of-n: d (α - β d)", fit_bon(d, r))]
    for arm, by_seed in arms.items():
        pts = [rl_points(run["curves"]) for run in by_seed.values()]
        d, r = (np.concatenate(xs) for xs in zip(*pts))
        fits.append((f"GRPO {arm}: d (α - β log d)", fit_rl(d, r)))
    lines += ["", "## fits of R = gold - gold(π_init) (Gao et al., arXiv 2210.10760)", "",
              "| curve | α | β | d* | R² |", "|---|---|---|---|---|"]
    lines += [f"| {what} | {f['alpha']:.3f} | {f['beta']:.3f} | {f['d_peak']:.3g} | "
              f"{f['r2']:.3f} |" for what, f in fits]
    return "\n".join(lines) + "\n"


def plot(bon: dict, arms: dict, path: str) -> bool:
    """overopt.png: gold - gold(π_init) against d = √KL, best-of-n (mean over seeds) and each RL
    arm's steps (mean over seeds, by step). False when matplotlib is not installed."""
    plt = summary.pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(5, 3.5))
    rows = list(zip(*bon.values()))                                    # by n, then seed
    ax.plot([r[0]["d"] for r in rows], [np.mean([x["gold"] - b[0]["gold"] for x, b in
                                                  zip(r, bon.values())]) for r in rows],
            "o-", label="best-of-n")
    for arm, by_seed in arms.items():
        d, r = (np.nanmean(np.stack(xs), 0) for xs in zip(*(rl_points(run["curves"])
                                                            for run in by_seed.values())))
        ax.plot(d, r, ".-", markersize=3 if len(d) > 20 else 5, label=f"GRPO {arm}")
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.set_xlabel("distance from the start, d = √KL(π ‖ π_init), nats^½")
    ax.set_ylabel("gain in the human's true utility\n(gold − gold at the start)")
    held = all("heldout/gold" in run["curves"] for by_seed in arms.values()
               for run in by_seed.values())
    ax.set_title("held-out samples" + ("" if held else " (best-of-n), training batch (GRPO)"),
                 fontsize=9)
    ax.legend(fontsize=7)
    summary.save(fig, path)
    return True
