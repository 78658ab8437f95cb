"""
What a run checks before it writes anything: every setting that would otherwise fail only after
minutes or hours of training, refused in one line that names the numbers and the knob to turn.

    check_settings   knobs of several stages that must fit together (each config checks its own
                     fields in __post_init__): the context, the vocabulary, batch sizes against
                     the corpus and the number of processes
    check_device     the device exists: cpu, cuda, cuda:N with N below the number of GPUs, one
                     GPU per process under torchrun
    check_lengths    once the corpus and the tokenizer exist (in memory, nothing saved yet): the
                     longest pretraining document against block_size, and the longest prompt of
                     the RL pool and of both held-out sets plus max_new_tokens against block_size
    check_inputs     what the chosen stages read from an earlier run in the same directory is
                     there, loads and fits together

train.py calls them in this order before the run directory is touched, so a refused run leaves
it byte for byte as it was (tests/test_train.py compares every byte).

What this is deliberately not: a schema language. Each check is a few lines of plain Python.
"""

import os
import re

import torch

from checkpoint import load_model
from config import ConfigError
from data.tokenizer import SPECIAL_TOKENS, Tokenizer
from harmlessness import load_harm_model
from preference import load_reward_model


def check_settings(run, task, gpt, pcfg, gcfg, world: int) -> None:
    """Combinations of knobs from different configs; `world` is the number of processes."""
    if run.max_new_tokens >= gpt.block_size:
        raise ConfigError(f"--max_new_tokens {run.max_new_tokens} leaves no room for a prompt "
                          f"in --block_size {gpt.block_size}")
    if gpt.vocab_size < 256 + len(SPECIAL_TOKENS):               # the bytes and the template tags
        raise ConfigError(f"--vocab_size must be >= {256 + len(SPECIAL_TOKENS)} (256 bytes and "
                          f"{len(SPECIAL_TOKENS)} special tokens), got {gpt.vocab_size}")
    if pcfg.batch_size > task.n_train:
        raise ConfigError(f"--batch_size {pcfg.batch_size} must be <= --n_train {task.n_train}")
    if pcfg.batch_size % world:
        raise ConfigError(f"--batch_size {pcfg.batch_size} must be a multiple of the {world} "
                          f"processes")
    if gcfg.prompts_per_step % world:
        raise ConfigError(f"--prompts_per_step {gcfg.prompts_per_step} must be a multiple of "
                          f"the {world} processes (each takes whole groups)")


def check_device(device: str, world: int) -> None:
    """cpu, cuda or cuda:N, present on this machine; under torchrun one GPU per local rank."""
    if not re.fullmatch(r"cpu|cuda(:[0-9]+)?", device):
        raise ConfigError(f"--device must be cpu, cuda or cuda:N, got {device!r}")
    if device == "cpu":
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise ConfigError(f"--device {device}, but torch sees no CUDA device")
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= count:
        raise ConfigError(f"--device {device}, but torch sees {count} CUDA device(s)")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world > 1 and local_rank >= count:
        raise ConfigError(f"torchrun started local rank {local_rank}, but torch sees {count} "
                          f"CUDA device(s): use --nproc_per_node {count} or fewer")


def check_precision(device: str, precision: str) -> None:
    """bf16 is autocast on a CUDA GPU that has bfloat16 (device.py); a CPU runs fp32."""
    if precision != "bf16":
        return
    if device == "cpu":
        raise ConfigError("--precision bf16 is autocast on a CUDA GPU; a CPU runs fp32 (a bf16 "
                          "matmul is slower there): use --precision auto or fp32")
    if not torch.cuda.is_bf16_supported():
        raise ConfigError(f"--precision bf16, but {device} has no bfloat16: use --precision fp32")


def check_lengths(tok: Tokenizer, splits, block_size: int, max_new_tokens: int,
                  docs: list | None = None) -> None:
    """Every sequence the run will build fits in the context. docs: the tokenized pretraining
    documents (None when the run does not pretrain); splits: data.problems.Splits."""
    if docs:
        longest = max(len(ids) for ids, _ in docs)
        if longest > block_size:
            raise ConfigError(f"the longest pretraining document has {longest} tokens, more than "
                              f"--block_size {block_size}: raise --block_size, or lower "
                              f"--max_value or --max_steps")

    def longest_prompt(problems):                  # 0 for a set the run does not build
        return max((len(tok.encode(p.prompt)) for p in problems), default=0)

    sets = (("RL training", max(n for _, n in docs) if docs else longest_prompt(
                [p for p, _ in splits.train]), "--max_steps"),    # a document starts with its prompt
            ("in_dist held-out", longest_prompt(splits.in_dist), "--max_steps"),
            ("harder held-out", longest_prompt(splits.harder), "--harder_steps"))
    for name, longest, steps_knob in sets:
        if longest + max_new_tokens > block_size:
            raise ConfigError(f"the longest {name} prompt has {longest} tokens; with "
                              f"--max_new_tokens {max_new_tokens} that is "
                              f"{longest + max_new_tokens} > --block_size {block_size}: raise "
                              f"--block_size, or lower --max_new_tokens or {steps_knob}")


def check_inputs(stages: list[str], out: str, rcfg, prefcfg) -> None:
    """What the chosen stages read from earlier runs in `out` is there, loads, and fits together
    (a missing, truncated or corrupt checkpoint, a tokenizer from another run: one line)."""
    if "pretrain" not in stages and (set(stages) & {"grpo", "eval"}
                                     or "reward" in stages and prefcfg.rm_init == "pretrained"):
        load_model(out, "pretrain")
    has_rm = os.path.exists(os.path.join(out, "reward.pt"))   # grpo and eval read it if there
    if "reward" not in stages and ("grpo" in stages and rcfg.w_pref
                                   or {"grpo", "eval"} & set(stages) and has_rm):
        load_reward_model(out)
    if ("reward" not in stages and {"grpo", "eval"} & set(stages)
            and prefcfg.harm_model == "learned"):
        load_harm_model(out)
    if "pretrain" not in stages and "reward" in stages:
        Tokenizer.load(os.path.join(out, "tokenizer.tiktoken"))
    if "grpo" not in stages and "eval" in stages and os.path.exists(os.path.join(out, "rl.pt")):
        load_model(out, "rl")
