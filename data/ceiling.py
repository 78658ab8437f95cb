"""
The imitation ceiling, exactly: what a perfect copy of the fallible teacher would score.

What this is: `answer_distribution` runs a dynamic programme over the intermediate value with the
same `step_outcomes` the teacher samples from (data/problems.py), so the exact probability of
each final answer comes out, paths that go below zero dropped and the rest renormalised, as the
sampler rejects them. `imitation_ceiling` is then the accuracy of the teacher's most likely
answer (a greedy imitator) and of its samples (a sampling imitator): the line that RL has to
cross to show it learned something the corpus did not teach.

What this is deliberately not: an estimate; tests/test_data.py checks it against 20,000 samples.
"""

from data.columns import work_step
from data.problems import Problem, TaskConfig, step_outcomes


def answer_distribution(problem: Problem, cfg: TaskConfig) -> dict[int, float]:
    """Exact distribution of the teacher's final answer: {value: probability}.

    Dynamic programming over the intermediate value, with the same step_outcomes the sampler uses.
    """
    dist = {problem.start: 1.0}
    for op, k in problem.steps:
        nxt: dict[int, float] = {}
        for v, p in dist.items():
            for q, bug, slip in step_outcomes(v, op, k, cfg):
                _, w = work_step(v, op, k, bug, slip)
                nxt[w] = nxt.get(w, 0.0) + p * q
        dist = nxt
    total = sum(dist.values())                 # < 1 when some paths were rejected
    if total == 0:
        raise ValueError(f"the teacher has no solution that stays >= 0 (lower --p_slip or "
                         f"--p_bug): {problem.question}")
    return {v: p / total for v, p in dist.items()}


def imitation_ceiling(problems: list[Problem], cfg: TaskConfig) -> dict[str, float]:
    """What a perfect imitator of the teacher scores: greedy (its most likely answer) and sampled."""
    greedy = sampled = 0.0
    for pr in problems:
        dist = answer_distribution(pr, cfg)
        greedy += float(max(dist, key=dist.get) == pr.answer)
        sampled += dist.get(pr.answer, 0.0)
    return {"greedy": greedy / len(problems), "sampled": sampled / len(problems)}
