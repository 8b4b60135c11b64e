"""nbgrader preprocessors of the course, configured in assignments/nbgrader_config.py.

What stock nbgrader 0.9.6 does, and what each class here changes:

- Feedback: GenerateFeedback renders the autograded notebook, whose test cells hold the hidden tests again (autograde
  restores the locked cells from the gradebook), so the feedback HTML shows the hidden test source and, when a
  hidden check raises, a traceback quoting its lines. HideHiddenTests removes the hidden regions and any line of
  hidden source from the outputs, and reduces tracebacks in those cells to "ename: evalue".
- Duplicated grade cells: DeduplicateIds keeps the last copy and sets the others' nbgrader metadata to {}, which
  CheckCellMetadata then reads as "schema version 0": SchemaTooOldError, which nbgrader re-raises, so the whole
  `nbgrader autograde` run stops at that student. KeepLastDuplicate keeps nbgrader's choice (the last copy is
  graded) but removes the metadata of the other copies, which then run as ordinary cells.
- Deleted grade cells: by default the cell's grade stays empty (score 0, "needs manual grade"). With
  OverwriteCells.add_missing_cells nbgrader puts the cell back from the source version and grades it, but its
  placement fails with a KeyError when the cell before it in the source is not a graded or solution cell of the
  submission. RestoreMissingCells places the cell after the nearest earlier source cell the submission has, and
  gives it a cell id (nbgrader's restored cell has none, which nbformat 4.5 warns about).
- Execution: stock Execute runs the test cells in the student's own kernel, beside the student's code, which can
  then change how they compare (patch numpy, the checker, IPython) and read the hidden tests. SandboxExecute runs
  the student's cells in a sandboxed worker and computes every test cell's outputs and score in the grader
  (grader/engine.py). A crashing worker (os._exit, SIGKILL, memory) or one past its time limit costs that cell:
  a new worker replays the earlier cells and grading goes on; cells after the notebook's time budget are not run.
- Enormous outputs: LimitOutput limits lines, and keeps only the first ones (the hidden report comes last).
  LimitOutputSize limits lines and characters and keeps the beginning and the end of each cell's output.
- Machine paths: a warning a library prints (numpy's, Keras'), a traceback a student prints, a module's repr name
  files under the instructor's virtual environment, Python installation, home or course folder. SandboxExecute
  writes every output through PathScrubber, which shortens a library file to its module path
  (numpy/_core/_methods.py) and replaces the other folders with a word (<python>, <course>, ~); HideHiddenTests does
  the same again for the feedback (notebooks autograded by an older grader).
- Gradebook: nbgrader's Gradebook.add_submission builds the new submission through its relationships and reads the
  assignment's notebooks and cells before adding it to the session; with SQLAlchemy 2 (no cascade along backrefs)
  each of those reads autoflushes the half-built objects and warns (SAWarning "... not in session, add operation
  along ... will not proceed"), once per notebook and cell, for every submission. It is run here without autoflush,
  as the warning itself advises; the objects are added and committed at its end as before.
- Feedback configuration: nbconvert's HTML exporter configures NbConvertBase.display_data_priority, which
  NbGraderPreprocessor redeclares without config=True, so every preprocessor of the feedback that does not
  redeclare it logs "Config option `display_data_priority` not recognized" (nbgrader's GetGrades redeclares it;
  HideHiddenTests does too).
"""

from __future__ import annotations

import functools
import os
import pathlib
import re
import site
import sys
import sysconfig

from nbformat.corpus.words import generate_corpus_id
from nbformat.v4 import new_output
from traitlets import Bool, Float, Integer, List, Unicode

from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import DeduplicateIds, LimitOutput, NbGraderPreprocessor, OverwriteCells

from .engine import CELL_TIMEOUT, CUT_MARK, KERNEL_DIED, NOT_RUN  # noqa: F401 (the classroom report reads them)
from .engine import cut_text as _cut_text

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# ---------------------------------------------------------------------------------------------------------------
# nbgrader's metadata check, without re-checking its schema for every cell


class _SchemaCheckedOnce:
    """Stands for the jsonschema module in nbgrader.nbgraderformat.common, whose validate_cell calls
    jsonschema.validate(metadata, schema) for every graded cell. That function first checks the schema itself against
    JSON Schema's meta-schema: 6 ms a cell, some 0.15 s of every notebook graded here, for a schema that never
    changes. This checks each schema once and keeps its validator; a cell's metadata raises the same
    ValidationError (jsonschema's best match) as before."""

    def __init__(self):
        import jsonschema

        self._jsonschema, self._validators = jsonschema, {}
        self.ValidationError = jsonschema.ValidationError

    def validate(self, instance, schema):
        import json

        key = json.dumps(schema, sort_keys=True)
        validator = self._validators.get(key)
        if validator is None:
            cls = self._jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            validator = self._validators.setdefault(key, cls(schema))
        error = self._jsonschema.exceptions.best_match(validator.iter_errors(instance))
        if error is not None:
            raise error


def _check_schemas_once():
    from nbgrader.nbgraderformat import common

    if not isinstance(common.jsonschema, _SchemaCheckedOnce):
        common.jsonschema = _SchemaCheckedOnce()


_check_schemas_once()


class _SharedEngines:
    """Stands for create_engine in nbgrader.api. nbgrader opens a Gradebook some nine times per notebook it grades,
    each with a new SQLAlchemy engine that it disposes on close, so every query is compiled again each time (SQL
    compilation alone was a tenth of the trusted side's time per notebook here), and each time it reads the
    database's table names and checks every table's existence. This keeps one engine per database and arguments
    for the process (the last few used; older ones are disposed); Gradebook.close ends the session (its connection
    closed, or returned to a server's pool) instead of disposing of the engine; once nbgrader has made or found an
    engine's tables, later Gradebooks on it skip that check. Engines are thread-safe; each Gradebook keeps its own
    session."""

    SIZE = 4

    def __init__(self, create):
        import collections
        import threading

        self.create, self.engines, self.lock = create, collections.OrderedDict(), threading.Lock()
        self.ready = set()  # ids of the kept engines whose tables exist

    @staticmethod
    def _file(url):
        """A SQLite database's file identity: a gradebook deleted or replaced since is another database."""
        from sqlalchemy.engine import make_url

        url = make_url(url)
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return None
        try:
            st = os.stat(url.database)
        except OSError:
            return "missing"
        return (st.st_dev, st.st_ino)

    @staticmethod
    def _pooling(where):
        """SQLite: a new connection for each session (opening one costs some 0.1 ms; an idle connection kept while
        another process changes the file, its journal mode for one, read it as malformed here); a server: kept
        connections, each tested before use (the server may have restarted since)."""
        from sqlalchemy.pool import NullPool

        return {"poolclass": NullPool} if where else {"pool_pre_ping": True}

    def __call__(self, url, **kwargs):
        where = self._file(url)
        if where == "missing":  # (nbgrader is about to make it: not kept, since its identity is not known yet)
            return self.create(url, **self._pooling(where), **kwargs)
        key = (str(url), where, tuple(sorted(kwargs.items())))
        with self.lock:
            engine = self.engines.pop(key, None)
            if engine is None:
                engine = self.create(url, **self._pooling(where), **kwargs)
            self.engines[key] = engine
            while len(self.engines) > self.SIZE:
                old = self.engines.popitem(last=False)[1]
                self.ready.discard(id(old))
                old.dispose()
        return engine

    def forget(self):
        """Dispose of every kept engine (a long-lived process, at the start of a run: the databases as they are)."""
        with self.lock:
            for engine in self.engines.values():
                engine.dispose()
            self.engines.clear()
            self.ready.clear()

    def inspect(self, engine):
        """sqlalchemy.inspect, as Gradebook.__init__ uses it (are there tables yet?)."""
        from sqlalchemy import inspect

        return _TablesExist if id(engine) in self.ready else inspect(engine)

    def create_all(self, metadata_create_all):
        def create_all(bind=None, **kwargs):
            if id(bind) not in self.ready:
                metadata_create_all(bind=bind, **kwargs)
                with self.lock:
                    if any(e is bind for e in self.engines.values()):
                        self.ready.add(id(bind))

        return create_all


class _TablesExist:
    @staticmethod
    def get_table_names():
        return ["(the gradebook's tables exist)"]


def _close_session_only(self):
    self.db.remove()


def _share_engines():
    from nbgrader import api

    from . import gradebook_db

    gradebook_db.tune_sqlite()  # (every SQLite connection of a grading process in WAL mode, from the first)
    if not isinstance(api.create_engine, _SharedEngines):
        shared = _SharedEngines(api.create_engine)
        api.create_engine, api.inspect = shared, shared.inspect
        api.Base.metadata.create_all = shared.create_all(api.Base.metadata.create_all)
        api.Gradebook.close = _close_session_only


_share_engines()


def forget_engines():
    """The kept gradebook engines of this process disposed of (see _SharedEngines.forget)."""
    from nbgrader import api

    api.create_engine.forget()


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _error(ename, evalue):
    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


# ---------------------------------------------------------------------------------------------------------------
# No machine paths in what students get back

_SYSTEM_FOLDERS = {"/", "/usr", "/usr/local", "/bin", "/lib", "/opt", "/tmp", "/var"}
_UNSAFE_SCRATCH = re.compile(r"/(?:tmp|var/tmp)/grader-scratch-[\w.-]+")  # a worker without the sandbox (harness)


class PathScrubber:
    """Replaces the grading machine's folders in text: a library folder (site-packages, the standard library, any
    folder on sys.path) is removed, so that a file in it reads as its module path (numpy/_core/_methods.py); the
    virtual environment and the Python installation become <python>, the course and this repository <course>, the
    home folder ~, the sandbox's harness folder <grader>, and the scratch folder of a worker run without the sandbox
    /scratch (the sandbox's own name for it). The longest folder is replaced first; a folder is matched only as a
    whole path component (/work/main does not match /work/mainframe)."""

    def __init__(self, roots=()):
        libraries = {*sys.path, *site.getsitepackages(), site.getusersitepackages(),
                     *(sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib"))}
        words = {sys.prefix: "<python>", sys.base_prefix: "<python>", sys.exec_prefix: "<python>",
                 str(pathlib.Path(__file__).resolve().parents[1]): "<course>", os.path.expanduser("~"): "~",
                 "/grader_worker": "<grader>"}
        words.update({str(root): "<course>" for root in roots if root})
        table = {}
        for folder, word in [*((f, "") for f in libraries if f), *words.items()]:
            if not str(folder).startswith("/"):  # ("" and import hooks on sys.path)
                continue
            for variant in {str(folder), os.path.realpath(str(folder))}:
                variant = variant.rstrip("/")
                if variant.startswith("/") and variant not in _SYSTEM_FOLDERS and variant not in table:
                    table[variant] = word
        self.table = table
        names = sorted(table, key=len, reverse=True)
        self.pattern = re.compile("(?<![\\w.-])(" + "|".join(map(re.escape, names)) + ")(/|(?![\\w.-]))") \
            if names else None

    def _replace(self, match):
        word = self.table[match.group(1)]
        if word:
            return word + match.group(2)
        return "" if match.group(2) else "<library>"  # a library folder itself, not a file in it

    def __call__(self, text):
        if not isinstance(text, str):
            return text
        text = _UNSAFE_SCRATCH.sub("/scratch", text)
        return self.pattern.sub(self._replace, text) if self.pattern else text

    def output(self, out):
        """One nbformat output with the folders replaced in every text it holds (in place)."""
        if out.output_type == "stream":
            out.text = self(out.text)
        elif out.output_type == "error":
            out.ename, out.evalue = self(out.get("ename", "")), self(out.get("evalue", ""))
            out.traceback = [self(line) for line in out.get("traceback", [])]
        elif "data" in out:
            for mime, value in out.data.items():
                if isinstance(value, str):
                    out.data[mime] = self(value)
        return out

    def notebook(self, nb):
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = [self.output(out) for out in cell.get("outputs", [])]
        return nb


# ---------------------------------------------------------------------------------------------------------------
# Feedback without hidden tests


def split_hidden(source, begin="BEGIN HIDDEN TESTS", end="END HIDDEN TESTS"):
    """(source without the hidden regions, the hidden lines). Tolerant: an unclosed region runs to the end."""
    kept, hidden, inside = [], [], False
    for line in source.split("\n"):
        if begin in line:
            inside = True
        elif end in line and inside:
            inside = False
        elif inside:
            hidden.append(line)
        else:
            kept.append(line)
    return "\n".join(kept), hidden


class HideHiddenTests(NbGraderPreprocessor):
    """For GenerateFeedback: no hidden test source in the feedback, but the hidden report and the score stay.

    In every cell the region between the markers is removed. In cells that had one, an error's traceback becomes
    "ename: evalue" (the checker's message; a traceback would quote the hidden lines). In every output, any line
    that contains a line of hidden source is dropped.
    """

    begin_test_delimeter = Unicode("BEGIN HIDDEN TESTS").tag(config=True)
    end_test_delimeter = Unicode("END HIDDEN TESTS").tag(config=True)
    min_line_length = Integer(8, help="hidden lines shorter than this (after strip) are not searched for").tag(
        config=True)
    # configurable, as nbgrader's GetGrades declares it: the HTML exporter's default configuration sets it
    display_data_priority = List(NbGraderPreprocessor.display_data_priority.default_value).tag(config=True)

    def preprocess(self, nb, resources):
        scrub = PathScrubber([self.config.CourseDirectory.get("root"), os.getcwd()])
        scrub.notebook(nb)
        secrets, had_region = set(), set()
        for index, cell in enumerate(nb.cells):
            kept, hidden = split_hidden(cell.source, self.begin_test_delimeter, self.end_test_delimeter)
            if kept != cell.source:
                cell.source = kept
                had_region.add(index)
            secrets.update(line.strip() for line in hidden if len(line.strip()) >= self.min_line_length)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                cell.outputs = [self._clean(out, secrets, index in had_region) for out in cell.outputs]
        return nb, resources

    @staticmethod
    def _scrub(text, secrets):
        if not secrets:
            return text
        lines = text.split("\n")
        kept = [line for line in lines if not any(s in _ANSI.sub("", line) for s in secrets)]
        return "\n".join(kept)

    def _clean(self, out, secrets, had_region):
        if out.output_type == "error":
            evalue = self._scrub(out.get("evalue", ""), secrets)
            out.evalue = evalue
            if had_region:
                out.traceback = [f"{out.get('ename', 'Error')}: {evalue}"]
            else:
                out.traceback = [self._scrub(line, secrets) for line in out.get("traceback", [])]
        elif out.output_type == "stream":
            out.text = self._scrub(out.text, secrets)
        elif "data" in out:
            for mime, value in out.data.items():
                if isinstance(value, str):
                    out.data[mime] = self._scrub(value, secrets)
        return out


# ---------------------------------------------------------------------------------------------------------------
# Sanitizing: duplicated and deleted grade cells


class KeepLastDuplicate(DeduplicateIds):
    """DeduplicateIds (the last copy of a cell id keeps it) without the crash: the other copies lose their
    nbgrader metadata entirely (stock nbgrader leaves an empty dict, which fails metadata validation)."""

    def preprocess_cell(self, cell, resources, cell_index):
        if not (utils.is_grade(cell) or utils.is_solution(cell) or utils.is_locked(cell)):
            return cell, resources
        grade_id = _grade_id(cell)
        if grade_id is None:  # corrupted metadata: left for CheckCellMetadata to report
            return cell, resources
        if grade_id in self.grade_ids:
            self.log.warning("Cell with id '%s' exists multiple times: the last copy is graded, this one runs as an "
                             "ordinary cell", grade_id)
            del cell.metadata["nbgrader"]
        else:
            self.grade_ids.add(grade_id)
        return cell, resources


class RestoreMissingCells(OverwriteCells):
    """OverwriteCells that puts deleted grade cells back (set add_missing_cells) after the nearest earlier source
    cell present in the submission, or first; they are then graded like the others."""

    def add_missing_grade_cells(self, nb, resources):
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        source_cells = {cell.name: cell for cell in source_nb.source_cells}
        order = list(source_cells)  # the gradebook keeps them in the source notebook's order
        grade_cells = {cell.name: cell for cell in source_nb.grade_cells}
        solution_ids = {cell.name for cell in source_nb.solution_cells}
        for name in order:
            if name not in grade_cells:
                continue
            present = {}
            for index, cell in enumerate(nb.cells):
                present.setdefault(_grade_id(cell), index)
            if name in present:
                continue
            self.log.warning("Missing grade cell %s: put back from the source version", name)
            restored = self.missing_cell_transform(source_cells[name], grade_cells[name].max_score,
                                                   is_solution=name in solution_ids)
            if (nb.nbformat, nb.nbformat_minor) >= (4, 5):  # nbformat 4.5 cells have ids (else MissingIDFieldWarning)
                taken = {cell.get("id") for cell in nb.cells}
                restored["id"] = name if name not in taken and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name) else \
                    next(i for i in iter(generate_corpus_id, None) if i not in taken)
            position = 0
            for earlier in reversed(order[:order.index(name)]):
                if earlier in present:
                    position = present[earlier] + 1
                    break
            nb.cells.insert(position, restored)
        return nb, resources


# ---------------------------------------------------------------------------------------------------------------
# Output size


def _out_size(out):
    if out.output_type == "stream":
        return len(out.text)
    if out.output_type == "error":
        return len(out.get("evalue", "")) + sum(len(line) for line in out.get("traceback", []))
    return sum(len(v) if isinstance(v, str) else len(str(v)) for v in out.get("data", {}).values())


def _cut_lines(text, max_lines):
    lines = text.split("\n")
    if max_lines < 0 or len(lines) <= max_lines:
        return text
    head = max_lines // 2
    tail = max_lines - head
    note = f"[... {len(lines) - head - tail:,} lines: {sum(len(x) + 1 for x in lines[head:-tail]):,} {CUT_MARK} ...]"
    return "\n".join(lines[:head] + [note] + lines[-tail:])


def _cut_output(out, limit):
    """One output shortened to about `limit` characters (text kept at both ends; large binary data dropped)."""
    if out.output_type == "stream":
        out.text = _cut_text(out.text, limit)
    elif out.output_type == "error":
        out.evalue = _cut_text(out.get("evalue", ""), limit // 2)
        out.traceback = _cut_text("\n".join(out.get("traceback", [])), limit // 2).split("\n")
    elif "data" in out:
        for mime in list(out.data):
            value = out.data[mime]
            if isinstance(value, str) and (mime.startswith("text/") or mime.endswith("json")):
                out.data[mime] = _cut_text(value, limit)
            elif len(str(value)) > limit:
                del out.data[mime]
                out.data.setdefault("text/plain", f"[{mime} output of {len(str(value)):,} characters: {CUT_MARK}]")
    return out


def shrink_outputs(outputs, max_chars, max_lines=-1):
    """A cell's outputs within about max_chars characters (and max_lines lines per stream).

    Streams of one name are merged (as nbclient does after a cell), every output is cut to max_chars / 2 keeping
    its beginning and end, then display outputs in the middle are dropped until the total fits. Errors, stderr
    and results are never dropped: they decide the cell's score (nbgrader: an error or stderr output scores 0, a
    numeric result is the partial credit).
    """
    merged, streams = [], {}
    for out in outputs:
        if out.output_type == "stream":
            if out.name in streams:
                streams[out.name].text += out.text
                continue
            streams[out.name] = out
        merged.append(out)
    for out in merged:
        if out.output_type == "stream" and max_lines >= 0:
            out.text = _cut_lines(out.text, max_lines)
        if _out_size(out) > max_chars // 2:
            _cut_output(out, max_chars // 2)
    total = sum(_out_size(out) for out in merged)
    droppable = [i for i, out in enumerate(merged) if out.output_type == "display_data"]
    dropped = 0
    while total > max_chars and droppable:
        index = droppable.pop(len(droppable) // 2)
        total -= _out_size(merged[index])
        merged[index] = None
        dropped += 1
    if dropped:
        first = next(i for i, out in enumerate(merged) if out is None)
        merged[first] = new_output("stream", name="stdout", text=f"[... {dropped} displayed outputs: {CUT_MARK} ...]\n")
    return [out for out in merged if out is not None]


class LimitOutputSize(LimitOutput):
    """LimitOutput with a character limit too; both keep the beginning and the end of the output."""

    max_chars = Integer(20_000, help="maximum number of characters of output per cell (-1: no limit)").tag(
        config=True)

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code" and cell.outputs:
            limit = self.max_chars if self.max_chars >= 0 else float("inf")
            cell.outputs = shrink_outputs(cell.outputs, limit, self.max_lines)
            cell = self._limit_traceback(cell)
        return cell, resources


# ---------------------------------------------------------------------------------------------------------------
# Execution


class SandboxExecute(NbGraderPreprocessor):
    """Autograde's execution step, in place of nbgrader's Execute: the student's cells run in a sandboxed worker
    and each test cell's outputs (its report and its score) are computed by the grader, outside the student's code
    (grader/engine.py). Nothing of the student's runs in this process.

    The pool of sandboxes is the one the classroom driver made (grader.pool.use); a plain `nbgrader autograde` starts
    one of `workers` slots on first use. If the sandbox cannot be made, grading stops with SandboxError; only
    `unsafe_no_sandbox = True` (set by the instructor, on purpose) runs the workers without it.
    """

    cell_timeout = Float(30.0, help="seconds for one ordinary cell").tag(config=True)
    call_timeout = Float(10.0, help="seconds for one call of a student's function by a check").tag(config=True)
    notebook_timeout = Float(300.0, help="seconds for the whole notebook; later cells are not run").tag(config=True)
    max_restarts = Integer(2, help="new workers after a crash or a time limit, per notebook").tag(config=True)
    workers = Integer(1, help="sandbox slots of a pool started by this process").tag(config=True)
    unsafe_no_sandbox = Bool(False, help="run students' code WITHOUT the sandbox (their code can then read the "
                                         "course folder and use the network); scores still come from the "
                                         "grader").tag(config=True)
    diagnosis = Bool(True, help="when no mistake of the library matches a student's outputs, search the single-edit "
                                "mutants of the source notebook's solution for one that does (grader/diagnosis.py); "
                                "False: the library alone").tag(config=True)

    def preprocess(self, nb, resources):
        import pathlib

        from . import engine, manifest, pool, secret

        assignment = resources["nbgrader"]["assignment"]
        root = self.config.CourseDirectory.get("root") or "."
        source = pathlib.Path(root) / (self.config.CourseDirectory.get("source_directory") or "source")
        try:  # the course's own manifest says which checks score the assignment and what its worker may import
            entry = manifest.get(assignment, manifest.of_course(root), source)
            registry = entry.registry
        except manifest.ManifestError as exc:
            raise ValueError(f"the grader has no checks for the assignment {assignment!r}: {exc}") from None
        key = secret.load(root)
        if self.diagnosis:  # here only: the worker never sees the solutions the mutants are made from
            from . import diagnosis

            registry = diagnosis.with_diagnosis(registry, source / assignment)
        limits = engine.Limits(self.cell_timeout, self.call_timeout, self.notebook_timeout, self.max_restarts)
        shared = pool.get(self.workers, self.unsafe_no_sandbox)
        notes = []
        with shared.acquire() as slot:
            engine.grade_notebook(nb, assignment, registry, slot,
                                  lambda check: secret.seed(key, assignment, check), limits, notes,
                                  sandbox_modules=entry.sandbox_modules, checks_module=entry.checks)
        PathScrubber([root if root != "." else None, os.getcwd()]).notebook(nb)
        info = resources["nbgrader"]
        engine.keep_notes((assignment, info.get("student"), info.get("notebook")), notes)
        return nb, resources


# ---------------------------------------------------------------------------------------------------------------
# The gradebook without SQLAlchemy's autoflush warnings (see the module's docstring)


def _add_submission_without_autoflush(add_submission):
    if getattr(add_submission, "without_autoflush", False):
        return add_submission

    @functools.wraps(add_submission)
    def wrapper(self, assignment, student, **kwargs):
        self.db.flush()  # what was pending before is written as usual; only the half-built submission waits
        with self.db.no_autoflush:
            return add_submission(self, assignment, student, **kwargs)

    wrapper.without_autoflush = True
    return wrapper


Gradebook.add_submission = _add_submission_without_autoflush(Gradebook.add_submission)
