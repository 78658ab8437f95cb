"""The noisy verifier (reward.py: --flip, --flip_kind): flips worked by hand, its agreement 1 - p,
the persistent kind's consistency and its independence of the text, and what GRPO reads of it."""

import itertools
import random

import pytest
import torch

from data.problems import ANSWER_STYLES, Problem, answer_text
from data.tokenizer import Tokenizer, train_bpe
from grpo_log import ranking_agreement
from reward import Reward, RewardConfig, noisy_verifier, persistent_draw

PROBLEM = Problem("Ann has 40 apples. She buys 3 more. How many apples does Ann have now?",
                  40, (("+", 3),), 43, "Ann", ("apple", "apples"))
THINK = "40+3: 0+3=3, 4+0=4, so 43."


def done(n: int, think: str = THINK) -> str:
    return f"<think>{think}</think><answer>Ann has {n} apples now.</answer>"


@pytest.fixture(scope="module")
def tok():
    texts = [PROBLEM.prompt + THINK + answer_text(PROBLEM, 43, s) for s, _, _ in ANSWER_STYLES]
    return Tokenizer(train_bpe(texts * 3, 300))


def test_noisy_verifier_by_hand():
    """A draw below p flips the outcome, one at or above it leaves it: p = 0.2."""
    right = torch.tensor([1.0, 0.0, 1.0, 0.0])
    u = torch.tensor([0.1, 0.1, 0.2, 0.7])
    assert noisy_verifier(right, u, 0.2).tolist() == [0.0, 1.0, 1.0, 0.0]
    assert noisy_verifier(right, u, 0.0).tolist() == right.tolist()   # p = 0: the verifier
    assert noisy_verifier(right, u, 1.0).tolist() == [0.0, 1.0, 0.0, 1.0]  # p = 1: inverted


@pytest.mark.parametrize("p", [0.0, 0.1, 0.25, 0.4, 0.5])
def test_agreement_is_one_minus_p_exactly(p):
    """One right and one wrong answer; each flipped with probability p independently. The four
    cases, weighted: both kept (1-p)^2 -> ranked right (1); both flipped p^2 -> ranked wrong (0);
    one flipped 2p(1-p) -> a tie (1/2). Sum: (1-p)^2 + p(1-p) = 1 - p."""
    total = 0.0
    for flip_right, flip_wrong in itertools.product([False, True], repeat=2):
        u = torch.tensor([0.0 if flip_right else 0.99, 0.0 if flip_wrong else 0.99])
        score = noisy_verifier(torch.tensor([1.0, 0.0]), u, p if p > 0 else 1e-9)
        agree, n = ranking_agreement(score.view(1, 2), torch.tensor([[True, False]]))
        weight = (p if flip_right else 1 - p) * (p if flip_wrong else 1 - p)
        total += weight * agree / n
    assert total == pytest.approx(1 - p)


def test_agreement_of_fresh_flips_on_groups(tok):
    """Measured through Reward on groups of G = 8 (3 right, 5 wrong), 400 groups, p = 0.3: the
    reward's agreement with the exact match is 1 - p within 0.02 (the log's
    reward_agreement), and the flip rate is p on right and on wrong answers alike."""
    p, groups = 0.3, 400
    comps = [done(43)] * 3 + [done(42)] * 5
    reward = Reward(RewardConfig(w_pref=0.0, w_format=0.0, flip=p), tok, None, "cpu", seed=7)
    agree = n = 0.0
    flips = []
    for _ in range(groups):
        s = reward([PROBLEM] * 8, comps)
        a, k = ranking_agreement(s.total.view(1, 8), s.right.view(1, 8) > 0)
        agree, n = agree + a, n + k
        flips.append(s.terms["correct"] != s.right)
    flips = torch.stack(flips).float()                                 # (groups, 8)
    assert agree / n == pytest.approx(1 - p, abs=0.02)
    assert flips[:, :3].mean().item() == pytest.approx(p, abs=0.05)    # right answers
    assert flips[:, 3:].mean().item() == pytest.approx(p, abs=0.05)    # wrong answers


def test_fresh_flips_are_drawn_anew_and_repeat_with_the_seed(tok):
    """The same completions scored twice get different flips; the same seed gives the same ones
    (the training loop saves `flips` with the run's generators, so --resume continues it)."""
    cfg = RewardConfig(w_pref=0.0, flip=0.5)
    comps = [done(43)] * 64
    a = Reward(cfg, tok, None, "cpu", seed=1)
    first, second = a([PROBLEM] * 64, comps).terms["correct"], a([PROBLEM] * 64, comps)
    assert not torch.equal(first, second.terms["correct"])
    again = Reward(cfg, tok, None, "cpu", seed=1)([PROBLEM] * 64, comps).terms["correct"]
    assert torch.equal(first, again)


def test_persistent_flips_are_consistent_and_tied_to_no_feature(tok):
    """Persistent: one (prompt, completion) always gets the same outcome, in any batch, in any
    order. Over 2,000 completions that differ in their answer, its length and rightness, the
    flips fall at rate p whatever the feature: tied to the text's hash, not to what it says."""
    p = 0.3
    reward = Reward(RewardConfig(w_pref=0.0, flip=p, flip_kind="persistent"), tok, None, "cpu",
                    seed=3)
    comps = [done(43 if i % 2 else 30 + i % 7, THINK + " ok" * (i % 5)) + " " * (i // 10)
             for i in range(2000)]
    assert len(set(comps)) == len(comps)
    s = reward([PROBLEM] * len(comps), comps)
    flipped = (s.terms["correct"] != s.right).float()
    order = list(range(len(comps)))
    random.Random(0).shuffle(order)
    again = reward([PROBLEM] * len(comps), [comps[i] for i in order])
    assert torch.equal(again.terms["correct"], s.terms["correct"][order])  # consistent
    assert flipped.mean().item() == pytest.approx(p, abs=0.035)
    right = s.right > 0
    assert flipped[right].mean().item() == pytest.approx(p, abs=0.05)     # right or wrong
    assert flipped[~right].mean().item() == pytest.approx(p, abs=0.05)
    lengths = torch.tensor([float(len(c)) for c in comps])
    short = lengths < lengths.median()
    assert flipped[short].mean().item() == pytest.approx(flipped[~short].mean().item(), abs=0.06)
    # a draw is a function of (seed, question, completion): another seed, another draw
    assert persistent_draw(3, PROBLEM.question, comps[0]) == persistent_draw(3, PROBLEM.question,
                                                                             comps[0])
    assert persistent_draw(3, PROBLEM.question, comps[0]) != persistent_draw(4, PROBLEM.question,
                                                                             comps[0])


def test_what_grpo_reads_of_a_noisy_reward(tok):
    """The blend pays the flipped outcome; `right` stays the exact match (accuracy, the gold) and
    `signal`, what dynamic sampling selects on, is the outcome as paid, never the truth. Without
    a verifier in the blend, `signal` is the total: no oracle reaches the selection."""
    comps = [done(43), done(42)]
    s = Reward(RewardConfig(w_pref=0.0, w_format=0.0, flip=1.0), tok, None, "cpu")(
        [PROBLEM] * 2, comps)
    assert s.right.tolist() == [1.0, 0.0]
    assert s.terms["correct"].tolist() == s.total.tolist() == s.signal.tolist() == [0.0, 1.0]
    assert s.watched["gold"][0] > s.watched["gold"][1]                  # gold reads the truth
    alone = Reward(RewardConfig(w_correct=0.0, w_pref=0.0, w_format=1.0), tok, None, "cpu")(
        [PROBLEM] * 2, [done(43), done(42)[:-9]])                      # the second malformed
    assert alone.signal.tolist() == alone.total.tolist() == [1.0, 0.0]
    assert alone.right.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("field, value, match", [
    ("flip", -0.1, "flip is a probability"), ("flip", 1.5, "flip is a probability"),
    ("flip_kind", "sticky", "flip_kind must be one of"),
])
def test_bad_flip_settings_are_refused(field, value, match):
    with pytest.raises(ValueError, match=match):
        RewardConfig(**{field: value})
