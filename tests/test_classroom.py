"""The instructor's machinery on a toy course: autograding a class with broken submissions through the sandbox, the
gradebook, the report, feedback without grader source or secrets, export and re-grading one student
(grader/classroom.py, nbgrader_ext.py, engine.py, assignments/nbgrader_config.py).

The toy course has two graded functions, square (its test cell is worth 2 points) and cube (3 points), on float
arrays. Its checks are a small checks package that this file writes into a temporary folder (toychecks/toy.py: a
course_pkg.checks.core Registry with a Spec per function and one known mistake), named by the toy course's own
manifest.toml (as assignments/manifest.toml names the course's) and importable by the grader through PYTHONPATH; the
sandbox never sees it. Its nbgrader_config.py is the course's with short time limits. As in the real course, the test
cells are never run: the grader calls the student's functions in the sandboxed worker, on the notebook's small
example then on 6 hidden cases (4 float64, 2 float32; the even ones all positive, the odd ones with negative values),
and compares them with the package's references in its own process. The unit tests at the end need no nbgrader run;
the engine's own tests there use a small sandbox pool without TensorFlow.
"""

import copy
import csv
import hashlib
import html
import json
import os
import pathlib
import re
import shutil
import stat
import subprocess
import sys
import textwrap

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from grader import classroom, engine, secret
from grader import nbgrader_ext as ext

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent

CHECKS_PACKAGE = "toychecks"
CHECKS_MARKER = "toy checks: a line of grader source no student may see"
TOY_CHECKS = f'''\
"""The toy course's checks: square and cube of a float array, against the references below."""

import numpy as np

from course_pkg.checks.core import Case, Mistake, Registry, Spec

SOURCE_MARKER = "{CHECKS_MARKER}"


def square(x):
    return x * x


def cube(x):
    return x ** 3


def visible_case():
    return Case({{"x": np.array([1.0, 2.0, 3.0])}}, "float64, n=3 (the notebook's example)")


def make_case(rng, dtype, square):
    """square=True (cases 0, 2, 4): every value positive; otherwise at least one negative value."""
    n = int(rng.integers(2, 6))
    if square:
        x = rng.uniform(0.5, 2.0, n)
        label = f"{{np.dtype(dtype).name}}, n={{n}}, positive"
    else:
        x = rng.uniform(-2.0, 2.0, n)
        x[0] = -0.5 - abs(x[0])
        label = f"{{np.dtype(dtype).name}}, n={{n}}, some negative"
    return Case({{"x": x.astype(dtype)}}, label, np.dtype(dtype))


def runner(name):
    return lambda get, inputs: (get(name)(inputs["x"]),)


REGISTRY = Registry("toy")
REGISTRY.add_spec(Spec("square", square, make_case, visible_case, runner("square"), ("y",)))
REGISTRY.add_spec(Spec("cube", cube, make_case, visible_case, runner("cube"), ("y",)))
REGISTRY.add_mistake(Mistake("toy-negatives-zeroed", "square", None, "negative inputs give 0",
                             "square every element, whatever its sign", {{"square": lambda x: np.where(x > 0, x * x, 0 * x)}}))
'''

TOY_MANIFEST = f"""# the toy course's one assignment (tests/test_classroom.py)
[[assignment]]
id = "toy"
title = "Squares and cubes"
checks = "{CHECKS_PACKAGE}.toy"
"""

TOY_CONFIG = """
# the toy course (tests/test_classroom.py): short time limits (its checks: its manifest.toml)
c.SandboxExecute.cell_timeout = 3
c.SandboxExecute.call_timeout = 2
c.SandboxExecute.notebook_timeout = 60
"""

VISIBLE_LINE = "print('visible part of the test cell: runs only in the student own kernel')"


def _meta(grade_id, grade, solution, locked, points=None):
    meta = {"schema_version": 3, "grade": grade, "solution": solution, "locked": locked, "grade_id": grade_id,
            "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def _test_source(name, expected):
    return (f"x = np.array([1.0, 2.0, 3.0])\nassert np.allclose({name}(x), {expected}), \"{name} of [1, 2, 3]\"\n"
            f"{VISIBLE_LINE}")


def toy_source():
    nb = new_notebook(cells=[
        new_markdown_cell("# Toy assignment\nWrite `square` and `cube` of a float array.",
                          metadata=_meta("intro", False, False, True)),
        new_code_cell("import numpy as np", metadata=_meta("setup", False, False, True)),
        new_code_cell("def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
                      metadata=_meta("square", False, True, False)),
        new_code_cell(_test_source("square", "x * x"), metadata=_meta("test_square", True, False, True, 2)),
        new_code_cell("def cube(x):\n    ### BEGIN SOLUTION\n    return x ** 3\n    ### END SOLUTION",
                      metadata=_meta("cube", False, True, False)),
        new_code_cell(_test_source("cube", "x ** 3"), metadata=_meta("test_cube", True, False, True, 3)),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.validate(nb)
    return nb


def env_with_checks(checks_dir):
    """The environment of the grader's commands: the venv's bin/ first (alembic) and the toy checks importable."""
    path = os.pathsep.join(filter(None, [str(checks_dir), os.environ.get("PYTHONPATH", "")]))
    return dict(os.environ, PATH=os.pathsep.join([str(BIN), os.environ.get("PATH", "")]), PYTHONPATH=path)


def nbgrader(course, env, *args):
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def make_course(root, db_url=None):
    """A toy course folder (the toy assignment released: the gradebook knows it) and, beside it, its checks
    package; db_url: its gradebook's database (default nbgrader's, sqlite:///<course>/gradebook.db). Returns
    (course, the folder to put on PYTHONPATH)."""
    checks = root / "checks"
    (checks / CHECKS_PACKAGE).mkdir(parents=True)
    (checks / CHECKS_PACKAGE / "__init__.py").write_text('"""The toy course\'s checks (one module per assignment)."""\n')
    (checks / CHECKS_PACKAGE / "toy.py").write_text(TOY_CHECKS)
    course = root / "course"
    (course / "source" / "toy").mkdir(parents=True)
    nbformat.write(toy_source(), course / "source" / "toy" / "toy.ipynb")
    config = (ROOT / "assignments" / "nbgrader_config.py").read_text()
    gradebook = f"c.CourseDirectory.db_url = {db_url!r}\n" if db_url else ""
    (course / "nbgrader_config.py").write_text(config + TOY_CONFIG + gradebook)
    (course / "manifest.toml").write_text(TOY_MANIFEST)
    nbgrader(course, env_with_checks(checks), "generate_assignment", "toy")
    return course, checks


STUB = "    # YOUR CODE HERE\n    raise NotImplementedError()"


def fill(nb, after=None, **bodies):
    """A copy of the student version with the bodies of the named functions written in; after: {grade_id: code}
    appended to those cells at top level."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        body = bodies.get(grade_id)
        if body is not None:
            assert STUB in cell.source, cell.source
            cell.source = cell.source.replace(STUB, textwrap.indent(body, "    "))
        if after and grade_id in after:
            cell.source += "\n" + after[grade_id]
    return nb


def without(nb, *grade_ids):
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in grade_ids]
    return nb


def edited(nb, grade_id, source):
    """The cell's source replaced (a student editing a locked cell in a text editor)."""
    nb = copy.deepcopy(nb)
    next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id).source = source
    return nb


def with_duplicate(nb, grade_id):
    """The cell copied right after itself, cell id included (as a text editor or a merge would)."""
    nb = copy.deepcopy(nb)
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    nb.cells.insert(index + 1, copy.deepcopy(nb.cells[index]))
    return nb


GOOD = {"square": "return x * x", "cube": "return x ** 3"}
STUBBORN = "import time\nwhile True:  # swallows the interrupt\n    try:\n        time.sleep(0.05)\n" \
           "    except BaseException:\n        pass"

# student -> (status, score, {grade_id: auto_score}, words the report's reason must contain)
EXPECTED = {
    "good1": (classroom.GRADED, 5, {"test_square": 2, "test_cube": 3}, []),
    "good2": (classroom.GRADED, 5, {"test_square": 2, "test_cube": 3}, []),
    "partial": (classroom.GRADED, 4, {"test_square": 1, "test_cube": 3}, []),
    "wrong_dtype": (classroom.GRADED, 4, {"test_square": 2, "test_cube": 2}, []),
    "hidden_raise": (classroom.GRADED, 3.5, {"test_square": 2, "test_cube": 1.5}, []),
    "blank": (classroom.GRADED, 0, {"test_square": 0, "test_cube": 0}, []),  # the student version, unchanged
    "bad_json": (classroom.NOT_GRADED, 0, {"test_square": 0, "test_cube": 0}, ["toy.ipynb is not valid JSON"]),
    "not_notebook": (classroom.NOT_GRADED, 0, {"test_square": 0, "test_cube": 0},
                     ["toy.ipynb is JSON but not a Jupyter notebook"]),
    "renamed": (classroom.NOT_GRADED, 0, {"test_square": 0, "test_cube": 0},
                ["toy.ipynb missing", "found: toy-Copy1.ipynb"]),
    "deleted_test": (classroom.WITH_PROBLEMS, 5, {"test_square": 2, "test_cube": 3},
                     ["graded cell(s) test_square deleted", "put back"]),
    "deleted_both": (classroom.WITH_PROBLEMS, 3, {"test_square": 0, "test_cube": 3},
                     ["graded cell(s) test_square deleted", "solution cell(s) square deleted"]),
    "duplicated_test": (classroom.WITH_PROBLEMS, 5, {"test_square": 2, "test_cube": 3},
                        ["cell test_square appears 2 times", "last copy was graded"]),
    # a graded function that hangs or crashes fails its check's cases (the cell's report says why); one that had to
    # be stopped or took its worker down is noted in the class report too (one interrupted by its alarm just raised)
    "infinite_loop": (classroom.GRADED, 3, {"test_square": 0, "test_cube": 3}, []),
    "stubborn_loop": (classroom.WITH_PROBLEMS, 3, {"test_square": 0, "test_cube": 3},
                      ["toy.ipynb: square: square did not return", "time limit"]),
    "os_exit": (classroom.WITH_PROBLEMS, 3, {"test_square": 0, "test_cube": 3},
                ["toy.ipynb: square: square did not return", "died"]),
    "segfault": (classroom.WITH_PROBLEMS, 3, {"test_square": 0, "test_cube": 3},
                 ["toy.ipynb: square: square did not return", "died"]),
    # a cell that hangs or kills its worker is noted; square, defined in that cell, survives an interrupted cell
    # but not a killed worker (the new worker runs the earlier cells again, never the one that killed it)
    "cell_loop": (classroom.WITH_PROBLEMS, 5, {"test_square": 2, "test_cube": 3},
                  ["toy.ipynb: square: interrupted after the time limit of 3 s"]),
    "stubborn_cell_loop": (classroom.WITH_PROBLEMS, 3, {"test_square": 0, "test_cube": 3},
                           ["toy.ipynb: square: did not finish within the time limit of 3 s"]),
    "cell_exit": (classroom.WITH_PROBLEMS, 3, {"test_square": 0, "test_cube": 3},
                  ["toy.ipynb: square: the worker process died"]),
    "print_50mb": (classroom.WITH_PROBLEMS, 5, {"test_square": 2, "test_cube": 3},
                   ["output cut to the size limit in square"]),
    "saved_100mb": (classroom.GRADED, 5, {"test_square": 2, "test_cube": 3}, []),
    # a locked test cell edited: nbgrader's checksum finds it and puts the original back; the report says so
    "edited_test": (classroom.WITH_PROBLEMS, 5, {"test_square": 2, "test_cube": 3},
                    ["toy.ipynb: locked cell test_square edited: the original was put back"]),
    # errors and warnings of libraries in ordinary cells, and a syntax error: shown as the student's own, no paths
    "library_raise": (classroom.GRADED, 5, {"test_square": 2, "test_cube": 3}, []),
    "library_warnings": (classroom.GRADED, 5, {"test_square": 2, "test_cube": 3}, []),
    "prints_paths": (classroom.GRADED, 5, {"test_square": 2, "test_cube": 3}, []),
    "syntax_error": (classroom.GRADED, 2, {"test_square": 2, "test_cube": 0}, []),
    # a test cell's points that are not a number: nbgrader itself fails on the notebook; the report says why
    "corrupt_points": (classroom.NOT_GRADED, 0, {"test_square": 0, "test_cube": 0},
                       ["nbgrader failed: ValueError: could not convert string to float: 'three'"]),
}

# student -> {test cell: words its output (the grader's report) must contain}
CELL_REPORTS = {
    "good1": {"test_square": ["6 of 6 hidden checks passed -> 2 of 2 points"],
              "test_cube": ["6 of 6 hidden checks passed -> 3 of 3 points"]},
    "partial": {"test_square": ["3 of 6 hidden checks passed -> 1 of 2 points", "some negative: y differs",
                                "Likely mistake [toy-negatives-zeroed] in square"]},
    "wrong_dtype": {"test_cube": ["4 of 6 hidden checks passed", "expected dtype float32 (the inputs' dtype); got "
                                                                 "float64"]},
    "hidden_raise": {"test_cube": ["3 of 6 hidden checks passed",
                                   "raised ZeroDivisionError: negative input (in cube, line 3"]},
    "blank": {"test_square": ["raised NotImplementedError"], "test_cube": ["raised NotImplementedError"]},
    "deleted_both": {"test_square": ["square is not defined"]},
    "infinite_loop": {"test_square": ["raised TimeLimit: time limit reached (in square"],
                      "test_cube": ["6 of 6 hidden checks passed"]},
    "stubborn_loop": {"test_square": ["did not return: did not finish within the time limit of 2 s"],
                      "test_cube": ["6 of 6 hidden checks passed"]},
    "os_exit": {"test_square": ["did not return: the worker process died"]},
    "segfault": {"test_square": ["did not return: the worker process died"],
                 "test_cube": ["6 of 6 hidden checks passed"]},
    "syntax_error": {"test_cube": ["cube is not defined"]},
}

# student -> {cell (grade_id): words its outputs must contain}: what a student sees of errors and warnings in their
# own cells (the exception and their own line, library files by module path)
OWN_CELL_OUTPUTS = {
    "library_raise": {"square": ["LinAlgError: Singular matrix",
                                 "in the cell, line 3: np.linalg.inv(np.zeros((2, 2)))"]},
    "library_warnings": {"square": ["numpy/_core/", "RuntimeWarning: Mean of empty slice",
                                    "UserWarning: Do not pass an `input_shape`"]},
    "prints_paths": {"square": ["numpy/__init__.py /scratch", "numpy/linalg/", "LinAlgError: Singular matrix"]},
    "syntax_error": {"cube": ["SyntaxError: invalid syntax", "in the cell, line 2: return x ** 3 +"]},
    "cell_loop": {"square": ["CellTimeoutError: interrupted after the time limit of 3 s", "in the cell, line "]},
    "hidden_raise": {"test_cube": ["ZeroDivisionError: negative input (in cube, line 3"]},
}
# the students whose own code prints a traceback (traceback.print_exc()): the word is theirs, the paths are not
PRINTS_A_TRACEBACK = {"prints_paths"}


def write_submissions(course):
    release = nbformat.read(course / "release" / "toy" / "toy.ipynb", as_version=4)
    good = fill(release, **GOOD)
    text = {}
    notebooks = {
        "good1": good,
        "good2": good,
        # a known mistake of the library: 3 of 6 hidden cases have negative values
        "partial": fill(release, square="return np.where(x > 0, x * x, 0 * x)", cube=GOOD["cube"]),
        # float64 results for float32 inputs: the 2 float32 hidden cases fail
        "wrong_dtype": fill(release, square=GOOD["square"], cube="return (x ** 3).astype(np.float64)"),
        "hidden_raise": fill(release, square=GOOD["square"],
                             cube="if np.any(x < 0):\n    raise ZeroDivisionError('negative input')\nreturn x ** 3"),
        "blank": release,
        "deleted_test": without(good, "test_square"),
        "deleted_both": without(good, "square", "test_square"),
        "duplicated_test": with_duplicate(good, "test_square"),
        # endless loops: in a function the grader calls, and in a cell, each also catching the interrupt
        "infinite_loop": fill(release, square="while True:\n    pass", cube=GOOD["cube"]),
        "stubborn_loop": fill(release, square=STUBBORN, cube=GOOD["cube"]),
        "cell_loop": fill(good, after={"square": "while True:\n    pass"}),
        "stubborn_cell_loop": fill(good, after={"square": STUBBORN}),
        # crashes: os._exit and a segmentation fault in a graded function, os._exit in a cell
        "os_exit": fill(release, square="import os\nos._exit(1)", cube=GOOD["cube"]),
        # square crashes its worker on the notebook's example (it holds 3.0); cube is checked in a new worker, in
        # which the earlier cells ran again (it needs the set-up cell's np)
        "segfault": fill(release, square="if np.any(x == 3):\n    import ctypes\n    ctypes.string_at(0)\nreturn x * x",
                         cube="return np.power(x, 3)"),
        "cell_exit": fill(good, after={"square": "import os\nos._exit(1)"}),
        "edited_test": edited(good, "test_square", "assert True  # my own test, easier to pass"),
        "library_raise": fill(good, after={"square": "np.linalg.inv(np.zeros((2, 2)))"}),
        "library_warnings": fill(good, after={"square": "np.mean([])\nimport keras\n"
                                                        "keras.layers.LSTM(2, input_shape=(3, 4))"}),
        "prints_paths": fill(good, after={"square": "import os, traceback\nprint(np.__file__, os.getcwd())\ntry:\n"
                                                    "    np.linalg.inv(np.zeros((2, 2)))\nexcept Exception:\n"
                                                    "    traceback.print_exc()"}),
        "syntax_error": fill(release, square=GOOD["square"], cube="return x ** 3 +"),
    }
    big = fill(release, **GOOD)
    big.cells[2].source = "print('x' * 50_000_000)  # one line of 50 MB\n" + big.cells[2].source
    notebooks["print_50mb"] = big
    saved = copy.deepcopy(good)
    saved.cells[2].outputs = [new_output("stream", name="stdout", text="y" * 100_000_000)]
    saved.cells[2].execution_count = 1
    notebooks["saved_100mb"] = saved
    text["bad_json"] = json.dumps(good)[:-40]
    text["not_notebook"] = json.dumps({"student": "not_notebook", "answers": [1, 2]})
    text["duplicated_test"] = json.dumps(notebooks.pop("duplicated_test"), indent=1)  # (nbformat.write renames ids)
    corrupt = copy.deepcopy(good)
    next(c for c in corrupt.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_cube") \
        .metadata.nbgrader["points"] = "three"
    text["corrupt_points"] = json.dumps(corrupt)
    for student, nb in notebooks.items():
        folder = course / "submitted" / student / "toy"
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / "toy.ipynb")
    for student, content in text.items():
        folder = course / "submitted" / student / "toy"
        folder.mkdir(parents=True)
        (folder / "toy.ipynb").write_text(content)
    renamed = course / "submitted" / "renamed" / "toy"
    renamed.mkdir(parents=True)
    nbformat.write(good, renamed / "toy-Copy1.ipynb")


def fingerprint(folder):
    """path -> (sha256, size, mtime) of every file under folder."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size,
                                         p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


ABSENT = "absent"  # a student of the gradebook who submits nothing
UNSUBMITTED = "a0_intro"  # an assignment of the gradebook nobody submits (sorts before toy)


def autograde_command(course, *args):
    return [sys.executable, "-m", "grader.classroom", "autograde", "--course", str(course), "--jobs", "2", *args]


def db_url(course):
    """The course's gradebook database (its nbgrader_config.py's db_url)."""
    return classroom.Course.load(course).coursedir.db_url


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL server (tests/pg_server.py) for this module's gradebooks."""
    from pg_server import PostgresServer

    with PostgresServer() as server:
        yield server


# every end-to-end test below runs twice: the gradebook in SQLite (nbgrader's default) and in PostgreSQL
@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def graded(request, tmp_path_factory):
    """The toy class, autograded by the classroom driver (2 sandbox slots), then given feedback; its gradebook in
    SQLite or in a PostgreSQL database of a throwaway server."""
    url = request.getfixturevalue("postgres").create_database("toy") if request.param == "postgresql" else None
    course, checks = make_course(tmp_path_factory.mktemp("toy"), url)
    env = env_with_checks(checks)
    write_submissions(course)
    from nbgrader.api import Gradebook

    assert db_url(course).startswith(request.param)
    with Gradebook(db_url(course), "rnn-course") as gb:  # as `nbgrader db ... add` would
        gb.update_or_create_student(ABSENT, last_name="Doe", first_name="Ann", email="ann.doe@example.org")
        gb.update_or_create_assignment(UNSUBMITTED, duedate="2026-01-15 12:00:00")
    before = fingerprint(course / "submitted")
    config_before = fingerprint(course / "source") | {"nbgrader_config.py": fingerprint(course)["nbgrader_config.py"]}
    proc = subprocess.run(autograde_command(course), cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"autograde failed:\n{proc.stdout}\n{proc.stderr}"
    feedback = subprocess.run([sys.executable, "-m", "grader.classroom", "feedback", "--course", str(course)],
                              env=env, capture_output=True, text=True, timeout=600)
    with open(course / "autograded" / classroom.REPORT_NAME, newline="") as fh:
        report = {row["student"]: row for row in csv.DictReader(fh)}
    return {"course": course, "checks": checks, "env": env, "before": before, "config_before": config_before,
            "stdout": proc.stdout, "stderr": proc.stderr, "report": report, "feedback": feedback}


def gradebook_view(course):
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url(course), "rnn-course") as gb:
        view = {}
        for student in gb.students:
            try:
                submission = gb.find_submission("toy", student.id)
            except MissingEntry:
                continue
            nb = submission.notebooks[0]
            view[student.id] = {
                "score": submission.score,
                "grades": {g.name: (g.auto_score, g.needs_manual_grade) for g in nb.grades},
                "comments": {c.name: c.comment for c in nb.comments},
                "flagged": nb.flagged,
            }
        return view


def cell_outputs(course, student):
    """grade_id (or cell index) -> the text of the cell's outputs, in the autograded notebook."""
    nb = nbformat.read(course / "autograded" / student / "toy" / "toy.ipynb", as_version=4)
    return {c.metadata.get("nbgrader", {}).get("grade_id") or index: json.loads(json.dumps(c.outputs))
            for index, c in enumerate(nb.cells) if c.cell_type == "code"}


def output_text(outputs):
    parts = []
    for out in outputs:
        parts += [out.get("text", ""), out.get("evalue", ""), *out.get("traceback", []),
                  *[v for v in out.get("data", {}).values() if isinstance(v, str)]]
    return "\n".join(parts)


def test_every_submission_is_in_the_report_with_its_status_score_and_reason(graded):
    report = graded["report"]
    assert set(report) == set(EXPECTED), graded["stdout"]
    for student, (status, score, _, words) in EXPECTED.items():
        row = report[student]
        assert (row["assignment"], row["status"], float(row["score"]), float(row["max_score"])) == \
            ("toy", status, score, 5.0), f"{student}: {row}"
        for word in words:
            assert word in row["reason"], f"{student}: {word!r} not in the reason {row['reason']!r}"
        if status == classroom.GRADED:
            assert row["reason"] == "", f"{student}: {row}"


def test_the_gradebook_holds_every_grade_exactly(graded):
    # (in PostgreSQL, nothing in a SQLite file beside it)
    assert (graded["course"] / "gradebook.db").exists() == db_url(graded["course"]).startswith("sqlite:")
    view = gradebook_view(graded["course"])
    assert set(view) == set(EXPECTED)
    for student, (status, score, grades, _) in EXPECTED.items():
        got = view[student]
        assert got["score"] == score, f"{student}: {got}"
        assert got["grades"] == {k: (float(v), False) for k, v in grades.items()}, f"{student}: {got}"
        assert got["flagged"] == (status != classroom.GRADED), f"{student}: {got}"
        if status == classroom.NOT_GRADED:
            reason = graded["report"][student]["reason"]
            assert got["comments"] == {"square": f"Not graded: {reason}", "cube": f"Not graded: {reason}"}
        else:  # nbgrader's own comments ("No response." for an unchanged solution cell)
            assert not any((c or "").startswith("Not graded") for c in got["comments"].values()), f"{student}: {got}"


def test_test_cells_are_scored_by_the_grader_and_never_run(graded):
    """Each test cell's outputs are the grader's report and score; the cell's own code (the notebook's visible
    self-check) never ran: its print is nowhere."""
    course = graded["course"]
    for student, (status, *_rest) in EXPECTED.items():
        if status == classroom.NOT_GRADED:
            continue
        outputs = cell_outputs(course, student)
        for grade_id in ("test_square", "test_cube"):  # (a duplicated copy, no longer a test cell, ran: see below)
            assert VISIBLE_LINE.split("'")[1] not in json.dumps(outputs[grade_id]), (student, grade_id)
        for grade_id, words in CELL_REPORTS.get(student, {}).items():
            text = output_text(outputs[grade_id])
            for word in words:
                assert word in text, f"{student} {grade_id}: {word!r} not in\n{text}"
        if student == "duplicated_test":
            copy_outputs = [v for k, v in outputs.items() if isinstance(k, int)]
            assert VISIBLE_LINE.split("'")[1] in json.dumps(copy_outputs)
        for grade_id in ("test_square", "test_cube"):
            text = output_text(outputs[grade_id])
            for leak in ("Traceback", 'File "', "grader/", ".py", str(ROOT), CHECKS_PACKAGE):
                assert leak not in text, f"{student} {grade_id}: {leak!r} in\n{text}"


def test_files_are_never_modified_and_the_secret_is_the_instructors(graded):
    """Submitted files, the source and the configuration are only read; the hidden cases' secret was made on first
    use, in the course folder, readable by the instructor only."""
    course = graded["course"]
    assert fingerprint(course / "submitted") == graded["before"]
    now = fingerprint(course / "source") | {"nbgrader_config.py": fingerprint(course)["nbgrader_config.py"]}
    assert now == graded["config_before"]
    path = secret.path(course)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(secret.load(course, create=False)) == 32


def test_the_summary_names_each_problem(graded):
    out = graded["stdout"]
    assert f"Autograded {len(EXPECTED)} submission(s) of {len(EXPECTED)} student(s)" in out, out
    assert "Sandbox pool: 2 slot(s) ready" in out, out
    statuses = [status for status, *_rest in EXPECTED.values()]
    counts = [statuses.count(s) for s in (classroom.GRADED, classroom.WITH_PROBLEMS, classroom.NOT_GRADED)]
    assert "{} graded, {} graded with problems, {} not graded".format(*counts) in out, out
    for student, (status, *_rest) in EXPECTED.items():
        assert (f"  {student} / toy: {status}" in out) == (status != classroom.GRADED), (student, out)


def test_enormous_outputs_are_cut_in_the_autograded_notebook(graded):
    autograded = graded["course"] / "autograded"
    for student in ("print_50mb", "saved_100mb"):
        path = autograded / student / "toy" / "toy.ipynb"
        assert path.stat().st_size < 100_000, (student, path.stat().st_size)
        feedback = graded["course"] / "feedback" / student / "toy" / "toy.html"
        assert feedback.stat().st_size < 1_000_000, (student, feedback.stat().st_size)
    text = output_text(cell_outputs(graded["course"], "print_50mb")["square"])
    assert text.startswith("x" * 1000) and ext.CUT_MARK in text, text[:200]


def page_text(path):
    """The text a reader sees in an HTML page (code is split into highlighted spans: tags, styles and scripts
    removed)."""
    text = re.sub(r"<(script|style)\b.*?</\1>", "", path.read_text(), flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def _feedback_text(graded, student):
    path = graded["course"] / "feedback" / student / "toy" / "toy.html"
    assert path.exists(), graded["feedback"].stdout + graded["feedback"].stderr
    return page_text(path)


def test_feedback_shows_the_report_but_no_grader_source_secret_or_path(graded):
    assert graded["feedback"].returncode == 0, graded["feedback"].stdout + graded["feedback"].stderr
    course = graded["course"]
    key = secret.load(course, create=False)
    # (a traceback of the student's own cell may be shown: its frames are '<ipython-input-...>', never a file)
    private = [CHECKS_MARKER, key.hex(), str(secret.seed(key, "toy", "square")), str(secret.seed(key, "toy", "cube")),
               str(course), str(graded["checks"]), str(ROOT), 'File "/', "grader/", "HIDDEN TESTS"]
    graded_students = [s for s, (status, *_rest) in EXPECTED.items() if status != classroom.NOT_GRADED]
    for student in graded_students:
        text = _feedback_text(graded, student)
        for line in private:
            assert line not in text, f"{student}: {line!r} in the feedback"
    text = _feedback_text(graded, "partial")
    assert "square: 3 of 6 hidden checks passed -> 1 of 2 points" in text
    assert "Likely mistake [toy-negatives-zeroed] in square: negative inputs give 0" in text
    assert "toy (Score: 4.0 / 5.0)" in text


def test_feedback_of_a_function_that_raises_shows_the_error_not_a_traceback(graded):
    text = _feedback_text(graded, "hidden_raise")
    assert "ZeroDivisionError: negative input (in cube, line 3: raise ZeroDivisionError('negative input'))" in text
    assert "Traceback (most recent call last)" not in text and "---->" not in text


def _private_paths(graded):
    """The grading machine's folders, none of which a student may see."""
    venv = pathlib.Path(sys.prefix)
    return sorted({str(graded["course"]), str(graded["checks"]), str(ROOT), str(venv), str(venv.resolve()),
                   sys.base_prefix, os.path.expanduser("~"), "/tmp/", 'File "/'}, key=len, reverse=True)


def test_no_traceback_or_machine_path_in_autograded_notebooks_or_feedback(graded):
    """Every graded submission's autograded notebook (each cell's outputs) and feedback page: no traceback, no file
    of the grader or a library named by its path, no folder of the grading machine, whether the student's code
    failed, crashed, timed out, raised in a library, made a library warn or printed a module's path. What a student
    sees of an error in their own cell is the exception and their own line."""
    course = graded["course"]
    private = _private_paths(graded)
    for student, (status, *_rest) in EXPECTED.items():
        if status == classroom.NOT_GRADED:
            continue
        nb = nbformat.read(course / "autograded" / student / "toy" / "toy.ipynb", as_version=4)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            where = f"{student}, cell {cell.metadata.get('nbgrader', {}).get('grade_id') or index}"
            outputs = json.loads(json.dumps(cell.outputs))
            text = output_text(outputs)
            for path in private:
                assert path not in text, f"{where}: {path!r} in\n{text}"
            own_prints = student in PRINTS_A_TRACEBACK and not is_test_cell(cell)
            shown = output_text([o for o in outputs if not (own_prints and o["output_type"] == "stream")])
            assert "Traceback" not in shown, f"{where}: a traceback in\n{shown}"
        page = _feedback_text(graded, student)
        for path in private:
            assert path not in page, f"{student}: {path!r} in the feedback"
        if student not in PRINTS_A_TRACEBACK:
            assert "Traceback" not in page, f"{student}: a traceback in the feedback"
    for student, cells in OWN_CELL_OUTPUTS.items():
        outputs, page = cell_outputs(course, student), _feedback_text(graded, student)
        for grade_id, words in cells.items():
            text = output_text(outputs[grade_id])
            for word in words:
                assert word in text, f"{student} {grade_id}: {word!r} not in\n{text}"
                assert word in page, f"{student}: {word!r} not in the feedback"


def is_test_cell(cell):
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def test_an_edited_locked_cell_is_put_back_and_reported(graded):
    """nbgrader's protection of locked cells keeps working: the edited test cell's source is the original again in
    the autograded notebook (and the grader scored it as usual); the log names the cell; the report's reason says
    so (see EXPECTED)."""
    course = graded["course"]
    release = nbformat.read(course / "release" / "toy" / "toy.ipynb", as_version=4)
    original = next(c.source for c in release.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_square")
    nb = nbformat.read(course / "autograded" / "edited_test" / "toy" / "toy.ipynb", as_version=4)
    assert next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_square") \
        == original
    blocks = _log_blocks(course)
    assert any("Attribute 'checksum' for cell test_square has changed" in line for line in blocks["edited_test"])


def _log_blocks(course):
    """{student: the lines of their blocks} of autograded/autograde.log (every run)."""
    blocks, student = {}, None
    for line in (course / "autograded" / classroom.LOG_NAME).read_text().splitlines():
        if line.startswith("== "):
            student = line[3:].split(" / ")[0]
        elif line.startswith("# autograde "):
            student = None
        elif student:
            blocks.setdefault(student, []).append(line)
    return blocks


def test_the_logs_have_no_checksum_or_sqlalchemy_warning(graded):
    """The grading's own output and nbgrader's log per submission: no SQLAlchemy warning, no changed checksum but
    the edited cell's, no warning at all for a submission nothing was wrong with; feedback (nbgrader's own command
    too) without warnings either."""
    course = graded["course"]
    assert "Warning" not in graded["stderr"], graded["stderr"]
    assert "SAWarning" not in graded["stdout"], graded["stdout"]
    blocks = _log_blocks(course)
    assert "SAWarning" not in (course / "autograded" / classroom.LOG_NAME).read_text()
    for student, lines in blocks.items():
        if student != "edited_test":
            assert not any("checksum" in line for line in lines), (student, lines)
    for student in ("good1", "good2", "partial", "blank", "library_warnings"):
        assert student not in blocks, (student, blocks.get(student))
    assert "corrupt_points" in blocks  # (nbgrader's error and its traceback are the instructor's)
    feedback = graded["feedback"]
    assert "Warning" not in feedback.stdout + feedback.stderr, feedback.stdout + feedback.stderr
    proc = nbgrader(course, graded["env"], "generate_feedback", "toy", "--student", "good1", "--force")
    warnings = [line for line in (proc.stdout + proc.stderr).splitlines()
                if ("WARNING" in line or "Warning" in line) and "Removing existing assignment" not in line]
    assert not warnings, warnings


def _grades(graded, name):
    target = graded["course"] / "export" / name
    target.parent.mkdir(exist_ok=True)
    assert classroom.main(["grades", "--course", str(graded["course"]), "--to", str(target)]) == 0
    with open(target, newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


def test_grades_have_a_row_per_student_and_assignment_sorted_with_a_status(graded):
    """grades.csv: nbgrader export's columns and status; every student of the gradebook has a row for every
    assignment, sorted by student then assignment; a graded submission (with problems or not) says graded with its
    score; one that could not be graded says why, with its recorded 0; no submission says so, with empty scores."""
    fields, rows = _grades(graded, "grades.csv")
    assert fields == ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
                      "raw_score", "late_submission_penalty", "score", "max_score", "status"]
    students = sorted([*EXPECTED, ABSENT])
    assert [(r["student_id"], r["assignment"]) for r in rows] == [(s, a) for s in students
                                                                  for a in (UNSUBMITTED, "toy")]
    by_key = {(r["student_id"], r["assignment"]): r for r in rows}
    for student, (status, score, _, _) in EXPECTED.items():
        row = by_key[(student, "toy")]
        assert float(row["score"]) == float(row["raw_score"]) == score and row["max_score"] == "5.0", row
        if status == classroom.NOT_GRADED:
            assert row["status"] == f"not graded: {graded['report'][student]['reason']}", row
        else:
            assert row["status"] == "graded", row
    assert by_key[("corrupt_points", "toy")]["status"] == \
        "not graded: nbgrader failed: ValueError: could not convert string to float: 'three'"
    assert by_key[("renamed", "toy")]["status"].startswith("not graded: toy.ipynb missing (found: toy-Copy1.ipynb)")
    for student in students:
        row = by_key[(student, UNSUBMITTED)]
        assert row["status"] == "not submitted" and row["duedate"] == "2026-01-15 12:00:00", row
        assert row["raw_score"] == row["late_submission_penalty"] == row["score"] == row["timestamp"] == "", row
    absent = by_key[(ABSENT, "toy")]
    assert (absent["status"], absent["score"], absent["max_score"]) == ("not submitted", "", "5.0"), absent
    assert (absent["last_name"], absent["first_name"], absent["email"]) == ("Doe", "Ann", "ann.doe@example.org")


def test_grades_say_when_a_submission_was_not_autograded_yet(graded):
    """A notebook handed in after the last autograde run: not graded yet, no score (not a 0, not "not submitted");
    the alias `export` writes the same file."""
    course = graded["course"]
    folder = course / "submitted" / "newcomer" / "toy"
    folder.mkdir(parents=True)
    try:
        shutil.copy(course / "submitted" / "good1" / "toy" / "toy.ipynb", folder / "toy.ipynb")
        _, rows = _grades(graded, "grades_newcomer.csv")
        target = course / "export" / "grades_alias.csv"
        assert classroom.main(["export", "--course", str(course), "--to", str(target)]) == 0
        assert target.read_text() == (course / "export" / "grades_newcomer.csv").read_text()
    finally:
        shutil.rmtree(folder.parent)
    by_key = {(r["student_id"], r["assignment"]): r for r in rows}
    assert by_key[("newcomer", "toy")]["status"] == "not graded: not autograded yet"
    assert by_key[("newcomer", "toy")]["score"] == ""
    assert by_key[("newcomer", UNSUBMITTED)]["status"] == "not submitted"


def test_grading_one_student_again_leaves_the_others_intact(graded):
    """A second run on one assignment's subset: the report keeps the other rows, the gradebook the other grades, and
    the student graded again gets the same hidden cases (the course secret) and so the same grades."""
    course = graded["course"]
    before = gradebook_view(course)
    keep = course / "submitted"
    moved = course / "submitted_aside"
    moved.mkdir()
    for student in EXPECTED:
        if student != "partial":
            shutil.move(str(keep / student), str(moved / student))
    try:
        proc = subprocess.run(autograde_command(course, "--assignment", "toy", "--timeout", "3",
                                                "--submission-timeout", "60"),
                              env=graded["env"], capture_output=True, text=True, timeout=600)
    finally:
        for folder in moved.iterdir():
            shutil.move(str(folder), str(keep / folder.name))
        moved.rmdir()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Autograded 1 submission(s) of 1 student(s)" in proc.stdout, proc.stdout
    assert gradebook_view(course) == before
    with open(course / "autograded" / classroom.REPORT_NAME, newline="") as fh:
        assert {row["student"] for row in csv.DictReader(fh)} == set(EXPECTED)


# ---------------------------------------------------------------------------------------------------------------
# Unit tests (no nbgrader run)


def test_split_hidden_removes_the_region_and_returns_its_lines():
    kept, hidden = ext.split_hidden("a\n### BEGIN HIDDEN TESTS\nb\nc\n### END HIDDEN TESTS\nd")
    assert (kept, hidden) == ("a\nd", ["b", "c"])
    kept, hidden = ext.split_hidden("a\n### BEGIN HIDDEN TESTS\nb")  # unclosed: hidden to the end
    assert (kept, hidden) == ("a", ["b"])


def test_hide_hidden_tests_keeps_report_and_score_and_drops_hidden_lines_everywhere():
    nb = new_notebook(cells=[
        new_code_cell("check()\n### BEGIN HIDDEN TESTS\n_grade('f', seed=123456789)\n### END HIDDEN TESTS",
                      outputs=[new_output("stream", name="stdout", text="report: 3 of 4\n"),
                               new_output("error", ename="AssertionError", evalue="f: wrong sign",
                                          traceback=["\x1b[0;31mTraceback\x1b[0m", "----> 3 \x1b[0m_grade('f', "
                                                     "seed=123456789)", "AssertionError: f: wrong sign"])]),
        new_code_cell("other()", outputs=[
            new_output("stream", name="stderr", text="warning at _grade('f', seed=123456789)\nkept line\n"),
            new_output("execute_result", data={"text/plain": "1.5"}, execution_count=2)]),
    ])
    nb, _ = ext.HideHiddenTests().preprocess(nb, {})
    assert nb.cells[0].source == "check()"
    assert nb.cells[0].outputs[0].text == "report: 3 of 4\n"
    assert nb.cells[0].outputs[1].traceback == ["AssertionError: f: wrong sign"]
    assert nb.cells[1].outputs[0].text == "kept line\n"
    assert nb.cells[1].outputs[1].data["text/plain"] == "1.5"
    assert "123456789" not in json.dumps(nb)


def test_shrink_outputs_keeps_both_ends_and_never_drops_what_decides_the_score():
    outputs = [new_output("stream", name="stdout", text="head " + "x" * 50_000 + " tail"),
               *[new_output("display_data", data={"text/plain": "d" * 3000}) for _ in range(20)],
               new_output("stream", name="stderr", text="warn"),
               new_output("execute_result", data={"text/plain": "2.0"}, execution_count=1),
               new_output("error", ename="ValueError", evalue="v" * 30_000, traceback=["t"])]
    shrunk = ext.shrink_outputs(copy.deepcopy(outputs), 10_000)
    kinds = [(o.output_type, o.get("name")) for o in shrunk]
    assert ("stream", "stderr") in kinds and ("execute_result", None) in kinds and ("error", None) in kinds
    stdout = shrunk[0].text
    assert stdout.startswith("head ") and stdout.endswith(" tail") and ext.CUT_MARK in stdout
    assert sum(ext._out_size(o) for o in shrunk) < 2 * 10_000
    small = [new_output("stream", name="stdout", text="a\n"), new_output("stream", name="stdout", text="b\n")]
    assert [o.text for o in ext.shrink_outputs(small, 10_000)] == ["a\nb\n"]


def test_shrink_outputs_limits_lines_keeping_the_last_ones():
    text = "\n".join(f"line {i}" for i in range(5000))
    out = ext.shrink_outputs([new_output("stream", name="stdout", text=text)], 10**9, max_lines=100)[0]
    lines = out.text.split("\n")
    assert len(lines) == 101 and lines[0] == "line 0" and lines[-1] == "line 4999"


def test_keep_last_duplicate_leaves_valid_metadata():
    from nbgrader.nbgraderformat import MetadataValidator

    nb = with_duplicate(fill(toy_source_student(), **GOOD), "test_square")
    nb, _ = ext.KeepLastDuplicate().preprocess(nb, {})
    MetadataValidator().validate_nb(nb)  # stock DeduplicateIds leaves {}: SchemaTooOldError here
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    assert ids.count("test_square") == 1 and ids.index("test_square") == 4  # the last copy keeps the id


def toy_source_student():
    """The toy's student version, built in-process (solution regions replaced as nbgrader does)."""
    nb = toy_source()
    for cell in nb.cells:
        if "### BEGIN SOLUTION" in cell.source:
            cell.source = cell.source.split("    ### BEGIN SOLUTION\n")[0] + STUB
    return nb


# The engine on a sandbox pool of this process (one slot, no TensorFlow: it starts in about a second)


@pytest.fixture(scope="module")
def slot():
    from grader.sandbox import Pool

    pool = Pool(1, preload=()).start()
    try:
        with pool.acquire() as one:
            yield one
    finally:
        pool.stop()


@pytest.fixture(scope="module")
def toy_registry(tmp_path_factory):
    import importlib.util

    path = tmp_path_factory.mktemp("toychecks") / "toy.py"
    path.write_text(TOY_CHECKS)
    spec = importlib.util.spec_from_file_location("toychecks_unit.toy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.REGISTRY


def _grade(slot, cells, registry=None, **limits):
    nb = new_notebook(cells=[c if isinstance(c, nbformat.NotebookNode) else new_code_cell(c) for c in cells])
    engine.grade_notebook(nb, "toy", registry, slot, lambda key: secret.seed(b"unit tests", "toy", key),
                          engine.Limits(**limits))
    return nb


def _errors(cell):
    return [(o.ename, o.evalue) for o in cell.outputs if o.output_type == "error"]


def test_engine_starts_a_new_worker_and_runs_the_earlier_cells_again(slot):
    nb = _grade(slot, ["def f():\n    return 41", "print('before')", "import os\nos._exit(1)", "print(f() + 1)"])
    assert _errors(nb.cells[2]) == [(engine.KERNEL_DIED, "the worker process died (crashed, exited or ran out of "
                                                         "memory)")]
    assert nb.cells[3].outputs[0].text == "42\n"  # f was defined again in the new worker
    assert nb.cells[1].outputs[0].text == "before\n"  # (the replay's outputs are not kept)


def test_engine_stops_after_max_restarts_and_after_the_time_budget(slot):
    nb = _grade(slot, ["import os\nos._exit(1)", "import os\nos._exit(1)", "print('never')"], max_restarts=1)
    assert _errors(nb.cells[2]) == [(engine.NOT_RUN, "no new worker: 1 already replaced a dead one")]
    nb = _grade(slot, ["import time\ntime.sleep(30)", "print('never')"], notebook_seconds=2, cell_seconds=3)
    assert _errors(nb.cells[0]) == [(engine.CELL_TIMEOUT, "interrupted after the time limit of 3 s")]
    assert _errors(nb.cells[1]) == [(engine.NOT_RUN, "not run: the notebook's time budget of 2 s was spent")]


def test_engine_keeps_little_of_an_endless_print_loop_and_the_report_notes_it(slot, tmp_path):
    nb = _grade(slot, ["while True:\n    print('spam' * 1000)"], cell_seconds=1)
    text = "".join(o.text for o in nb.cells[0].outputs if o.output_type == "stream")
    assert len(text) < 3 * engine.OUTPUT_CHARS and ext.CUT_MARK in text and text.startswith("spam")
    assert _errors(nb.cells[0]) == [(engine.CELL_TIMEOUT, "interrupted after the time limit of 1 s")]
    nbformat.write(nb, tmp_path / "toy.ipynb")
    assert classroom.notebook_notes(tmp_path / "toy.ipynb") == [
        "toy.ipynb: cell 1: interrupted after the time limit of 1 s", "toy.ipynb: output cut to the size limit in "
                                                                        "cell 1"]


def test_engine_scores_test_cells_without_running_them(slot, toy_registry):
    student = fill(toy_source_student(), square="return np.where(x > 0, x * x, 0 * x)", cube=GOOD["cube"])
    student.cells[3].source += "\nraise SystemExit('a test cell must never run')"
    nb = _grade(slot, student.cells, toy_registry)
    report = output_text(nb.cells[3].outputs)
    assert "square: 3 of 6 hidden checks passed -> 1 of 2 points" in report, report
    assert "[toy-negatives-zeroed]" in report and "never run" not in report
    assert nb.cells[3].outputs[-1].data["text/plain"] == "1.0"  # nbgrader's partial credit
    assert nb.cells[5].outputs[-1].data["text/plain"] == "3.0"


# Clean reports: the unit parts


def test_path_scrubber_shortens_library_files_and_hides_the_machines_folders(tmp_path):
    import sysconfig

    course = tmp_path / "course"
    scrub = ext.PathScrubber([course])
    purelib = sysconfig.get_paths()["purelib"]
    stdlib = sysconfig.get_paths()["stdlib"]
    assert scrub(f"{purelib}/numpy/_core/_methods.py:142: RuntimeWarning: x") == \
        "numpy/_core/_methods.py:142: RuntimeWarning: x"
    assert scrub(f'  File "{stdlib}/json/decoder.py", line 3') == '  File "json/decoder.py", line 3'
    assert scrub(f"{sys.prefix}/bin/python") == "<python>/bin/python"
    assert scrub(f"open {course}/submitted/x") == "open <course>/submitted/x"
    assert scrub(f"{ROOT}/grader/engine.py") in ("<course>/grader/engine.py", "grader/engine.py")  # (on sys.path)
    assert scrub(f"{course}frame/x") == f"{course}frame/x"  # whole path components only
    assert scrub(os.path.expanduser("~") + "/notes.txt") == "~/notes.txt"
    assert scrub("/tmp/grader-scratch-a1b2_c/data.npy") == "/scratch/data.npy"  # a worker without the sandbox
    assert scrub("/usr/bin/env and /scratch/mine") == "/usr/bin/env and /scratch/mine"  # not the instructor's
    out = new_output("error", ename="OSError", evalue=f"{course}/x", traceback=[f"OSError: {course}/x"])
    assert scrub.output(out).traceback == ["OSError: <course>/x"] and out.evalue == "<course>/x"


def test_hide_hidden_tests_scrubs_paths_in_the_feedback():
    nb = new_notebook(cells=[new_code_cell("x", outputs=[
        new_output("stream", name="stderr", text=f"{sys.prefix}/lib/site.py:1: UserWarning: w\n")])])
    nb, _ = ext.HideHiddenTests().preprocess(nb, {})
    assert sys.prefix not in nb.cells[0].outputs[0].text


def test_log_notes_name_what_nbgrader_put_back_in_which_notebook():
    lines = ["[INFO] Sanitizing /c/submitted/s/toy/toy.ipynb",
             "[WARNING] Attribute 'checksum' for cell test_square has changed! (should be: 1ab, got: 2cd)",
             "[WARNING] Attribute 'points' for cell test_cube has changed! (should be: 3.0, got: 30.0)",
             "[WARNING] Cell 'mine' does not exist in the database",
             "[WARNING] Removing existing assignment: /c/autograded/s/toy"]
    assert classroom.log_notes(lines) == [
        "toy.ipynb: locked cell test_square edited: the original was put back",
        "toy.ipynb: cell test_cube: points changed from 3.0 to 30.0: set back to 3.0",
        "toy.ipynb: cell mine is not a cell of the assignment: run as an ordinary cell"]
    assert classroom.log_notes(["[WARNING] Removing existing assignment: /c/autograded/s/toy"]) == []


def test_failure_reason_names_the_cause_not_nbgraders_wrapper():
    lines = ["[ERROR] There was an error processing assignment: /c/submitted/s/toy",
             "[ERROR] Traceback (most recent call last):\n  File \"/x/overwritecells.py\", line 225\n"
             "ValueError: could not convert string to float: 'three'\n",
             "[ERROR] Please see the the above traceback for details on the specific errors on the above failures.",
             "nbgrader.apps.baseapp.NbGraderException: Please see the the above traceback for details"]
    assert classroom.failure_reason(lines, None) == \
        "nbgrader failed: ValueError: could not convert string to float: 'three'"
    assert classroom.failure_reason(lines[-1:], None) == \
        "nbgrader failed: NbGraderException: Please see the the above traceback for details"


def test_the_course_notebooks_locked_cells_keep_their_checksum_when_released():
    """nbgrader warns "Attribute 'checksum' ... has changed" for every locked cell of every submission whose released
    source differs from the source version's: generate_assignment stores the checksum before ClearHiddenTests and
    releases the cell after it. That was the course's warning for every test cell while the sources held hidden
    test regions; the grader draws the hidden cases itself now, and no locked cell may hold one again."""
    from nbgrader import utils
    from nbgrader.preprocessors import ClearHiddenTests, ComputeChecksums

    sources = sorted((ROOT / "assignments" / "source").glob("*/*.ipynb"))
    assert sources
    for path in sources:
        nb = nbformat.read(path, as_version=4)
        stored, _ = ComputeChecksums().preprocess(copy.deepcopy(nb), {})
        released, _ = ComputeChecksums().preprocess(ClearHiddenTests().preprocess(copy.deepcopy(nb), {})[0], {})
        for before, after in zip(stored.cells, released.cells):
            if utils.is_locked(before):
                assert utils.compute_checksum(after) == before.metadata.nbgrader["checksum"], \
                    (path.name, before.metadata.nbgrader["grade_id"])


def test_grades_without_a_report_read_the_gradebook(tmp_path, monkeypatch):
    """No grading report (a course autograded by plain `nbgrader autograde`, or the report deleted): a submission with
    its autograded notebook is graded; one the classroom recorded as not graded says why from its gradebook comment;
    one without any autograded notebook says nbgrader did not finish it; a student with nothing, not submitted."""
    from nbgrader.api import Gradebook

    (tmp_path / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.course_id = "unit"\n')
    monkeypatch.setenv("PATH", os.pathsep.join([str(BIN), os.environ.get("PATH", "")]))  # (alembic makes the db)
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}", "unit") as gb:
        gb.update_or_create_assignment("hw")
        gb.update_or_create_notebook("hw", "hw")
        gb.update_or_create_grade_cell("test_f", "hw", "hw", max_score=2.0, cell_type="code")
        gb.update_or_create_solution_cell("f", "hw", "hw")
        for student in ("done", "refused", "stopped", "idle"):
            gb.update_or_create_student(student)
        for student in ("done", "refused", "stopped"):
            submission = gb.update_or_create_submission("hw", student)
            if student == "done":
                submission.notebooks[0].grades[0].auto_score = 1.5
            if student == "refused":
                submission.notebooks[0].comments[0].auto_comment = "Not graded: hw.ipynb is not valid JSON"
        gb.db.commit()
    (tmp_path / "autograded" / "done" / "hw").mkdir(parents=True)
    (tmp_path / "autograded" / "done" / "hw" / "hw.ipynb").write_text("{}")
    rows = {r["student_id"]: r for r in classroom.grade_rows(classroom.Course.load(tmp_path))}
    assert list(rows) == ["done", "idle", "refused", "stopped"]
    assert (rows["done"]["status"], rows["done"]["score"], rows["done"]["max_score"]) == ("graded", "1.5", "2.0")
    assert rows["refused"]["status"] == "not graded: hw.ipynb is not valid JSON"
    assert rows["stopped"]["status"] == "not graded: no autograded notebook (hw.ipynb missing: nbgrader did not " \
                                        "finish it)"
    assert (rows["idle"]["status"], rows["idle"]["score"]) == ("not submitted", "")
