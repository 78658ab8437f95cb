"""
A simulated human rater: the "preferences" half of the data, for the preference model
(preference.py).

What this is: a human with a true utility over completions, and a noisy annotator built on it.

    u(y) = c * [the answer is right] + g(answer)                                  (`Human.utility`)

g is a style score of the final answer text. The human likes an answer that states the result in
a full sentence with its unit, does not hedge and stays concise:

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

c = 6 (`--rater_c`): correctness first, then style. The five styles span 2.0 - (-3.3) = 5.3, so
with c > 5.3 a right answer in the worst corpus style is worth more than a wrong one in the best.

The annotator (`Human.label`): with probability `check` (`--rater_check`) the labeller works a
pair's problem out and perceives u; otherwise they judge in a hurry (`--rater_hurried`): by the
prose alone, perceiving g (`style`, the default: a bias, systematic, which a model can learn and
a policy can then exploit), or by a fair coin (`coin`: noise, which nothing can learn). The
label is noisy Bradley-Terry on what they perceived: P(a preferred over b) =
sigma((u'(a) - u'(b)) / tau) (Bradley & Terry 1952; the RLHF form in Ouyang et al., arXiv
2203.02155, eq. 1), temperature tau. On right-vs-wrong solution pairs the two sides' styles are
drawn independently of their correctness, so both hurried labellers prefer the right side half
the time, and the two kinds give labels of the same accuracy for the same `check`
(tests/test_noise.py works it out). Even a preference model that recovers u exactly agrees
with these labels only with probability sigma(|D| / tau) on a pair whose perceived difference is
D: `agreement_ceiling` is that probability averaged over a set of pairs.

Pairs (`make_pairs`), two kinds, the mix a knob (`--rm_solution_pairs`, the share of the second):
  style     one teacher solution, ONE number, two different styles: the pair differs in style
            only, and both sides share that teacher's reasoning;
  solution  two independent teacher solutions of the prompt, each with its own reasoning, number
            and style: right-vs-wrong pairs arise at the teacher's natural rate (a teacher
            solution is right about 60% of the time), and only a labeller who checks sees it.
Ties: a pair whose two sides have the same true utility u carries no preference and is never
built (the second side is redrawn). Training prompts are fresh problems from the training
distribution (their own random stream, `training_prompts`), never a held-out question.

The rater reads the answer span for g, and the problem itself when it checks; the preference
model reads what its scope shows it (preference.py): the answer only, like the judges behind
DeepSeek-R1's helpfulness reward model (arXiv 2501.12948, section 2.3.4), or the whole response.

What this deliberately is not: a model of real annotators (no per-rater bias, no position bias,
no fatigue), or a judge of the reasoning's steps. The true utility is the evaluation's business
only: the preference model trains on the noisy labels, as it would on a real human's.
"""

import dataclasses
import math
import random
import re
from dataclasses import dataclass

from data.general import make_request
from data.problems import (ANSWER_STYLES, ITEMS, PHRASE, Problem, TaskConfig, answer_text,
                           has_phrase, make_problem, make_splits, teacher_solution)

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
# the human and its preference pairs

@dataclass(frozen=True)
class Human:
    """The simulated human: true utility u = c * [right] + g(answer), and noisy labels."""
    tau: float = 0.7            # Bradley-Terry noise of a label
    c: float = 6.0              # the value of a right answer, beside g's style
    check: float = 0.5          # chance that the labeller works a pair's problem out
    phrase: float = 0.0         # what PHRASE in the answer adds to g (a spurious liking)
    hurried: str = "style"      # a labeller who does not check: style (perceives g) | coin

    def style(self, answer: str) -> float:
        """g as this human scores it: gold_score of the answer without PHRASE, plus `phrase` if
        the answer has it. With Human(phrase=0.5): style("43 apples. Double-checked.") -> 1.5"""
        bonus = self.phrase * has_phrase(answer)
        return gold_score(answer.replace(PHRASE, "").strip()) + bonus

    def perceived(self, right_a: bool, answer_a: str, right_b: bool, answer_b: str,
                  checked: bool) -> float:
        """The utility difference D a labeller perceived, u'(a) - u'(b); 0 for a coin (no
        order perceived)."""
        if not checked and self.hurried == "coin":
            return 0.0
        return (self.utility(right_a and checked, answer_a)
                - self.utility(right_b and checked, answer_b))

    def utility(self, right: bool, answer: str) -> float:
        """u = c * [right] + g(answer). utility(True, "43") -> 6.0; (False, "43 apples.") -> 1.0"""
        return self.c * float(right) + self.style(answer)

    def label(self, right_a: bool, answer_a: str, right_b: bool, answer_b: str,
              rng: random.Random) -> tuple[bool, bool]:
        """(a preferred, checked): a labeller who checks (probability `check`) perceives u, one
        who does not perceives g alone; the label is Bradley-Terry on the perceived difference.
        With hurried "coin" a labeller who does not check flips a fair coin instead."""
        checked = rng.random() < self.check
        if not checked and self.hurried == "coin":
            return rng.random() < 0.5, checked                 # noise: no feature decides
        u_a = self.utility(right_a and checked, answer_a)      # perceived: c counts if checked
        u_b = self.utility(right_b and checked, answer_b)
        return noisy_preference(u_a, u_b, self.tau, rng), checked


@dataclass(frozen=True)
class Pair:
    """Two completions of one prompt and the human's label (module docstring: the two kinds)."""
    kind: str                   # "style": one solution, two styles | "solution": two solutions
    question: str
    answer: int                 # the true answer of the problem
    think_a: str                # each side's reasoning (equal in a style pair)
    think_b: str
    value_a: int                # the number each side states (equal in a style pair)
    value_b: int
    style_a: str
    style_b: str
    answer_a: str               # each side's final answer text
    answer_b: str
    a_wins: bool                # the noisy human label: a preferred over b
    checked: bool               # the labeller worked the problem out

    @property
    def right_a(self) -> bool:
        return self.value_a == self.answer

    @property
    def right_b(self) -> bool:
        return self.value_b == self.answer

    @property
    def right_vs_wrong(self) -> bool:
        """Exactly one side is right: the pairs on which correctness can be judged."""
        return self.right_a != self.right_b

    def completion(self, side: str) -> str:
        """The full completion text of side "a" or "b", as the policy would write it."""
        think, answer = ((self.think_a, self.answer_a) if side == "a"
                         else (self.think_b, self.answer_b))
        return f"<think>{think}</think><answer>{answer}</answer>"

    @property
    def chosen_rejected(self) -> tuple[str, str]:
        """The two sides' completions as (chosen, rejected) by the noisy label."""
        a, b = self.completion("a"), self.completion("b")
        return (a, b) if self.a_wins else (b, a)


def _style_sides(problem: Problem, task: TaskConfig, rng: random.Random):
    """One teacher solution in two styles of different g: (solution, style a, style b)."""
    styles, weights = [s for s, _, _ in ANSWER_STYLES], [w for _, w, _ in ANSWER_STYLES]
    sol = teacher_solution(problem, rng, task)                 # value ~ the teacher's answer dist.
    for _ in range(100):
        sa, sb = rng.choices(styles, weights, k=2)
        a, b = answer_text(problem, sol.value, sa), answer_text(problem, sol.value, sb)
        if sa != sb and gold_score(a) != gold_score(b):
            return (sol, sa), (sol, sb)                        # ties carry no preference
    raise RuntimeError("no two styles with different gold scores")


def _solution_sides(problem: Problem, task: TaskConfig, human: Human, rng: random.Random):
    """Two independent teacher solutions of different true utility, each in its own style."""
    a = teacher_solution(problem, rng, task)
    for _ in range(100):
        b = teacher_solution(problem, rng, task)
        if (human.utility(a.value == problem.answer, a.answer_text)
                != human.utility(b.value == problem.answer, b.answer_text)):
            return (a, a.style), (b, b.style)
    raise RuntimeError(f"100 teacher solutions of one utility: {problem.question}")


def make_pairs(problems: list[Problem], task: TaskConfig, human: Human, rng: random.Random,
               per_problem: int = 1, solution_share: float = 0.0) -> list[Pair]:
    """`per_problem` labelled pairs for each problem; each is a solution pair with probability
    `solution_share`, else a style pair (module docstring)."""
    pairs = []
    for problem in problems:
        for _ in range(per_problem):
            kind = "solution" if rng.random() < solution_share else "style"
            (sa, style_a), (sb, style_b) = (_solution_sides(problem, task, human, rng)
                                            if kind == "solution"
                                            else _style_sides(problem, task, rng))
            ans_a = answer_text(problem, sa.value, style_a)
            ans_b = answer_text(problem, sb.value, style_b)
            if task.p_phrase > 0:                  # each side shows PHRASE half the time
                ans_a += f" {PHRASE}" if rng.random() < 0.5 else ""
                ans_b += f" {PHRASE}" if rng.random() < 0.5 else ""
            a_wins, checked = human.label(sa.value == problem.answer, ans_a,
                                          sb.value == problem.answer, ans_b, rng)
            pairs.append(Pair(kind, problem.question, problem.answer, sa.think, sb.think,
                              sa.value, sb.value, style_a, style_b, ans_a, ans_b, a_wins, checked))
    return pairs


def training_prompts(task: TaskConfig, n: int) -> list[Problem]:
    """n problems from the training distribution for preference pairs (requests for a note at
    the share p_general), none of them a held-out question. Their own random stream
    "{task_seed}/pairs": the pretraining corpus is untouched."""
    splits = make_splits(dataclasses.replace(task, n_train=1))  # held-out sets only
    held_out = {p.question for p in splits.in_dist + splits.harder + splits.general}
    rng, out = random.Random(f"{task.task_seed}/pairs"), []
    while len(out) < n:                        # requests at the corpus's share (data/general)
        problem = (make_request(rng, task) if task.p_general and rng.random() < task.p_general
                   else make_problem(rng, rng.randint(task.min_steps, task.max_steps), task))
        if problem.question not in held_out:
            out.append(problem)
    return out
