"""
The reward GRPO optimises: a blend of rule-based terms and the preference model's score.

What this is: `reward_terms` computes every raw term for the B*G completions of a step, `blend`
weighs them, `Reward` is the two together as GRPO calls them (a `Scored`), plus what the run
watches but does not optimise (`watched`): the human's true utility of each completion (the
gold, data/rater.py) and the preference model's raw score (the proxy), logged by every run,
whatever the weights:

     term     what                                  scope           range     weight
     correct  verifiers.math_reward (exact match),  answer          {0, 1}    +w_correct  1.0
              flipped at rate `flip` (noisy_verifier)
     format   verifiers.format_reward (template)    response        {0, 1}    +w_format   0.1
     pref     sigma(r - r_ref), 0 without an answer pref_scope      (0, 1)    +w_pref     0.3
     harm     `banned` appears (case-insensitive)   harm_scope      {0, 1}    -w_harm     0.5

pref is the Bradley-Terry probability that the human prefers this answer to the teacher's
average answer (preference.py), so it is bounded like the 0/1 verifier: with w_pref < w_correct
a right answer always outranks a wrong one whatever the preference model thinks (an unbounded
learned score could outvote the verifier; cf. Gao et al., arXiv 2210.10760, on over-optimising
a proxy reward). harm is the harmlessness analogue (DeepSeek-R1's safety reward model reads the
whole response, arXiv 2501.12948 section 2.3.4): the corpus teacher sometimes writes "This is
stupid." inside <think>, which an answer-only preference model never sees. To add a term: one
entry in `reward_terms`, one line in `blend`, one weight field in RewardConfig.

The noisy verifier (`--flip p`): the exact match's outcome, flipped with probability p before the
blend sees it, so that a verifier can be made as wrong as a learned model and the two compared
at one accuracy. `--flip_kind fresh` draws each flip anew, for every completion scored (noise:
in expectation the reward is (1 - 2p) * right + p, so the gradient is the clean one scaled by
1 - 2p; Wang, Liu & Li, arXiv 1810.01032); `persistent` flips by a hash of (prompt, completion),
so one completion is always scored alike, an error the policy could find and repeat but tied to
no feature of the text. p = 0.5 is a coin: the random-reward control. Whatever p, `right`
holds the exact match itself, which is what accuracy is.

Routing (`--route`, `route`): with requests for a note among the prompts (data/general.py),
which prompts each term is paid on. `blend` pays the preference model on every prompt; `routed`
is DeepSeek-R1's second RL stage (arXiv 2501.12948, section 2.3.4): rule rewards on the
reasoning prompts, the helpfulness model on the general ones only, harmlessness on every
response. With `--harm_model learned` (bradley_terry.PreferenceConfig) the harm term is a
learned classifier's probability (harmlessness.py) and the rule becomes what is watched.

What this deliberately is not: a learned model (that is preference.py) or a process reward.
The gold is never part of the reward: a real run has no such oracle.
"""

import hashlib
import random
from dataclasses import dataclass

import torch

from behaviour import harm, phrase_where
from data.problems import Problem
from data.rater import Human
from data.tokenizer import Tokenizer
from harmlessness import harm_probability
from preference import PreferenceModel, preference, raw_scores
from verifiers import answer_span, format_reward, math_reward

SCOPES = ("answer", "response")
ROUTES = ("blend", "routed")
FLIP_KINDS = ("fresh", "persistent")

# ------------------------------------------------------------------------------------------------
# config

@dataclass
class RewardConfig:
    """The reward blend: the weight of each term and which part of a completion it reads."""
    w_correct: float = 1.0      # weight of the exact-match verifier, {0, 1}
    w_format: float = 0.1       # weight of the template check, {0, 1}
    w_pref: float = 0.3         # weight of the preference sigma(r - r_ref); keep it < w_correct
    w_harm: float = 0.5         # penalty weight of the banned pattern, {0, 1}, subtracted
    banned: str = "stupid"      # case-insensitive substring(s) the harm rule looks for,
                                # |-separated ("stupid|dumb": either)
    pref_scope: str = "answer"  # what the preference model reads: answer | response
    harm_scope: str = "response"  # where the banned pattern is looked for: answer | response
    pref_tokens: str = "all"    # the tokens that get the pref term's share of the advantage: all
                                # | answer (reward targeting: never the reasoning's, grpo.py)
    flip: float = 0.0           # the noisy verifier: P(the exact match's outcome is flipped);
                                # 0.5 is a coin (the random-reward control)
    flip_kind: str = "fresh"    # fresh: each flip drawn anew | persistent: by a hash of
                                # (prompt, completion), the same every time it is scored
    route: str = "blend"        # which prompts the preference model is paid on: blend (all) |
                                # routed (DeepSeek-R1: requests for a note only; maths prompts
                                # get the rule rewards alone); the verifier pays maths only

    def __post_init__(self):
        for name in ("w_correct", "w_format", "w_pref", "w_harm"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("pref_scope", "harm_scope"):
            if getattr(self, name) not in SCOPES:
                raise ValueError(f"{name} must be one of {SCOPES}, got {getattr(self, name)!r}")
        if not self.banned:
            raise ValueError("banned must be a non-empty string")
        if self.pref_tokens not in ("all", "answer"):
            raise ValueError(f"pref_tokens must be all or answer, got {self.pref_tokens!r}")
        if not 0 <= self.flip <= 1:
            raise ValueError(f"flip is a probability, in [0, 1], got {self.flip}")
        if self.route not in ROUTES:
            raise ValueError(f"route must be one of {ROUTES}, got {self.route!r}")
        if self.flip_kind not in FLIP_KINDS:
            raise ValueError(f"flip_kind must be one of {FLIP_KINDS}, got {self.flip_kind!r}")

# ------------------------------------------------------------------------------------------------
# the blend: the function to read (and edit) to see what GRPO is rewarded for

def reward_terms(problems: list[Problem], completions: list[str], rm: PreferenceModel | None,
                 tok: Tokenizer, cfg: RewardConfig, device, proxy: torch.Tensor | None = None,
                 harm_rm: PreferenceModel | None = None) -> dict[str, torch.Tensor]:
    """Each raw term (N,) for N completions, on every prompt (`route` says where each is paid);
    problems[i] is the prompt of completions[i] (repeat each problem G times for a group). rm
    may be None only when w_pref == 0 (pref is then 0). proxy: rm's raw scores of these
    completions (preference.raw_scores), when already computed. harm_rm: the learned
    harmlessness model, whose probability replaces the rule (harmlessness.py)."""
    t = lambda xs: torch.tensor(xs, dtype=torch.float32, device=device)  # noqa: E731
    if rm is None and cfg.w_pref != 0:
        raise ValueError("w_pref > 0 needs a preference model (run the reward stage)")
    questions = [p.question for p in problems]
    return {
        "correct": t([math_reward(c, str(p.answer)) for p, c in zip(problems, completions)]),
        "format": t([format_reward(c) for c in completions]),
        "pref": (preference(rm, tok, questions, completions, cfg.pref_scope, device, proxy)
                 if rm is not None else t([0.0] * len(completions))),
        "harm": (harm_probability(harm_rm, tok, questions, completions, device)
                 if harm_rm is not None else t([harm(c, cfg.banned, cfg.harm_scope)
                                                for c in completions])),
    }


def route(terms: dict[str, torch.Tensor], general: torch.Tensor,
          cfg: RewardConfig) -> dict[str, torch.Tensor]:
    """Which prompts each term is paid on; general (N,) bool marks a request for a note. The
    one place the arrangement lives:

        term     blend           routed (DeepSeek-R1, arXiv 2501.12948 section 2.3.4)
        correct  maths           maths          a rule needs an answer it can check
        format   every prompt    every prompt
        pref     every prompt    notes only     helpfulness: general data, the summary
        harm     every prompt    every prompt   harmlessness: the whole response

    route({"correct": [1, 1], "pref": [.7, .6], ...}, general [False, True], routed)
    -> correct [1, 0], pref [0, .6]. Without notes both are the blend of before."""
    out = {**terms, "correct": torch.where(general, 0.0, terms["correct"])}
    if cfg.route == "routed":
        out["pref"] = torch.where(general, terms["pref"], 0.0)
    return out


def blend(terms: dict[str, torch.Tensor], cfg: RewardConfig) -> torch.Tensor:
    """total (N,) = w_correct*correct + w_format*format + w_pref*pref - w_harm*harm.
    Example, weights (1, 0.1, 0.3, 0.5): a right, well-formed answer with pref 0.5 and a rude
    remark in its reasoning -> 1 + 0.1 + 0.15 - 0.5 = 0.75."""
    return (cfg.w_correct * terms["correct"]       # answer scope: the number is right
            + cfg.w_format * terms["format"]       # response scope: the template holds
            + cfg.w_pref * terms["pref"]           # pref_scope: the human would like it
            - cfg.w_harm * terms["harm"])          # harm_scope: the banned pattern appears


def noisy_verifier(right: torch.Tensor, u: torch.Tensor, p: float) -> torch.Tensor:
    """The exact match's outcomes right (N,) in {0, 1}, each flipped where its uniform draw
    u (N,) in [0, 1) is below p. noisy_verifier(tensor([1., 0.]), tensor([0.1, 0.7]), 0.2)
    -> tensor([0., 0.]). Against a wrong sibling a right one then scores higher with probability
    (1 - p)^2 and ties with 2p(1 - p): counting ties half, it is ranked first with
    probability 1 - p (grpo_log.ranking_agreement)."""
    return torch.where(u < p, 1.0 - right, right)


def persistent_draw(seed: int, question: str, completion: str) -> float:
    """A uniform draw in [0, 1) fixed by (seed, question, completion): the same text always gets
    the same draw, and any change of one character gives an unrelated one (BLAKE2b)."""
    digest = hashlib.blake2b(f"{seed}\x00{question}\x00{completion}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2 ** 64


def blend_floor(cfg: RewardConfig) -> float:
    """The lowest blend any finished completion can get: each term at its worst, 0 for the
    rewards and 1 for the penalty (every term lies in [0, 1]). GRPO gives a truncated
    completion this (`--truncation floor`), so being cut off never pays better than the worst
    answer. blend_floor(weights (1, 0.1, 0.3, 0.5)) -> -0.5 (a rude, wrong, malformed answer)"""
    return -cfg.w_harm


def watched(completions: list[str], correct: torch.Tensor,
            proxy: torch.Tensor | None, human: Human) -> dict[str, torch.Tensor]:
    """What a run watches beside its reward, (N,) each: gold = the human's true utility
    u = c * [right] + g(answer span) (0 without an answer), proxy = the preference model's raw
    score r (NaN without an answer span, or without a preference model), and whether
    data.problems.PHRASE is inside <think> and inside <answer> (phrase_think, phrase_answer)."""
    gold = [human.utility(bool(ok), answer_span(c) or "")
            for ok, c in zip(correct.tolist(), completions)]
    nan = torch.full((len(completions),), float("nan"))
    where = [phrase_where(c) for c in completions]
    return {"gold": torch.tensor(gold), "proxy": (proxy if proxy is not None else nan).cpu(),
            **{k: torch.tensor([w[k] for w in where]) for k in ("phrase_think", "phrase_answer")}}


def harm_watch(completions: list[str], p: torch.Tensor, banned: str) -> dict[str, torch.Tensor]:
    """With a learned harm term p (N,): harm_gold, the human's rule on the whole response, and
    harm_missed, harmful by the rule but p < 1/2 (the harm hack: harmlessness.py), (N,) each."""
    gold = torch.tensor([harm(c, banned, "response") for c in completions])
    return {"harm_gold": gold, "harm_missed": gold * (p < 0.5).float()}


@dataclass
class Scored:
    """What a reward says of N completions: everything GRPO reads from it (grpo.grpo_step)."""
    total: torch.Tensor         # (N,) the blended reward r_i that GRPO optimises
    terms: dict                 # every raw term, (N,) each; "correct" is the verifier's 0/1 as
                                # the reward pays it (flipped, with a noisy verifier)
    watched: dict               # watched, never optimised: gold, proxy, phrase_* (N,) each
    right: torch.Tensor         # (N,) the exact match, never flipped: what accuracy is
    signal: torch.Tensor        # (N,) the outcome whose spread in a group dynamic sampling keeps:
                                # the verifier as paid, or the total when the blend pays none
    floor: float = 0.0          # what a completion cut off at max_new_tokens earns
    answer_only: torch.Tensor | None = None  # (N,) the part of total whose advantage only the
                                             # answer's tokens get (reward targeting), or None

    def select(self, rows: torch.Tensor) -> "Scored":
        """What the reward says of `rows` (indices) alone, in that order."""
        pick = lambda x: x[rows.to(x.device)]  # noqa: E731
        return Scored(pick(self.total), {k: pick(v) for k, v in self.terms.items()},
                      {k: pick(v) for k, v in self.watched.items()}, pick(self.right),
                      pick(self.signal), self.floor,
                      pick(self.answer_only) if self.answer_only is not None else None)


class Reward:
    """The reward GRPO optimises: reward(problems, completions) -> Scored, with every raw term
    of reward_terms, their blend, what is watched (`watched`), the blend's floor, and the part
    the answer's tokens alone get. A preference model given with w_pref = 0 is scored for the
    proxy's log only. seed: the noisy verifier's flips (`flips` draws the fresh ones; the
    training loop saves its state with the run's other generators). harm_rm: the learned
    harmlessness model (harmlessness.py), or None for the rule."""

    def __init__(self, cfg: RewardConfig, tok: Tokenizer, rm: PreferenceModel | None, device,
                 human: Human | None = None, seed: int = 0,
                 harm_rm: PreferenceModel | None = None):
        self.cfg, self.tok, self.rm, self.device, self.harm_rm = cfg, tok, rm, device, harm_rm
        self.human = human or Human()
        self.seed, self.flips = seed, random.Random(seed)

    def draws(self, questions: list[str], completions: list[str]) -> torch.Tensor:
        """One uniform draw per completion (N,) for the noisy verifier: fresh from `flips`, or
        fixed by (prompt, completion) with flip_kind persistent."""
        if self.cfg.flip_kind == "persistent":
            u = [persistent_draw(self.seed, q, c) for q, c in zip(questions, completions)]
        else:
            u = [self.flips.random() for _ in completions]
        return torch.tensor(u, device=self.device)

    def answer_only(self, terms: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The part of the blend whose advantage GRPO gives the answer's tokens only (N,):
        w_pref * pref with --pref_tokens answer, else None (advantages.targeted_advantages)."""
        return self.cfg.w_pref * terms["pref"] if self.cfg.pref_tokens == "answer" else None

    def __call__(self, problems: list[Problem], completions: list[str]) -> Scored:
        proxy = (raw_scores(self.rm, self.tok, [p.question for p in problems], completions,
                            self.cfg.pref_scope, self.device) if self.rm is not None else None)
        terms = reward_terms(problems, completions, self.rm, self.tok, self.cfg, self.device,
                             proxy, self.harm_rm)
        right = terms["correct"]                     # (N,) the exact match (a note: its count)
        if self.cfg.flip > 0:                                        # the noisy verifier
            u = self.draws([p.question for p in problems], completions)
            terms["correct"] = noisy_verifier(right, u, self.cfg.flip)
        general = torch.tensor([p.kind == "general" for p in problems], device=right.device)
        terms = route(terms, general, self.cfg)                      # who is paid on what
        total = blend(terms, self.cfg)
        signal = (torch.where(general, total, terms["correct"])     # what the reward pays: the
                  if self.cfg.w_correct > 0 else total)              # verifier, where it reads
        seen = watched(completions, right, proxy, self.human)
        if self.harm_rm is not None:                                 # the rule is now the gold
            seen.update(harm_watch(completions, terms["harm"].cpu(), self.cfg.banned))
        return Scored(total, terms, seen, right, signal, blend_floor(self.cfg),
                      self.answer_only(terms))
