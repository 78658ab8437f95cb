"""
One GPU check: what a user of one GPU needs to know, in one command and one JSON file.

    python -m lab.gpu_check                  # on a GPU: a few minutes -> gpu_check.json
    python -m lab.gpu_check --quick          # on a CPU in seconds at toy sizes (the tests' way)
    python -m lab.gpu_check --bench b.json   # reuse a lab/bench.py run of this device

What it writes:
  bench        lab/bench.py's measurements on this device: the machine's matmul peaks, the cpu
               preset's and, with CUDA, the gpu preset's pretraining tokens/s and bf16 MFU
               (torch.compile on and off), decode tokens/s, one GRPO step and its split
  attention    our Triton kernel (flash_attention.py) against SDPA and the explicit path at the
               gpu preset's head shape on a left-padded batch: forward + backward seconds, peak
               memory, and the largest difference of outputs and gradients from the explicit
               path. On a CPU the kernel runs only under TRITON_INTERPRET=1 (agreement, not
               speed); otherwise it is skipped, and says why
  estimate     the time of `python train.py --preset gpu`, stage by stage: each stage's work
               (tokens, steps) at the gpu preset over the throughput measured here for the
               same kind of work (pretraining tokens/s, one GRPO step, decode tokens/s)
With --quick every size is the smoke preset's and every figure is a smoke test, not a result.

What this deliberately is not: a tuned benchmark of our kernel (no autotuning), or a guess of a
GPU's speed from a spec sheet: every figure is measured on the device it runs on.
"""

import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass

import torch

import config
from checkpoint import write_json
from data.problems import make_splits
from data.tokenizer import Tokenizer, train_bpe
from lab import bench
from lab.measure import PeakMemory, timeit
from model import attention_mask
from train import preset_configs


@dataclass
class GPUCheckConfig:
    """What the GPU check measures and where it writes it."""
    quick: bool = False         # seconds on a CPU: the smoke preset's sizes (a smoke test)
    out: str = "gpu_check.json"  # where the figures go (git-ignored)
    device: str = ""            # cpu | cuda | cuda:N; empty = cuda when available
    rows: int = 64              # the attention comparison's batch rows (a GRPO update's chunk)
    repeats: int = 5            # timed calls of each attention path; median reported
    bench: str = ""             # a bench.json of this device to use (lab/bench.py); empty =
                                # run the benchmark now


def attention_paths(B: int, H: int, T: int, D: int, device: str, repeats: int,
                    dtype=torch.float32) -> dict:
    """Explicit, SDPA and our kernel on one left-padded batch (B, H, T, D), forward + backward:
    seconds (median), peak memory, and the largest |difference| of y and of dq, dk, dv from the
    explicit path."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(B, H, T, D, generator=gen).to(device, dtype) for _ in range(3))
    pad = torch.randint(0, T // 2, (B,), generator=gen).to(device)
    dy = torch.randn(B, H, T, D, generator=gen).to(device, dtype)
    mask = attention_mask(pad, 0, T, T)                               # (B, 1, T, T)

    def explicit(q, k, v):
        att = (q @ k.transpose(-2, -1) / math.sqrt(D)).masked_fill(~mask, float("-inf"))
        return att.softmax(-1) @ v

    def sdpa(q, k, v):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    paths = {"explicit": explicit, "sdpa": sdpa}
    if device.startswith("cuda") or os.environ.get("TRITON_INTERPRET") == "1":
        try:
            from flash_attention import flash_attention
            paths["triton"] = lambda q, k, v: flash_attention(q, k, v, pad)
        except ImportError as e:
            skipped = f"Triton is not installed ({e})"
    else:
        skipped = "a CPU runs Triton only under TRITON_INTERPRET=1 (agreement, not speed)"
    out, ref = {"shape": [B, H, T, D], "dtype": str(dtype).split(".")[-1]}, None
    for name, fn in paths.items():
        leaves = [x.clone().requires_grad_() for x in (q, k, v)]

        def step():
            y = fn(*leaves)
            return (y, *torch.autograd.grad(y, leaves, dy))
        with PeakMemory(device) as mem:
            got = step()
        seconds = timeit(step, 1, repeats, device)
        ref = ref or got
        out[name] = {"seconds": seconds, "peak_mem_bytes": mem.bytes,
                     "max_abs_diff": max((a.float() - b.float()).abs().max().item()
                                         for a, b in zip(got, ref))}
    if "triton" not in paths:
        out["triton"] = {"skipped": skipped}
    return out


def preset_work(name: str, n_docs: int) -> dict:
    """The gpu preset's work, stage by stage: pretraining tokens (steps x batch x the mean
    document length of a sample of its corpus), preference-model pair tokens, GRPO steps, and
    the evaluation's sampled tokens (both models on both held-out sets, greedy and eval_k
    samples of each problem, max_new_tokens each: an upper bound)."""
    run, task, gpt, pcfg, rcfg, prefcfg, gcfg = preset_configs(name)
    splits = make_splits(dataclasses.replace(task, n_train=n_docs))
    tok = Tokenizer(train_bpe([p.prompt + s.think + s.answer_text for p, s in splits.train],
                              gpt.vocab_size))
    mean_len = sum(len(tok.render(p.prompt, s.think, s.answer_text)[0])
                   for p, s in splits.train) / len(splits.train)
    return {"preset": name, "mean_doc_tokens": mean_len,
            "pretrain_tokens": pcfg.pretrain_steps * pcfg.batch_size * mean_len,
            "reward_pair_tokens": prefcfg.rm_steps * prefcfg.rm_batch_size * 2 * mean_len,
            "grpo_steps": gcfg.rl_steps,
            "eval_sampled_tokens": 4 * task.n_eval * (1 + run.eval_k) * run.max_new_tokens}


def estimate(work: dict, measured: dict) -> dict:
    """Seconds per stage: work over the throughput measured for its kind of work. The
    preference model's training is left out (a few hundred steps of a model smaller than the
    policy)."""
    pre, step = measured["pretrain"]["tokens_per_s"], measured["grpo_step"]["step_s"]
    decode = measured["sampling"]["kv_tokens_per_s"]
    s = {"pretrain_s": work["pretrain_tokens"] / pre, "grpo_s": work["grpo_steps"] * step,
         "eval_s": work["eval_sampled_tokens"] / decode}
    return {**s, "total_s": sum(s.values())}


def main(argv: list[str]) -> None:
    if argv in (["-h"], ["--help"]):
        print(__doc__ + "\n" + config.help_text([GPUCheckConfig()]))
        return
    (cfg,) = config.apply([GPUCheckConfig()], config.parse_pairs(config.bare_flags(argv,
                                                                                  "--quick")))
    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    t0, name = time.perf_counter(), "smoke" if cfg.quick else "gpu"
    bench_out = cfg.bench or cfg.out + ".bench.json"
    if not cfg.bench:
        bench.main(["--out", bench_out, "--device", device] + (["--quick"] if cfg.quick else []))
    measured = json.load(open(bench_out))
    preset = measured.get("gpu", measured)                  # the gpu preset's, with CUDA
    _, _, gpt, *_ = preset_configs(name)
    H, D = gpt.n_head, gpt.n_embd // gpt.n_head
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    res = {"device": device, "device_name": measured["device_name"], "quick": cfg.quick,
           "bench": measured,
           "attention": attention_paths(cfg.rows if not cfg.quick else 4, H,
                                        gpt.block_size if not cfg.quick else 40, D, device,
                                        cfg.repeats if not cfg.quick else 1, dtype),
           "work": preset_work(name, 300 if cfg.quick else 2000)}
    res["estimate"] = estimate(res["work"], preset)
    res["estimate"]["measured_on"] = "gpu preset" if "gpu" in measured else f"{name} preset"
    res["total_s"] = time.perf_counter() - t0
    write_json(cfg.out, res)
    if not cfg.bench:
        os.remove(bench_out)                                # it lives on inside gpu_check.json
    a = res["attention"]
    print(("QUICK MODE: toy sizes, not figures to report\n" if cfg.quick else "")
          + f"attention fwd+bwd {a['shape']}: " + ", ".join(
              f"{k} {v['seconds'] * 1e3:.1f} ms" for k, v in a.items()
              if isinstance(v, dict) and "seconds" in v)
          + f" | {name} preset, estimated: {res['estimate']['total_s'] / 60:.1f} min"
          + f" | done in {res['total_s']:.0f}s | {cfg.out}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except config.ConfigError as e:
        sys.exit(f"error: {e}")
