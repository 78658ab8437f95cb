"""
The student copy: the repository with each exercise's body cut out, from the one source.

An exercise is a span of a real file between two marker comments, at the body's indentation:

    def group_advantages(rewards, kind="drgrpo", eps=1e-4):
        \"\"\"...the signature, the conventions, a worked example...\"\"\"
        # exercise: group_advantages
        centred = rewards - rewards.mean(dim=1, keepdim=True)
        ...
        # end of exercise: group_advantages

    python -m course.make DIR      # DIR: a new (or empty) folder

copies every file git tracks into DIR and, in the copy, replaces each body with one line,
`raise NotImplementedError("exercise group_advantages: ...")`. Nothing else changes: the
reference is the repository itself, never a second copy of it. The markers stay, so the grader
(course/grade.py) reads the student's body back from between them, and so can a teacher.

What this deliberately is not: a notebook generator, or a solution file. The open repository
is the solution (docs/course.md says what that means for grading).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN = re.compile(r"^([ \t]*)# exercise: (\w+)[ \t]*$", re.MULTILINE)
SKIP = {".git", "out", "__pycache__", ".venv", ".pytest_cache"}  # when git is not there


def end_marker(name: str) -> str:
    return f"# end of exercise: {name}"


def stub(name: str) -> str:
    """The line a student copy has where the body was."""
    return (f'raise NotImplementedError("exercise {name}: write this body (its handout: '
            f'docs/course.md)")')


def spans(text: str) -> dict[str, tuple[int, int, str]]:
    """Every exercise in a file's text: name -> (start, end, indent), the body being
    text[start:end] (whole lines, between the two markers). A begin marker without its end, or a
    name used twice, is an error naming it."""
    found = {}
    for m in BEGIN.finditer(text):
        indent, name = m.group(1), m.group(2)
        start = m.end() + 1                                          # the line after the marker
        end = text.find("\n" + indent + end_marker(name) + "\n", start - 1) + 1
        if end == 0:
            raise ValueError(f"exercise {name}: no '{end_marker(name)}' line at its indentation")
        if name in found:
            raise ValueError(f"exercise {name} is marked twice")
        found[name] = (start, end, indent)
    return found


def body(text: str, name: str) -> str:
    """The lines between exercise `name`'s markers."""
    start, end, _ = spans(text)[name]
    return text[start:end]


def splice(text: str, name: str, new_body: str) -> str:
    """`text` with exercise `name`'s body replaced by `new_body` (whole lines)."""
    start, end, _ = spans(text)[name]
    return text[:start] + new_body.rstrip("\n") + "\n" + text[end:]


def stubbed(text: str) -> str:
    """A file's text with every exercise's body replaced by its stub (course/exercises.py lists
    the files that hold exercises; only those are read for markers)."""
    for name, (_, _, indent) in sorted(spans(text).items(), key=lambda kv: -kv[1][0]):
        text = splice(text, name, indent + stub(name))               # last first: offsets hold
    return text


def is_stub(text: str, name: str) -> bool:
    """Whether exercise `name` in `text` is still its stub (not attempted)."""
    return body(text, name).strip() == stub(name)


def tracked_files(root: str) -> list[str]:
    """The repository's files, relative to root: git's list, else a walk that leaves out run
    outputs and caches."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True,
                             check=True).stdout.decode()
        return [f for f in out.split("\0") if f and os.path.isfile(os.path.join(root, f))]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIP and not d.endswith(".egg-info"))
            files += [os.path.relpath(os.path.join(folder, n), root) for n in sorted(names)]
        return files


def make(kit: str, root: str = ROOT) -> list[str]:
    """Write the student copy of `root` into `kit` (new or empty); returns the exercises cut."""
    if os.path.exists(kit) and (not os.path.isdir(kit) or os.listdir(kit)):
        raise ValueError(f"{kit} exists and is not an empty folder: nothing was written")
    if os.path.abspath(kit).startswith(os.path.abspath(root) + os.sep):
        raise ValueError(f"{kit} is inside the repository: choose a folder outside it")
    from course.exercises import EXERCISES
    texts = {e.path: open(os.path.join(root, e.path)).read() for e in EXERCISES}
    for e in EXERCISES:                                              # every one marked, first
        if e.name not in spans(texts[e.path]):
            raise ValueError(f"exercise {e.name}: no '# exercise: {e.name}' line in {e.path}")
    for rel in tracked_files(root):
        src, dst = os.path.join(root, rel), os.path.join(kit, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if rel in texts:
            with open(dst, "w") as f:
                f.write(stubbed(texts[rel]))
        else:
            shutil.copy2(src, dst)
    return [e.name for e in EXERCISES]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m course.make",
        description="Write a student copy of the repository: every exercise's body a stub.")
    parser.add_argument("kit", help="a new or empty folder outside the repository")
    args = parser.parse_args(argv)
    try:
        cut = make(args.kit)
    except ValueError as e:
        sys.exit(f"course.make: {e}")
    print(f"{args.kit}: the repository with {len(cut)} exercises cut out: {', '.join(cut)}")
    print(f"grade them from this repository: python -m course.grade --kit {args.kit}")


if __name__ == "__main__":
    main(sys.argv[1:])
