"""The grading sandbox and its protocol, tested directly (grader.sandbox, grader.worker.protocol): fast, one pool.

Each test opens a fresh worker on the module's pool (one slot, no TensorFlow preloaded, small limits) and runs
student-like code in it, then looks from the outside: the uid and the filesystem the code sees, the network, the
processes it leaves, the limits; the protocol's refusals (pickles, object arrays, subclasses, malformed and oversized
frames); callbacks that outlive their call; a missing bubblewrap; the loudly named unsafe mode.

RLIMIT_AS does not count memfd/shmem pages and RLIMIT_NPROC counts every process of a uid (slot k of every pool runs
as uid 61000 + k): as root, each slot has a memory and a pids cgroup of its own (grader.sandbox.Cgroups), which
test_shared_memory_is_within_the_memory_limit and test_process_limit_is_not_shared_with_another_pool check.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import socket
import struct
import threading
import time
import uuid

import numpy as np
import pytest

from grader import sandbox
from grader.sandbox import Limits, Pool, SandboxError, StudentRaised, WorkerGone
from grader.worker import protocol

REPO = pathlib.Path(__file__).resolve().parents[1]
MARK = "SBXMARK" + uuid.uuid4().hex[:10]
LIMITS = Limits(memory_mb=512, max_processes=16, cpu_seconds=60, file_mb=8, scratch_mb=32)


@pytest.fixture(scope="module")
def pool():
    with Pool(1, preload=(), limits=LIMITS) as p:
        yield p


@pytest.fixture
def worker(pool):
    with pool.acquire() as slot:
        w = slot.open_worker()
        try:
            yield w
        finally:
            w.close()


def text(outputs):
    return "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")


def errors(outputs):
    return [o["ename"] for o in outputs if o.get("output_type") == "error"]


def run(worker, source, timeout=10):
    outputs = worker.run_cell(source, timeout)
    return text(outputs), errors(outputs)


def marked_pids(mark=MARK):
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if mark.encode() in fh.read():
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


# ---------------------------------------------------------------------------------------------------------------
# Who and where the student's code is


def test_worker_is_unprivileged_in_a_private_scratch(worker):
    out, err = run(worker, "import os\nprint(os.getuid(), os.geteuid(), os.getgid(), os.getcwd(), os.listdir('.'))\n"
                           "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])")
    assert not err, out
    uid, euid, gid, cwd, listing, caps = out.split(None, 5)
    assert int(uid) >= sandbox.SLOT_UID_BASE and int(euid) == int(uid) and int(gid) != 0
    assert cwd == sandbox.SCRATCH and eval(listing) in ([], [".ipython"])  # noqa: S307 (IPython's own folder)
    assert int(caps.split()[-1], 16) == 0, "the worker kept capabilities"
    out, err = run(worker, "open('mine.txt', 'w').write('x'); import os; print(os.listdir('.'))\n"
                           "print([l.split()[4] for l in open('/proc/self/mountinfo') if ' tmpfs ' in l])")
    assert not err and "mine.txt" in out and "'/scratch'" in out, out


def test_scratch_is_private_to_each_worker(pool):
    with pool.acquire() as slot:
        first = slot.open_worker()
        run(first, f"open('left_behind', 'w').write('{MARK}')")
        first.close()
        second = slot.open_worker()
        try:
            out, err = run(second, "import os; print(sorted(os.listdir('.')))")
            assert "left_behind" not in out, out
        finally:
            second.close()


def test_filesystem_shows_no_course_grader_or_references(worker):
    out, err = run(worker, f"""
import os, importlib
REPO = {str(REPO)!r}
seen = {{"root": sorted(os.listdir("/"))}}
for path in (REPO + "/assignments", REPO + "/assignments/source", REPO + "/course_pkg/lstm.py",
             REPO + "/grader/engine.py", REPO + "/grader/sandbox.py", REPO + "/.git", "/grader_worker/harness.py"):
    seen[path] = os.path.exists(path)
seen["repo"] = sorted(os.listdir(REPO)) if os.path.isdir(REPO) else None
for name in ("course_pkg.lstm", "course_pkg.rnn", "course_pkg.gru", "course_pkg.keras_interop",
             "course_pkg.checks.core", "grader", "grader.engine"):
    try:
        module = importlib.import_module(name)
        seen[name] = sorted(n for n in vars(module) if not n.startswith("__"))
    except ImportError as exc:
        seen[name] = "ImportError"
for f in ("/etc/passwd", "/etc/shadow", "/root/.bash_history"):
    seen[f] = os.path.exists(f)
print(repr(seen))
""")
    assert not err, out
    seen = eval(out)  # noqa: S307 - our own repr of plain data
    assert seen["repo"] == [".venv"], f"the repository as the worker sees it: {seen['repo']}"
    for path in (f"{REPO}/assignments", f"{REPO}/assignments/source", f"{REPO}/course_pkg/lstm.py",
                 f"{REPO}/grader/engine.py", f"{REPO}/grader/sandbox.py", f"{REPO}/.git", "/etc/passwd",
                 "/etc/shadow", "/root/.bash_history"):
        assert seen[path] is False, path
    assert seen["/grader_worker/harness.py"] is True  # public, and read-only (below)
    for name in ("course_pkg.lstm", "course_pkg.rnn", "course_pkg.gru", "course_pkg.keras_interop", "grader.engine"):
        assert seen[name] == "ImportError", (name, seen[name])
    assert seen["grader"] in ("ImportError", []), seen["grader"]  # at most an empty namespace (editable install)
    # course_pkg.checks.* are stubs: nothing of the checker
    assert set(seen["course_pkg.checks.core"]) <= {"check"}, seen["course_pkg.checks.core"]
    assert REPO.parts[1] in seen["root"] and "home" not in seen["root"]  # the venv's path, and no home folders


def test_worker_cannot_write_outside_its_scratch(worker):
    out, err = run(worker, f"""
import os, sys
for path in ("/tmp/x", "/dev/shm/x", "/grader_worker/protocol.py", sys.prefix + "/x.pth", "/usr/x", "/x",
             {str(REPO)!r} + "/x", "/etc/x"):
    try:
        open(path, "a").write("{MARK}")
        print("WROTE", path)
    except OSError as exc:
        print(path, type(exc).__name__)
""")
    assert not err and "WROTE" not in out, out


# ---------------------------------------------------------------------------------------------------------------
# Network and processes


def test_no_network(worker):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted = []

    def accept():
        end = time.monotonic() + 4
        while time.monotonic() < end:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept)
    thread.start()
    out, err = run(worker, f"""
import socket
for address in (("127.0.0.1", {port}), ("10.0.2.2", 80), ("1.1.1.1", 443)):
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect(address)
        print("CONNECTED", address)
    except OSError as exc:
        print(address, type(exc).__name__)
import os
import subprocess
import sys
print(sorted(os.listdir("/sys/class/net")) if os.path.exists("/sys/class/net") else "no /sys")
""")
    thread.join()
    listener.close()
    assert not err and "CONNECTED" not in out, out
    assert accepted == [], "the worker reached a listener on 127.0.0.1"


def test_processes_die_with_the_worker(pool):
    with pool.acquire() as slot:
        w = slot.open_worker()
        out, err = run(w, f"""
import os, subprocess, sys
payload = "# {MARK}\\nimport os, time\\ntime.sleep(300)"
subprocess.Popen([sys.executable, "-c", payload], start_new_session=True)
pid = os.fork()
if pid == 0:  # double fork and setsid: a daemon
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", payload])
    os._exit(0)
os.waitpid(pid, 0)
print("started")
""")
        assert not err and "started" in out, out
        deadline = time.monotonic() + 5
        while len(marked_pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        alive = marked_pids()
        assert len(alive) == 2, "the detached processes did not start"
        assert all(int(open(f"/proc/{p}/status").read().split("Uid:")[1].split()[0]) >= sandbox.SLOT_UID_BASE
                   for p in alive)
        w.close()
    deadline = time.monotonic() + 5
    while marked_pids() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marked_pids() == [], "a process started by the worker outlived it"


def test_fork_bomb_is_held(worker):
    out, err = run(worker, """
import os, time
n = 0
try:
    for _ in range(1000):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
except OSError as exc:
    print("stopped", n, type(exc).__name__)
""", timeout=20)
    assert not err and out.startswith("stopped"), out
    assert int(out.split()[1]) < LIMITS.max_processes, out


FORK_BOMB_TO_THE_LIMIT = """
import os
n = 0
try:
    for _ in range(1000):
        if os.fork() == 0:  # every child forks on, without end: the slot stays full until all are killed
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
        n += 1
except OSError:
    print("full", n)
"""


def test_a_new_worker_starts_right_after_a_fork_bomb(pool):
    """The killed bomb's processes leave the slot's process count a moment after the kill returns: the next
    submission's worker still starts (once, a CI run lost a whole notebook to it)."""
    for _ in range(5):
        with pool.acquire() as slot:
            bomb = slot.open_worker()
            out, err = run(bomb, FORK_BOMB_TO_THE_LIMIT, timeout=20)
            assert out.startswith("full"), (out, err)
            bomb.close()
            after = slot.open_worker()
            try:
                assert run(after, "print(6 * 7)") == ("42\n", [])
            finally:
                after.close()


def _parents():
    found = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = pathlib.Path(f"/proc/{entry}/stat").read_text()
            cmdline = pathlib.Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        found[int(entry)] = (int(stat.rsplit(")", 1)[1].split()[1]), b"harness.py" in cmdline)
    return found


def _zygote_pid(slot):
    """The slot's zygote: the harness process below the slot's bwrap whose parent is not a harness process."""
    procs = _parents()

    def below_slot(pid):
        while pid > 1:
            if pid == slot.proc.pid:
                return True
            pid = procs.get(pid, (0,))[0]
        return False

    zygotes = [p for p, (ppid, harness) in procs.items()
               if harness and below_slot(p) and not procs.get(ppid, (0, False))[1]]
    assert len(zygotes) == 1, zygotes
    return zygotes[0]


def test_a_slot_whose_zygote_died_is_replaced(pool):
    with pool.acquire() as slot:
        os.kill(_zygote_pid(slot), 9)
        deadline = time.monotonic() + 5
        while slot.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not slot.alive(), "a slot without its zygote still counts as alive"
        w = slot.open_worker()
        try:
            assert run(w, "print(6 * 7)") == ("42\n", [])
        finally:
            w.close()


# ---------------------------------------------------------------------------------------------------------------
# Memory, disk, time


def test_huge_allocation_is_a_memory_error(worker):
    out, err = run(worker, """
import numpy as np
for make in (lambda: bytearray(10**11), lambda: np.ones(2**28), lambda: [0] * 10**9):
    try:
        make()
        print("ALLOCATED")
    except MemoryError:
        print("MemoryError")
""")
    assert not err and out.split() == ["MemoryError"] * 3, out


def test_shared_memory_is_within_the_memory_limit(pool):
    """memfd (and shared memory) is not address space: RLIMIT_AS does not bound it, the slot's memory cgroup does.
    Twice the memory limit must not be possible (the machine's memory is shared by every worker and the grader):
    either an allocation fails in the cell, or the worker is killed at the limit, and the slot's warm parent
    survives to serve the next submission."""
    code = f"""
import os
import subprocess
import sys
held = 0
fds = []
try:
    while held < 2 * {LIMITS.memory_mb} * 2**20:
        fd = os.memfd_create("m")
        fds.append(fd)
        os.ftruncate(fd, 4 * 2**20)
        os.pwrite(fd, b"x" * (4 * 2**20), 0)
        held += 4 * 2**20
except (OSError, MemoryError) as exc:
    print("stopped", type(exc).__name__)
print("held", held >> 20, "MB")
"""
    with pool.acquire() as slot:
        worker = slot.open_worker()
        try:
            out, _ = run(worker, code, timeout=20)
            assert "stopped" in out, f"the worker held {out.split('held')[-1].strip()} of shared memory with a " \
                                     f"memory limit of {LIMITS.memory_mb} MB"
        except WorkerGone as exc:
            assert "died" in str(exc)  # killed in its memory cgroup, before it held twice the limit
        finally:
            worker.close()
        assert slot.alive()
        after = slot.open_worker()
        try:
            assert run(after, "print('next')") == ("next\n", [])
        finally:
            after.close()


def test_huge_file_write_is_stopped(worker):
    out, err = run(worker, """
import os
import subprocess
import sys
block = b"x" * 2**20
for name in ("big", "big2", "big3", "big4", "big5", "big6"):
    try:
        with open(name, "wb") as fh:
            for _ in range(100):
                fh.write(block)
        print("WROTE", name)
    except OSError as exc:
        print(name, exc.errno)
""")
    assert not err and "WROTE" not in out, out
    codes = [int(line.split()[1]) for line in out.splitlines()]
    assert codes[0] == 27  # EFBIG: RLIMIT_FSIZE
    assert 28 in codes  # ENOSPC: the scratch folder's size


def test_time_limits(pool):
    with pool.acquire() as slot:
        w = slot.open_worker()
        w.GRACE = 1.0
        run(w, """
def spin():
    while True:
        pass

def stubborn():
    import signal
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    while True:
        try:
            pass
        except BaseException:
            pass

def ok(x):
    return x + 1
""")
        started = time.monotonic()
        with pytest.raises(StudentRaised, match="TimeLimit"):
            w.call("spin", [], {}, timeout=1)
        assert w.call("ok", [1], {}) == 2  # an interrupted call leaves the worker usable
        with pytest.raises(WorkerGone, match="time limit"):
            w.call("stubborn", [], {}, timeout=1)
        assert time.monotonic() - started < 10
        with pytest.raises(WorkerGone):
            w.call("ok", [1], {})
        assert w.closed
        w2 = slot.open_worker()  # the slot still serves the next submission
        try:
            run(w2, "def ok(x):\n    return x + 1")
            assert w2.call("ok", [41], {}) == 42
        finally:
            w2.close()


def test_cell_that_swallows_the_interrupt_is_stopped(pool):
    with pool.acquire() as slot:
        w = slot.open_worker()
        w.GRACE = 1.0
        with pytest.raises(WorkerGone):
            w.run_cell("n = 0\nwhile True:\n    try:\n        while True:\n            n += 1\n"
                       "    except BaseException:\n        pass", 1)
        out, err = run(slot.open_worker(), "print('next')")
        assert out == "next\n"


def test_os_exit_is_worker_gone(worker):
    with pytest.raises(WorkerGone, match="died"):
        worker.run_cell("import os\nos._exit(0)", 5)


# ---------------------------------------------------------------------------------------------------------------
# The protocol


def frame(header_bytes, blobs=()):
    out = struct.pack("<I", len(header_bytes)) + header_bytes + struct.pack("<I", len(blobs))
    return out + b"".join(struct.pack("<Q", len(b)) for b in blobs) + b"".join(blobs)


def receive_raw(data, **kw):
    a, b = socket.socketpair()
    try:
        threading.Thread(target=lambda: (a.sendall(data), a.close())).start()
        b.settimeout(5)
        return protocol.receive(b, **kw)
    finally:
        b.close()


def npy(array, allow_pickle=False):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def tag(blob, dtype, shape):
    return {"$a": 0, "d": dtype, "s": list(shape)}, [blob]


def test_protocol_refuses_pickles_and_object_arrays():
    pickled = npy(np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    for name in ("|O", "<U1", "<c16", "|V8", "|S8", ">f8", "<M8[s]", "float64", "f8", 8, None):
        with pytest.raises(protocol.ProtocolError, match="refused"):
            protocol.decode(*tag(b"\0" * 8, name, (1,)))  # an array of a dtype that is not plain numbers
    with pytest.raises(protocol.ProtocolError):
        protocol.decode({"$a": 0}, [pickled])  # the .npy form of the old protocol (a pickle inside): no dtype
    with pytest.raises(protocol.ProtocolError, match="disagree"):
        protocol.decode(*tag(pickled, "<f8", (3,)))  # a pickle's bytes are never read as anything but numbers
    for shape in ([-1], [2.0], ["2"], [1] * (protocol.MAX_DIMS + 1), 2, None):
        with pytest.raises(protocol.ProtocolError):
            protocol.decode({"$a": 0, "d": "<f8", "s": shape}, [b"\0" * 16])
    with pytest.raises(protocol.ProtocolError):
        protocol.encode(np.array([1, None], dtype=object), [])
    for bad in (np.array(["a", "b"]), np.array([1 + 2j]), np.zeros(2, dtype=[("x", "f8")])):
        with pytest.raises(protocol.ProtocolError):
            protocol.encode(bad, [])
    a = protocol.decode(*tag(np.arange(3.0).tobytes(), "<f8", (3,)))
    assert type(a) is np.ndarray and a.tolist() == [0.0, 1.0, 2.0] and a.flags.writeable and a.flags.owndata


def test_protocol_round_trips_plain_arrays_exactly():
    values = [np.arange(6.0).reshape(2, 3).T, np.float32(2.5), np.array(7), np.zeros((2, 0, 3), np.float16),
              np.array([True, False]), np.arange(4, dtype=">i4"), np.array([np.nan, np.inf, -0.0]),
              np.arange(10, dtype=np.uint64)[::3]]
    blobs = []
    tree = protocol.encode({"v": values}, blobs)
    a, b = protocol.pair()
    try:
        protocol.send(a, {"tree": tree}, blobs)
        header, got = protocol.receive(b)
    finally:
        a.close()
        b.close()
    back = protocol.decode(header["tree"], got)["v"]
    for sent, came in zip(values, back, strict=True):
        sent = np.asarray(sent)
        assert type(came) is np.ndarray and came.shape == sent.shape and came.dtype == sent.dtype.newbyteorder("=")
        assert came.tobytes() == sent.astype(came.dtype).tobytes() and came.flags.writeable


def test_protocol_subclasses_are_handles_never_arrays():
    class Sub(np.ndarray):
        pass

    kept = []
    for value in (np.arange(3.0).view(Sub), np.ma.masked_array([1.0]), np.matrix([[1.0]])):
        with pytest.raises(protocol.ProtocolError):
            protocol.encode(value, [])
        tree = protocol.encode(value, [], handle=lambda obj: kept.append(obj) or len(kept))
        assert "$h" in tree
        back = protocol.decode(tree, [], handle=protocol.Handle)
        assert isinstance(back, protocol.Handle) and not isinstance(back, np.ndarray)


def test_protocol_refuses_malformed_and_oversized_frames():
    good = frame(json.dumps({"op": "x"}).encode())
    assert receive_raw(good) == ({"op": "x"}, [])
    bad_frames = [
        frame(b"not json"),
        frame(b"\xff\xfe"),
        frame(b"[1, 2]"),  # not an object
        struct.pack("<I", protocol.MAX_HEADER + 1) + b"{}",
        frame(b"{}")[:-4] + struct.pack("<I", protocol.MAX_BLOBS + 1),
        frame(b"{}")[:-4] + struct.pack("<I", 1) + struct.pack("<Q", protocol.MAX_BLOB + 1),
        frame(b'{"op": ' + b"9" * 5000 + b"}"),  # an int JSON reads but Python refuses (4300 digits)
        frame(b"[" * 100_000 + b"]" * 100_000),  # nesting deeper than the parser's recursion
    ]
    for data in bad_frames:
        with pytest.raises(protocol.ProtocolError):
            receive_raw(data)
    with pytest.raises(protocol.ProtocolError, match="too large"):
        receive_raw(frame(b"{}", [b"x" * 5000]), max_total=1000)
    with pytest.raises(EOFError):
        receive_raw(good[:-2])
    for tree in ({"$a": 5}, {"$a": "0"}, {"$x": 1}, {"$s": "1e999"}, {"$t": 3}, {"$d": [[1, 2]]},
                 {"$h": 1}, {"$f": 1}, {"a": 1, "b": 2, "c": 3}, {"$a": 0, "d": "<f8", "s": [], "x": 1}):
        with pytest.raises(protocol.ProtocolError):
            protocol.decode(tree, [])
    deep = []
    for _ in range(protocol.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(protocol.ProtocolError):
        protocol.encode(deep, [])
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(deep, [])


def test_worker_values_cross_as_plain_data_only(worker):
    run(worker, """
import numpy as np
class Sub(np.ndarray):
    def __array_ufunc__(self, *a, **k):
        return True
    def __eq__(self, other):
        return True
class Odd:
    __eq__ = lambda self, other: True
def sub(): return np.zeros(3).view(Sub)
def odd(): return Odd()
def masked(): return np.ma.masked_array([1.0, 2.0])
def objects(): return np.array([1, None], dtype=object)
def plain(): return (np.arange(3.0), {"k": [1, 2.5, float("nan")]})
def huge(): return 10 ** 5000
""")
    for name in ("sub", "odd", "masked", "objects"):
        value = worker.call(name, [], {})
        assert isinstance(value, protocol.Handle) and not isinstance(value, np.ndarray), (name, value)
    arr, d = worker.call("plain", [], {})
    assert type(arr) is np.ndarray and arr.tolist() == [0.0, 1.0, 2.0] and d["k"][:2] == [1, 2.5]
    with pytest.raises(StudentRaised):
        worker.call("huge", [], {})


def test_forged_frames_from_the_worker_stop_it(pool):
    """Student code that writes its own frames on the worker's socket (ahead of the real answer) gets its worker
    stopped (WorkerGone), whatever the frame holds."""
    forged = {
        "header_not_json": "frame(b'not json')",
        "int_json_cannot_hold": "frame(b'{\"op\": ' + b'9' * 5000 + b'}')",
        "nested_too_deep": "frame(b'[' * 100000 + b']' * 100000)",
        "header_too_large": "struct.pack('<I', 64 << 20)",
    }
    for name, expression in forged.items():
        with pool.acquire() as slot:
            w = slot.open_worker()
            w.GRACE = 1.0
            source = f"""
import gc, json, socket, struct
def frame(h, blobs=()):
    return struct.pack("<I", len(h)) + h + struct.pack("<I", 0)
s = [o for o in gc.get_objects() if isinstance(o, socket.socket)][0]
s.sendall({expression})
"""
            with pytest.raises(WorkerGone):
                w.run_cell(source, 5)
                w.call("nothing", [], {})  # a desynchronised stream shows at the latest in the next exchange
            assert w.closed, name


def test_callback_stub_kept_from_one_call_fails_in_a_later_one(worker):
    run(worker, """
KEPT = []
def uses_helper(x):
    KEPT.append(helper)
    return helper(x)
def later(x):
    return KEPT[0](x)
""")
    calls = []

    def reference(x):
        calls.append(("reference", x))
        return x * 2

    def other(x):
        calls.append(("other", x))
        return -1

    assert worker.call("uses_helper", [3], {}, isolate={"helper": reference}) == 6
    with pytest.raises(StudentRaised, match="only be called during"):
        worker.call("later", [4], {})
    with pytest.raises(StudentRaised, match="only be called during"):  # not the later call's own callback either
        worker.call("later", [5], {}, isolate={"helper": other})
    assert calls == [("reference", 3)]


def test_isolation_does_not_change_the_students_namespace(worker):
    run(worker, "def g(x):\n    return 'own'\ndef f(x):\n    return g(x)")
    assert worker.call("f", [1], {}, isolate={"g": lambda x: "reference"}) == "reference"
    assert worker.call("f", [1], {}) == "own"


# ---------------------------------------------------------------------------------------------------------------
# Set-up failures and the unsafe mode


def test_missing_bubblewrap_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(SandboxError, match="bubblewrap") as info:
        Pool(1, preload=(), limits=LIMITS).start()
    assert "apt-get install bubblewrap" in str(info.value)


def test_unsafe_no_sandbox_still_grades_out_of_process():
    with Pool(1, preload=(), limits=LIMITS, unsafe_no_sandbox=True) as p:
        with p.acquire() as slot:
            w = slot.open_worker()
            try:
                out, err = run(w, "import os, numpy as np\nnp.allclose = lambda *a, **k: True\n"
                                  "def who():\n    return os.getpid()\ndef f(x):\n    return x * 0")
                assert not err, out
                assert w.call("who", [], {}) != os.getpid()
                got = w.call("f", [np.arange(3.0)], {})
                assert type(got) is np.ndarray and not np.allclose(got, np.arange(3.0))  # patched there, not here
            finally:
                w.close()


def test_process_limit_is_not_shared_with_another_pool(pool):
    """Two grading runs on one machine (two courses, or a run beside a benchmark) each have a pool whose slot 0 runs
    as the same uid; RLIMIT_NPROC counts every process of a uid, so a fork bomb in one run's worker must not leave
    another run's worker unable to fork or start a thread (TensorFlow and BLAS need threads)."""
    with Pool(1, preload=(), limits=LIMITS) as other, pool.acquire() as slot, other.acquire() as other_slot:
        bomber, honest = slot.open_worker(), other_slot.open_worker()
        try:
            out, _ = run(bomber, "import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
                                 "            time.sleep(15)\n            os._exit(0)\n        n += 1\n"
                                 "except OSError:\n    print('held at', n)", timeout=10)
            assert out.startswith("held at"), out
            out, err = run(honest, "import os, threading\npid = os.fork()\nif pid == 0:\n    os._exit(0)\n"
                                   "os.waitpid(pid, 0)\nt = threading.Thread(target=lambda: None)\nt.start()\n"
                                   "t.join()\nprint('fine')")
            assert out == "fine\n", f"another pool's worker, after a fork bomb in this one: {err} {out}"
        finally:
            bomber.close()
            honest.close()


# ---------------------------------------------------------------------------------------------------------------
# An instructor who is not root


UNPRIVILEGED_RUN = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from grader.sandbox import Pool
print("grader uid", os.getuid())
with Pool(1, preload=()) as pool, pool.acquire() as slot:
    w = slot.open_worker()
    where = "import os\nprint('worker', os.getpid(), os.getcwd(), sorted(os.listdir(%r)))" % sys.argv[1]
    print(w.run_cell(where, 10)[0]["text"], end="")
    print(w.run_cell("import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
                     "except OSError as e:\n    print('network', type(e).__name__)", 10)[0]["text"], end="")
    spawn = "import subprocess\nsubprocess.Popen(['sleep', '300', '%s'], start_new_session=True)" % sys.argv[2]
    print(w.run_cell(spawn, 10))
    w.run_cell("def f(a):\n    return g(a) * 2\n", 5)
    print("call", w.call("f", (np.ones(2),), {}, isolate={"g": lambda a: a + 1}).tolist())
    w.close()
"""


@pytest.mark.skipif(os.getuid() != 0, reason="switching to another user needs root (the grader's own test runs as it)")
def test_sandbox_as_an_unprivileged_user():
    """The same sandbox when the grader runs as an ordinary user (here `nobody`): bubblewrap makes a user namespace,
    each worker another one of its own. This machine's Python lives under /root (mode 0700), which `nobody` cannot
    enter: a private mount namespace shows /root's .pyenv on a 0755 tmpfs, as an instructor's own Python would be."""
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="grader-nobody-"))  # (pytest's own folders are 0700)
    tmp_path.chmod(0o755)
    script = tmp_path / "run.py"
    script.write_text(UNPRIVILEGED_RUN)
    pyenv = pathlib.Path("/root/.pyenv")
    view = f"mkdir -p /mnt/grader-pyenv && mount --bind {pyenv} /mnt/grader-pyenv && " \
           f"mount -t tmpfs -o mode=755 none /root && mkdir -p {pyenv} && mount --bind /mnt/grader-pyenv {pyenv} && "
    command = view + f"exec setpriv --reuid=65534 --regid=65534 --clear-groups env HOME={tmp_path} " \
                     f"{sys.executable} {script} {REPO} {MARK}"
    try:
        proc = subprocess.run(["unshare", "-m", "sh", "-c", command], capture_output=True, text=True, timeout=120,
                              cwd=tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "grader uid 65534"
    pid, cwd, visible = lines[1].split(" ", 3)[1:]
    assert (pid, cwd) == ("1", "/scratch") and visible == "['.venv']", lines[1]  # the checkout: only its venv
    assert lines[2] == "network ConnectionRefusedError"
    assert lines[-1] == "call [4.0, 4.0]"
    time.sleep(0.5)
    assert not marked_pids(), "a process the worker started outlived it"


def test_the_assignments_checks_module_is_a_stub_in_the_worker(worker):
    """The manifest may name any checks module; the notebook's set-up cell imports `check` from it, and in the
    worker that import gives the stub that says the self-checks do not run there (course_pkg.checks.* always do)."""
    worker.provide({}, stubs=("toy4checks.a4_toy",))
    out, err = run(worker, "from toy4checks.a4_toy import check\nfrom course_pkg.checks.a2_lstm import check as c2\n"
                           "check('square', globals()); c2('x', globals())")
    assert not err and out.count("self-checks do not run while your work is graded") == 2, (out, err)
    out, err = run(worker, "import toy4checks.other")
    assert err == ["ModuleNotFoundError"], (out, err)
    with pytest.raises(WorkerGone, match="not a module name"):
        worker.provide({}, stubs=("toy; import os",))


def test_a_keras_layer_of_a_description_is_reused_with_the_new_weights():
    """The worker builds the Keras layer a check describes once per description and submission, and sets each call's
    weights on it: a reused layer must never carry the previous call's weights."""
    from course_pkg.checks.cases import keras_layer_case

    rng = np.random.default_rng(0)
    first, second = (keras_layer_case(rng, "LSTM", 3, 2, 4, np.float32) for _ in range(2))
    other = keras_layer_case(rng, "LSTM", 3, 4, 4, np.float32)
    with Pool(1) as p, p.acquire() as slot:  # (TensorFlow preloaded, as when grading)
        w = slot.open_worker()
        try:
            w.run_cell("def weights_of(layer):\n    return layer.get_weights(), id(layer)", 10)
            results = [w.call("weights_of", (spec,), {}, timeout=60) for spec in (first, second, other)]
        finally:
            w.close()
    (got1, id1), (got2, id2), (got3, id3) = results
    assert id1 == id2 != id3  # the same description: the same layer object; another size: another layer
    for got, spec in zip((got1, got2, got3), (first, second, other)):
        assert len(got) == 3 and all(np.array_equal(g, e) for g, e in zip(got, spec.get_weights()))
    assert not np.array_equal(got1[0], got2[0])
