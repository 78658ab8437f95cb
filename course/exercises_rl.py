"""
The exercises of the rewards and the signal: the verifier's answer span, the Bradley-Terry loss,
response log-probs, group advantages and the k3 KL.

Each is an `Exercise` (course/checks.py): its probe on fixed inputs, the properties that must
hold, and its known wrong versions, each a few exact edits of the reference body. The handouts
are docs/course.md; the references each body implements are in its own module's docstring.

What this deliberately is not: tests of the repository (tests/ holds those). These check a
student's body, whatever it is, and say what is wrong with it.
"""

import math

import torch

from course.checks import Exercise, Mistake, require

# ------------------------------------------------------------------------------------------------
# the verifier: where the answer is


SPAN_CASES = {
    "well formed": "<think>3*4=12</think><answer> 12 </answer>",
    "text after the answer": "<think>a</think><answer>7</answer> then 9",
    "empty answer": "<think>a</think><answer></answer>",
    "two answers": "<answer>1</answer><answer>2</answer>",
    "truncated": "<think>35+8=43</think><answer>Ann has 4",
    "close before open": "</answer>3<answer>",
    "think after the answer": "<answer>3</answer><think>5</think>",
    "think inside the answer": "<answer>3<think>5</think></answer>",
    "no tags": "Ann has 4 apples.",
}


def span_probe(m):
    return {label: m._answer_span(text) for label, text in SPAN_CASES.items()}


ANSWER_SPAN = Exercise(
    "answer_span", "verifiers.py", "The verifier's answer span, hostile input included", 20,
    span_probe, mistakes=(
        Mistake("last_span_wins", "two <answer> spans must give None: a policy that writes "
                "several answers would be paid whenever its last one is right. Count the tags.",
                (("if text.count(ANSWER_OPEN) != 1 or text.count(ANSWER_CLOSE) != 1:",
                  "if ANSWER_OPEN not in text or ANSWER_CLOSE not in text:"),
                 ("text.index(ANSWER_OPEN), text.index(ANSWER_CLOSE)",
                  "text.rindex(ANSWER_OPEN), text.rindex(ANSWER_CLOSE)"))),
        Mistake("truncation_pays", "a completion cut off before </answer> must give None: "
                "otherwise being truncated mid-answer can still earn the reward.",
                (("if text.count(ANSWER_OPEN) != 1 or text.count(ANSWER_CLOSE) != 1:\n"
                  "        return None",
                  "if text.count(ANSWER_OPEN) != 1:\n        return None\n"
                  "    if ANSWER_CLOSE not in text:\n"
                  "        return text[text.index(ANSWER_OPEN) + len(ANSWER_OPEN):]"),)),
        Mistake("think_order_ignored", "a <think> or </think> tag inside or after the answer is "
                "a malformed response: give None, never a number read from it.",
                (("    if THINK_OPEN in text[start:] or THINK_CLOSE in text[start:]:\n"
                  "        return None  # a think tag inside or after the answer: nested or "
                  "out of order\n", ""),))))

# ------------------------------------------------------------------------------------------------
# the preference model's loss


def bt_probe(m):
    g = torch.Generator().manual_seed(0)
    r_c, r_r = torch.randn(16, generator=g), torch.randn(16, generator=g)
    return {"c=0": m.bt_loss(r_c, r_r), "c=0.01": m.bt_loss(r_c, r_r, 0.01),
            "margin -200": m.bt_loss(torch.tensor([-200.0]), torch.tensor([0.0]))}


def bt_by_hand(m):
    got = m.bt_loss(torch.tensor([2.0]), torch.tensor([0.0]), 0.01).item()
    require(abs(got - 0.166928) < 1e-5, f"bt_loss([2.], [0.], 0.01) should be -log σ(2) + "
            f"0.01·2² = 0.126928 + 0.04 = 0.166928, got {got:.6f}")


def bt_finite(m):
    got = m.bt_loss(torch.tensor([-200.0]), torch.tensor([0.0])).item()
    require(math.isfinite(got), f"a chosen side scored 200 below the rejected one gives a loss "
            f"of {got}: compute -log σ(x) stably (F.logsigmoid), it is 200 here")


BT_LOSS = Exercise(
    "bt_loss", "bradley_terry.py", "The Bradley-Terry loss with its centring penalty", 10,
    bt_probe, (bt_by_hand, bt_finite), (
        Mistake("swapped", "chosen and rejected are swapped: the loss is -log σ(r_chosen - "
                "r_rejected), low when the chosen side scores higher.",
                (("-F.logsigmoid(r_chosen - r_rejected)",
                  "-F.logsigmoid(r_rejected - r_chosen)"),)),
        Mistake("log_of_sigmoid", "log(σ(x)) underflows to log 0 = -inf once x is below about "
                "-100 in float32: use F.logsigmoid, which is exact there.",
                (("-F.logsigmoid(r_chosen - r_rejected)",
                  "-torch.log(torch.sigmoid(r_chosen - r_rejected))"),)),
        Mistake("sum_not_mean", "the loss is the mean over pairs, not the sum: with a sum the "
                "step size grows with the batch.",
                (("-F.logsigmoid(r_chosen - r_rejected).mean()",
                  "-F.logsigmoid(r_chosen - r_rejected).sum()"),)),
        Mistake("centring_the_difference", "the centring penalty is c·(r_c + r_r)²: it pins the "
                "scores' mean near 0. On the difference it fights the loss itself.",
                (("(r_chosen + r_rejected).pow(2)", "(r_chosen - r_rejected).pow(2)"),))))

# ------------------------------------------------------------------------------------------------
# the policy's log-probs of its own completions


def tiny_model(seed: int = 0, vocab: int = 32):
    from model import GPT, GPTConfig
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, block_size=32, n_layer=1, n_head=2, n_embd=16)).eval()


def logprobs_probe(m):
    model = tiny_model()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 32, (3, 9), generator=g)                  # 4 prompt + 5 completion
    pad = torch.tensor([2, 0, 1])
    ids[0, :2], ids[2, :1] = 0, 0                                    # left padding
    out = {}
    for T in (1.0, 0.7):
        logp, entropy = m.token_logprobs(model, ids, pad, 4, with_entropy=True, temperature=T)
        out[f"T={T}"] = {"logp": logp, "entropy": entropy, "differentiable": logp.requires_grad}
    return out


def logprobs_bounds(m):
    logp, entropy = m.token_logprobs(tiny_model(), torch.randint(3, 32, (2, 8)),
                                     torch.zeros(2, dtype=torch.long), 3, with_entropy=True)
    require(logp.shape == (2, 5), f"8 ids with a 3-token prompt have 5 completion tokens: "
            f"logp should be (2, 5), got {tuple(logp.shape)}")
    require(bool((logp <= 0).all()), "a log-probability is never above 0")
    require(bool((entropy >= 0).all() & (entropy <= math.log(32) + 1e-5).all()),
            "the entropy of a distribution over 32 tokens lies in [0, log 32]")


TOKEN_LOGPROBS = Exercise(
    "token_logprobs", "logprobs.py", "Response log-probs and entropy at the rollout temperature",
    25, logprobs_probe, (logprobs_bounds,), (
        Mistake("off_by_one", "the logits at position t predict token t + 1: the completion's "
                "first token is scored by the prompt's last position (n_prompt - 1).",
                (("model(ids[:, :-1], pad_len=pad)", "model(ids, pad_len=pad)"),
                 ("logits[:, n_prompt - 1:]", "logits[:, n_prompt:]"))),
        Mistake("prompt_tokens_scored", "only the completion's tokens are scored: the prompt is "
                "given, and its tokens would enter the policy gradient's average.",
                (("logits = logits[:, n_prompt - 1:]", "logits = logits"),
                 ("ids[:, n_prompt:, None]", "ids[:, 1:, None]"))),
        Mistake("no_temperature", "the rollouts were drawn from softmax(z / T): score them under "
                "the same π_T, or the ratio π_θ / π_old is off from the first step.",
                (("logits = logits / temperature", "logits = logits"),)),
        Mistake("detached", "the update differentiates these log-probs: cut from the graph, "
                "they give the policy gradient nothing to flow through.",
                (("F.log_softmax(logits.float(), dim=-1)",
                  "F.log_softmax(logits.float(), dim=-1).detach()"),))))

# ------------------------------------------------------------------------------------------------
# group advantages


REWARDS = [[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5], [2.0, 0.0, 1.0, 3.0]]


def advantages_probe(m):
    return {kind: m.group_advantages(torch.tensor(REWARDS), kind, 1e-4)
            for kind in ("drgrpo", "grpo")}


def advantages_sum_to_zero(m):
    r = torch.rand(5, 8, generator=torch.Generator().manual_seed(0))
    for kind in ("drgrpo", "grpo"):
        a = m.group_advantages(r, kind, 1e-4)
        require(a.shape == r.shape, f"{kind}: advantages have the rewards' shape (B, G)")
        require(bool((a.sum(1).abs() < 1e-4).all()),
                f"{kind}: each group's advantages should sum to 0 (the group mean is the "
                f"baseline); row sums are {a.sum(1).tolist()}")


def advantages_by_hand(m):
    a = m.group_advantages(torch.tensor([[1.0, 0.0, 0.0, 1.0]]), "grpo", 1e-4)
    want = 0.5 / (math.sqrt(1 / 3) + 1e-4)                           # sample std: √(1/3)
    require(abs(a[0, 0].item() - want) < 1e-5, f"grpo on [1, 0, 0, 1]: (1 - 0.5) / (√(1/3) + "
            f"1e-4) = {want:.5f}, got {a[0, 0].item():.5f}")


GROUP_ADVANTAGES = Exercise(
    "group_advantages", "advantages.py", "Group advantages: Dr. GRPO's and GRPO's", 15,
    advantages_probe, (advantages_sum_to_zero, advantages_by_hand), (
        Mistake("batch_normalised", "the mean (and std) are taken over the whole batch; the "
                "baseline is each prompt's own group: reduce over dim 1 with keepdim=True.",
                (("rewards.mean(dim=1, keepdim=True)", "rewards.mean()"),
                 ("rewards.std(dim=1, keepdim=True)", "rewards.std()"))),
        Mistake("biased_std", "that is the population std (divide by G); the convention here is "
                "the sample std (divide by G - 1, torch's default and TRL's).",
                (("rewards.std(dim=1, keepdim=True)",
                  "rewards.std(dim=1, keepdim=True, correction=0)"),)),
        Mistake("no_eps", "a group whose rewards are all equal has std 0, and 0 / 0 is NaN: add "
                "ε to the std, so that its advantages are 0.", (("+ eps)", ")"),)),
        Mistake("std_in_drgrpo", "Dr. GRPO's advantage is r - mean(r), with no division by the "
                "std: that is the point of it.",
                (("    if kind == \"drgrpo\":\n        return centred\n", ""),))))

# ------------------------------------------------------------------------------------------------
# the k3 KL


def kl_inputs():
    g = torch.Generator().manual_seed(0)
    return -3 * torch.rand(3, 5, generator=g), -3 * torch.rand(3, 5, generator=g)


def kl_probe(m):
    logp, ref = kl_inputs()
    return {"k3": m.kl_k3(logp, ref), "far apart": m.kl_k3(torch.tensor([-120.0]),
                                                           torch.tensor([-2.0]))}


def kl_unbiased(m):
    """Σ_x π_θ(x) k3(x) = KL(π_θ ‖ π_ref) exactly, for two distributions over 6 tokens."""
    g = torch.Generator().manual_seed(1)
    logp = torch.log_softmax(torch.randn(6, generator=g, dtype=torch.float64), 0)
    ref = torch.log_softmax(torch.randn(6, generator=g, dtype=torch.float64), 0)
    expected = (logp.exp() * (logp - ref)).sum().item()
    got = (logp.exp() * m.kl_k3(logp, ref)).sum().item()
    require(abs(got - expected) < 1e-6, f"under π_θ the mean of k3 should be KL(π_θ ‖ π_ref) = "
            f"{expected:.6f}, got {got:.6f}")
    require(bool((m.kl_k3(logp, ref) >= 0).all()), "k3 is never negative")


KL_K3 = Exercise(
    "kl_k3", "grpo_loss.py", "Schulman's k3 estimator of the KL", 10, kl_probe,
    (kl_unbiased,), (
        Mistake("ratio_inverted", "k3 takes r = π_ref / π_θ; with π_θ / π_ref its mean under "
                "π_θ is no longer KL(π_θ ‖ π_ref).", (("(ref_logp - logp)", "(logp - ref_logp)"),)),
        Mistake("k1", "that is k1 = log π_θ/π_ref: unbiased, but negative on some tokens; k3 adds "
                "r - 1, whose mean under π_θ is 0, and is never negative.",
                (("torch.exp(log_ratio) - log_ratio - 1", "-log_ratio"),)),
        Mistake("unbounded", "bound |log r| before exp: one token far from the reference "
                "(π_θ tiny, π_ref not) overflows exp to inf.",
                ((".clamp(-LOG_RATIO_BOUND, LOG_RATIO_BOUND)", ""),))))
