"""Every run that passes its checks runs to the end: each preset's real lengths through every
stage, and the settings that could only fail late, refused before anything is written.

The presets run in-process on tiny widths (1 layer, width 16) with a small corpus, but with
their own block_size, max_new_tokens, max_value, step counts and harder_steps, and with
held-out sets made of the longest prompts of the preset's real held-out sets, so generation
reaches the preset's longest prompt + max_new_tokens."""

import dataclasses
import json

import pytest

import config
import train
from data.problems import Splits, make_splits
from data.tokenizer import Tokenizer, train_bpe

TINY = dict(n_train=200, n_layer=1, n_head=2, n_embd=16, rm_n_layer=1, rm_n_head=2, rm_n_embd=16,
            batch_size=4, pretrain_steps=2, warmup_steps=1, eval_every=2, rm_pairs=16,
            rm_eval_pairs=1, rm_steps=2, rm_batch_size=8, rl_steps=1, prompts_per_step=2,
            group_size=2, rl_eval_every=1, eval_k=1)


@pytest.mark.parametrize("preset", list(train.PRESETS))
def test_every_preset_runs_every_stage_at_its_own_lengths(preset, tmp_path, monkeypatch):
    args = {**train.PRESETS[preset], **TINY, "preset": preset}
    run, task, gpt = config.apply(train.default_configs(), args)[:3]
    full = make_splits(dataclasses.replace(task, n_train=1))     # the preset's held-out sets
    corpus = make_splits(task)                                   # the small corpus of this run
    tok = Tokenizer(train_bpe([p.prompt + s.think + s.answer_text for p, s in corpus.train],
                              gpt.vocab_size))                   # as prepare_corpus trains it

    def longest(problems, n=3):
        return sorted(problems, key=lambda p: len(tok.encode(p.prompt)))[-n:]

    monkeypatch.setattr(train, "make_splits", lambda t: Splits(
        make_splits(t).train, longest(full.in_dist), longest(full.harder)))
    out = tmp_path / preset
    train.main(["--out", str(out), *[f"--{k}={v}" for k, v in args.items()]])

    assert Tokenizer.load(str(out / "tokenizer.tiktoken")).fingerprint == tok.fingerprint
    report = json.load(open(out / "report.json"))
    assert set(report["eval"]["rl"]) == {"in_dist", "harder"}
    longest_prompt = len(tok.encode(longest(full.harder, 1)[0].prompt))
    assert longest_prompt + run.max_new_tokens <= gpt.block_size  # what the run just generated
    assert json.load(open(out / "progress.json"))["done"] == list(train.STAGES)


def refused(args: list[str], message: str, out) -> None:
    """train.main refuses with one line holding `message`, and `out` is never created."""
    with pytest.raises((config.ConfigError, ValueError, FileNotFoundError)) as e:
        train.main([*args, "--out", str(out)])
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--max_new_tokens", "220"], "the longest RL training prompt has 62 tokens; with "
                                  "--max_new_tokens 220 that is 282 > --block_size 256"),
    (["--harder_steps", "9", "--max_new_tokens", "180"], "the longest harder held-out prompt"),
    (["--block_size", "100", "--max_new_tokens", "30"], "the longest pretraining document has"),
    (["--group_size", "1"], "--group_size must be >= 2"),
    (["--grad_clip", "0"], "--grad_clip must be > 0"),
    (["--rl_grad_clip", "-1"], "--rl_grad_clip must be > 0"),
    (["--ops", "*"], "--ops '*' with --max_value 99: 1000 draws of a problem of 3 steps"),
    (["--p_slip", "0.9"], "--p_slip must be <= 0.5"),
    (["--rm_n_head", "3"], "--rm_n_embd 32 must be --rm_n_head 3 times an even head width"),
    (["--vocab_size", "100"], "--vocab_size must be >= 262"),
    (["--batch_size", "64", "--n_train", "50"], "--batch_size 64 must be <= --n_train 50"),
    (["--device", "tpu"], "--device must be cpu, cuda or cuda:N"),
    (["--truncation", "zero"], "--truncation must be one of floor, mask"),
])
def test_settings_that_would_fail_late_are_refused_up_front(args, message, tmp_path):
    refused(["--preset", "smoke", *args], message, tmp_path / "run")


def test_the_policy_width_no_longer_constrains_the_preference_model(tmp_path):
    """--n_head 6 --n_embd 192 used to pass validation and fail after pretraining, when the
    preference model took the policy's 6 heads for its width of 64: it has its own rm_n_head.
    A lengths refusal shows the run got past every config check."""
    refused(["--preset", "smoke", "--n_head", "6", "--n_embd", "192", "--max_new_tokens", "220"],
            "the longest RL training prompt", tmp_path / "run")
