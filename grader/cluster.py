"""Grading a class on Dask distributed: `python -m grader.classroom autograde --engine dask` (a LocalCluster of
`--jobs` worker processes on this machine) or `--scheduler ADDRESS` (an existing cluster: Slurm, Kubernetes, ...).

Each Dask task grades one submission on its worker: nbgrader's Autograde with the course's SandboxExecute, the
student's code in that worker's own sandbox slot (grader/sandbox.py; the trusted side, scoring and the gradebook
writes, stays in the worker process, never in the sandbox), then the gradebook records of classroom._record, then
the result in the grading ledger (grader/ledger.py). The driver claims every submission in the ledger before it
sends it, so that:
- a worker killed in the middle of a submission: Dask gives the task to another worker, which grades it again, once
  (nbgrader's autograde replaces that submission's rows; the ledger's result is written by whoever finishes under
  the run's claim);
- a driver killed mid-run: the next run resumes, grading only what has no result or whose submission changed
  (the submission folder's content hash); the claims of the dead run are taken over;
- two runs at once: a submission claimed by the other (live) run is left to it ("busy"), never graded twice.
Before any submission is touched, the scheduler must answer and every worker must see the course folder, reach the
gradebook and start its sandbox; otherwise one line says what and where.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib

CONNECT_SECONDS = 15


class ClusterError(Exception):
    """The Dask cluster cannot grade (one line: what and where)."""


def start(options):
    """A connected distributed.Client: to options.scheduler, or to a new LocalCluster of options.jobs processes.
    Returns (client, cluster or None)."""
    from distributed import Client, LocalCluster

    if options.scheduler:
        try:
            return Client(options.scheduler, timeout=CONNECT_SECONDS), None
        except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError for a malformed address
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ClusterError(f"the Dask scheduler at {options.scheduler} cannot be reached within "
                               f"{CONNECT_SECONDS} s: {first}") from None
    import dask.config

    # a task is sent to a worker only when its thread is free: a worker that dies holds one submission, not a queue
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        cluster = LocalCluster(n_workers=max(1, options.jobs), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
    return Client(cluster), cluster


# ---------------------------------------------------------------------------------------------------------------
# On a worker


_WORKER = {}  # (course root, db_url, unsafe) -> (Course, sandbox Pool): one per worker process
_LEDGERS = {}  # (database URL, course id) -> this worker's ledger.Ledger (its engine shared by the runs' tasks)


def forget_engines(dask_worker=None):
    """Close this worker's database engines (at the end of a run; a run starts with the database as it is)."""
    for book in _LEDGERS.values():
        book.close()
    _LEDGERS.clear()
    from . import nbgrader_ext

    nbgrader_ext.forget_engines()  # (nbgrader's gradebooks share one engine per database: grader/nbgrader_ext.py)


def _ledger(db_url, course_id, run_id):
    from . import ledger

    key = (str(db_url), course_id)
    if key not in _LEDGERS:
        _LEDGERS[key] = ledger.Ledger(db_url, course_id)
    return _LEDGERS[key].for_run(run_id)


def _slot_index(worker=None):
    """A sandbox uid offset per worker of this machine (slot uids must differ between processes)."""
    if worker is None:
        from distributed import get_worker

        worker = get_worker()
    name = worker.name
    return int(name) % 1000 if str(name).isdigit() else os.getpid() % 1000


def _setup(root, db_url, unsafe, worker=None):
    """This worker's course and sandbox slot, made on first use (and after a worker was replaced)."""
    key = (str(root), db_url, bool(unsafe))
    if key not in _WORKER:
        import nbgrader.utils

        from . import classroom, gradebook_db
        from . import pool as shared_pool
        from .sandbox import Pool

        if not pathlib.Path(root, "nbgrader_config.py").exists():
            raise ClusterError(f"the course folder {root} is not on this worker (no nbgrader_config.py there)")
        course = classroom.Course.load(root, db_url)
        gradebook_db.check(course.coursedir.db_url)
        sandboxes = Pool(1, unsafe_no_sandbox=unsafe)
        sandboxes.slots[0].index = _slot_index(worker)
        sandboxes.start()
        nbgrader.utils.setenv = classroom._shared_setenv
        shared_pool.use(sandboxes)
        _WORKER[key] = (course, sandboxes)
    return _WORKER[key]


def check_worker(root, db_url, unsafe, dask_worker=None):
    """Run on every worker before grading (Client.run): None, or why this worker cannot grade."""
    try:
        forget_engines()  # (a run starts with the database as it is now: made again, moved, ...)
        _setup(root, db_url, unsafe, dask_worker)
    except Exception as exc:  # noqa: BLE001 - SandboxError, GradebookError, ClusterError: said by the driver
        return f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return None


@dataclasses.dataclass
class Task:
    root: str
    db_url: str | None
    unsafe: bool
    course_id: str
    run_id: str
    assignment: str
    student: str
    digest: str
    names: list
    config: dict  # classroom.overrides(options), a traitlets Config


def grade(task, outcome):
    """One submission, on a worker: nbgrader's Autograde in the sandbox, the gradebook records, the ledger's result.
    Returns (outcome, nbgrader's log lines, whether the ledger took the result)."""
    from traitlets.config import Config
    from traitlets.log import get_logger

    from . import classroom, ledger

    course, _ = _setup(task.root, task.db_url, task.unsafe)
    book = _ledger(course.coursedir.db_url, task.course_id, task.run_id)
    earlier = book.begin(task.assignment, task.student, task.digest)
    if earlier is not None:  # graded by this run already (Dask ran the task again): its result, once
        return classroom._from_ledger(outcome, earlier), [], True
    log = get_logger()
    log.setLevel(logging.INFO)  # ("Sanitizing <notebook>" tells log_notes which notebook a warning is about)
    here = os.getcwd()
    os.chdir(course.root)
    try:
        why, lines = classroom.autograde_one(course, task.assignment, task.student, Config(task.config))
        classroom._record(course, task.assignment, {task.student: outcome}, {task.student: why}, task.names,
                          {task.student: lines})
    finally:
        os.chdir(here)
    kept = book.finish(task.assignment, task.student, task.digest,
                       ledger.Result(outcome.status, outcome.score, outcome.max_score, outcome.reason))
    return outcome, lines, kept
