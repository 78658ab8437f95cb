"""
GRPO, written out: rollout -> reward -> group advantage -> clipped policy-gradient step.

One step: for each of B prompts sample G completions with sampler.py's KV-cache sampler (each
prompt prefilled once, its cache shared by its G samples), score them with the reward of
reward.py, turn the rewards into advantages within each group (advantages.py), and update the
policy on

    J(θ) = agg_{i,t} [ min(ρ_it A_i, clip(ρ_it, 1 - ε_low, 1 + ε_high) A_i) - β k3_it ]
    ρ_it = π_θ(o_it | q, o_i<t) / π_old(o_it | q, o_i<t)

Shao et al., "DeepSeekMath", arXiv 2402.03300, eq. 3. How our defaults differ from it:
  1) advantage A_i = r_i - mean(r), no division by the group std (Dr. GRPO, arXiv 2503.20783):
     the std re-scales a group where only the preference score varies to unit size, whatever
     w_pref is (an all-wrong group whose scores differ by 0.01 gets advantages of order 1).
     `--advantage grpo` restores the z-score.
  2) loss = sum over all tokens / number of tokens in the step (DAPO, arXiv 2503.14476), so each
     token weighs the same whatever its sequence length. `--loss_agg seq` is DeepSeekMath's
     per-sequence mean, `--loss_agg constant` Dr. GRPO's sum / (N * max_new_tokens).
  3) β = 0: no KL term in the loss (DAPO, Dr. GRPO). `--kl_beta 0.04` adds DeepSeekMath's k3
     estimator against a frozen copy of the pretrained model. The copy is there at β = 0 too,
     to log the KL from the initial policy (`--watch_kl false` drops it).
  4) μ = 1 inner epoch: π_old = π_θ at the update, so ρ = 1 and the clip never acts; the step
     is REINFORCE with a group baseline (DeepSeekMath §5.2.1). `--inner_epochs 2` makes the clip
     (ε_low 0.2, ε_high 0.28: DAPO's clip-higher) matter.
  5) G = 8, a few hundred completions per step, lr ~1/10 of pretraining, T = 1 rollouts.
  6) dynamic sampling (DAPO): twice the B prompts are drawn and the B groups whose verifier
     outcomes differ are kept first, as the reward pays them (flipped, with a noisy verifier;
     a blend that pays no verifier keeps the first B, or the truth would leak into it). AdamW's
     step has the same size whatever the gradient's, so a batch in which many groups carry no
     signal is a full-size step in a noisy direction; on some seeds the first such steps broke
     the reasoning (docs/results.md, `seeds`).
     `--oversample 1` draws B.
Dropout is off in every RL forward pass. The same forward code scores tokens at sampling time
(sampler.generate records log-probs) and at training time (logprobs.token_logprobs), at the
rollout temperature: they agree to float rounding, tested.

Reading order: `grpo_step` first (the whole step, one screen), then what it calls: the
advantages (advantages.py), the loss and the update over micro-batches (grpo_loss.py), and last
grpo_stage.py, the stage: the loop of steps around it, its log (grpo_log.py) and rl.pt. Under
torchrun `grpo_step` samples with the global batch's noise, keeps the groups one process would
keep, and normalises its share of the loss by the global batch's counts, and DDP averages the
gradients: the step is the one a single process takes (tests/test_distributed.py).

What this is deliberately not: PPO with a value model, process rewards, or a rollout engine
separate from the trainer (vLLM-style).
"""

import dataclasses
from dataclasses import dataclass

import torch

import dist
from advantages import advantages_and_mask, groups_with_signal, targeted_advantages
from device import Stopwatch
from grpo_loss import kl_k3, update
from logprobs import chunked_logprobs
from reward import Scored
from sampler import Rollout, generate


@dataclass
class GRPOConfig:
    """GRPO: the group advantage, the clipped loss and its aggregation, the rollouts."""
    rl_steps: int = 100         # policy updates
    prompts_per_step: int = 16  # B
    group_size: int = 8         # G completions per prompt, >= 2 (a group's baseline needs two)
    rl_lr: float = 3e-4         # AdamW peak: linear warm-up, then linear decay to 0
    rl_warmup: int = 5          # warm-up steps of the RL learning rate
    advantage: str = "drgrpo"   # drgrpo: r - mean(r) | grpo: (r - mean(r)) / (std(r) + eps)
    std_eps: float = 1e-4       # ε of the z-score (--advantage grpo)
    loss_agg: str = "token"     # token (DAPO) | seq (DeepSeekMath) | constant (Dr. GRPO)
    inner_epochs: int = 1       # μ: updates per batch of rollouts; the clip acts only when > 1
    clip_low: float = 0.2       # ε_low
    clip_high: float = 0.28     # ε_high (clip-higher, DAPO)
    kl_beta: float = 0.0        # β of the k3 KL term in the loss
    watch_kl: bool = True       # log the KL from the initial policy at any β (a frozen copy,
                                # one no-grad forward a step); β > 0 needs it
    drop_zero_var: bool = False  # drop groups whose verifier outcomes (as paid) are all equal
    oversample: float = 2.0     # draw ceil(oversample * B) prompts, keep B groups, those whose
                                # verifier outcomes differ first (DAPO's dynamic sampling); 1: off
    truncation: str = "floor"   # floor: the blend's lowest reward | mask: left out of the loss
    rl_temperature: float = 1.0  # rollouts sample softmax(z / T); the loss uses the same π_T
    rl_grad_clip: float = 1.0   # max gradient norm, > 0 (inf: no clipping)
    rl_micro_batch: int = 16    # rows per forward + backward of the update: the gradient of the
                                # B*G rows is accumulated over chunks of this many (the same
                                # step in less memory); 0 = all rows at once
    rl_eval_every: int = 25     # quick held-out greedy accuracy every N steps
    heldout_every: int = 0      # every N steps: accuracy, gold, proxy and rank agreement of G
                                # samples of heldout_prompts fixed held-out problems, into
                                # grpo_log.jsonl (grpo_log.heldout_watch); 0: off
    heldout_prompts: int = 32   # the held-out watch's problems (the first of the in_dist set)
    rl_ckpt_every: int = 10     # save grpo.state.pt (for --resume) every N steps

    def __post_init__(self):
        choices = {"advantage": ("drgrpo", "grpo"), "loss_agg": ("token", "seq", "constant"),
                   "truncation": ("floor", "mask")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"--{name} must be one of {', '.join(allowed)}, "
                                 f"got {getattr(self, name)!r}")
        for name in ("rl_steps", "prompts_per_step", "group_size", "inner_epochs", "rl_eval_every",
                     "rl_ckpt_every", "heldout_prompts"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.group_size < 2:    # G = 1: every advantage is 0 (Dr. GRPO), or std = NaN (GRPO)
            raise ValueError(f"--group_size must be >= 2: a lone sample is its group's mean, so "
                             f"its advantage is always 0, got {self.group_size}")
        if self.rl_warmup < 0 or self.rl_micro_batch < 0 or self.heldout_every < 0:
            raise ValueError(f"--rl_warmup, --rl_micro_batch and --heldout_every must be >= 0, "
                             f"got {self.rl_warmup}, {self.rl_micro_batch}, {self.heldout_every}")
        if not self.oversample >= 1:
            raise ValueError(f"--oversample must be >= 1 (1: off), got {self.oversample}")
        for name in ("rl_lr", "std_eps", "rl_temperature", "rl_grad_clip"):
            if not getattr(self, name) > 0:        # a clip of 0 would zero every gradient
                raise ValueError(f"--{name} must be > 0, got {getattr(self, name)}")
        if not (0 <= self.clip_low < 1 and self.clip_high >= 0 and self.kl_beta >= 0):
            raise ValueError("need 0 <= --clip_low < 1, --clip_high >= 0 and --kl_beta >= 0")
        if self.kl_beta > 0 and not self.watch_kl:
            raise ValueError(f"--kl_beta {self.kl_beta} needs the reference policy: drop "
                             f"--watch_kl false")

# ------------------------------------------------------------------------------------------------
# one step: rollout -> reward -> advantages -> loss -> update

@dataclass
class Step:
    """What one grpo_step did, for the log (grpo_log.step_metrics); rows of this rank only."""
    rollout: Rollout            # n = b * G rows
    scored: Scored              # the reward's terms, total r (n,) and what it watches
    verifier: torch.Tensor      # (b, G) raw 0/1 exact match, never flipped
    drawn: torch.Tensor         # (n_drawn,) the exact match on every completion drawn (oversample)
    keep: torch.Tensor          # (n,) rows in the loss
    mask: torch.Tensor          # (n, T) tokens in the loss
    entropy: torch.Tensor       # (n, T) H[π_T] at each generated position
    kl: torch.Tensor | None     # (n, T) k3 against the reference, with one
    log_ratio: torch.Tensor | None  # (n, T) log π_θ/π_ref, with a reference
    loss: torch.Tensor          # the global batch's loss (0 without an update)
    clip_frac: torch.Tensor
    grad_norm: torch.Tensor     # before clipping (0 without an update)
    updated: bool               # False: nothing to learn, no update
    laps: dict                  # seconds: rollout, reward, ref (its forward, 0 without), update


def grpo_step(policy, opt, tok, problems, reward, cfg: GRPOConfig, *, step: int, gen, guard,
              max_new_tokens: int, ref=None, trainer=None) -> Step:
    """One GRPO step on `problems` (this rank's b of the step's B prompts, or more with
    cfg.oversample: the b groups with signal are kept; policy in eval mode).

    reward(problems, texts) -> reward.Scored: the blend r_i, its terms ("correct" is the
    verifier as paid), the exact match, the floor a truncated completion earns, and the part
    only the answer's tokens get (reward targeting), or None. ref: a frozen copy of the initial
    policy, for the KL term (β > 0) or only to log the KL from it. trainer: the policy in
    DistributedDataParallel under torchrun. A step with nothing to learn (every A = 0 with
    β = 0) makes no update at all: AdamW's momentum would still move θ."""
    G, b = cfg.group_size, cfg.prompts_per_step // dist.world()     # this rank's b groups
    device = next(policy.parameters()).device
    clock = Stopwatch(device)                                        # laps read after the GPU
    # ---- 1. rollout: o_i ~ π_θ(· | q) at temperature T, G per prompt, the global batch's noise
    rollout = generate(policy, [tok.encode(p.prompt) for p in problems], num_samples=G,
                       max_new_tokens=max_new_tokens, temperature=cfg.rl_temperature,
                       stop_ids=[tok.answer_end, tok.eot], pad_id=tok.pad, generator=gen,
                       **dist.sampling_shard())
    clock.lap("rollout")
    # ---- 2. reward: r_i of each completion, every term of the blend (reward.py)
    scored = reward([p for p in problems for _ in range(G)], rollout.texts(tok.decode))
    drawn = scored.right                                             # every completion drawn
    if len(problems) > b:                                            # oversampled: keep b groups
        rollout, scored = keep_signal(rollout, scored, G, b, tok.pad)  # signal first (DAPO)
    # ---- 3. advantages: A_i = r_i - mean(r) in each group of G (advantages.py)
    verifier = scored.right.to(device).view(b, G)                    # raw 0/1 exact match
    part = scored.answer_only.to(device).view(b, G) if scored.answer_only is not None else None
    adv, keep, adv_part = advantages_and_mask(scored.total.to(device).view(b, G),
                                              scored.signal.to(device).view(b, G),
                                              rollout.truncated.view(b, G), cfg, scored.floor,
                                              part)
    if adv_part is not None:                                         # targeting: A (n,) -> (n, T)
        adv = targeted_advantages(adv, adv_part, (rollout.tokens == tok.answer).cumsum(1) > 0)
    clock.lap("reward")
    # ---- 4. loss and update: J(θ) over the tokens kept, normalised by the global batch's counts
    ids, pad = rollout.sequences()                                   # (n, Tp + T), (n,)
    n_prompt = rollout.prompt_ids.shape[1]
    mask = rollout.mask & keep[:, None]                              # (n, T) tokens in the loss
    n_tokens, n_seqs, n_signal = batch_counts(mask, keep, adv)
    ref_logp = (chunked_logprobs(ref, ids, pad, n_prompt, rollout.mask, cfg.rl_micro_batch,
                                 cfg.rl_temperature)[0] if ref is not None else None)  # log π_ref
    clock.lap("ref")
    updated = n_tokens.item() > 0 and (n_signal > 0 or cfg.kl_beta > 0)  # the same on all ranks
    if updated:
        logp, entropy, kl, loss, clip_frac, grad_norm = update(
            trainer or policy, opt, ids, pad, n_prompt, rollout.logprobs, adv, mask,
            rollout.mask, cfg, guard=guard, step=step, lr=rl_lr_at(step, cfg),
            max_len=max_new_tokens, n_tokens=n_tokens, n_seqs=n_seqs,
            n_rows=cfg.prompts_per_step * G, ref_logp=ref_logp)
    else:                                                            # the log's forward only
        logp, entropy = chunked_logprobs(policy, ids, pad, n_prompt, rollout.mask,
                                         cfg.rl_micro_batch, cfg.rl_temperature)
        kl = kl_k3(logp, ref_logp) if ref_logp is not None else None
        loss = clip_frac = grad_norm = torch.zeros(())
    clock.lap("update")
    log_ratio = logp.detach() - ref_logp if ref_logp is not None else None  # (n, T) log π/π_ref
    return Step(rollout, scored, verifier, drawn, keep, mask, entropy,
                kl.detach() if kl is not None else None, log_ratio, loss, clip_frac, grad_norm,
                updated, clock.laps)


def keep_signal(rollout: Rollout, scored: Scored, G: int, b: int, pad_id: int):
    """Dynamic sampling over the global batch: every rank's drawn groups, in draw order, of
    which world * b are kept, those whose outcomes differ first (scored.signal: the verifier
    as the reward pays it)
    (advantages.groups_with_signal); this rank takes the rank-th b of them, wherever they were
    drawn, so N processes keep what one process keeps (in one process every gather is the
    tensor itself)."""
    device = rollout.tokens.device                                   # nccl gathers on the GPU
    width = int(dist.gather_rows(torch.tensor([rollout.prompt_ids.shape[1]], device=device)).max())
    mine = rollout.left_pad(width, pad_id)                           # every rank's prompt width
    every = Rollout(*(dist.gather_rows(getattr(mine, f.name)) for f in dataclasses.fields(mine)))
    gather = lambda x: dist.gather_rows(x.to(device)).to(x.device)  # noqa: E731
    scored = Scored(gather(scored.total), {k: gather(v) for k, v in scored.terms.items()},
                    {k: gather(v) for k, v in scored.watched.items()}, gather(scored.right),
                    gather(scored.signal), scored.floor,
                    gather(scored.answer_only) if scored.answer_only is not None else None)
    rows = groups_with_signal(scored.signal.view(-1, G), dist.world() * b)
    rows = rows.view(dist.world(), b * G)[dist.rank()]               # (b * G,) this rank's share
    return every.select(rows), scored.select(rows)


def batch_counts(mask, keep, adv) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Over the global batch (every rank's rows): Σ_i |o_i| (tokens in the loss), the rows kept,
    and the rows kept with some A_it != 0 (the signal). mask (n, T); keep (n,); adv (n,) or
    (n, T). The loss is normalised by the first two, the same on every rank."""
    signal = keep & (adv != 0).view(len(keep), -1).any(1)            # (n,)
    n_tokens, n_seqs, n_signal = dist.all_sum(torch.stack([mask.sum(), keep.sum(), signal.sum()]))
    return n_tokens, n_seqs, int(n_signal)


# ------------------------------------------------------------------------------------------------
# the learning rate

def rl_lr_at(step: int, cfg: GRPOConfig) -> float:
    """Linear warm-up over rl_warmup steps, then linear decay to 0 at rl_steps. The decay keeps
    late updates small: at a constant learning rate the cpu preset's accuracy rose, then fell
    back while the preference score kept climbing (docs/results.md)."""
    warm = min(1.0, (step + 1) / max(cfg.rl_warmup, 1))
    return cfg.rl_lr * warm * (1 - step / cfg.rl_steps)
