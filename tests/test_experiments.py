"""experiments.py: the plan of runs and its caches, the statistics by hand, and one quick run of
two arms end to end (then again: nothing is run twice)."""

import json
import os
import subprocess
import sys

import pytest

import config
import experiments

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_plan_shares_pretraining_and_preference_models():
    """6 arms x 2 seeds: one pretraining per seed, one preference model per scope and seed
    (pref_response reads the whole response), 12 arm runs, each copying both."""
    cfg = experiments.ExperimentConfig(seeds=2, quick=True, out="o")
    pre, rms, arms = experiments.plan("reward", cfg)
    assert len(pre) == 2 and len(rms) == 4 and len(arms) == 12
    assert {seed for _, seed, _ in arms} == {1337, 1338}
    by_arm = {(a, s): r for a, s, r in arms}
    inputs = lambda r: dict(r.inputs)                                       # noqa: E731
    assert inputs(by_arm["verifier", 1337])["reward.pt"] == \
        inputs(by_arm["pref_answer", 1337])["reward.pt"]                    # the same scope
    assert inputs(by_arm["pref_answer", 1337])["reward.pt"] != \
        inputs(by_arm["pref_response", 1337])["reward.pt"]
    assert inputs(by_arm["pref_response", 1337])["pretrain.pt"] == \
        inputs(by_arm["verifier", 1337])["pretrain.pt"] != inputs(by_arm["verifier", 1338])[
            "pretrain.pt"]
    flags = dict(by_arm["pref_response", 1338].flags)
    assert (flags["w_correct"], flags["w_pref"], flags["pref_scope"], flags["seed"],
            flags["stages"]) == ("0.0", "1.0", "response", "1338", "grpo,eval")
    with pytest.raises(config.ConfigError, match="no arm 'nope'"):
        experiments.plan("reward", experiments.ExperimentConfig(arms="verifier,nope"))


def test_mean_and_std_by_hand():
    assert experiments.mean_std([1.0, 2.0, 3.0]) == "2.000 ± 1.000"      # sample std, n - 1
    assert experiments.mean_std([0.25]) == "0.250"


def test_a_quick_experiment_runs_and_continues_without_running_again(tmp_path):
    out = tmp_path / "exp"
    cmd = [sys.executable, "experiments.py", "reward", "--quick", "--arms",
           "verifier,pref_answer", "--jobs", "2", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.load(open(out / "reward" / "results.json"))
    assert set(results["arms"]) == {"verifier", "pref_answer"}
    run = results["arms"]["pref_answer"]["1337"]
    assert len(run["curves"]["gold"]) == 3 and "accuracy_correctness" in run["reward_model"]
    table = (out / "reward" / "results.md").read_text()
    assert "| verifier |" in table and "| pref_answer |" in table
    logs = sorted(out.glob("**/train.log"))
    assert len(logs) == 4                             # 1 pretraining, 1 preference model, 2 arms
    before = [p.stat().st_mtime_ns for p in logs]
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [p.stat().st_mtime_ns for p in logs] == before    # finished runs are not run again
