"""Data parallelism: `torchrun --nproc_per_node=2 train.py` on CPU (gloo) against one process.

Both runs see the same global batches: pretraining splits each batch of documents between the
ranks, GRPO gives each rank half of the step's prompts with all their samples, and the sampling
noise is drawn for the global batch on every rank (model._sample). So the two loss trajectories
must agree to float rounding (reductions over differently shaped batches), step by step."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the untrained smoke model finishes about a quarter of its completions within 48 tokens: those
# score 0 and the truncated ones the floor, -w_harm, so GRPO steps have advantages and a loss
ARGS = ["--preset", "smoke", "--stages", "pretrain,reward,grpo", "--rl_steps", "4"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}     # 2 processes on 2 cores, as in one process


def why(proc) -> str:
    """The lines of a failed run's stderr that say why (not the progress bars), then its tail."""
    lines = proc.stderr.replace("\r", "\n").splitlines()
    said = [x for x in lines if any(w in x for w in ("rror", "terminate", "what()", "xitcode"))]
    return "\n".join(said[:20]) + "\n...\n" + proc.stderr[-1000:]


def read_log(path) -> list[dict]:
    return [json.loads(line) for line in open(path)]


@pytest.mark.parametrize("extra", [["--oversample", "1"], ["--oversample", "2"]],
                         ids=["plain", "oversampled"])
def test_two_processes_follow_the_one_process_loss_trajectory(tmp_path, extra):
    """Oversampled, the ranks gather every drawn group and keep the ones one process keeps."""
    one, two = tmp_path / "one", tmp_path / "two"
    proc = subprocess.run([sys.executable, "train.py", *ARGS, *extra, "--out", str(one)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=ENV)
    assert proc.returncode == 0, why(proc)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node=2", "train.py", *ARGS, *extra, "--out", str(two)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=ENV)
    assert proc.returncode == 0, why(proc)
    assert "2 process(es)" in proc.stdout and proc.stdout.count("pretrain |") == 1  # rank 0 prints

    pre1, pre2 = read_log(one / "pretrain_log.jsonl"), read_log(two / "pretrain_log.jsonl")
    assert len(pre1) == len(pre2) == 12
    for a, b in zip(pre1, pre2):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5), a["step"]
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4), a["step"]
    rl1, rl2 = read_log(one / "grpo_log.jsonl"), read_log(two / "grpo_log.jsonl")
    assert len(rl1) == len(rl2) == 4
    assert all(row["loss"] != 0 for row in rl1)                  # there is something to compare
    for a, b in zip(rl1, rl2):
        for key in ("loss", "reward", "r/pref", "entropy", "grad_norm", "accuracy",
                    "drawn_accuracy"):
            assert a[key] == pytest.approx(b[key], rel=1e-3, abs=1e-6), (a["step"], key)
    # rank 0 alone wrote the run directory: the same files as one process
    assert sorted(os.listdir(one)) == sorted(os.listdir(two))
