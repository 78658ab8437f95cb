"""
GRPO runs over their steps: windowed means of grpo_log.jsonl as Markdown tables.

    python -m lab.curves out/cpu                                 # one run, the default columns
    python -m lab.curves out/a out/b --keys accuracy,gold,proxy --every 25 --window 10

For each run directory, one table: a row every `every` steps (and the last step), each cell the
mean of a logged figure over the `window` steps that start there (NaN steps, e.g. a step with no
wrong sample for pref_wrong, are left out of the mean). docs/results.md's curves come from here.
Every key of grpo_log.jsonl can be asked for; the default columns are the ones that say whether
the policy learned what the human wanted: accuracy (the verifier), gold (the human's true
utility), proxy (the preference model's raw score), rank_agreement (the preference model ranks
the verifier's right samples above its wrong ones), pref_wrong (the preference score of wrong
samples) and kl_k1_seq (the KL from the initial policy, nats per sample).

What this deliberately is not: a plotting tool (the experiments runner draws the PNGs) or a
statistics package: one run, one seed, means only.
"""

import json
import math
import os
import sys
from dataclasses import dataclass

import config

DEFAULT_KEYS = "accuracy,gold,proxy,rank_agreement,pref_wrong,kl_k1_seq"


@dataclass
class CurvesConfig:
    """Which figures of which steps."""
    keys: str = DEFAULT_KEYS    # comma-separated keys of grpo_log.jsonl
    every: int = 25             # a row every N steps
    window: int = 10            # each cell: the mean over this many steps from the row's step

    def __post_init__(self):
        if self.every < 1 or self.window < 1:
            raise ValueError("--every and --window must be >= 1")


def window_means(rows: list[dict], key: str, every: int, window: int) -> list[tuple[int, float]]:
    """(first step, mean of `key` over rows[s:s + window]) for s = 0, every, 2 every, ... and a
    last window ending at the last step; NaN values are left out, NaN if nothing is left.
    window_means([{"step": 0, "a": 1}, {"step": 1, "a": 3}, {"step": 2, "a": 5}], "a", 2, 2)
    -> [(0, 2.0), (2, 5.0)]"""
    starts = list(range(0, len(rows), every))
    if rows and starts[-1] + window < len(rows):
        starts.append(len(rows) - window)                 # the run's last `window` steps
    out = []
    for s in starts:
        xs = [r[key] for r in rows[s:s + window] if key in r and not math.isnan(r[key])]
        out.append((rows[s]["step"], sum(xs) / len(xs) if xs else math.nan))
    return out


def table(rows: list[dict], keys: list[str], every: int, window: int) -> str:
    """One run's Markdown table: a row per window, a column per key."""
    cols = [window_means(rows, k, every, window) for k in keys]
    lines = ["| steps | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for i, (step, _) in enumerate(cols[0]):
        cells = [f"{col[i][1]:.3f}" for col in cols]
        lines.append(f"| {step}-{step + window - 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__ + "\n" + config.help_text([CurvesConfig()]))
        return
    n_runs = next((i for i, a in enumerate(argv) if a.startswith("--")), len(argv))
    runs, flags = argv[:n_runs], argv[n_runs:]
    if not runs:
        raise config.ConfigError("usage: python -m lab.curves RUN_DIR [RUN_DIR ...] [--key value ...]")
    (cfg,) = config.apply([CurvesConfig()], config.parse_pairs(flags))
    keys = cfg.keys.split(",")
    for run in runs:
        path = os.path.join(run, "grpo_log.jsonl")
        if not os.path.exists(path):
            raise FileNotFoundError(f"no GRPO log in {run}: {path} not found")
        rows = [json.loads(line) for line in open(path)]
        missing = [k for k in keys if rows and k not in rows[0]]
        if missing:
            raise config.ConfigError(f"{path} has no key {missing[0]!r}")
        print(f"### {run} ({len(rows)} steps, means over {cfg.window} steps)\n")
        print(table(rows, keys, cfg.every, cfg.window) + "\n")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (config.ConfigError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
