"""Smoke test of the entry script: `python train.py --preset smoke` end to end, in a subprocess.

The keys checked are the report.json shape docs/how-it-works.md documents, so scripts can read any run."""

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

import pretrain
import train
from data.problems import make_splits
from evaluate import evaluate_stage
from guard import SkipNonFinite
from model import GPT, GPTConfig
from checkpoint import save_state

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """A finished smoke run directory, shared by the tests below (which never modify it)."""
    out = tmp_path_factory.mktemp("smoke")
    proc = subprocess.run([sys.executable, "train.py", "--preset", "smoke", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def fails_with(args, message):
    """train.py (or sample.py when args[0] is a .py file) exits 1 with one line naming it."""
    script = args[0] if args[0].endswith(".py") else "train.py"
    args = args[1:] if args[0].endswith(".py") else args
    proc = subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().count("\n") == 0, proc.stderr


def snapshot(folder) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_smoke_run_writes_every_stage_into_the_report(smoke):
    out = smoke
    report = json.load(open(out / "report.json"))
    assert {"params", "val_loss", "train_loss"} <= set(report["pretrain"])
    assert {"heldout_accuracy", "agreement_ceiling", "gold_agreement", "pairs", "init",
            "accuracy_style", "label_agreement_style", "accuracy_correctness",
            "label_agreement_correctness"} <= set(report["reward_model"])
    assert {"greedy", "sampled"} <= set(report["imitation_ceiling"])
    metrics = {"greedy_accuracy", "pass@1", "pass@k", "k", "format_rate", "gold_utility",
               "gold_score", "pref_score", "misconception_rate", "wrong_unit_rate", "mean_length"}
    for model in ("pretrained", "rl"):
        for name in ("in_dist", "harder"):
            assert metrics <= set(report["eval"][model][name]), (model, name)
    assert {"pretrain", "reward_model", "grpo", "eval", "total"} <= set(report["time_s"])
    for name in ("pretrain.pt", "reward.pt", "reward.json", "rl.pt", "rl.json", "grpo_log.jsonl",
                 "tokenizer.tiktoken", "config.json"):
        assert (out / name).exists(), name

    # every GRPO step logs what is watched: the gold, the proxy, the ranking agreement and the
    # KL from the initial policy (at beta = 0); before the first update the policy IS the
    # initial one, so its KL is exactly 0
    log = [json.loads(line) for line in open(out / "grpo_log.jsonl")]
    assert {"gold", "proxy", "rank_agreement", "pref_wrong", "kl_k1_seq", "kl_k3",
            "ref_s"} <= set(log[0])
    assert log[0]["kl_k1_seq"] == 0 and log[0]["kl_k3"] == 0 and log[-1]["kl_k1_seq"] != 0

    # sample.py reads the same run directory and shows every reward term
    question = "Ann has 52 apples. She gives 17 to Tom. How many apples does Ann have now?"
    proc = subprocess.run([sys.executable, "sample.py", str(out), question, "--n", "2",
                           "--max_new_tokens", "16"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "model rl" in proc.stdout and "true answer 35" in proc.stdout
    assert proc.stdout.count("reward: correct") == 2 and "pref" in proc.stdout

    # report.md says what a smoke run is, and lists in distribution before harder
    page = (out / "report.md").read_text()
    assert "Its figures mean nothing" in page and "- `pass@1`:" in page
    rows = [line.split(" | ")[:2] for line in page.splitlines() if line.startswith("| ")]
    assert rows[1:] == [["| pretrained", "in_dist"], ["| rl", "in_dist"],
                        ["| pretrained", "harder"], ["| rl", "harder"]]


@pytest.mark.parametrize("args, message", [
    (["--n_layers", "6"], "unknown config key --n_layers (did you mean --n_layer?)"),
    (["--lr", "fast"], "--lr expects float"),
    (["--group_size", "0"], "--group_size must be >= 1"),
    (["--n_embd", "100", "--n_head", "3"], "n_head"),
    (["--rl_lr", "-1"], "--rl_lr"),
    (["--ckpt_every", "0"], "--ckpt_every must be >= 1"),
    (["--preset", "tiny"], "--preset must be one of"),
    (["--max_new_tokens", "300"], "leaves no room for a prompt in --block_size 256"),
    (["--precision", "bf16", "--device", "cpu"], "--precision bf16 is autocast on a CUDA GPU"),
    (["--compile", "yes"], "--compile must be auto, on or off"),
])
def test_bad_config_is_one_line(args, message, tmp_path):
    fails_with([*args, "--out", str(tmp_path / "run")], message)
    assert not (tmp_path / "run").exists()                       # nothing written


def test_bad_run_directories_are_one_line_and_left_untouched(smoke, tmp_path):
    """A missing, truncated or corrupt checkpoint, a tokenizer from another run, a folder of a
    different config: one line naming the problem, exit 1, and every file as it was."""
    def broken(name, damage):
        run = tmp_path / name
        shutil.copytree(smoke, run)
        damage(run)
        return run, snapshot(run)

    cases = [
        ("missing", lambda r: (r / "pretrain.pt").unlink(), ["--stages", "eval"],
         "checkpoint file not found"),
        ("truncated", lambda r: (r / "pretrain.pt").write_bytes(
            (smoke / "pretrain.pt").read_bytes()[:1000]), ["--stages", "eval"],
         "pretrain.pt: cannot be read as a checkpoint"),
        ("corrupt", lambda r: (r / "reward.json").write_text("{not json"), ["--stages", "grpo"],
         "reward.json: not a checkpoint description"),
        ("tokenizer", lambda r: (r / "tokenizer.tiktoken").write_text(
            swap_two_ranks((smoke / "tokenizer.tiktoken").read_text())), ["--stages", "eval"],
         "is not the tokenizer pretrain.pt was trained with"),
        ("config", lambda r: None, ["--lr", "1e-2"], "holds a run with a different config"),
    ]
    for name, damage, args, message in cases:
        run, before = broken(name, damage)
        fails_with(["--preset", "smoke", *args, "--out", str(run)], message)
        assert snapshot(run) == before, name


def swap_two_ranks(text: str) -> str:
    """The same tokenizer file with two tokens' ranks exchanged: same size, another tokenizer."""
    lines = text.splitlines()
    a, b = lines[300].split()[0], lines[301].split()[0]
    lines[300], lines[301] = f"{b} 300", f"{a} 301"
    return "\n".join(lines) + "\n"


def test_a_corrupt_training_state_is_one_line(smoke, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(smoke, run)
    (run / "progress.json").write_text(json.dumps({"stages": ["grpo"], "done": []}))
    (run / "grpo.state.pt").write_bytes(b"not a torch file")
    fails_with(["--resume", str(run)], "grpo.state.pt: cannot be read as a training state")


def test_a_prompt_longer_than_the_context_is_one_line(smoke):
    fails_with(["sample.py", str(smoke), "Ann has 52 apples. " * 200, "--n", "1"],
               "exceeds block_size")


def test_solve_reads_the_corpus_wording():
    from data.problems import TaskConfig, make_splits
    from sample import solve
    for problem in make_splits(TaskConfig(n_train=1, n_eval=50, ops="+-*")).in_dist:
        assert solve(problem.question) == problem.answer
    assert solve("What is the capital of France?") is None


def test_an_interrupted_evaluation_resumes_at_the_next_split(smoke, tmp_path):
    """eval.state.pt holds the results that landed before the kill: they are kept, and only the
    missing (model, split) pairs are evaluated, to the figures of the uninterrupted run."""
    run = tmp_path / "run"
    shutil.copytree(smoke, run)
    configs = train.preset_configs("smoke")
    save_state(str(run), "eval", {"results": {"pretrained": {"in_dist": {"marker": 1.0}}},
                                  "elapsed": 2.0})
    splits = make_splits(dataclasses.replace(configs[1], n_train=1))          # held-out sets
    figures = evaluate_stage(configs[0], configs[5], str(run), "cpu", splits, resume=True,
                             banned="stupid")
    finished = json.load(open(smoke / "report.json"))["eval"]
    assert figures["eval"]["pretrained"]["in_dist"] == {"marker": 1.0}      # not evaluated again
    for model, split in (("pretrained", "harder"), ("rl", "in_dist"), ("rl", "harder")):
        assert figures["eval"][model][split] == finished[model][split]
    assert figures["time_s"]["eval"] >= 2.0                                  # time before the kill


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_is_one_line(tmp_path):
    fails_with(["--device", "cuda", "--out", str(tmp_path / "run")], "torch sees no CUDA device")
    assert not (tmp_path / "run").exists()


def test_sample_builds_the_human_and_the_blend_from_the_recorded_config():
    """A run recorded with a phrase-loving human and w_pref 0.5: sample.py scores with both,
    not with the defaults; a knob the code no longer has is skipped."""
    from bradley_terry import PreferenceConfig
    from reward import RewardConfig
    from sample import recorded
    described = {"PreferenceConfig": {"rater_phrase": 0.5, "rater_c": 4.0, "gone": 1},
                 "RewardConfig": {"w_pref": 0.5, "pref_scope": "response"}}
    human = recorded(PreferenceConfig, described).human
    assert (human.phrase, human.c) == (0.5, 4.0)
    cfg = recorded(RewardConfig, described)
    assert (cfg.w_pref, cfg.pref_scope, cfg.w_correct) == (0.5, "response", 1.0)


def test_length_buckets_by_hand():
    """Documents sorted by length, cut into full batches: lengths 3, 1, 2, 5 -> order 1, 2, 0,
    3 -> batches [1, 2] and [0, 3]; with size 3 the fourth document is left out."""
    docs = [([0] * n, 1) for n in (3, 1, 2, 5)]
    assert pretrain.length_buckets(docs, 2) == [[1, 2], [0, 3]]
    assert pretrain.length_buckets(docs, 3) == [[1, 2, 0]]


def test_weight_decay_falls_on_matrices_only():
    """AdamW's two groups: every matrix (the tied embedding once) decays, the RMSNorm gains do
    not; betas (0.9, 0.95)."""
    model = GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=2, n_head=2, n_embd=16))
    opt = pretrain.make_optimizer(model, pretrain.PretrainConfig(weight_decay=0.1))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert decay["betas"] == (0.9, 0.95)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.dim() == 2 for p in decay["params"]) and len(decay["params"]) == 1 + 2 * 4
    assert {names[id(p)].split(".")[-2] for p in no_decay["params"]} == {"norm1", "norm2",
                                                                          "norm_f"}


def test_train_step_is_one_clipped_adamw_step():
    """train_step = forward, backward, clip to grad_clip, AdamW: the same as written out by hand,
    bit for bit, returning the loss and the norm before clipping."""
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_head=2, n_embd=16)
    a, b = GPT(cfg), GPT(cfg)
    b.load_state_dict(a.state_dict())
    x, y = torch.randint(0, 64, (3, 12)), torch.randint(0, 64, (3, 12))
    pcfg = pretrain.PretrainConfig(grad_clip=0.5)
    opt_a, opt_b = pretrain.make_optimizer(a, pcfg), pretrain.make_optimizer(b, pcfg)
    loss, norm = pretrain.train_step(a, opt_a, x, y, pcfg.grad_clip, contextlib.nullcontext(),
                                  SkipNonFinite("test", 5), step=0)
    _, ref_loss = b(x, y)
    ref_loss.backward()
    ref_norm = torch.nn.utils.clip_grad_norm_(b.parameters(), 0.5)
    opt_b.step()
    assert loss == ref_loss.item() and norm == ref_norm.item() and norm > 0.5   # it clipped
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_resuming_a_finished_run_does_nothing_and_says_so(smoke, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(smoke, run)
    before = json.load(open(run / "report.json"))
    train.main(["--resume", str(run)])
    assert "to do: none" in capsys.readouterr().out
    assert json.load(open(run / "report.json")) == before
