"""
Does RL lift every seed? The seeds experiment's per-seed table: for each arm and seed, the
teacher's imitation ceiling, greedy accuracy and pass@1 before and after RL, and how the
training batch's accuracy moved in the first steps.

    start    = the pretrained policy's pass@1 on the held-out set (the same distribution of
               problems as the training batch, and no update has touched it)
    the fall = start - the lowest 10-step window of training accuracy (steps 0-9, 10-19, ...)

A loop whose first steps are too large shows a fall of 5-30 points and a jump of the KL from
the initial policy in steps 10-19; one that lifts every seed shows neither.
With --oversample the training batch keeps the groups with signal, so its accuracy is biased
towards one half: the fall is read from every completion drawn (`drawn_accuracy`).

The spread of the gains is read beside the spread of the starts: a loop that took every seed
to the same accuracy would show the starts' spread in its gains.

What this deliberately is not: a test of significance. Five seeds give a mean and a spread.
"""

import json
import os

import numpy as np


def seed_row(run: dict) -> dict:
    """One seed's figures from summary.collect's entry (and its pretraining's report.json)."""
    curves = run["curves"]
    acc = np.asarray(curves.get("drawn_accuracy", curves["accuracy"]), dtype=float)
    windows = [acc[i:i + 10].mean() for i in range(0, len(acc) - 9, 10)]    # steps 0-9, ...
    pre_report = os.path.join(run["pretrain"], "report.json")
    ceiling = (json.load(open(pre_report))["imitation_ceiling"]["greedy"]
               if os.path.exists(pre_report) else float("nan"))
    kl = curves.get("kl_k1_seq")
    return {"ceiling": ceiling,
            "greedy": (run["pretrained"]["greedy_accuracy"], run["final"]["greedy_accuracy"]),
            "pass1": (run["pretrained"]["pass@1"], run["final"]["pass@1"]),
            "start": run["pretrained"]["pass@1"],
            "fall": run["pretrained"]["pass@1"] - min(windows, default=np.nan),
            "kl_10_19": float(np.mean(kl[10:20])) if kl and len(kl) >= 20 else float("nan")}


def markdown(results: dict) -> str:
    """Per arm: a row per seed, then the mean and sample std of the gain in pass@1."""
    lines = ["## Per seed", ""]
    for arm, by_seed in results.items():
        lines += [f"### {arm}", "",
                  "| seed | ceiling (greedy) | greedy before → after | pass@1 before → after "
                  "| gain | lowest 10 steps of training accuracy | fall below pass@1 before "
                  "| KL 10-19 |", "|---" * 8 + "|"]
        gains, falls, before, after = [], [], [], []
        for seed, run in by_seed.items():
            r = seed_row(run)
            gain = 100 * (r["pass1"][1] - r["pass1"][0])
            gains.append(gain)
            before.append(100 * r["pass1"][0])
            after.append(100 * r["pass1"][1])
            falls.append(100 * r["fall"])
            lines.append(f"| {seed} | {r['ceiling']:.3f} | {r['greedy'][0]:.3f} → "
                         f"{r['greedy'][1]:.3f} | {r['pass1'][0]:.3f} → {r['pass1'][1]:.3f} | "
                         f"{gain:+.1f} | {r['start'] - r['fall']:.3f} | {100 * r['fall']:+.1f} | "
                         f"{r['kl_10_19']:.2f} |")
        sd = lambda xs: np.std(xs, ddof=1) if len(xs) > 1 else float("nan")  # noqa: E731
        lines += ["", f"gain in pass@1: {np.mean(gains):+.1f} ± {sd(gains):.1f} points (mean ± "
                      f"sample std), the smallest {min(gains):+.1f}; pass@1 before "
                      f"{np.mean(before):.1f} ± {sd(before):.1f}, after {np.mean(after):.1f} ± "
                      f"{sd(after):.1f}; largest fall of training accuracy below the pretrained "
                      f"pass@1: {max(falls):+.1f} points", ""]
    return "\n".join(lines)
