"""Run an assignment's source notebook in this process, scored as the grader scores it, but in milliseconds: for the
tests of the checks and of the mistake library (tests/test_assignment_*.py).

Each ordinary code cell runs in one namespace (__name__ == "__main__", as in a kernel). A test cell is not run: it is
scored by grader.scoring.grade_cell on that namespace, as grader.engine scores it on a sandboxed worker's (the
functions are then called here rather than in the sandbox: the end-to-end tests cover that path), with hidden seeds
from TEST_SECRET.
"""

import ast
import contextlib
import dataclasses
import io
import pathlib
import re

import nbformat

from grader import manifest
from grader.manifest import registry
from grader import scoring, secret

TEST_SECRET = b"the in-process tests' course secret"

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCE = ROOT / "assignments" / "source"


def load(assignment):
    """The source notebook of an assignment of the manifest (COURSE_MANIFEST: another manifest's)."""
    return nbformat.read(manifest.get(assignment).notebook_path, as_version=4)


def nbgrader_meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def cell_by_id(nb, grade_id):
    found = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id]
    assert len(found) == 1, f"{len(found)} cells with grade_id {grade_id!r}"
    return found[0]


def test_cells(nb):
    """grade_id -> points of the autograded test cells."""
    return {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c)["points"]) for c in nb.cells
            if c.cell_type == "code" and nbgrader_meta(c).get("grade") and not nbgrader_meta(c).get("solution")}


test_cells.__test__ = False  # a helper, not a pytest test, when imported into a test module


def inject(nb, grade_id, old, new):
    """A copy of nb in which `old` (which must occur exactly once) in cell grade_id is replaced by `new`."""
    nb = nbformat.from_dict(nb)
    cell = cell_by_id(nb, grade_id)
    count = cell.source.count(old)
    assert count == 1, f"{old!r} occurs {count} times in cell {grade_id!r}"
    cell.source = cell.source.replace(old, new)
    return nb


SOLUTION_REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION[^\n]*$", re.S | re.M)


def student_version(nb):
    """What nbgrader's generate_assignment makes of the solution regions."""
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = SOLUTION_REGION.sub(lambda m: f"{m[1]}# YOUR CODE HERE\n{m[1]}raise NotImplementedError()",
                                              cell.source)
        else:
            cell.source = SOLUTION_REGION.sub("YOUR ANSWER HERE", cell.source)
    return nb


@dataclasses.dataclass
class CellRun:
    score: float
    output: str


def _run(source, ns):
    """Exec source; return (value of the last expression or None, stdout)."""
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(tree, "<cell>", "exec"), ns)
        value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), ns) if last else None
    return value, out.getvalue()


def seed_for(assignment):
    return lambda key: secret.seed(TEST_SECRET, assignment, key)


def is_test_cell(cell):
    """An autograded test cell (the grader scores it; it is never run while grading)."""
    meta = nbgrader_meta(cell)
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def namespace_after(nb):
    """The namespace the notebook's ordinary code cells leave (test cells not run, failing cells skipped, as
    run_in_process runs them): what the grader's checks call the student's functions in."""
    ns = {"__name__": "__main__"}
    for cell in nb.cells:
        if cell.cell_type != "code" or is_test_cell(cell):
            continue
        try:
            _run(cell.source, ns)
        except Exception:  # noqa: BLE001 - as in run_in_process
            continue
    return ns


def run_in_process(nb, skip=lambda cell: False, assignment=None):
    """grade_id -> CellRun for every autograded test cell; other cells just run (skip(cell) True: not run)."""
    assignment = assignment or nb.metadata.get("course_assignment") or _assignment_of(nb)
    checks = registry(assignment)
    ns = {"__name__": "__main__"}
    results = {}
    for cell in nb.cells:
        if cell.cell_type != "code" or skip(cell):
            continue
        meta = nbgrader_meta(cell)
        if is_test_cell(cell):
            result = scoring.grade_cell(checks, meta["grade_id"], float(meta["points"]), ns, seed_for(assignment))
            output = result.text if result.error is None else f"{result.text}\nAssertionError: {result.error}"
            results[meta["grade_id"]] = CellRun(result.score, output)
            continue
        try:
            _run(cell.source, ns)
        except Exception:  # noqa: BLE001 - a failing cell is what we measure (its test cells say so)
            continue
    return results


def _assignment_of(nb):
    """The assignment whose checks a notebook's set-up cell imports (from course_pkg.checks.<id> import check)."""
    for cell in nb.cells:
        match = re.search(r"from course_pkg\.checks\.(\w+) import", cell.source)
        if match:
            return match[1]
    raise AssertionError("the notebook imports no course_pkg.checks module")


def run_until(nb, grade_id):
    """Run the notebook's code cells in one namespace up to and including grade_id; return that cell's stdout."""
    ns = {"__name__": "__main__"}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        _, out = _run(cell.source, ns)
        if nbgrader_meta(cell).get("grade_id") == grade_id:
            return out
    raise AssertionError(f"no code cell {grade_id!r}")


def assert_hidden_cases_fail(nb, registry, assignment, keys=None, reason="NotImplementedError"):
    """On the namespace the notebook's ordinary cells leave (test cells not run), every check's hidden cases fail
    case by case, each with `reason`, and the checker itself never errs (the student version's case)."""
    from course_pkg.checks import core

    ns = namespace_after(nb)
    for key in keys or registry.specs:
        spec = registry.spec(key)
        student = core.StudentCode(ns, spec, registry)
        assert student.problem() is None
        cases = core.hidden_cases(spec, seed_for(assignment)(key))
        results = [core.run_case(registry, spec, student, c) for c in cases]
        assert len(results) == 6
        for r in results:
            assert not r.passed and r.raised and reason in r.detail, (key, r.detail)
