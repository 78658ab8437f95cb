"""
The grader: each exercise of a student copy checked three ways, with a message that teaches.

    python -m course.grade --kit DIR                        # every exercise, in course order
    python -m course.grade group_advantages kl_k3 --kit DIR # the ones named

For one exercise it takes the student's body from between its markers in DIR, splices it into
this repository's own file (every other body stays the reference's, so an unfinished earlier
exercise never stops a later one), imports that file as a module of its own, and

  1. runs the exercise's probe on it and on the reference, on fixed inputs, and compares
     (course/checks.py: `differs`, at the exercise's tolerance);
  2. on a difference, runs the probe on each known wrong version (the reference body with a
     few edits) and names the one the student's outputs match: "looks like batch_normalised:
     the mean is taken over the whole batch ...";
  3. checks the properties that must hold whatever the inputs (group advantages sum to zero,
     the cache's logits equal the full forward's, ...), which name what broke.

Exit status 0 when every exercise graded passes. The student's code runs in this process, as
it would under pytest: grade copies you trust, or grade inside a container.

What this deliberately is not: a sandbox, or a grader of the training runs (course/labs.py).
"""

import argparse
import importlib.util
import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass

from course.checks import Failed, differs
from course.exercises import EXERCISES, by_name
from course.make import ROOT, body, is_stub, spans, splice

PASS, FAIL, TODO = "pass", "FAIL", "not attempted"


@dataclass
class Grade:
    exercise: str
    status: str                 # pass | FAIL | not attempted
    message: str
    seconds: float


class Variants:
    """Modules made from one reference file with one exercise's body swapped; each written to
    a temporary folder and imported under a name of its own."""

    def __init__(self):
        self.folder = tempfile.TemporaryDirectory(prefix="course-")
        self.count = 0

    def load(self, path: str, text: str):
        self.count += 1
        name = f"_course_{self.count}_{os.path.basename(path)[:-3]}"
        file = os.path.join(self.folder.name, name + ".py")
        with open(file, "w") as f:
            f.write(text)
        spec = importlib.util.spec_from_file_location(name, file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module                                   # dataclasses look it up
        spec.loader.exec_module(module)
        return module


def where_raised(e: Exception) -> str:
    """The exception and the last line of the spliced file it came from."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if "_course_" in f.filename]
    line = f" (at: {frames[-1].line})" if frames and frames[-1].line else ""
    return f"{type(e).__name__}: {e}{line}"


def properties_message(exercise, module) -> str | None:
    for check in exercise.properties:
        try:
            check(module)
        except Failed as e:
            return str(e)
        except Exception as e:                                       # noqa: BLE001 the student's
            return f"{check.__name__.replace('_', ' ')}: raised {where_raised(e)}"
    return None


def grade(exercise, kit: str, variants: Variants) -> Grade:
    """Grade one exercise of the student copy in `kit`."""
    start = time.perf_counter()

    def done(status, message):
        return Grade(exercise.name, status, message, time.perf_counter() - start)

    kit_file = os.path.join(kit, exercise.path)
    if not os.path.isfile(kit_file):
        return done(FAIL, f"{kit_file} is missing: is {kit} a copy made by course.make?")
    kit_text = open(kit_file).read()
    if exercise.name not in spans(kit_text):
        return done(FAIL, f"{exercise.path} in the kit has lost the markers "
                          f"'# exercise: {exercise.name}' ... '# end of exercise: "
                          f"{exercise.name}': put them back around your body")
    if is_stub(kit_text, exercise.name):
        return done(TODO, "its body is still the stub")
    reference_text = open(os.path.join(ROOT, exercise.path)).read()
    reference = variants.load(exercise.path, reference_text)
    expected = exercise.probe(reference)
    try:
        student = variants.load(exercise.path, splice(reference_text, exercise.name,
                                                      body(kit_text, exercise.name)))
        got = exercise.probe(student)
    except NotImplementedError as e:
        return done(TODO, f"it raised NotImplementedError: {e}")
    except Exception as e:                                           # noqa: BLE001 the student's
        return done(FAIL, f"it raised {where_raised(e)}")
    diff = differs(expected, got, exercise.rtol, exercise.atol)
    if diff is None:
        broken = properties_message(exercise, student)
        return done(FAIL, broken) if broken else done(PASS, "")
    reference_body = body(reference_text, exercise.name)
    for mistake in exercise.mistakes:
        wrong = variants.load(exercise.path, splice(reference_text, exercise.name,
                                                    mistake.apply(reference_body)))
        if differs(exercise.probe(wrong), got, exercise.rtol, exercise.atol) is None:
            return done(FAIL, f"looks like {mistake.name}: {mistake.hint}")
    broken = properties_message(exercise, student)
    return done(FAIL, f"{broken}; and on the fixed inputs it {diff}" if broken
                else f"on the fixed inputs it {diff}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m course.grade",
        description="Grade a student copy's exercises (all of them when none is named).")
    parser.add_argument("exercises", nargs="*", help="exercise names, in any order")
    parser.add_argument("--kit", required=True, help="the student copy (python -m course.make)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.exercises if n not in by_name()]
    if unknown:
        sys.exit(f"course.grade: no exercise {', '.join(unknown)}; there are: "
                 f"{', '.join(e.name for e in EXERCISES)}")
    if not os.path.isdir(args.kit):
        sys.exit(f"course.grade: {args.kit} is not a folder: make one with python -m course.make")
    chosen = [by_name()[n] for n in args.exercises] or EXERCISES
    if any(is_stub(open(os.path.join(ROOT, e.path)).read(), e.name) for e in chosen):
        sys.exit(f"course.grade: {ROOT} is itself a student copy (its bodies are stubs): run "
                 f"the grader from the original repository, with --kit pointing here")
    variants, grades = Variants(), []
    for exercise in chosen:
        g = grade(exercise, args.kit, variants)
        grades.append(g)
        print(f"{g.status:>13}  {g.exercise:<18} {g.seconds:5.1f} s  {g.message}".rstrip())
    passed = sum(g.status == PASS for g in grades)
    print(f"{passed} of {len(grades)} passed")
    sys.exit(0 if passed == len(grades) else 1)


if __name__ == "__main__":
    main(sys.argv[1:])
