"""
The online experiment's table and figure: what human labels buy. Held-out accuracy against the
human labels spent, one curve per arm, and the verifier's accuracy as a line at no labels.

Each arm's curve is its held-out watch (grpo_log.heldout_watch, every --heldout_every steps and
after the last) against its `labels` column: the reward stage's pairs, plus every pair labelled
on the policy's samples so far (online.py). An offline preference model spends all its labels
before RL starts, so its curve is a vertical line; an online one moves right as it trains.

What this deliberately is not: a cost model in money or hours (a label is a label; Bai et al.,
arXiv 2204.05862, and Touvron et al., arXiv 2307.09288, report theirs in comparisons too).
"""

import numpy as np

from lab import summary


def points(run: dict) -> tuple[np.ndarray, np.ndarray]:
    """One run's (labels spent, held-out accuracy) at the watch's steps; the watch after the
    last step at the last step's labels. points({"curves": {"labels": [10, 12],
    "heldout/accuracy": [0.5, None, 0.7]}}) -> ([10, 12], [0.5, 0.7])"""
    return summary.at_watch(run["curves"]["labels"], run["curves"].get("heldout/accuracy", []))


def markdown(results: dict) -> str:
    """Labels spent and held-out accuracy at the start, at its best and at the end (mean ± std
    over seeds)."""
    lines = ["## what the labels bought", "",
             "| arm | human labels spent | held-out accuracy: start | best | end |",
             "|---|---|---|---|---|"]
    for arm, by_seed in results.items():
        pts = [points(run) for run in by_seed.values()]
        cells = [summary.mean_std([float(x[-1]) for x, _ in pts]),
                 summary.mean_std([float(y[0]) for _, y in pts]),
                 summary.mean_std([float(y.max()) for _, y in pts]),
                 summary.mean_std([float(y[-1]) for _, y in pts])]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: str) -> bool:
    """label_cost.png: held-out accuracy against human labels spent, one curve per arm (mean
    over seeds, point by point); an arm that spends none is a horizontal line across."""
    plt = summary.pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    free, right = [], 1
    for arm, by_seed in results.items():
        pts = [points(run) for run in by_seed.values()]
        x, y = np.mean([p[0] for p in pts], 0), np.mean([p[1] for p in pts], 0)
        if x.max() == 0:
            free.append((arm, y[-1]))
        else:
            ax.plot(x, y, "o-", markersize=3, label=arm)
            right = max(right, x.max())
    for arm, y in free:
        ax.axhline(y, linestyle="--", linewidth=1, color="black", label=f"{arm} (no labels)")
    ax.set_xlim(0, right * 1.05)
    ax.set_xlabel("human labels spent")
    ax.set_ylabel("held-out accuracy (watch)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    summary.save(fig, path)
    return True
