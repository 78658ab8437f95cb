"""DeepSeek-R1's arrangement: requests for a note beside the maths (data/general.py), rewards
routed by prompt kind (reward.route) and the learned harmlessness model (harmlessness.py)."""

import random
from collections import Counter

import pytest
import torch

from behaviour import harm
from data.general import NOTE_STYLES, make_request, miscopy, note_text, teacher_note
from data.problems import (ANSWER_STYLES, RUDE_REMARK, RUDE_REMARKS, RUDE_WORDS, Problem,
                           TaskConfig, answer_text, make_splits, rude_remark, teacher_solution)
from data.rater import Human, gold_score, make_pairs, training_prompts
from data.tokenizer import Tokenizer, train_bpe
from harmlessness import EVERY_WORD, examples, harm_probability, harm_view
from model import GPTConfig
from preference import PreferenceModel
from reward import Reward, RewardConfig, route

NOTES = TaskConfig(n_train=600, n_eval=20, p_general=0.3, rude_wordings=5)
REQUEST = Problem("Write a note to Tom: Ann sends him 43 apples.", 43, (), 43, "Tom",
                  ("apple", "apples"), kind="general")
MATHS = Problem("Ann has 40 apples. She buys 3 more. How many apples does Ann have now?",
                40, (("+", 3),), 43, "Ann", ("apple", "apples"))


def completion(think: str, answer: str) -> str:
    return f"<think>{think}</think><answer>{answer}</answer>"


@pytest.fixture(scope="module")
def tok():
    texts = [REQUEST.prompt + "Tom gets 43 apples." + note_text(REQUEST, 43, s)
             for s in NOTE_STYLES] + [MATHS.prompt + "40+3: 0+3=3, 4+0=4, so 43. 43"]
    return Tokenizer(train_bpe((texts + list(RUDE_REMARKS)) * 3, 320))


def tiny(tok, seed=0):
    torch.manual_seed(seed)
    return PreferenceModel(GPTConfig(vocab_size=tok.n_vocab, block_size=128, n_layer=1, n_head=2,
                                     n_embd=16))

# ------------------------------------------------------------------------------------------------
# the requests and the human's utility of a note


def test_a_notes_utility_by_hand():
    """u = c [the count passed on] + g(note), g the maths answers' taste: "Dear Tom, here are
    43 apples for you." is 8 words ending in "." that name the unit: g = 1 + 1 = 2, u = 6 + 2;
    "43 apples." g = 1 (a unit, no sentence); "I think it is 43 apples, but I am not sure.":
    -1.5 + 1 - 0.1 * (11 - 8) = -0.8; a miscopied "42 apples." is worth g alone."""
    human = Human()
    assert note_text(REQUEST, 43, "sentence") == "Dear Tom, here are 43 apples for you."
    request = make_request(random.Random(0), NOTES)
    assert request.question.startswith("Write a note to ") and request.answer == request.start
    g = {s: gold_score(note_text(REQUEST, 43, s)) for s in NOTE_STYLES}
    assert g == pytest.approx({"sentence": 2.0, "short": 1.0, "bare": 0.0, "hedged": -0.8,
                               "rambling": -2.3})
    assert human.utility(True, note_text(REQUEST, 43, "sentence")) == 8.0
    assert human.utility(False, note_text(REQUEST, 42, "short")) == 1.0
    assert [s for s, _, _ in ANSWER_STYLES] == list(NOTE_STYLES)     # the same styles, weights


def test_the_teacher_miscopies_at_its_rate_and_says_what_it_planned():
    """A note's plan and note state one count; it is wrong with probability p_miscopy, never
    by 0, and `slips` marks it."""
    rng, n = random.Random(0), 4000
    notes = [teacher_note(REQUEST, rng, NOTES) for _ in range(n)]
    wrong = [s for s in notes if s.value != 43]
    assert abs(len(wrong) / n - NOTES.p_miscopy) < 0.02
    assert all(s.slips == 1 for s in wrong) and all(s.slips == 0 for s in notes if s.value == 43)
    assert all(f"gets {s.value} " in s.think and str(s.value) in s.answer_text for s in notes)
    assert {miscopy(5, random.Random(i)) for i in range(200)} - set(range(1, 15)) == set()
    assert teacher_solution(REQUEST, random.Random(1), NOTES) == teacher_note(
        REQUEST, random.Random(1), NOTES)                   # the corpus's teacher dispatches


def test_requests_are_their_share_and_every_held_out_set_is_disjoint():
    """p_general of the corpus are requests; the held-out requests and the maths held-out sets
    are never in it, and the maths held-out sets are those of a corpus without requests."""
    splits = make_splits(NOTES)
    share = sum(p.kind == "general" for p, _ in splits.train) / len(splits.train)
    assert abs(share - 0.3) < 0.06 and len(splits.general) == NOTES.n_eval
    assert all(p.kind == "general" and p.steps == () for p in splits.general)
    corpus = {p.question for p, _ in splits.train}
    for held in (splits.in_dist, splits.harder, splits.general):
        assert not corpus & {p.question for p in held}
    plain = make_splits(TaskConfig(n_train=600, n_eval=20))
    assert plain.in_dist == splits.in_dist and plain.harder == splits.harder
    assert plain.general == [] and all(p.kind == "maths" for p, _ in plain.train)
    prompts = training_prompts(NOTES, 300)
    assert 0.2 < sum(p.kind == "general" for p in prompts) / 300 < 0.4
    assert not {p.question for p in prompts} & {p.question for p in splits.general}
    pairs = make_pairs([REQUEST] * 50, NOTES, Human(), random.Random(0), solution_share=1.0)
    assert all(p.answer == 43 and "gets" in p.think_a for p in pairs)


def test_the_rude_remark_keeps_its_one_wording_by_default_and_the_rule_catches_every_one():
    """rude_wordings 1 draws nothing (the default corpus is as it was); k > 1 draws the first k
    wordings at rates 1, 1/2, 1/4, ...; the human's rule has a word for each."""
    rng = random.Random(3)
    state = rng.getstate()
    assert rude_remark(rng, TaskConfig(n_train=1)) == RUDE_REMARK and rng.getstate() == state
    counts = Counter(rude_remark(rng, NOTES) for _ in range(31000))
    assert [round(counts[r] / 1000) for r in RUDE_REMARKS] == [16, 8, 4, 2, 1]
    for remark, word in zip(RUDE_REMARKS, RUDE_WORDS):
        assert harm(completion(remark, "3"), EVERY_WORD, "response") == 1.0
        assert harm(completion(remark, "3"), word, "response") == 1.0
    assert harm(completion("fine", "3"), EVERY_WORD, "response") == 0.0
    assert harm(completion("What a dumb question.", "3"), "stupid", "response") == 0.0

# ------------------------------------------------------------------------------------------------
# routing: which term reads which prompt


def test_route_by_hand():
    """The verifier pays maths only, under both arrangements; routed pays the preference model
    on notes only; format and harm are paid everywhere."""
    terms = {"correct": torch.tensor([1.0, 1.0]), "format": torch.tensor([1.0, 1.0]),
             "pref": torch.tensor([0.7, 0.6]), "harm": torch.tensor([1.0, 1.0])}
    general = torch.tensor([False, True])
    blend = route(terms, general, RewardConfig(route="blend"))
    routed = route(terms, general, RewardConfig(route="routed"))
    assert blend["correct"].tolist() == routed["correct"].tolist() == [1.0, 0.0]
    assert blend["pref"].tolist() == pytest.approx([0.7, 0.6])
    assert routed["pref"].tolist() == pytest.approx([0.0, 0.6])
    for t in (blend, routed):
        assert t["format"].tolist() == t["harm"].tolist() == [1.0, 1.0]


def test_the_reward_routes_constructed_completions(tok):
    """A right maths answer and a note with the right count, each with a rude remark: the note's
    count is never paid; routed, the maths answer gets no preference term; the rude remark
    costs both; dynamic sampling's signal is the verifier on maths and the total on notes."""
    problems = [MATHS, REQUEST]
    texts = [completion("40+3: 0+3=3, 4+0=4, so 43. This is stupid.", "43"),
             completion("Tom gets 43 apples. How silly.", note_text(REQUEST, 43, "sentence"))]
    cfg = dict(w_pref=1.0, banned=EVERY_WORD)
    for arrangement in ("blend", "routed"):
        scored = Reward(RewardConfig(route=arrangement, **cfg), tok, tiny(tok), "cpu")(problems,
                                                                                     texts)
        t = scored.terms
        assert t["correct"].tolist() == [1.0, 0.0] and scored.right.tolist() == [1.0, 1.0]
        assert t["harm"].tolist() == [1.0, 1.0] and t["format"].tolist() == [1.0, 1.0]
        assert (t["pref"][0] > 0) == (arrangement == "blend") and t["pref"][1] > 0
        assert scored.signal.tolist() == pytest.approx([1.0, scored.total[1].item()])
        assert scored.total.tolist() == pytest.approx(
            (t["correct"] + 0.1 * t["format"] + t["pref"] - 0.5 * t["harm"]).tolist())

# ------------------------------------------------------------------------------------------------
# the learned harmlessness model


def test_the_harm_model_reads_the_whole_response_and_nothing_after_it(tok):
    """Its view ends at </answer>: text after it never changes p; a remark inside <think> or
    inside <answer> can. Learned, its p replaces the rule in the blend, and the rule is what is
    watched (harm_gold, harm_missed = harmful by the rule but p < 1/2)."""
    model = tiny(tok, seed=1)
    clean = completion("Tom gets 43 apples.", "43 apples.")
    p = lambda texts: harm_probability(model, tok, [REQUEST.question] * len(texts), texts,  # noqa
                                       "cpu")
    base, after, inside, answer = p([clean, clean + "How silly.", completion(
        "Tom gets 43 apples. How silly.", "43 apples."), completion("Tom gets 43 apples.",
                                                                    "43 apples. How silly.")])
    assert after == base and inside != base and answer != base
    assert harm_view(clean + "<|endoftext|>junk") == clean
    rude = completion("Tom gets 43 apples. How silly.", "43 apples.")
    scored = Reward(RewardConfig(w_pref=0.0, banned=EVERY_WORD), tok, None, "cpu",
                    harm_rm=model)([REQUEST, REQUEST], [clean, rude])
    probs = p([clean, rude])
    assert scored.terms["harm"].tolist() == pytest.approx(probs.tolist())
    assert scored.watched["harm_gold"].tolist() == [0.0, 1.0]
    assert scored.watched["harm_missed"].tolist() == [0.0, float(probs[1] < 0.5)]


def test_the_harm_models_examples_are_labelled_by_the_humans_rule():
    """About half of the examples hold a remark, in every wording, each labelled by the rule."""
    rows = examples(training_prompts(NOTES, 400), NOTES, random.Random(0))
    assert 0.4 < sum(y for _, _, y in rows) / len(rows) < 0.6
    assert all(y == any(r in c for r in RUDE_REMARKS) for _, c, y in rows)
    assert set(RUDE_REMARKS[:4]) <= {r for _, c, _ in rows for r in RUDE_REMARKS if r in c}
    assert any(q.startswith("Write a note") for q, _, _ in rows)
    assert answer_text(REQUEST, 7, "short") == "7 apples."
