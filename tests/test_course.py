"""The course kit (course/): the student copy made from the repository, every exercise graded
as passing with the reference body, as not attempted with the stub, and every known wrong
version recognised by its own name."""

import os
import subprocess
import sys

import pytest
import torch

from course.checks import differs
from course.exercises import EXERCISES
from course.grade import FAIL, PASS, TODO, Variants, grade
from course.make import ROOT, body, is_stub, make, spans, splice, stub, stubbed


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("kit"))
    make(folder)
    return folder


@pytest.fixture(scope="module")
def variants():
    return Variants()


def put(kit, exercise, new_body):
    """The kit's file with `new_body` for `exercise`."""
    path = os.path.join(kit, exercise.path)
    text = open(path).read()
    with open(path, "w") as f:
        f.write(splice(text, exercise.name, new_body))


def reference_body(exercise):
    return body(open(os.path.join(ROOT, exercise.path)).read(), exercise.name)


def test_splicing_by_hand():
    text = "def f(x):\n    # exercise: f\n    y = x + 1\n    return y\n    # end of exercise: f\n"
    assert body(text, "f") == "    y = x + 1\n    return y\n"
    assert spans(text)["f"][2] == "    "
    assert stubbed(text) == ("def f(x):\n    # exercise: f\n    " + stub("f")
                             + "\n    # end of exercise: f\n")
    assert is_stub(stubbed(text), "f") and not is_stub(text, "f")
    assert splice(stubbed(text), "f", "    return x\n") == text.replace(
        "    y = x + 1\n    return y\n", "    return x\n")
    with pytest.raises(ValueError, match="no '# end of exercise: g'"):
        spans("    # exercise: g\n    pass\n")


def test_the_kit_changes_only_the_bodies(kit):
    for e in EXERCISES:
        reference = open(os.path.join(ROOT, e.path)).read()
        copy = open(os.path.join(kit, e.path)).read()
        assert is_stub(copy, e.name)
        assert splice(copy, e.name, reference_body(e)) == reference or len(spans(reference)) > 1
    assert stubbed(open(os.path.join(ROOT, "model.py")).read()) == open(
        os.path.join(kit, "model.py")).read()
    assert open(os.path.join(ROOT, "train.py")).read() == open(os.path.join(kit, "train.py")).read()
    with pytest.raises(ValueError, match="not an empty folder"):
        make(kit)


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.name)
def test_every_exercise_stub_reference_and_mistakes(exercise, tmp_path, variants):
    """Stub: not attempted, named. Reference body: passes, its properties hold. Each wrong
    version: FAIL, recognised by its own name."""
    folder = str(tmp_path)
    os.makedirs(os.path.join(folder, os.path.dirname(exercise.path)), exist_ok=True)
    text = open(os.path.join(ROOT, exercise.path)).read()
    with open(os.path.join(folder, exercise.path), "w") as f:
        f.write(stubbed(text))
    g = grade(exercise, folder, variants)
    assert (g.exercise, g.status) == (exercise.name, TODO)
    put(folder, exercise, reference_body(exercise))
    g = grade(exercise, folder, variants)
    assert g.status == PASS, g.message
    assert exercise.mistakes
    for mistake in exercise.mistakes:
        put(folder, exercise, mistake.apply(reference_body(exercise)))
        g = grade(exercise, folder, variants)
        assert g.status == FAIL and g.message.startswith(f"looks like {mistake.name}:"), \
            (mistake.name, g.message)


def test_an_unknown_wrong_body_gets_a_property_or_a_difference(tmp_path, variants):
    e = next(e for e in EXERCISES if e.name == "group_advantages")
    os.makedirs(tmp_path / "x")
    with open(tmp_path / e.path, "w") as f:
        f.write(splice(open(os.path.join(ROOT, e.path)).read(), e.name, "    return rewards * 0\n"))
    g = grade(e, str(tmp_path), variants)
    assert g.status == FAIL and "grpo on [1, 0, 0, 1]" in g.message, g.message
    with open(tmp_path / e.path, "w") as f:
        f.write(splice(open(os.path.join(ROOT, e.path)).read(), e.name, "    return 1 / 0\n"))
    g = grade(e, str(tmp_path), variants)
    assert g.status == FAIL and "ZeroDivisionError" in g.message and "1 / 0" in g.message


def test_differs_says_where():
    assert differs({"a": torch.tensor([1.0, 2.0])}, {"a": torch.tensor([1.0, 2.0 + 1e-7])},
                   1e-5, 1e-6) is None
    assert "at a[1]" in differs({"a": torch.tensor([1.0, 2.0])}, {"a": torch.tensor([1.0, 3.0])},
                                1e-5, 1e-6)
    assert differs(torch.tensor([float("nan")]), torch.tensor([float("nan")]), 0, 0) is None
    assert "shape" in differs(torch.zeros(2), torch.zeros(3), 0, 0)
    assert differs([None, "x"], [None, "x"], 0, 0) is None and differs([None], ["1"], 0, 0)


def test_the_command_line(kit):
    """python -m course.grade on the fresh kit: every exercise not attempted, exit status 1; an
    unknown name is a one-line error."""
    run = subprocess.run([sys.executable, "-m", "course.grade", "kl_k3", "--kit", kit],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 1 and "not attempted" in run.stdout and "kl_k3" in run.stdout
    run = subprocess.run([sys.executable, "-m", "course.grade", "nope", "--kit", kit],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 1 and "no exercise nope" in run.stderr


# ------------------------------------------------------------------------------------------------
# labs graded by outcome (course/lab.py)

def test_lab_bands_and_grades_by_hand():
    from course.lab import grade, make_bands
    curves = {"curves": {"accuracy": [0.5, 0.4]}}
    results = {"alone": {1: dict(pretrained=0.5, **{"pass@1": 0.1}, gain=-0.4, proxy_rise=0.3),
                         2: dict(pretrained=0.5, **{"pass@1": 0.2}, gain=-0.3, proxy_rise=0.1)},
               "blend": {1: dict(pretrained=0.5, **{"pass@1": 0.7}, gain=0.2, proxy_rise=0.0),
                         2: dict(pretrained=0.5, **{"pass@1": 0.6}, gain=0.1, proxy_rise=0.0)}}
    for per_seed in results.values():
        for figures in per_seed.values():
            figures.update(curves)
    bands = make_bands("hacking", results)
    assert bands["alone"]["curves"] == {"1": curves["curves"], "2": curves["curves"]}
    assert bands["blend"]["pass@1"]["low"] == pytest.approx(0.55)    # min 0.6 - margin 0.05
    assert bands["alone"]["proxy_rise"]["low"] == pytest.approx(0.05)
    assert bands["alone"]["gain"]["high"] == pytest.approx(-0.25)   # max -0.3 + margin 0.05
    lines = grade("hacking", results, bands)
    assert all(ok for ok, _ in lines) and len(lines) == 2 * 2 + 2 * 2
    student = {"alone": {7: dict(pretrained=0.5, **{"pass@1": 0.6}, gain=0.1, proxy_rise=-0.1)},
               "blend": {7: dict(pretrained=0.5, **{"pass@1": 0.5}, gain=0.0, proxy_rise=0.0)}}
    failed = [line for ok, line in grade("hacking", student, bands) if not ok]
    assert len(failed) == 4 and any("-0.250 or less" in line for line in failed)


def test_the_bug_lab_edits_one_line(tmp_path):
    from course.lab import BUG_ANSWER, LABS, student_tree
    clean = student_tree(LABS["bug"], None, str(tmp_path / "clean"), "verifier")
    bugged = student_tree(LABS["bug"], None, str(tmp_path / "bugged"), "bugged")
    assert clean == bugged == "reference"                  # the arm's name says which
    rel, old, new = LABS["bug"].bug
    a, b = (open(tmp_path / d / rel).read().splitlines() for d in ("clean", "bugged"))
    changed = [(x, y) for x, y in zip(a, b) if x != y]
    assert len(a) == len(b) and len(changed) == 1 and new.strip() in changed[0][1]
    assert f"def {BUG_ANSWER}(" in open(os.path.join(ROOT, rel)).read()


def test_a_lab_runs_the_students_bodies(kit, tmp_path):
    """The grpo lab, quick, on a kit whose six GRPO bodies are the reference's but one, written
    differently and alike in effect: its run directory is named by that body, and the run
    trains and evaluates."""
    from course.lab import LABS
    for name in LABS["grpo"].exercises:
        e = next(e for e in EXERCISES if e.name == name)
        put(kit, e, reference_body(e).replace("rewards.mean(dim=1, keepdim=True)",
                                              "rewards.mean(1, keepdim=True)"))
    run = subprocess.run([sys.executable, "-m", "course.lab", "grpo", "--kit", kit, "--quick",
                          "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "| verifier | 1 |" in run.stdout
    assert os.path.exists(next(tmp_path.glob("kit-*/smoke/verifier/seed1/report.json")))


def test_the_course_page_names_every_exercise_and_wrong_version():
    page = open(os.path.join(ROOT, "docs", "course.md")).read()
    for e in EXERCISES:
        assert f"`{e.name}`" in page, e.name
        for mistake in e.mistakes:
            assert f"`{mistake.name}`" in page, (e.name, mistake.name)
