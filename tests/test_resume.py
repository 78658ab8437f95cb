"""Reliability of train.py: determinism, resume after SIGKILL, and non-finite updates.

Subprocess runs of the smoke preset, made a little longer than the preset (40 pretraining steps,
6 GRPO steps, states saved often) so a kill lands in the middle of a stage, with dropout on so
that torch's global generator matters too, and every stream the GRPO stage carries. Every figure of
report.json must then equal an uninterrupted run's, timings aside: on CPU the run is
deterministic, and the state file holds everything the loops need to continue."""

import json
import os
import random
import signal
import subprocess
import sys

import pytest
import torch

import train
from checkpoint import (load_optimizer, load_state, rng_state, save_model, save_state,
                        set_rng_state)
from data.problems import TaskConfig, make_splits
from data.tokenizer import Tokenizer, train_bpe
from guard import NonFiniteError, SkipNonFinite
from model import GPT, GPTConfig
from bradley_terry import PreferenceConfig, train_reward_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LONGER = ["--preset", "smoke", "--pretrain_steps", "40", "--ckpt_every", "5", "--dropout", "0.1",
          "--rl_steps", "6", "--rl_ckpt_every", "2", "--rl_eval_every", "3",
          # every random stream and state the GRPO stage carries: fresh verifier flips, online
          # labels (the preference model, its optimiser, the labels), the held-out watch
          "--flip", "0.2", "--rm_online_every", "3", "--heldout_every", "2"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def without_timings(obj):
    """report.json minus its timings: every key ending in _s (time_s, tokens_per_s, ...)."""
    if isinstance(obj, dict):
        return {k: without_timings(v) for k, v in obj.items() if not k.endswith("_s")}
    return obj


def read_report(out) -> str:
    return json.dumps(without_timings(json.load(open(out / "report.json"))), sort_keys=True)


def read_log(path) -> list[dict]:
    return [without_timings(json.loads(line)) for line in open(path)]


def train_py(*args, timeout=300):
    proc = subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def kill_when(args, trigger: str) -> None:
    """Start train.py, SIGKILL it as soon as a stdout line starts with `trigger`."""
    proc = subprocess.Popen([sys.executable, "train.py", *args], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stdout:
            if line.startswith(trigger):
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=300)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before {trigger!r}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    train_py(*LONGER, "--out", str(out))
    return out


def test_same_seed_and_config_give_the_same_report(reference, tmp_path):
    train_py(*LONGER, "--out", str(tmp_path))
    assert read_report(tmp_path) == read_report(reference)
    report = json.load(open(tmp_path / "report.json"))
    assert report["pretrain"]["skipped_updates"] == 0 and report["grpo"]["skipped_updates"] == 0


def test_resume_after_sigkill_gives_the_uninterrupted_report(reference, tmp_path):
    out = str(tmp_path)
    # 1) killed in pretraining, after the line of step 12 (a state was saved at step 10)
    kill_when([*LONGER, "--out", out], "step 00012/")
    progress = json.load(open(tmp_path / "progress.json"))
    assert progress["done"] == [] and (tmp_path / "pretrain.state.pt").exists()
    assert 10 <= load_state(out, "pretrain")["step"] < 40           # mid-stage

    # a fresh start over the interrupted run is refused: that is what --resume is for
    proc = subprocess.run([sys.executable, "train.py", *LONGER, "--out", out], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and f"--resume {out}" in proc.stderr

    # 2) resumed, then killed in GRPO after step 2's line (a state was saved at step 2)
    kill_when(["--resume", out], "step 0002 |")
    progress = json.load(open(tmp_path / "progress.json"))
    assert progress["done"] == ["pretrain", "reward"] and (tmp_path / "grpo.state.pt").exists()

    # 3) resumed to the end: the same figures, logs and weights as the uninterrupted run
    train_py("--resume", out)
    assert read_report(tmp_path) == read_report(reference)
    for log in ("pretrain_log.jsonl", "grpo_log.jsonl"):
        assert read_log(tmp_path / log) == read_log(reference / log), log
    mine, theirs = (torch.load(d / "rl.pt", weights_only=True) for d in (tmp_path, reference))
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    assert not list(tmp_path.glob("*.state.pt"))          # states are removed with their stage
    assert json.load(open(tmp_path / "progress.json"))["done"] == list(train.STAGES)


def test_resume_takes_no_other_config_and_needs_a_run(tmp_path):
    for args, message in [(["--resume", str(tmp_path), "--lr", "1"], "only --device"),
                          (["--resume", str(tmp_path)], "nothing to resume")]:
        proc = subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 1 and message in proc.stderr, proc.stderr
        assert proc.stderr.strip().count("\n") == 0


def test_reward_model_resumes_from_its_state_to_the_same_weights(tmp_path):
    """In process: train the preference model for 8 steps with a state saved at step 4, then
    train again with resume=True, which starts from that step-4 state: same figures."""
    task = TaskConfig(n_train=50, n_eval=4)
    gpt = GPTConfig(block_size=96, n_head=2)
    cfg = PreferenceConfig(rm_pairs=32, rm_eval_pairs=1, rm_steps=8, rm_batch_size=8,
                           rm_n_layer=1, rm_n_embd=16, rm_ckpt_every=4)
    splits = make_splits(task)
    Tokenizer(train_bpe([p.prompt + s.think + s.answer_text for p, s in splits.train], 300)).save(
        str(tmp_path / "tokenizer.tiktoken"))
    run = train.RunConfig(seed=5)
    first = train_reward_model(run, task, gpt, cfg, "answer", str(tmp_path), "cpu")
    weights = torch.load(tmp_path / "reward.pt", weights_only=True)
    assert load_state(str(tmp_path), "reward")["step"] == 4
    again = train_reward_model(run, task, gpt, cfg, "answer", str(tmp_path), "cpu",
                               resume=True)
    assert without_timings(again) == without_timings(first)
    resumed = torch.load(tmp_path / "reward.pt", weights_only=True)
    assert all(torch.equal(weights[k], resumed[k]) for k in weights)


def test_random_generators_come_back_exactly(tmp_path):
    pick, gen = random.Random(1), torch.Generator().manual_seed(2)
    torch.manual_seed(3)
    save_state(str(tmp_path), "x", {"rng": rng_state("cpu", pick=pick, gen=gen)})
    expected = (pick.random(), torch.rand(3, generator=gen), torch.rand(2))
    reseeded = set_rng_state("x", load_state(str(tmp_path), "x")["rng"], "cpu", 99,
                             pick=pick, gen=gen)
    got = (pick.random(), torch.rand(3, generator=gen), torch.rand(2))
    assert reseeded == [] and got[0] == expected[0] and torch.equal(got[1], expected[1])
    assert torch.equal(got[2], expected[2])


def test_a_generator_saved_on_another_kind_of_device_is_reseeded(capsys):
    """A state saved on a GPU run holds a CUDA generator's state (another size than a CPU one)
    and the run device's global CUDA state: resumed on the CPU, the global CPU generator and the
    CPU-side ones continue exactly, the CUDA-side one is seeded with `reseed`, in one line."""
    pick, gen, sampler = random.Random(1), torch.Generator(), torch.Generator()
    state = rng_state("cpu", pick=pick, gen=gen)
    state["sampler"] = torch.zeros(16, dtype=torch.uint8)       # a CUDA generator's state
    state["devices"]["sampler"] = "cuda"
    state["cuda"] = torch.zeros(16, dtype=torch.uint8)          # torch's global CUDA generator
    expected = (pick.random(), torch.rand(3, generator=gen), torch.rand(2))
    reseeded = set_rng_state("grpo", state, "cpu", 7, pick=pick, gen=gen, sampler=sampler)
    assert reseeded == ["sampler"]
    assert pick.random() == expected[0] and torch.equal(torch.rand(3, generator=gen), expected[1])
    assert torch.equal(torch.rand(2), expected[2])
    assert torch.equal(torch.rand(4, generator=sampler),
                       torch.rand(4, generator=torch.Generator().manual_seed(7)))
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0 and "grpo: resumed on cpu" in out and "re-seeded sampler" in out


def test_the_optimizer_keeps_its_own_implementation_flags():
    """A fused AdamW's state (as a CUDA run saves it) loaded into a plain one keeps the moments
    and the step, but not the fused flag, and the next update is the plain optimizer's."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    fused = torch.optim.AdamW(model.parameters(), lr=0.1, fused=True)
    model(torch.randn(4, 3)).sum().backward()
    fused.step()
    plain = torch.optim.AdamW(model.parameters(), lr=0.1)
    load_optimizer(plain, fused.state_dict())
    assert plain.param_groups[0]["fused"] is None
    st = plain.state[model.weight]
    assert st["step"].item() == 1 and st["step"].device.type == "cpu"
    assert torch.equal(st["exp_avg"], fused.state[model.weight]["exp_avg"])
    plain.step()                                                  # runs, on the same moments


# ------------------------------------------------------------------------------------------------
# numerical faults

def test_non_finite_updates_are_skipped_counted_and_stop_the_run():
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    guard = SkipNonFinite("test", limit=3)
    before = model.weight.detach().clone()
    model.weight.grad = torch.ones_like(model.weight)
    assert not guard.step(opt, float("nan"), 1.0, step=0)      # a NaN loss: no update
    assert torch.equal(model.weight, before) and model.weight.grad is None
    assert not guard.step(opt, 1.0, float("inf"), step=1)      # an Inf gradient: no update
    model.weight.grad = torch.ones_like(model.weight)
    assert guard.step(opt, 1.0, 1.0, step=2)                   # finite: applied, streak reset
    assert torch.allclose(model.weight, before - 0.1)
    assert guard.state() == {"skipped": 2, "in_row": 0}
    guard.step(opt, float("nan"), 1.0, step=3)
    guard.step(opt, float("nan"), 1.0, step=4)
    with pytest.raises(NonFiniteError, match="3 non-finite updates in a row"):
        guard.step(opt, float("nan"), 1.0, step=5)


def test_a_checkpoint_never_holds_nan(tmp_path):
    model = GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_head=2, n_embd=16))
    with torch.no_grad():
        model.lm_head.weight[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="NaN"):
        save_model(str(tmp_path), "m", model, {})
    with pytest.raises(NonFiniteError, match="optimizer"):
        save_state(str(tmp_path), "s", {"optimizer": {"m": torch.tensor([1.0, float("inf")])}})
    assert list(tmp_path.iterdir()) == []                       # nothing written


def test_a_diverging_run_stops_with_one_clear_line(tmp_path):
    """lr 1e30: the first update blows the weights up, every later gradient is NaN. Each is
    skipped and logged; five in a row stop the run, which leaves no pretrain.pt behind."""
    proc = subprocess.run([sys.executable, "train.py", "--preset", "smoke", "--lr", "1e30",
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "error: pretrain: 5 non-finite updates in a row")
    assert not (tmp_path / "pretrain.pt").exists()
    log = read_log(tmp_path / "pretrain_log.jsonl")
    assert [row["skipped"] for row in log] == [0, 1, 2, 3, 4]   # the log counts the skips
