"""GRPO's pure math against groups worked by hand, and sampling vs training log-probs."""

import copy
import json
import math

import pytest
import torch

from data.problems import TaskConfig, make_splits
from data.tokenizer import Tokenizer, train_bpe
from advantages import (advantages_and_mask, group_advantages, groups_with_signal,
                        targeted_advantages, zero_variance_groups)
from bradley_terry import PreferenceConfig
from checkpoint import save_model
from grpo import GRPOConfig, grpo_step, rl_lr_at
from grpo_stage import train_grpo
from grpo_loss import kl_k3, policy_loss, update
from grpo_log import heldout_watch, ranking_agreement
from guard import SkipNonFinite
from logprobs import micro_batches, token_logprobs
from model import GPT, GPTConfig
from reward import Reward, RewardConfig, Scored
from sampler import generate
from train import RunConfig


def test_advantages_by_hand():
    """r = [1, 0, 0.5, 0.5]: mean 0.5, deviations [.5, -.5, 0, 0],
    sample variance 0.5 / 3 = 1/6, std 0.408248."""
    r = torch.tensor([[1.0, 0.0, 0.5, 0.5]])
    assert group_advantages(r, "drgrpo").tolist() == [[0.5, -0.5, 0.0, 0.0]]
    z = group_advantages(r, "grpo", eps=1e-4)
    expected = 0.5 / (math.sqrt(1 / 6) + 1e-4)
    assert torch.allclose(z, torch.tensor([[expected, -expected, 0.0, 0.0]]))
    # a group whose rewards are all equal has no advantage, in both kinds
    flat = torch.tensor([[0.7, 0.7, 0.7, 0.7]])
    assert group_advantages(flat, "grpo").abs().max() == 0 and group_advantages(flat).abs().max() == 0


def test_zscore_turns_a_tiny_preference_spread_into_unit_advantages():
    """All-wrong group, verifier 0, preference spread 0.01 -> the z-score (DeepSeekMath) makes it
    O(1) whatever the weight; Dr. GRPO keeps it at 0.01 scale."""
    r = torch.tensor([[0.0, 0.01, 0.02, 0.03]])
    assert group_advantages(r, "grpo").abs().max() > 1.0
    assert group_advantages(r, "drgrpo").abs().max() < 0.02


# four completions of lengths 1, 2, 3, 2 with advantages 1, -1, 2, 0, at ratio 1 (logp = old):
# every token's term is -A_i, so Σ_i Σ_t ℓ = -(1·1 - 1·2 + 2·3 + 0·2) = -5.
LENGTHS = [1, 2, 3, 2]
ADV = torch.tensor([1.0, -1.0, 2.0, 0.0])


def _group():
    mask = torch.tensor([[t < n for t in range(4)] for n in LENGTHS])
    logp = torch.full((4, 4), -1.0, requires_grad=True)
    return logp, mask


@pytest.mark.parametrize("agg, value", [
    ("token", -5 / 8),                      # sum / total tokens (8)
    ("seq", (-1 + 1 - 2 + 0) / 4),          # per-sequence means -1, 1, -2, 0, then mean
    ("constant", -5 / (4 * 4)),             # sum / (N · max_len), max_len 4
])
def test_loss_aggregations_by_hand(agg, value):
    logp, mask = _group()
    loss, clip_frac = policy_loss(logp, logp.detach(), ADV, mask, agg=agg, max_len=4)
    assert loss.item() == pytest.approx(value)
    assert clip_frac.item() == 0.0
    loss.backward()
    grad = logp.grad
    for i, n in enumerate(LENGTHS):
        expected = {"token": -ADV[i] / 8, "seq": -ADV[i] / (4 * n), "constant": -ADV[i] / 16}[agg]
        assert torch.allclose(grad[i, :n], expected.expand(n))          # each real token
        assert grad[i, n:].abs().max() == 0                              # padding: nothing


@pytest.mark.parametrize("agg", ["token", "seq", "constant"])
def test_two_ranks_shares_of_the_loss_add_up_to_the_whole(agg):
    """Data parallel: rows 0-1 on one rank, rows 2-3 on the other, each normalised by the global
    batch's token and sequence counts. The two losses sum to the one-process loss, and so do
    their gradients (DDP then averages world * loss over the 2 ranks)."""
    logp, mask = _group()
    whole, _ = policy_loss(logp, logp.detach(), ADV, mask, agg=agg, max_len=4)
    whole.backward()
    n_tokens = mask.sum().float()
    parts = []
    for rows in (slice(0, 2), slice(2, 4)):
        lp = logp.detach()[rows].clone().requires_grad_()
        loss, _ = policy_loss(lp, lp.detach(), ADV[rows], mask[rows], agg=agg, max_len=4,
                              n_tokens=n_tokens, n_seqs=4, n_rows=4)
        loss.backward()
        parts.append((loss, lp.grad))
    assert (parts[0][0] + parts[1][0]).item() == pytest.approx(whole.item())
    assert torch.allclose(torch.cat([g for _, g in parts]), logp.grad)


def test_token_level_weighs_every_token_the_same():
    """DAPO: with equal advantages a long completion's tokens get the same gradient as a short
    one's; per-sequence averaging gives the short one's tokens 3x more here."""
    logp, mask = _group()
    adv = torch.ones(4)
    policy_loss(logp, logp.detach(), adv, mask, agg="token")[0].backward()
    g = logp.grad[mask]
    assert torch.allclose(g, g[0].expand_as(g))


def test_clip_by_hand():
    """ρ = 1.5 with A = 1 clips at 1 + 0.28; ρ = 0.5 with A = -1 clips at 1 - 0.2; neither moves."""
    old = torch.zeros(2, 1)
    logp = torch.log(torch.tensor([[1.5], [0.5]])).requires_grad_(True)
    adv = torch.tensor([1.0, -1.0])
    mask = torch.ones(2, 1, dtype=torch.bool)
    loss, clip_frac = policy_loss(logp, old, adv, mask, agg="token", clip_low=0.2, clip_high=0.28)
    assert loss.item() == pytest.approx(-(1.28 * 1 + 0.8 * -1) / 2)
    assert clip_frac.item() == 1.0
    loss.backward()
    assert logp.grad.abs().max() == 0                                    # clipped: no gradient
    # inside the band the ratio's gradient flows: ρ = 1.1, A = 1 -> dℓ/dlogp = -ρ·A / 1
    logp = torch.log(torch.tensor([[1.1]])).requires_grad_(True)
    mask = torch.ones(1, 1, dtype=torch.bool)
    loss, clip_frac = policy_loss(logp, torch.zeros(1, 1), torch.ones(1), mask)
    loss.backward()
    assert clip_frac.item() == 0.0 and logp.grad.item() == pytest.approx(-1.1)


def test_k3_by_hand_nonnegative_and_zero_at_reference():
    logp = torch.tensor([math.log(0.5)])
    ref = torch.tensor([0.0])                                            # log 1.0: ratio 2
    assert kl_k3(logp, ref).item() == pytest.approx(2 - math.log(2) - 1)
    a, b = torch.randn(1000), torch.randn(1000)
    assert (kl_k3(a, b) >= 0).all() and kl_k3(a, a).abs().max() == 0


def test_zero_variance_reads_the_raw_verifier():
    verifier = torch.tensor([[1.0, 1, 1, 1], [0, 0, 0, 0], [1, 0, 0, 0]])
    assert zero_variance_groups(verifier).tolist() == [True, True, False]
    # a blended reward has spread in every group; the filter still drops groups 0 and 1
    blended = verifier + 0.3 * torch.rand(3, 4)
    cfg = GRPOConfig(drop_zero_var=True)
    _, keep, _ = advantages_and_mask(blended, verifier, torch.zeros(3, 4, dtype=torch.bool), cfg)
    assert keep.view(3, 4).tolist() == [[False] * 4, [False] * 4, [True] * 4]
    _, keep, _ = advantages_and_mask(blended, verifier, torch.zeros(3, 4, dtype=torch.bool),
                                  GRPOConfig(drop_zero_var=False))
    assert keep.all()


def test_truncation_floor_and_mask():
    reward = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    verifier = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    truncated = torch.tensor([[False, True, False, False]])
    adv, keep, _ = advantages_and_mask(reward, verifier, truncated, GRPOConfig(truncation="floor"))
    # the cut-off one counts as the floor, 0 by default: r = [1, 0, 0, 0], mean 0.25
    assert adv.tolist() == [0.75, -0.25, -0.25, -0.25] and keep.all()
    adv, keep, _ = advantages_and_mask(reward, verifier, truncated, GRPOConfig(truncation="mask"))
    assert adv.tolist() == [0.5, 0.5, -0.5, -0.5] and keep.tolist() == [True, False, True, True]


def test_a_truncated_completion_scores_below_a_finished_rude_wrong_one():
    """Blend weights (1, 0.1, 0.3, 0.5): a finished wrong answer with a rude remark and no
    preference score earns -0.5, the floor; a truncated completion gets the floor too, never 0
    (which would rank it above that answer). r = [-0.5, -0.5, 0.5, 1.5], mean 0.25."""
    reward = torch.tensor([[-0.5, 0.7, 0.5, 1.5]])
    truncated = torch.tensor([[False, True, False, False]])
    adv, _, _ = advantages_and_mask(reward, torch.zeros(1, 4), truncated, GRPOConfig(), floor=-0.5)
    assert adv.tolist() == [-0.75, -0.75, 0.25, 1.25]


def test_seq_aggregation_counts_only_the_rows_kept():
    """Row 1 dropped (its group had no verifier variance, say): DeepSeekMath's mean over
    sequences is over the 3 rows left, (-1 - 2 + 0) / 3, as the token mean is over their 6
    tokens, (-1 - 6 + 0) / 6."""
    logp, mask = _group()
    mask[1] = False
    for agg, value in (("seq", -3 / 3), ("token", -7 / 6)):
        loss, _ = policy_loss(logp, logp.detach(), ADV, mask, agg=agg, max_len=4)
        assert loss.item() == pytest.approx(value), agg


def test_masked_positions_cannot_poison_the_loss():
    """After a row stops, log π of the pad token can be hugely negative: exp(ref - logp) would
    be inf in k3, and inf * 0 = NaN in a masked product. Selected and bounded, the loss and its
    gradient stay finite and the masked positions get no gradient."""
    logp = torch.tensor([[-1.0, -1.0, -500.0, -500.0]], requires_grad=True)
    mask = torch.tensor([[True, True, False, False]])
    kl = kl_k3(logp, torch.zeros(1, 4))
    loss, _ = policy_loss(logp, logp.detach(), torch.ones(1), mask, kl=kl, beta=0.1)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logp.grad).all()
    assert logp.grad[0, 2:].abs().max() == 0
    expected = -1 + 0.1 * (math.e - 1 - 1)                  # -ρA + β k3 at logp -1, ref 0
    assert loss.item() == pytest.approx(expected)


def test_sampling_and_training_logprobs_agree_and_ratio_is_one():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, block_size=64, n_layer=2, n_head=2, n_embd=32))
    prompts = [[3, 4, 5], [6, 7, 8, 9, 10], [11]]
    rollout = generate(model, prompts, num_samples=4, max_new_tokens=12, temperature=1.0,
                       stop_ids=[1], pad_id=0, generator=torch.Generator().manual_seed(1))
    ids, pad = rollout.sequences()
    logp = token_logprobs(model, ids, pad, rollout.prompt_ids.shape[1])
    m = rollout.mask
    assert (logp[m] - rollout.logprobs[m]).abs().max() < 1e-5
    ratio = torch.exp(logp - rollout.logprobs)[m]                        # μ = 1: π_old = π_θ
    assert (ratio - 1).abs().max() < 1e-5


def test_tempered_rollouts_are_trained_on_the_tempered_policy():
    """At T = 0.6 the sampler records log softmax(z / T) of each drawn token and the trainer
    recomputes the same, so at μ = 1 the ratio is 1; the untempered log-probs are not those."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, block_size=64, n_layer=2, n_head=2, n_embd=32))
    rollout = generate(model, [[3, 4, 5], [6, 7]], num_samples=3, max_new_tokens=10,
                       temperature=0.6, stop_ids=[1], pad_id=0,
                       generator=torch.Generator().manual_seed(1))
    ids, pad = rollout.sequences()
    n_prompt, m = rollout.prompt_ids.shape[1], rollout.mask
    tempered = token_logprobs(model, ids, pad, n_prompt, temperature=0.6)
    assert (torch.exp(tempered - rollout.logprobs)[m] - 1).abs().max() < 1e-5
    plain = token_logprobs(model, ids, pad, n_prompt)
    assert (plain - rollout.logprobs)[m].abs().max() > 1e-2


def test_entropy_of_a_uniform_policy():
    model = GPT(GPTConfig(vocab_size=64, block_size=32, n_layer=1, n_head=2, n_embd=16))
    for p in model.parameters():
        torch.nn.init.zeros_(p)                                          # logits all 0
    ids = torch.randint(0, 64, (2, 10))
    _, entropy = token_logprobs(model, ids, torch.zeros(2, dtype=torch.long), 4, with_entropy=True)
    assert torch.allclose(entropy, torch.full_like(entropy, math.log(64)), atol=1e-5)


def test_config_rejects_bad_choices():
    with pytest.raises(ValueError, match="needs the reference policy"):
        GRPOConfig(kl_beta=0.04, watch_kl=False)
    with pytest.raises(ValueError, match="advantage"):
        GRPOConfig(advantage="zscore")
    with pytest.raises(ValueError, match="loss_agg"):
        GRPOConfig(loss_agg="mean")
    with pytest.raises(ValueError, match="truncation"):
        GRPOConfig(truncation="zero")
    with pytest.raises(ValueError, match="--group_size must be >= 2"):
        GRPOConfig(group_size=1)
    with pytest.raises(ValueError, match="--rl_grad_clip must be > 0"):
        GRPOConfig(rl_grad_clip=0.0)


def test_groups_with_signal_by_hand():
    """Groups 0-3 of G = 2: [1, 1] and [0, 0] carry no signal, [0, 1] and [1, 0] do. Keeping 2:
    groups 1 and 3 (rows 2, 3, 6, 7); keeping 3: those and the first without signal, group 0,
    all in draw order; keeping 1: group 1 alone."""
    v = torch.tensor([[1, 1], [0, 1], [0, 0], [1, 0]])
    assert groups_with_signal(v, 2).tolist() == [2, 3, 6, 7]
    assert groups_with_signal(v, 3).tolist() == [0, 1, 2, 3, 6, 7]
    assert groups_with_signal(v, 1).tolist() == [2, 3]


def test_an_oversampled_step_keeps_the_groups_with_signal():
    """--oversample 2 with B = 2: four prompts drawn; the reward gives prompt 1's and prompt 3's
    groups mixed outcomes and the others none. The step trains on those two groups only, in
    draw order, and logs the verifier of every completion drawn."""
    splits = make_splits(TaskConfig(n_train=50, n_eval=4))
    tok = Tokenizer(train_bpe([p.prompt + s.think + s.answer_text for p, s in splits.train], 300))
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.n_vocab, block_size=96, n_layer=1, n_head=2,
                          n_embd=16)).eval()
    problems = [p for p, _ in splits.train[:4]]

    def mixed_for_1_and_3(drawn, texts):                 # rows i*2 + j: prompt i, sample j
        r = torch.tensor([float(j == 0 and i in (1, 3)) for i in range(4) for j in range(2)])
        return Scored(r, {"correct": r}, {"gold": r + 10 * torch.arange(8.0)}, r, r)

    cfg = GRPOConfig(prompts_per_step=2, group_size=2, oversample=2.0)
    s = grpo_step(model, torch.optim.AdamW(model.parameters(), lr=1e-3), tok, problems,
                  mixed_for_1_and_3, cfg, step=0, gen=torch.Generator().manual_seed(0),
                  guard=SkipNonFinite("test", 1), max_new_tokens=8)
    assert s.rollout.tokens.shape[0] == 4 and s.verifier.tolist() == [[1, 0], [1, 0]]
    assert s.scored.watched["gold"].tolist() == [20.0 + 1, 30.0, 61.0, 70.0]   # rows 2, 3, 6, 7
    assert s.drawn.tolist() == [0, 0, 1, 0, 0, 0, 1, 0] and s.updated


@pytest.mark.parametrize("oversample", [1.0, 2.0])
def test_the_stage_trains_with_dropout_off_and_logs_every_step(tmp_path, oversample):
    """Two steps of the grpo stage from a pretrain.pt built with dropout 0.5: the policy samples
    and trains in eval mode (dropout in RL makes the sampled and the trained policy differ), so
    at step 0, before any update, the trained log-probs equal the frozen reference's: KL 0. The
    JSONL log has a row a step, and rl.pt is written; oversampled or not. The held-out watch
    (--heldout_every 1) is in every row, and at step 0 it is the pretrained policy's, sampled
    with the run's seed: the same numbers as heldout_watch on the saved model."""
    splits = make_splits(TaskConfig(n_train=50, n_eval=4))
    tok = Tokenizer(train_bpe([p.prompt + s.think + s.answer_text for p, s in splits.train], 300))
    tok.save(str(tmp_path / "tokenizer.tiktoken"))
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.n_vocab, block_size=96, n_layer=1, n_head=2, n_embd=16,
                          dropout=0.5))
    save_model(str(tmp_path), "pretrain", model, {"tokenizer": tok.fingerprint})
    before = heldout_watch(model.eval(), tok, splits.in_dist[:3], Reward(
        RewardConfig(w_pref=0.0), tok, None, "cpu"), 2, 16, seed=0)
    figures = train_grpo(RunConfig(seed=0, max_new_tokens=16), RewardConfig(w_pref=0.0),
                         PreferenceConfig(), GRPOConfig(rl_steps=2, prompts_per_step=2,
                                                        group_size=2, rl_eval_every=1,
                                                        oversample=oversample, heldout_every=1,
                                                        heldout_prompts=3),
                         str(tmp_path), "cpu", splits)
    rows = [json.loads(line) for line in (tmp_path / "grpo_log.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and {"reward", "r/correct", "zero_var", "entropy", "clip_frac",
                               "truncated", "len_right", "len_wrong", "grad_norm",
                               "drawn_accuracy"} <= set(rows[0])
    assert rows[0]["kl_k1_seq"] == pytest.approx(0.0, abs=1e-5)
    assert rows[0]["kl_k3"] == pytest.approx(0.0, abs=1e-6)
    assert (tmp_path / "rl.pt").exists() and figures["grpo"]["steps"] == 2
    for key, value in before.items():                                 # no preference model:
        assert rows[0][key] == pytest.approx(value, nan_ok=True)      # proxy, agreement NaN
    assert math.isnan(before["heldout/proxy"]) and 0 <= before["heldout/accuracy"] <= 1
    assert "heldout/gold" in rows[1] and set(figures["grpo"]["heldout_final"]) == set(before)


def test_a_step_with_no_signal_makes_no_update():
    """A step whose rewards vary updates the weights; a step that gives every completion the
    same reward has every advantage 0 (the policy stops at once, so no completion is truncated
    to the floor). AdamW's momentum would still move the weights: grpo_step makes no update at
    all and says so."""
    splits = make_splits(TaskConfig(n_train=50, n_eval=4))
    tok = Tokenizer(train_bpe([p.prompt + s.think + s.answer_text for p, s in splits.train], 300))
    model = GPT(GPTConfig(vocab_size=tok.n_vocab, block_size=96, n_layer=1, n_head=2, n_embd=16))
    with torch.no_grad():                             # a policy that always stops at once:
        for p in model.parameters():                  # attention and MLP write nothing, every
            p.zero_()                                 # token embeds as u, <|endoftext|> as 1.8u,
        model.norm_f.weight.fill_(1.0)                # its logit leads by 0.8 |u|^2 / rms = 6.4
        model.wte.weight.fill_(0.5)
        model.wte.weight[tok.eot] = 0.9
    model.eval()

    def varied(problems, texts):
        r = torch.tensor([float(i % 2) for i in range(len(texts))])
        return Scored(r, {"correct": r}, {}, r, r)

    def constant(problems, texts):
        r = torch.ones(len(texts))
        return Scored(r, {"correct": r}, {}, r, r)

    cfg = GRPOConfig(prompts_per_step=2, group_size=2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    gen, guard = torch.Generator().manual_seed(0), SkipNonFinite("test", 1)
    problems = [p for p, _ in splits.train[:2]]
    before = copy.deepcopy(model.state_dict())
    s = grpo_step(model, opt, tok, problems, varied, cfg, step=1, gen=gen, guard=guard,
                  max_new_tokens=16)
    after = copy.deepcopy(model.state_dict())
    assert s.updated and not all(torch.equal(before[k], after[k]) for k in before)
    s = grpo_step(model, opt, tok, problems, constant, cfg, step=2, gen=gen, guard=guard,
                  max_new_tokens=16)
    assert not s.updated and s.grad_norm == 0.0
    assert all(torch.equal(after[k], v) for k, v in model.state_dict().items())


def test_rl_learning_rate_by_hand():
    """lr 1e-3, 5 warm-up steps, 100 steps: (s + 1) / 5 of the peak while warming up, then the
    linear decay 1 - s / 100."""
    cfg = GRPOConfig(rl_lr=1e-3, rl_warmup=5, rl_steps=100)
    expected = {0: 1e-3 * 0.2 * 1.0, 4: 1e-3 * 1.0 * 0.96, 50: 5e-4, 99: 1e-5}
    for step, lr in expected.items():
        assert rl_lr_at(step, cfg) == pytest.approx(lr), step


def test_ranking_agreement_by_hand():
    """Group 1: right answers score 0.9 and 0.5, wrong ones 0.5 and 0.2: of the 4 (right, wrong)
    pairs 3 are ordered right and 1 is a tie: 3.5. Group 2 (all wrong) has no pair."""
    score = torch.tensor([[0.9, 0.5, 0.5, 0.2], [0.1, 0.2, 0.3, 0.4]])
    right = torch.tensor([[True, True, False, False], [False] * 4])
    assert ranking_agreement(score, right) == (3.5, 4)
    assert ranking_agreement(score, ~right) == (0.5, 4)      # the mirror image: 4 - 3.5


def test_micro_batches_by_hand():
    """The docstring's example: each chunk keeps the columns some row of it needs."""
    real = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1]]).bool()
    chunks = micro_batches(real, torch.tensor([2, 1, 0]), 4, 2)
    assert [(rows.tolist(), lo, hi) for rows, lo, hi in chunks] == [([1, 0], 1, 6), ([2], 0, 7)]
    (rows, lo, hi), = micro_batches(real, torch.tensor([2, 1, 0]), 4, 0)
    assert (rows.tolist(), lo, hi) == ([0, 1, 2], 0, 7)


@pytest.mark.parametrize("agg,beta", [("token", 0.0), ("seq", 0.1), ("constant", 0.0)])
def test_a_micro_batched_update_is_the_whole_batch_update(agg, beta):
    """The gradient accumulated over chunks of 3 rows, sorted by length and each cut to the
    columns it needs, moves the weights as one update over all 8 rows does, in every
    aggregation, with the KL term."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, block_size=64, n_layer=2, n_head=2, n_embd=32))
    rollout = generate(model, [[3, 4, 5], [6, 7, 8, 9, 10]], num_samples=4, max_new_tokens=12,
                       stop_ids=[1, 2, 3, 4], pad_id=0, generator=torch.Generator().manual_seed(1))
    ids, pad = rollout.sequences()
    n_prompt, real = rollout.prompt_ids.shape[1], rollout.mask
    assert len(set(rollout.lengths.tolist())) > 1                     # rows of several lengths
    adv = torch.linspace(-1, 1, 8)
    ref_logp = token_logprobs(model, ids, pad, n_prompt).detach() - 0.1
    results = []
    for size in (0, 3):
        m = copy.deepcopy(model)
        cfg = GRPOConfig(loss_agg=agg, kl_beta=beta, rl_micro_batch=size)
        opt = torch.optim.SGD(m.parameters(), lr=0.1)       # w - 0.1 g: weights compare grads
        out = update(m, opt, ids, pad, n_prompt, rollout.logprobs, adv, real, real, cfg,
                     guard=SkipNonFinite("test", 1), step=0, lr=0.1, max_len=12,
                     n_tokens=real.sum(), n_seqs=8, n_rows=8, ref_logp=ref_logp)
        results.append((torch.cat([p.flatten() for p in m.parameters()]), *out))
    (w0, lp0, h0, kl0, loss0, _, g0), (w3, lp3, h3, kl3, loss3, _, g3) = results
    assert len(micro_batches(real, pad, n_prompt, 3)) == 3
    assert torch.allclose(loss0, loss3, atol=1e-6) and torch.allclose(g0, g3, atol=1e-5)
    before = torch.cat([p.flatten() for p in model.parameters()])
    assert torch.allclose(w0, w3, atol=1e-6) and (w0 - before).abs().max() > 1e-4
    assert torch.allclose(lp0[real], lp3[real], atol=1e-5)
    assert torch.allclose(h0[real], h3[real], atol=1e-5)


@pytest.mark.parametrize("kind", ["drgrpo", "grpo"])
def test_the_advantage_splits_by_the_terms_of_the_blend(kind):
    """r = rest + part, per row: rest [1, 1, 0, 0], part [0.3, 0.1, 0.2, 0.2]. The part's share
    is (part - mean part) / s with the group's own scale (1, or std(r) + eps): part - mean =
    [0.1, -0.1, 0, 0]; the rest's share is what is left, and the two add up to A."""
    rest, part = torch.tensor([[1.0, 1.0, 0.0, 0.0]]), torch.tensor([[0.3, 0.1, 0.2, 0.2]])
    none = torch.zeros(1, 4, dtype=torch.bool)
    cfg = GRPOConfig(advantage=kind)
    adv, _, adv_part = advantages_and_mask(rest + part, rest, none, cfg, part=part)
    scale = 1.0 if kind == "drgrpo" else (rest + part).std().item() + cfg.std_eps
    assert adv_part.tolist() == pytest.approx([0.1 / scale, -0.1 / scale, 0.0, 0.0])
    assert (adv - adv_part).tolist() == pytest.approx(
        group_advantages(rest, "drgrpo").flatten().div(scale).tolist())
    assert advantages_and_mask(rest + part, rest, none, cfg)[2] is None   # no part: no split


def test_a_truncated_row_has_no_part_and_targeting_moves_only_the_answer():
    """Truncated row 1 gets the floor 0 and its part 0: part [0.4, 0, 0.2, 0.2], mean 0.2.
    Targeting keeps A on the answer's tokens and takes the part's share off the others:
    row 0, A = 1.2 - 0.55 = 0.65, part share 0.2 -> 0.45 in <think>, 0.65 in <answer>."""
    reward = torch.tensor([[1.2, 1.0, 0.2, 0.8]])            # = rest + part, part [.4, .3, .2, .2]
    part = torch.tensor([[0.4, 0.3, 0.2, 0.2]])
    truncated = torch.tensor([[False, True, False, False]])
    adv, _, adv_part = advantages_and_mask(reward, reward, truncated, GRPOConfig(), part=part)
    assert adv.tolist() == pytest.approx([0.65, -0.55, -0.35, 0.25])     # r = [1.2, 0, .2, .8]
    assert adv_part.tolist() == pytest.approx([0.2, -0.2, 0.0, 0.0])
    in_answer = torch.tensor([[False, False, True, True]] * 4)            # <think> x x, <answer> y
    per_token = targeted_advantages(adv, adv_part, in_answer)
    assert per_token[0].tolist() == pytest.approx([0.45, 0.45, 0.65, 0.65])
    assert per_token[1].tolist() == pytest.approx([-0.35, -0.35, -0.55, -0.55])
    assert per_token[2].tolist() == pytest.approx([-0.35] * 4)           # no part of its own


def test_per_token_advantages_equal_to_the_row_give_the_rows_loss():
    """policy_loss with A (N, T) constant along each row equals the loss with A (N,), in every
    aggregation; with A differing by token, the token loss is -Σ_t A_t ρ_t / Σ|o| (ρ = 1)."""
    torch.manual_seed(0)
    logp, mask = torch.randn(3, 5), torch.rand(3, 5) > 0.3
    adv = torch.tensor([0.5, -1.0, 2.0])
    for agg in ("token", "seq", "constant"):
        a = policy_loss(logp, logp.detach(), adv, mask, agg=agg)[0]
        b = policy_loss(logp, logp.detach(), adv[:, None].expand(3, 5), mask, agg=agg)[0]
        assert torch.allclose(a, b)
    per = torch.arange(15.0).view(3, 5)
    loss = policy_loss(logp, logp.detach(), per, mask, agg="token")[0]
    assert loss.item() == pytest.approx(-(per * mask).sum().item() / mask.sum().item())
