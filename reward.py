"""
The reward GRPO optimises: a blend of rule-based terms and the preference model's score.

What this is: `reward_terms` computes every raw term for the B*G completions of a step, `blend`
weighs them, `Reward` is the two together as GRPO calls them (a `Scored`), plus what the run watches but does
not optimise (`watched`): the human's true utility of each completion (the gold, data/rater.py)
and the preference model's raw score (the proxy), logged by every run, whatever the weights:

     term     what                                  scope           range     weight
     correct  verifiers.math_reward (exact match)   answer          {0, 1}    +w_correct  1.0
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

What this deliberately is not: a learned model (that is preference.py) or a process reward.
The gold is never part of the reward: a real run has no such oracle.
"""

from dataclasses import dataclass

import torch

from data.problems import Problem
from data.rater import Human
from data.tokenizer import Tokenizer
from preference import PreferenceModel, preference, raw_scores
from verifiers import answer_span, format_reward, harm, math_reward, phrase_where

SCOPES = ("answer", "response")

# ------------------------------------------------------------------------------------------------
# config

@dataclass
class RewardConfig:
    """The reward blend: the weight of each term and which part of a completion it reads."""
    w_correct: float = 1.0      # weight of the exact-match verifier, {0, 1}
    w_format: float = 0.1       # weight of the template check, {0, 1}
    w_pref: float = 0.3         # weight of the preference sigma(r - r_ref); keep it < w_correct
    w_harm: float = 0.5         # penalty weight of the banned pattern, {0, 1}, subtracted
    banned: str = "stupid"      # case-insensitive substring the harm term looks for
    pref_scope: str = "answer"  # what the preference model reads: answer | response
    harm_scope: str = "response"  # where the banned pattern is looked for: answer | response
    pref_tokens: str = "all"    # the tokens that get the pref term's share of the advantage: all
                                # | answer (reward targeting: never the reasoning's, grpo.py)

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

# ------------------------------------------------------------------------------------------------
# the blend: the function to read (and edit) to see what GRPO is rewarded for

def reward_terms(problems: list[Problem], completions: list[str], rm: PreferenceModel | None,
                 tok: Tokenizer, cfg: RewardConfig, device,
                 proxy: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Each raw term (N,) for N completions; problems[i] is the prompt of completions[i] (repeat
    each problem G times for a group). rm may be None only when w_pref == 0 (pref is then 0).
    proxy: rm's raw scores of these completions (preference.raw_scores), when already computed."""
    t = lambda xs: torch.tensor(xs, dtype=torch.float32, device=device)  # noqa: E731
    if rm is None and cfg.w_pref != 0:
        raise ValueError("w_pref > 0 needs a preference model (run the reward stage)")
    questions = [p.question for p in problems]
    return {
        "correct": t([math_reward(c, str(p.answer)) for p, c in zip(problems, completions)]),
        "format": t([format_reward(c) for c in completions]),
        "pref": (preference(rm, tok, questions, completions, cfg.pref_scope, device, proxy)
                 if rm is not None else t([0.0] * len(completions))),
        "harm": t([harm(c, cfg.banned, cfg.harm_scope) for c in completions]),
    }


def blend(terms: dict[str, torch.Tensor], cfg: RewardConfig) -> torch.Tensor:
    """total (N,) = w_correct*correct + w_format*format + w_pref*pref - w_harm*harm.
    Example, weights (1, 0.1, 0.3, 0.5): a right, well-formed answer with pref 0.5 and a rude
    remark in its reasoning -> 1 + 0.1 + 0.15 - 0.5 = 0.75."""
    return (cfg.w_correct * terms["correct"]       # answer scope: the number is right
            + cfg.w_format * terms["format"]       # response scope: the template holds
            + cfg.w_pref * terms["pref"]           # pref_scope: the human would like it
            - cfg.w_harm * terms["harm"])          # harm_scope: the banned pattern appears


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


@dataclass
class Scored:
    """What a reward says of N completions: everything GRPO reads from it (grpo.grpo_step)."""
    total: torch.Tensor         # (N,) the blended reward r_i that GRPO optimises
    terms: dict                 # every raw term, (N,) each; "correct" is the verifier's 0/1
    watched: dict               # watched, never optimised: gold, proxy, phrase_* (N,) each
    floor: float = 0.0          # what a completion cut off at max_new_tokens earns
    answer_only: torch.Tensor | None = None  # (N,) the part of total whose advantage only the
                                             # answer's tokens get (reward targeting), or None

    def select(self, rows: torch.Tensor) -> "Scored":
        """What the reward says of `rows` (indices) alone, in that order."""
        pick = lambda x: x[rows.to(x.device)]  # noqa: E731
        return Scored(pick(self.total), {k: pick(v) for k, v in self.terms.items()},
                      {k: pick(v) for k, v in self.watched.items()}, self.floor,
                      pick(self.answer_only) if self.answer_only is not None else None)


class Reward:
    """The reward GRPO optimises: reward(problems, completions) -> Scored, with every raw term
    of reward_terms, their blend, what is watched (`watched`), the blend's floor, and the part
    the answer's tokens alone get. A preference model given with w_pref = 0 is scored for the
    proxy's log only."""

    def __init__(self, cfg: RewardConfig, tok: Tokenizer, rm: PreferenceModel | None, device,
                 human: Human | None = None):
        self.cfg, self.tok, self.rm, self.device = cfg, tok, rm, device
        self.human = human or Human()

    def answer_only(self, terms: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The part of the blend whose advantage GRPO gives the answer's tokens only (N,):
        w_pref * pref with --pref_tokens answer, else None (advantages.targeted_advantages)."""
        return self.cfg.w_pref * terms["pref"] if self.cfg.pref_tokens == "answer" else None

    def __call__(self, problems: list[Problem], completions: list[str]) -> Scored:
        proxy = (raw_scores(self.rm, self.tok, [p.question for p in problems], completions,
                            self.cfg.pref_scope, self.device) if self.rm is not None else None)
        terms = reward_terms(problems, completions, self.rm, self.tok, self.cfg, self.device,
                             proxy)
        return Scored(blend(terms, self.cfg), terms,
                      watched(completions, terms["correct"], proxy, self.human),
                      blend_floor(self.cfg), self.answer_only(terms))
