"""The repository's layout as the README states it: the lesson never imports the lab, and the
README's trace of one prompt points at the lines it names."""

import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def lesson_files() -> list[str]:
    """Every Python file of the lesson and its machinery: the root and data/."""
    return ([f for f in os.listdir(ROOT) if f.endswith(".py")]
            + [os.path.join("data", f) for f in os.listdir(os.path.join(ROOT, "data"))
               if f.endswith(".py")])


def test_the_lesson_never_imports_the_lab_or_the_course():
    lab = ({f[:-3] for f in os.listdir(os.path.join(ROOT, "lab")) if f.endswith(".py")}
           | {f[:-3] for f in os.listdir(os.path.join(ROOT, "course")) if f.endswith(".py")}
           | {"lab", "course"})
    for path in lesson_files():
        tree = ast.parse(open(os.path.join(ROOT, path)).read())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in lab, f"{path} imports {name} from lab/ or course/"


def test_the_readme_trace_points_at_the_lines_it_names():
    """Each hop reads `file:line` `symbol`: that line of that file holds the symbol."""
    readme = open(os.path.join(ROOT, "README.md")).read()
    trace = readme[readme.index("**One prompt, from the corpus to the gradient**"):]
    trace = trace[:trace.index("\n## ")]
    hops = re.findall(r"^\d+\. `([\w/]+\.py):(\d+)` `([^`]+)`", trace, re.MULTILINE)
    assert len(hops) == 10
    for path, line, symbol in hops:
        text = open(os.path.join(ROOT, path)).read().splitlines()[int(line) - 1]
        assert symbol in text, f"README: {path}:{line} does not hold {symbol!r}: {text.strip()!r}"
    for path, line in re.findall(r"\(`([\w/]+\.py):(\d+)`\)", trace):
        text = open(os.path.join(ROOT, path)).read().splitlines()[int(line) - 1]
        assert text.lstrip().startswith(("def ", "class ")), f"README: {path}:{line} is no def"
