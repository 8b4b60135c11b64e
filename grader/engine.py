"""Grade one notebook: the student's cells run in a sandboxed worker; the test cells are scored here.

The notebook's cells are taken in order. An ordinary code cell (the student's solutions, the notebook's own set-up
and demonstration cells) is sent to the worker and its outputs come back as text. A test cell is never run: its
outputs are written here from scoring.grade_cell, which calls the student's functions in the worker on inputs made
here and compares what comes back with course_pkg in this process. So no code of the student's runs beside the
comparisons, the references, the hidden seeds or the gradebook.

A worker that dies (os._exit, a crash, the memory limit) or outlives a time limit is killed; its cell gets an error,
a new worker replays the earlier cells silently and grading goes on (at most `max_restarts` times).
"""

from __future__ import annotations

import dataclasses
import inspect
import textwrap
import threading
import time

from nbformat.v4 import new_output

from . import scoring
from .sandbox import StudentRaised, WorkerGone

# enames of the error outputs written here (the classroom report looks for them)
KERNEL_DIED = "KernelDiedError"
NOT_RUN = "CellNotRunError"
CELL_TIMEOUT = "CellTimeoutError"
OUTPUT_CHARS = 20_000  # per output, beginning and end kept
CUT_MARK = "characters of output cut here"

def student_modules(assignment, wanted=None):
    """{"course_pkg.<module>": source} for the worker of this assignment: `wanted` ((module, None or names), ...,
    from the course's manifest entry), else the repository manifest's entry (course_pkg.activations alone for an
    assignment it does not list). The graded functions' references never appear there
    (course_pkg.gradcheck.numerical_gradient is a1's: a1 gets relative_error only)."""
    import importlib

    from . import manifest

    if wanted is None:
        try:
            wanted = manifest.get(assignment).sandbox_modules
        except manifest.ManifestError:
            wanted = (("activations", None),)
    out = {}
    for name, names in wanted:
        module = importlib.import_module(f"course_pkg.{name}")
        if names is None:
            out[f"course_pkg.{name}"] = inspect.getsource(module)
        else:
            out[f"course_pkg.{name}"] = "import numpy as np\n\n\n" + "\n\n".join(
                textwrap.dedent(inspect.getsource(getattr(module, n))) for n in names)
    return out


@dataclasses.dataclass
class Limits:
    cell_seconds: float = 30.0  # one ordinary cell
    call_seconds: float = 10.0  # one call of a student's function by a check
    notebook_seconds: float = 300.0  # every cell of the notebook together; later cells are not run
    max_restarts: int = 2  # new workers after a crash or a time limit


class WorkerStopped(Exception):
    """A student's function did not return: its worker died or was stopped (core._student_error reads detail())."""

    def detail(self):
        return f"did not return: {self}"


class RemoteStudent:
    """core.StudentCode's interface for functions that live in the worker."""

    def __init__(self, session, spec, registry):
        self.session, self.spec, self.registry = session, spec, registry

    def problem(self):
        names = (self.spec.name, *self.spec.uses)
        try:
            kinds = self.session.worker().inspect(names)
        except WorkerGone as exc:
            return f"could not be checked: {exc}"
        for name in names:
            if kinds[name] == "undefined":
                return f"{name} is not defined: run the cell that defines it (and keep its name)."
            if kinds[name] != "function":
                return f"{name} is a {kinds[name]}, not a function."
        return None

    def __call__(self, name):
        if name == self.spec.name or name in self.spec.uses:
            isolate = {n: self.registry.reference(n) for n in self.spec.isolate}
            session, spec_key = self.session, self.spec.key

            def student_function(*args, **kwargs):
                try:
                    return session.worker().call(name, args, kwargs, isolate=isolate,
                                                 timeout=session.call_timeout())
                except WorkerGone as exc:  # said as such: a traceback would quote the grader's own lines
                    session.notes.append(f"{spec_key}: {name} did not return ({exc})")
                    raise WorkerStopped(str(exc)) from None

            return student_function
        return self.registry.reference(name)


class RemoteNamespace:
    """The notebook's namespace as a check sees it: plain values fetched from the worker; functions stay there."""

    def __init__(self, session):
        self.session = session

    def student(self, spec, registry):
        return RemoteStudent(self.session, spec, registry)

    def get(self, name, default=None):
        try:
            value = self.session.worker().get(name)
        except (WorkerGone, StudentRaised):
            return default
        return default if value is self.session.worker().UNDEFINED else value

    def __contains__(self, name):
        return self.get(name, _MISSING) is not _MISSING

    def __getitem__(self, name):
        value = self.get(name, _MISSING)
        if value is _MISSING:
            raise KeyError(name)
        return value

    def view(self, name, attrs):
        try:
            return self.session.worker().view(name, attrs)
        except (WorkerGone, StudentRaised):
            return None


_MISSING = object()


class Session:
    """One notebook's worker: started on first use, restarted (with the earlier cells replayed) after a death."""

    def __init__(self, slot, assignment, limits, sandbox_modules=None, checks_module=None):
        self.slot, self.assignment, self.limits = slot, assignment, limits
        self.stubs = (checks_module,) if checks_module else ()
        self.deadline = time.monotonic() + limits.notebook_seconds
        self.notes = []  # what went wrong while test cells were scored (the cells' own reports say it too)
        self.current = None
        self.history = []  # sources of the ordinary cells run so far
        self.restarts = 0
        self.modules = student_modules(assignment, sandbox_modules)

    def worker(self):
        if self.current is None or self.current.closed:
            if self.current is not None:
                if self.restarts >= self.limits.max_restarts:
                    raise WorkerGone(f"no new worker: {self.limits.max_restarts} already replaced a dead one")
                self.restarts += 1
            self.current = self.slot.open_worker()
            self.current.provide(self.modules, self.stubs)
            for source in self.history:  # the state the next cell expects; outputs are not shown again
                self.current.run_cell(source, self.limits.cell_seconds)
        return self.current

    def remaining(self):
        return self.deadline - time.monotonic()

    def call_timeout(self):
        """A check's call gets its own limit, or what is left of the notebook's budget if that is less: a slow
        function cannot make its test cells outlast the notebook's budget."""
        left = self.remaining()
        if left <= 0:
            raise WorkerGone(f"not run: the notebook's time budget of {self.limits.notebook_seconds:g} s was spent")
        return max(0.5, min(self.limits.call_seconds, left))

    def run_cell(self, source):
        try:
            outputs = self.worker().run_cell(source, max(0.5, min(self.limits.cell_seconds, self.remaining())))
        except WorkerGone as exc:
            # not replayed: a cell that kills its worker would kill the next one too
            kind = (KERNEL_DIED if "died" in str(exc) else NOT_RUN if str(exc).startswith("no new worker")
                    else CELL_TIMEOUT)
            return [_error_output(kind, str(exc))]
        self.history.append(source)
        outputs = [o for o in map(_clean_output, outputs[:100]) if o is not None]
        for out in outputs:  # the worker's own interrupt at the cell's time limit: a timeout, as the report says
            if out.output_type == "error" and out.ename == "TimeLimit":
                out.ename = CELL_TIMEOUT
                out.evalue = f"interrupted after the time limit of {self.limits.cell_seconds:g} s"
                out.traceback = [f"{out.ename}: {out.evalue}", *out.traceback[1:]]  # (the worker's lines: where)
        return outputs

    def close(self):
        if self.current is not None:
            self.current.close()


def cut_text(text, limit):
    """text with its middle replaced by a note when it is longer than limit (the beginning and end stay)."""
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - head
    return f"{text[:head]}\n[... {len(text) - head - tail:,} {CUT_MARK} ...]\n{text[len(text) - tail:]}"


def _cut(text):
    return cut_text(text, OUTPUT_CHARS)


def _text(value):
    return _cut(value) if isinstance(value, str) else ""


def _clean_output(raw):
    """An nbformat output from the worker's untrusted dict: known kinds, text only, bounded."""
    if not isinstance(raw, dict):
        return None
    kind = raw.get("output_type")
    if kind == "stream" and raw.get("name") in ("stdout", "stderr"):
        return new_output("stream", name=raw["name"], text=_text(raw.get("text")))
    if kind in ("execute_result", "display_data"):
        data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
        data = {k: _text(v) for k, v in data.items() if isinstance(k, str) and k.startswith("text/")}
        data = data or {"text/plain": ""}
        if kind == "execute_result":
            return new_output("execute_result", data=data, execution_count=None)
        return new_output("display_data", data=data)
    if kind == "error":
        trace = raw.get("traceback") if isinstance(raw.get("traceback"), list) else []
        return new_output("error", ename=_text(raw.get("ename"))[:200] or "Error", evalue=_text(raw.get("evalue")),
                          traceback=[_text(line) for line in trace[:60]])
    return None


def _error_output(ename, evalue):
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def test_cell_outputs(result):
    """The outputs of a scored test cell: its report, then its score (nbgrader's partial credit) or its error."""
    outputs = [new_output("stream", name="stdout", text=_cut(result.text) + "\n")] if result.text else []
    if result.error is not None:
        return outputs + [_error_output("AssertionError", _cut(result.error))]
    return outputs + [new_output("execute_result", data={"text/plain": repr(float(result.score))},
                                 execution_count=None)]


def _nbgrader(cell):
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def is_test_cell(cell):
    meta = _nbgrader(cell)
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


_NOTES = {}  # (assignment, student, notebook) -> notes of the last grading, for the classroom report
_NOTES_LOCK = threading.Lock()


def keep_notes(key, notes):
    with _NOTES_LOCK:
        _NOTES[key] = list(notes)


def take_notes(key):
    """The notes grade_notebook left for this (assignment, student, notebook), once."""
    with _NOTES_LOCK:
        return _NOTES.pop(key, [])


def grade_notebook(nb, assignment, registry, slot, seed_for, limits=None, notes=None, sandbox_modules=None,
                   checks_module=None):
    """Fill the outputs of every code cell of nb (in place). seed_for(key) -> the hidden seed of a check. notes, a
    list, receives a sentence for each graded function whose worker died or was stopped while it was scored.
    sandbox_modules: the course_pkg modules the worker may import (the manifest entry's; see student_modules);
    checks_module: the module the notebook imports `check` from, stubbed in the worker (the manifest entry's)."""
    limits = limits or Limits()
    session = Session(slot, assignment, limits, sandbox_modules, checks_module)
    namespace = RemoteNamespace(session)
    count = 0
    try:
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            count += 1
            cell.execution_count = count
            if session.remaining() <= 0:
                cell.outputs = [_error_output(NOT_RUN, f"not run: the notebook's time budget of "
                                                       f"{limits.notebook_seconds:g} s was spent")]
            elif is_test_cell(cell):
                meta = _nbgrader(cell)
                result = scoring.grade_cell(registry, str(meta.get("grade_id")), float(meta.get("points") or 0),
                                            namespace, seed_for)
                cell.outputs = test_cell_outputs(result)
            else:
                cell.outputs = session.run_cell(cell.source)
            for out in cell.outputs:
                if out.output_type == "execute_result":
                    out.execution_count = count
    finally:
        session.close()
        if notes is not None:
            notes.extend(dict.fromkeys(session.notes))  # once each, in order
    return nb

