"""
Tests for verifiers.py: a table of hand-checked cases, real GSM8K gold solutions, hostile inputs
under a time bound, seeded property tests, and a scan of the source for eval-like calls.

Run: python -m pytest -q tests/test_verifiers.py
"""

import random
import re
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # so `import verifiers` works without installing the repo

from data.gsm8k import load_gsm8k  # noqa: E402
from verifiers import (MAX_CHARS, canonical, extract_answer, format_reward, is_equal,  # noqa: E402
                       math_reward, parse_number, think_span)

GSM8K = ROOT.parent / "shared" / "data" / "gsm8k"


def t(answer: str, think: str = "52-17=35. 35+8=43.") -> str:
    """A completion in the R1 template. t("4", "2+2") -> "<think>2+2</think><answer>4</answer>" """
    return f"<think>{think}</think><answer>{answer}</answer>"


RAMBLING = ("Well, after going through every step one at a time and checking each of them again, "
            "the number I end up with is 43, I believe.")

# ------------------------------------------------------------------------------------------------
# the table: (function, arguments, expected), with the reason as the pytest id

CASES = [
    # extract_answer: the answer styles of the corpus
    (extract_answer, (t("43"),), "43", "bare number in the answer span"),
    (extract_answer, (t("Ann has 43 apples now."),), "43", "sentence with unit and period"),
    (extract_answer, (t("43 apples."),), "43", "short style"),
    (extract_answer, (t("I think it is 43, but I am not sure."),), "43", "hedged style"),
    (extract_answer, (t(RAMBLING),), "43", "rambling style"),
    (extract_answer, (t("43") + "<|endoftext|>",), "43", "trailing endoftext"),
    # number forms
    (extract_answer, (t("It costs 1,234 dollars."),), "1234", "thousands separator"),
    (extract_answer, (t("12,345,678"),), "12345678", "several thousands groups"),
    (extract_answer, (t("1,000.5"),), "1000.5", "thousands and a decimal"),
    (extract_answer, (t("1,23"),), None, "a comma without 3 digits: no thousands group"),
    (extract_answer, (t("12,345,6789"),), None, "a bad last group: no number"),
    (extract_answer, (t("1, 23"),), "23", "a list: the last number"),
    (extract_answer, (t("-5"),), "-5", "negative"),
    (extract_answer, (t("It fell to -12 degrees."),), "-12", "negative in a sentence"),
    (extract_answer, (t("+7"),), "7", "leading plus"),
    (extract_answer, (t("$1,200.50"),), "1200.5", "dollar, commas, decimal"),
    (extract_answer, (t("-$5"),), "-5", "minus before dollar"),
    (extract_answer, (t("50%"),), "50", "percent ignored"),
    (extract_answer, (t("2.50"),), "2.5", "trailing zero dropped"),
    (extract_answer, (t(".5"),), "0.5", "leading decimal point"),
    (extract_answer, (t("It is 3."),), "3", "trailing period is a sentence end"),
    (extract_answer, (t("3/4"),), "0.75", "fraction with terminating decimal"),
    (extract_answer, (t("1/3 of them"),), "1/3", "fraction kept as p/q"),
    (extract_answer, (t("6/4"),), "1.5", "fraction reduced"),
    (extract_answer, (t("1/2."),), "0.5", "fraction then period"),
    (extract_answer, (t("3/0"),), None, "division by zero is no number"),
    (extract_answer, (t("0.000"),), "0", "zero decimal"),
    (extract_answer, (t("-0"),), "0", "negative zero"),
    (extract_answer, (t("007"),), "7", "leading zeros"),
    (extract_answer, (t("1" * 31),), None, "too many digits"),
    (extract_answer, (t("1" * 30),), "1" * 30, "30 digits is fine"),
    (extract_answer, (t("1e5"),), None, "exponent notation is not a number"),
    (extract_answer, (t("5th"),), None, "number glued to letters"),
    (extract_answer, (t("H2O"),), None, "digit inside a word"),
    (extract_answer, (t("\u0663"),), None, "arabic-indic digit"),
    (extract_answer, (t("\uff15"),), None, "fullwidth digit"),
    (extract_answer, (t("\u0663 or 4"),), "4", "ascii digit next to unicode"),
    # which number, which span
    (extract_answer, (t("43 apples, not 42"),), "42", "last number in the span"),
    (extract_answer, (t("52-17=35, so 35+8 = 43"),), "43", "arithmetic in the span"),
    (extract_answer, (t("twelve", think="3*4=12"),), None, "no number in span, none from think"),
    (extract_answer, ("<think>35+8=43</think>",), None, "missing answer span"),
    (extract_answer, (t("43") + "<answer>44</answer>",), None, "repeated answer span"),
    (extract_answer, ("<think>x</think><answer><answer>4</answer></answer>",), None, "nested"),
    (extract_answer, ("<think>a<answer>4</answer>b</think>",), None, "answer inside think"),
    (extract_answer, (t(""),), None, "empty answer span"),
    (extract_answer, (t("43") + " 99",), "43", "text after the span is ignored"),
    (extract_answer, ("<think>52-17=35. 35+8",), None, "truncated mid think"),
    (extract_answer, ("<think>52-17=35.</think><answer>Ann has 4",), None, "truncated mid answer"),
    (extract_answer, ("43</answer>",), None, "closing tag only"),
    (extract_answer, ("</answer>43<answer>",), None, "tags in the wrong order"),
    # policy 5: the number that decides stands alone, not an operand of what is not read
    (extract_answer, ("$\\frac{1+\\sqrt{5}}{2}$",), None, "golden ratio: not 2"),
    (extract_answer, ("$-[0,1)$",), None, "an interval: not 1"),
    (extract_answer, (t("$-[0,1)$"),), None, "an interval in the span"),
    (extract_answer, (t("2+3"),), None, "a sum is not its last term"),
    (extract_answer, (t("2 + 3"),), None, "spaced sum"),
    (extract_answer, (t("3 + 4 apples"),), None, "operand before a word"),
    (extract_answer, (t("x^2"),), None, "an exponent"),
    (extract_answer, (t("12 = 3*4"),), None, "a product on the right of ="),
    (extract_answer, (t("12 = x"),), None, "the left side of an equation"),
    (extract_answer, (t("sqrt(2)"),), None, "a function's argument"),
    (extract_answer, (t("\\sqrt 2"),), None, "a latex command's argument"),
    (extract_answer, (t("2\\pi"),), None, "a coefficient of a latex symbol"),
    (extract_answer, (t("\\frac{1}{2}"),), None, "a latex fraction"),
    (extract_answer, (t("5:30"),), None, "a time or a ratio"),
    (extract_answer, (t("3 \u00d7 4"),), None, "a times sign"),
    (extract_answer, (t("|-5|"),), None, "an absolute value"),
    (extract_answer, (t("~43"),), None, "an approximation"),
    (extract_answer, (t("x = 43"),), "43", "the right side of ="),
    (extract_answer, (t("(43)"),), "43", "a number in parentheses of its own"),
    (extract_answer, (t("Ann has 43 apples (after the trade)."),), "43", "prose parentheses"),
    (extract_answer, (t("f(43)"),), None, "parentheses of a function"),
    (extract_answer, (t("-(\u22125)"),), None, "a negated parenthesis"),
    (extract_answer, (t("(43) + 2x"),), None, "a parenthesis that is an operand"),
    (extract_answer, (t("5\u00b2"),), None, "a superscript square"),
    (extract_answer, (t("5\u00bd"),), None, "a vulgar fraction after the digits"),
    (extract_answer, (t("3 x 4"),), None, "a times sign x"),
    (extract_answer, (t("Box x has 4"),), "4", "a word x is no times sign"),
    (extract_answer, (t("43!"),), "43", "an exclamation mark is prose"),
    (extract_answer, (t("5\\%"),), "5", "latex percent is no command"),
    # GSM8K gold and the fallback
    (extract_answer, ("2+3=<<2+3=5>>5\n#### 72",), "72", "gsm8k gold"),
    (extract_answer, ("#### 1,450,000",), "1450000", "gsm8k gold with commas"),
    (extract_answer, ("It drops 10.\n#### -10",), "-10", "gsm8k negative"),
    (extract_answer, ("#### 5\n#### 7",), "7", "last #### wins"),
    (extract_answer, ("#### 5 or 6",), "5", "first number after ####"),
    (extract_answer, ("#### none",), None, "#### without a number"),
    (extract_answer, ("Ann has 4 then 5 pears",), "5", "fallback: last number"),
    (extract_answer, ("no idea",), None, "no number at all"),
    (extract_answer, ("",), None, "empty string"),
    (extract_answer, ("4" + " " * MAX_CHARS,), None, "over MAX_CHARS is refused"),
    # \boxed{...}: the last box decides, inside the span or in a text without tags
    (extract_answer, ("The answer is \\boxed{42}.",), "42", "boxed answer"),
    (extract_answer, ("So \\boxed{14{,}916}",), "14916", "boxed latex thousands"),
    (extract_answer, ("\\boxed{3}, no: \\boxed{4}, +5 is 9",), "4", "last box beats later numbers"),
    (extract_answer, ("\\boxed{x = 2+3 = 5}",), "5", "last number in the box"),
    (extract_answer, ("5 = 5\n#### 5 \\boxed{6}",), "6", "box beats ####"),
    (extract_answer, ("It is $\\boxed{-\\$5}$",), "-5", "box in math mode, escaped dollar"),
    (extract_answer, ("It is 5. \\boxed{}",), None, "empty box: no fallback outside it"),
    (extract_answer, ("It is 5. \\boxed{five}",), None, "number-less box"),
    (extract_answer, ("\\boxed{\\frac{1}{2}} or 3",), None, "nested braces are unreadable"),
    (extract_answer, ("It is 5, so \\boxed{5",), None, "unclosed box: truncated"),
    (extract_answer, ("\\boxed{1{,}23}",), None, "bad latex group in a box"),
    (extract_answer, (t("3, so \\boxed{4}, not 5"),), "4", "box in the span decides"),
    (extract_answer, (t("\\boxed{}"),), None, "empty box in the span"),
    (extract_answer, (t("5", think="\\boxed{4}"),), "5", "box in think does not count"),
    (extract_answer, ("\\boxed 4",), None, "no brace: a latex command's argument"),
    # LaTeX thousands "{,}" and escaped dollar "\$"
    (extract_answer, (t("14{,}916"),), "14916", "latex thousands separator"),
    (extract_answer, (t("1{,}234{,}567.50"),), "1234567.5", "latex groups and a decimal"),
    (extract_answer, (t("1{,}23"),), None, "latex comma without 3 digits: no number"),
    (extract_answer, (t("\\$16386.17"),), "16386.17", "escaped dollar"),
    (extract_answer, (t("-\\$5"),), "-5", "minus before escaped dollar"),
    # unicode minus "−" and en dash "–" are signs; other dashes are punctuation
    (extract_answer, (t("\u22125"),), "-5", "unicode minus sign"),
    (extract_answer, (t("\u2212\\$5"),), "-5", "unicode minus, escaped dollar"),
    (extract_answer, (t("$\u22125"),), "-5", "dollar then unicode minus"),
    (extract_answer, (t("\u20135"),), "-5", "en dash as minus"),
    (extract_answer, (t("52\u221217=35"),), "35", "unicode minus as subtraction"),
    (extract_answer, (t("pages 52\u201317"),), None, "en dash range: no one number"),
    (extract_answer, (t("5 \u2013 3"),), None, "spaced en dash is no sign: an expression"),
    (extract_answer, (t("x \u20145"),), "5", "em dash is punctuation"),
    (extract_answer, ("It drops 10.\n#### \u221210",), "-10", "gsm8k with unicode minus"),
    (extract_answer, ("\\boxed{\u22125}",), "-5", "unicode minus in a box"),
    (is_equal, ("-5", "\u22125"), True, "unicode minus gold"),
    (is_equal, ("14916", "14{,}916"), True, "latex thousands gold"),
    (math_reward, (t("\u22125"), "5"), 0.0, "unicode minus is never dropped"),
    (math_reward, ("It costs $\\boxed{\\$16386.17}$.", "16386.17"), 1.0, "boxed escaped dollar"),
    # is_equal: exact, through Fraction
    (is_equal, ("0.5", "1/2"), True, "decimal equals fraction"),
    (is_equal, (".5", "0.5"), True, "leading point"),
    (is_equal, ("1000", "1,000"), True, "gold with commas"),
    (is_equal, ("2.5", "2.50"), True, "gold with trailing zero"),
    (is_equal, ("1/3", "2/6"), True, "unreduced gold fraction"),
    (is_equal, ("1200.5", "$1,200.50"), True, "gold with dollar"),
    (is_equal, ("0.333", "1/3"), False, "no float tolerance"),
    (is_equal, ("0.30000000000000004", "0.3"), False, "exact, not float"),
    (is_equal, ("-5", "5"), False, "sign matters"),
    (is_equal, (None, "3"), False, "no prediction"),
    (is_equal, ("3", "three"), False, "unparseable gold"),
    (is_equal, ("5", "5%"), False, "gold must be a bare number token"),
    (is_equal, ("100000", "1e5"), False, "exponent gold is not a number"),
    # math_reward
    (math_reward, (t("Ann has 43 apples now."), "43"), 1.0, "correct"),
    (math_reward, (t("Ann has 42 apples now."), "43"), 0.0, "wrong"),
    (math_reward, (t("1234"), "1,234"), 1.0, "gold with commas"),
    (math_reward, (t("1/2"), "0.5"), 1.0, "fraction answer, decimal gold"),
    (math_reward, ("<think>35+8=43</think><answer>I give up</answer>", "43"), 0.0, "think only"),
    (math_reward, ("<think>35+8=43", "43"), 0.0, "truncated: no reward"),
    (math_reward, (t("9**9**9"), "9**9**9"), 0.0, "hostile gold"),
    # format_reward
    (format_reward, (t("43"),), 1.0, "the template"),
    (format_reward, (t("43") + "<|endoftext|>",), 1.0, "one trailing endoftext"),
    (format_reward, ("\n " + t("43") + " \n<|endoftext|>\n",), 1.0, "whitespace around"),
    (format_reward, ("<think>x</think>\n<answer>43</answer>",), 1.0, "newline between blocks"),
    (format_reward, (t("I don't know"),), 1.0, "format does not need a number"),
    (format_reward, (t("43") + "<|endoftext|><|endoftext|>",), 0.0, "endoftext spam"),
    (format_reward, (t("43") + "<|pad|>",), 0.0, "pad after answer"),
    (format_reward, (t("43") + " so 43",), 0.0, "text after answer"),
    (format_reward, ("Sure! " + t("43"),), 0.0, "text before think"),
    (format_reward, ("<think>x</think>so<answer>43</answer>",), 0.0, "text between blocks"),
    (format_reward, (t("43", think=""),), 0.0, "empty think"),
    (format_reward, (t("43", think="  "),), 0.0, "whitespace think"),
    (format_reward, (t(""),), 0.0, "empty answer"),
    (format_reward, (t(" \n"),), 0.0, "whitespace answer"),
    (format_reward, ("<answer>43</answer>",), 0.0, "missing think"),
    (format_reward, ("<think>52-17=35.</think><answer>Ann has 4",), 0.0, "truncated"),
    (format_reward, (t("43") + "<answer>43</answer>",), 0.0, "repeated answer"),
    (format_reward, ("<think><think>x</think></think><answer>43</answer>",), 0.0, "nested think"),
    (format_reward, ("<think>a<answer>4</answer>b</think>",), 0.0, "answer inside think"),
    (format_reward, ("<answer>43</answer><think>x</think>",), 0.0, "swapped blocks"),
    (format_reward, (t("43", think="x<|endoftext|>y"),), 0.0, "stray endoftext in think"),
    (format_reward, (t("4<think>3"),), 0.0, "stray tag in answer"),
    (format_reward, (t("43", think="x" * MAX_CHARS),), 0.0, "over MAX_CHARS"),
]


@pytest.mark.parametrize("fn, args, expected", [pytest.param(*c[:3], id=c[3]) for c in CASES])
def test_table(fn, args, expected):
    assert fn(*args) == expected


def test_table_has_no_case_twice():
    """Two rows with one input either repeat each other or contradict each other."""
    inputs = [(c[0].__name__, c[1]) for c in CASES]
    assert len(inputs) == len(set(inputs)), [i for i in inputs if inputs.count(i) > 1]

# ------------------------------------------------------------------------------------------------
# numbers: parse and canonical form

@pytest.mark.parametrize("s, expected", [
    ("1,000", Fraction(1000)), (" -3/4 ", Fraction(-3, 4)), ("$2.50", Fraction(5, 2)),
    ("+.25", Fraction(1, 4)), ("1.5/3", Fraction(1, 2)), ("3/0", None), ("9**9**9", None),
    ("1 2", None), ("", None), ("1" * 100_000, None), ("1,23", None), ("\u0663", None),
    ("14{,}916", Fraction(14916)), ("\u2212\\$1{,}000.5", Fraction(-2001, 2)), ("\u20133", -3),
    ("1{,}23", None), ("1{,}", None), ("\\5", None), ("\u20145", None), ("\\boxed{5}", None),
    ("\u2212\\$1" + "{,}000" * 9 + ".55", -Fraction(10 ** 29 + 55, 100)),  # 30 digits, 61 chars
])
def test_parse_number(s, expected):
    assert parse_number(s) == expected


@pytest.mark.parametrize("value, expected", [
    (Fraction(1234), "1234"), (Fraction(-5), "-5"), (Fraction(5, 2), "2.5"),
    (Fraction(-1, 8), "-0.125"), (Fraction(1, 1024), "0.0009765625"), (Fraction(2, 3), "2/3"),
    (Fraction(-7, 6), "-7/6"), (Fraction(0), "0"), (Fraction(101, 100), "1.01"),
])
def test_canonical(value, expected):
    assert canonical(value) == expected
    assert parse_number(expected) == value  # the canonical form parses back to the same value

# ------------------------------------------------------------------------------------------------
# real data: every GSM8K gold solution reads back as the official regex's answer

def _official_gsm8k_answer(solution: str) -> Fraction:
    """What the GSM8K grader reads: `#### (\\-?[0-9\\.\\,]+)`, commas removed (2110.14168)."""
    m = re.search(r"#### (\-?[0-9\.\,]+)", solution)
    return Fraction(m.group(1).replace(",", "").rstrip("."))


@pytest.mark.parametrize("split", ["test", "train"])
def test_gsm8k_gold(split):
    path = GSM8K / f"{split}.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not found")
    examples = load_gsm8k(str(path))
    assert len(examples) == {"test": 1319, "train": 7473}[split]
    for ex in examples:
        solution = f"{ex.reasoning}\n#### {ex.answer}"         # as the file writes it
        gold = _official_gsm8k_answer(solution)
        got = extract_answer(solution)
        assert got is not None and parse_number(got) == gold, solution
        assert math_reward(solution, str(gold)) == 1.0
        assert math_reward(solution, str(gold + 1)) == 0.0

# ------------------------------------------------------------------------------------------------
# hostile inputs: a documented answer, no exception, no hang

HOSTILE = [
    "9**9**9", "1e999999", "1" * 100_000, "7" * 1_000_000, "a" * 1_000_000, "\u0663\uff15",
    "\x00\x01\x1b[2J\x7f", "1\x002", "<think><think><answer></think>", "</answer><answer>" * 1000,
    "__import__('os')", "__import__('os').system('ls')", "<answer>__import__('os').system('ls')",
    "(lambda: 1)()", "1," * 4999, "," * 9999, "." * 9999, "1." * 4999, "1/" * 4999, "-" * 9999,
    "$" * 9999, "0" * 9999 + "1", "1,000" * 1999, "#" * 9999, "<answer>" * 1000, "9" * 31,
    "\\boxed{" * 1428, "\\boxed{" * 100_000, "{,}" * 3333, "{,}" * 100_000, "1{,}" * 2499,
    "1{,}000" * 1428, "\\boxed{" + "{,}" * 3330, "\\boxed{" + "1{,}0" * 1998 + "}", "\\$" * 4999,
    "-\\$" * 3333, "\u2212" * 9999, "\u2013\u2212" * 4999, "\\boxed{}" * 1250, "}" * 9999,
]


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


@pytest.mark.parametrize("hostile", HOSTILE, ids=[repr(h[:20]) + f"x{len(h)}" for h in HOSTILE])
def test_hostile(hostile):
    completions = [hostile, t(hostile), t("5", think=hostile)]
    for c in completions:
        answer, dt = _timed(extract_answer, c)
        assert dt < 0.05, (c[:40], dt)
        assert answer is None or (isinstance(answer, str) and len(answer) <= 200)
        fmt, dt = _timed(format_reward, c)
        assert dt < 0.05 and fmt in (0.0, 1.0)
        # as a gold string: never parsed into anything, so never equal to anything
        reward, dt = _timed(math_reward, t("5"), c)
        assert dt < 0.05 and reward == 0.0
        same, dt = _timed(is_equal, c, c)
        assert dt < 0.05 and same is False
    assert format_reward(hostile) == 0.0  # none of them is a well-formed completion


def test_hostile_never_evaluated():
    # "9**9**9" is an expression, so no answer; it is never computed, and "1e999999" is no number
    assert extract_answer(t("9**9**9")) is None
    assert extract_answer(t("9 ** 9 ** 9")) is None
    assert extract_answer(t("1e999999")) is None
    assert extract_answer(t("__import__('os').system('ls')")) is None

# ------------------------------------------------------------------------------------------------
# property tests: a seeded random.Random, no extra dependency

STYLES = ["The answer is {s}.", "{s}", "Ann has {s} apples now.", "{s} apples.",
          "I think it is {s}, but I am not sure.", RAMBLING.replace("43", "{s}"),
          "So 7 - 2 = 5, and the answer is $\\boxed{{{s}}}$. 99"]


def _render(value: Fraction, rng: random.Random) -> str:
    """One way a person could write value. Fraction(-1234) -> "-1,234" or "−\\$1{,}234" or ..."""
    sign = rng.choice(["-", "\u2212", "\u2013"]) if value < 0 else rng.choice(["", "", "+"])
    v = abs(value)
    if v.denominator == 1:
        body = rng.choice([f"{v.numerator}", f"{v.numerator:,}", f"${v.numerator:,}",
                           f"\\${v.numerator:,}".replace(",", "{,}")])
    elif rng.random() < 0.5:
        body = f"{v.numerator}/{v.denominator}"
    else:  # a terminating decimal, maybe with trailing zeros, maybe with thousands groups
        body = canonical(v) if "/" not in canonical(v) else f"{v.numerator}/{v.denominator}"
        if "." in body:
            whole, frac = body.split(".")
            whole = f"{int(whole):,}" if rng.random() < 0.5 else whole
            body = f"{whole}.{frac}{'0' * rng.randint(0, 2)}"
    return sign + body


def _random_value(rng: random.Random) -> Fraction:
    kind = rng.randrange(3)
    if kind == 0:  # integers from tiny to 15 digits, both signs
        return Fraction(rng.choice([-1, 1]) * rng.randint(0, 10 ** rng.randint(1, 15)))
    if kind == 1:  # decimals with up to 4 places
        places = rng.randint(1, 4)
        return Fraction(rng.randint(-10 ** 8, 10 ** 8), 10 ** places)
    return Fraction(rng.randint(-1000, 1000), rng.randint(1, 1000))  # fractions


def test_property_template_roundtrip():
    rng = random.Random(0)
    for _ in range(600):
        value = _random_value(rng)
        text = _render(value, rng)
        distractor = f"{value + 7} then {rng.randint(0, 99)}"  # numbers in think must not count
        c = t(rng.choice(STYLES).format(s=text), think=distractor)
        for gold in (str(value), canonical(value)):
            assert math_reward(c, gold) == 1.0, (c, gold)
        assert math_reward(c, str(value + 1)) == 0.0, c
        assert format_reward(c) == 1.0, c
        # truncating anywhere inside the answer span loses the reward
        cut = rng.randint(0, len(c) - len("</answer>"))
        assert math_reward(c[:cut], str(value)) == 0.0, c[:cut]


def test_property_gsm8k_form():
    rng = random.Random(1)
    for _ in range(300):
        n = rng.randint(-10 ** 9, 10 ** 9)
        solution = f"She has {n + 3} - 3 = <<{n + 3}-3={n}>>{n} left.\n#### {n:,}"
        assert extract_answer(solution) == str(n)
        assert math_reward(solution, str(n)) == 1.0 and math_reward(solution, str(n - 1)) == 0.0

# ------------------------------------------------------------------------------------------------
# the source never reaches for an interpreter

def test_nothing_reaches_an_interpreter(monkeypatch):
    """eval, exec and compile raise while every table case and every hostile input is read:
    none of them is ever called, whatever the text says."""
    import builtins

    def refuse(*args, **kwargs):
        raise AssertionError("an interpreter was called")
    for name in ("eval", "exec", "compile", "__import__"):
        monkeypatch.setattr(builtins, name, refuse)
    for fn, args, expected, _ in CASES:
        assert fn(*args) == expected
    for text in HOSTILE:
        extract_answer(text), math_reward(text, "1"), format_reward(text), parse_number(text)


@pytest.mark.parametrize("completion, think", [
    ("<think>1+2=3</think><answer>3</answer>", "1+2=3"),
    ("<think>1+2=3<answer>3</answer>", "1+2=3"),                 # never closed: up to <answer>
    ("<think>1+2=", "1+2="),                                     # truncated: to the end
    ("no tags at all", "no tags at all"),
])
def test_think_span(completion, think):
    assert think_span(completion) == think
