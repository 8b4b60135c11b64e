"""The three assignments through the stock nbgrader pipeline and the sandbox, on a temporary copy of the course.

One class: a student who hands in the solutions, one who hands in the released notebooks untouched, one student per
mistake of the library (tests/injections_<assignment>.py: the solutions with that one mistake injected), and one whose
three submissions are broken. The class is autograded with the course's classroom driver (nbgrader's Autograde with
the course's SandboxExecute: the students' cells run in sandboxed workers, 2 slots, and the grader scores every test
cell itself on hidden cases drawn from the course's secret, made by this first run). Then:
- the student version holds no solution code, no hidden test and nothing of the grader;
- the solutions get full marks, the untouched notebooks 0 (and the grading itself reports no error);
- each mistake gets exactly its expected partial score, and the autograded notebook names it;
- broken submissions are reported with their reason and cost only themselves;
- the feedback HTML shows which hidden checks failed and why, but no grader source, secret, seed or machine path;
- `nbgrader validate` (the student's own kernel, the notebook's self-checks) passes the solutions.
"""

import csv
import html as html_lib
import json
import re
import stat

import nbformat
import pytest

import nbgrader_course as nc
from grader import secret

pytestmark = pytest.mark.slow

HIDDEN_MARKERS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "_grade(")


def page_text(html):
    """What a reader of the HTML sees: highlighted code is split into spans, so search the text, not the markup."""
    html = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)
    return html_lib.unescape(re.sub(r"<[^>]+>", "", html))


def assert_no_hidden_source(text, where):
    for marker in HIDDEN_MARKERS:
        assert marker not in text, f"{where}: hidden test marker {marker!r}"


def private_strings(course, assignment):
    """What no student may see: the course secret, the hidden cases' seeds, the grader's and the checks' files and
    this machine's paths (a frame of grader or course_pkg code would name them)."""
    from grader.manifest import registry

    key = secret.load(course, create=False)
    checks = registry(assignment)
    seeds = [str(secret.seed(key, assignment, k)) for k in [*checks.specs, *checks.cell_checks]]
    return [key.hex(), *seeds, str(course), str(nc.ROOT), 'File "/', "grader/", "course_pkg/checks", ".grader_secret"]


def student_id(assignment, grade_id, old, new):
    """One student per distinct injection (two library entries may share one: both must then be named)."""
    for mistake_id, *injection in nc.load_injections(assignment):
        if injection[:3] == [grade_id, old, new]:
            return "m_" + re.sub(r"[^A-Za-z0-9]+", "_", mistake_id)
    raise KeyError((assignment, grade_id))


BROKEN_WAYS = ("truncated", "renamed", "crashing")  # the broken student's submissions, assignment by assignment


def first_solution(nb):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))


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
    # one student whose submissions are broken in three ways, in turn, graded in the same class
    for a in nc.ASSIGNMENTS:
        perfect = nc.perfect_student(nc.source_notebook(course, a))
        way = BROKEN_WAYS[nc.ASSIGNMENTS.index(a) % len(BROKEN_WAYS)]
        if way == "truncated":
            text = nbformat.writes(perfect)
            nc.submit(course, "broken", a, raw=text[:len(text) // 2])
        elif way == "renamed":
            nc.submit(course, "broken", a, perfect, filename=f"{a} (1).ipynb")
        else:
            crashing = nbformat.from_dict(perfect)
            first_solution(crashing).source += "\nimport os\nos._exit(1)\n"
            nc.submit(course, "broken", a, crashing)
    assert not secret.path(course).exists()  # made by the first grading run, in the course folder
    proc = nc.autograde(course, jobs=2, timeout=3600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Sandbox pool: 2 slot(s) ready" in proc.stdout, proc.stdout
    seeds = {a: nc.course_seeds(course, a) for a in nc.ASSIGNMENTS}  # scores that depend on the hidden cases
    expected = {(s, a): {k: nc.expected_score(v, seeds[a]) for k, v in scores.items()}
                for (s, a), scores in expected.items()}
    return course, expected


def test_student_version_holds_no_solution_and_no_hidden_test(course):
    course, _ = course
    for a in nc.ASSIGNMENTS:
        release = (course / "release" / a / f"{a}.ipynb").read_text()
        for marker in ("BEGIN SOLUTION", "END SOLUTION"):
            assert marker not in release, f"{a}: {marker!r} in the student version"
        assert_no_hidden_source(release, f"{a} student version")
        imports = [line for c in nc.release_notebook(course, a).cells for line in c.source.splitlines()
                   if re.match(r"\s*(from|import)\s", line)]
        assert not [line for line in imports if "grader" in line], f"{a}: the student version imports the grader"
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
        # a written answer waits for the instructor: no automatic score, neither full nor 0
        by_hand = set(nc.manifest.get(a).points()) - set(expected[("perfect", a)])
        assert nc.scores(course, a, "perfect", autograded=False) == dict.fromkeys(by_hand), a


def test_untouched_student_version_gets_zero(course):
    course, expected = course
    for a in nc.ASSIGNMENTS:
        assert nc.scores(course, a, "idle") == expected[("idle", a)], a


def _injections():
    return [pytest.param(a, *inj, id=f"{a}:{inj[0]}") for a in nc.ASSIGNMENTS for inj in nc.load_injections(a)]


@pytest.mark.parametrize("assignment,mistake_id,grade_id,old,new,losses", _injections())
def test_each_mistake_gets_its_score_and_its_name(course, assignment, mistake_id, grade_id, old, new, losses):
    course, expected = course
    student = student_id(assignment, grade_id, old, new)
    assert nc.scores(course, assignment, student) == expected[(student, assignment)]
    graded = nbformat.read(course / "autograded" / student / assignment / f"{assignment}.ipynb", as_version=4)
    outputs = {c.metadata.get("nbgrader", {}).get("grade_id"): json.dumps(c.get("outputs", []))
               for c in graded.cells if c.cell_type == "code"}
    full = expected[("perfect", assignment)]
    for test_id in losses:  # (a score drawn from the hidden cases may be full marks: none of them showed it)
        if expected[(student, assignment)][test_id] < full[test_id]:
            assert f"[{mistake_id}]" in outputs[test_id], f"{mistake_id} not named in {test_id}'s output"


def test_feedback_explains_hidden_failures_without_grader_source_or_secrets(course):
    course, _ = course
    for a in nc.ASSIGNMENTS:
        injections = nc.load_injections(a)
        private = private_strings(course, a)
        if injections:
            mistake_id, grade_id, old, new, _ = injections[0]
        for student in ("perfect", *([student_id(a, grade_id, old, new)] if injections else [])):
            nc.nbgrader(course, "generate_feedback", a, "--student", student, "--force")
            html = page_text((course / "feedback" / student / a / f"{a}.html").read_text())
            assert_no_hidden_source(html, f"feedback {student}/{a}")
            for text in private:
                assert text not in html, f"feedback {student}/{a}: {text!r}"
            assert "Traceback" not in html, f"feedback {student}/{a}: a traceback"
            assert "hidden checks passed" in html
        if injections:
            assert f"[{mistake_id}]" in html, f"{a}: the feedback does not name {mistake_id}"


def test_the_secret_stays_in_the_instructors_course_folder(course):
    """Made 0600 by the grading run; in no notebook a student gets back (released, autograded, feedback)."""
    course, _ = course
    path = secret.path(course)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = secret.load(course, create=False).hex()
    for folder in ("release", "autograded", "feedback"):
        for file in (course / folder).rglob("*"):
            if file.is_file():
                assert key not in file.read_text(errors="replace"), file


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
    assert len(rows) == len(expected) + len(nc.ASSIGNMENTS)  # every submission has its row
    for a in nc.ASSIGNMENTS:
        row, way = rows[("broken", a)], BROKEN_WAYS[nc.ASSIGNMENTS.index(a) % len(BROKEN_WAYS)]
        scores = nc.scores(course, a, "broken")
        if way == "truncated":
            assert row["status"] == "not-graded" and "not valid JSON" in row["reason"], row
            assert set(scores.values()) == {0.0}
        elif way == "renamed":
            assert row["status"] == "not-graded" and f"{a} (1).ipynb" in row["reason"], row
            assert set(scores.values()) == {0.0}
        else:
            killer = first_solution(nc.source_notebook(course, a)).metadata["nbgrader"]["grade_id"]
            assert row["status"] == "graded-with-problems", row
            assert row["reason"] == f"{a}.ipynb: {killer}: the worker process died (crashed, exited or ran out of " \
                                    "memory)", row
            assert scores[f"test_{killer}"] == 0.0  # the cell that killed its worker defined it: not run again
            # the cells after the crash were still graded
            assert 0 < sum(scores.values()) < sum(expected[("perfect", a)].values())
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
