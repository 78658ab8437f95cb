"""Command-line overrides of the stage dataclasses, and the presets of train.py."""

import dataclasses

import pytest
import torch

import config
import pretrain
import train
from data.problems import TaskConfig
from model import GPTConfig
from grpo import GRPOConfig
from bradley_terry import PreferenceConfig
from reward import RewardConfig


def stage_configs():
    return [train.RunConfig(), TaskConfig(), GPTConfig(), pretrain.PretrainConfig(), RewardConfig(),
            PreferenceConfig(), GRPOConfig()]


def test_parse_pairs_both_spellings():
    assert config.parse_pairs(["--lr", "1e-3", "--n_layer=6"]) == {"lr": "1e-3", "n_layer": "6"}
    for bad, msg in [(["lr", "1"], "expected --key value"), (["--lr"], "needs a value"),
                     (["--lr", "1", "--lr", "2"], "given twice")]:
        with pytest.raises(config.ConfigError, match=msg):
            config.parse_pairs(bad)


def test_apply_converts_types_and_returns_new_instances():
    before = stage_configs()
    run, task, gpt, pre, *_ = config.apply(before, {"lr": "1e-3", "n_layer": "6", "ops": "+-*",
                                                   "stages": "eval"})
    assert (pre.lr, gpt.n_layer, task.ops, run.stages) == (1e-3, 6, "+-*", "eval")
    assert before[3].lr == pretrain.PretrainConfig().lr             # nothing was mutated


def test_unknown_key_and_bad_values_name_the_key():
    with pytest.raises(config.ConfigError, match=r"unknown config key --n_layers \(did you mean "
                                                 r"--n_layer\?\)"):
        config.apply(stage_configs(), {"n_layers": "6"})
    with pytest.raises(config.ConfigError, match=r"--lr expects float, got 'fast'"):
        config.apply(stage_configs(), {"lr": "fast"})
    with pytest.raises(config.ConfigError, match=r"p_bug"):
        config.apply(stage_configs(), {"p_bug": "2"})                  # out of range
    with pytest.raises(config.ConfigError, match=r"stages"):
        config.apply(stage_configs(), {"stages": "pretrain,fly"})


def test_field_names_are_unique_across_stages():
    names = [f.name for c in stage_configs() for f in dataclasses.fields(c)]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("preset", list(train.PRESETS))
def test_presets_name_real_fields_with_valid_values(preset):
    config.apply(stage_configs(), train.PRESETS[preset])             # raises if not


def test_lr_schedule_by_hand():
    cfg = pretrain.PretrainConfig(lr=1.0, warmup_steps=10, pretrain_steps=110, min_lr_ratio=0.1)
    assert pretrain.lr_at(0, cfg) == pytest.approx(0.1)                  # (0 + 1) / 10
    assert pretrain.lr_at(9, cfg) == pytest.approx(1.0)
    assert pretrain.lr_at(10, cfg) == pytest.approx(1.0)                  # cosine starts at the peak
    assert pretrain.lr_at(60, cfg) == pytest.approx(0.55)                 # halfway: 0.1 + 0.9 * 0.5
    assert pretrain.lr_at(110, cfg) == pytest.approx(0.1)


def test_pack_masks_prompt_and_padding():
    x, y = pretrain.pack([([5, 6, 7, 8, 9], 2), ([5, 6, 7], 1)], pad=0)
    assert x.tolist() == [[5, 6, 7, 8], [5, 6, 0, 0]]
    assert y.tolist() == [[-1, 7, 8, 9], [6, 7, -1, -1]]


def test_help_shows_every_knob_with_its_comment_grouped_by_stage():
    """--help is the configs' own comments: every field of every stage has one, printed under
    its config's docstring."""
    configs = stage_configs()
    for c in configs:
        comments = config.field_comments(type(c))
        assert set(comments) == {f.name for f in dataclasses.fields(c)}
        assert all(comments.values()), [k for k, v in comments.items() if not v]
    text = config.help_text(configs)
    assert "GRPOConfig: GRPO: the group advantage" in text
    assert "  --lr 0.003" in text and "peak learning rate" in text
    assert "(readable reference)" in config.field_comments(GPTConfig)["attn_impl"]


def test_precision_is_fp32_on_a_cpu_and_autocast_does_nothing_there():
    """--precision auto on a CPU is fp32, and the context the stages run in leaves every matmul
    in fp32: the CPU run is the code it always was. A preference model's score is fp32 even
    under a bf16 autocast (CPU autocast stands in for CUDA's here)."""
    from device import autocast, precision
    from model import GPTConfig
    from preference import PreferenceModel
    assert precision("cpu", "auto") == "fp32" and precision("cpu", "fp32") == "fp32"
    a = torch.randn(4, 4)
    with autocast("cpu", "bf16"):
        assert (a @ a).dtype == torch.float32
    rm = PreferenceModel(GPTConfig(vocab_size=32, block_size=16, n_layer=1, n_head=2, n_embd=16))
    idx = torch.randint(0, 32, (3, 8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        r = rm(idx, torch.zeros(3, dtype=torch.long))
    assert r.dtype == torch.float32
