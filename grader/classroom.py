"""Autograde a whole class with stock nbgrader, so that no submission stops the grading of the others.

    python -m grader.classroom autograde [--course DIR] [--assignment ID ...] [--timeout SECONDS]
                                         [--submission-timeout SECONDS] [--jobs N] [--unsafe-no-sandbox]
                                         [--no-similarity] [--db-url URL]
                                         [--engine threads|dask] [--scheduler ADDRESS] [--regrade]
    python -m grader.classroom feedback [--course DIR] [--assignment ID ...]
    python -m grader.classroom grades [--course DIR] [--to FILE]      (also: export)

autograde:
1. starts the sandbox pool (grader/sandbox.py): `jobs` warm slots; if the sandbox cannot be made it stops here,
   before any submission is touched, and says why;
2. checks every submission <course>/submitted/<student>/<assignment>/ before nbgrader sees it: a notebook that is
   not valid JSON or not an nbformat notebook, or expected notebooks missing (renamed: the .ipynb files found are
   named), cannot be graded; deleted and duplicated test cells are noted (the course's nbgrader configuration puts
   deleted ones back and grades the last copy of a duplicated one);
3. runs nbgrader's Autograde in this process for each submission left, `jobs` at once: the course's configuration
   runs the student's cells in a sandboxed worker and scores the test cells in this process (SandboxExecute), so a
   crash, an endless loop or an attack costs at most that submission;
4. reads from each autograded notebook what happened in it (cells timed out, a worker that died, cells not run,
   output cut to the size limit), and from nbgrader's log what its protection of the locked and graded cells
   repaired (a locked cell edited, a cell's type, lock or points changed: nbgrader put the original back);
5. records a submission that could not be graded in the gradebook: 0 for each of its grades, the reason in its
   comments, the notebook flagged; submissions graded with problems are flagged too. Other students' grades are
   never touched, and submitted files are only read.
It writes <course>/autograded/grading_report.csv (student, assignment, status, score, max_score, reason), appends
nbgrader's warnings and errors for each submission to <course>/autograded/autograde.log, and prints a summary.
Then (unless --no-similarity) grader/similarity.py compares the graded functions of the graded submissions with each
other's, course_pkg's and the book's: <course>/autograded/similarity_report.csv, the flagged notebooks flagged in the
gradebook, one summary line; no score or comment changes.

--engine dask (`make autograde ENGINE=dask`) or --scheduler ADDRESS: the same grading, one Dask task per
submission on a LocalCluster of --jobs worker processes or on an existing cluster, resumable and exclusive through
the grading ledger in the gradebook's database (grader/cluster.py, grader/ledger.py). --db-url: the gradebook's
database instead of the configuration's (grader/gradebook_db.py checks it first, for every command).

feedback runs `nbgrader generate_feedback <assignment> --force`. grades writes <course>/grades.csv: nbgrader
export's columns (from the gradebook), one row per student and assignment sorted by student then assignment, and a
status column: graded, not submitted (the score columns empty) or "not graded: <why>".
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import csv
import dataclasses
import json
import logging
import os
import pathlib
import re
import shutil
import subprocess
import sys
import threading
import time
import traceback
import warnings

from . import engine, gradebook_db
from . import nbgrader_ext  # (also loaded by the course's configuration: nbgrader's gradebook without SAWarnings)
from .sandbox import Pool, SandboxError

REPORT_NAME = "grading_report.csv"
REPORT_FIELDS = ("student", "assignment", "status", "score", "max_score", "reason")
GRADED, WITH_PROBLEMS, NOT_GRADED = "graded", "graded-with-problems", "not-graded"

_EXCEPTION_LINE = re.compile(r"^\s*((?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception)): (.+)$")


def default_course():
    """The course folder: the current directory if it has nbgrader_config.py, otherwise this repository's."""
    here = pathlib.Path.cwd()
    if (here / "nbgrader_config.py").exists():
        return here
    return pathlib.Path(__file__).resolve().parents[2] / "assignments"


@dataclasses.dataclass
class Course:
    """The paths and settings nbgrader uses for one course folder (read from its nbgrader_config.py)."""

    root: pathlib.Path
    coursedir: object  # nbgrader.coursedir.CourseDirectory
    config: object  # traitlets Config
    db_url: str | None = None  # the gradebook's database given on the command line (None: the configuration's)

    @classmethod
    def load(cls, root, db_url=None):
        """db_url: the gradebook's database instead of the configuration's c.CourseDirectory.db_url."""
        from nbgrader.coursedir import CourseDirectory
        from traitlets.config.loader import PyFileConfigLoader

        root = pathlib.Path(root).resolve()
        if not (root / "nbgrader_config.py").exists():
            raise SystemExit(f"{root} is not an nbgrader course: it has no nbgrader_config.py")
        gradebook_db.tune_sqlite()  # (a SQLite gradebook: WAL, no fsync per commit; see there)
        config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
        if db_url:
            config.CourseDirectory.db_url = db_url
        coursedir = CourseDirectory(config=config)
        coursedir.root = str(root)
        return cls(root, coursedir, config, db_url or None)

    def path(self, kind, student=".", assignment="."):
        directory = getattr(self.coursedir, f"{kind}_directory")
        return pathlib.Path(os.path.normpath(self.coursedir.format_path(directory, student, assignment)))

    @contextlib.contextmanager
    def gradebook(self):
        from nbgrader.api import Gradebook

        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
            yield gb

    def check_gradebook(self):
        """None if the gradebook's database can be used, else why not (one line, no password)."""
        try:
            gradebook_db.check(self.coursedir.db_url)
        except gradebook_db.GradebookError as exc:
            return str(exc)
        return None

    def restores_deleted_cells(self):
        return bool(self.config.OverwriteCells.get("add_missing_cells", False))


@dataclasses.dataclass
class Outcome:
    """What happened to one submission (student, assignment)."""

    student: str
    assignment: str
    problem: str | None = None  # why nothing could be graded
    notes: list = dataclasses.field(default_factory=list)  # what was graded with a problem, or repaired
    deleted: set = dataclasses.field(default_factory=set)  # (notebook, grade_id) of graded cells not submitted
    score: float = 0.0
    max_score: float = 0.0

    @property
    def status(self):
        return NOT_GRADED if self.problem else (WITH_PROBLEMS if self.notes else GRADED)

    @property
    def reason(self):
        return "; ".join(([self.problem] if self.problem else []) + self.notes)


# ---------------------------------------------------------------------------------------------------------------
# 1. Before nbgrader: can the submission be graded?


@dataclasses.dataclass
class Expected:
    """One notebook of an assignment, as the gradebook knows it."""

    name: str
    grade_cells: list
    solution_cells: list


def expected_notebooks(course, assignment):
    with course.gradebook() as gb:
        found = gb.find_assignment(assignment)
        return [Expected(nb.name, [c.name for c in nb.grade_cells], [c.name for c in nb.solution_cells])
                for nb in found.notebooks]


def read_notebook(path, max_bytes):
    """(notebook, None) or (None, why it cannot be read)."""
    import nbformat

    size = path.stat().st_size
    if size > max_bytes:
        return None, f"{path.name} is too large to grade ({size / 1e6:.0f} MB; the limit is {max_bytes / 1e6:.0f} MB)"
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"{path.name} is not UTF-8 text (byte {exc.start})"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"{path.name} is not valid JSON ({exc.msg}: line {exc.lineno}, column {exc.colno})"
    if not isinstance(data, dict) or "cells" not in data or "nbformat" not in data:
        keys = ", ".join(map(repr, list(data)[:5])) if isinstance(data, dict) else type(data).__name__
        return None, f"{path.name} is JSON but not a Jupyter notebook (no 'cells' and 'nbformat'; found {keys})"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. duplicated cell ids, which nbformat repairs as nbgrader reads it
            nb = nbformat.convert(nbformat.from_dict(data), 4)
            nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 - whatever nbformat rejects, nbgrader cannot read
        first = str(exc).strip().split("\n")[0][:200]
        return None, f"{path.name} is not a valid Jupyter notebook (nbformat 4): {first}"
    return nb, None


def _grade_ids(nb):
    ids = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if isinstance(meta, dict) and meta.get("grade_id"):
            ids.append(meta["grade_id"])
    return ids


def inspect_submission(course, outcome, expected, max_bytes):
    """Fill outcome.problem (cannot be graded) and outcome.notes (graded, with repairs) from the submitted files.

    A notebook nbgrader cannot read makes the whole submission ungradable (nbgrader stops on it; the course's
    assignments have one notebook each). Deleted and duplicated cells are noted; nbgrader handles them.
    """
    folder = course.path("submitted", outcome.student, outcome.assignment)
    found = sorted(p.name for p in folder.glob("*.ipynb"))
    gradable, missing, unreadable = [], [], []
    for exp in expected:
        path = folder / f"{exp.name}.ipynb"
        if not path.is_file():
            missing.append(path.name)
            continue
        nb, why = read_notebook(path, max_bytes)
        if why:
            unreadable.append(why)
            continue
        gradable.append(exp.name)
        ids = _grade_ids(nb)
        deleted = [g for g in exp.grade_cells if g not in ids]
        outcome.deleted.update((exp.name, g) for g in deleted)
        if deleted:
            what = ("put back from the source version and graded" if course.restores_deleted_cells()
                    else "scored 0")
            outcome.notes.append(f"{exp.name}.ipynb: graded cell(s) {', '.join(deleted)} deleted: {what}")
        gone = [g for g in exp.solution_cells if g not in ids and g not in exp.grade_cells]
        if gone:
            outcome.notes.append(f"{exp.name}.ipynb: solution cell(s) {', '.join(gone)} deleted")
        for grade_id in sorted({g for g in ids if ids.count(g) > 1}):
            outcome.notes.append(f"{exp.name}.ipynb: cell {grade_id} appears {ids.count(grade_id)} times: the last "
                                 "copy was graded, the others ran as ordinary cells")
    others = [name for name in found if name not in {f"{e.name}.ipynb" for e in expected}]
    if missing:
        seen = f"found: {', '.join(others)}" if others else "no other .ipynb file found"
        text = (f"{', '.join(missing)} missing ({seen}); a renamed notebook is not graded: it must keep its "
                "original name")
        if gradable and not unreadable:
            outcome.notes.append(text + "; the missing notebook scores 0")  # nbgrader grades the others
        else:
            unreadable.insert(0, text)
    if unreadable:  # nbgrader would stop on it: the submission is not given to nbgrader at all
        outcome.problem = "; ".join(unreadable)
        outcome.notes.clear()


# ---------------------------------------------------------------------------------------------------------------
# 2. nbgrader, in this process, `jobs` submissions at once on the sandbox pool


class _ThreadLog(logging.Handler):
    """The log lines of one thread (nbgrader's apps share one logger)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.thread = threading.get_ident()
        self.lines = []
        self.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))

    def emit(self, record):
        if threading.get_ident() == self.thread:
            self.lines.append(self.format(record))


_ENV_LOCK = threading.Lock()
_ENV_USERS = {}


@contextlib.contextmanager
def _shared_setenv(**kwargs):
    """nbgrader.utils.setenv for threads: nbgrader sets NBGRADER_EXECUTION around each notebook and deletes it
    after, so two notebooks graded at once in one process raise KeyError; here the last one out removes it."""
    with _ENV_LOCK:
        for key, value in kwargs.items():
            _ENV_USERS[key] = _ENV_USERS.get(key, 0) + 1
            os.environ[key] = value
    try:
        yield
    finally:
        with _ENV_LOCK:
            for key in kwargs:
                _ENV_USERS[key] -= 1
                if not _ENV_USERS[key]:
                    os.environ.pop(key, None)


def autograde_one(course, assignment, student, overrides):
    """Run nbgrader's Autograde for one submission here: (None if it graded it, else why not; nbgrader's log lines
    for it). The student's code runs in the sandbox (SandboxExecute), so nbgrader itself cannot be stopped or
    corrupted by it."""
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    config = Config(course.config)
    config.merge(overrides)
    coursedir = CourseDirectory(config=config)
    coursedir.root, coursedir.assignment_id, coursedir.student_id = str(course.root), assignment, student
    app = Autograde(coursedir=coursedir, config=config)
    app.force, app.create_student = True, True
    handler = _ThreadLog()
    app.log.addHandler(handler)
    try:
        app.start()
    except SandboxError:
        raise
    except BaseException as exc:  # noqa: BLE001 - nbgrader's own failure on this submission
        return failure_reason(handler.lines + traceback.format_exception_only(type(exc), exc), None), handler.lines
    finally:
        app.log.removeHandler(handler)
    if any("database is locked" in line for line in handler.lines):
        return "nbgrader failed: database is locked", handler.lines
    return None, handler.lines


def failure_reason(lines, returncode, log_name="autograded/autograde.log"):
    """Why nbgrader did not grade a submission, from its log lines for it (a record may hold several lines: the
    traceback nbgrader logs). The exception that stopped nbgrader, rather than the NbGraderException that it raises
    after it ("Please see the above traceback")."""
    lines = [part for line in lines for part in str(line).split("\n")]
    exceptions = [m for m in map(_EXCEPTION_LINE.match, lines) if m]
    cause = [m for m in exceptions if not m.group(1).endswith("NbGraderException")]
    exceptions = cause or exceptions
    if exceptions:
        name, message = exceptions[-1].groups()
        return f"nbgrader failed: {name.rsplit('.', 1)[-1]}: {message.strip()}"
    for index, line in enumerate(lines):
        if "ERROR]" in line and "There was an error processing" not in line and "Please see" not in line:
            text = line.split("]", 1)[1].strip()
            follow = [x.strip() for x in lines[index + 1:index + 3] if x.startswith(" ")]
            return "nbgrader failed: " + " ".join([text, *follow]).strip()
    return f"nbgrader did not grade it (see {log_name})"


# ---------------------------------------------------------------------------------------------------------------
# 3. After nbgrader: what happened inside the notebooks


_CHANGED = re.compile(r"Attribute '(\w+)' for cell (.+?) has changed! \(should be: (.*), got: (.*)\)$")
_UNKNOWN_CELL = re.compile(r"Cell '(.+)' does not exist in the database$")
_SANITIZING = re.compile(r"Sanitizing (.+\.ipynb)$")


def log_notes(lines):
    """What nbgrader's protection of the locked and graded cells repaired, from its log lines for one submission:
    a locked cell whose source was edited (nbgrader's checksum), a cell whose type, lock or points were changed
    (nbgrader puts the original back in each case), a graded cell the source does not have (run as an ordinary
    cell)."""
    notes, notebook = [], "?"
    for line in lines:
        message = line.split("] ", 1)[-1]
        found = _SANITIZING.search(message)
        if found:
            notebook = os.path.basename(found.group(1))
            continue
        found = _CHANGED.search(message)
        if found:
            attr, cell, old, new = found.groups()
            if attr == "checksum":
                notes.append(f"{notebook}: locked cell {cell} edited: the original was put back")
            else:
                notes.append(f"{notebook}: cell {cell}: {attr} changed from {old} to {new}: set back to {old}")
            continue
        found = _UNKNOWN_CELL.search(message)
        if found:
            notes.append(f"{notebook}: cell {found.group(1)} is not a cell of the assignment: run as an ordinary "
                         "cell")
    return list(dict.fromkeys(notes))


def notebook_notes(path):
    """Problems GuardedExecute, nbgrader's timeout and the output limits left in an autograded notebook."""
    import nbformat

    from . import nbgrader_ext as ext

    nb = nbformat.read(str(path), as_version=4)
    notes, cut = [], []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        name = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {index + 1}"
        for out in cell.outputs:
            if out.output_type == "error" and out.ename in (ext.KERNEL_DIED, ext.NOT_RUN, ext.CELL_TIMEOUT):
                what = out.evalue or "timed out (interrupted after the time limit per cell)"
                notes.append(f"{name}: {what}")
            elif ext.CUT_MARK in json.dumps(out) and name not in cut:
                cut.append(name)
    if cut:
        notes.append(f"output cut to the size limit in {', '.join(cut)}")
    return [f"{path.name}: {note}" for note in notes]


# ---------------------------------------------------------------------------------------------------------------
# 4. Gradebook and report


NOT_GRADED_COMMENT = "Not graded: "


def record_not_graded(course, outcome, notebooks):
    """0 for every grade of these notebooks, the reason in their comments, the notebooks flagged."""
    timestamp = course.coursedir.get_existing_timestamp(
        str(course.path("submitted", outcome.student, outcome.assignment)))
    with course.gradebook() as gb:
        gb.update_or_create_student(outcome.student)
        extra = {"timestamp": timestamp} if timestamp else {}
        submission = gb.update_or_create_submission(outcome.assignment, outcome.student, **extra)
        for nb in submission.notebooks:
            if nb.name not in notebooks:
                continue
            for grade in nb.grades:
                grade.auto_score = 0.0
                grade.needs_manual_grade = False
            for comment in nb.comments:
                comment.auto_comment = f"{NOT_GRADED_COMMENT}{outcome.problem}"
            nb.flagged = True
        gb.db.commit()


def finish_graded(course, outcome):
    """Flag a submission graded with problems. Without restoring (stock nbgrader), a deleted graded cell's grade is
    left empty, "needs manual grade": it gets 0 instead, with the reason in the report."""
    deleted = set() if course.restores_deleted_cells() else outcome.deleted
    with course.gradebook() as gb:
        submission = gb.find_submission(outcome.assignment, outcome.student)
        for nb in submission.notebooks:
            for grade in nb.grades:
                if (nb.name, grade.name) in deleted:
                    grade.auto_score = 0.0
                    grade.needs_manual_grade = False
            if outcome.notes:
                nb.flagged = True
        gb.db.commit()


def read_scores(course, outcome):
    with course.gradebook() as gb:
        try:
            submission = gb.find_submission(outcome.assignment, outcome.student)
        except Exception:  # noqa: BLE001 - MissingEntry: nothing recorded
            return
        outcome.score, outcome.max_score = float(submission.score), float(submission.max_score)


LOG_NAME = "autograde.log"


_EXPECTED_WARNING = "Removing existing assignment:"  # every submission graded before: the run's --force


def write_log(course, logs):
    """Append nbgrader's warnings and errors for each submission of this run to <course>/autograded/autograde.log
    (a run's header, then a block per submission that has any; INFO lines and nbgrader's warning that it replaces
    an earlier autograded copy, which a new run always does, are left out)."""
    path = course.path("autograded") / LOG_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    blocks = []
    for (assignment, student), lines in sorted(logs.items(), key=lambda item: (item[0][1], item[0][0])):
        kept = [line for line in lines if (not line.startswith("[INFO]") or "graded again" in line)
                and _EXPECTED_WARNING not in line]
        if kept:
            blocks.append(f"== {student} / {assignment}\n" + "".join(f"{line}\n" for line in kept))
    with open(path, "a") as fh:
        fh.write(f"# autograde {time.strftime('%Y-%m-%d %H:%M:%S')}: {len(logs)} submission(s) given to nbgrader, "
                 f"{len(blocks)} with warnings or errors\n" + "".join(blocks))
    return path


def write_report(course, outcomes):
    """Rows for these submissions replace their previous rows; rows of other submissions are kept."""
    path = course.path("autograded") / REPORT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = {}
    if path.exists():
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                rows[(row["student"], row["assignment"])] = row
    for o in outcomes:
        rows[(o.student, o.assignment)] = {"student": o.student, "assignment": o.assignment, "status": o.status,
                                           "score": f"{o.score:g}", "max_score": f"{o.max_score:g}",
                                           "reason": o.reason}
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, REPORT_FIELDS)
        writer.writeheader()
        for key in sorted(rows, key=lambda k: (k[1], k[0])):
            writer.writerow(rows[key])
    return path


# ---------------------------------------------------------------------------------------------------------------
# Commands


def _env():
    """nbgrader runs `alembic` from PATH when it creates a gradebook: this Python's bin/ first."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    return env


def _nbgrader(*args):
    return [sys.executable, "-m", "nbgrader", *args]


def submitted_assignments(course):
    return sorted({p.name for p in course.path("submitted").glob("*/*") if p.is_dir()})


def known_assignments(course):
    with course.gradebook() as gb:
        return [a.name for a in gb.assignments]


def prepare_assignment(course, assignment, options):
    """The Outcomes of one assignment's submissions, with those that cannot be graded already decided."""
    students = sorted(p.parent.name for p in course.path("submitted").glob(f"*/{assignment}") if p.is_dir())
    outcomes = {s: Outcome(s, assignment) for s in students}
    if assignment not in known_assignments(course):
        for o in outcomes.values():
            o.problem = f"assignment {assignment} is not in the gradebook (run nbgrader generate_assignment first)"
        return outcomes, []
    expected = expected_notebooks(course, assignment)
    for outcome in outcomes.values():
        if re.search(r"[,*?\[\]]", outcome.student):  # nbgrader reads student ids as globs and lists
            outcome.problem = f"the folder name {outcome.student!r} cannot be a student id for nbgrader (,*?[])"
            continue
        inspect_submission(course, outcome, expected, options.max_notebook_mb * 1e6)
    return outcomes, expected


def overrides(options):
    """Configuration for this run on top of the course's nbgrader_config.py."""
    from traitlets.config import Config

    config = Config()
    if options.timeout is not None:
        config.SandboxExecute.cell_timeout = float(options.timeout)
    if options.submission_timeout_given:
        config.SandboxExecute.notebook_timeout = float(options.submission_timeout)
    return config


def _record(course, assignment, outcomes, results, names, logs):
    """After nbgrader's runs: record each submission's problems and notes in the gradebook and read its scores.
    results: {student: why nbgrader did not grade it, or None}; logs: {student: nbgrader's log lines}."""
    scrub = nbgrader_ext.PathScrubber([course.root])
    for student, outcome in outcomes.items():
        if outcome.problem is None and results.get(student):
            outcome.problem = scrub(results[student])  # (it becomes the gradebook's comment)
            dest = course.path("autograded", student, assignment)
            if dest.exists():  # what a stopped run left must not look graded
                shutil.rmtree(dest, ignore_errors=True)
        if outcome.problem:
            record_not_graded(course, outcome, names)
        else:
            outcome.notes.extend(log_notes(logs.get(student, [])))
            for name in names:
                path = course.path("autograded", student, assignment) / f"{name}.ipynb"
                if path.exists():
                    outcome.notes.extend(notebook_notes(path))
                outcome.notes.extend(f"{name}.ipynb: {note}" for note in engine.take_notes((assignment, student, name)))
            finish_graded(course, outcome)
        read_scores(course, outcome)


def _submitted_size(course, assignment, student):
    """Bytes of a submission's notebooks: a rough measure of how long it takes to grade."""
    return sum(p.stat().st_size for p in course.path("submitted", student, assignment).glob("*.ipynb"))


def grade_class(course, assignments, options, sandboxes, say=print):
    """Autograde every submission of these assignments on a started sandbox pool; return the Outcomes (the report
    is not written)."""
    from . import pool as shared_pool

    import nbgrader.utils

    nbgrader.utils.setenv = _shared_setenv
    shared_pool.use(sandboxes)
    from traitlets.log import get_logger

    log = get_logger()  # nbgrader's converters log here (to no handler but each thread's _ThreadLog)
    level = log.level
    log.setLevel(logging.INFO)  # "Sanitizing <notebook>" tells log_notes which notebook a warning is about
    here = os.getcwd()
    os.chdir(course.root)  # nbgrader changes to the course folder and back, in every thread: make that a no-op
    try:
        prepared = {a: prepare_assignment(course, a, options) for a in assignments}
        jobs = [(a, s) for a, (outcomes, _) in prepared.items() for s, o in sorted(outcomes.items())
                if o.problem is None]
        jobs.sort(key=lambda job: -_submitted_size(course, *job))  # the longest first: the threads finish together
        config = overrides(options)
        with course.gradebook() as gb:  # one by one here: two threads must not create one student at once
            for student in sorted({s for _, s in jobs}):
                gb.update_or_create_student(student)
        results, logs = {}, {}
        with warnings.catch_warnings(), gradebook_db.kept_open(course.coursedir.db_url):  # (around all the threads)
            from nbformat.warnings import DuplicateCellId

            # a submission whose cells share an id (a cell copied in a text editor): nbformat gives the copy a new id
            # as nbgrader reads it; the file cannot be repaired (submissions are only read) and a duplicated graded
            # cell is in the report already (inspect_submission)
            warnings.simplefilter("ignore", DuplicateCellId)
            with concurrent.futures.ThreadPoolExecutor(max(1, options.jobs)) as threads:
                futures = {threads.submit(autograde_one, course, a, s, config): (a, s) for a, s in jobs}
                for future in concurrent.futures.as_completed(futures):
                    results[futures[future]], logs[futures[future]] = future.result()
            for job, why in sorted(results.items()):
                if why:  # nbgrader failed on it beside another thread (a locked gradebook, a race): once more, alone
                    results[job], again = autograde_one(course, *job, config)
                    logs[job] = [*logs[job], f"[INFO] nbgrader failed ({why}): graded again, alone", *again]
    finally:
        shared_pool.use(None)
        log.setLevel(level)
        os.chdir(here)
    write_log(course, logs)
    outcomes = []
    for assignment, (assignment_outcomes, expected) in prepared.items():
        done = {s: why for (a, s), why in results.items() if a == assignment}
        _record(course, assignment, assignment_outcomes, done, [e.name for e in expected],
                {s: lines for (a, s), lines in logs.items() if a == assignment})
        outcomes += list(assignment_outcomes.values())
        say(f"{assignment}: {len(assignment_outcomes)} submission(s), {len(done)} given to nbgrader")
    return outcomes


def cmd_autograde(options, say=print):
    start = time.monotonic()
    course = Course.load(options.course, options.db_url)
    why = course.check_gradebook()  # before any submission is touched
    if why:
        say(f"Cannot grade: {why}")
        return 2
    assignments = options.assignment or [a for a in submitted_assignments(course)]
    if not assignments:
        say(f"No submissions under {course.path('submitted')}")
        return 0
    if options.engine == "dask" or options.scheduler:
        return autograde_dask(course, assignments, options, say, start)
    try:  # before any submission is touched: no sandbox, no grading
        sandboxes = Pool(options.jobs, unsafe_no_sandbox=options.unsafe_no_sandbox).start()
    except SandboxError as exc:
        say(f"Cannot grade: {exc}")
        return 2
    if options.unsafe_no_sandbox:
        say("WARNING: --unsafe-no-sandbox: the students' code runs without the sandbox and can read this course "
            "folder and use the network (scores still come from the grader).")
    say(f"Sandbox pool: {len(sandboxes.slots)} slot(s) ready in {sandboxes.start_seconds:.1f} s")
    if not options.unsafe_no_sandbox and any(slot.cgroups is None for slot in sandboxes.slots):
        say("Note: no pids/memory cgroup per slot here (they need root and cgroup v1): the workers are held by "
            "rlimits only, which do not count shared memory and count processes per uid.")
    try:
        outcomes = grade_class(course, assignments, options, sandboxes, say)
    finally:
        sandboxes.stop()
    report = write_report(course, outcomes)
    seconds = time.monotonic() - start
    counts = {status: sum(o.status == status for o in outcomes) for status in (GRADED, WITH_PROBLEMS, NOT_GRADED)}
    students = {o.student for o in outcomes}
    say(f"\nAutograded {len(outcomes)} submission(s) of {len(students)} student(s) in {seconds:.1f} s: "
        f"{counts[GRADED]} graded, {counts[WITH_PROBLEMS]} graded with problems, {counts[NOT_GRADED]} not graded.")
    for o in outcomes:
        if o.status != GRADED:
            say(f"  {o.student} / {o.assignment}: {o.status}, {o.score:g} of {o.max_score:g}: {o.reason}")
    say(f"Report: {report}")
    if not options.no_similarity:
        say(_similarity(course, outcomes))
    return 0


def autograde_dask(course, assignments, options, say, start):
    """cmd_autograde on Dask distributed (grader/cluster.py), resumable through the ledger (grader/ledger.py).
    Exit status: 0, 2 (could not start: nothing touched) or 1 (the engine failed on some submission: it is left
    ungraded and unclaimed, for the next run)."""
    from distributed import as_completed

    from . import cluster, ledger

    try:  # before any submission is touched: the scheduler, then every worker (course folder, gradebook, sandbox)
        client, local = cluster.start(options)
    except cluster.ClusterError as exc:
        say(f"Cannot grade: {exc}")
        return 2
    try:
        where = f"Dask scheduler {client.scheduler.address}" + (" (a LocalCluster)" if local else "")
        workers = client.run(cluster.check_worker, str(course.root), course.db_url, options.unsafe_no_sandbox)
        if not workers:
            say(f"Cannot grade: the {where} has no worker")
            return 2
        for address, why in sorted(workers.items()):
            if why:
                say(f"Cannot grade: worker {address} of the {where}: {why}")
                return 2
        if options.unsafe_no_sandbox:
            say("WARNING: --unsafe-no-sandbox: the students' code runs without the sandbox and can read this course "
                "folder and use the network (scores still come from the grader).")
        say(f"{where}: {len(workers)} worker(s), each with a sandbox slot, ready in {time.monotonic() - start:.1f} s")
        return _grade_on_cluster(course, assignments, options, say, start, client, ledger, as_completed)
    finally:
        try:  # the workers' gradebook connections closed cleanly (a SQLite gradebook's write-ahead log folded in)
            client.run(cluster.forget_engines)
        except Exception:  # noqa: BLE001 - a worker gone: its connections went with it
            pass
        client.close()
        if local is not None:
            local.close()


def _grade_on_cluster(course, assignments, options, say, start, client, ledger, as_completed):
    from . import cluster

    book = ledger.Ledger(course.coursedir.db_url, course.coursedir.course_id,
                         lease_seconds=max(3600.0, 4 * options.submission_timeout))
    config = overrides(options)
    prepared = {a: prepare_assignment(course, a, options) for a in assignments}
    outcomes, resumed, busy, failed, tasks = [], [], [], [], []
    with course.gradebook() as gb:  # one by one here: two workers must not create one student at once
        for student in sorted({s for outs, _ in prepared.values() for s, o in outs.items() if o.problem is None}):
            gb.update_or_create_student(student)
    for assignment, (assignment_outcomes, expected) in prepared.items():
        grading = grading_digest(course, assignment)
        for student, outcome in sorted(assignment_outcomes.items()):
            folder = course.path("submitted", student, assignment)
            digest = ledger.combined(ledger.content_hash(folder), grading)
            state, found = book.claim(assignment, student, digest, again=options.regrade)
            if state == ledger.RESUME:
                resumed.append((outcome, found))
                continue
            if state == ledger.BUSY:
                busy.append((outcome, found))
                continue
            if outcome.problem is not None:  # cannot be graded: recorded here, at once
                _record(course, assignment, {student: outcome}, {}, [e.name for e in expected], {})
                book.finish(assignment, student, digest, ledger.Result(outcome.status, outcome.score,
                                                                       outcome.max_score, outcome.reason))
                outcomes.append(outcome)
                continue
            tasks.append((cluster.Task(str(course.root), course.db_url, options.unsafe_no_sandbox,
                                       course.coursedir.course_id, book.run_id, assignment, student, digest,
                                       [e.name for e in expected], config), outcome))
    tasks.sort(key=lambda t: -_submitted_size(course, t[0].assignment, t[0].student))  # the longest first
    futures = {client.submit(cluster.grade, task, outcome, key=f"grade-{task.assignment}-{task.student}-"
                             f"{book.run_id[:8]}", pure=False, retries=0): (task, outcome)
               for task, outcome in tasks}
    logs = {}
    from tqdm import tqdm

    with tqdm(total=len(futures), desc="Grading", unit="submission", disable=None) as bar:
        for future in as_completed(futures):
            task, outcome = futures.pop(future)
            try:
                graded, lines, kept = future.result()
                future.release()  # (the scheduler forgets it: a worker that dies later does not run it again)
            except Exception as exc:  # noqa: BLE001 - the engine failed (KilledWorker too often, a sandbox error)
                future.release()
                book.release(task.assignment, task.student)
                failed.append((outcome, f"{type(exc).__name__}: {exc}".split("\n")[0]))
                bar.update()
                continue
            logs[(task.assignment, task.student)] = lines
            if not kept:
                graded.notes.append("the ledger's claim was lost to another run (its result was kept)")
            outcomes.append(graded)
            bar.update()
    book.close()
    earlier = [_from_ledger(o, r) for o, r in resumed]  # (a killed run's results, too: the report has them all)
    with _report_lock(course):  # (another run on this course may write them now: one at a time, none lost)
        write_log(course, logs)
        report = write_report(course, outcomes + earlier)
    seconds = time.monotonic() - start
    counts = {status: sum(o.status == status for o in outcomes) for status in (GRADED, WITH_PROBLEMS, NOT_GRADED)}
    say(f"\nAutograded {len(outcomes)} submission(s) in {seconds:.1f} s: {counts[GRADED]} graded, "
        f"{counts[WITH_PROBLEMS]} graded with problems, {counts[NOT_GRADED]} not graded; {len(resumed)} resumed "
        f"(graded before from the same files), {len(busy)} being graded by another run, {len(failed)} failed in "
        "the engine.")
    for o in outcomes:
        if o.status != GRADED:
            say(f"  {o.student} / {o.assignment}: {o.status}, {o.score:g} of {o.max_score:g}: {o.reason}")
    for o, owner in busy:
        say(f"  {o.student} / {o.assignment}: being graded by another run ({owner}): left to it")
    for o, why in failed:
        say(f"  {o.student} / {o.assignment}: the grading engine failed ({why}): not graded, run again")
    say(f"Report: {report}")
    if not options.no_similarity:
        say(_similarity(course, outcomes + earlier))
    return 1 if failed else 0


@contextlib.contextmanager
def _report_lock(course):
    """An exclusive lock on <course>/autograded/.report.lock while a run of the Dask engine rewrites the report
    (read, merge its rows, write): two runs at once on one course would otherwise lose each other's rows."""
    import fcntl

    path = course.path("autograded") / ".report.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def grading_digest(course, assignment):
    """sha256 of what decides an assignment's grades besides the submission: the course's nbgrader_config.py and
    manifest.toml, the assignment's source folder and its checks module's file (a change to any of them: a re-run
    grades the assignment again)."""
    import hashlib
    import importlib.util

    from . import ledger, manifest

    digest = hashlib.sha256()
    for name in ("nbgrader_config.py", "manifest.toml"):
        path = course.root / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.exists() else b""))
    source = course.path("source", ".", assignment)
    digest.update(ledger.content_hash(source).encode() if source.is_dir() else b"no source")
    try:
        spec = importlib.util.find_spec(manifest.course_assignment(course.root, assignment).checks)
        digest.update(pathlib.Path(spec.origin).read_bytes())
    except Exception:  # noqa: BLE001 - not in the manifest or not importable here: the workers will say so
        digest.update(b"no checks module")
    return digest.hexdigest()


def _from_ledger(outcome, result):
    """The Outcome of a submission graded by an earlier run, from the ledger's result."""
    problem = result.reason if result.status == NOT_GRADED else None
    notes = [result.reason] if result.status == WITH_PROBLEMS and result.reason else []
    return dataclasses.replace(outcome, problem=problem, notes=notes, score=float(result.score or 0.0),
                               max_score=float(result.max_score or 0.0))


def _similarity(course, outcomes):
    """Copying flagged for the instructor (grader/similarity.py), after grading: a report and gradebook flags,
    never a score or a word to students. Its failure never fails the grading."""
    from . import similarity

    try:
        return similarity.run(course, outcomes)
    except Exception as exc:  # noqa: BLE001 - the grades are recorded already
        return f"Similarity check failed ({type(exc).__name__}: {exc}); grades are not affected"


def _run_each(course, assignments, make_args, what, say):
    failures = 0
    for assignment in assignments:
        given = [f"--CourseDirectory.db_url={course.db_url}"] if course.db_url else []  # (--db-url)
        proc = subprocess.run(_nbgrader(*make_args(assignment), *given), cwd=course.root, env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        errors = [line for line in proc.stdout.splitlines() if "| ERROR]" in line]
        if proc.returncode:
            failures += 1
            say(f"{assignment}: nbgrader {what} failed (exit code {proc.returncode}):\n  " + "\n  ".join(errors[-10:]))
        else:
            say(f"{assignment}: {what} done")
    return 1 if failures else 0


def cmd_feedback(options, say=print):
    course = Course.load(options.course, options.db_url)
    why = course.check_gradebook()
    if why:
        say(f"Cannot make feedback: {why}")
        return 2
    assignments = options.assignment or sorted({p.name for p in course.path("autograded").glob("*/*") if p.is_dir()})
    if not assignments:
        say(f"Nothing autograded under {course.path('autograded')}")
        return 0
    status = _run_each(course, assignments, lambda a: ("generate_feedback", a, "--force"), "generate_feedback", say)
    say(f"Feedback: {course.path('feedback')}")
    return status


GRADES_FIELDS = ("assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email", "raw_score",
                 "late_submission_penalty", "score", "max_score", "status")  # nbgrader export's columns, then status
SUBMITTED_GRADED, NOT_SUBMITTED, NOT_GRADED_PREFIX = "graded", "not submitted", "not graded: "


def read_report(course):
    """{(student, assignment): row} of <course>/autograded/grading_report.csv (empty if there is none)."""
    path = course.path("autograded") / REPORT_NAME
    if not path.exists():
        return {}
    with open(path, newline="") as fh:
        return {(row["student"], row["assignment"]): row for row in csv.DictReader(fh)}


def _number(value):
    return "" if value is None else str(float(value))


def grade_rows(course):
    """One row per student and assignment, sorted by student then assignment: nbgrader export's columns and a
    status, "graded", "not submitted" (no score) or "not graded: <why>" (the grading report's reason; a
    submission never autograded, or whose autograded notebook is missing, says so).

    The students are the gradebook's and those with a folder under submitted/; the assignments are the gradebook's
    and any other one submitted (the report says why it was not graded)."""
    from nbgrader.api import MissingEntry

    report = read_report(course)
    submitted = {(p.parent.name, p.name) for p in course.path("submitted").glob("*/*") if p.is_dir()}
    rows = []
    with course.gradebook() as gb:
        assignments = {a.name: a for a in gb.assignments}
        students = {s.id: s for s in gb.students}
        pairs = {(s, a) for s in {*students, *(s for s, _ in submitted)} for a in assignments}
        pairs |= submitted | {pair for pair in report if pair[1] in assignments or pair in submitted}
        for student_id, name in sorted(pairs):
            assignment, student, entry = assignments.get(name), students.get(student_id), report.get((student_id, name))
            submission = None
            if assignment is not None and student is not None:
                try:
                    submission = gb.find_submission(name, student_id)
                except MissingEntry:
                    pass
            if entry is not None and entry["status"] == NOT_GRADED:
                status = NOT_GRADED_PREFIX + entry["reason"]
            elif submission is not None:
                recorded = [c.auto_comment for nb in submission.notebooks for c in nb.comments
                            if (c.auto_comment or "").startswith(NOT_GRADED_COMMENT)]  # (record_not_graded's)
                missing = [f"{nb.name}.ipynb" for nb in assignment.notebooks
                           if not (course.path("autograded", student_id, name) / f"{nb.name}.ipynb").exists()]
                if entry is None and recorded:  # (a report deleted or written elsewhere: the gradebook says why)
                    status = NOT_GRADED_PREFIX + recorded[0][len(NOT_GRADED_COMMENT):]
                elif entry is None and missing and len(missing) == len(assignment.notebooks):
                    status = (f"{NOT_GRADED_PREFIX}no autograded notebook ({', '.join(missing)} missing: nbgrader "
                              "did not finish it)")  # (a partly graded submission is in the report as such)
                else:
                    status = SUBMITTED_GRADED
            elif (student_id, name) in submitted or entry is not None:
                status = NOT_GRADED_PREFIX + ("not autograded yet" if entry is None else
                                              "its grades are not in the gradebook (autograde it again)")
            else:
                status = NOT_SUBMITTED
            penalty = submission.late_submission_penalty if submission is not None else None
            rows.append({
                "assignment": name,
                "duedate": assignment.duedate if assignment is not None and assignment.duedate else "",
                "timestamp": submission.timestamp if submission is not None and submission.timestamp else "",
                "student_id": student_id,
                "last_name": (student.last_name or "") if student is not None else "",
                "first_name": (student.first_name or "") if student is not None else "",
                "email": (student.email or "") if student is not None else "",
                "raw_score": _number(submission.score if submission is not None else None),
                "late_submission_penalty": _number(penalty),
                "score": _number(max(0.0, submission.score - (penalty or 0.0)) if submission is not None else None),
                "max_score": _number(assignment.max_score) if assignment is not None else (entry or {}).get(
                    "max_score", ""),
                "status": status,
            })
    return rows


def cmd_grades(options, say=print):
    course = Course.load(options.course, options.db_url)
    why = course.check_gradebook()
    if why:
        say(f"Cannot read the grades: {why}")
        return 2
    target = pathlib.Path(options.to or course.root / "grades.csv").resolve()
    rows = grade_rows(course)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", newline="") as fh:
        writer = csv.DictWriter(fh, GRADES_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    counts = {kind: sum(r["status"].startswith(kind) for r in rows)
              for kind in (SUBMITTED_GRADED, NOT_SUBMITTED, NOT_GRADED_PREFIX)}
    say(f"Grades: {target} ({len(rows)} row(s): {counts[SUBMITTED_GRADED]} graded, {counts[NOT_SUBMITTED]} not "
        f"submitted, {counts[NOT_GRADED_PREFIX]} not graded)")
    return 0


def parser():
    p = argparse.ArgumentParser(prog="python -m grader.classroom", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--course", type=pathlib.Path, default=None,
                        help="the course folder (nbgrader_config.py): default the current folder if it has one, "
                             "otherwise this repository's assignments/")
    common.add_argument("--db-url", default=None,
                        help="the gradebook's database, a SQLAlchemy URL (default: c.CourseDirectory.db_url in the "
                             "course's nbgrader_config.py, itself sqlite:///<course>/gradebook.db by default), e.g. "
                             "postgresql+psycopg2://user@host/gradebook (grader/gradebook_db.py)")
    grade = sub.add_parser("autograde", parents=[common], help="autograde every submission under submitted/")
    grade.add_argument("--assignment", nargs="+", help="assignment ids (default: every one with submissions)")
    grade.add_argument("--timeout", type=int, default=None,
                       help="seconds per cell before it is interrupted (default: Execute.timeout in the config)")
    grade.add_argument("--submission-timeout", type=float, default=None,
                       help="seconds for one notebook's cells (default: SandboxExecute.notebook_timeout in the "
                            "config); later cells are not run")
    grade.add_argument("--jobs", type=int, default=2,
                       help="submissions graded at once, each in a sandbox slot of its own (default 2)")
    grade.add_argument("--unsafe-no-sandbox", action="store_true",
                       help="run the students' code WITHOUT the sandbox (it can then read the course folder and use "
                            "the network); only for trying the course on a machine without bubblewrap")
    grade.add_argument("--engine", choices=("threads", "dask"), default="threads",
                       help="threads: nbgrader in this process, --jobs at once (default); dask: a Dask "
                            "distributed LocalCluster of --jobs worker processes, resumable (grader/cluster.py)")
    grade.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="grade on this existing Dask cluster (e.g. tcp://host:8786; implies --engine dask)")
    grade.add_argument("--regrade", action="store_true",
                       help="dask engine: grade every submission again, even those graded from the same files")
    grade.add_argument("--max-notebook-mb", type=float, default=500, help="larger notebooks are not graded")
    grade.add_argument("--no-similarity", action="store_true",
                       help="skip the copying check after grading (grader/similarity.py: "
                            "autograded/similarity_report.csv)")
    feedback = sub.add_parser("feedback", parents=[common], help="nbgrader generate_feedback for everything autograded")
    feedback.add_argument("--assignment", nargs="+", help="assignment ids (default: every autograded one)")
    grades = sub.add_parser("grades", aliases=["export"], parents=[common],
                            help="every student's score and status per assignment, to CSV")
    grades.add_argument("--to", type=pathlib.Path, default=None, help="the CSV file (default <course>/grades.csv)")
    return p


def main(argv=None):
    options = parser().parse_args(argv)
    options.course = options.course or default_course()
    os.environ["PATH"] = _env()["PATH"]  # a gradebook made here runs `alembic`: this Python's bin/ first
    if options.command == "autograde":
        options.submission_timeout_given = options.submission_timeout is not None
        options.submission_timeout = options.submission_timeout or 600.0
        return cmd_autograde(options)
    if options.command == "feedback":
        return cmd_feedback(options)
    return cmd_grades(options)


if __name__ == "__main__":
    sys.exit(main())
