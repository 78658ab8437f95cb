"""
A simulated human rater: the "preferences" half of the data, for the preference model
(preference.py).

What this is: a gold scoring rule g(answer) over the text of a final answer, and a noisy annotator
built on it. The rater reads the ANSWER SPAN ONLY, never the reasoning, like the judges behind
DeepSeek-R1's helpfulness reward model (arXiv 2501.12948, section 2.3.4), which see the final
summary. It likes an answer that states the result in a full sentence with its unit, does not
hedge and stays concise:

    g(a) = +1    full sentence: >= 4 words, ends with ".", no hedge
           +1    names the unit (any item noun of data/problems.ITEMS, singular or plural)
           -1.5  hedges ("I think", "maybe", "not sure", "I believe", ...)
           -0.1  per word beyond 8

On the five answer styles of the corpus (data/problems.ANSWER_STYLES) g is the same for every
problem, so the order is strict:

    style      example                                     g
    sentence   "Ann has 43 apples now."                    2.0   (sentence + unit)
    short      "43 apples."                                1.0   (unit; 2 words is no sentence)
    bare       "43"                                        0.0
    hedged     "I think it is 43, but I am not sure."     -1.7   (hedge, 10 words)
    rambling   "Well, after going through ... I believe." -3.3   (hedge, 26 words)

Labels are noisy, as annotators are: P(a preferred over b) = sigma((g(a) - g(b)) / tau), the
Bradley-Terry model (Bradley & Terry 1952; the RLHF form in Ouyang et al., arXiv 2203.02155,
eq. 1) with temperature tau. Even a preference model that recovers g exactly agrees with these
labels only with probability sigma(|g(a) - g(b)| / tau) per pair: `agreement_ceiling` is that
probability averaged over a set of pairs, the best held-out accuracy any model can expect.
With tau = 0.7 (preference.PreferenceConfig.rater_tau) and pairs drawn from the corpus style mix the
ceiling is about 0.92 (0.96 at tau = 0.5, 0.87 at tau = 1).

Pairs (`make_pairs`): one prompt, ONE number, two different styles. The number is a single draw
from the fallible teacher's answer distribution for that prompt (a teacher solution, so right
about 60% of the time) and both answers state it, so the pair differs in style only: the
preference model must learn style, not arithmetic (arithmetic is the verifier's job). Both sides
of a pair share that teacher's reasoning too, which the rater never reads. The two styles are
drawn from the corpus mix, the second redrawn until it differs from the first. Ties: a pair whose
two answers have equal g carries no preference and is never built (with the five styles above
no two styles tie; the guard is for other rules). Training prompts are fresh problems from the
training distribution (their own random stream, `training_prompts`), never a held-out question.

What this deliberately is not: a model of real annotators (no per-rater bias, no position bias,
no fatigue), or a rater of the reasoning. The gold score is the evaluation's business only: the
preference model trains on the noisy labels, as it would on a real human's.
"""

import dataclasses
import math
import random
import re
from dataclasses import dataclass

from data.problems import (ANSWER_STYLES, ITEMS, Problem, TaskConfig, answer_text, make_problem,
                           make_splits, teacher_solution)

HEDGES = ("i think", "maybe", "not sure", "i believe", "probably", "i guess", "perhaps")
UNITS = {w for pair in ITEMS for w in pair}                    # apple, apples, pear, pears, ...
CONCISE_WORDS = 8                                              # words allowed before the -0.1s

# ------------------------------------------------------------------------------------------------
# the gold rater

def gold_score(answer: str) -> float:
    """The rater's noise-free score of a final answer text (see the module docstring).
    gold_score("Ann has 43 apples now.") -> 2.0;  gold_score("43 apples.") -> 1.0;
    gold_score("43") -> 0.0;  gold_score("I think it is 43, but I am not sure.") -> -1.7"""
    text = answer.strip()
    words = re.findall(r"[A-Za-z0-9']+", text.lower())         # "43, but" -> ["43", "but"]
    hedged = any(h in " ".join(words) for h in HEDGES)
    g = 0.0
    if len(words) >= 4 and text.endswith(".") and not hedged:
        g += 1.0                                               # a full, plain sentence
    if UNITS & set(words):
        g += 1.0                                               # names what is counted
    if hedged:
        g -= 1.5
    g -= 0.1 * max(0, len(words) - CONCISE_WORDS)              # rambling costs per word
    return round(g, 6)                                         # -1.7, not -1.7000000000000002


def wrong_unit(problem: Problem, answer: str) -> bool:
    """True if the answer names an item noun that is not the problem's: a flaw the rater shares
    with the preference model trained on it. g rewards naming *a* unit, not the right one, so a
    policy that learns "43 apples." for a question about coins is paid as if it were right.
    wrong_unit(<a problem about coins>, "43 apples.") -> True; (..., "43 coins.") -> False"""
    words = set(re.findall(r"[a-z]+", answer.lower()))
    return bool((UNITS - set(problem.unit)) & words)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def noisy_preference(g_a: float, g_b: float, tau: float, rng: random.Random) -> bool:
    """The annotator's label: True (a preferred) with probability sigma((g_a - g_b) / tau)."""
    return rng.random() < sigmoid((g_a - g_b) / tau)


def agreement_ceiling(deltas: list[float], tau: float) -> float:
    """Expected agreement of the noise-free ordering with the noisy labels: mean sigma(|D| / tau)
    over the pairs' gold differences D = g(a) - g(b); pairs with D = 0 are left out (no order).
    agreement_ceiling([1.0, -1.0], tau=1.0) -> sigma(1) = 0.7311;  [2.0, 0.0], tau=1 -> 0.8808"""
    ds = [abs(d) for d in deltas if d != 0]
    return sum(sigmoid(d / tau) for d in ds) / max(len(ds), 1)

# ------------------------------------------------------------------------------------------------
# preference pairs

@dataclass(frozen=True)
class Pair:
    """Two completions of one prompt that state the same number in two styles, and the label."""
    question: str
    think: str                  # the teacher's reasoning, shared by both sides (the rater skips it)
    value: int                  # the number both answers state
    style_a: str
    style_b: str
    answer_a: str
    answer_b: str
    a_wins: bool                # the noisy human label: a preferred over b

    def completion(self, side: str) -> str:
        """The full completion text of side "a" or "b", as the policy would write it."""
        answer = self.answer_a if side == "a" else self.answer_b
        return f"<think>{self.think}</think><answer>{answer}</answer>"

    @property
    def chosen_rejected(self) -> tuple[str, str]:
        """The two sides' completions as (chosen, rejected) by the noisy label."""
        a, b = self.completion("a"), self.completion("b")
        return (a, b) if self.a_wins else (b, a)


def make_pairs(problems: list[Problem], task: TaskConfig, tau: float, rng: random.Random,
               per_problem: int = 1) -> list[Pair]:
    """`per_problem` labelled pairs for each problem (same number, two different styles)."""
    styles, weights = [s for s, _, _ in ANSWER_STYLES], [w for _, w, _ in ANSWER_STYLES]
    pairs = []
    for problem in problems:
        for _ in range(per_problem):
            sol = teacher_solution(problem, rng, task)         # value ~ the teacher's answer dist.
            for _ in range(100):
                sa, sb = rng.choices(styles, weights, k=2)
                a, b = answer_text(problem, sol.value, sa), answer_text(problem, sol.value, sb)
                if sa != sb and gold_score(a) != gold_score(b):
                    break                                      # ties carry no preference
            else:
                raise RuntimeError("no two styles with different gold scores")
            label = noisy_preference(gold_score(a), gold_score(b), tau, rng)
            pairs.append(Pair(problem.question, sol.think, sol.value, sa, sb, a, b, label))
    return pairs


def training_prompts(task: TaskConfig, n: int) -> list[Problem]:
    """n problems from the training distribution for preference pairs, none of them a held-out
    question. Their own random stream "{task_seed}/pairs": the pretraining corpus is untouched."""
    splits = make_splits(dataclasses.replace(task, n_train=1))  # held-out sets only
    held_out = {p.question for p in splits.in_dist + splits.harder}
    rng, out = random.Random(f"{task.task_seed}/pairs"), []
    while len(out) < n:
        problem = make_problem(rng, rng.randint(task.min_steps, task.max_steps), task)
        if problem.question not in held_out:
            out.append(problem)
    return out
