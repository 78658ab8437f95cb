"""
A loader for GSM8K-format JSONL: one JSON object a line, `question` and `answer`, the final
answer after `#### ` (Cobbe et al., "Training Verifiers to Solve Math Word Problems", arXiv
2110.14168; MIT licence).

What this is: the bridge to real data. The verifier tests run over every GSM8K test solution,
and `load_gsm8k(path)` turns any file of that shape into (question, reasoning, answer) records.
A malformed line raises ValueError naming the file and the line number.

What this is deliberately not: a download. Nothing is fetched; pass the path of a copy you
have (the tests look for one and skip without it).
"""

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class GSM8KExample:
    question: str
    reasoning: str      # the worked solution before "####"
    answer: str         # the text after "#### ", e.g. "1,200"


def load_gsm8k(path: str) -> list[GSM8KExample]:
    """Read a GSM8K-format JSONL file. Blank lines are skipped."""
    examples = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(obj, dict) or not all(isinstance(obj.get(k), str)
                                                    for k in ("question", "answer")):
                raise ValueError(f"{path}:{lineno}: needs string fields 'question' and 'answer'")
            if "####" not in obj["answer"]:
                raise ValueError(f"{path}:{lineno}: answer has no '#### <final answer>'")
            reasoning, answer = obj["answer"].rsplit("####", 1)
            examples.append(GSM8KExample(obj["question"], reasoning.strip(), answer.strip()))
    return examples
