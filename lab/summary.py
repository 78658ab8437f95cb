"""
An experiment's results: read from its runs, summarised over seeds, drawn.

    collect(arm_runs)  -> {arm: {seed: final and pretrained figures, per-step curves, ...}}
    markdown(...)      -> results.md: one row per arm, mean ± std over seeds
    plot(...)          -> curves.png: each curve over GRPO steps, one line per arm

What this is deliberately not: a statistics package. The spread is the sample std over seeds
(numpy), with no test of significance: with 3 seeds, read a gap smaller than the stds as none.
experiments.py runs the arms; overopt.py and passk.py add their own tables beside these.
"""

import json
import os

import warnings

import numpy as np


def collect(arm_runs: list[tuple]) -> dict:
    """{arm: {seed: {"final": {...}, "pretrained": {...}, "pretrain": its directory,
    "reward_model": {...}, "curves": {key: [...]}}}}: final and pretrained are every held-out
    in-distribution figure of report.json, after and before RL (and, with requests for a note,
    every figure on them as "general/<figure>"); final_harder and
    pretrained_harder the same on the harder held-out set."""
    results: dict = {}
    for arm, seed, run in arm_runs:
        report = json.load(open(os.path.join(run.out, "report.json")))
        rm_report = json.load(open(os.path.join(run.out, "reward.json")))
        rows = [json.loads(line) for line in open(os.path.join(run.out, "grpo_log.jsonl"))]
        curves = {k: [r.get(k) for r in rows] for k, v in rows[0].items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "step"}
        for k, v in report["grpo"].get("heldout_final", {}).items():    # the held-out watch
            curves[k] = curves[k] + [v]                                  # after the last step
        ev = report["eval"]
        results.setdefault(arm, {})[str(seed)] = {
            "final": {**ev["rl"]["in_dist"], **prefixed(ev["rl"].get("general", {}))},
            "pretrained": {**ev["pretrained"]["in_dist"],
                           **prefixed(ev["pretrained"].get("general", {}))},
            "final_harder": report["eval"]["rl"]["harder"],
            "pretrained_harder": report["eval"]["pretrained"]["harder"],
            "pretrain": dict(run.inputs)["pretrain.pt"],
            "reward_model": rm_report.get("figures", {}), "curves": curves}
        harm_json = os.path.join(run.out, "harm.json")                  # harmlessness.py
        if os.path.exists(harm_json):
            results[arm][str(seed)]["harm_model"] = json.load(open(harm_json))["figures"]
    return results


def prefixed(figures: dict) -> dict:
    """The held-out requests' figures, keyed apart: {"pass@1": 0.8} -> {"general/pass@1": 0.8}."""
    return {f"general/{k}": v for k, v in figures.items()}


def at_watch(xs, watched) -> tuple[np.ndarray, np.ndarray]:
    """A per-step curve xs (one entry a step) at the points a cadence curve was logged (the
    held-out watch: NaN between its steps, and one entry more, after the last step, which takes
    the last step's x). at_watch([10, 12], [0.5, None, 0.7]) -> ([10, 12], [0.5, 0.7])"""
    ys = np.asarray(watched, float)
    xs = np.append(np.asarray(xs, float), float(xs[-1]))[:len(ys)]
    seen = ~np.isnan(ys)
    return xs[seen], ys[seen]


def last10(ys: list) -> float:
    """The mean of a curve's last 10 entries, NaN (and no warning) when none was logged; for a
    curve logged at a cadence that is its last point. last10([1.0] + [None] * 9 + [3.0]) -> 3.0"""
    tail = np.array(ys[-10:], dtype=float)
    return float(np.nanmean(tail)) if (~np.isnan(tail)).any() else float("nan")


def mean_std(xs: list[float]) -> str:
    """'0.512 ± 0.031' (sample std, n - 1), or just the value with one seed."""
    a = np.asarray(xs, dtype=float)
    return f"{a.mean():.3f}" if len(a) < 2 else f"{a.mean():.3f} ± {a.std(ddof=1):.3f}"


def markdown(title: str, columns: tuple, curves: tuple, results: dict, seeds: int) -> str:
    """results.md: one row per arm, mean ± std over seeds of `columns` (held-out figures of the
    RL model) and of the mean over the last 10 GRPO steps of each of `curves`; above them a row
    for the pretrained policy the arms start from (one per distinct pretraining)."""
    cols = list(columns) + [f"{k} (last 10)" for k in curves]
    lines = [f"# {title}", "", f"{seeds} seed(s); held-out in-distribution figures.", "",
             "| arm | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    starts: list = []                                # the distinct pretrainings, in arm order
    for arm, by_seed in results.items():
        runs = list(by_seed.values())
        start = sorted(r["pretrain"] for r in runs)
        if start not in starts:
            label = "pretrained" if not starts else f"pretrained ({arm})"
            starts.append(start)
            cells = [mean_std([r["pretrained"][k] for r in runs]) for k in columns]
            lines.append(f"| {label} | " + " | ".join(cells + ["-"] * len(curves)) + " |")
    for arm, by_seed in results.items():
        runs = list(by_seed.values())
        cells = [mean_std([r["final"][k] for r in runs]) for k in columns]
        for k in curves:
            cells.append(mean_std([last10(r["curves"][k]) for r in runs]))
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend, or None when matplotlib (an optional
    extra, `pip install -e ".[plot]"`) is not installed. Every plot of the experiments uses it."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save(fig, path: str, rect=None) -> None:
    """Write a figure small enough to commit (80 dpi) and free it; rect: the share of the
    figure the panels fill (the rest is left for a legend)."""
    import matplotlib.pyplot as plt
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=80)
    plt.close(fig)


# what each logged column is, in words, for a plot's titles (the log's own name in brackets)
CURVE_TITLES = {
    "accuracy": "accuracy on the training batch",
    "gold": "human's true utility (gold),\ntraining batch",
    "proxy": "preference model's score (proxy),\ntraining batch",
    "kl_k1_seq": "KL from the initial policy,\nnats per completion",
    "len_right": "length of right completions,\ntokens (training batch)",
    "len_wrong": "length of wrong completions,\ntokens (training batch)",
    "entropy": "entropy per token, nats\n(training batch)",
    "phrase_answer": "the phrase inside <answer>,\nshare of the training batch",
    "phrase_think": "the phrase inside <think>,\nshare of the training batch",
    "r/pref": "preference term σ(r − r_ref),\ntraining batch",
    "grad_norm": "gradient norm before clipping",
    "drawn_accuracy": "accuracy of every completion drawn\n(before oversampling's choice)",
    "reward_agreement": "reward ranks right above wrong,\ntraining batch (1 − p if flipped)",
    "rank_agreement": "preference model ranks right above\nwrong, training batch",
    "heldout/accuracy": "accuracy on 32 held-out problems,\n8 samples each",
    "heldout/gold": "human's true utility (gold),\n32 held-out problems",
    "heldout_general/gold": "human's true utility of a note,\n32 held-out requests",
    "harm_gold": "harmful responses (the human's rule),\ntraining batch",
    "harm_missed": "harmful, missed by the learned model,\ntraining batch",
    "heldout/proxy": "preference model's score (proxy),\n32 held-out problems",
    "heldout/rank_agreement": "preference model ranks right above\nwrong, held-out samples",
    "labels": "human labels spent",
}


def smooth(ys: np.ndarray, window: int = 10) -> np.ndarray:
    """Centred moving average that shrinks at the ends, so no point moves along the x axis:
    out[t] = mean of ys[t - w // 2 : t + w - w // 2] within bounds (NaNs ignored).
    smooth([0, 10, 20, 30], 2) -> [0, 5, 15, 25]"""
    ys = np.asarray(ys, dtype=float)
    lo = [max(0, t - window // 2) for t in range(len(ys))]
    return np.array([np.nanmean(ys[a:t + window - window // 2]) for t, a in enumerate(lo)])


def plot(results: dict, curves: tuple, path: str) -> bool:
    """curves.png: each of `curves` over GRPO steps, one line per arm (mean over seeds, centred
    10-step moving average; a curve logged at a cadence, like the held-out watch, is drawn as
    its points, joined). False when matplotlib is not installed."""
    plt = pyplot()
    if plt is None:
        return False
    fig, axes = plt.subplots(1, len(curves), figsize=(3.6 * len(curves), 3.4))
    for ax, k in zip(axes, curves):
        for arm, by_seed in results.items():
            with warnings.catch_warnings():                          # a step no seed logged
                warnings.simplefilter("ignore", RuntimeWarning)      # is NaN, and says so
                ys = np.nanmean(np.array([r["curves"][k] for r in by_seed.values()],
                                         dtype=float), 0)
            steps, seen = np.arange(len(ys)), ~np.isnan(ys)
            if seen.sum() < len(ys) / 2:                             # logged at a cadence
                ax.plot(steps[seen], ys[seen], marker="o", markersize=3, label=arm)
            else:
                ax.plot(steps, smooth(ys), label=arm)
        ax.set_title(CURVE_TITLES.get(k, k), fontsize=9)
        ax.set_xlabel("GRPO step")
        ax.grid(alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center",
               ncol=min(len(results), 6), fontsize=8, frameon=False)
    save(fig, path, rect=(0, 0.1, 1, 1))                        # room for the legend below
    return True
