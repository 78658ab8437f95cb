"""
How fast this code pretrains, samples and takes GRPO steps, against the limit of the machine it
runs on, measured in the same run.

    python -m lab.bench                      # CPU or CUDA, picked automatically; budget: < 3 minutes
                                         # on 2 CPU cores
    python -m lab.bench --quick              # seconds: tiny sizes, 1-2 repeats. A smoke test, NOT
                                         # figures to report
    python -m lab.bench --out /tmp/b.json --repeats 7
    python -m lab.bench --trl_work           # TRL's benchmark work through grpo_step: bench_trl.py

What it measures, in this order (a table on stdout, everything in bench.json):
  1. the machine: a large fp32 and bf16 matmul (FLOP/s) and a large tensor copy (bytes read +
     written per second). MEASURED here, never looked up in a spec sheet, so the MFU below
     compares our code with what this machine's BLAS / cuBLAS actually reaches;
  2. pretraining tokens/s and model FLOP utilisation: train.py's step (AdamW, clip, bf16 autocast
     on CUDA) on a real batch, the middle length bucket of preset batch_size rendered teacher
     documents packed by pretrain.pack. Tokens = non-pad input tokens, as pretrain.py counts them;
  3. sampling tokens/s for B prompts x G completions (GRPOConfig's B and G, RunConfig's
     max_new_tokens, no stop ids so that every row makes every token): KV cache against
     recomputing the whole sequence for every token, and SDPA against explicit attention;
  4. one GRPO step, grpo.grpo_step as the training loop calls it, split into rollout, reward
     (decode, reward.Reward with a random PreferenceModel of the scratch size: every term, the
     blend, the watched gold and proxy, advantages; scored on teacher-written completions,
     since a random policy never writes an answer the preference model would read) and train
     (token_logprobs, policy_loss, backward, clip, AdamW, in micro-batches of the preset's
     --rl_micro_batch rows), its peak memory, and how the memory of an update of all B*G rows
     in one backward grows with B*G;
  5. with CUDA, all of it again at the gpu preset under the "gpu" key, plus bf16 autocast and
     torch.compile on/off for the pretraining step.
The top-level figures are the cpu preset on this run's device (the smoke preset with --quick).
Weights are random: nothing is trained, and speed does not depend on what the weights say.
Every timing is the median of several calls after warm-up calls, with a CUDA synchronize
before each clock read. The exception is the no-cache reference, a call of tens of seconds on
CPU: timed once, and on CPU only every 4th of its steps (`nocache_seconds`, `--nocache_stride`).

MFU = tokens/s x training FLOPs per token (6 N + 12 L T C) / the matmul peak measured above;
memory is the exact bytes autograd saves for backward (and the coarse peak RSS on CPU, the exact
peak allocation on CUDA). docs/speed.md derives both and says what each one counts.

What this is deliberately not: a profiler (no kernel breakdown), a multi-GPU benchmark, or a
test of speed: targets are printed next to the figures, and the test checks only the output.

References:
  Scaling Laws for Neural Language Models, Kaplan et al. 2020, arXiv:2001.08361
  PaLM: Scaling Language Modeling with Pathways, Chowdhery et al. 2022, arXiv:2204.02311
  FlashAttention, Dao et al. 2022, arXiv:2205.14135
"""

import dataclasses
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
from guard import SkipNonFinite
from lab.bench_grpo import bench_grpo
from lab.bench_report import report, report_trl_work, table
from lab.bench_trl import bench_trl_work
from lab.measure import (attention_memory, device_name, flops_per_token, linearity, machine_limits,
                         timeit, twin)
from model import GPT
from preference import PreferenceModel
from pretrain import PretrainConfig, make_optimizer, pack, train_step
from sampler import generate
from train import preset_configs


@dataclass
class BenchConfig:
    """What bench.py measures, how long, and where it writes the figures."""
    quick: bool = False         # seconds: the smoke preset's sizes, small peaks, 1-2 repeats
    trl_work: bool = False      # only the machine's peaks and TRL's benchmark work, run through
                                # grpo.grpo_step (bench_trl.py), written under "trl_work"
    out: str = "bench.json"     # where the figures go (git-ignored)
    device: str = ""            # cpu | cuda | cuda:N; empty = cuda when available
    warmup: int = 1             # untimed calls before each timing
    repeats: int = 5            # timed calls of a pretraining step or a matmul; median reported
    gen_repeats: int = 3        # the same for calls that sample (seconds each on CPU)
    nocache_stride: int = 0     # time every k-th step of the no-cache reference, x k; 1 = the
                                # whole generate(use_cache=False) call; 0 = 4 on CPU, 1 on CUDA
    n_docs: int = 2000          # corpus documents for the tokenizer and the pretraining batch
    matmul_n: int = 0           # side of the peak matmul; 0 = 2048 on CPU, 8192 on CUDA
    copy_mb: int = 0            # size of the bandwidth copy in MiB; 0 = 256 on CPU, 1024 on CUDA
    seed: int = 1337            # random weights and inputs

    def __post_init__(self):
        for name in ("repeats", "gen_repeats", "n_docs"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if min(self.warmup, self.matmul_n, self.copy_mb, self.nocache_stride) < 0:
            raise ValueError("--warmup, --matmul_n, --copy_mb and --nocache_stride must be >= 0")


QUICK = dict(repeats=2, gen_repeats=1, n_docs=300, matmul_n=256, copy_mb=16)

# ------------------------------------------------------------------------------------------------
# the workloads: pretraining and sampling here, one GRPO step in bench_grpo.py

def bench_pretrain(model, x, y, pad: int, pcfg: PretrainConfig, device: str, cfg: BenchConfig,
                   peaks: dict, autocast: bool, compiled: bool = False) -> dict:
    """train.py's pretraining step on one batch: tokens/s and MFU (docstring)."""
    cuda = device.startswith("cuda")
    x, y = x.to(device), y.to(device)
    opt = make_optimizer(model, pcfg, fused=cuda)
    ctx = torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast)
    fwd = torch.compile(model) if compiled else model
    guard = SkipNonFinite("bench", limit=1)        # a non-finite step stops the benchmark

    def step():
        train_step(fwd, opt, x, y, pcfg.grad_clip, ctx, guard, step=0)

    model.train()
    s = timeit(step, cfg.warmup + (2 if compiled else 0), cfg.repeats, device)  # 1st calls compile
    tokens = int((x != pad).sum())
    fpt = flops_per_token(model.num_params(), model.cfg.n_layer, model.cfg.n_embd, x.shape[1])
    peak = peaks["bf16" if autocast else "fp32"]
    return {"tokens_per_s": tokens / s, "mfu": tokens / s * fpt / peak, "step_s": s,
            "tokens_per_step": tokens, "seq_len": x.shape[1], "flops_per_token": fpt,
            "autocast_bf16": autocast, "compile": compiled}


def nocache_seconds(model, prompts, G: int, max_new: int, pad: int, device: str,
                    stride: int, seed: int) -> tuple[float, int]:
    """Seconds generate(use_cache=False) takes for max_new tokens, and how many steps were run.

    stride 1: one whole call, timed once (tens of seconds on CPU; its first forward passes are
    the warm-up). stride k: step t of that call is one forward pass over the prompt plus t tokens,
    so we run that step alone (generate with max_new_tokens=1 on prompts longer by t tokens) at
    the middle t of every block of k steps and count it k times: a midpoint sum of a smooth,
    growing cost, k times cheaper. The KV path is always timed whole.
    """
    gen = torch.Generator(device=device).manual_seed(seed)
    if stride == 1:
        return timeit(lambda: generate(model, prompts, num_samples=G, max_new_tokens=max_new,
                                       pad_id=pad, generator=gen, use_cache=False),
                      0, 1, device), max_new
    filler = [i % model.cfg.vocab_size for i in range(max_new)]  # stands in for sampled tokens
    total, steps = 0.0, 0
    for start in range(0, max_new, stride):
        width = min(stride, max_new - start)              # steps start .. start + width - 1
        longer = [p + filler[:start + width // 2] for p in prompts]
        total += width * timeit(lambda: generate(model, longer, num_samples=G, max_new_tokens=1,
                                                 pad_id=pad, generator=gen, use_cache=False),
                                0, 1, device)
        steps += 1
    return total, steps


def bench_sampling(model, prompts, G: int, max_new: int, pad: int, device: str,
                   cfg: BenchConfig) -> dict:
    """tokens/s of generate() for len(prompts) x G rows, every row making max_new tokens."""
    def kv_sampler(m):
        gen = torch.Generator(device=device).manual_seed(cfg.seed)
        return lambda: generate(m, prompts, num_samples=G, max_new_tokens=max_new,
                                temperature=1.0, pad_id=pad, generator=gen)

    n = len(prompts) * G * max_new                       # no stop ids: every row, every token
    kv = timeit(kv_sampler(model), cfg.warmup, cfg.gen_repeats, device)
    explicit = timeit(kv_sampler(twin(model, "explicit")), cfg.warmup, cfg.gen_repeats, device)
    stride = cfg.nocache_stride or (1 if device.startswith("cuda") else 4)
    nocache, steps = nocache_seconds(model, prompts, G, max_new, pad, device, stride, cfg.seed)
    return {"rows": len(prompts) * G, "prompts": len(prompts), "group_size": G,
            "prompt_len": max(len(p) for p in prompts), "new_tokens": max_new,
            "kv_tokens_per_s": n / kv, "nocache_tokens_per_s": n / nocache,
            "kv_speedup": nocache / kv, "nocache_steps_timed": steps,
            "explicit_kv_tokens_per_s": n / explicit, "sdpa_speedup": explicit / kv}


# ------------------------------------------------------------------------------------------------
# one preset, end to end

def bench_preset(name: str, cfg: BenchConfig, device: str, peaks: dict, variants: bool) -> dict:
    """Every measurement at the model sizes of train.PRESETS[name], random weights."""
    run, task, gpt, pcfg, rcfg, prefcfg, gcfg = preset_configs(name)
    cuda, t0 = device.startswith("cuda"), time.perf_counter()

    def log(what):
        print(f"bench | {name} | {what} | {time.perf_counter() - t0:.0f}s", flush=True)

    # ---- data: a tokenizer on a small corpus, a real batch, held-out prompts
    splits = make_splits(dataclasses.replace(task, n_train=cfg.n_docs))
    tok = Tokenizer(train_bpe([p.prompt + s.think + s.answer_text for p, s in splits.train],
                              gpt.vocab_size))
    docs = sorted((tok.render(p.prompt, s.think, s.answer_text) for p, s in splits.train),
                  key=lambda d: len(d[0]))               # length buckets, as train.py batches
    mid = max(0, (len(docs) - pcfg.batch_size) // 2)
    x, y = pack(docs[mid:mid + pcfg.batch_size], tok.pad)
    B, G = gcfg.prompts_per_step, gcfg.group_size
    n_drawn = math.ceil(gcfg.oversample * B)             # the prompts a GRPO step draws
    problems = [splits.in_dist[i % len(splits.in_dist)] for i in range(n_drawn)]
    prompts = [tok.encode(p.prompt) for p in problems[:B]]  # sampling: B prompts x G
    # as in train.py the model's vocabulary is the tokenizer's: BPE stops early when no pair
    # repeats (often below vocab_size on this small corpus), and a larger head could sample
    # ids that do not decode
    model_cfg = dataclasses.replace(gpt, vocab_size=tok.n_vocab)
    max_new = min(run.max_new_tokens,
                  model_cfg.block_size - max(len(tok.encode(p.prompt)) for p in problems))
    torch.manual_seed(cfg.seed)
    model = GPT(model_cfg).to(device)
    rm = PreferenceModel(dataclasses.replace(model_cfg, n_layer=prefcfg.rm_n_layer,
                                             n_head=prefcfg.rm_n_head,
                                             n_embd=prefcfg.rm_n_embd)).to(device)
    out = {"preset": name, "params": model.num_params(), "batch_size": pcfg.batch_size}
    log(f"{out['params'] / 1e6:.2f}M params, vocab {model_cfg.vocab_size}")

    # ---- pretraining (train.py: bf16 autocast on CUDA, fp32 on CPU)
    args = (x, y, tok.pad, pcfg, device, cfg, peaks)
    out["pretrain"] = bench_pretrain(model, *args, autocast=cuda)
    if variants:                                         # CUDA only: the other arms
        out["pretrain_variants"] = [out["pretrain"]]
        for autocast, compiled in ((False, False), (True, True)):
            try:
                out["pretrain_variants"].append(
                    bench_pretrain(model, *args, autocast=autocast, compiled=compiled))
            except Exception as e:                       # e.g. no compiler toolchain
                out["pretrain_variants"].append({"autocast_bf16": autocast, "compile": compiled,
                                                 "error": repr(e)[:300]})
    log("pretrain")

    # ---- sampling, then a GRPO step, then memory
    out["sampling"] = bench_sampling(model, prompts, G, max_new, tok.pad, device, cfg)
    log("sampling")
    out["grpo_step"], out["memory_scaling"] = bench_grpo(model, tok, problems, rm, task, rcfg,
                                                         gcfg, max_new, device, cfg)
    key = "peak_mem_bytes" if cuda else "activation_bytes"        # docstring: Memory
    out["memory_linearity"] = linearity([(m["bgt"], m[key]) for m in out["memory_scaling"]])
    out["attention_memory"] = attention_memory(model, 4, device)
    log("grpo step and memory")
    return out

# ------------------------------------------------------------------------------------------------
# the report: targets, table, JSON

def main(argv: list[str]) -> None:
    if argv in (["-h"], ["--help"]):
        print(__doc__ + "\n" + config.help_text([BenchConfig()]))
        return
    pairs = config.parse_pairs(config.bare_flags(config.bare_flags(argv, "--quick"),
                                                 "--trl_work"))
    (cfg,) = config.apply([BenchConfig()], pairs)
    if cfg.quick:                                        # quick's sizes, then the user's own
        (cfg,) = config.apply([cfg], {**QUICK, **pairs})
    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise config.ConfigError(f"--device {device}: CUDA is not available")
    t0 = time.perf_counter()
    res = {"device": device.split(":")[0], "device_name": device_name(device),
           "quick": cfg.quick, "torch": torch.__version__, "threads": torch.get_num_threads()}

    # ---- 1. the machine's limits, measured now
    n, mib = cfg.matmul_n or (8192 if cuda else 2048), cfg.copy_mb or (1024 if cuda else 256)
    res.update(machine_limits(device, n, mib, cfg.warmup, cfg.repeats))
    peaks = {"fp32": res["matmul_fp32_flops"], "bf16": res["matmul_bf16_flops"]}
    print(f"bench | {device} ({res['device_name']}) | peaks measured | "
          f"{time.perf_counter() - t0:.0f}s", flush=True)

    if cfg.trl_work:                                     # TRL's benchmark work alone
        res["trl_work"] = bench_trl_work(device, peaks["fp32"], cfg.warmup, cfg.gen_repeats * 3)
        rows = report_trl_work(res)
    else:   # ---- 2-4. the cpu preset (smoke with --quick) here; 5. the gpu preset on CUDA
        res.update(bench_preset("smoke" if cfg.quick else "cpu", cfg, device, peaks,
                                variants=False))
        if cuda:
            res["gpu"] = bench_preset("smoke" if cfg.quick else "gpu", cfg, device, peaks,
                                      variants=True)
        rows = report(res)
    res["checks"] = [{"metric": m, "value": v, "target": t, "ok": ok}
                     for m, v, t, ok in rows if ok is not None]
    res["config"] = dataclasses.asdict(cfg)
    res["total_s"] = time.perf_counter() - t0

    print(("QUICK MODE: tiny sizes, not figures to report\n" if cfg.quick else "") + table(rows))
    os.makedirs(os.path.dirname(os.path.abspath(cfg.out)), exist_ok=True)
    write_json(cfg.out, res)                             # atomic, like every file of a run
    print(f"done in {res['total_s']:.0f}s | {cfg.out}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except config.ConfigError as e:
        sys.exit(f"error: {e}")
