"""
The rm_quality experiment's table and figure: does a better preference model help before it
breaks, and does its held-out accuracy or its exploit probe say which?

For each arm (a labeller of one kind at one check rate, and the preference model its labels
train), over seeds:
  right above wrong   the model's held-out accuracy on right-vs-wrong pairs, judged against the
                      truth (preference_figures.heldout_figures: accuracy_correctness)
  exploit probe       what the human's favourite style adds to a wrong answer's score, and how
                      often it lifts a wrong answer above a plain right one (exploit_probe)
  best-of-n           the gold gained by keeping the best of n of the pretrained policy's samples
                      by this model's score: at its best n, and at the largest (overopt.py)
  GRPO                the held-out gold gained at its best watch and after the last step, with
                      the preference model alone as the reward (grpo_log.heldout_watch)
The figure: peak and final gold gain against right-above-wrong accuracy, one series per kind of
labeller, so that a reader sees whether a model that can see correctness helps before it breaks
(Gao et al., arXiv 2210.10760), and whether accuracy predicts it (Wen et al., arXiv 2410.05584;
Razin et al., arXiv 2503.15477).

What this deliberately is not: a fit of held-out accuracy to gold; a handful of models is too
few, and the table shows them all.
"""

import numpy as np

from lab import summary


def arm_setting(exp, arm: str) -> tuple[str, float, float]:
    """(kind of labeller, check rate, KL β) of an arm, from its overrides over the experiment's
    base (train.py's defaults where neither sets them: "style", 0.5, 0)."""
    knobs = {**exp.base, **exp.arms[arm]}
    return (knobs.get("rater_hurried", "style"), float(knobs.get("rater_check", 0.5)),
            float(knobs.get("kl_beta", 0.0)))


def gains(run: dict, bon_rows: list[dict]) -> dict[str, float]:
    """One arm and seed: best-of-n's gold gain at its best n and at the largest, and GRPO's
    held-out gold gain at its best watch and after the last step (NaN without the watch).
    gains({"curves": {"heldout/gold": [3, None, 4, 3.5]}}, [{"gold": 3}, {"gold": 3.5}])
    -> bon_peak 0.5, bon_last 0.5, rl_peak 1.0, rl_final 0.5"""
    gold = np.array([r["gold"] for r in bon_rows], float)
    held = np.array(run["curves"].get("heldout/gold", [np.nan]), float)
    held = held[~np.isnan(held)] if (~np.isnan(held)).any() else np.array([np.nan])
    return {"bon_peak": float(gold.max() - gold[0]), "bon_last": float(gold[-1] - gold[0]),
            "rl_peak": float(held.max() - held[0]), "rl_final": float(held[-1] - held[0])}


def rows(results: dict, bon: dict, exp) -> list[dict]:
    """One row per arm: its setting, and each figure as a list over seeds."""
    out = []
    for arm, by_seed in results.items():
        kind, check, beta = arm_setting(exp, arm)
        row = {"arm": arm, "kind": kind, "check": check, "beta": beta}
        for seed, run in by_seed.items():
            figures = {**{k: run["reward_model"].get(k, np.nan) for k in
                          ("accuracy_correctness", "label_agreement_correctness", "style_lift",
                           "dressed_beats_right")},
                       **gains(run, bon[arm][seed]), "pass@1": run["final"]["pass@1"]}
            for k, v in figures.items():
                row.setdefault(k, []).append(v)
        out.append(row)
    return out


COLUMNS = [("label_agreement_correctness", "labels: right above wrong"),
           ("accuracy_correctness", "model: right above wrong"),
           ("style_lift", "style lift"), ("dressed_beats_right", "dressed wrong beats right"),
           ("bon_peak", "best-of-n: peak gold gain"), ("bon_last", "at n = 64"),
           ("rl_peak", "GRPO: peak gold gain"), ("rl_final", "final"),
           ("pass@1", "pass@1 after GRPO")]


def markdown(results: dict, bon: dict, exp) -> str:
    """The table: one row per arm, mean ± std over seeds (summary.mean_std)."""
    lines = ["## what each preference model knows, and what optimising it does", "",
             "| arm | labeller | check | " + " | ".join(t for _, t in COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 3) + "|"]
    for r in rows(results, bon, exp):
        cells = [summary.mean_std(r[k]) for k, _ in COLUMNS]
        lines.append(f"| {r['arm']} | {r['kind']} | {r['check']:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(results: dict, bon: dict, exp, path: str) -> bool:
    """rm_quality.png: gold gain against the model's right-above-wrong accuracy; best-of-n's peak,
    GRPO's peak and GRPO's final, one series per kind of labeller at β = 0 (a labeller who
    always checks ends both), the arms with a KL penalty as stars (mean over seeds)."""
    plt = summary.pyplot()
    if plt is None:
        return False
    table = rows(results, bon, exp)
    panels = [("bon_peak", "best-of-n: peak gold gain"), ("rl_peak", "GRPO: peak gold gain"),
              ("rl_final", "GRPO: gold gain after 100 steps")]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.8 * len(panels), 3.4), sharey=True)
    for ax, (key, title) in zip(axes, panels):
        for kind, marker in (("style", "o"), ("coin", "s")):
            mine = sorted((np.mean(r["accuracy_correctness"]), np.mean(r[key]), r["check"])
                          for r in table if r["beta"] == 0
                          and (r["kind"] == kind or r["check"] == 1.0))
            if mine:
                x, y, checks = zip(*mine)
                ax.plot(x, y, marker=marker, linestyle="-", label=f"labeller in a hurry: {kind}")
                for xi, yi, q in zip(x, y, checks):
                    ax.annotate(f"q={q:g}", (xi, yi), fontsize=7, xytext=(3, 3),
                                textcoords="offset points")
        for r in (r for r in table if r["beta"] > 0):
            ax.plot(np.mean(r["accuracy_correctness"]), np.mean(r[key]), "*", markersize=9,
                    label=f"q={r['check']:g}, KL β = {r['beta']:g}")
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("preference model: right above wrong\n(held-out pairs)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("gain in the human's true utility")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8,
               frameon=False)
    summary.save(fig, path, rect=(0, 0.08, 1, 1))
    return True
