"""
Measuring a machine and a program: wall-clock time, matmul FLOP/s, copy bandwidth, memory.

What this is: the instruments bench.py reads, kept apart from what it measures.
  timeit        median seconds of a call after warm-up calls, synchronising CUDA around the clock
  matmul_flops  FLOP/s of a large square matmul: the machine's practical peak, the MFU denominator
  copy_bandwidth  bytes read + written per second by a large tensor copy
  flops_per_token  training FLOPs per token, 6 N + 12 L T C (Kaplan et al., arXiv 2001.08361,
                section 2.1; PaLM, arXiv 2204.02311, appendix B)
  PeakMemory    peak memory of a block: exact on CUDA (max_memory_allocated), COARSE on CPU (the
                process's peak resident set, VmHWM, reset through /proc/self/clear_refs on Linux)
  SavedBytes    exact bytes autograd saves for backward in a block (activations), on any device
  linearity     how a measured quantity grows between three sizes (1.0 = linearly)
  machine_limits  the matmul peaks (fp32, bf16) and the copy bandwidth of this device, measured
  attention_memory  what forward + backward through each attention path saves, causal and padded
  device_name   the GPU's or the CPU's model name

What this is deliberately not: a profiler. No kernel breakdown, no sampling of the call stack.
"""

import dataclasses
import platform
import re
import resource
import statistics
import sys
import time

import torch

from device import release_free_memory, sync
from model import GPT


def timeit(fn, warmup: int, repeats: int, device: str) -> float:
    """Median wall-clock seconds of fn() over `repeats` calls, after `warmup` untimed calls.
    CUDA runs asynchronously, so the clock is read only after a synchronize."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def flops_per_token(n_params: int, n_layer: int, n_embd: int, seq_len: int) -> int:
    """Training FLOPs per token, 6 N + 12 L T C (PaLM 2204.02311 appendix B; see the docstring).
    flops_per_token(1000, 2, 8, 16) -> 6 * 1000 + 12 * 2 * 8 * 16 = 6000 + 3072 = 9072"""
    return 6 * n_params + 12 * n_layer * n_embd * seq_len


def linearity(points: list[tuple[int, int]]) -> float:
    """Marginal bytes per B*G*T token between the 2nd and 3rd (bgt, bytes) points over that
    between the 1st and 2nd: 1.0 = linear growth, whatever the constant offset (gradients, say);
    above 1 = faster than linear. linearity([(100, 1100), (200, 2100), (400, 4100)]) -> 1.0;
    bytes = bgt^2: linearity([(1, 1), (2, 4), (4, 16)]) -> (12 / 2) / (3 / 1) = 2.0"""
    (b1, m1), (b2, m2), (b3, m3) = points
    return ((m3 - m2) / (b3 - b2)) / max((m2 - m1) / (b2 - b1), 1e-9)


def matmul_flops(n: int, dtype, device: str, warmup: int = 1, repeats: int = 5) -> float:
    """FLOP/s of an (n, n) @ (n, n) matmul: 2 n^3 FLOPs each (a multiply and an add)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b, c = torch.randn_like(a), torch.empty_like(a)
    k = 10 if device.startswith("cuda") else 1           # a CUDA matmul is ~ms: time ten

    def matmuls():
        for _ in range(k):
            torch.mm(a, b, out=c)
    return k * 2 * n ** 3 / timeit(matmuls, warmup + 1, repeats, device)


def copy_bandwidth(mib: int, device: str, warmup: int = 1, repeats: int = 5) -> float:
    """Bytes/s of dst.copy_(src): every byte is read once and written once."""
    src = torch.ones(mib * 2 ** 20 // 4, device=device)  # ones, not empty: pages really exist
    dst = torch.zeros_like(src)
    s = timeit(lambda: dst.copy_(src), warmup + 1, repeats, device)
    return 2 * src.nbytes / s


def machine_limits(device: str, n: int, mib: int, warmup: int, repeats: int) -> dict:
    """This device's practical limits, measured now: an n x n matmul in fp32 and in bf16 (FLOP/s)
    and a copy of `mib` MiB (bytes read + written per second). On CPU bf16 is informational
    (training stays fp32 there) and, without bf16 instructions, about 100x slower than fp32: its
    peak is measured at n / 4, 64x less work. matmul_peak_flops is the MFU denominator: bf16 on
    CUDA, where training autocasts to it, fp32 on CPU."""
    cuda = device.startswith("cuda")
    fp32 = matmul_flops(n, torch.float32, device, warmup, repeats)
    bf16 = matmul_flops(n if cuda else max(n // 4, 64), torch.bfloat16, device, warmup, repeats)
    return {"matmul_peak_flops": bf16 if cuda else fp32, "matmul_fp32_flops": fp32,
            "matmul_bf16_flops": bf16, "matmul_n": n,
            "mem_bandwidth_bytes_per_s": copy_bandwidth(mib, device, warmup, repeats)}


def _proc_bytes(key: str) -> int:
    """A `kB` line of /proc/self/status (Linux) in bytes, e.g. VmRSS, VmHWM."""
    with open("/proc/self/status") as f:
        return int(re.search(rf"{key}:\s+(\d+) kB", f.read()).group(1)) * 1024


def _maxrss() -> int:
    scale = 1 if sys.platform == "darwin" else 1024      # bytes on macOS, kB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


class PeakMemory:
    """`with PeakMemory(device) as m: ...`, then m.bytes = peak memory above the start (docstring:
    exact on CUDA, coarse on CPU). m.kind says which measure it was."""

    def __init__(self, device: str):
        self.device, self.bytes = device, 0

    def __enter__(self):
        if self.device.startswith("cuda"):
            self.kind = "cuda max_memory_allocated"
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            return self
        try:
            release_free_memory()                         # hand freed heap pages back first,
            with open("/proc/self/clear_refs", "w") as f:  # or the step reuses them unseen
                f.write("5")                              # "5": VmHWM := current VmRSS
            self.kind, self.base = "cpu peak RSS (VmHWM)", _proc_bytes("VmRSS")
        except (OSError, AttributeError):
            self.kind, self.base = "cpu ru_maxrss (never resets)", _maxrss()
        return self

    def __exit__(self, *exc):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            peak = _proc_bytes("VmHWM") if "VmHWM" in self.kind else _maxrss()
        self.bytes = max(0, peak - self.base)


class SavedBytes:
    """`with SavedBytes(model) as s: forward`, then s.bytes = distinct storages autograd saved for
    backward (activations; the model's parameters left out) and s.shapes = (shape, stride) of
    each saved tensor (stride 0 = a broadcast dimension, not materialised)."""

    def __init__(self, model):
        self.params = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.storages, self.shapes = {}, []

    def _pack(self, t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in self.params:
            self.storages[storage.data_ptr()] = storage.nbytes()  # views share one storage
        self.shapes.append((tuple(t.shape), t.stride()))
        return t

    def __enter__(self):
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self.hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self.hooks.__exit__(*exc)

    @property
    def bytes(self) -> int:
        return sum(self.storages.values())


def twin(model: GPT, attn_impl: str) -> GPT:
    """The same weights behind the other attention path."""
    other = GPT(dataclasses.replace(model.cfg, attn_impl=attn_impl))
    other.load_state_dict(model.state_dict())
    return other.to(next(model.parameters()).device)


def attention_memory(model: GPT, n_rows: int, device: str) -> dict:
    """Forward + backward at T = block_size through both attention paths, unpadded (pretraining:
    is_causal, no mask) and left-padded (GRPO: a (rows, 1, T, T) mask). Reports what autograd
    saves and whether any saved tensor is a (rows, n_head, T, T) matrix."""
    cfg = model.cfg
    T, H = cfg.block_size, cfg.n_head
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, cfg.vocab_size, (n_rows, T), generator=g).to(device)
    pads = (torch.arange(n_rows) % 8).to(device)         # 0..7 left pad tokens per row
    out = {"T": T, "rows": n_rows, "tt_per_head_bytes": n_rows * H * T * T * 4}
    for impl, m in (("sdpa", model), ("explicit", twin(model, "explicit"))):
        m.train()
        for path, pad_len in (("causal", None), ("padded", pads)):
            with PeakMemory(device) as mem:
                with SavedBytes(m) as saved:
                    _, loss = m(ids, ids, pad_len=pad_len)
                loss.backward()
            m.zero_grad(set_to_none=True)
            largest = max((shape for shape, _ in saved.shapes), key=lambda s: torch.Size(s).numel())
            out[f"{impl}_{path}"] = {
                "saved_bytes": saved.bytes, "peak_mem_bytes": mem.bytes, "largest_saved": largest,
                "saves_tt_per_head": any(len(s) >= 4 and s[-3] == H and st[-3] != 0
                                         and s[-2:] == (T, T) for s, st in saved.shapes)}
    return out


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            return re.search(r"model name\s*:\s*(.*)", f.read()).group(1).strip()
    except (OSError, AttributeError):
        return platform.processor() or platform.machine()
