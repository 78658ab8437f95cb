"""
bench.py's verdicts: the figures of bench.json as (metric, value, target, ok) rows, and the
aligned table it prints.

Targets: pretraining MFU >= 0.30 of the measured fp32 peak for the cpu preset on CPU, >= 0.40 of
the bf16 peak for the gpu preset on CUDA; KV-cache sampling >= 5x the no-cache reference; the
rollout <= 60% of a GRPO step; the train step's memory linear in B*G (<= 1.10); no T x T
attention matrix per head saved for backward.

What this is deliberately not: a test. The test suite checks bench.json's shape, never speed.
"""


def report(res: dict) -> list[tuple[str, str, str, bool | None]]:
    """(metric, value, target, ok) rows; ok is None where no target is set. MFU: 30% for
    the cpu preset on CPU, 40% for the gpu preset on CUDA; sampling and rollout: the cpu preset."""
    mib = lambda n: f"{n / 2 ** 20:.1f} MiB"  # noqa: E731
    rows = [("machine matmul fp32", f"{res['matmul_fp32_flops'] / 1e9:,.1f} GFLOP/s", "", None),
            ("machine matmul bf16", f"{res['matmul_bf16_flops'] / 1e9:,.1f} GFLOP/s", "", None),
            ("machine copy bandwidth", f"{res['mem_bandwidth_bytes_per_s'] / 1e9:.1f} GB/s", "",
             None)]
    on_cpu = res["device"] == "cpu"
    blocks = [(res, res["preset"], True, 0.30 if on_cpu else None)]  # cpu preset?, MFU target
    if "gpu" in res:                                     # label: "gpu", "gpu:smoke" with --quick
        gpu = res["gpu"]
        blocks.append((gpu, "gpu" if gpu["preset"] == "gpu" else f"gpu:{gpu['preset']}", False,
                       0.40))
    for b, pre, cpu_preset, mfu_min in blocks:
        p, s, g = b["pretrain"], b["sampling"], b["grpo_step"]
        rows += [(f"{pre} pretrain", f"{p['tokens_per_s']:,.0f} tok/s", "", None),
                 (f"{pre} pretrain mfu", f"{p['mfu']:.3f}", f">= {mfu_min}" if mfu_min else "",
                  p["mfu"] >= mfu_min if mfu_min else None)]
        for v in b.get("pretrain_variants", [])[1:]:     # CUDA: fp32, and bf16 compiled
            arm = f"{'bf16' if v['autocast_bf16'] else 'fp32'}{' compiled' if v['compile'] else ''}"
            rows.append((f"{pre} pretrain {arm}", v["error"][:60] if "error" in v else
                         f"{v['tokens_per_s']:,.0f} tok/s, mfu {v['mfu']:.3f}", "", None))
        rows += [(f"{pre} sampling kv cache", f"{s['kv_tokens_per_s']:,.0f} tok/s", "", None),
                 (f"{pre} sampling no cache", f"{s['nocache_tokens_per_s']:,.0f} tok/s", "", None),
                 (f"{pre} sampling kv cache, explicit attention",
                  f"{s['explicit_kv_tokens_per_s']:,.0f} tok/s", "", None),
                 (f"{pre} sampling kv speedup", f"{s['kv_speedup']:.1f}x",
                  ">= 5x" if cpu_preset else "", s["kv_speedup"] >= 5 if cpu_preset else None),
                 (f"{pre} grpo rollout / reward / train",
                  f"{g['rollout_s']:.3f} / {g['reward_s']:.3f} / {g['train_s']:.3f} s", "", None),
                 (f"{pre} grpo rollout fraction", f"{g['rollout_fraction']:.2f}",
                  "<= 0.60" if cpu_preset else "",
                  g["rollout_fraction"] <= 0.60 if cpu_preset else None),
                 (f"{pre} grpo peak memory", f"{mib(g['peak_mem_bytes'])} ({g['peak_mem_kind']})",
                  "", None)]
        rows += [(f"{pre} train step at bgt {m['bgt']}", f"{mib(m['peak_mem_bytes'])} peak, "
                  f"{mib(m['activation_bytes'])} saved", "", None) for m in b["memory_scaling"]]
        att = b["attention_memory"]
        tt = att["sdpa_causal"]["saves_tt_per_head"] or att["sdpa_padded"]["saves_tt_per_head"]
        rows += [(f"{pre} memory linearity", f"{b['memory_linearity']:.3f}", "<= 1.10",
                  b["memory_linearity"] <= 1.10),
                 (f"{pre} sdpa saves a T x T per head", str(tt), "False", not tt)]
    return rows


def report_trl_work(res: dict) -> list[tuple[str, str, str, bool | None]]:
    """The rows of `bench.py --trl_work`: the machine's matmul peak and TRL's benchmark work. The
    GRPOTrainer's own step is timed by its benchmark, not here, so no target can be checked."""
    w = res["trl_work"]
    return [("machine matmul fp32", f"{res['matmul_fp32_flops'] / 1e9:,.1f} GFLOP/s", "", None),
            ("trl work grpo step", f"{w['step_s']:.3f} s (median of {w['repeats']})", "", None),
            ("trl work rollout", f"{w['rollout_s']:.3f} s", "", None),
            ("trl work flop fraction", f"{w['flop_fraction']:.3f}", "", None)]


def table(rows) -> str:
    """Aligned text: metric | value | target | ok."""
    cells = [("metric", "value", "target", "ok")] + [
        (m, v, t, "" if ok is None else "yes" if ok else "NO") for m, v, t, ok in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    return "\n".join(" | ".join(x.ljust(w) for x, w in zip(c, widths)).rstrip() for c in cells)
