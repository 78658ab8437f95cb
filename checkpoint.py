"""
The run directory: checkpoints, their JSON metadata, the tokenizer file, and report.json.

What this is: every stage of train.py writes into one folder, out/<run>/ by default:

    out/cpu/
      tokenizer.tiktoken     the BPE ranks (data/tokenizer.py), shared by every model of the run
      pretrain.pt            state_dict of the pretrained GPT (torch.save; loaded weights_only)
      pretrain.json          {"model": GPTConfig fields, "config": every stage's config, ...}
      report.json            each stage merges its summary figures in here

Every write is atomic (temporary file, fsync, rename), so a crash never leaves half a file, and
`load_model` checks what it reads and says in one line what is wrong (missing file, a file that
is not a checkpoint, a tokenizer that does not match the model).

What this is deliberately not: a general checkpoint format. Optimizer state for resuming is the
business of the training loops that need it.
"""

import dataclasses
import json
import os

import torch

from data.tokenizer import Tokenizer
from model import GPT, GPTConfig


def atomic_write(path: str, write) -> None:
    """Call write(tmp_path), fsync it, then rename over `path`."""
    tmp = f"{path}.tmp"
    write(tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_text(path: str, text: str) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    atomic_write(path, write)


def write_json(path: str, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def update_report(out_dir: str, figures: dict) -> dict:
    """Merge `figures` into out_dir/report.json (nested dicts merge key by key)."""
    path = os.path.join(out_dir, "report.json")
    report = json.load(open(path)) if os.path.exists(path) else {}

    def merge(dst: dict, src: dict):
        for k, v in src.items():
            if isinstance(v, dict) and isinstance(dst.get(k), dict):
                merge(dst[k], v)
            else:
                dst[k] = v
    merge(report, figures)
    write_json(path, report)
    return report


def save_model(out_dir: str, name: str, model: GPT, meta: dict) -> None:
    """out_dir/<name>.pt (state dict) and out_dir/<name>.json (model config + meta)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(os.path.join(out_dir, f"{name}.pt"), lambda tmp: torch.save(state, tmp))
    write_json(os.path.join(out_dir, f"{name}.json"), {"model": dataclasses.asdict(model.cfg), **meta})


def read_checkpoint(out_dir: str, name: str, device: str = "cpu") -> tuple[dict, dict, GPTConfig]:
    """out_dir/<name>.pt and .json -> (state dict, meta, GPTConfig of meta["model"]).

    torch.load(weights_only=True): a checkpoint holds tensors, never code. Every failure is one
    line that names the file: missing, not JSON, not a checkpoint, truncated."""
    pt, js = os.path.join(out_dir, f"{name}.pt"), os.path.join(out_dir, f"{name}.json")
    for path in (pt, js):
        if not os.path.exists(path):
            raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        meta = json.load(open(js))
        cfg = GPTConfig(**meta["model"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{js}: not a checkpoint description ({type(e).__name__}: {e})") from None
    try:
        state = torch.load(pt, map_location=device, weights_only=True)
    except Exception as e:                       # truncated or corrupt file: say which
        raise ValueError(f"{pt}: cannot be read as a checkpoint ({type(e).__name__})") from None
    return state, meta, cfg


def load_weights(module: torch.nn.Module, state: dict, path: str) -> None:
    """module.load_state_dict(state), with a one-line error naming the file on a mismatch."""
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not match its config ({str(e).splitlines()[0]})"
                         ) from None


def load_model(out_dir: str, name: str, device: str = "cpu") -> tuple[GPT, Tokenizer, dict]:
    """Load out_dir/<name>.pt with its JSON and the run's tokenizer; one-line errors."""
    state, meta, cfg = read_checkpoint(out_dir, name, device)
    tok = Tokenizer.load(os.path.join(out_dir, "tokenizer.tiktoken"))
    if tok.n_vocab != cfg.vocab_size:
        raise ValueError(f"tokenizer.tiktoken has {tok.n_vocab} tokens but {name} expects "
                         f"{cfg.vocab_size}: they come from different runs")
    model = GPT(cfg)
    load_weights(model, state, os.path.join(out_dir, f"{name}.pt"))
    return model.to(device), tok, meta
