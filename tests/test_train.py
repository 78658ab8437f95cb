"""Smoke test of the entry script: `python train.py --preset smoke` end to end, in a subprocess."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_smoke_run_writes_every_stage_into_the_report(tmp_path):
    out = tmp_path / "smoke"
    proc = subprocess.run([sys.executable, "train.py", "--preset", "smoke", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.load(open(out / "report.json"))
    assert {"params", "val_loss", "train_loss"} <= set(report["pretrain"])
    assert {"heldout_accuracy", "agreement_ceiling", "gold_agreement", "pairs",
            "init"} <= set(report["reward_model"])
    for name in ("in_dist", "harder"):
        assert {"greedy_accuracy", "pass@1", "gold_score", "pref_score"} <= set(
            report["eval"]["pretrained"][name])
    assert {"pretrain", "reward_model", "eval", "total"} <= set(report["time_s"])
    for name in ("pretrain.pt", "reward.pt", "reward.json", "tokenizer.tiktoken", "config.json"):
        assert (out / name).exists(), name
