"""The simulated rater, the Bradley-Terry preference model (preference.py) and the reward blend
(reward.py)."""

import dataclasses
import math
import random

import pytest
import torch

import config
import pretrain
import train
from data.ceiling import answer_distribution
from data.problems import (ANSWER_STYLES, ITEMS, PHRASE, Problem, TaskConfig, answer_text,
                           make_splits)
from data.rater import (Human, Pair, agreement_ceiling, gold_score, make_pairs, noisy_preference,
                        sigmoid, training_prompts, wrong_unit)
from data.tokenizer import Tokenizer, train_bpe
from evaluate import behaviour_scorers
from model import GPTConfig
from bradley_terry import PreferenceConfig, bt_loss, train_reward_model
from preference import PreferenceModel, load_reward_model, preference, raw_scores, rm_view, score
from preference_figures import heldout_figures, pairwise_accuracy
from reward import Reward, RewardConfig, blend, blend_floor, reward_terms
from verifiers import answer_span
from verifiers import extract_answer

TASK = TaskConfig(n_train=1, n_eval=8)
PROBLEM = Problem("Ann has 40 apples. She buys 3 more. How many apples does Ann have now?",
                  40, (("+", 3),), 43, "Ann", ("apple", "apples"))
THINK = "40+3: 0+3=3, 4+0=4, so 43."


@pytest.fixture(scope="module")
def tok():
    """A tiny BPE trained on a few teacher-style texts (seconds are not needed: ~0.1 s)."""
    texts = [PROBLEM.prompt + THINK + answer_text(PROBLEM, 43, s) for s, _, _ in ANSWER_STYLES]
    return Tokenizer(train_bpe(texts * 3, 300))


def tiny_rm(tok, seed=0):
    torch.manual_seed(seed)
    return PreferenceModel(GPTConfig(vocab_size=tok.n_vocab, block_size=128, n_layer=1, n_head=2,
                                     n_embd=16))

# ------------------------------------------------------------------------------------------------
# the rater


def test_bt_loss_by_hand():
    """-log sigma(2) = log(1 + e^-2) = 0.126928; centring adds c * (2 + 0)^2 = 0.04 at c = 0.01;
    a batch averages: r_c = [2, 0], r_r = [0, 0] -> (0.126928 + log 2) / 2 = 0.410038, and
    the centring term is c * mean(4, 0) = 0.02. d loss / d r_c = -sigma(-2) = -0.119203."""
    rc, rr = torch.tensor([2.0], requires_grad=True), torch.tensor([0.0])
    loss = bt_loss(rc, rr)
    assert loss.item() == pytest.approx(0.126928, abs=1e-6)
    loss.backward()
    assert rc.grad.item() == pytest.approx(-0.119203, abs=1e-6)
    assert bt_loss(rc, rr, 0.01).item() == pytest.approx(0.166928, abs=1e-6)
    two = bt_loss(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0]), 0.01)
    assert two.item() == pytest.approx(0.410038 + 0.02, abs=1e-6)
    assert bt_loss(torch.tensor([5.0]), torch.tensor([3.0])).item() == pytest.approx(loss.item())


def test_pairwise_accuracy_counts_ties_as_half():
    acc = pairwise_accuracy(torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 1.0, 2.0]),
                            torch.tensor([True, True, False]))
    assert acc == pytest.approx(0.5)                              # (1 + 0 + 0.5) / 3


def test_gold_rater_table_and_style_order():
    """The docstring's table, for several problems and values: sentence > short > bare > hedged >
    rambling, whatever the number (1 takes the singular unit)."""
    table = {"sentence": 2.0, "short": 1.0, "bare": 0.0, "hedged": -1.7, "rambling": -3.3}
    for problem in make_splits(TASK).in_dist[:4] + [PROBLEM]:
        for value in (0, 1, 43, problem.answer):
            got = {s: gold_score(answer_text(problem, value, s)) for s, _, _ in ANSWER_STYLES}
            assert got == table
    assert gold_score("Maybe 43 apples.") == pytest.approx(1.0 - 1.5)   # unit, hedge, no sentence
    assert gold_score("  Ann has 43 apples now.  ") == 2.0


def test_agreement_ceiling_by_hand():
    """Pairs with gold differences [1, -1, 0] at tau = 1: the tie is left out, both others agree
    with probability sigma(1) = 0.731059. [2, 1] at tau = 0.5: (sigma(4) + sigma(2)) / 2."""
    assert agreement_ceiling([1.0, -1.0, 0.0], 1.0) == pytest.approx(0.731059, abs=1e-6)
    assert agreement_ceiling([2.0, 1.0], 0.5) == pytest.approx((0.982014 + 0.880797) / 2, abs=1e-6)
    assert sigmoid(-800.0) == 0.0 and sigmoid(800.0) == 1.0     # no overflow


def test_noisy_labels_follow_the_bradley_terry_rate():
    rng = random.Random(0)
    wins = sum(noisy_preference(1.0, 0.0, 1.0, rng) for _ in range(20000)) / 20000
    assert wins == pytest.approx(sigmoid(1.0), abs=0.01)           # 0.731 +- 3 std
    assert all(noisy_preference(1.0, 0.0, 1e-3, rng) for _ in range(100))


def test_style_pairs_hold_the_number_and_never_use_held_out_questions():
    prompts = training_prompts(TASK, 200)
    splits = make_splits(TASK)
    assert not {p.question for p in prompts} & {p.question for p in splits.in_dist + splits.harder}
    assert prompts == training_prompts(TASK, 200)                   # its own fixed stream
    pairs = make_pairs(prompts, TASK, Human(tau=0.7), random.Random(0))
    assert len(pairs) == 200 and len({p.a_wins for p in pairs}) == 2
    for p in pairs:
        assert p.kind == "style" and p.style_a != p.style_b and p.think_a == p.think_b
        a, b = extract_answer(p.completion("a")), extract_answer(p.completion("b"))
        assert a == b == str(p.value_a) == str(p.value_b)
        assert gold_score(p.answer_a) != gold_score(p.answer_b)
    assert sum(p.right_a for p in pairs) / 200 > 0.4                 # the teacher's draws
    # the noisy labels disagree with the gold order about as often as the ceiling predicts
    gold_wins = [gold_score(p.answer_a) > gold_score(p.answer_b) for p in pairs]
    agree = sum(w == p.a_wins for w, p in zip(gold_wins, pairs)) / len(pairs)
    deltas = [gold_score(p.answer_a) - gold_score(p.answer_b) for p in pairs]
    assert agree == pytest.approx(agreement_ceiling(deltas, 0.7), abs=0.06)


def test_the_true_utility_puts_correctness_first():
    """u = c [right] + g, c = 6: a right answer in the worst corpus style (rambling, g = -3.3)
    beats a wrong one in the best (sentence, g = 2.0): 6 - 3.3 = 2.7 > 2.0."""
    human = Human()
    assert human.utility(True, "43") == 6.0 and human.utility(False, "43 apples.") == 1.0
    g = [gold_score(answer_text(PROBLEM, 43, s)) for s, _, _ in ANSWER_STYLES]
    assert human.utility(True, "") + min(g) > human.utility(False, "") + max(g)
    assert human.c > max(g) - min(g) == pytest.approx(5.3)


def test_solution_pairs_differ_in_correctness_at_the_teachers_rate():
    """Two independent teacher solutions, the second redrawn while its utility equals the
    first's. With p the teacher's chance to be right on a problem and q_s the corpus weight of
    style s: given a right first side in style s, the pair is right-vs-wrong with probability
    (1 - p) / (1 - p + p (1 - q_s)) (a wrong side always differs: u <= 2 < 6 - 3.3), and given a
    wrong one, p / (p + (1 - p)(1 - q_s)) (two wrong sides tie exactly when their styles do).
    The teacher is right or wrong mostly by problem (the borrow), so this is far below
    2 pbar (1 - pbar)."""
    prompts, human = training_prompts(TASK, 1000), Human()
    pairs = make_pairs(prompts, TASK, human, random.Random(1), solution_share=1.0)
    assert all(p.kind == "solution" for p in pairs)
    assert all(human.utility(p.right_a, p.answer_a) != human.utility(p.right_b, p.answer_b)
               for p in pairs)
    expected = 0.0
    for problem in prompts:
        p = answer_distribution(problem, TASK).get(problem.answer, 0.0)
        for _, q, _ in ANSWER_STYLES:
            if 0 < p < 1:
                expected += q * (p * (1 - p) / (1 - p + p * (1 - q))
                                 + (1 - p) * p / (p + (1 - p) * (1 - q))) / len(prompts)
    share = sum(p.right_vs_wrong for p in pairs) / len(pairs)
    assert share == pytest.approx(expected, abs=0.03)                # +- 2 std at 1000 pairs
    assert sum(p.think_a != p.think_b for p in pairs) > 0.3 * len(pairs)  # own reasoning
    mixed = make_pairs(prompts[:400], TASK, human, random.Random(1), solution_share=0.5)
    assert sum(p.kind == "solution" for p in mixed) / 400 == pytest.approx(0.5, abs=0.08)


@pytest.mark.parametrize("check", [0.0, 1.0])
def test_only_a_labeller_who_checks_prefers_the_right_answer(check):
    """Nearly noise-free labels (tau 0.01): one who always checks prefers the right side of
    every right-vs-wrong pair; one who never does judges by g alone, whatever the numbers."""
    human = Human(tau=0.01, check=check)
    pairs = make_pairs(training_prompts(TASK, 300), TASK, human, random.Random(2),
                       solution_share=1.0)
    rvw = [p for p in pairs if p.right_vs_wrong]
    assert len(rvw) > 50 and all(p.checked == bool(check) for p in pairs)
    if check:
        assert all(p.a_wins == p.right_a for p in rvw)
    else:
        differ = [p for p in rvw if gold_score(p.answer_a) != gold_score(p.answer_b)]
        assert all(p.a_wins == (gold_score(p.answer_a) > gold_score(p.answer_b)) for p in differ)
        assert any(p.a_wins != p.right_a for p in differ)


def test_heldout_figures_by_hand():
    """Three pairs: a style pair (a = sentence beats b = bare) the model orders right, a
    right-vs-wrong pair (a right) it orders wrong, a right-vs-wrong pair (b right) it ties.
    accuracy_style 1, accuracy_correctness (0 + 1/2) / 2 = 0.25; labels a, a, b: they agree
    with the truth on all three, and with the scores on the first only (+ 1/2 for the tie)."""
    def pair(kind, va, vb, sa, sb, a_wins):
        return Pair(kind, "q", 43, "t", "t", va, vb, sa, sb, answer_text(PROBLEM, va, sa),
                    answer_text(PROBLEM, vb, sb), a_wins, True)
    pairs = [pair("style", 43, 43, "sentence", "bare", True),
             pair("solution", 43, 42, "bare", "bare", True),
             pair("solution", 41, 43, "bare", "bare", False)]
    r_a, r_b = torch.tensor([2.0, 0.0, 1.0]), torch.tensor([1.0, 1.0, 1.0])
    f = heldout_figures(pairs, r_a, r_b, Human())
    assert f["accuracy_style"] == 1.0 and f["accuracy_correctness"] == 0.25
    assert f["label_agreement_style"] == f["label_agreement_correctness"] == 1.0
    assert f["heldout_accuracy"] == pytest.approx(1.5 / 3)
    assert f["gold_agreement"] == pytest.approx(1.5 / 3)
    assert (f["style_pairs"], f["correctness_pairs"], f["heldout_pairs"]) == (1, 2, 3)
    # perceived differences 2, 6, -6 (all checked): the mean of sigma(|D| / 0.7)
    assert f["agreement_ceiling"] == pytest.approx(
        (sigmoid(2 / 0.7) + 2 * sigmoid(6 / 0.7)) / 3)

# ------------------------------------------------------------------------------------------------
# what the preference model reads


def test_answer_span_policy():
    assert answer_span(f"<think>{THINK}</think><answer> 43 apples.</answer>") == "43 apples."
    assert answer_span(f"<think>{THINK}</think><answer>43 app") is None          # truncated
    assert answer_span("<answer>1</answer><answer>2</answer>") is None             # two answers
    c = f"<think>{THINK}</think><answer>43</answer><|endoftext|>"
    assert rm_view(c, "answer") == "<answer>43</answer>"
    assert rm_view(c, "response") == f"<think>{THINK}</think><answer>43</answer>"


def test_editing_the_reasoning_never_changes_the_answer_only_score(tok):
    rm, q = tiny_rm(tok), [PROBLEM.question]
    thinks = [THINK, THINK + " This is stupid.", "", "52-17: 7-2=5, so 45. Or 9? Answer: 12."]
    comps = [f"<think>{t}</think><answer>Ann has 43 apples now.</answer>" for t in thinks]
    ans = torch.stack([preference(rm, tok, q, [c], "answer", "cpu") for c in comps])
    assert torch.equal(ans, ans[:1].expand_as(ans))                 # bit-identical
    other = f"<think>{THINK}</think><answer>43</answer>"
    assert preference(rm, tok, q, [other], "answer", "cpu") != ans[0]
    resp = torch.stack([preference(rm, tok, q, [c], "response", "cpu") for c in comps[:2]])
    assert resp[0] != resp[1]                                        # the ablation sees <think>
    assert preference(rm, tok, q, [f"<think>{THINK}</think><answer>43"], "answer", "cpu") == 0


def test_batched_scores_match_one_at_a_time(tok):
    """Left padding: a short view scored next to a long one gets its own score (to float noise)."""
    rm = tiny_rm(tok)
    qs = [PROBLEM.question] * 3
    views = [f"<answer>{answer_text(PROBLEM, 43, s)}</answer>"
             for s in ("bare", "rambling", "short")]
    batched = score(rm, tok, qs, views, "cpu")
    single = torch.cat([score(rm, tok, [q], [v], "cpu") for q, v in zip(qs, views)])
    assert torch.allclose(batched, single, atol=1e-5)

# ------------------------------------------------------------------------------------------------
# the blend


def constant_rm(tok, r: float):
    """A preference model that scores every input r (zero head weights, bias r), r_ref = 0."""
    rm = tiny_rm(tok)
    with torch.no_grad():
        rm.head.weight.zero_()
        rm.head.bias.fill_(r)
    return rm


def test_blend_by_hand_with_both_scopes(tok):
    """Four completions of PROBLEM (answer 43), pref = sigma(log 3 - 0) = 0.75 when well-formed:
        c0 right, clean                 correct 1 format 1 pref .75 harm 0 -> 1 + .1 + .225 = 1.325
        c1 right, rude remark in think  correct 1 format 1 pref .75 harm 1 -> 1.325 - .5 = 0.825
        c2 wrong, rude remark in answer correct 0 format 1 pref .75 harm 1 -> .325 - .5 = -0.175
        c3 truncated in think           all 0                               -> 0
    With harm_scope = "answer" the remark in c1's reasoning is no longer seen: c1 -> 1.325."""
    comps = [f"<think>{THINK}</think><answer>Ann has 43 apples now.</answer>",
             f"<think>{THINK} This is stupid.</think><answer>43</answer><|endoftext|>",
             f"<think>{THINK}</think><answer>42, this is STUPID.</answer>",
             f"<think>{THINK}"]
    rm, cfg = constant_rm(tok, math.log(3)), RewardConfig()
    terms = reward_terms([PROBLEM] * 4, comps, rm, tok, cfg, "cpu")
    assert terms["correct"].tolist() == [1, 1, 0, 0]
    assert terms["format"].tolist() == [1, 1, 1, 0]
    assert terms["pref"].tolist() == pytest.approx([0.75, 0.75, 0.75, 0.0])
    assert terms["harm"].tolist() == [0, 1, 1, 0]
    assert blend(terms, cfg).tolist() == pytest.approx([1.325, 0.825, -0.175, 0.0])
    cfg = RewardConfig(harm_scope="answer", w_format=0.0, w_pref=0.5)
    terms = reward_terms([PROBLEM] * 4, comps, rm, tok, cfg, "cpu")
    assert terms["harm"].tolist() == [0, 0, 1, 0]
    assert blend(terms, cfg).tolist() == pytest.approx([1.375, 1.375, -0.125, 0.0])
    no_rm = reward_terms([PROBLEM] * 4, comps, None, tok, RewardConfig(w_pref=0.0), "cpu")
    assert no_rm["pref"].tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="needs a preference model"):
        reward_terms([PROBLEM], comps[:1], None, tok, RewardConfig(), "cpu")


def test_reward_watches_the_gold_and_the_proxy(tok):
    """The completions of the blend test: gold u = 6 [right] + g(answer), proxy = the raw score
    r = log 3 where there is an answer span, NaN where not; at w_pref = 0 the preference model is
    still scored for the proxy, and the blend does not move."""
    comps = [f"<think>{THINK}</think><answer>Ann has 43 apples now.</answer>",   # 6 + 2
             f"<think>{THINK}</think><answer>42</answer>",                      # 0 + 0
             f"<think>{THINK}</think><answer>I think it is 43, but I am not sure.</answer>",
             f"<think>{THINK}"]                                                 # no answer: 0
    rm = constant_rm(tok, math.log(3))
    scored = Reward(RewardConfig(w_pref=0.0), tok, rm, "cpu")([PROBLEM] * 4, comps)
    terms, total, watch = scored.terms, scored.total, scored.watched
    assert scored.floor == -0.5 and scored.answer_only is None       # blend_floor; targeting off
    assert watch["gold"].tolist() == pytest.approx([8.0, 0.0, 6 - 1.7, 0.0])
    assert watch["proxy"][:3].tolist() == pytest.approx([math.log(3)] * 3)
    assert watch["proxy"][3].isnan() and raw_scores(rm, tok, ["q"], comps[3:], "answer",
                                                    "cpu").isnan().all()
    assert total.tolist() == pytest.approx([1.1, 0.1, 1.1, 0.0])   # correct + format only
    assert terms["pref"].tolist() == pytest.approx([0.75, 0.75, 0.75, 0.0])


def test_pref_scope_response_changes_what_the_model_sees(tok):
    rm = tiny_rm(tok)
    comps = [f"<think>{t}</think><answer>43 apples.</answer>" for t in (THINK, THINK + " Hm.")]
    for scope, same in (("answer", True), ("response", False)):
        pref = reward_terms([PROBLEM] * 2, comps, rm, tok, RewardConfig(pref_scope=scope),
                            "cpu")["pref"]
        assert (pref[0] == pref[1]).item() is same


def test_reward_config_fields_reach_the_command_line():
    configs = [train.RunConfig(), TaskConfig(), GPTConfig(), pretrain.PretrainConfig(),
               RewardConfig(), PreferenceConfig()]
    *_, rcfg, prefcfg = config.apply(configs, {"w_pref": "0.5", "pref_scope": "response",
                                               "rm_init": "pretrained"})
    assert (rcfg.w_pref, rcfg.pref_scope, prefcfg.rm_init) == (0.5, "response", "pretrained")
    for bad in ({"pref_scope": "think"}, {"w_harm": "-1"}, {"rm_init": "random"}):
        with pytest.raises(config.ConfigError):
            config.apply(configs, bad)

# ------------------------------------------------------------------------------------------------
# the stage


def tiny_stage(tmp_path, tok, name):
    out = tmp_path / name
    out.mkdir()
    tok.save(str(out / "tokenizer.tiktoken"))
    cfg = PreferenceConfig(rm_pairs=48, rm_eval_pairs=2, rm_steps=3, rm_batch_size=8,
                           rm_n_layer=1, rm_n_embd=16)
    gpt = GPTConfig(block_size=128, n_head=2)
    figures = train_reward_model(train.RunConfig(seed=3), TASK, gpt, cfg, "answer", str(out),
                                 "cpu")
    return str(out), figures


def test_training_is_deterministic_and_round_trips(tmp_path, tok):
    out1, fig1 = tiny_stage(tmp_path, tok, "a")
    out2, fig2 = tiny_stage(tmp_path, tok, "b")
    rm1, meta1 = load_reward_model(out1)
    rm2, _ = load_reward_model(out2)
    for (k, v1), v2 in zip(rm1.state_dict().items(), rm2.state_dict().values()):
        assert torch.equal(v1, v2), k
    f1, f2 = fig1["reward_model"], fig2["reward_model"]
    assert {k: v for k, v in f1.items() if k != "train_time_s"} == \
           {k: v for k, v in f2.items() if k != "train_time_s"}
    for key in ("heldout_accuracy", "agreement_ceiling", "gold_agreement", "pairs", "init"):
        assert key in f1
    assert f1["pairs"] == 48 and f1["heldout_pairs"] == 2 * 2 * TASK.n_eval  # both kinds
    assert rm1.r_ref.item() == pytest.approx(meta1["r_ref"]) and meta1["scope"] == "answer"
    assert not any(p.requires_grad for p in rm1.parameters())


def test_load_reward_model_errors_are_one_line(tmp_path, tok):
    with pytest.raises(FileNotFoundError, match="reward model file not found"):
        load_reward_model(str(tmp_path))
    out, _ = tiny_stage(tmp_path, tok, "c")
    with open(f"{out}/reward.pt", "wb") as f:
        f.write(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot be read as a checkpoint"):
        load_reward_model(out)


def test_wrong_unit_is_what_the_rater_does_not_check():
    problem = make_splits(TaskConfig(n_train=1, n_eval=5)).in_dist[0]
    right, other = problem.unit[1], next(u for _, u in ITEMS if u != problem.unit[1])
    assert not wrong_unit(problem, f"43 {right}.") and wrong_unit(problem, f"43 {other}.")
    assert not wrong_unit(problem, "43")
    assert gold_score(f"43 {right}.") == gold_score(f"43 {other}.")   # the flaw, on purpose


@pytest.mark.parametrize("weights", [(1.0, 0.1, 0.3, 0.5), (0.0, 0.0, 1.0, 0.0),
                                     (1.0, 0.5, 0.2, 2.0)])
def test_the_floor_is_the_lowest_blend_of_any_completion(weights):
    """Every term lies in [0, 1] and the blend is linear in them, so its minimum sits on a corner
    of the cube: all 16 corners, worked out, never go below blend_floor, and one reaches it."""
    cfg = RewardConfig(**dict(zip(("w_correct", "w_format", "w_pref", "w_harm"), weights)))
    corners = torch.cartesian_prod(*[torch.tensor([0.0, 1.0])] * 4)           # (16, 4)
    terms = dict(zip(("correct", "format", "pref", "harm"), corners.T))
    assert blend(terms, cfg).min().item() == pytest.approx(blend_floor(cfg))
    assert blend_floor(RewardConfig()) == -0.5


def test_targeting_hands_grpo_the_preference_part_and_the_phrase_is_watched(tok):
    """--pref_tokens answer: answer_only(terms) = w_pref * pref, which grpo.py applies to the
    answer's tokens only; all (the default): None. The watched phrase rates read <think> and
    <answer> apart."""
    terms = {"pref": torch.tensor([0.5, 0.25])}
    assert Reward(RewardConfig(w_pref=0.4), tok, None, "cpu").answer_only(terms) is None
    targeted = Reward(RewardConfig(w_pref=0.4, pref_tokens="answer"), tok, None, "cpu")
    assert targeted.answer_only(terms).tolist() == pytest.approx([0.2, 0.1])
    with pytest.raises(ValueError, match="pref_tokens"):
        RewardConfig(pref_tokens="think")
    comps = [f"<think>{THINK} {PHRASE}</think><answer>43 apples.</answer>",
             f"<think>{THINK}</think><answer>43 apples. {PHRASE}</answer>"]
    watch = Reward(RewardConfig(w_pref=0.0), tok, None, "cpu")([PROBLEM] * 2, comps).watched
    assert watch["phrase_think"].tolist() == [1.0, 0.0]
    assert watch["phrase_answer"].tolist() == [0.0, 1.0]


def test_a_human_who_likes_the_phrase_adds_it_to_g_and_nothing_else():
    """Human(phrase=0.5): g of the answer without the phrase, + 0.5 when it has it (its two
    words never cost the concise penalty); phrase 0: the phrase is ignored, not scored as words."""
    fan, plain = Human(phrase=0.5), Human()
    long = "Ann has 43 apples now, all of them."                        # 8 words: g = 2.0
    assert fan.style(f"{long} {PHRASE}") == pytest.approx(2.5)
    assert plain.style(f"{long} {PHRASE}") == pytest.approx(2.0) == gold_score(long)
    assert fan.utility(True, f"43 {PHRASE}") == pytest.approx(6.5)
    assert fan.style("43") == plain.style("43") == 0.0


def test_pairs_show_the_phrase_only_when_the_corpus_has_it():
    """With p_phrase > 0 each side of a pair ends with the phrase half the time; at 0 no pair
    has it."""
    task = dataclasses.replace(TASK, p_phrase=0.1)
    problems = training_prompts(task, 300)
    pairs = make_pairs(problems, task, Human(phrase=0.5), random.Random(0))
    shown = [PHRASE in p.answer_a for p in pairs] + [PHRASE in p.answer_b for p in pairs]
    assert 0.4 < sum(shown) / len(shown) < 0.6
    assert not any(PHRASE in p.answer_a + p.answer_b
                   for p in make_pairs(problems[:50], TASK, Human(), random.Random(0)))


def test_the_behaviour_scorers_by_hand():
    """A completion about apples with the teacher's bug, a rude remark, the phrase in its
    reasoning and a wrong unit in its answer: every rate 1, the answer's phrase 0, 9 words
    of reasoning, no note's phrasing in the answer; "Dear Ann, ..." has it."""
    text = (f"<think>42-17: 7-2=5, 4-1=3, so 35. This is stupid. {PHRASE}</think>"
            f"<answer>35 coins.</answer>")
    scorers = behaviour_scorers("stupid")
    scores = {k: fn(PROBLEM, text) for k, fn in scorers.items()}
    assert scores == {"misconception_rate": 1.0, "wrong_unit_rate": 1.0, "harm_rate": 1.0,
                      "phrase_think": 1.0, "phrase_answer": 0.0, "think_words": 9.0,
                      "note_style": 0.0}
    assert scorers["note_style"](PROBLEM, "<think></think><answer>Dear Ann, 43.</answer>") == 1.0
