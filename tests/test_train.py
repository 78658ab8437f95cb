"""Smoke test of the entry script: `python train.py --preset smoke` end to end, in a subprocess.

The keys checked are the report.json shape the README documents, so scripts can read any run."""

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
    assert {"greedy", "sampled"} <= set(report["imitation_ceiling"])
    metrics = {"greedy_accuracy", "pass@1", "pass@k", "k", "format_rate", "gold_score",
               "pref_score", "misconception_rate", "wrong_unit_rate", "mean_length"}
    for model in ("pretrained", "rl"):
        for name in ("in_dist", "harder"):
            assert metrics <= set(report["eval"][model][name]), (model, name)
    assert {"pretrain", "reward_model", "grpo", "eval", "total"} <= set(report["time_s"])
    for name in ("pretrain.pt", "reward.pt", "reward.json", "rl.pt", "rl.json", "grpo_log.jsonl",
                 "tokenizer.tiktoken", "config.json"):
        assert (out / name).exists(), name

    # sample.py reads the same run directory and shows every reward term
    question = "Ann has 52 apples. She gives 17 to Tom. How many apples does Ann have now?"
    proc = subprocess.run([sys.executable, "sample.py", str(out), question, "--n", "2",
                           "--max_new_tokens", "16"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "model rl" in proc.stdout and "true answer 35" in proc.stdout
    assert proc.stdout.count("reward: correct") == 2 and "pref" in proc.stdout


def test_bad_input_is_one_line_and_overwrites_nothing(tmp_path):
    """An unknown key, a bad value and a missing checkpoint: one line on stderr, exit 1."""
    for args, message in [(["--n_layers", "6"], "unknown config key --n_layers"),
                          (["--lr", "fast"], "--lr expects float"),
                          (["--stages", "eval", "--out", str(tmp_path / "empty")],
                           "checkpoint file not found")]:
        proc = subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 1 and message in proc.stderr
        assert proc.stderr.strip().count("\n") == 0, proc.stderr


def test_solve_reads_the_corpus_wording():
    from data.problems import TaskConfig, make_splits
    from sample import solve
    for problem in make_splits(TaskConfig(n_train=1, n_eval=50, ops="+-*")).in_dist:
        assert solve(problem.question) == problem.answer
    assert solve("What is the capital of France?") is None
