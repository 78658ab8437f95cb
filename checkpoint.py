"""
The run directory: checkpoints, their JSON metadata, the tokenizer file, and report.json.

What this is: every stage of train.py writes into one folder, out/<run>/ by default:

    out/cpu/
      config.json            every stage's config; the folder belongs to this config
      progress.json          the stages asked for and those finished (read by --resume)
      tokenizer.tiktoken     the BPE ranks (data/tokenizer.py), shared by every model of the run
      pretrain.pt            state_dict of the pretrained GPT (torch.save; loaded weights_only)
      pretrain.json          {"model": GPTConfig fields, "tokenizer": its fingerprint, ...}
      pretrain.state.pt      while the stage runs: everything needed to continue it (below)
      report.json            each stage merges its summary figures in here

Every write is atomic (temporary file, fsync, rename), so a crash never leaves half a file, and
`load_model` checks what it reads and says in one line what is wrong (missing file, a file that
is not a checkpoint, a tokenizer that does not match the model).

Resuming: every N steps a training loop saves <stage>.state.pt with `save_state`: weights,
optimizer moments, the step, the data position, every random generator's state and the loop's
running figures. `load_state` gives it back, and the loop continues as if never stopped: on CPU
the finished run is bit-identical to one that was never interrupted (tests/test_resume.py). The
state file is deleted when its stage finishes. Nothing non-finite is ever written: `save_state`
and `save_model` refuse a tensor holding NaN or Inf.

What this is deliberately not: a general checkpoint format, or a checkpoint history (each save
replaces the last).
"""

import dataclasses
import json
import os
import random

import torch

import dist
from data.tokenizer import Tokenizer
from guard import NonFiniteError
from model import GPT, GPTConfig


def atomic_write(path: str, write) -> None:
    """Call write(tmp_path), fsync it, rename it over `path`, fsync the folder (so the rename
    itself survives a power cut): a reader sees the old file or the new one, never half."""
    tmp = f"{path}.tmp"
    write(tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    folder = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def write_text(path: str, text: str) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    atomic_write(path, write)


def write_json(path: str, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str):
    """json.load, with a one-line error naming the file when it is not JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None


def open_log(path: str, rows: list[dict]):
    """A stage's JSONL log, one row per step: rewritten with `rows` (the steps done so far, from
    the training state after a resume; none on a fresh start), then opened for appending."""
    write_text(path, "".join(json.dumps(row) + "\n" for row in rows))
    return open(path, "a")


def update_report(out_dir: str, figures: dict) -> dict:
    """Merge `figures` into out_dir/report.json (nested dicts merge key by key)."""
    path = os.path.join(out_dir, "report.json")
    report = read_json(path) if os.path.exists(path) else {}

    def merge(dst: dict, src: dict):
        for k, v in src.items():
            if isinstance(v, dict) and isinstance(dst.get(k), dict):
                merge(dst[k], v)
            else:
                dst[k] = v
    merge(report, figures)
    write_json(path, report)
    return report


def assert_finite(obj, what: str) -> None:
    """Raise NonFiniteError if any floating tensor inside obj (nested dicts/lists) is NaN or Inf."""
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() and not bool(torch.isfinite(obj).all()):
            raise NonFiniteError(f"refusing to save {what}: it holds NaN or Inf")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            assert_finite(v, f"{what}[{k!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            assert_finite(v, f"{what}[{i}]")


def save_model(out_dir: str, name: str, model: GPT, meta: dict) -> None:
    """out_dir/<name>.pt (state dict) and out_dir/<name>.json (model config + meta)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    assert_finite(state, f"{name}.pt")
    atomic_write(os.path.join(out_dir, f"{name}.pt"), lambda tmp: torch.save(state, tmp))
    write_json(os.path.join(out_dir, f"{name}.json"),
               {"model": dataclasses.asdict(model.cfg), **meta})


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
    if tok.n_vocab != cfg.vocab_size or meta.get("tokenizer", tok.fingerprint) != tok.fingerprint:
        raise ValueError(f"{out_dir}/tokenizer.tiktoken ({tok.n_vocab} tokens, fingerprint "
                         f"{tok.fingerprint}) is not the tokenizer {name}.pt was trained with "
                         f"({cfg.vocab_size} tokens, {meta.get('tokenizer')})")
    model = GPT(cfg)
    load_weights(model, state, os.path.join(out_dir, f"{name}.pt"))
    return model.to(device), tok, meta


# ------------------------------------------------------------------------------------------------
# training state, for --resume

def rng_state(device: str, **generators) -> dict:
    """The state of torch's global CPU generator, of the run device's global CUDA generator (and
    no other GPU's), and of each named torch.Generator or random.Random, ready for save_state."""
    state = {"torch": torch.get_rng_state(), "devices": {}}
    if torch.device(device).type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    for name, g in generators.items():
        state[name] = g.getstate() if isinstance(g, random.Random) else g.get_state()
        state["devices"][name] = "cpu" if isinstance(g, random.Random) else g.device.type
    return state


def set_rng_state(stage: str, state: dict, device: str, reseed: int, **generators) -> list[str]:
    """Put back what rng_state saved, into the same generators, on `device`.

    A CPU generator state and a CUDA one differ, so a generator saved on one kind of device
    cannot continue on the other: it is seeded with `reseed` instead, and rank 0 says so in one
    line. Returns the names of the generators re-seeded ("cuda" for torch's global CUDA
    generator); empty when the run continues exactly as if never stopped."""
    torch.set_rng_state(state["torch"])
    reseeded = []
    if torch.device(device).type == "cuda":
        if "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"], device)
        else:                                    # saved on a CPU run: nothing to continue
            with torch.cuda.device(device):      # the run's GPU, not the current one
                torch.cuda.manual_seed(reseed)
            reseeded.append("cuda")
    for name, g in generators.items():
        if isinstance(g, random.Random):
            g.setstate(_tuples(state[name]))
        elif state.get("devices", {}).get(name, g.device.type) == g.device.type:
            g.set_state(state[name])
        else:
            g.manual_seed(reseed)
            reseeded.append(name)
    if reseeded and dist.rank() == 0:
        print(f"{stage}: resumed on {device} from a state saved on another kind of device; "
              f"re-seeded {', '.join(reseeded)} with {reseed}: the run continues, but not "
              f"bit-identical to an uninterrupted one")
    return reseeded


def load_optimizer(opt: torch.optim.Optimizer, saved: dict) -> None:
    """opt.load_state_dict(saved), keeping opt's own implementation flags (fused, foreach,
    capturable): they say how this device runs the update, not what the state holds, and a
    fused CUDA optimizer's flag restored onto a CPU run (or the reverse) would pick the wrong
    kernel. AdamW's step counts follow where those flags want them (the parameter's device for
    fused or capturable, else the CPU)."""
    flags = [{k: g[k] for k in ("fused", "foreach", "capturable") if k in g}
             for g in opt.param_groups]
    opt.load_state_dict(saved)
    for group, own in zip(opt.param_groups, flags):
        group.update(own)
        for p in group["params"]:
            st = opt.state.get(p, {})
            if torch.is_tensor(st.get("step")):
                on_device = group.get("fused") or group.get("capturable")
                st["step"] = st["step"].to(p.device if on_device else "cpu", torch.float32)


def _tuples(x):
    """random.Random.setstate wants the nested tuples back (a checkpoint may hold lists)."""
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def save_training(out_dir: str, stage: str, *, step: int, model, opt, device: str,
                  generators: dict, **figures) -> None:
    """<stage>.state.pt: the step, the weights, the AdamW moments, every generator of the stage
    and the loop's own running figures (`figures`: its log so far, its data position, ...)."""
    save_state(out_dir, stage, {"step": step, "model": model.state_dict(),
                                "optimizer": opt.state_dict(),
                                "rng": rng_state(device, **generators), **figures})


def resume_training(out_dir: str, stage: str, *, model, opt, device: str, seed: int,
                    generators: dict) -> dict | None:
    """The other half of save_training: None when out_dir holds no state of `stage`; else the
    weights, the moments and the generators are put back in place (a generator saved on
    another kind of device is seeded with seed + step) and the state is returned, for the
    loop to read its step and its own figures from."""
    state = load_state(out_dir, stage)
    if state is not None:
        model.load_state_dict(state["model"])
        load_optimizer(opt, state["optimizer"])
        set_rng_state(stage, state["rng"], device, seed + state["step"], **generators)
    return state


def state_path(out_dir: str, stage: str) -> str:
    return os.path.join(out_dir, f"{stage}.state.pt")


def save_state(out_dir: str, stage: str, state: dict) -> None:
    """Write out_dir/<stage>.state.pt atomically; refuse if anything in it is NaN or Inf."""
    assert_finite(state, f"{stage}.state.pt")
    atomic_write(state_path(out_dir, stage), lambda tmp: torch.save(state, tmp))


def load_state(out_dir: str, stage: str) -> dict | None:
    """The saved state of `stage` (on the CPU: load_state_dict moves it), or None when there is
    none; a one-line error when it cannot be read."""
    path = state_path(out_dir, stage)
    if not os.path.exists(path):
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:                       # truncated or corrupt file: say which
        raise ValueError(f"{path}: cannot be read as a training state ({type(e).__name__}); "
                         f"delete it to restart the stage from its beginning") from None


def clear_state(out_dir: str, stage: str) -> None:
    if os.path.exists(state_path(out_dir, stage)):
        os.remove(state_path(out_dir, stage))
