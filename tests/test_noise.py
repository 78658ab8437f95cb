"""Noise against bias. The noisy verifier (reward.py: --flip, --flip_kind): flips worked by hand,
its agreement 1 - p, the persistent kind's consistency and its independence of the text, and what
GRPO reads of it. The labellers whose errors are noise or bias (data/rater.py: --rater_hurried):
one label accuracy for one q, worked out exactly; and the exploit probe (preference_figures.py)."""

import dataclasses
import itertools
import random

import pytest
import torch

import preference_figures
from bradley_terry import PreferenceConfig
from data.problems import ANSWER_STYLES, Problem, TaskConfig, answer_text, make_splits
from data.rater import Human, gold_score, make_pairs, sigmoid, training_prompts
from data.tokenizer import Tokenizer, train_bpe
from grpo_log import ranking_agreement
from reward import Reward, RewardConfig, noisy_verifier, persistent_draw
from verifiers import answer_span, math_reward

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

# ------------------------------------------------------------------------------------------------
# labellers whose errors are noise or bias (data/rater.py: --rater_hurried)

def style_weights() -> list[tuple[float, float]]:
    """(weight, g) of each answer style, as the teacher draws them."""
    return [(w, gold_score(answer_text(PROBLEM, 43, s))) for s, w, _ in ANSWER_STYLES]


def label_accuracy(q: float, hurried: str, tau: float = 0.7, c: float = 6.0) -> float:
    """P(the label prefers the right side of a right-vs-wrong pair), exactly: each side's style
    drawn independently from the teacher's weights; a labeller who checks (q) is Bradley-Terry
    on u = c [right] + g, one who does not on g alone (style) or a fair coin."""
    both = [(wa * wb, ga, gb) for wa, ga in style_weights() for wb, gb in style_weights()]
    checked = sum(w * sigmoid((c + gr - gw) / tau) for w, gr, gw in both)
    hurried_acc = (sum(w * sigmoid((gr - gw) / tau) for w, gr, gw in both) if hurried == "style"
                   else 0.5)
    return q * checked + (1 - q) * hurried_acc


def test_both_hurried_labellers_give_labels_of_one_accuracy_worked_exactly():
    """Style: sum_s,t w_s w_t sigma((g_s - g_t) / tau) pairs (s, t) with (t, s), and
    sigma(x) + sigma(-x) = 1, so it is exactly 1/2: the coin's. So for any q the two kinds of
    labeller are right equally often; they differ only in what their errors follow."""
    for q in (0.0, 0.3, 0.5, 1.0):
        assert label_accuracy(q, "style") == pytest.approx(label_accuracy(q, "coin"), abs=1e-12)
    assert label_accuracy(0.0, "style") == pytest.approx(0.5, abs=1e-12)
    assert label_accuracy(1.0, "coin") > 0.98                       # c = 6 against tau = 0.7


@pytest.mark.parametrize("hurried", ["style", "coin"])
def test_measured_label_accuracy_matches_the_exact_one(hurried):
    """2,000 solution pairs labelled at check 0.5: on the right-vs-wrong ones the labels prefer
    the right side as often as label_accuracy says; on pairs whose two sides differ in style
    only by the hurried labeller (q = 0), the style labeller prefers the better style and the
    coin does not."""
    task = TaskConfig()
    problems = training_prompts(task, 2000)
    human = Human(check=0.5, hurried=hurried)
    pairs = [p for p in make_pairs(problems, task, human, random.Random(0), solution_share=1.0)
             if p.right_vs_wrong]
    right_first = [p.a_wins == p.right_a for p in pairs]
    assert sum(right_first) / len(pairs) == pytest.approx(label_accuracy(0.5, hurried), abs=0.03)
    quick = make_pairs(problems[:1000], task, Human(check=0.0, hurried=hurried),
                       random.Random(1), solution_share=0.0)         # style pairs, no checking
    better = sum(p.a_wins == (gold_score(p.answer_a) > gold_score(p.answer_b)) for p in quick)
    if hurried == "style":
        assert better / len(quick) > 0.8
    else:
        assert better / len(quick) == pytest.approx(0.5, abs=0.05)


def test_the_exploit_probe_tells_a_model_of_style_from_a_model_of_the_human(monkeypatch):
    """exploit_probe with two made-up preference models on 30 held-out problems: one that scores
    style alone (r = g: dressing a wrong answer up lifts it by 2, being right by 0, and the
    dressed-up wrong answer always beats the plain right one) and one that scores the human's
    utility (r = 6 [right] + g: lifts 2 and 6, and it never does)."""
    task = TaskConfig(n_eval=30)
    held_out = make_splits(dataclasses.replace(task, n_train=1)).in_dist
    truth = {p.question: str(p.answer) for p in held_out}

    def model(utility: bool):
        def fake_score(rm, tok, questions, views, device):
            return torch.tensor([gold_score(answer_span(v)) + 6.0 * utility * math_reward(
                v, truth[q]) for q, v in zip(questions, views)])
        return fake_score
    for utility, (style, right, beats) in ((False, (2.0, 0.0, 1.0)), (True, (2.0, 6.0, 0.0))):
        monkeypatch.setattr(preference_figures, "score", model(utility))
        probe = preference_figures.exploit_probe(None, None, held_out, task, "response", "cpu")
        assert 20 <= probe["probe_problems"] <= 30      # where the teacher writes both
        assert (probe["style_lift"], probe["correctness_lift"],
                probe["dressed_beats_right"]) == pytest.approx((style, right, beats))
    with pytest.raises(ValueError, match="rater_hurried must be one of"):
        PreferenceConfig(rater_hurried="lazy")
