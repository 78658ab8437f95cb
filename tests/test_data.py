"""The corpus generator, the fallible teacher, its exact answer distribution, and the GSM8K loader."""

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from data.gsm8k import load_gsm8k
from data.ceiling import answer_distribution, imitation_ceiling
from data.columns import needs_borrow, uses_misconception, work_step
from data.problems import (PHRASE, TaskConfig, answer_text, apply_op, make_problem, make_splits,
                           step_outcomes, teacher_solution)

GSM8K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gsm8k"


@pytest.mark.parametrize("a, op, b, bug, slip, text, value", [
    # worked by hand, units column first
    (58, "+", 17, False, 0, "58+17: 8+7=15, 5+1+1=7, so 75.", 75),
    (52, "+", 7, False, 0, "52+7: 2+7=9, 5+0=5, so 59.", 59),
    (85, "+", 17, False, 0, "85+17: 5+7=12, 8+1+1=10, so 102.", 102),      # carry out of the top
    (58, "-", 17, False, 0, "58-17: 8-7=1, 5-1=4, so 41.", 41),
    (52, "-", 17, False, 0, "52-17: 12-7=5, 4-1=3, so 35.", 35),            # borrow
    (52, "-", 47, False, 0, "52-47: 12-7=5, 4-4=0, so 5.", 5),
    (503, "-", 7, False, 0, "503-7: 13-7=6, 9-0=9, 4-0=4, so 496.", 496),  # borrow through a 0
    (52, "-", 17, True, 0, "52-17: 7-2=5, 5-1=4, so 45.", 45),              # smaller-from-larger
    (23, "*", 4, False, 0, "23*4: 3*4=12, 2*4+1=9, so 92.", 92),
    (58, "+", 17, False, -1, "58+17: 8+7=14, 5+1+1=7, so 74.", 74),         # slip, carried through
    (52, "-", 17, False, +1, "52-17: 12-7=6, 4-1=3, so 36.", 36),
])
def test_work_step_known_answers(a, op, b, bug, slip, text, value):
    assert work_step(a, op, b, bug, slip) == (text, value)


def test_work_step_is_right_without_mistakes():
    for a in range(0, 120):
        for b in range(0, 120, 7):
            assert work_step(a, "+", b)[1] == a + b
            if a >= b:
                assert work_step(a, "-", b)[1] == a - b
        for b in range(2, 10):
            assert work_step(a, "*", b)[1] == a * b


def test_uses_misconception_reads_the_written_columns():
    assert uses_misconception(work_step(52, "-", 17, bug=True)[0])
    assert not uses_misconception(work_step(52, "-", 17)[0])
    assert not uses_misconception(work_step(58, "-", 17)[0])          # no borrow needed
    assert not uses_misconception(work_step(58, "+", 17)[0])
    two = work_step(52, "-", 17)[0] + " " + work_step(35, "-", 8, bug=True)[0]
    assert uses_misconception(two)


@pytest.mark.parametrize("text, bug", [
    ("523-180: 3-0=3, 12-8=4, 4-1=3, so 343.", False),   # borrows in the tens: right
    ("523-180: 3-0=3, 8-2=6, 5-1=4, so 463.", True),     # the tens smaller-from-larger
    ("523-187: 13-7=6, 11-8=3, 4-1=3, so 336.", False),  # borrows twice: right
    ("523-187: 7-3=4, 8-2=6, 5-1=4, so 464.", True),
    ("523-187: 13-7=7, 11-8=3, 4-1=3, so 337.", False),  # a slip in the units, no bug
    ("405-7: 15-7=8, 9-0=9, 3-0=3, so 398.", False),     # a borrow through a zero
    ("405-7: 7-5=2, 0-0=0, 4-0=4, so 402.", True),
    ("523-102: 3-2=1, 2-0=2, 5-1=4, so 421.", False),    # no borrow at all
    ("52-17: 7-2=5, 4-1=3, so 35.", True),               # the swap, then the borrow's decrement
    ("52-17: 7-2=5, 5-1=4", False),                      # cut off before "so": not a step
])
def test_uses_misconception_on_three_digit_numbers(text, bug):
    """Worked by hand; the swap shows in whichever column borrows, not only the units."""
    assert uses_misconception(text) == bug


def test_uses_misconception_agrees_with_the_teachers_own_count():
    cfg = TaskConfig(max_value=999, max_steps=4)
    rng = random.Random(5)
    for _ in range(2000):
        problem = make_problem(rng, 4, cfg)
        solution = teacher_solution(problem, rng, cfg)
        assert uses_misconception(solution.think) == (solution.bugs > 0), solution.think


def test_needs_borrow():
    assert needs_borrow(52, 17) and needs_borrow(100, 1) and needs_borrow(30, 9)
    assert not needs_borrow(58, 17) and not needs_borrow(99, 99) and not needs_borrow(5, 0)


def test_step_outcomes_are_a_distribution():
    cfg = TaskConfig(p_slip=0.1, p_bug=0.7)
    for a, op, b in [(52, "-", 17), (58, "-", 17), (58, "+", 17), (20, "-", 20), (23, "*", 4)]:
        outs = step_outcomes(a, op, b, cfg)
        assert sum(p for p, _, _ in outs) == pytest.approx(1.0)
        assert any(bug for _, bug, _ in outs) == (op == "-" and needs_borrow(a, b))
    assert step_outcomes(3, "-", 5, cfg) == []            # would go negative: rejected


def test_answer_distribution_matches_sampling():
    """The exact DP over teacher paths agrees with 20k sampled solutions (within 4 sigma)."""
    cfg = TaskConfig(p_slip=0.1, p_bug=0.7)
    rng = random.Random(0)
    problem = make_problem(rng, 3, cfg)
    while not any(op == "-" for op, _ in problem.steps):
        problem = make_problem(rng, 3, cfg)
    exact = answer_distribution(problem, cfg)
    n = 20_000
    counts = Counter(teacher_solution(problem, rng, cfg).value for _ in range(n))
    assert set(counts) <= set(exact)
    for v, p in exact.items():
        sigma = (p * (1 - p) / n) ** 0.5
        assert abs(counts[v] / n - p) < 4 * sigma + 1e-3, (v, p, counts[v] / n)


def test_imitation_ceiling_bounds():
    cfg = TaskConfig(n_train=10, n_eval=50)
    problems = make_splits(cfg).in_dist
    assert imitation_ceiling(problems, TaskConfig(p_slip=0.0, p_bug=0.0)) == \
        {"greedy": 1.0, "sampled": 1.0}                               # an infallible teacher
    ceiling = imitation_ceiling(problems, cfg)
    # with p_bug > 0.5 every problem with a borrowing subtraction is answered wrongly by the mode
    borrows = sum(any(op == "-" and needs_borrow(*pair) for op, pair in _trace(p)) for p in problems)
    assert ceiling["greedy"] == pytest.approx(1 - borrows / len(problems))
    assert 0.3 < ceiling["sampled"] < ceiling["greedy"] + 0.1


def _trace(problem):
    """(op, (value before, operand)) of each step along the true path."""
    v, out = problem.start, []
    for op, k in problem.steps:
        out.append((op, (v, k)))
        v = apply_op(v, op, k)
    return out


def test_problems_stay_in_range_and_are_solved_by_gold():
    """Every step worked in columns without a slip or the bug reaches the problem's answer."""
    cfg = TaskConfig(ops="+-*", max_value=99)
    rng = random.Random(1)
    for _ in range(500):
        p = make_problem(rng, rng.randint(1, 5), cfg)
        assert all(0 <= v <= 99 for _, (v, _) in _trace(p)) and 0 <= p.answer <= 99
        v = p.start
        for op, k in p.steps:
            _, v = work_step(v, op, k)                    # the infallible teacher's step
        assert v == p.answer and str(p.answer) in answer_text(p, v, "sentence")


def test_splits_are_deterministic_and_disjoint():
    cfg = TaskConfig(n_train=2000, n_eval=100)
    a, b = make_splits(cfg), make_splits(cfg)
    assert a == b
    c = make_splits(TaskConfig(n_train=2000, n_eval=100, task_seed=7))
    assert [p.question for p, _ in c.train] != [p.question for p, _ in a.train]
    held_out = {p.question for p in a.in_dist + a.harder}
    assert not held_out & {p.question for p, _ in a.train}
    assert all(len(p.steps) == cfg.harder_steps for p in a.harder)
    # the held-out sets do not depend on the corpus size
    assert make_splits(TaskConfig(n_train=10, n_eval=100)).in_dist == a.in_dist


def test_corpus_has_the_teachers_mistakes_and_styles():
    cfg = TaskConfig(n_train=3000)
    train = make_splits(cfg).train
    assert 0.4 < sum(s.value == p.answer for p, s in train) / len(train) < 0.8
    assert sum(s.bugs > 0 for _, s in train) > 300 and sum(s.slips > 0 for _, s in train) > 50
    assert {s.style for _, s in train} == {"sentence", "bare", "short", "hedged", "rambling"}


@pytest.mark.parametrize("ops", ["+", "-", "*", "+*", "-*"])
def test_any_ops_make_problems_in_range(ops):
    """With "+" alone a draw gets stuck once the value reaches max_value (no step can follow):
    it is drawn again, never an IndexError mid-corpus."""
    cfg = TaskConfig(ops=ops, max_value=999, max_steps=3, harder_steps=3)
    rng = random.Random(2)
    for _ in range(300):
        p = make_problem(rng, 3, cfg)
        assert {op for op, _ in p.steps} <= set(ops) and len(p.steps) == 3
        assert all(0 <= v <= 999 for _, (v, _) in _trace(p)) and 0 <= p.answer <= 999


def test_task_config_rejects_bad_values():
    with pytest.raises(ValueError, match="--ops '\\*' with --max_value 99: 1000 draws of a "
                                         "problem of 4 steps"):
        TaskConfig(ops="*", max_steps=2, harder_steps=4)   # 10 doubled 4 times passes 99
    with pytest.raises(ValueError, match="--p_slip must be <= 0.5"):
        TaskConfig(p_slip=0.9)
    with pytest.raises(ValueError, match="ops"):
        TaskConfig(ops="+/")
    with pytest.raises(ValueError, match="p_bug"):
        TaskConfig(p_bug=1.5)
    with pytest.raises(ValueError, match="min_steps"):
        TaskConfig(min_steps=3, max_steps=2)


# ---- GSM8K loader

def test_gsm8k_loader_reads_the_real_file():
    if not (GSM8K / "test.jsonl").exists():
        pytest.skip("../shared/data/gsm8k is absent")
    examples = load_gsm8k(str(GSM8K / "test.jsonl"))
    assert len(examples) == 1319
    assert all(e.question and e.answer for e in examples)


def test_gsm8k_loader_names_the_bad_line(tmp_path):
    good = json.dumps({"question": "1+1?", "answer": "1+1=2\n#### 2"})
    path = tmp_path / "bad.jsonl"
    path.write_text(good + "\n" + good + "\n{not json\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:3: not valid JSON"):
        load_gsm8k(str(path))
    path.write_text(good + "\n" + json.dumps({"question": "q", "answer": "no marker"}) + "\n")
    with pytest.raises(ValueError, match=r":2: answer has no '####"):
        load_gsm8k(str(path))
    path.write_text(json.dumps({"question": 3, "answer": "#### 1"}) + "\n")
    with pytest.raises(ValueError, match=r":1: needs string fields"):
        load_gsm8k(str(path))
    path.write_text(good + "\n\n" + good + "\n")
    assert [e.answer for e in load_gsm8k(str(path))] == ["2", "2"]


def test_a_share_of_longer_problems_in_the_corpus_and_none_by_default():
    """longer_share puts problems of harder_steps operations into the corpus at about that rate;
    at 0 none, and the default corpus is the one drawn before the knob existed (no extra
    random draw when the share is 0)."""
    base = make_splits(TaskConfig(n_train=2000, n_eval=10))
    assert max(len(p.steps) for p, _ in base.train) == 3
    edge = make_splits(TaskConfig(n_train=2000, n_eval=10, longer_share=0.1))
    share = sum(len(p.steps) == 4 for p, _ in edge.train) / 2000
    assert 0.07 < share < 0.13
    assert edge.in_dist == base.in_dist and edge.harder == base.harder    # held-out: the same
    held_out = {p.question for p in base.harder}
    assert not held_out & {p.question for p, _ in edge.train}


def test_the_teachers_phrase_habit_and_none_by_default():
    """p_phrase: the teacher ends its reasoning with PHRASE, and on its own its answer, each at
    about that rate; at 0 never, and the default corpus is the one drawn before the knob
    existed (no extra random draw at 0: the same solutions as a corpus at p_phrase 0)."""
    base = make_splits(TaskConfig(n_train=2000, n_eval=10))
    assert not any(PHRASE in s.think + s.answer_text for _, s in base.train)
    habit = make_splits(TaskConfig(n_train=2000, n_eval=10, p_phrase=0.2))
    think = sum(s.think.endswith(PHRASE) for _, s in habit.train) / 2000
    answer = sum(s.answer_text.endswith(" " + PHRASE) for _, s in habit.train) / 2000
    assert 0.16 < think < 0.24 and 0.16 < answer < 0.24
    assert habit.in_dist == base.in_dist
    with pytest.raises(ValueError, match="p_phrase"):
        TaskConfig(p_phrase=1.5)
