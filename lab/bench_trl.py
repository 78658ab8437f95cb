"""
TRL's GRPO benchmark work, run through this project's own grpo.grpo_step: `python -m lab.bench
--trl_work`, to be timed beside TRL's GRPOTrainer on the same machine in the same sitting.

The work, fixed by TRL's benchmark: B = 16 prompts x G = 8 samples; prompts of 15-19
tokens, left-padded; exactly 24 new tokens per completion (no stop token: every row decodes to
the end); temperature 1; a token-level (DAPO) loss with β = 0 and one inner epoch; entropy
computed; grad clip 1.0; AdamW at lr 3e-4; fp32. The model: 4 layers, d_model 128, 4 heads, a
vocabulary of 50. Ours is model.GPT at that shape (RoPE, RMSNorm, tied head), so its parameter
count differs from TRL's GPT-2 (learned positions, LayerNorm, untied head) by a few
thousand out of ~0.8M; the FLOP limit below counts our own model.

The reward is in TRL's benchmark's spirit, 1 when the completion contains the prompt's right number,
with a single-digit answer so that a random policy hits it about 4 times in 10 and almost every
group has something to learn: grpo_step skips the update of a step whose advantages are all 0
(AdamW would still move θ), and the work must stay fixed. Its cost is a string check.

What it times: `grpo_step` as the training loop calls it (rollout, reward, advantages, loss,
backward, clip, AdamW), the median of --repeats steps after --warmup, and the rollout within
it. The FLOP limit: 2 N per decoded or prefilled token plus 6 N + 12 L T C per trained token
(measure.flops_per_token), over the machine's measured fp32 matmul peak: the fraction of the
step the arithmetic alone would take.

What it deliberately is not: a copy of TRL's benchmark task or tokenizer. Speed does not depend on
what the tokens say.
"""

import random
import statistics

import torch

from grpo import GRPOConfig, grpo_step
from guard import SkipNonFinite
from device import sync
from lab.measure import flops_per_token
from model import GPT, GPTConfig
from reward import Scored

B, G, NEW_TOKENS, PROMPT_LENS = 16, 8, 24, (15, 19)
SHAPE = dict(vocab_size=50, n_layer=4, n_head=4, n_embd=128, block_size=64)


class DigitTokens:
    """The few tokenizer methods grpo_step calls, over ids 0..49: 0-9 are the digits, 48 the pad;
    no stop id is ever sampled (-1), so every row decodes all 24 tokens."""
    pad, answer_end, eot = 48, -1, -1

    def encode(self, text: str) -> list[int]:
        return [int(t) for t in text.split()]

    def decode(self, ids: list[int]) -> str:
        return " ".join(str(i) for i in ids)


class Problem:
    """A prompt of random ids and its 'right number', one digit."""

    def __init__(self, rng: random.Random):
        n = rng.randint(*PROMPT_LENS)
        self.prompt = " ".join(str(rng.randrange(48)) for _ in range(n))
        self.answer = str(rng.randrange(10))


def contains_answer(problems, texts) -> Scored:
    """1.0 when the completion has the right digit among its tokens:
    contains_answer([p], ["12 7 30"]) with p.answer "7" -> terms {"correct": [1.]}, total [1.]"""
    right = torch.tensor([float(p.answer in text.split(" ")) for p, text in zip(problems, texts)])
    return Scored(right, {"correct": right}, {}, right, right)


def step_flops(n_params: int, cfg: GPTConfig, prompt_tokens: int, new_tokens: int,
               rows: int, seq_len: int) -> int:
    """FLOPs of one step: 2 N per prefilled or decoded token, 6 N + 12 L T C per trained token.
    step_flops(1000, GPTConfig(n_layer=1, n_embd=8, n_head=2), 10, 20, 4, 15)
      = 2 * 1000 * 30 + 4 * 15 * (6000 + 12 * 1 * 8 * 15) = 60000 + 60 * 7440 = 506400"""
    decode = 2 * n_params * (prompt_tokens + new_tokens)
    train = rows * seq_len * flops_per_token(n_params, cfg.n_layer, cfg.n_embd, seq_len)
    return decode + train


def bench_trl_work(device: str, fp32_peak: float, warmup: int, repeats: int,
                   seed: int = 1337) -> dict:
    """Median step and rollout seconds of grpo_step on TRL's benchmark work, and the FLOP fraction."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    cfg = GPTConfig(**SHAPE)
    policy = GPT(cfg).to(device).eval()
    tok, problems = DigitTokens(), [Problem(rng) for _ in range(B)]
    gcfg = GRPOConfig(prompts_per_step=B, group_size=G, rl_lr=3e-4, rl_warmup=0, rl_steps=10**6,
                      watch_kl=False)
    opt = torch.optim.AdamW(policy.parameters(), lr=gcfg.rl_lr, betas=(0.9, 0.95),
                            weight_decay=0.0)
    gen = torch.Generator(device=device).manual_seed(seed)
    guard = SkipNonFinite("trl_work", 1)
    times = []
    for i in range(warmup + repeats):
        sync(device)
        s = grpo_step(policy, opt, tok, problems, contains_answer, gcfg, step=0, gen=gen,
                      guard=guard, max_new_tokens=NEW_TOKENS)
        if i >= warmup:
            times.append((sum(s.laps.values()), s.laps["rollout"]))
    step_s, rollout_s = (statistics.median(col) for col in zip(*times))
    assert s.rollout.tokens.shape == (B * G, NEW_TOKENS), "every row decodes 24 tokens"
    n_prompt = sum(len(tok.encode(p.prompt)) for p in problems)
    flops = step_flops(policy.num_params(), cfg, n_prompt, B * G * NEW_TOKENS, B * G,
                       s.rollout.prompt_ids.shape[1] + NEW_TOKENS)
    return {"step_s": step_s, "rollout_s": rollout_s, "flop_fraction": flops / fp32_peak / step_s,
            "step_flops": flops, "params": policy.num_params(), "rows": B * G,
            "new_tokens": NEW_TOKENS, "repeats": repeats}
