"""Copying flagged for the instructor: graded functions near-identical to another student's, course_pkg's or the
book's code.

Per assignment, the source of each graded function (the names of the assignment's checks: REGISTRY's specs) is
taken from the solution cells of each submitted notebook, parsed with `ast` (never executed). Its body is compared,
with copydetect's winnowing fingerprints (the MOSS method: code tokenised, every name replaced by one letter, so
renamed variables and changed comments or layout do not hide a copy), with
- the same function of every other student who submitted the assignment,
- course_pkg's reference of that name (inspect.getsource),
- every function defined in the book's code cells (book/*.ipynb; the book's own names differ from the graded ones,
  e.g. chapter 6's gru_step_by_hand, chapter 3's bptt_backward, so all of them are compared).
The signature and docstring are left out (the released notebook dictates them), and so is whatever the released
notebook already has in the function's body (copydetect's boilerplate); an unchanged stub is not compared.

A function's similarity to a source is the share of its fingerprinted code found there (copydetect's similarity of
the student's side; against the book, the best of the chapter's functions). A function counts when its body is at
least MIN_CHARS long after tokenising and its similarity is at least THRESHOLD; each student and source with such a
function is a row of <course>/autograded/similarity_report.csv (similarity: the highest of its functions';
details: each function's, and the book's function it matched). Both numbers come from a measurement on a3_gru
(python tests/test_similarity.py prints it):
- copies scored 0.79-1.00: chapter 6's GRU step and step backward pasted into gru_step_forward and
  gru_step_backward with every name changed and the cache read instead (0.83, 0.79); a classmate's
  gru_step_backward and gru_backward with every local renamed, comments rewritten, blank lines added (1.00);
- code not copied scored 0.00-0.57: functions written independently (the test's honest student) 0.00-0.12 against
  everyone, the book and course_pkg; the course's own notebook solutions of all three assignments against course_pkg
  and the book, written by the same author from the same equations, at most 0.57 (lstm_step_forward vs
  course_pkg), 0.47 between the notebook's and the book's GRU step backward.
THRESHOLD = 0.65 lies between the two. Bodies shorter than MIN_CHARS = 120 tokenised characters are not compared:
the gates, a simple RNN step and the loops over the steps (24-108 in the solutions) have one natural form, which
independent students can write identically (`H = h_prev.shape[1]` and a one-line sigmoid is 51).

Nothing here changes a score or reaches a student: the report is a file for the instructor, and each flagged
submission's notebook is flagged in the gradebook (shown in formgrader, never in feedback). nbgrader has no
instructor-only comment: its gradebook comments are printed in the students' feedback, so no finding goes there.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import inspect
import io
import json
import pathlib
import re
import textwrap
import warnings

from . import manifest

REPORT_NAME = "similarity_report.csv"
REPORT_FIELDS = ("assignment", "student", "matched_with", "functions", "similarity", "details")
K = 25  # copydetect's noise threshold (its default): matches shorter than 25 tokenised characters are ignored
WINDOW = 1  # guarantee threshold = noise threshold (copydetect's default): every k-gram kept, so deterministic
THRESHOLD = 0.65  # measured (module docstring): code not copied at most 0.57, copies at least 0.79
MIN_CHARS = 120  # tokenised characters of a body; shorter functions are not compared
COURSE_PKG = "course_pkg"
BOOK = pathlib.Path(__file__).resolve().parents[1] / "book"

_STUB = re.compile(r"^\s*raise\s+NotImplementedError\(\s*\)\s*$")
_MAGIC = re.compile(r"^\s*[%!]")


@dataclasses.dataclass
class Code:
    """One function's body, fingerprinted."""

    name: str  # the function's own name
    body: str  # normalised source (ast.unparse of the body without its docstring)
    fingerprint: object  # copydetect.CodeFingerprint
    size: int  # tokenised characters

    def similarity(self, other):
        """The share of this body's fingerprinted code found in other's."""
        from copydetect import compare_files

        if not self.fingerprint.token_coverage or not other.fingerprint.token_coverage:
            return 0.0
        _, (mine, _theirs), _ = compare_files(self.fingerprint, other.fingerprint)
        return float(mine)


@dataclasses.dataclass
class Finding:
    assignment: str
    student: str
    matched_with: str  # another student's id, "course_pkg" or "book chapter N"
    functions: dict  # graded function -> (similarity, the matched function's name)

    @property
    def similarity(self):
        return max(s for s, _ in self.functions.values())

    def row(self):
        details = "; ".join(f"{f} {s:.2f}" + (f" ({m})" if m != f else "")
                            for f, (s, m) in sorted(self.functions.items()))
        return {"assignment": self.assignment, "student": self.student, "matched_with": self.matched_with,
                "functions": " ".join(sorted(self.functions)), "similarity": f"{self.similarity:.2f}",
                "details": details}

    def text(self):
        return f"{self.assignment}: {', '.join(sorted(self.functions))} near-identical to {self.matched_with} " \
               f"(similarity {self.similarity:.2f})"


# ---------------------------------------------------------------------------------------------------------------
# Source: functions out of code, never run


def parse(source):
    """The module of a cell's code, IPython magics and shell lines removed; None if it is not Python."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. an invalid escape sequence in a string: the code is only read
        for text in (source, "\n".join("" if _MAGIC.match(line) else line for line in source.splitlines())):
            try:
                return ast.parse(text)
            except (SyntaxError, ValueError):
                continue
    return None


def functions(source, names=None):
    """{name: FunctionDef} defined anywhere in this code (the last definition of a name wins, as in a notebook)."""
    tree = parse(source)
    out = {}
    if tree is not None:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (names is None or node.name in names):
                out[node.name] = node
    return out


def body_source(node):
    """The function's body, normalised: no docstring, no comments, one layout (ast.unparse)."""
    body = list(node.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    return "\n".join(ast.unparse(stmt) for stmt in body)


def fingerprint(name, body, boilerplate=None):
    from copydetect import CodeFingerprint

    fp = CodeFingerprint(f"{name}.py", K, WINDOW, boilerplate=boilerplate, language="python",
                         fp=io.StringIO(body))
    return Code(name, body, fp, len(fp.filtered_code))


def _code_cells(nb, solution_only):
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if solution_only and not (isinstance(meta, dict) and meta.get("solution")):
            continue
        source = cell.get("source", "")
        yield "".join(source) if isinstance(source, list) else str(source)


def read_json(path):
    try:
        return json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def notebook_functions(nb, names, solution_only=True):
    """{name: FunctionDef} of these names in a notebook's (solution) cells, in cell order."""
    out = {}
    for source in _code_cells(nb or {}, solution_only):
        out.update(functions(source, names))
    return out


# ---------------------------------------------------------------------------------------------------------------
# What is compared


def graded_names(registry):
    """{graded function name: its reference function} of an assignment (its REGISTRY's specs)."""
    return {spec.name: spec.reference for spec in registry.specs.values()}


def reference_codes(references):
    out = {}
    for name, fn in references.items():
        try:
            node = functions(textwrap.dedent(inspect.getsource(fn)), {fn.__name__})[fn.__name__]
        except (OSError, TypeError, KeyError):
            continue
        code = fingerprint(name, body_source(node))
        if code.size:
            out[name] = code
    return out


_BOOK_CACHE = {}


def book_codes(book=BOOK):
    """{"book chapter N": [Code of every function defined in that chapter's code cells]} (the whole book)."""
    book = pathlib.Path(book)
    if book not in _BOOK_CACHE:
        chapters = {}
        for path in sorted(book.glob("*.ipynb")):
            match = re.match(r"(\d+)_", path.name)
            label = f"book chapter {int(match.group(1))}" if match else f"book {path.stem}"
            codes = [fingerprint(name, body_source(node))
                     for name, node in notebook_functions(read_json(path), None, solution_only=False).items()]
            codes = [c for c in codes if c.size >= MIN_CHARS]
            if codes:
                chapters.setdefault(label, []).extend(codes)
        _BOOK_CACHE[book] = chapters
    return _BOOK_CACHE[book]


def released_boilerplate(release_nb, names):
    """{name: fingerprint hashes of what the released notebook already has in that function's body}."""
    out = {}
    for name, node in notebook_functions(release_nb, names).items():
        code = fingerprint(name, body_source(node))
        out[name] = sorted(code.fingerprint.hashes)
    return out


def submission_codes(nb, names, boilerplate):
    """{name: Code} of the graded functions a submission wrote (unchanged stubs and tiny bodies left out)."""
    out = {}
    for name, node in notebook_functions(nb, names).items():
        body = body_source(node)
        if not body.strip() or all(_STUB.match(line) for line in body.splitlines()):
            continue
        code = fingerprint(name, body, boilerplate.get(name))
        if code.size >= MIN_CHARS:
            out[name] = code
    return out


# ---------------------------------------------------------------------------------------------------------------
# Comparing


def compare(assignment, submissions, references, book, threshold=THRESHOLD):
    """Findings for {student: {name: Code}} against each other, the references {name: Code} and the book
    {label: [Code]}; sorted by student, then what they match."""
    findings = []
    for student in sorted(submissions):
        mine = submissions[student]
        sources = [(other, {n: [c] for n, c in submissions[other].items()})
                   for other in sorted(submissions) if other != student]
        sources.append((COURSE_PKG, {n: [c] for n, c in references.items()}))
        sources += [(label, {n: codes for n in mine}) for label, codes in sorted(book.items(), key=_chapter_order)]
        for label, candidates in sources:
            matched = {}
            for name, code in sorted(mine.items()):
                best = max(((code.similarity(other), other.name) for other in candidates.get(name, [])),
                           default=(0.0, ""))
                if best[0] >= threshold:
                    matched[name] = best
            if matched:
                findings.append(Finding(assignment, student, label, matched))
    return findings


def _chapter_order(item):
    match = re.search(r"(\d+)$", item[0])
    return (int(match.group(1)) if match else 10**6, item[0])


def assignment_findings(course_root, assignment, students, registry=None, book=BOOK,
                        threshold=THRESHOLD, folder=None):
    """The findings of one assignment over these students' submitted notebooks (read only). folder(kind, student)
    is the course's folder of a kind ("release", "submitted"); default <course_root>/<kind>/[<student>/]<assignment>."""
    course_root = pathlib.Path(course_root)
    folder = folder or (lambda kind, student=".": course_root / kind / student / assignment)
    references = graded_names(registry or manifest.registry(assignment))
    names = set(references)
    release = sorted(pathlib.Path(folder("release")).glob("*.ipynb"))
    boilerplate = {}
    for path in release:
        boilerplate.update(released_boilerplate(read_json(path), names))
    submissions = {}
    for student in students:
        codes = {}
        for path in sorted(pathlib.Path(folder("submitted", student)).glob("*.ipynb")):
            try:
                codes.update(submission_codes(read_json(path), names, boilerplate))
            except (RecursionError, MemoryError, ValueError, TypeError, AttributeError):
                continue  # code too deeply nested to parse, or cells of the wrong type: nothing to compare
        submissions[student] = codes
    return compare(assignment, submissions, reference_codes(references), book_codes(book), threshold)


# ---------------------------------------------------------------------------------------------------------------
# Report and gradebook (classroom.py's autograde calls run() after grading)


def write_report(autograded_dir, findings, assignments):
    """Rows of these assignments replace their previous rows; other assignments' rows are kept. Sorted."""
    path = pathlib.Path(autograded_dir) / REPORT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    if path.exists():
        with open(path, newline="") as fh:
            rows = [row for row in csv.DictReader(fh) if row.get("assignment") not in set(assignments)]
    rows += [f.row() for f in findings]
    rows.sort(key=lambda r: (r["assignment"], r["student"], r["matched_with"]))
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, REPORT_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def flag_in_gradebook(course, findings):
    """Flag the notebooks of flagged submissions (instructor-only; scores and comments untouched)."""
    flagged = {(f.assignment, f.student) for f in findings}
    if not flagged:
        return
    with course.gradebook() as gb:
        for assignment, student in sorted(flagged):
            try:
                submission = gb.find_submission(assignment, student)
            except Exception:  # noqa: BLE001 - MissingEntry: not in the gradebook, the report still says it
                continue
            for nb in submission.notebooks:
                nb.flagged = True
        gb.db.commit()


def run(course, outcomes, book=BOOK, threshold=THRESHOLD):
    """Compare the graded submissions among these outcomes; write the report, flag the gradebook; return the
    summary line."""
    by_assignment = {}
    for o in outcomes:
        by_assignment.setdefault(o.assignment, [])
        if not o.problem:
            by_assignment[o.assignment].append(o.student)
    findings, skipped = [], []
    for assignment, students in sorted(by_assignment.items()):
        try:
            registry = manifest.course_assignment(course.root, assignment).registry
            findings += assignment_findings(course.root, assignment, sorted(students), registry, book,
                                            threshold, lambda kind, student=".": course.path(kind, student, assignment))
        except manifest.ManifestError:
            skipped.append(assignment)
    path = write_report(course.path("autograded"), findings, [a for a in by_assignment if a not in skipped])
    flag_in_gradebook(course, findings)
    flagged = sorted({(f.assignment, f.student) for f in findings})
    line = (f"Similarity (copydetect, threshold {threshold:.2f}): {len(flagged)} of "
            f"{sum(map(len, by_assignment.values()))} graded submission(s) flagged for the instructor, "
            f"{len(findings)} match(es): {path}")
    if skipped:
        line += f" (no checks found for {', '.join(skipped)}: not compared)"
    return line
