"""
Watch a trained model think: sample completions for a question and show every reward term.

    python sample.py out/cpu "Ann has 52 apples. She gives 17 to Tom. How many apples does Ann have now?"
    python sample.py out/cpu "..." --model pretrain --n 4 --temperature 1.0 --answer 35

For each sample it prints the reasoning, the final answer, and the terms of the reward blend
(reward.py) that GRPO optimises: `correct` needs the true answer, which sample.py works out for
questions in the corpus's own wording (or take it from --answer); `format`, `pref` (the
preference model's σ(r - r_ref), when the run has one) and `harm` need nothing but the text.
The simulated human's `gold` score of the answer is shown for comparison: GRPO never sees it.

What this is deliberately not: a chat interface. One question, a few samples, then exit.
"""

import argparse
import dataclasses
import json
import os
import re
import sys

import torch

from bradley_terry import PreferenceConfig
from checkpoint import load_model
from data.problems import ADD_TEMPLATES, MUL_TEMPLATES, SUB_TEMPLATES, Problem, apply_op
from preference import load_reward_model
from sampler import generate
from reward import RewardConfig, blend, reward_terms
from verifiers import answer_span, think_span


def solve(question: str) -> int | None:
    """The true answer of a question in the corpus's wording, else None.
    solve("Ann has 52 apples. She gives 17 to Tom. How many apples does Ann have now?") -> 35"""
    sentences = [s.strip() for s in re.split(r"(?<=[.?])\s+", question.strip()) if s.strip()]
    first = re.fullmatch(r"[A-Z][a-z]+ has ([0-9]+) [a-z]+\.", sentences[0]) if sentences else None
    if first is None:
        return None
    value = int(first.group(1))
    patterns = [(t, op) for op, ts in (("+", ADD_TEMPLATES), ("-", SUB_TEMPLATES),
                                       ("*", MUL_TEMPLATES)) for t in ts]
    for sentence in sentences[1:-1]:
        for template, op in patterns:
            regex = re.escape(template).replace(re.escape("{k}"), "([0-9]+)")
            regex = re.sub(r"\\\{[a-zA-Z]+\\\}", "[A-Za-z]+", regex)
            m = re.fullmatch(regex, sentence)
            if m:
                k = int(m.group(1))
                value = apply_op(value, op, k)
                break
        else:
            return None
    return value


def recorded(cls, described: dict):
    """A config dataclass from the fields a run recorded for it in config.json (older runs
    may hold knobs that no longer exist: skipped), its defaults for the rest."""
    saved = described.get(cls.__name__, {})
    return cls(**{f.name: saved[f.name] for f in dataclasses.fields(cls) if f.name in saved})


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="run directory, e.g. out/cpu")
    parser.add_argument("question")
    parser.add_argument("--model", default="", help="rl or pretrain (default: rl if present)")
    parser.add_argument("--n", type=int, default=3, help="samples to draw")
    parser.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
    parser.add_argument("--max_new_tokens", type=int, default=192)
    parser.add_argument("--answer", type=int, default=None, help="the true answer, if known")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    name = args.model or ("rl" if os.path.exists(os.path.join(args.run, "rl.pt")) else "pretrain")
    model, tok, _ = load_model(args.run, name)
    prompt = tok.encode(args.question.strip() + "\n")
    rollout = generate(model, [prompt], num_samples=args.n, max_new_tokens=args.max_new_tokens,
                       temperature=args.temperature, stop_ids=[tok.answer_end, tok.eot],
                       pad_id=tok.pad, generator=torch.Generator().manual_seed(args.seed))
    texts = rollout.texts(tok.decode)
    gold = args.answer if args.answer is not None else solve(args.question)
    cfg_path = os.path.join(args.run, "config.json")      # the run's own blend and human
    described = json.load(open(cfg_path)) if os.path.exists(cfg_path) else {}
    cfg, human = recorded(RewardConfig, described), recorded(PreferenceConfig, described).human
    has_rm = os.path.exists(os.path.join(args.run, "reward.pt"))
    rm = load_reward_model(args.run)[0] if has_rm else None
    problem = Problem(args.question.strip(), 0, (), gold if gold is not None else 0, "", ("", ""))
    terms = reward_terms([problem] * len(texts), texts, rm, tok,
                         cfg if has_rm else dataclasses.replace(cfg, w_pref=0.0), "cpu")
    # without the true answer `correct` is unknown: the total shown leaves it out
    total = blend(terms, cfg if gold is not None else dataclasses.replace(cfg, w_correct=0.0))
    utility = [human.utility(ok > 0, answer_span(t) or "")      # u = c [right] + g
               for ok, t in zip(terms["correct"].tolist(), texts)]
    print(f"model {name} from {args.run} | true answer {gold if gold is not None else 'unknown'}")
    for i, text in enumerate(texts):
        think = think_span(text)
        shown = {k: f"{v[i].item():.2f}" for k, v in terms.items()}
        if gold is None:
            shown["correct"] = "?"
        print(f"\n--- sample {i + 1}{' (truncated)' if rollout.truncated[i] else ''}")
        print(f"think : {think}")
        print(f"answer: {answer_span(text)}")
        print("reward: " + " | ".join(f"{k} {v}" for k, v in shown.items())
              + f" | total{'' if gold is not None else ' without correct'} "
              f"{total[i].item():.2f} | human's style score "
              f"{human.style(answer_span(text) or ''):.1f}"
              + (f" | human's utility {utility[i]:.1f}" if gold is not None else ""))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
