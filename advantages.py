"""
From rewards to advantages: how GRPO turns the G rewards of one prompt's group into a signal.

    A_i = r_i - mean_j r_j                       (Dr. GRPO, arXiv 2503.20783; the default)
    A_i = (r_i - mean_j r_j) / (std_j r_j + ε)   (GRPO, DeepSeekMath arXiv 2402.03300 §4.1.2)

The group's mean is the baseline: no value model, so a completion is pushed up when it beats its
siblings and down when it does worse. A group whose completions all scored the same carries no
signal (every A_i = 0). Around that core: what a truncated completion earns, which completions
are left out of the loss (DAPO, arXiv 2503.14476: overlong filtering, groups with no signal),
and reward targeting, the share of A that only the answer's tokens get. `cfg` is
grpo.GRPOConfig (its advantage, std_eps, truncation and drop_zero_var); each function is tested
against a group worked by hand in tests/test_grpo.py.

What this is deliberately not: a learned baseline (PPO's value model), or per-token rewards.
"""

import torch


def group_advantages(rewards: torch.Tensor, kind: str = "drgrpo", eps: float = 1e-4):
    """rewards (B, G) -> advantages (B, G).

    drgrpo: A = r - mean(r)                  (Dr. GRPO, arXiv 2503.20783)
    grpo:   A = (r - mean(r)) / (std(r) + ε) (DeepSeekMath §4.1.2; std is the sample std, n - 1,
            as in TRL: at G = 2 it is √2 times the population std)
    A group whose rewards are all equal gets A = 0 in both.
    """
    # exercise: group_advantages
    centred = rewards - rewards.mean(dim=1, keepdim=True)          # (B, G) r_i - mean(r)
    if kind == "drgrpo":
        return centred
    return centred / (rewards.std(dim=1, keepdim=True) + eps)        # (B, G)
    # end of exercise: group_advantages


def zero_variance_groups(verifier: torch.Tensor) -> torch.Tensor:
    """verifier (B, G) raw 0/1 outcomes -> (B,) True where every answer in the group scored the
    same. Read from the verifier, never the blended reward: a continuous preference score makes
    std(r) > 0 almost always, so a filter on r would never fire."""
    return (verifier == verifier[:, :1]).all(dim=1)


def groups_with_signal(verifier: torch.Tensor, b: int) -> torch.Tensor:
    """Dynamic sampling (DAPO, arXiv 2503.14476 §3.2), from one over-sampled draw: of the n
    groups drawn, keep b, those whose verifier outcomes differ first (they carry signal), then
    the first of the others to fill the batch; in draw order. verifier (n, G) -> the kept
    rows' indices (b * G,). groups_with_signal([[1, 1], [0, 1], [0, 0], [1, 0]], 2) -> rows
    of groups 1 and 3: [2, 3, 6, 7]"""
    n, G = verifier.shape
    varied = ~zero_variance_groups(verifier)                         # (n,)
    order = torch.cat([varied.nonzero().flatten(), (~varied).nonzero().flatten()])[:b]
    groups = order.sort().values                                     # (b,) in draw order
    return (groups[:, None] * G + torch.arange(G, device=groups.device)).flatten()


def advantages_and_mask(reward, signal, truncated, cfg, floor: float = 0.0,
                        part=None):
    """Rewards (B, G) of a step -> advantages (N,), which completions enter the loss (N,) and
    the share of each advantage that comes from `part` (B, G) of the reward (N,), or None.

    truncation "floor": a completion cut off at max_new_tokens gets `floor`, the lowest reward
    the blend gives any finished completion (reward.blend_floor), before the group baseline is
    taken: no better than the worst finished answer. With 0/1 rewards the floor is 0, Dr.
    GRPO's choice; with a penalty term it is below 0, or a rude wrong answer would score below
    one that never ends. "mask": it keeps its reward for the baseline but is left out of the
    loss (DAPO's overlong filtering). drop_zero_var leaves out whole groups whose `signal`
    (B, G), the verifier's 0/1 as the reward pays it (reward.Scored.signal), is all equal (DAPO's
    dynamic sampling without the refill). A is linear in r, so
    it splits by the blend's terms at the group's scale s (std(r) + ε for grpo, 1 for drgrpo):
    A_i = (part_i - mean part) / s + (rest_i - mean rest) / s; under "floor" a truncated row's
    part is 0 (the floor is all its reward)."""
    if cfg.truncation == "floor":
        reward = torch.where(truncated, floor, reward)               # (B, G) cut off: the floor
    adv = group_advantages(reward, cfg.advantage, cfg.std_eps)       # (B, G)
    keep = torch.ones_like(truncated)                                # (B, G) bool
    if cfg.truncation == "mask":
        keep &= ~truncated
    if cfg.drop_zero_var:
        keep &= ~zero_variance_groups(signal)[:, None]
    if part is None:
        return adv.flatten(), keep.flatten(), None
    if cfg.truncation == "floor":
        part = torch.where(truncated, 0.0, part)                     # (B, G)
    scale = reward.std(dim=1, keepdim=True) + cfg.std_eps if cfg.advantage == "grpo" else 1.0
    adv_part = (part - part.mean(dim=1, keepdim=True)) / scale       # (B, G) its share of A
    return adv.flatten(), keep.flatten(), adv_part.flatten()


def targeted_advantages(adv, adv_part, in_answer):
    """Reward targeting: A_it = A_i - A_part,i * [token t is not in the answer], so the part of
    the reward that reads only the answer moves only the answer's tokens (its share of A is
    taken off the reasoning's). adv, adv_part (N,); in_answer (N, T) bool -> (N, T)."""
    return adv[:, None] - adv_part[:, None] * (~in_answer).float()  # (N, T)
