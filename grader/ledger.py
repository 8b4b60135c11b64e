"""The grading ledger: which submission was graded, from which content, by which run; in the gradebook's own database
(a table `grader_ledger` beside nbgrader's, SQLite or PostgreSQL), so that a class run can be resumed and two runs
never grade the same submission at once.

One row per (course, assignment, student): the content hash of the submitted folder (content_hash()), the state
('claimed' by a run, or 'done' with its result: status, score, max_score, reason), the run and its owner (host and
process id) and when it was claimed. Every change is one statement in its own transaction whose WHERE clause is the
condition it needs (compare and swap), so it is atomic on SQLite and on PostgreSQL alike:

- claim(): a run takes a submission unless its result for this content is there already ('done', same hash: the run
  resumes it, nothing is graded) or another live run holds it (its claim younger than the lease and its process,
  on this host, alive). A claim of a run that died (driver killed) is taken over at once on the same host, after the
  lease elsewhere.
- finish(): the result, written only if the claim is still this run's (a run that lost it writes nothing).
- release(): a claim given back (the engine failed on it): the next run grades it.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
import pathlib
import socket
import time
import uuid

TABLE = "grader_ledger"
CLAIMED, DONE = "claimed", "done"
GRADE, RESUME, BUSY = "grade", "resume", "busy"


def content_hash(folder):
    """sha256 of a submission folder: every file's relative path and bytes, in sorted order."""
    digest = hashlib.sha256()
    folder = pathlib.Path(folder)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = str(path.relative_to(folder)).encode()
        digest.update(len(name).to_bytes(8, "big") + name)
        data = path.read_bytes()
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def combined(*digests):
    """One sha256 of several (a submission's content hash and its assignment's grading digest)."""
    return hashlib.sha256("\0".join(digests).encode()).hexdigest()


def _table(metadata):
    from sqlalchemy import Column, Float, Integer, String, Table, Text

    return Table(
        TABLE, metadata,
        Column("course_id", String(128), primary_key=True),
        Column("assignment", String(128), primary_key=True),
        Column("student", String(128), primary_key=True),
        Column("content_hash", String(64), nullable=False),
        Column("state", String(16), nullable=False),
        Column("run_id", String(64), nullable=False),
        Column("owner", String(256), nullable=False),
        Column("claimed_at", Float, nullable=False),
        Column("attempts", Integer, nullable=False),  # gradings begun under the current claim (begin())
        Column("worker", String(256)),  # host:pid of the process that began the last of them
        Column("finished_at", Float),
        Column("status", String(32)),
        Column("score", Float),
        Column("max_score", Float),
        Column("reason", Text),
    )


@dataclasses.dataclass
class Result:
    status: str
    score: float
    max_score: float
    reason: str


def _alive(owner):
    """False only when the owner (host:pid) is a process of this host that no longer exists."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Ledger:
    def __init__(self, db_url, course_id, lease_seconds=3600.0, run_id=None):
        from sqlalchemy import MetaData, create_engine

        sqlite = str(db_url).startswith("sqlite")
        # SQLite: wait for another process's write (its lock) up to 60 s rather than fail at once
        self.engine = create_engine(db_url, future=True, **({"connect_args": {"timeout": 60}} if sqlite else {}))
        self.table = _table(MetaData())
        self.course_id = course_id
        self.lease = float(lease_seconds)
        self.run_id = run_id or uuid.uuid4().hex
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._create()

    def _create(self):
        """The table, after nbgrader's own (nbgrader stamps a database's schema version only when it finds it
        without any table: its gradebook is made first)."""
        from nbgrader.api import Gradebook
        from sqlalchemy.exc import DatabaseError

        Gradebook(str(self.engine.url.render_as_string(hide_password=False)), self.course_id).close()

        for attempt in range(5):  # two runs starting at once may both try to create it
            try:
                self.table.metadata.create_all(self.engine, checkfirst=True)
                return
            except DatabaseError:
                if attempt == 4:
                    raise
                time.sleep(0.2)

    def close(self):
        self.engine.dispose()

    def for_run(self, run_id):
        """This ledger, its database engine shared, for the claims of another run (a worker's tasks come from
        several runs; opening the ledger costs a connection and the schema's checks)."""
        other = copy.copy(self)
        other.run_id = run_id
        return other

    def _key(self, assignment, student):
        t = self.table
        return (t.c.course_id == self.course_id) & (t.c.assignment == assignment) & (t.c.student == student)

    def row(self, assignment, student):
        from sqlalchemy import select

        with self.engine.connect() as connection:
            found = connection.execute(select(self.table).where(self._key(assignment, student))).mappings().first()
            return dict(found) if found else None

    def claim(self, assignment, student, digest, again=False):
        """(GRADE, None): this run grades it now; (RESUME, Result): graded before from this content (again=True:
        graded now all the same); (BUSY, owner): another live run is grading it."""
        from sqlalchemy import and_, insert, or_, update
        from sqlalchemy.exc import IntegrityError

        t, now = self.table, time.time()
        mine = {"content_hash": digest, "state": CLAIMED, "run_id": self.run_id, "owner": self.owner,
                "claimed_at": now, "attempts": 0, "worker": None, "finished_at": None, "status": None, "score": None, "max_score": None,
                "reason": None}
        for _ in range(5):
            try:
                with self.engine.begin() as connection:
                    connection.execute(insert(t).values(course_id=self.course_id, assignment=assignment,
                                                        student=student, **mine))
                return GRADE, None
            except IntegrityError:
                pass
            row = self.row(assignment, student)
            if row is None:  # (deleted in between: insert again)
                continue
            if row["state"] == DONE and row["content_hash"] == digest and not again:
                return RESUME, Result(row["status"], row["score"], row["max_score"], row["reason"] or "")
            takeable = (row["state"] == DONE or row["run_id"] == self.run_id or row["claimed_at"] < now - self.lease
                        or not _alive(row["owner"]))
            if not takeable:
                return BUSY, row["owner"]
            # compare and swap on what was read: if another run changed the row meanwhile, read it again
            same = and_(t.c.run_id == row["run_id"], t.c.state == row["state"], t.c.claimed_at == row["claimed_at"])
            with self.engine.begin() as connection:
                done = connection.execute(update(t).where(self._key(assignment, student) & same).values(**mine))
            if done.rowcount == 1:
                return GRADE, None
        return BUSY, "another run (the claim kept changing)"

    def begin(self, assignment, student, digest):
        """Count a grading begun under this run's claim (a worker killed mid-way: its task begins again). If this
        run has the result already (a task Dask ran again because the worker that held its result died), return
        it: nothing is graded twice; else None."""
        from sqlalchemy import update

        t = self.table
        mine = self._key(assignment, student) & (t.c.run_id == self.run_id) & (t.c.content_hash == digest)
        with self.engine.begin() as connection:
            done = connection.execute(update(t).where(mine & (t.c.state == CLAIMED))
                                      .values(attempts=t.c.attempts + 1,
                                              worker=f"{socket.gethostname()}:{os.getpid()}"))
        if done.rowcount == 1:
            return None
        row = self.row(assignment, student)
        if row and row["run_id"] == self.run_id and row["state"] == DONE and row["content_hash"] == digest:
            return Result(row["status"], row["score"], row["max_score"], row["reason"] or "")
        return None

    def finish(self, assignment, student, digest, result):
        """Record the result if this run still holds the claim; True if it was recorded."""
        from sqlalchemy import update

        t = self.table
        with self.engine.begin() as connection:
            done = connection.execute(
                update(t).where(self._key(assignment, student) & (t.c.run_id == self.run_id)
                                & (t.c.state == CLAIMED) & (t.c.content_hash == digest))
                .values(state=DONE, finished_at=time.time(), status=result.status, score=float(result.score),
                        max_score=float(result.max_score), reason=result.reason))
        return done.rowcount == 1

    def release(self, assignment, student):
        """Give a claim of this run back (the engine failed on the submission): the next run grades it."""
        from sqlalchemy import delete

        t = self.table
        with self.engine.begin() as connection:
            connection.execute(delete(t).where(self._key(assignment, student) & (t.c.run_id == self.run_id)
                                               & (t.c.state == CLAIMED)))

    def rows(self):
        from sqlalchemy import select

        with self.engine.connect() as connection:
            return [dict(r) for r in connection.execute(
                select(self.table).where(self.table.c.course_id == self.course_id)).mappings()]
