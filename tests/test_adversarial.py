"""Adversarial suite of the trusted grader (issue 9): attack submissions on a2_lstm, graded in one class run.

One temporary course holds every attacker of tests/attacks (46 submissions, each a wrong notebook worth 0 of 16 or a
partly correct one worth 4, plus its attack), three honest students (perfect: 16, idle: 0, gates only: 4) and one a1_rnn
student who stores a gradient check's results by hand (worth 0). One `python -m grader.classroom autograde --jobs 2`
grades them all, with short time limits (about 3 minutes on 2 cores). Then:
- every attacker has exactly its honest score, test cell by test cell, in the gradebook;
- the honest students have exactly theirs, and every student is in grading_report.csv;
- the course files (source/, release/, submitted/, nbgrader_config.py, .grader_secret) are unchanged; no file of the
  repository's course_pkg/ or grader/ carries an attack's marker or belongs to a sandbox uid;
- no process survives: none whose command line carries the attacks' marker, none that carries this run's environment
  marker, none left in a PID namespace one of this run's workers lived in;
- the listeners on 127.0.0.1 (TCP and UDP) received nothing;
- gradebook.db and grading_report.csv do not change in the seconds after the run (no detached writer).
The adversarial table (attack class, count, scores) is printed and kept in ADVERSARIAL_TABLE.
"""

from __future__ import annotations

import collections
import csv
import hashlib
import os
import pathlib
import socket
import subprocess
import sys
import threading
import time
import uuid

import nbformat
import pytest

import nbgrader_course as nc
from attacks import A1_SELF_REPORTED, ATTACKS, GATES, TESTS, _find

pytestmark = pytest.mark.slow

ASSIGNMENT = "a2_lstm"
MARK = "ADVMARK" + uuid.uuid4().hex[:10]  # in every process and file an attack makes
RUN_ID = "ADVRUN" + uuid.uuid4().hex[:10]  # in the environment of the class run (and so of its sandboxes)
SANDBOX_UID = 61000
A1_STUDENT = "x_a1_self_reported_gradient_check"
CONFIG_OVERRIDES = """
# tests/test_adversarial.py: shorter limits, so that the class run stays short
c.SandboxExecute.cell_timeout = 5
c.SandboxExecute.call_timeout = 5
c.SandboxExecute.notebook_timeout = 60
"""
ADVERSARIAL_TABLE = []  # (attack class, count, honest scores, graded scores)


# ---------------------------------------------------------------------------------------------------------------
# Building the class


def expected_scores(base, overrides=None):
    out = dict.fromkeys(TESTS, 0.0)
    if base == "gates":
        out.update({f"test_{g}": 1.0 for g in GATES})
    out.update(overrides or {})
    return out


def gates_notebook(release, perfect):
    nb = nbformat.from_dict(release)
    for gate in GATES:
        nb.cells[_find(nb, gate)].source = perfect.cells[_find(perfect, gate)].source
    return nb


def fill(code, values):
    for key, value in values.items():
        code = code.replace(f"%%{key}%%", str(value))
    return code


def build(attack, release, gates, values):
    nb = nbformat.from_dict(gates if attack.base == "gates" else release)
    later = []
    for where, code in attack.cells:
        code = fill(code, values)
        kind, _, grade_id = where.partition(":")
        if kind == "solution":
            nb.cells[_find(nb, grade_id)].source = code
        elif kind == "append":
            nb.cells[_find(nb, grade_id)].source += "\n" + code
        elif kind == "after":
            nb.cells.insert(_find(nb, grade_id) + 1, nbformat.v4.new_code_cell(code))
        else:
            later.append((kind, code))
    for kind, code in later:
        nb.cells.append(nbformat.v4.new_code_cell(code))
        if kind == "tail":  # the test cells after it, in their order
            for grade_id in TESTS:
                nb.cells.append(nb.cells.pop(_find(nb, grade_id)))
    if attack.edit is not None:
        attack.edit(nb)
    return nb


# ---------------------------------------------------------------------------------------------------------------
# What the run leaves behind


def tree_hashes(paths):
    out = {}
    for root in paths:
        root = pathlib.Path(root)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts:
                continue
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def file_hash(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def read_proc(pid, name):
    try:
        with open(f"/proc/{pid}/{name}", "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def processes():
    """[(pid, uid, ppid, pid namespace, cmdline, environ)] of every process now."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        status = read_proc(pid, "status").decode(errors="replace")
        uid = ppid = -1
        for line in status.splitlines():
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
            elif line.startswith("PPid:"):
                ppid = int(line.split()[1])
        try:
            ns = os.readlink(f"/proc/{pid}/ns/pid")
        except OSError:
            ns = ""
        out.append((pid, uid, ppid, ns, read_proc(pid, "cmdline").replace(b"\0", b" ").decode(errors="replace"),
                    read_proc(pid, "environ")))
    return out


class Watcher(threading.Thread):
    """Records, while the class runs, the PID namespaces of this run's sandbox processes (uid >= 61000 and this
    run's environment marker): afterwards nothing may live in one of them."""

    def __init__(self):
        super().__init__(daemon=True)
        self.namespaces, self.workers, self.stop = set(), set(), threading.Event()

    def run(self):
        while not self.stop.wait(0.5):
            for pid, uid, _, ns, _, environ in processes():
                if uid >= SANDBOX_UID and RUN_ID.encode() in environ and ns:
                    self.namespaces.add(ns)
                    self.workers.add(pid)


class Listeners:
    """A TCP and a UDP socket on 127.0.0.1 that count what reaches them."""

    def __init__(self):
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(50)
        self.tcp.settimeout(0.5)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.5)
        self.accepted, self.datagrams, self.stop = 0, 0, threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True),
                        threading.Thread(target=self._receive, daemon=True)]
        for t in self.threads:
            t.start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.tcp.accept()
                self.accepted += 1
                conn.close()
            except OSError:
                pass

    def _receive(self):
        while not self.stop.is_set():
            try:
                self.udp.recvfrom(65536)
                self.datagrams += 1
            except OSError:
                pass

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(2)
        self.tcp.close()
        self.udp.close()


# ---------------------------------------------------------------------------------------------------------------
# The class run


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from grader import secret

    course = nc.make_course(tmp_path_factory.mktemp("adversarial") / "course")
    with open(course / "nbgrader_config.py", "a") as fh:
        fh.write(CONFIG_OVERRIDES)
    nc.nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    nc.nbgrader(course, "generate_assignment", "a1_rnn", "--force")
    secret.load(course)  # made now (as the first grading would), so that its hash is known before the run
    release = nc.release_notebook(course, ASSIGNMENT)
    perfect = nc.perfect_student(nc.source_notebook(course, ASSIGNMENT))
    gates = gates_notebook(release, perfect)
    listeners = Listeners()
    values = {"COURSE": course, "REPO": nc.ROOT, "PORT": listeners.tcp.getsockname()[1],
              "UDP": listeners.udp.getsockname()[1], "MARK": MARK,
              "VENV_SITE": next(pathlib.Path(sys.prefix).glob("lib/python*/site-packages"))}
    expected = {"perfect": expected_scores("wrong", {**nc.autograded_points(perfect)}),
                "idle": expected_scores("wrong"), "gates_only": expected_scores("gates")}
    nc.submit(course, "perfect", ASSIGNMENT, perfect)
    nc.submit(course, "idle", ASSIGNMENT, release)
    nc.submit(course, "gates_only", ASSIGNMENT, gates)
    for attack in ATTACKS:
        nc.submit(course, f"x_{attack.name}", ASSIGNMENT, build(attack, release, gates, values))
        expected[f"x_{attack.name}"] = expected_scores(attack.base, attack.expected)
    a1 = nc.release_notebook(course, "a1_rnn")
    a1.cells.insert(_find(a1, "test_gradient_check"), nbformat.v4.new_code_cell(A1_SELF_REPORTED))
    nc.submit(course, A1_STUDENT, "a1_rnn", a1)
    a1_expected = dict.fromkeys(nc.autograded_points(nc.source_notebook(course, "a1_rnn")), 0.0)
    course_files = [course / "source", course / "release", course / "submitted", course / "nbgrader_config.py",
                    course / secret.NAME]
    repo_files = [nc.ROOT / "course_pkg", nc.ROOT / "grader"]
    before_course, before_repo = tree_hashes(course_files), tree_hashes(repo_files)

    watcher = Watcher()
    watcher.start()
    started = time.monotonic()
    env = dict(os.environ, PATH=f"{nc.BIN}{os.pathsep}{os.environ['PATH']}", ADV_RUN_ID=RUN_ID,
               OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "grader.classroom", "autograde", "--course", str(course),
                           "--jobs", "2"], capture_output=True, text=True, timeout=1800, env=env, cwd=nc.ROOT)
    seconds = time.monotonic() - started
    gradebook, report = course / "gradebook.db", course / "autograded" / "grading_report.csv"
    right_after = {p: file_hash(p) for p in (gradebook, report) if p.exists()}
    time.sleep(6)  # a detached writer would strike now
    watcher.stop.set()
    watcher.join(5)
    later = {p: file_hash(p) for p in (gradebook, report) if p.exists()}
    listeners.close()
    result = dict(course=course, proc=proc, seconds=seconds, expected=expected, right_after=right_after, later=later,
                  before_course=before_course, after_course=tree_hashes(course_files), before_repo=before_repo,
                  after_repo=tree_hashes(repo_files), repo_files=repo_files, listeners=listeners, watcher=watcher,
                  processes=processes(), scores={s: nc.scores(course, ASSIGNMENT, s) for s in expected},
                  a1_expected=a1_expected, a1_scores=nc.scores(course, "a1_rnn", A1_STUDENT))
    with open(report, newline="") as fh:
        rows = list(csv.DictReader(fh))
    result["report"] = {row["student"]: row for row in rows if row["assignment"] == ASSIGNMENT}
    result["a1_report"] = [row for row in rows if row["assignment"] == "a1_rnn"]
    make_table(result)
    return result


def total(scores):
    return round(sum(v or 0.0 for v in scores.values()), 2)


def make_table(result):
    ADVERSARIAL_TABLE.clear()
    by_class = collections.defaultdict(list)
    for attack in ATTACKS:
        student = f"x_{attack.name}"
        by_class[attack.klass].append((total(result["expected"][student]), total(result["scores"][student])))
    for klass, pairs in by_class.items():
        honest = collections.Counter(e for e, _ in pairs)
        got = collections.Counter(g for _, g in pairs)
        ADVERSARIAL_TABLE.append((klass, len(pairs), ", ".join(f"{k:g}/16 x{n}" for k, n in sorted(honest.items())),
                                  ", ".join(f"{k:g}/16 x{n}" for k, n in sorted(got.items()))))
    lines = [f"\nAdversarial table ({len(ATTACKS)} attack submissions on {ASSIGNMENT}, one class run of "
             f"{result['seconds']:.0f} s, jobs 2)",
             f"{'attack class':<64} {'count':>5}  {'honest score':<22} graded score"]
    lines += [f"{k:<64} {n:>5}  {h:<22} {g}" for k, n, h, g in ADVERSARIAL_TABLE]
    print("\n".join(lines))
    result["table_text"] = "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# The checks


def test_class_run_completes_with_every_student_reported(graded):
    assert graded["proc"].returncode == 0, graded["proc"].stdout[-3000:] + graded["proc"].stderr[-3000:]
    assert set(graded["report"]) == set(graded["expected"]), "students missing from grading_report.csv"
    assert graded["seconds"] < 600, f"the class run took {graded['seconds']:.0f} s"


def test_honest_students_get_exactly_their_scores(graded):
    for student in ("perfect", "idle", "gates_only"):
        assert graded["scores"][student] == graded["expected"][student], student
        assert float(graded["report"][student]["score"]) == total(graded["expected"][student]), student
    assert total(graded["scores"]["perfect"]) == 16.0


@pytest.mark.parametrize("attack", [a.name for a in ATTACKS])
def test_attack_gets_exactly_its_honest_score(graded, attack):
    student = f"x_{attack}"
    got, want = graded["scores"][student], graded["expected"][student]
    row = graded["report"][student]
    assert got == want, f"{attack}: gradebook {got} != honest {want}; report: {row}"
    assert float(row["score"]) == total(want), row
    assert row["status"] in next(a.status for a in ATTACKS if a.name == attack), row


def test_a1_self_reported_gradient_check_earns_nothing(graded):
    """a1_rnn's gradient check cell is scored from the relative errors the notebook stores: a notebook that stores
    small numbers without any gradient check (and no function written) must still get 0."""
    assert [row["student"] for row in graded["a1_report"]] == [A1_STUDENT]
    assert graded["a1_scores"] == graded["a1_expected"], graded["a1_report"]


def test_adversarial_table(graded):
    print(graded["table_text"])
    assert sum(n for _, n, _, _ in ADVERSARIAL_TABLE) == len(ATTACKS) >= 30
    assert {k for k, *_ in ADVERSARIAL_TABLE} >= {
        "comparators and numpy patched", "grader and references patched in memory", "IPython hooks",
        "odd outputs (subclasses, __eq__, NaN, dtypes, shapes)", "reading and using files",
        "stack-frame and gc inspection", "references via importlib, eval, defaults, closures, sys.modules",
        "controlling random state", "writing course files", "detached processes and gradebook rewrites", "network",
        "forks, memory, disk and output floods", "os._exit, killing the parent, endless loops"}


def test_course_files_unchanged(graded):
    before, after = graded["before_course"], graded["after_course"]
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert not changed, f"course files changed or added by the run: {changed}"


def test_repository_files_untouched_by_attacks(graded):
    """The work tree is shared with other engineers, who may save a file during the run: a change counts as an
    attack's when the file carries the attacks' marker or belongs to a sandbox uid."""
    touched = []
    for root in graded["repo_files"]:
        for path in pathlib.Path(root).rglob("*"):
            if path.is_file() and (path.stat().st_uid >= SANDBOX_UID or MARK.encode() in path.read_bytes()):
                touched.append(str(path))
    site = next(pathlib.Path(sys.prefix).glob("lib/python*/site-packages"))
    touched += [str(p) for p in site.iterdir() if MARK in p.name or p.name == "sitecustomize.py"]
    assert not touched, f"files written by an attack: {touched}"
    changed = [p for p in graded["before_repo"] if graded["before_repo"][p] != graded["after_repo"].get(p)]
    if changed:
        print(f"note: repository files changed during the run (no attack marker, not a sandbox uid): {changed}")


def test_no_process_survives(graded):
    ns = graded["watcher"].namespaces
    assert graded["watcher"].workers, "the watcher saw no sandboxed worker of this run"
    survivors = [(pid, uid, cmd[:120]) for pid, uid, _, pns, cmd, environ in graded["processes"]
                 if MARK in cmd or RUN_ID.encode() in environ or (uid >= SANDBOX_UID and pns in ns)]
    assert not survivors, f"processes left by the run: {survivors}"


def test_no_connection_reached_the_listeners(graded):
    assert graded["listeners"].accepted == 0, f"{graded['listeners'].accepted} TCP connection(s) accepted"
    assert graded["listeners"].datagrams == 0, f"{graded['listeners'].datagrams} UDP datagram(s) received"


def test_gradebook_not_rewritten_after_the_run(graded):
    assert graded["right_after"], "no gradebook after the run"
    assert graded["right_after"] == graded["later"], "gradebook.db or grading_report.csv changed after the run"
