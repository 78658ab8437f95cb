"""
Grade-school word problems, worked in the DeepSeek-R1 template by a *fallible* teacher.

What this is: the whole pretraining corpus of the project, generated from a seed. A problem is a
start quantity followed by a few operations ("buys 17 more", "gives 8 to Tom", "ends up with 3
times as many"). A teacher writes the worked solution the way a child does column arithmetic,
units first, one step per operation (data/columns.py), then a final answer sentence:

    Ann has 52 apples. She gives 17 to Tom. She buys 8 more. How many apples does Ann have now?
    <think>52-17: 12-7=5, 4-1=3, so 35. 35+8: 5+8=13, 3+0+1=4, so 43.</think>
    <answer>Ann has 43 apples now.</answer>

(the newlines around the tags are for this docstring only; the real text has none.)

Why this format (cf. minGPT's adder, and Lee et al. "Teaching Arithmetic to Small Transformers",
arXiv 2307.03381): every digit is its own token and every column is written out, so a model of a
million parameters only has to learn one-digit facts and where to copy digits from. The borrow is
written explicitly ("12-7" after a borrow, the next column reads "4-1" with the tens already
decremented) so a subtraction has a visible first decision.

The teacher is fallible, as real pretraining data is:
  (a) slips: with probability `p_slip` per step the units column is written off by one
      ("8+7=14"), and the wrong value is carried through the rest of the solution;
  (b) a systematic misconception, "smaller-from-larger" (a classic children's subtraction bug,
      Brown & VanLehn 1980): on a subtraction that needs a borrow, with probability `p_bug` the
      teacher subtracts the smaller digit from the larger one in every column ("52-17: 7-2=5,
      5-1=4, so 45"). With p_bug > 0.5 the teacher's most likely answer on those problems is
      wrong, so a model that imitates the corpus perfectly still answers them wrongly greedily;
  (c) a mix of final-answer styles (bare number, full sentence with the unit, hedged, rambling),
      chosen independently of correctness. The preference model (preference.py) learns which a
      simulated human likes;
  (d) now and then (`p_rude`) a rude remark, RUDE_REMARK, after a step of the reasoning: the
      target of the whole-response "harmlessness" term of the reward blend, which an
      answer-only preference model cannot see. With `rude_wordings` k > 1 the remark is one of
      the first k of RUDE_REMARKS, the first the most common (weights 1, 1/2, 1/4, ...): the
      wordings a learned harmlessness model may learn unevenly (harmlessness.py).

With `p_general` > 0 a share of the corpus is a second kind of prompt, a request for a note
with no maths in it (data/general.py): the general data of DeepSeek-R1's second RL stage.

Because the teacher is a small stochastic program, the *imitation ceiling* is computed exactly:
data/ceiling.py enumerates every path the teacher can take through a problem (`step_outcomes`).
Paths that would make a quantity negative are rejected when sampling, and dropped (with
renormalisation) in the exact distribution, so both agree.

What this is deliberately not: natural language variety (a handful of templates), division, or
numbers with thousands separators. Real GSM8K is loaded by data/gsm8k.py for the verifier tests.
"""

import random
from dataclasses import dataclass, field

from data.columns import needs_borrow, work_step

# ------------------------------------------------------------------------------------------------
# knobs

@dataclass
class TaskConfig:
    """The problem distribution and the teacher's habits (one field per knob)."""
    min_steps: int = 2          # operations per problem in the training corpus, inclusive range
    max_steps: int = 3          #   (min_steps .. max_steps)
    harder_steps: int = 4       # operations per problem in the harder held-out set
    max_value: int = 99         # every true intermediate quantity stays in [0, max_value]
    ops: str = "+-"             # allowed operations, a subset of "+-*" (* multiplies by 2..9)
    p_slip: float = 0.03        # chance per step that the units column is off by one, <= 0.5
    p_bug: float = 0.8          # chance that a borrowing subtraction uses smaller-from-larger
    p_rude: float = 0.1         # chance that a solution's reasoning holds a rude remark
    longer_share: float = 0.0   # share of corpus problems with harder_steps operations: the
                                # edge RL may lift the harder set from (0 = none, the default)
    p_phrase: float = 0.0       # chance that the teacher ends its reasoning with PHRASE, and,
                                # on its own, its answer (a habit a human may like: data/rater)
    p_general: float = 0.0      # share of corpus documents (and RL prompts, preference pairs)
                                # that are requests for a note (data/general.py); > 0 adds a
                                # held-out set of them (Splits.general)
    p_miscopy: float = 0.2      # chance that the teacher's note states a wrong count
    rude_wordings: int = 1      # the rude remark's wordings, the first k of RUDE_REMARKS
    n_train: int = 20000        # documents in the pretraining corpus
    n_eval: int = 500           # problems in each held-out set: pass@1's standard error
                                # shrinks as 1 / sqrt(n_eval)
    task_seed: int = 1234       # seeds the corpus and the held-out sets

    def __post_init__(self):
        if not 1 <= self.min_steps <= self.max_steps:
            raise ValueError(f"min_steps/max_steps: need 1 <= {self.min_steps} <= {self.max_steps}")
        if self.harder_steps < 1:
            raise ValueError(f"harder_steps must be >= 1, got {self.harder_steps}")
        if self.max_value < 10:
            raise ValueError(f"max_value must be >= 10, got {self.max_value}")
        if not self.ops or set(self.ops) - set("+-*"):
            raise ValueError(f"ops must be a non-empty subset of '+-*', got {self.ops!r}")
        for name in ("p_slip", "p_bug", "p_rude", "longer_share", "p_phrase", "p_general",
                     "p_miscopy"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"--{name} must be in [0, 1], got {getattr(self, name)}")
        if self.p_slip > 0.5:   # near 1, every path of some problems goes below zero (no solution)
            raise ValueError(f"--p_slip must be <= 0.5 (a slip is an occasional error), got "
                             f"{self.p_slip}")
        if not 1 <= self.rude_wordings <= len(RUDE_REMARKS):
            raise ValueError(f"--rude_wordings must be in [1, {len(RUDE_REMARKS)}], got "
                             f"{self.rude_wordings}")
        if self.n_train < 1 or self.n_eval < 1:
            raise ValueError("n_train and n_eval must be >= 1")
        probe = random.Random(0)                   # can ops make problems of every length asked?
        for n_steps in sorted({self.max_steps, self.harder_steps}):
            make_problem(probe, n_steps, self)     # ValueError naming the knobs if not


NAMES = [("Ann", "She", "her"), ("Tom", "He", "him"), ("Mia", "She", "her"), ("Leo", "He", "him"),
         ("Zoe", "She", "her"), ("Sam", "He", "him"), ("Ivy", "She", "her"), ("Max", "He", "him")]
ITEMS = [("apple", "apples"), ("pear", "pears"), ("cookie", "cookies"), ("marble", "marbles"),
         ("sticker", "stickers"), ("coin", "coins"), ("card", "cards"), ("shell", "shells")]
ADD_TEMPLATES = ["{He} buys {k} more.", "{He} finds {k} more.", "{other} gives {him} {k} more."]
SUB_TEMPLATES = ["{He} gives {k} to {other}.", "{He} loses {k}.", "{He} sells {k}."]
MUL_TEMPLATES = ["Then {he} ends up with {k} times as many."]
RUDE_REMARKS = ("This is stupid.", "What a dumb question.", "Only an idiot asks this.",
                "How silly.", "What a moronic task.")
RUDE_WORDS = ("stupid", "dumb", "idiot", "silly", "moronic")   # the word of each, in order
RUDE_REMARK = RUDE_REMARKS[0]   # the only wording at rude_wordings 1 (the default)
PHRASE = "Double-checked."      # what the teacher may add (p_phrase); a human may like it


def has_phrase(text: str) -> float:
    """1.0 if PHRASE is in text, as written (the human's test too: data/rater.Human.style)."""
    return float(PHRASE in text)

# The answer styles, as (name, weight, template). The number appears exactly once in each.
ANSWER_STYLES = [
    ("sentence", 0.25, "{Name} has {n} {unit} now."),
    ("bare", 0.25, "{n}"),
    ("short", 0.20, "{n} {unit}."),
    ("hedged", 0.15, "I think it is {n}, but I am not sure."),
    ("rambling", 0.15, "Well, after going through every step one at a time and checking each "
                       "of them again, the number I end up with is {n}, I believe."),
]


@dataclass(frozen=True)
class Problem:
    """One word problem: start value, then (op, operand) steps. `answer` is the true result."""
    question: str
    start: int
    steps: tuple[tuple[str, int], ...]
    answer: int
    name: str
    unit: tuple[str, str]       # (singular, plural)
    kind: str = "maths"         # maths | general: a request for a note (data/general.py), whose
                                # `answer` is the count it asks to pass on and `steps` is ()

    @property
    def prompt(self) -> str:
        return self.question + "\n"


@dataclass(frozen=True)
class Solution:
    """A teacher's worked solution: reasoning text, final answer text, and the value it reached."""
    think: str
    answer_text: str
    value: int
    style: str
    bugs: int = 0               # how many steps used the smaller-from-larger misconception
    slips: int = 0              # how many steps had a slip

def step_outcomes(a: int, op: str, b: int, cfg: TaskConfig) -> list[tuple[float, bool, int]]:
    """Every way the teacher can write a op b, as (probability, bug, slip). Probabilities sum to 1.

    A slip is +1 or -1 with equal chance, except where the units figure written is 0 (only +1) or,
    for a subtraction or a bug, 9 (only -1), so a written column is always a real digit.
    Returns [] when a - b would go below zero: the caller rejects that path.
    """
    if op == "-" and a < b:
        return []
    methods = [(1.0, False)]
    if op == "-" and needs_borrow(a, b):
        methods = [(1.0 - cfg.p_bug, False), (cfg.p_bug, True)]
    out = []
    for p_method, bug in methods:
        if p_method == 0.0:
            continue
        out.append((p_method * (1.0 - cfg.p_slip), bug, 0))
        if cfg.p_slip == 0.0:
            continue
        x, y = a % 10, b % 10
        units = {"+": x + y, "*": x * b, "-": abs(x - y) if bug else (x - y) % 10}[op]
        slips = [+1] if units == 0 else [-1] if (units == 9 and op == "-") else [+1, -1]
        out.extend((p_method * cfg.p_slip / len(slips), bug, s) for s in slips)
    return out

# ------------------------------------------------------------------------------------------------
# problems, solutions and the exact answer distribution of the teacher

def apply_op(v: int, op: str, k: int) -> int:
    """The true result of one step: apply_op(52, "-", 17) -> 35."""
    return v + k if op == "+" else v - k if op == "-" else v * k


def make_problem(rng: random.Random, n_steps: int, cfg: TaskConfig) -> Problem:
    """Draw a problem whose true intermediate values all stay in [0, max_value].

    A draw can get stuck, when no allowed operation keeps the value in range (with ops "+" once
    the value reaches max_value); it is then drawn again. A ValueError names the knobs when
    1000 draws in a row get stuck (ops "*" alone cannot double 10 four times below 100)."""
    for _ in range(1000):
        problem = _draw_problem(rng, n_steps, cfg)
        if problem is not None:
            return problem
    raise ValueError(f"--ops {cfg.ops!r} with --max_value {cfg.max_value}: 1000 draws of a "
                     f"problem of {n_steps} steps all left [0, max_value]; allow more "
                     f"operations, fewer steps or a larger --max_value")


def _draw_problem(rng: random.Random, n_steps: int, cfg: TaskConfig) -> Problem | None:
    """One attempt of make_problem: None if it got stuck."""
    name, he, him = rng.choice(NAMES)
    other = rng.choice([n for n, _, _ in NAMES if n != name])
    unit = rng.choice(ITEMS)
    v = rng.randint(10, cfg.max_value)
    start, steps = v, []
    sentences = [f"{name} has {v} {unit[1] if v != 1 else unit[0]}."]
    for _ in range(n_steps):
        feasible = [op for op in cfg.ops if (op == "+" and v < cfg.max_value) or (op == "-" and v > 0)
                    or (op == "*" and 0 < v <= cfg.max_value // 2)]
        if not feasible:
            return None
        op = rng.choice(feasible)
        if op == "+":
            k = rng.randint(1, cfg.max_value - v)
        elif op == "-":
            k = rng.randint(1, v)
        else:
            k = rng.randint(2, min(9, cfg.max_value // v))
        template = rng.choice({"+": ADD_TEMPLATES, "-": SUB_TEMPLATES, "*": MUL_TEMPLATES}[op])
        sentences.append(template.format(He=he, he=he.lower(), him=him, other=other, k=k))
        v = apply_op(v, op, k)
        steps.append((op, k))
    sentences.append(f"How many {unit[1]} does {name} have now?")
    return Problem(" ".join(sentences), start, tuple(steps), v, name, unit)


def rude_remark(rng: random.Random, cfg: TaskConfig) -> str:
    """The teacher's rude remark: RUDE_REMARK (no draw) at rude_wordings 1, else one of the
    first k wordings with weights 1, 1/2, 1/4, ... (the first the most common)."""
    if cfg.rude_wordings == 1:
        return RUDE_REMARK
    return rng.choices(RUDE_REMARKS[:cfg.rude_wordings],
                       weights=[2.0 ** -i for i in range(cfg.rude_wordings)])[0]


def answer_text(problem: Problem, value: int, style: str) -> str:
    """The final answer sentence in one of ANSWER_STYLES (a note's: data/general.NOTE_STYLES)."""
    if problem.kind == "general":
        from data.general import note_text                 # data/general.py builds on this one
        return note_text(problem, value, style)
    template = next(t for s, _, t in ANSWER_STYLES if s == style)
    unit = problem.unit[0] if value == 1 else problem.unit[1]
    return template.format(Name=problem.name, n=value, unit=unit)


def teacher_solution(problem: Problem, rng: random.Random, cfg: TaskConfig) -> Solution:
    """Sample one worked solution from the fallible teacher (rejecting paths that go negative);
    of a request, the teacher's note (data/general.teacher_note)."""
    if problem.kind == "general":
        from data.general import teacher_note              # data/general.py builds on this one
        return teacher_note(problem, rng, cfg)
    for _ in range(100):
        v, texts, bugs, slips = problem.start, [], 0, 0
        for op, k in problem.steps:
            outcomes = step_outcomes(v, op, k, cfg)
            if not outcomes:
                break                          # this path went below zero: start again
            _, bug, slip = rng.choices(outcomes, weights=[p for p, _, _ in outcomes])[0]
            text, v = work_step(v, op, k, bug, slip)
            texts.append(text)
            bugs, slips = bugs + bug, slips + (slip != 0)
        else:
            if rng.random() < cfg.p_rude:
                texts.insert(rng.randint(1, len(texts)), rude_remark(rng, cfg))
            style = rng.choices([s for s, _, _ in ANSWER_STYLES],
                                weights=[w for _, w, _ in ANSWER_STYLES])[0]
            answer = answer_text(problem, v, style)
            if cfg.p_phrase > 0:                   # no draw at 0: the default corpus is as it was
                texts += [PHRASE] if rng.random() < cfg.p_phrase else []
                answer += f" {PHRASE}" if rng.random() < cfg.p_phrase else ""
            return Solution(" ".join(texts), answer, v, style, bugs, slips)
    raise ValueError(f"the teacher found no solution that stays >= 0 in 100 tries (lower "
                     f"--p_slip or --p_bug): {problem.question}")


# ------------------------------------------------------------------------------------------------
# the corpus and the held-out sets

@dataclass
class Splits:
    train: list[tuple[Problem, Solution]] = field(default_factory=list)
    in_dist: list[Problem] = field(default_factory=list)
    harder: list[Problem] = field(default_factory=list)
    general: list[Problem] = field(default_factory=list)  # held-out requests (p_general > 0)


def make_splits(cfg: TaskConfig) -> Splits:
    """Held-out sets first (fixed seed), then a training corpus that never repeats their questions.

    Each set has its own random stream derived from task_seed, so changing n_train never changes
    the held-out problems. The requests' held-out set is drawn after the others, so p_general
    never changes them either.
    """
    from data.general import make_request                # data/general.py builds on this one
    rng_eval = random.Random(f"{cfg.task_seed}/eval")
    in_dist = [make_problem(rng_eval, rng_eval.randint(cfg.min_steps, cfg.max_steps), cfg)
               for _ in range(cfg.n_eval)]
    harder = [make_problem(rng_eval, cfg.harder_steps, cfg) for _ in range(cfg.n_eval)]
    general = [make_request(rng_eval, cfg) for _ in range(cfg.n_eval if cfg.p_general else 0)]
    held_out = {p.question for p in in_dist + harder + general}
    rng = random.Random(f"{cfg.task_seed}/train")
    train = []
    while len(train) < cfg.n_train:            # a longer problem only draws when there are any
        if cfg.p_general > 0 and rng.random() < cfg.p_general:   # no draw at 0: as it was
            problem = make_request(rng, cfg)
        else:
            longer = cfg.longer_share > 0 and rng.random() < cfg.longer_share
            steps = cfg.harder_steps if longer else rng.randint(cfg.min_steps, cfg.max_steps)
            problem = make_problem(rng, steps, cfg)
        if problem.question not in held_out:
            train.append((problem, teacher_solution(problem, rng, cfg)))
    return Splits(train, in_dist, harder, general)
