"""
What a stage asks of the device it runs on, beside the maths: the precision its matmuls run in,
a clock that waits for the device, and memory handed back between stages.

    with autocast(device, precision(device, run.precision)):   # bf16 on a GPU, nothing on a CPU
    clock = Stopwatch(device)        # t = 0 once the device has finished what was queued
    ...; clock.lap("rollout")        # seconds since the last lap, read after the device caught up
    release_free_memory()            # between stages: free heap pages go back to the OS

bf16 is autocast, not bf16 weights: the weights, AdamW's moments, the logits, log-probabilities,
ratios and losses stay fp32 (model.forward returns fp32 logits, logprobs.py takes its softmax in
fp32, the preference model's score is computed in fp32), and the matmuls and attention run in
bfloat16. On a CPU a bf16 matmul is slower than an fp32 one (docs/speed.md), so `auto` keeps
fp32 there and the CPU run is the same code it always was.

CUDA runs asynchronously: a kernel is queued and the Python line after it runs at once, so a
clock read without `sync` times the queueing, not the work. On a CPU `sync` does nothing.

What this is deliberately not: a profiler (lab/measure.py holds the benchmark's instruments).
"""

import ctypes
import time

import torch

PRECISIONS = ("auto", "bf16", "fp32")


def precision(device, requested: str) -> str:
    """What --precision means on `device`: auto is bf16 on a CUDA GPU that has bfloat16, fp32
    elsewhere. precision("cpu", "auto") -> "fp32" """
    if requested != "auto":
        return requested
    return "bf16" if str(device).startswith("cuda") and torch.cuda.is_bf16_supported() else "fp32"


def autocast(device, resolved: str):
    """The context a stage's forward passes run in: bf16 autocast on CUDA when `resolved` is
    bf16, else one that does nothing."""
    return torch.autocast("cuda", dtype=torch.bfloat16,
                          enabled=str(device).startswith("cuda") and resolved == "bf16")


def sync(device) -> None:
    """Wait until `device` (a string or torch.device) has finished every queued kernel."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


class Stopwatch:
    """Laps of wall-clock time, each read after the device caught up: laps[name] = seconds."""

    def __init__(self, device):
        self.device, self.laps = device, {}
        sync(device)
        self.t = time.time()

    def lap(self, name: str) -> float:
        sync(self.device)
        now = time.time()
        self.laps[name] = self.laps.get(name, 0.0) + now - self.t   # a name lapped twice adds up
        self.t = now
        return self.laps[name]


def large_blocks_mapped(threshold: int = 1 << 20) -> None:
    """glibc's mallopt(M_MMAP_THRESHOLD, threshold): every block of `threshold` bytes or more
    gets pages of its own, handed back to the OS when it is freed. Left alone, glibc raises the
    threshold each time it frees a large mapped block (up to 32 MiB): after pretraining's large
    activations, GRPO's tensors of a few MiB came from the heap, whose holes fit few of them,
    and a step's resident set grew well past what its tensors need (docs/speed.md, Memory).
    Costs a page fault per page of each large block. A no-op where there is no glibc."""
    glibc("mallopt", -3, threshold)                                  # -3: M_MMAP_THRESHOLD


def release_free_memory() -> None:
    """glibc's malloc_trim(0): hand the heap's free pages back to the OS. glibc keeps freed
    memory for reuse, and memory a stage has freed in blocks of other sizes is often not
    reused by the next one, so without this the resident set of a run of several stages grows
    stage by stage. A no-op where there is no glibc."""
    glibc("malloc_trim", 0)


def glibc(name: str, *args: int) -> None:
    """Call glibc's function `name` with integer arguments; nothing where there is no glibc
    (macOS, Windows, musl)."""
    try:
        getattr(ctypes.CDLL("libc.so.6"), name)(*args)
    except (OSError, AttributeError):
        pass
