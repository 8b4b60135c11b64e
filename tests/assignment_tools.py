"""Run an assignment's source notebook in this process, the way nbgrader's autograder would score it, but in
milliseconds: for the tests of the checks and of the mistake library (tests/test_assignment_*.py).

Each code cell runs in one namespace (__name__ == "__main__", as in a kernel); a grade cell's score is 0 if it raises,
the value of its last expression if that is a number (nbgrader's partial credit), otherwise its points.
"""

import ast
import contextlib
import dataclasses
import io
import pathlib
import re

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCE = ROOT / "assignments" / "source"


def load(assignment):
    return nbformat.read(SOURCE / assignment / f"{assignment}.ipynb", as_version=4)


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


# the last line of a test cell's hidden block: the checker's call, with the cell's seed and points
HIDDEN_CALL = re.compile(r'^_grade\("(?P<key>\w+)", globals\(\), seed=(?P<seed>\d+), points=(?P<points>[\d.]+)\)$')
SOLUTION_REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION[^\n]*$", re.S | re.M)


def student_version(nb):
    """What nbgrader's generate_assignment makes of the solution regions (the hidden tests stay: the autograder
    puts them back before grading)."""
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


def run_in_process(nb, skip=lambda cell: False):
    """grade_id -> CellRun for every autograded test cell; other cells just run (skip(cell) True: not run)."""
    ns = {"__name__": "__main__"}
    results = {}
    for cell in nb.cells:
        if cell.cell_type != "code" or skip(cell):
            continue
        meta = nbgrader_meta(cell)
        graded_test = meta.get("grade") and not meta.get("solution")
        try:
            value, out = _run(cell.source, ns)
        except Exception as exc:  # noqa: BLE001 - a failing cell is what we measure
            if not graded_test:
                continue
            results[meta["grade_id"]] = CellRun(0.0, f"{type(exc).__name__}: {exc}")
            continue
        if graded_test:
            points = float(meta["points"])
            score = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else points
            results[meta["grade_id"]] = CellRun(score, out)
    return results


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


def hidden_seeds(nb):
    """key -> the seed of its hidden call, read from the notebook's test cells that have a hidden block."""
    seeds = {}
    for cell in nb.cells:
        if "### END HIDDEN TESTS" in cell.source:
            call = cell.source.split("### END HIDDEN TESTS")[0].rstrip().splitlines()[-1]
            match = HIDDEN_CALL.match(call)
            assert match, f"{nbgrader_meta(cell).get('grade_id')}: hidden block does not end with the _grade call"
            seeds[match["key"]] = int(match["seed"])
    return seeds
