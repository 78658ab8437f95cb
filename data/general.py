"""
General prompts: requests for a short note, written by the same fallible teacher in the same
template as the maths, the "general data" of DeepSeek-R1's second RL stage (arXiv 2501.12948,
section 2.3.4), which no rule reward reads.

    Write a note to Tom: Ann sends him 43 apples.
    <think>Tom gets 43 apples.</think><answer>Dear Tom, here are 43 apples for you.</answer>

(the newlines around the tags are for this docstring only.) A request is a data.problems.Problem
of kind "general" with no steps, whose `answer` is the count it asks the note to pass on, so the
whole pipeline (pairs, sampling, evaluation) handles both kinds alike.

What the simulated human values in a note (data/rater.Human) is what it values in a maths
answer, with the request in place of the problem:

    u = c * [the note passes on the request's count] + g(note)

with g the same taste for plain full sentences that name the thing counted, against hedging and
rambling (data/rater.gold_score). The note styles carry the answer styles' names and weights:

    style      note                                                         g
    sentence   "Dear Tom, here are 43 apples for you."                      2.0
    short      "43 apples."                                                 1.0
    bare       "43"                                                         0.0
    hedged     "I think it is 43 apples, but I am not sure."               -0.8
    rambling   "Well, after reading the request twice ..., I believe."     -2.3

The teacher miscopies the count with probability `p_miscopy` (off by 1 to 9, in its plan and its
note alike), and now and then writes a rude remark into its plan, as it does into its maths.

Why a learned model can learn something real about notes and still has something to
over-optimise: a labeller who reads the request sees a miscopied count (c of utility), one in a
hurry sees only g (data/rater.py). A preference model trained on their labels learns g well and
the count only as well as the checked labels teach it, so a policy paid by it can find notes it
overrates: the same style-over-substance error it finds in maths answers.

In this world a rule could read a note's count. No arrangement of reward.py lets one: R1's
general data (a summary's helpfulness) has no rule, and the question is what a learned model
does where none exists. The count is the gold's business, as a maths answer's correctness is.

What this deliberately is not: open-ended text. A note is one of five templates; the requests
name the maths world's people and items so that one tokenizer and one model serve both kinds.
"""

import random

from data.problems import (ANSWER_STYLES, ITEMS, NAMES, Problem, Solution, TaskConfig,
                           rude_remark)

NOTE_STYLES = {     # the answer styles' names (and weights: data.problems.ANSWER_STYLES)
    "sentence": "Dear {Name}, here are {n} {unit} for you.",
    "bare": "{n}",
    "short": "{n} {unit}.",
    "hedged": "I think it is {n} {unit}, but I am not sure.",
    "rambling": "Well, after reading the request twice and thinking about what {Name} would "
                "like to hear, the note says {n} {unit} are on the way, I believe.",
}


def make_request(rng: random.Random, cfg: TaskConfig) -> Problem:
    """A request for a note: make_request(rng, cfg).question ->
    "Write a note to Tom: Ann sends him 43 apples." (its count in [2, max_value])."""
    name, _, him = rng.choice(NAMES)
    other = rng.choice([n for n, _, _ in NAMES if n != name])
    unit = rng.choice(ITEMS)
    n = rng.randint(2, cfg.max_value)
    question = f"Write a note to {name}: {other} sends {him} {n} {unit[1]}."
    return Problem(question, n, (), n, name, unit, kind="general")


def note_text(request: Problem, value: int, style: str) -> str:
    """The note in one of NOTE_STYLES, passing on `value`:
    note_text(<Tom, apples>, 43, "short") -> "43 apples." """
    unit = request.unit[0] if value == 1 else request.unit[1]
    return NOTE_STYLES[style].format(Name=request.name, n=value, unit=unit)


def miscopy(n: int, rng: random.Random) -> int:
    """A wrong count near n: n +- 1..9, at least 1, never n."""
    v = max(1, n + rng.choice((-1, 1)) * rng.randint(1, 9))
    return v if v != n else n + 1


def teacher_note(request: Problem, rng: random.Random, cfg: TaskConfig) -> Solution:
    """The teacher's note: a one-sentence plan that restates the count (miscopied with
    p_miscopy), a rude remark before or after it with p_rude, and the note in a style drawn
    with the answer styles' weights. `slips` is 1 for a miscopied note."""
    value = miscopy(request.answer, rng) if rng.random() < cfg.p_miscopy else request.answer
    unit = request.unit[0] if value == 1 else request.unit[1]
    texts = [f"{request.name} gets {value} {unit}."]
    if rng.random() < cfg.p_rude:
        texts.insert(rng.randint(0, 1), rude_remark(rng, cfg))
    style = rng.choices([s for s, _, _ in ANSWER_STYLES],
                        weights=[w for _, w, _ in ANSWER_STYLES])[0]
    return Solution(" ".join(texts), note_text(request, value, style), value, style, 0,
                    int(value != request.answer))
