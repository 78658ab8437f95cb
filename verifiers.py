"""
Exact-match verifiers: the rule-based rewards of GRPO, as small pure functions.

What this is: the "accuracy" and "format" rewards of DeepSeek-R1 (arXiv 2501.12948, section 2.2.2)
for answers that are numbers, as in GSM8K (arXiv 2110.14168). A completion c is expected to read

    c = "<think>35+8: 5+8=13, 3+0+1=4, so 43.</think><answer>Ann has 43 apples now.</answer>"

    extract_answer(c) -> "43"          math_reward(c, "43") -> 1.0          format_reward(c) -> 1.0
    extract_answer("Ann has 4")    -> "4" (no tags: fallback to the last number in the text)
    extract_answer("<think>35+8 is")  -> None (tags but no complete answer span: truncated)
    extract_answer("...\\n#### 1,450,000") -> "1450000" (a GSM8K gold solution)
    extract_answer("So 3+4 = 7, and the answer is \\boxed{7}.") -> "7" (a LaTeX-style solution)

Policy of extract_answer, in order:
  1. If the text has any template tag, the answer comes ONLY from a single well-formed
     <answer>...</answer> span, and within it from the LAST number ("43 apples, not 42" -> 42),
     or if the span has a "\\boxed{", from its box as in 2 ("3, so \\boxed{4}, not 5" -> 4).
     A second span, a missing </answer> (truncation), or a <think> tag after <answer> gives None,
     never a number from the reasoning: otherwise being cut off mid-think could earn reward.
  2. Else, if the text has a "\\boxed{", the LAST number inside the LAST \\boxed{...}, whatever
     follows it ("\\boxed{3} or \\boxed{14{,}916}, 7" -> 14916). An empty, number-less, unclosed
     or nested box ("\\boxed{}", "\\boxed{4", "\\boxed{\\frac{1}{2}}") gives None, never a number
     from outside it; the one brace pair allowed inside is the "{,}" of a number.
  3. Else the first number after the last "####" (the GSM8K gold format).
  4. Else the last number anywhere in the text (bare answers like "43", prompts with no template).
     FOOTGUN: a completion that skips the template still earns math_reward through this fallback;
     format_reward is what makes the template pay.
  5. The number that decides must stand alone in the text it was read from: a value in prose
     ("Ann has 43 apples.", "x = 43", "(43)"), not an operand of something the verifier cannot
     evaluate. It gives None when its nearest neighbour (spaces skipped) is an operator
     ("2+3", "9**9", "52-17", "5 – 3", "x^2", "2 = x"; "=" on its left is fine: "3*4 = 12" is
     12), a bracket (a function's argument or an interval: "sqrt(2)", "{2}", "[0,1)"; a
     parenthesis around the number alone is judged by its own neighbours: "(5)" is 5,
     "-(-5)" nothing), a LaTeX command ("\\sqrt 2", "2\\pi"), a times sign "x" ("3 x 4"), a
     digit the regex does not read ("5²", "5½"), or a "," or ":" glued between it and a digit
     ("1,23" is no thousands group, "5:30" no number).
     So "$\\frac{1+\\sqrt{5}}{2}$" and "$-[0,1)$" earn nothing, where the last number would pay
     2 and 1: a rule verifier earns its place by precision, and must not pay for what it cannot
     read. Only neighbours are read: "43 apples, not 42" is still 42.

A number is ASCII digits only (not "٣" or "５"): an optional sign and "$" or LaTeX's "\\$"
("-\\$5" is -5), an integer with or without valid thousands groups, "," or LaTeX's "{,}"
("12,345,678", "14{,}916"; "1,23" and "1{,}23" are the two numbers 1 and 23), an optional
decimal part (".5", "2.50"; in "3." the period ends the sentence), an optional "/denominator"
("3/4"). Whatever follows ("%", " apples", ".") is ignored, but a number glued to a letter or "_"
on either side is not a number: "1e5", "0x1F", "H2O", "5th", "5kg" have none, so exponent notation
is simply not recognised. Values are exact `Fraction`s, never floats: "0.5" == "1/2" == ".5".
The sign is "+", "-", the minus sign "−" (U+2212: "−5" is -5, never 5) or the en dash "–"
(U+2013), a common stand-in for minus. All three obey the rule "-" always had: a dash is a sign only
glued to the digits on its right and not to a digit or letter on its left, so "52-17", "52−17" and
the range "52–17" are the numbers 52 and 17 (and as an answer, by 5, no number), "5 – 3" is 5
and 3, and "x = −5", "–5" are -5.
Other dashes (the em dash "—", hyphen U+2010, figure dash U+2012) are punctuation: "—5" is 5.
The canonical string is an integer ("1234", "-5"), else a terminating decimal without trailing
zeros ("2.5", "0.75"), else a reduced fraction ("1/3").

What this deliberately is not: a math-expression checker (no "2+3", "\\frac{1}{2}", units, sets or
intervals: policy 5 refuses them rather than reading a number out of them), and never an
evaluator. Model text is untrusted (verl CVE-2026-6878 was an eval on model output), so nothing
here hands it to eval, exec, a computer-algebra system or any other interpreter. Parsing is one
linear regex pass (two for a \\boxed{...}: its body, then its numbers) plus int() on at most
MAX_DIGITS digits and a look at the decisive number's neighbours, and any input over MAX_CHARS
characters is refused unread (None / 0.0), so "9**9**9", a 10^6-character string or a
10^5-digit number all cost microseconds to milliseconds.
"""

import re
from fractions import Fraction

MAX_CHARS = 10_000  # longer text is refused unread: our completions are a few hundred characters
MAX_DIGITS = 30     # a number with more digits than this is not a number (keeps int() cheap)

MINUS = "-\u2212\u2013"  # "-", the minus sign "−" and the en dash "–" all negate
BOX = "\\boxed{"       # LaTeX's \boxed{...}, where many solutions put the final answer

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
EOT, PAD = "<|endoftext|>", "<|pad|>"  # special tokens, decoded to these literal strings

# One number token. Every quantifier sits on a single character class or a group that must start
# with "," or "{" so a match never backtracks more than linearly (no "(\d+,?)+" style blow-ups).
_NUMBER = re.compile(
    r"(?<![0-9A-Za-z_./])"                # not the tail of a word, a number or "1.2.3" / "1/2/3";
                                          # so in "52-17" the "-" is subtraction: 52 and 17
    r"(?P<sign>[+\-\u2212\u2013]?)"      # "-5", "+5", "−5" (U+2212), "–5" (U+2013)
    r"(?:\\?\$)?"                         # "$5", "-$5", "\$5", "-\$5"
    r"(?=\.?[0-9])"                       # at least one digit follows, so the match is never empty
    r"(?P<int>[0-9]{1,3}(?:(?:,|\{,\})[0-9]{3})+(?![0-9])|[0-9]+)?"  # "1,234", "1{,}234", "1234"
    r"(?:\.(?P<frac>[0-9]+))?"            # ".5"; a "." with no digit after it is punctuation
    r"(?:/(?P<den>[0-9]+))?",             # "3/4"
    re.ASCII,
)
_GLUE = re.compile(r"[A-Za-z_]", re.ASCII)  # a letter right after a number: "1e5", "5th"
# what makes a number an operand (policy 5): operators, relations, brackets
OPERATORS = "+-\u2212\u2013*\u00d7\u00b7\u00f7/^<>\u2264\u2265\u2260\u2248|~="
BRACKETS = "()[]{}"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BOX_BODY = re.compile(r"(?:[^{}]|\{,\})*\}")  # "14{,}916}": no brace but "{,}", then the "}"

# ------------------------------------------------------------------------------------------------
# numbers: token -> Fraction -> canonical string

def _to_fraction(m: re.Match) -> Fraction | None:
    """The exact value of one _NUMBER match, or None if too long or dividing by zero.
    "$1,200.50" -> Fraction(2401, 2);  "3/0" -> None;  "-1.5/3" -> Fraction(-1, 2);
    "−\\$14{,}916" -> Fraction(-14916)"""
    whole = (m["int"] or "").replace("{,}", "").replace(",", "")
    frac, den = m["frac"] or "", m["den"] or ""
    if len(whole) + len(frac) + len(den) > MAX_DIGITS:
        return None  # int() and Fraction never see a huge digit string
    value = Fraction(int(whole or "0") * 10 ** len(frac) + int(frac or "0"), 10 ** len(frac))
    if m["den"] is not None:
        if int(den) == 0:
            return None
        value /= int(den)
    return -value if m["sign"] and m["sign"] in MINUS else value


def parse_number(s: str) -> Fraction | None:
    """Exactly one number token (surrounding whitespace allowed), else None.
    parse_number(" 1,000 ") -> Fraction(1000);  parse_number(".5") -> Fraction(1, 2);
    parse_number("9**9**9") -> None;  parse_number("50%") -> None (a token, not a sentence);
    parse_number("−\\$14{,}916") -> Fraction(-14916)"""
    s = s.strip()
    if len(s) > 3 * MAX_DIGITS:  # cheap refusal before any regex work ("{,}" groups need room)
        return None
    m = _NUMBER.fullmatch(s)
    return _to_fraction(m) if m else None


def canonical(value: Fraction) -> str:
    """The canonical string of an exact value: integer, else terminating decimal, else p/q.
    canonical(Fraction(1234)) -> "1234";  canonical(Fraction(5, 2)) -> "2.5";
    canonical(Fraction(-1, 8)) -> "-0.125";  canonical(Fraction(2, 3)) -> "2/3" """
    if value.denominator == 1:
        return str(value.numerator)
    rest, twos, fives = value.denominator, 0, 0
    while rest % 2 == 0:
        rest, twos = rest // 2, twos + 1
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    if rest != 1:  # 1/3, 5/7: no finite decimal
        return f"{value.numerator}/{value.denominator}"
    k = max(twos, fives)  # value * 10^k is an integer, and k is the smallest such (value reduced)
    digits = str(abs(value.numerator) * 10 ** k // value.denominator).rjust(k + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-k]}.{digits[-k:]}"  # no trailing zeros: k is minimal


def _numbers(text: str):
    """Yield each number match in text, left to right, skipping ones glued to a letter.
    [m[0] for m in _numbers("52-17 is 35, 1e5 not")] -> ["52", "17", "35"]"""
    for m in _NUMBER.finditer(text):
        if not _GLUE.match(text, m.end()):
            yield m


def _last(items):
    """The last item of an iterable, or None if it is empty. _last(iter("abc")) -> "c" """
    item = None
    for item in items:
        pass
    return item

# ------------------------------------------------------------------------------------------------
# extraction: where in the text the final answer lives

def _answer_span(text: str) -> str | None:
    """The content of the single well-formed <answer>...</answer> span, else None.
    _answer_span("<think>x</think><answer> 12 </answer>") -> " 12 "
    _answer_span("<answer>1</answer><answer>2</answer>") -> None (two answers: neither counts)
    _answer_span("<think>x</think><answer>Ann has 4") -> None (truncated)"""
    # exercise: answer_span
    if text.count(ANSWER_OPEN) != 1 or text.count(ANSWER_CLOSE) != 1:
        return None
    start, end = text.index(ANSWER_OPEN), text.index(ANSWER_CLOSE)
    if end < start:
        return None
    if THINK_OPEN in text[start:] or THINK_CLOSE in text[start:]:
        return None  # a think tag inside or after the answer: nested or out of order
    return text[start + len(ANSWER_OPEN):end]
    # end of exercise: answer_span


def _box_body(text: str) -> str | None:
    """The content of the last \\boxed{...} in text, else None (no box, unclosed, or nested).
    _box_body("\\boxed{1} or \\boxed{14{,}916}.") -> "14{,}916"
    _box_body("\\boxed{\\frac{1}{2}}") -> None;  _box_body("\\boxed{4") -> None (truncated)"""
    start = text.rfind(BOX)
    m = _BOX_BODY.match(text, start + len(BOX)) if start >= 0 else None
    return m[0][:-1] if m else None  # drop the closing "}"


def _final_number(text: str) -> re.Match | None:
    """The number that decides: the last one in the last \\boxed{...} if text has a box (a box
    with no readable number gives None), else the last one in text.
    _final_number("3, so \\boxed{4}, not 5")[0] -> "4";  _final_number("5, \\boxed{}") -> None"""
    if BOX not in text:
        return _last(_numbers(text))
    body = _box_body(text)
    return _last(_numbers(body)) if body is not None else None


def _stands_alone(m: re.Match) -> bool:
    """Whether the number m is a value on its own in the text it was matched in (m.string),
    judged by its nearest neighbours, spaces skipped (policy 5 of the module docstring).
    In "x = 12": True;  "3 + 12": False (an operand);  "f(12)", "[0,12)": False;  "(12)": True;
    "1,12": False (a bad thousands group);  "\\sqrt 12": False (a LaTeX command's argument)"""
    before, after = m.string[:m.start()].rstrip(), m.string[m.end():].lstrip()
    left, right = before[-1:], after[:1]
    if left == "(" and right == ")":  # "(12)": judged by what stands around the parentheses
        if before[-2:-1].isalnum():
            return False  # "f(12)": an argument
        before, after = before[:-1].rstrip(), after[1:].lstrip()  # "-(-12)", "(12) + 3"
        left, right = before[-1:], after[:1]
    if any(c.isnumeric() and not c.isascii() for c in left + right):
        return False  # "12²", "12½": a number the regex does not read
    word = before[len(before.rstrip(LETTERS)):]
    if word in ("x", "X") and before[:-1].rstrip()[-1:].isdigit():
        return False  # "3 x 12": a times sign
    if left and left in OPERATORS.replace("=", "") + BRACKETS:
        return False  # "3 + 12", "x^12", "{12}"; "= 12" is the result of what stands before
    if right and right in OPERATORS + BRACKETS:
        return False  # "12 + 3", "12(3)", "12 = x"
    if left and left in ",:" and m.start() == len(before) and before[-2:-1].isdigit():
        return False  # "1,12", "[0,12)", "5:12": glued to a number that is not this one
    command = before.rstrip(LETTERS)  # "...\\sqrt" -> "...\\"
    if command != before and command.endswith("\\"):
        return False  # "\\sqrt 12": a LaTeX command's argument
    if after[:1] == "\\" and after[1:2].isalpha():
        return False  # "12\\pi"
    return True


def answer_span(completion: str) -> str | None:
    """The stripped text of the single well-formed <answer>...</answer>, else None (the policy
    of _answer_span; text over MAX_CHARS is refused unread). The preference model and the rater
    read this. answer_span("<think>1+2</think><answer> 3 apples.</answer>") -> "3 apples." """
    if len(completion) > MAX_CHARS:
        return None
    span = _answer_span(completion)
    return None if span is None else span.strip()


def think_span(completion: str) -> str:
    """The reasoning: the text after <think> and before </think> (or before <answer>, or to the
    end, when the reasoning was never closed). think_span("<think>1+2=3</think><answer>3</answer>")
    -> "1+2=3";  think_span("<think>1+2=3<answer>3</answer>") -> "1+2=3" """
    text = completion.split(THINK_CLOSE, 1)[0].split(ANSWER_OPEN, 1)[0]
    return text.split(THINK_OPEN, 1)[1] if THINK_OPEN in text else text


def extract_answer(text: str) -> str | None:
    """The final answer as a canonical number string, or None (see the module docstring).
    extract_answer("<think>3*4=12</think><answer> 12 </answer>") -> "12"
    extract_answer("<think>3*4=12</think><answer>twelve</answer>") -> None
    extract_answer("She pays $1,200.50 in total.") -> "1200.5"
    extract_answer("The total is \\boxed{\\$16386.17}.") -> "16386.17" """
    if len(text) > MAX_CHARS:
        return None
    if any(tag in text for tag in TAGS):  # policy 1: the template is in use
        span = _answer_span(text)
        found = _final_number(span) if span is not None else None
    elif BOX in text:  # policy 2: "... so the answer is \boxed{72}."
        found = _final_number(text)
    elif "####" in text:  # policy 3: GSM8K gold, "... #### 72"
        found = next(_numbers(text[text.rindex("####") + 4:]), None)
    else:  # policy 4: the last number anywhere
        found = _final_number(text)
    if found is None or not _stands_alone(found):
        return None  # no number, or one that is an operand of what cannot be read (policy 5)
    value = _to_fraction(found)  # the last number decides; if it is invalid, so is the answer
    return None if value is None else canonical(value)

# ------------------------------------------------------------------------------------------------
# rewards

def is_equal(pred: str | None, gold: str) -> bool:
    """Exact equality of two number strings through Fraction (never a float tolerance).
    is_equal("0.5", "1/2") -> True;  is_equal("1000", "1,000") -> True;
    is_equal("2.5", "2.50") -> True;  is_equal(None, "3") -> False;  is_equal("3", "x") -> False"""
    if pred is None:
        return False
    p, g = parse_number(pred), parse_number(gold)
    return p is not None and g is not None and p == g


def math_reward(completion: str, gold: str) -> float:
    """1.0 if the extracted answer equals gold exactly, else 0.0 (R1's accuracy reward).
    math_reward("<think>6*7</think><answer>42 eggs.</answer>", "42") -> 1.0;
    math_reward("<think>6*7=42", "42") -> 0.0 (truncated: no answer span)"""
    return 1.0 if is_equal(extract_answer(completion), gold) else 0.0


def format_reward(completion: str) -> float:
    """1.0 iff the completion is exactly <think>T</think><answer>A</answer> (R1's format reward).
    T and A must be non-empty after stripping (an empty think is skipped reasoning: 0.0). Allowed
    around them: leading whitespace, whitespace between the blocks, and after </answer> whitespace
    plus at most one <|endoftext|>. Each tag exactly once, so no nesting, repeats or stray tags;
    no <|pad|> anywhere (strip padding before calling); a truncated completion ends without
    </answer> and gets 0.0. The answer need not contain a number: that is math_reward's job.
    format_reward("<think>6*7</think>\\n<answer>42</answer><|endoftext|>") -> 1.0
    format_reward("<think>6*7</think><answer>42</answer><|endoftext|><|endoftext|>") -> 0.0
    format_reward("<think></think><answer>42</answer>") -> 0.0"""
    if len(completion) > MAX_CHARS:
        return 0.0
    s = completion.strip()
    if s.endswith(EOT):
        s = s[:-len(EOT)].rstrip()
    if EOT in s or PAD in s or any(s.count(tag) != 1 for tag in TAGS):
        return 0.0
    if not (s.startswith(THINK_OPEN) and s.endswith(ANSWER_CLOSE)):
        return 0.0  # text before <think>, text after </answer>, or truncated
    think_end, answer_start = s.index(THINK_CLOSE), s.index(ANSWER_OPEN)
    if answer_start < think_end:
        return 0.0  # <answer> inside the think block
    think = s[len(THINK_OPEN):think_end]
    between = s[think_end + len(THINK_CLOSE):answer_start]
    answer = s[answer_start + len(ANSWER_OPEN):-len(ANSWER_CLOSE)]
    return 1.0 if think.strip() and not between.strip() and answer.strip() else 0.0
