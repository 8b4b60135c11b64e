"""A temporary copy of the nbgrader course with generated students, for the end-to-end tests, the adversarial tests
and the autograding benchmark (bench/autograde_speed.py). Nothing is written inside the repository's assignments/
folder.

Students are built from the source notebooks: a perfect student hands in the solutions (solution markers removed, as
if typed into the released notebook); a student with a mistake hands in the same with one injection from
tests/injections_<assignment>.py; an idle student hands in the released notebook unchanged. The source notebooks hold
no hidden tests: their test cells are the visible self-checks, and the grader scores them itself (grader/engine.py),
on hidden cases drawn from the course's secret (<course>/.grader_secret, made by the first grading run).
"""

import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
from grader import manifest

ASSIGNMENTS = tuple(manifest.ids())  # assignments/manifest.toml: the one list of the assignments
BIN = pathlib.Path(sys.executable).parent

_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[^\n]*\n?", re.M)


def make_course(dest):
    """A course folder at dest with the course's config, its manifest and the sources of the manifest's assignments
    (COURSE_MANIFEST: another manifest, whose sources sit beside it); return dest as a Path."""
    dest = pathlib.Path(dest)
    (dest / "source").mkdir(parents=True)
    shutil.copy(ROOT / "assignments" / "nbgrader_config.py", dest / "nbgrader_config.py")
    shutil.copy(manifest.path(), dest / "manifest.toml")
    for a in manifest.assignments():
        shutil.copytree(a.source / a.id, dest / "source" / a.id, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return dest


def nbgrader(course, *args, check=True, timeout=1800):
    """Run the stock nbgrader command in the course directory, with the venv's bin/ on PATH (alembic)."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run([str(BIN / "nbgrader"), *args, f"--CourseDirectory.root={course}"], cwd=course, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def source_notebook(course, assignment):
    return nbformat.read(pathlib.Path(course) / "source" / assignment / f"{assignment}.ipynb", as_version=4)


def release_notebook(course, assignment):
    return nbformat.read(pathlib.Path(course) / "release" / assignment / f"{assignment}.ipynb", as_version=4)


def perfect_student(source_nb):
    """The solutions as a student would hand them in: no solution markers."""
    nb = nbformat.from_dict(source_nb)
    for cell in nb.cells:
        cell.source = _MARKER.sub("", cell.source)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def load_injections(assignment):
    """INJECTIONS of tests/injections_<assignment>.py, if there is one: (mistake_id, grade_id, old, new,
    {test_id: score}); a score that depends on the hidden cases is an object with score(seed_for) (see
    expected_score)."""
    path = ROOT / "tests" / f"injections_{assignment}.py"
    if not path.exists():  # an assignment may come without a table of injected mistakes
        return []
    spec = importlib.util.spec_from_file_location(f"injections_{assignment}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.INJECTIONS


def course_seeds(course, assignment):
    """seed_for(check key) -> the hidden cases' seed of that check in this course (its secret must exist)."""
    from grader import secret

    key = secret.load(course, create=False)
    return lambda check: secret.seed(key, assignment, check)


def expected_score(value, seed_for):
    """A score of an injections file: a number, or an object whose score(seed_for) computes it from the hidden
    cases' seeds (e.g. the share of cases of the convention in which the mistake shows)."""
    return value.score(seed_for) if hasattr(value, "score") else float(value)


def with_injection(nb, grade_id, old, new):
    nb = nbformat.from_dict(nb)
    cells = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id]
    assert len(cells) == 1 and cells[0].source.count(old) == 1, f"cannot inject {old!r} into {grade_id}"
    cells[0].source = cells[0].source.replace(old, new)
    return nb


def submit(course, student, assignment, nb=None, raw=None, filename=None):
    """Place a submission where `nbgrader collect` would: submitted/<student>/<assignment>/<assignment>.ipynb."""
    folder = pathlib.Path(course) / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (filename or f"{assignment}.ipynb")
    if raw is not None:
        path.write_bytes(raw if isinstance(raw, bytes) else raw.encode())
    else:
        nbformat.write(nb, path)
    (folder / "timestamp.txt").write_text("2026-11-23 12:00:00.000000 UTC")
    return path


def scores(course, assignment, student, autograded=True):
    """{grade_id: score} of one student's notebook, from the gradebook: the autograded test cells (autograded=True)
    or the cells graded by hand, with None for a score not given yet."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{pathlib.Path(course) / 'gradebook.db'}") as gb:
        sub = gb.find_submission_notebook(assignment, assignment, student)
        return {g.name: (g.score if g.auto_score is not None or g.manual_score is not None else None)
                for g in sub.grades if (g.cell.cell_type == "code") == autograded}


def autograded_points(source_nb):
    """{grade_id: points} of the autograded test cells of a source notebook."""
    out = {}
    for c in source_nb.cells:
        m = c.get("metadata", {}).get("nbgrader", {})
        if c.cell_type == "code" and m.get("grade") and not m.get("solution"):
            out[m["grade_id"]] = float(m["points"])
    return out


def autograde(course, *args, jobs=2, timeout=1800):
    """The course's classroom driver (python -m grader.classroom autograde) on the whole class, `jobs` sandbox slots."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run([sys.executable, "-m", "grader.classroom", "autograde", "--course", str(course),
                           "--jobs", str(jobs), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
