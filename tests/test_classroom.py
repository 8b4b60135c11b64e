"""The instructor's machinery on a toy course: autograding a class with broken submissions, the gradebook, the
report, and feedback without hidden tests (grader/classroom.py, nbgrader_ext.py, nbgrader_config.py).

The toy assignment has two graded functions, square (test worth 2 points) and cube (3 points), whose test cells follow
the course's convention: a visible part, then a hidden block that prints a report and ends with the partial score.
The course uses a copy of assignments/nbgrader_config.py with a per-cell timeout of 3 s, so the class runs in about a
minute. The unit tests at the end need no nbgrader run.
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
import subprocess
import sys
import textwrap

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course_pkg.checks import classroom
from course_pkg.checks import nbgrader_ext as ext

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
ENV = dict(os.environ, PATH=os.pathsep.join([str(BIN), os.environ.get("PATH", "")]))

HIDDEN_SQUARE = """\
_secret_square_cases = [(2, 4), (-1, 1), (0.5, 0.25), (7, 49)]
_passed = sum(square(_x) == _y for _x, _y in _secret_square_cases)
print(f"hidden report for square: {_passed} of 4 cases passed")
2 * _passed / 4"""
HIDDEN_CUBE = """\
_secret_cube_cases = [(-2, -8), (3, 27)]
_passed = sum(cube(_x) == _y for _x, _y in _secret_cube_cases)
print(f"hidden report for cube: {_passed} of 2 cases passed")
3 * _passed / 2"""
HIDDEN_LINES = [line for line in (HIDDEN_SQUARE + "\n" + HIDDEN_CUBE).split("\n")]


def _meta(grade_id, grade, solution, locked, points=None):
    meta = {"schema_version": 3, "grade": grade, "solution": solution, "locked": locked, "grade_id": grade_id,
            "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def _test_source(call, message, hidden):
    return f'assert {call}, "{message}"\nprint("visible check passed: {message}")\n' \
           f"### BEGIN HIDDEN TESTS\n{hidden}\n### END HIDDEN TESTS"


def toy_source():
    nb = new_notebook(cells=[
        new_markdown_cell("# Toy assignment\nWrite `square` and `cube`.", metadata=_meta("intro", False, False, True)),
        new_code_cell("import math", metadata=_meta("setup", False, False, True)),
        new_code_cell("def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
                      metadata=_meta("square", False, True, False)),
        new_code_cell(_test_source("square(3) == 9", "square(3) is 9", HIDDEN_SQUARE),
                      metadata=_meta("test_square", True, False, True, 2)),
        new_code_cell("def cube(x):\n    ### BEGIN SOLUTION\n    return x ** 3\n    ### END SOLUTION",
                      metadata=_meta("cube", False, True, False)),
        new_code_cell(_test_source("cube(2) == 8", "cube(2) is 8", HIDDEN_CUBE),
                      metadata=_meta("test_cube", True, False, True, 3)),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.validate(nb)
    return nb


def nbgrader(course, *args):
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=ENV, capture_output=True,
                          text=True)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def make_course(root):
    """A course folder with the toy assignment released (the gradebook knows it)."""
    (root / "source" / "toy").mkdir(parents=True)
    nbformat.write(toy_source(), root / "source" / "toy" / "toy.ipynb")
    config = (ROOT / "assignments" / "nbgrader_config.py").read_text()
    (root / "nbgrader_config.py").write_text(config + "\nc.Execute.timeout = 3  # the tests' short per-cell limit\n")
    nbgrader(root, "generate_assignment", "toy")
    return root


STUB = "    # YOUR CODE HERE\n    raise NotImplementedError()"


def fill(nb, **bodies):
    """A copy of the student version with the bodies of the named functions written in."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        body = bodies.get(cell.metadata.get("nbgrader", {}).get("grade_id"))
        if body is not None:
            assert STUB in cell.source, cell.source
            cell.source = cell.source.replace(STUB, textwrap.indent(body, "    "))
    return nb


def without(nb, *grade_ids):
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in grade_ids]
    return nb


def with_duplicate(nb, grade_id):
    """The cell copied right after itself, cell id included (as a text editor or a merge would)."""
    nb = copy.deepcopy(nb)
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    nb.cells.insert(index + 1, copy.deepcopy(nb.cells[index]))
    return nb


GOOD = {"square": "return x * x", "cube": "return x ** 3"}

# student -> (status, score, {grade_id: auto_score}, words the reason must contain)
EXPECTED = {
    "good1": (classroom.GRADED, 5, {"test_square": 2, "test_cube": 3}, []),
    "good2": (classroom.GRADED, 5, {"test_square": 2, "test_cube": 3}, []),
    "partial": (classroom.GRADED, 4.5, {"test_square": 1.5, "test_cube": 3}, []),  # square fails on -1
    "hidden_raise": (classroom.GRADED, 2, {"test_square": 2, "test_cube": 0}, []),  # cube raises on negatives
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
    "infinite_loop": (classroom.WITH_PROBLEMS, 3, {"test_square": 0, "test_cube": 3}, ["test_square: timed out"]),
    "stubborn_loop": (classroom.WITH_PROBLEMS, 3, {"test_square": 0, "test_cube": 3},
                      ["test_square: this cell did not finish", "could not be interrupted"]),
    "os_exit": (classroom.WITH_PROBLEMS, 3, {"test_square": 0, "test_cube": 3}, ["test_square: the kernel died"]),
    "sigkill": (classroom.WITH_PROBLEMS, 3, {"test_square": 0, "test_cube": 3}, ["test_square: the kernel died"]),
    "print_50mb": (classroom.WITH_PROBLEMS, 5, {"test_square": 2, "test_cube": 3},
                   ["output cut to the size limit in square"]),
    "saved_100mb": (classroom.GRADED, 5, {"test_square": 2, "test_cube": 3}, []),
}


def write_submissions(course):
    release = nbformat.read(course / "release" / "toy" / "toy.ipynb", as_version=4)
    good = fill(release, **GOOD)
    text = {}
    notebooks = {
        "good1": good,
        "good2": good,
        "partial": fill(release, square="return x * x if x > 0 else 0", cube=GOOD["cube"]),
        "hidden_raise": fill(release, square=GOOD["square"],
                             cube="if x < 0:\n    raise ZeroDivisionError('negative input')\nreturn x ** 3"),
        "blank": release,
        "deleted_test": without(good, "test_square"),
        "deleted_both": without(good, "square", "test_square"),
        "duplicated_test": with_duplicate(good, "test_square"),
        "infinite_loop": fill(release, square="while True:\n    pass", cube=GOOD["cube"]),
        "stubborn_loop": fill(release, cube=GOOD["cube"], square=(
            "import time\nwhile True:  # swallows the interrupt\n    try:\n        time.sleep(0.05)\n"
            "    except KeyboardInterrupt:\n        pass")),
        "os_exit": fill(release, square="import os\nos._exit(1)", cube=GOOD["cube"]),
        # the kernel is killed in test_square; cube calls square, defined before: it runs again in the new kernel
        "sigkill": fill(release, square="if x == 3:\n    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)\n"
                                         "return x * x", cube="return 27 if x == 3 else x * square(x)"),
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
    (course / "submitted" / "good2" / "toy" / "timestamp.txt").write_text("2030-01-01 12:00:00.000000 UTC")
    assert set(notebooks) | set(text) | {"renamed"} == set(EXPECTED)


def fingerprint(folder):
    """path -> (sha256, size, mtime) of every file under folder."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_size,
                                         p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The toy class, autograded through the Makefile target (two nbgrader runs at once), then given feedback."""
    course = make_course(tmp_path_factory.mktemp("course"))
    write_submissions(course)
    before = fingerprint(course / "submitted")
    # -o: the virtual environment is taken as it is (never reinstalled from a test)
    proc = subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", "autograde", f"COURSE={course}",
                           "JOBS=2"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"make autograde failed:\n{proc.stdout}\n{proc.stderr}"
    feedback = subprocess.run([sys.executable, "-m", "grader.classroom", "feedback", "--course",
                               str(course)], env=ENV, capture_output=True, text=True, timeout=600)
    with open(course / "autograded" / classroom.REPORT_NAME, newline="") as fh:
        report = {row["student"]: row for row in csv.DictReader(fh)}
    return {"course": course, "before": before, "stdout": proc.stdout, "report": report, "feedback": feedback}


def gradebook_view(course):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "rnn-course") as gb:
        view = {}
        for student in gb.students:
            submission = gb.find_submission("toy", student.id)
            nb = submission.notebooks[0]
            view[student.id] = {
                "score": submission.score,
                "grades": {g.name: (g.auto_score, g.needs_manual_grade) for g in nb.grades},
                "comments": {c.name: c.comment for c in nb.comments},
                "flagged": nb.flagged,
            }
        return view


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


def test_submitted_files_are_never_modified(graded):
    assert fingerprint(graded["course"] / "submitted") == graded["before"]


def test_the_summary_names_each_problem(graded):
    out = graded["stdout"]
    assert "Autograded 17 submission(s) of 17 student(s)" in out, out
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
    nb = nbformat.read(autograded / "print_50mb" / "toy" / "toy.ipynb", as_version=4)
    text = nb.cells[2].outputs[0].text
    assert text.startswith("x" * 1000) and ext.CUT_MARK in text, text[:200]


def page_text(path):
    """The text a reader sees in an HTML page (code is split into highlighted spans: tags removed)."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


def _feedback_text(graded, student):
    path = graded["course"] / "feedback" / student / "toy" / "toy.html"
    assert path.exists(), graded["feedback"].stdout + graded["feedback"].stderr
    return page_text(path)


def test_feedback_shows_the_hidden_report_but_no_hidden_source(graded):
    assert graded["feedback"].returncode == 0, graded["feedback"].stdout + graded["feedback"].stderr
    autograded = (graded["course"] / "autograded" / "good1" / "toy" / "toy.ipynb").read_text()
    assert "_secret_square_cases" in autograded  # (the autograded notebook has them: the check below can fail)
    graded_students = [s for s, (status, *_rest) in EXPECTED.items() if status != classroom.NOT_GRADED]
    for student in graded_students:
        text = _feedback_text(graded, student)
        for line in HIDDEN_LINES + ["HIDDEN TESTS", "_secret_"]:
            assert line.strip() not in text, f"{student}: hidden source {line!r} in the feedback"
    text = _feedback_text(graded, "partial")
    assert "hidden report for square: 3 of 4 cases passed" in text
    assert "visible check passed: square(3) is 9" in text
    assert "toy (Score: 4.5 / 5.0)" in text


def test_feedback_of_a_hidden_test_that_raises_shows_the_error_not_the_traceback(graded):
    text = _feedback_text(graded, "hidden_raise")
    assert "ZeroDivisionError: negative input" in text
    assert "Traceback (most recent call last)" not in text and "---->" not in text


def test_stock_feedback_would_show_the_hidden_source(graded):
    """The reason for HideHiddenTests: nbgrader's own feedback preprocessors, on the same autograded notebook."""
    course = graded["course"]
    nbgrader(course, "generate_feedback", "toy", "--student=hidden_raise", "--force",
             "--CourseDirectory.feedback_directory=stock_feedback",
             "--GenerateFeedback.preprocessors=['nbgrader.preprocessors.GetGrades',"
             "'nbconvert.preprocessors.CSSHTMLHeaderPreprocessor']")
    text = page_text(course / "stock_feedback" / "hidden_raise" / "toy" / "toy.html")
    assert all(line.strip() in text for line in HIDDEN_LINES)
    assert "Traceback (most recent call last)" in text and "---->" in text  # quoting a hidden line


def test_export_writes_every_students_score(graded):
    target = graded["course"] / "export" / "grades.csv"
    target.parent.mkdir()
    assert classroom.main(["export", "--course", str(graded["course"]), "--to", str(target)]) == 0
    with open(target, newline="") as fh:
        rows = {row["student_id"]: row for row in csv.DictReader(fh)}
    assert {s: float(rows[s]["score"]) for s in EXPECTED} == {s: e[1] for s, e in EXPECTED.items()}


def test_grading_one_student_again_leaves_the_others_intact(graded, capsys):
    """A second run on one assignment's subset: the report keeps the other rows, the gradebook the other grades."""
    course = graded["course"]
    before = gradebook_view(course)
    keep = course / "submitted"
    moved = course / "submitted_aside"
    moved.mkdir()
    for student in EXPECTED:
        if student != "partial":
            shutil.move(str(keep / student), str(moved / student))
    try:
        assert classroom.main(["autograde", "--course", str(course), "--assignment", "toy", "--timeout", "3",
                               "--submission-timeout", "60"]) == 0
    finally:
        for folder in moved.iterdir():
            shutil.move(str(folder), str(keep / folder.name))
        moved.rmdir()
    assert gradebook_view(course) == before
    with open(course / "autograded" / classroom.REPORT_NAME, newline="") as fh:
        assert {row["student"] for row in csv.DictReader(fh)} == set(EXPECTED)
    assert "Autograded 1 submission(s) of 1 student(s)" in capsys.readouterr().out


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


FAKE_NBGRADER = """\
import sys, time
excluded = set()
for arg in sys.argv[1:]:
    if arg.startswith("--exclude="):
        excluded = set(filter(None, arg.split("=", 1)[1].split(",")))
for student in ["a", "b", "c", "d"]:
    if student in excluded:
        continue
    print(f"[AutogradeApp | INFO] Creating/updating student with ID '{student}': {{}}", flush=True)
    if student == "b":
        time.sleep(60)  # stuck: the watchdog stops it
    if student == "c":
        print("    nbclient.exceptions.DeadKernelError: Kernel died", flush=True)
        print("[AutogradeApp | ERROR] There was an error processing assignment: c", flush=True)
        continue
    print("[AutogradeApp | INFO] Setting destination file permissions to 444", flush=True)
"""


def test_the_watchdog_stops_a_stuck_submission_and_grades_the_rest(tmp_path):
    script = tmp_path / "fake_nbgrader.py"
    script.write_text(FAKE_NBGRADER)
    commands = []

    def command_for(students):
        commands.append(list(students))
        excluded = sorted({"a", "b", "c", "d"} - set(students))
        return [sys.executable, str(script), "--exclude=" + ",".join(excluded)]

    with open(tmp_path / "log", "w") as log:
        results, runs = classroom.autograde_students(["a", "b", "c", "d"], command_for, tmp_path, ENV, 2.0, log,
                                                     "log")
    assert commands == [["a", "b", "c", "d"], ["c", "d"]] and runs == 2
    assert results["a"] is None and results["d"] is None
    assert results["b"] == "stopped after the wall-clock limit of 2 s per submission"
    assert results["c"] == "nbgrader failed: DeadKernelError: Kernel died"
    assert "over the limit of 2 s" in (tmp_path / "log").read_text()


def test_nbgrader_that_stops_before_any_student_is_reported_for_all(tmp_path):
    with open(tmp_path / "log", "w") as log:
        results, runs = classroom.autograde_students(
            ["a", "b"], lambda s: [sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path, ENV, 5.0, log, "log")
    assert runs == 1
    assert results == {s: "nbgrader stopped before grading (exit code 3; see log)" for s in "ab"}


def _execute(cells, **traits):
    nb = new_notebook(cells=[new_code_cell(source) for source in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb, _ = ext.GuardedExecute(**traits).preprocess(nb, {"metadata": {"path": "."}})
    return nb


def _errors(cell):
    return [(o.ename, o.evalue) for o in cell.outputs if o.output_type == "error"]


def test_guarded_execute_starts_a_new_kernel_and_runs_the_earlier_cells_again():
    nb = _execute(["def f():\n    return 41", "print('before')", "import os\nos._exit(1)", "print(f() + 1)"])
    assert _errors(nb.cells[2]) == [(ext.KERNEL_DIED, "the kernel died while running this cell (a crash, os._exit, "
                                                      "or not enough memory)")]
    assert nb.cells[3].outputs[0].text == "42\n"  # f was defined again in the new kernel
    assert nb.cells[1].outputs[0].text == "before\n"  # (the replay's outputs are not kept)


def test_guarded_execute_stops_after_max_restarts_and_after_the_time_budget():
    nb = _execute(["import os\nos._exit(1)", "import os\nos._exit(1)", "print('never')"], max_restarts=1)
    assert _errors(nb.cells[2]) == [(ext.NOT_RUN, "not run: the kernel failed 2 times")]
    nb = _execute(["import time\ntime.sleep(30)", "print('never')"], notebook_timeout=4)
    assert _errors(nb.cells[0])[-1][0] == ext.CELL_TIMEOUT  # interrupted when the budget ran out
    assert _errors(nb.cells[1]) == [(ext.NOT_RUN, "not run: the notebook used up its time budget of 4 s")]


def test_guarded_execute_keeps_little_of_an_endless_print_loop_in_memory():
    nb = _execute(["import time\nt = time.time()\nwhile time.time() - t < 1:\n    print('spam' * 1000)\n"
                   "print('the end')"], max_output_chars=100_000)
    text = "".join(o.text for o in nb.cells[0].outputs if o.output_type == "stream")
    assert len(text) < 200_000 and ext.CUT_MARK in text and text.endswith("the end\n")
