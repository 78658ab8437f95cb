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

import numpy as np


def collect(arm_runs: list[tuple]) -> dict:
    """{arm: {seed: {"final": {...}, "pretrained": {...}, "pretrain": its directory,
    "reward_model": {...}, "curves": {key: [...]}}}}: final and pretrained are every held-out
    in-distribution figure of report.json, after and before RL; final_harder and
    pretrained_harder the same on the harder held-out set."""
    results: dict = {}
    for arm, seed, run in arm_runs:
        report = json.load(open(os.path.join(run.out, "report.json")))
        rm_report = json.load(open(os.path.join(run.out, "reward.json")))
        rows = [json.loads(line) for line in open(os.path.join(run.out, "grpo_log.jsonl"))]
        curves = {k: [r.get(k) for r in rows] for k in rows[0] if isinstance(rows[0][k], float)}
        results.setdefault(arm, {})[str(seed)] = {
            "final": report["eval"]["rl"]["in_dist"],
            "pretrained": report["eval"]["pretrained"]["in_dist"],
            "final_harder": report["eval"]["rl"]["harder"],
            "pretrained_harder": report["eval"]["pretrained"]["harder"],
            "pretrain": dict(run.inputs)["pretrain.pt"],
            "reward_model": rm_report.get("figures", {}), "curves": curves}
    return results


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
            cells.append(mean_std([float(np.nanmean(np.array(r["curves"][k][-10:], dtype=float)))
                                   for r in runs]))
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


def save(fig, path: str) -> None:
    """Write a figure small enough to commit (80 dpi) and free it."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot(results: dict, curves: tuple, path: str) -> bool:
    """curves.png: each of `curves` over steps, one line per arm (mean over seeds, 10-step
    moving average). False when matplotlib is not installed."""
    plt = pyplot()
    if plt is None:
        return False
    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.2))
    for ax, k in zip(axes, curves):
        for arm, by_seed in results.items():
            ys = np.nanmean(np.array([r["curves"][k] for r in by_seed.values()], dtype=float), 0)
            smooth = np.convolve(ys, np.ones(10) / 10, mode="valid") if len(ys) >= 10 else ys
            ax.plot(smooth, label=arm)
        ax.set_title(k)
        ax.set_xlabel("GRPO step")
    axes[0].legend(fontsize=7)
    save(fig, path)
    return True
