"""The manifest of the assignments (assignments/manifest.toml, grader/manifest.py): its errors, and what one more
entry does.

A throwaway fourth assignment (a4_toy: one graded function, squash(x, w) = tanh(x w), its checks in a module outside
course_pkg, its notebook beside the manifest) is added to a copy of the manifest in a temporary folder. With
COURSE_MANIFEST pointing there and nothing else edited, the generic suites (tests/test_assignments.py,
tests/test_assignment_sources.py) test it, and the end-to-end nbgrader run (tests/test_assignments_nbgrader.py, on a
manifest holding only it, to keep the run short) grades it: released, submitted, autograded in the sandbox, fed back.
"""

import os
import pathlib
import subprocess
import sys
import textwrap

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader import manifest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOY = "a4_toy"

TOY_CHECKS = '''\
"""The throwaway assignment's checks: squash(x, w) = tanh(x w), against the reference below."""

import numpy as np

from course_pkg.checks import cases
from course_pkg.checks.core import Mistake, Registry, Spec

BOTH = (np.dtype(np.float64), np.dtype(np.float32))


def squash(x, w):
    """tanh(x w): x (B, D), w (D, H) -> (B, H)."""
    return np.tanh(x @ w)


def make_case(rng, dtype, square=False):
    B, _, D, H = cases.dims(rng, square)
    inputs = {"x": cases.normal(rng, (B, D), dtype), "w": cases.normal(rng, (D, H), dtype)}
    return cases.case(inputs, dtype, B=B, D=D, H=H)


def visible_case():
    return make_case(np.random.default_rng(4), np.dtype(np.float64), square=True)


def run(get, i):
    return (get("squash")(i["x"], i["w"]),)


REGISTRY = Registry("a4_toy")
REGISTRY.add_spec(Spec("squash", squash, make_case, visible_case, run, ("y",)))
REGISTRY.add_mistake(Mistake(
    "toy-no-tanh", "squash", "activation", "the output is the product itself: the squashing function is missing.",
    "apply the hyperbolic tangent to every entry of the product, after the matrix product.",
    {"squash": lambda x, w: x @ w}, BOTH))
check = REGISTRY.check
'''


def _meta(grade_id, grade=False, solution=False, locked=True, points=None):
    meta = {"schema_version": 3, "grade": grade, "solution": solution, "locked": locked, "grade_id": grade_id,
            "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def toy_notebook():
    nb = new_notebook(metadata={"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                                "language_info": {"name": "python"}})
    nb.cells = [
        new_markdown_cell("# Assignment 4 (a throwaway one)\n\nWrite `squash(x, w)`, the hyperbolic tangent of the "
                          "product x w (2 points).\n\n**Read first.** Chapter 2, \"The simple recurrent network\".",
                          metadata=_meta("intro")),
        new_code_cell("import numpy as np\nfrom toy4checks.a4_toy import check", metadata=_meta("setup")),
        new_code_cell("def squash(x, w):\n    \"\"\"tanh(x w): x (B, D), w (D, H) -> (B, H).\"\"\"\n"
                      "    ### BEGIN SOLUTION\n    return np.tanh(x @ w)\n    ### END SOLUTION",
                      metadata=_meta("squash", solution=True, locked=False)),
        new_code_cell('check("squash", globals())', metadata=_meta("test_squash", grade=True, points=2)),
    ]
    for k, cell in enumerate(nb.cells):
        cell["id"] = f"toy-cell-{k}"
    return nb


def write_course_material(folder, keep_course=True):
    """In folder: a manifest (the course's entries if keep_course, then the toy's), source/ (the course's notebooks
    linked, the toy's written) and the toy's checks package. Returns the manifest's path."""
    folder = pathlib.Path(folder)
    (folder / "toy4checks").mkdir(parents=True)
    (folder / "toy4checks" / "__init__.py").write_text('"""The throwaway assignment\'s checks."""\n')
    (folder / "toy4checks" / f"{TOY}.py").write_text(TOY_CHECKS)
    (folder / "source" / TOY).mkdir(parents=True)
    nbformat.write(toy_notebook(), folder / "source" / TOY / f"{TOY}.ipynb")
    text = (ROOT / "assignments" / "manifest.toml").read_text() if keep_course else ""
    if keep_course:
        for a in manifest.assignments(ROOT / "assignments" / "manifest.toml"):
            (folder / "source" / a.id).symlink_to(a.source / a.id)
    text += textwrap.dedent(f"""
        [[assignment]]
        id = "{TOY}"
        title = "A throwaway assignment"
        checks = "toy4checks.{TOY}"
        sandbox_modules = {{ activations = "*" }}
        chapters = ["02_simple_rnn"]
        """)
    (folder / "manifest.toml").write_text(text)
    return folder / "manifest.toml"


def pytest_run(folder, manifest_path, *args, timeout=1800):
    env = dict(os.environ, COURSE_MANIFEST=str(manifest_path),
               PYTHONPATH=os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------- one more entry

def test_a_fourth_assignment_in_the_manifest_is_tested_by_the_generic_suites(tmp_path):
    path = write_course_material(tmp_path)
    assert [a.id for a in manifest.assignments(path)][-1] == TOY
    proc = pytest_run(tmp_path, path, "tests/test_assignments.py", "tests/test_assignment_sources.py", "-k", TOY,
                      "-rA")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    passed = [line for line in proc.stdout.splitlines() if line.startswith("PASSED") and TOY in line]
    # the entry and its notebook, the check, solutions, student version, the mistake, its message, the refusal and
    # the sources' conventions: every generic test has a case for the toy
    assert len(passed) >= 12, proc.stdout[-4000:]
    assert any("toy-no-tanh" in line for line in passed)


def test_a_fourth_assignment_is_graded_end_to_end_with_no_other_edit(tmp_path):
    path = write_course_material(tmp_path, keep_course=False)
    proc = pytest_run(tmp_path, path, "tests/test_assignments_nbgrader.py", "-rA")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    passed = [line for line in proc.stdout.splitlines() if line.startswith("PASSED")]
    assert any("test_solutions_get_full_marks" in line for line in passed), proc.stdout[-3000:]
    assert any(f"test_students_can_validate[{TOY}]" in line for line in passed), proc.stdout[-3000:]


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("text, message", [
    ("", "lists no \\[\\[assignment\\]\\]"),
    ("[[assignment]]\nid = 'x'\ntitle = 'X'\n", "the field 'checks' must be a non-empty string"),
    ("[[assignment]]\nid = 'x'\ntitle = 'X'\nchecks = 'm'\ncolour = 'red'\n", "unknown field\\(s\\) colour"),
    ("[[assignment]]\nid = 'x y'\ntitle = 'X'\nchecks = 'm'\n", "must be letters, digits and underscores"),
    ("[[assignment]]\nid = 'x'\ntitle = 'X'\nchecks = 'm'\n[[assignment]]\nid = 'x'\ntitle = 'Y'\nchecks = 'n'\n",
     "the id\\(s\\) x appear more than once"),
    ("[[assignment]]\nid = 'x'\ntitle = 'X'\nchecks = 'm'\nsandbox_modules = { gradcheck = 3 }\n",
     "sandbox_modules.gradcheck must be"),
    ("[[assignment]\n", "is not valid TOML"),
])
def test_a_manifest_that_cannot_be_used_says_where_and_what(tmp_path, text, message):
    path = tmp_path / "manifest.toml"
    path.write_text(text)
    with pytest.raises(manifest.ManifestError, match=message):
        manifest.assignments(path)


def test_unknown_assignments_checks_and_courses_are_named(tmp_path):
    with pytest.raises(manifest.ManifestError, match="no assignment 'a9' in .*known: a1_rnn, a2_lstm, a3_gru"):
        manifest.get("a9", ROOT / "assignments" / "manifest.toml")
    path = tmp_path / "manifest.toml"
    path.write_text("[[assignment]]\nid = 'x'\ntitle = 'X'\nchecks = 'no_such_module_here'\n")
    with pytest.raises(manifest.ManifestError, match="'no_such_module_here' cannot be imported"):
        manifest.get("x", path).registry
    with pytest.raises(manifest.ManifestError, match="has no manifest.toml"):
        manifest.of_course(tmp_path / "elsewhere")


def test_the_command_lists_the_ids_for_make():
    out = subprocess.run([sys.executable, "-m", "grader.manifest", "ids"], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, COURSE_MANIFEST=""))
    assert out.returncode == 0 and out.stdout.split() == [a.id for a in manifest.assignments()]


def test_make_release_enumerates_the_manifest(tmp_path):
    path = write_course_material(tmp_path)
    env = dict(os.environ, COURSE_MANIFEST=str(path))
    out = subprocess.run(["make", "-n", "release"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if "for a in" in line)
    assert line.split("for a in ")[1].split(";")[0].split() == [a.id for a in manifest.assignments(path)]
