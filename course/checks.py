"""
What an exercise is to the grader: where its body lives, how it is probed, which properties must
hold, and the known wrong versions it recognises by name (fingerprints).

    Exercise("group_advantages", "advantages.py", ..., probe=lambda m: {...outputs...},
             properties=(sums_to_zero, ...), mistakes=(Mistake("batch_normalised", hint,
             edits=(("rewards.mean(dim=1, keepdim=True)", "rewards.mean()"),)), ...))

A probe takes a module (the reference file, or the same file with a student's or a wrong body
spliced in) and returns its outputs on fixed inputs as {label: value}; `differs` compares two
such outputs within the exercise's tolerance and says where they part. A wrong version is the
reference body with a few exact text edits, so it stays in step with the reference: an edit
that no longer finds its text is an error, and tests/test_course.py makes every one.

What this deliberately is not: a test framework. The grader (course/grade.py) runs these.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch


class Failed(Exception):
    """A property that does not hold: its message names it and, where known, the likely cause."""


@dataclass(frozen=True)
class Mistake:
    """A known wrong version: the reference body with `edits` applied ((old, new) pairs, each
    old text found in the body, every occurrence replaced)."""
    name: str
    hint: str
    edits: tuple

    def apply(self, reference_body: str) -> str:
        text = reference_body
        for old, new in self.edits:
            if old not in text:
                raise ValueError(f"mistake {self.name}: {old!r} is not in the reference body")
            text = text.replace(old, new)
        return text


@dataclass(frozen=True)
class Exercise:
    """One exercise: the marked body `name` in file `path`, and how the grader checks it."""
    name: str
    path: str
    title: str
    minutes: int                # a student's estimated time, for the course page
    probe: Callable             # module -> {label: outputs} on fixed inputs
    properties: tuple = ()      # functions of the module that raise Failed when one fails
    mistakes: tuple = ()        # Mistake, recognised by their outputs on the probe's inputs
    rtol: float = 1e-5          # agreement: |got - expected| <= atol + rtol |expected|
    atol: float = 1e-6


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        if value.numel() <= 8:
            return f"tensor({value.tolist()})"
        return f"tensor of shape {tuple(value.shape)}"
    return repr(value)


def differs(expected, got, rtol: float, atol: float, where: str = "") -> str | None:
    """None when `got` agrees with `expected` (tensors within tolerance, NaN where NaN; other
    values equal), else where and how they first part."""
    at = f" at {where}" if where else ""
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return f"expected {sorted(expected)} as its parts{at}, got {_describe(got)}"
        for key in expected:
            found = differs(expected[key], got[key], rtol, atol, f"{where}{key}" if not where
                            else f"{where}/{key}")
            if found:
                return found
        return None
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"expected {len(expected)} values{at}, got {_describe(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            found = differs(e, g, rtol, atol, f"{where}[{i}]")
            if found:
                return found
        return None
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"expected a tensor{at}, got {_describe(got)}"
        if got.shape != expected.shape:
            return f"expected shape {tuple(expected.shape)}{at}, got {tuple(got.shape)}"
        if expected.dtype == torch.bool or got.dtype == torch.bool:
            bad = got != expected
        else:
            e, g = expected.double(), got.detach().double()
            close = (g - e).abs() <= atol + rtol * e.abs()
            bad = ~(close | (e.isnan() & g.isnan()) | ((e == g) & e.isinf()))
        if not bad.any():
            return None
        i = tuple(int(j) for j in bad.nonzero()[0])
        return (f"expected {expected[i].item()!r}{at}{list(i)}, got {got[i].item()!r} "
                f"({int(bad.sum())} of {bad.numel()} entries differ)")
    if isinstance(expected, float) and isinstance(got, (float, int)):
        both_nan = expected != expected and got != got
        if both_nan or abs(got - expected) <= atol + rtol * abs(expected):
            return None
    elif expected == got and type(expected) is type(got):
        return None
    return f"expected {_describe(expected)}{at}, got {_describe(got)}"


def require(condition: bool, message: str) -> None:
    """A property: raise Failed(message) unless `condition`."""
    if not condition:
        raise Failed(message)
