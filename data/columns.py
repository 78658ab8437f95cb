"""
Column arithmetic the way the teacher writes it, and reading its one systematic bug back.

What this is: one step of a worked solution, units column first, every column written out
("52-17: 12-7=5, 4-1=3, so 35."), with the teacher's two kinds of mistake (data/problems.py says
when it makes them): a slip of one in the units column, carried through, and the
"smaller-from-larger" subtraction bug (Brown & VanLehn, "Repair Theory: A Generative Theory of
Bugs in Procedural Skills", Cognitive Science 1980), and `uses_misconception`, which finds that
bug in any text written in this format, the policy's samples included (evaluate.py counts it).

What this deliberately is not: arithmetic the model is scored on (verifiers.py compares the
final answer only) or a parser of other notations (a column must read exactly as work_step
writes it, or the reader does not see it).
"""

import re


def digits(n: int, width: int) -> list[int]:
    """Units first: digits(52, 3) -> [2, 5, 0]."""
    return [(n // 10 ** i) % 10 for i in range(width)]


def needs_borrow(a: int, b: int) -> bool:
    """True if a - b (a >= b) borrows in some column: needs_borrow(52, 17) -> True."""
    width = len(str(max(a, b)))
    return any(x < y for x, y in zip(digits(a, width), digits(b, width)))


def work_step(a: int, op: str, b: int, bug: bool = False, slip: int = 0) -> tuple[str, int]:
    """Write one step in columns, units first, and return (text, value written).

    bug=True applies smaller-from-larger to a subtraction; slip=+1/-1 writes the units column
    off by one and carries the mistake through consistently.
      work_step(58, "+", 17)            -> ("58+17: 8+7=15, 5+1+1=7, so 75.", 75)
      work_step(52, "-", 17)            -> ("52-17: 12-7=5, 4-1=3, so 35.", 35)
      work_step(52, "-", 17, bug=True)  -> ("52-17: 7-2=5, 5-1=4, so 45.", 45)
      work_step(23, "*", 4)             -> ("23*4: 3*4=12, 2*4+1=9, so 92.", 92)
    """
    cols, out, carry = [], [], 0              # carry doubles as the borrow for subtraction
    width = 1 if op == "*" else len(str(max(a, b)))
    width = max(width, len(str(a)))
    for i, (x, y) in enumerate(zip(digits(a, width), digits(b, width))):
        s = slip if i == 0 else 0             # a slip only ever touches the units column
        if op == "+":
            total = x + y + carry + s
            cols.append(f"{x}+{y}" + ("+1" if carry else "") + f"={total}")
            carry, digit = divmod(total, 10)
        elif op == "*":
            total = x * b + carry + s
            cols.append(f"{x}*{b}" + (f"+{carry}" if carry else "") + f"={total}")
            carry, digit = divmod(total, 10)
        elif bug:                             # smaller-from-larger: never borrows
            hi, lo = max(x, y), min(x, y)
            digit = hi - lo + s
            cols.append(f"{hi}-{lo}={digit}")
        else:
            x -= carry                        # the column already lent one to its right neighbour
            carry = int(x < y)
            digit = x + 10 * carry - y + s
            cols.append(f"{x + 10 * carry}-{y}={digit}")
        out.append(digit)
    if op != "-" and carry:
        out.extend(digits(carry, len(str(carry))))
    value = sum(d * 10 ** i for i, d in enumerate(out))
    return f"{a}{op}{b}: " + ", ".join(cols) + f", so {value}.", value


_SUBTRACTION = re.compile(r"([0-9]{1,12})-([0-9]{1,12}): ((?:[0-9]+-[0-9]+=[0-9]+, )+)so ")
_COLUMN = re.compile(r"([0-9]+)-([0-9]+)=")


def uses_misconception(text: str) -> bool:
    """True if a worked solution subtracts smaller-from-larger at least once: in a column whose
    top digit is smaller than the bottom one (where the borrow belongs), it writes the bottom
    digit minus the top one. Any column, not only the units; a borrow through a zero is right:
      uses_misconception("52-17: 7-2=5, 5-1=4, so 45.") -> True
      uses_misconception("52-17: 12-7=5, 4-1=3, so 35.") -> False
      uses_misconception("523-180: 3-0=3, 12-8=4, 4-1=3, so 343.") -> False
      uses_misconception("523-180: 3-0=3, 8-2=6, 5-1=4, so 463.") -> True"""
    for m in _SUBTRACTION.finditer(text[:10_000]):
        a, b = int(m[1]), int(m[2])
        if a < b:
            continue
        width = len(str(a))
        written = _COLUMN.findall(m[3])                        # [("7", "2"), ("5", "1")]
        for x, y, (top, bottom) in zip(digits(a, width), digits(b, width), written):
            if x < y and (int(top), int(bottom)) == (y, x):    # the swap, not "1x-y"
                return True
    return False
