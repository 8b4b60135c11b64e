"""The three assignments through the stock nbgrader pipeline, on a temporary copy of the course.

One class: a student who hands in the solutions, one who hands in the released notebooks untouched, and one student
per mistake of the library (tests/injections_<assignment>.py: the solutions with that one mistake injected). The
class is autograded with the course's classroom driver (stock `nbgrader autograde` underneath), then:
- the student version holds no solution code and no hidden test;
- the solutions get full marks, the untouched notebooks 0 (and the grading itself reports no error);
- each mistake gets exactly its expected partial score, and the autograded notebook names it;
- the feedback HTML shows which hidden checks failed and why, but no hidden test source.
"""

import csv
import html as html_lib
import json
import os
import re
import subprocess
import sys

import nbformat
import pytest

import nbgrader_course as nc

pytestmark = pytest.mark.slow

HIDDEN_MARKERS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "_grade(")


def hidden_lines(source_nb):
    """Every line of every hidden test block of a source notebook (the seeds are in them)."""
    lines = set()
    for cell in source_nb.cells:
        for block in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", cell.source, re.S):
            lines |= {line.strip() for line in block.splitlines() if line.strip()}
    return lines


def page_text(html):
    """What a reader of the HTML sees: highlighted code is split into spans, so search the text, not the markup."""
    html = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)
    return html_lib.unescape(re.sub(r"<[^>]+>", "", html))


def assert_no_hidden_source(text, source_nb, where):
    for marker in HIDDEN_MARKERS:
        assert marker not in text, f"{where}: hidden test marker {marker!r}"
    for line in hidden_lines(source_nb):
        assert line not in text, f"{where}: hidden test line {line!r}"


def student_id(assignment, grade_id, old, new):
    """One student per distinct injection (two library entries may share one: both must then be named)."""
    for mistake_id, *injection in nc.load_injections(assignment):
        if injection[:3] == [grade_id, old, new]:
            return "m_" + re.sub(r"[^A-Za-z0-9]+", "_", mistake_id)
    raise KeyError((assignment, grade_id))


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The generated, submitted and autograded class: (course dir, {(student, assignment): expected scores})."""
    course = nc.make_course(tmp_path_factory.mktemp("nbgrader") / "course")
    expected = {}
    for a in nc.ASSIGNMENTS:
        nc.nbgrader(course, "generate_assignment", a, "--force")
        source = nc.source_notebook(course, a)
        points = nc.autograded_points(source)
        perfect = nc.perfect_student(source)
        nc.submit(course, "perfect", a, perfect)
        expected[("perfect", a)] = points
        nc.submit(course, "idle", a, nc.release_notebook(course, a))
        expected[("idle", a)] = dict.fromkeys(points, 0.0)
        for mistake_id, grade_id, old, new, losses in nc.load_injections(a):
            student = student_id(a, grade_id, old, new)
            if (student, a) not in expected:
                nc.submit(course, student, a, nc.with_injection(perfect, grade_id, old, new))
            assert expected.setdefault((student, a), {**points, **losses}) == {**points, **losses}
    # one student whose three submissions are broken in three ways, graded in the same class
    perfect = {a: nc.perfect_student(nc.source_notebook(course, a)) for a in nc.ASSIGNMENTS}
    nc.submit(course, "broken", "a1_rnn", raw=nbformat.writes(perfect["a1_rnn"])[:5000])
    nc.submit(course, "broken", "a2_lstm", perfect["a2_lstm"], filename="a2_lstm (1).ipynb")
    crashing = nbformat.from_dict(perfect["a3_gru"])
    first_solution = next(c for c in crashing.cells if c.metadata.get("nbgrader", {}).get("solution"))
    first_solution.source += "\nimport os\nos._exit(1)\n"
    nc.submit(course, "broken", "a3_gru", crashing)
    proc = subprocess.run([sys.executable, "-m", "grader.classroom", "autograde", "--course", str(course)],
                          capture_output=True, text=True, timeout=3600,
                          env=dict(os.environ, PATH=f"{nc.BIN}{os.pathsep}{os.environ['PATH']}"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return course, expected


def test_student_version_holds_no_solution_and_no_hidden_test(course):
    course, _ = course
    for a in nc.ASSIGNMENTS:
        release = (course / "release" / a / f"{a}.ipynb").read_text()
        for marker in ("BEGIN SOLUTION", "END SOLUTION"):
            assert marker not in release, f"{a}: {marker!r} in the student version"
        assert_no_hidden_source(release, nc.source_notebook(course, a), f"{a} student version")
        released = "\n".join(c.source for c in nc.release_notebook(course, a).cells)
        for cell in nc.source_notebook(course, a).cells:
            for region in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.S):
                for line in region.splitlines():
                    line = line.strip()
                    if len(line) > 12 and not line.startswith("#"):
                        assert line not in released, f"{a}: solution line {line!r} in the student version"


def test_solutions_get_full_marks(course):
    course, expected = course
    for a in nc.ASSIGNMENTS:
        assert nc.scores(course, a, "perfect") == expected[("perfect", a)], a
    # a1's written answer waits for the instructor: no automatic score, neither full nor 0
    assert nc.scores(course, "a1_rnn", "perfect", autograded=False) == {"written_vanishing_gradients": None}


def test_untouched_student_version_gets_zero(course):
    course, expected = course
    for a in nc.ASSIGNMENTS:
        assert nc.scores(course, a, "idle") == expected[("idle", a)], a


def _injections():
    return [(a, *inj) for a in nc.ASSIGNMENTS for inj in nc.load_injections(a)]


@pytest.mark.parametrize("assignment,mistake_id,grade_id,old,new,losses", _injections(),
                         ids=[f"{a}:{i[0]}" for a, *i in _injections()])
def test_each_mistake_gets_its_score_and_its_name(course, assignment, mistake_id, grade_id, old, new, losses):
    course, expected = course
    student = student_id(assignment, grade_id, old, new)
    assert nc.scores(course, assignment, student) == expected[(student, assignment)]
    graded = nbformat.read(course / "autograded" / student / assignment / f"{assignment}.ipynb", as_version=4)
    outputs = {c.metadata.get("nbgrader", {}).get("grade_id"): json.dumps(c.get("outputs", []))
               for c in graded.cells if c.cell_type == "code"}
    for test_id in losses:
        assert f"[{mistake_id}]" in outputs[test_id], f"{mistake_id} not named in {test_id}'s output"


def test_feedback_explains_hidden_failures_without_hidden_source(course):
    course, _ = course
    mistakes = {a: nc.load_injections(a)[0] for a in nc.ASSIGNMENTS}
    for a, (mistake_id, grade_id, old, new, _) in mistakes.items():
        for student in ("perfect", student_id(a, grade_id, old, new)):
            nc.nbgrader(course, "generate_feedback", a, "--student", student, "--force")
            html = page_text((course / "feedback" / student / a / f"{a}.html").read_text())
            assert_no_hidden_source(html, nc.source_notebook(course, a), f"feedback {student}/{a}")
            assert "hidden checks passed" in html
        assert f"[{mistake_id}]" in html, f"{a}: the feedback does not name {mistake_id}"


def test_no_graded_cell_writes_to_stderr_for_the_solutions(course):
    course, _ = course
    for a in nc.ASSIGNMENTS:
        graded = nbformat.read(course / "autograded" / "perfect" / a / f"{a}.ipynb", as_version=4)
        for cell in graded.cells:
            if cell.cell_type == "code":
                streams = [o.get("name") for o in cell.get("outputs", []) if o.get("output_type") == "stream"]
                assert "stderr" not in streams, f"{a}: {cell.metadata.get('nbgrader', {}).get('grade_id')}"


def test_broken_submissions_are_graded_with_their_reason(course):
    course, expected = course
    with open(course / "autograded" / "grading_report.csv", newline="") as f:
        rows = {(r["student"], r["assignment"]): r for r in csv.DictReader(f)}
    assert len(rows) == len(expected) + 3  # every submission has its row
    json_row, renamed_row, crash_row = (rows[("broken", a)] for a in nc.ASSIGNMENTS)
    assert json_row["status"] == "not-graded" and "not valid JSON" in json_row["reason"]
    assert renamed_row["status"] == "not-graded" and "a2_lstm (1).ipynb" in renamed_row["reason"]
    assert crash_row["status"] == "graded-with-problems" and "kernel" in crash_row["reason"].lower()
    assert set(nc.scores(course, "a1_rnn", "broken").values()) == {0.0}
    assert set(nc.scores(course, "a2_lstm", "broken").values()) == {0.0}
    crashed = nc.scores(course, "a3_gru", "broken")
    points = expected[("perfect", "a3_gru")]
    assert crashed["test_update_gate"] == 0.0  # the cell that crashed the kernel defined update_gate
    assert 0 < sum(crashed.values()) < sum(points.values())  # the cells after the crash were still graded
    for (student, a) in expected:  # and every other submission was graded as usual
        assert rows[(student, a)]["status"] == "graded", (student, a, rows[(student, a)]["reason"])


@pytest.mark.parametrize("assignment", nc.ASSIGNMENTS)
def test_students_can_validate(course, tmp_path, assignment):
    """`nbgrader validate` passes the solutions and lists the failing cells of the untouched student version."""
    course, _ = course
    done = tmp_path / f"{assignment}.ipynb"
    nbformat.write(nc.perfect_student(nc.source_notebook(course, assignment)), done)
    ok = nc.nbgrader(course, "validate", str(done))
    assert "Success!" in ok.stdout, ok.stdout
    untouched = nc.nbgrader(course, "validate", str(course / "release" / assignment / f"{assignment}.ipynb"))
    assert "VALIDATION FAILED ON" in untouched.stdout and "NotImplementedError" in untouched.stdout
