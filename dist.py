"""
Data parallelism across processes: the few torch.distributed calls train.py makes, each one a
no-op when the run is a single process.

    torchrun --nproc_per_node=2 train.py --preset smoke    # 2 processes: gloo on CPU
    torchrun --nproc_per_node=8 train.py                   # 8 GPUs: nccl, one GPU per process

What this is: torchrun starts N copies of train.py and tells each its RANK, LOCAL_RANK and
WORLD_SIZE through the environment. `setup` joins them into one process group. Pretraining and
GRPO then wrap the model in DistributedDataParallel, which averages gradients across ranks
during backward (Li et al., "PyTorch Distributed", arXiv 2006.15704); every rank computes the
same batch order from the same seed and takes its own share of each step's global batch. Rank 0
alone writes files and prints.

What this is deliberately not: model or pipeline parallelism, or multi-node launch scripts.
"""

import datetime
import gc
import os

import torch
import torch.distributed as dist


def setup(device: str) -> tuple[int, int, str]:
    """Join the process group torchrun describes, if any; returns (rank, world size, device).

    On CUDA each process takes the GPU of its LOCAL_RANK and the backend is nccl; on CPU gloo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device
    if device.startswith("cuda"):
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
        torch.cuda.set_device(device)
    # generous timeout: while rank 0 alone trains the preference model or evaluates, the others
    # wait at a barrier
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo",
                            timeout=datetime.timedelta(hours=2))
    return dist.get_rank(), dist.get_world_size(), device


def teardown() -> None:
    """Leave the process group. The stages' DistributedDataParallel wrappers sit in reference
    cycles after their functions return; one still alive when the interpreter exits can abort
    the process ("terminate called without an active exception", SIGABRT) now and then, so
    collect them first, while the group is still up."""
    if dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum of x over all ranks (x itself in a single process)."""
    if not dist.is_initialized():
        return x
    x = x.detach().clone()
    dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x


def all_true(flag: torch.Tensor) -> bool:
    """True when the 0-dim bool `flag` is True on every rank."""
    if not dist.is_initialized():
        return bool(flag)
    x = flag.to(torch.int32)
    dist.all_reduce(x, op=dist.ReduceOp.MIN)
    return bool(x)


def sampling_shard() -> dict:
    """sampler.generate's arguments for this rank's share of a global batch: the noise drawn
    for every rank's rows (shard), and decoding that ends when every rank's rows have stopped,
    so the ranks step together (all_stopped)."""
    return {"shard": (rank(), world()), "all_stopped": lambda done: all_true(done.all())}


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's x (same shape on each) along dim 0, in rank order."""
    if not dist.is_initialized():
        return x
    kind = x.dtype
    x = x.detach().to(torch.int64 if kind == torch.bool else kind).contiguous()  # no bool in gloo
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x)
    return torch.cat(parts).to(kind)
