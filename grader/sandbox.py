"""The grading sandbox, seen from the trusted side: a pool of warm sandboxed zygotes and the workers forked from them.

A slot is one bubblewrap sandbox (Debian's `bubblewrap`) running worker/harness.py: no network (its own network
namespace), its own PID, IPC and UTS namespaces, and a filesystem that holds only the operating system's libraries,
the Python runtime and its virtual environment (read-only, with any installed copy of course_pkg and of this grader
hidden), the harness folder and an empty scratch folder. The course folder (source/, submitted/, gradebook, config,
the course secret) and this package are not there. As root, the sandbox's workers run as one unprivileged uid per
slot (SLOT_UID_BASE + slot), so that RLIMIT_NPROC holds and one slot cannot signal another; as an ordinary user,
each worker gets a user namespace of its own instead.

Each submission gets a fresh worker forked from the slot's zygote, in new PID and mount namespaces of its own: when
the worker ends, or is killed, everything it started dies with it. Limits per worker: address space, processes, CPU
time, file size, scratch size (Limits); wall time is enforced here, by the caller's deadlines.

If bubblewrap is missing or the sandbox cannot start, SandboxError says why and nothing is graded: there is no
silent fallback. Pool(..., unsafe_no_sandbox=True), named loudly on purpose, runs the harness as a plain child
process (still out of the grader's process, so scores cannot be forged, but with the course files, the network and
the machine in reach of the student's code).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import itertools
import os
import pathlib
import queue
import shutil
import site
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from grader.worker import protocol

HARNESS_DIR = pathlib.Path(__file__).resolve().parent / "worker"
REPO = pathlib.Path(__file__).resolve().parents[1]
SLOT_UID_BASE = 61000  # uids 61000, 61001, ...: no account on a Debian system uses these
SCRATCH = "/scratch"


class SandboxError(RuntimeError):
    """The sandbox cannot be created or used; the message says what to do."""


class WorkerGone(Exception):
    """The worker died or stopped answering (the reason is the message)."""


class StudentRaised(Exception):
    """The student's function raised: ename, evalue and where (the student's own line)."""

    def __init__(self, ename, evalue, where=""):
        super().__init__(f"{ename}: {evalue}")
        self.ename, self.evalue, self.where = str(ename)[:200], str(evalue)[:4000], str(where)[:1000]

    def detail(self):
        return f"raised {self.ename}: {self.evalue}{self.where}"


@dataclasses.dataclass
class Limits:
    memory_mb: int = 2048  # address space on top of what the warm zygote already maps
    max_processes: int = 64
    cpu_seconds: int = 600
    file_mb: int = 64
    scratch_mb: int = 256
    start_seconds: float = 180.0  # for a slot's zygote to import everything

    def harness_args(self):
        return [f"--memory-mb={self.memory_mb}", f"--max-processes={self.max_processes}",
                f"--cpu-seconds={self.cpu_seconds}", f"--file-mb={self.file_mb}", f"--scratch-mb={self.scratch_mb}"]


def _python_trees():
    """Folders the interpreter needs: its installation and the virtual environment (each once)."""
    trees = {pathlib.Path(sys.base_prefix).resolve(), pathlib.Path(sys.prefix).resolve()}
    return sorted(trees)


def _hidden_installs():
    """Installed (non-editable) copies of course_pkg or the grader inside the Python trees: hidden by a tmpfs."""
    found = []
    for folder in {*site.getsitepackages(), site.getusersitepackages()}:
        for name in ("course_pkg", "grader"):
            path = pathlib.Path(folder) / name
            if path.is_dir():
                found.append(str(path))
    return found


def _parents(path, made):
    """bwrap makes the missing parents of a bind mount with mode 0700, which the worker's uid cannot enter."""
    out = []
    for parent in reversed(pathlib.Path(path).parents):
        if str(parent) != "/" and parent not in made:
            made.add(parent)
            out += ["--perms", "0755", "--dir", str(parent)]
    return out


def bwrap_command(control_fd, slot_uid, preload, limits, nproc=None):
    bwrap = shutil.which("bwrap")
    if not bwrap:
        raise SandboxError("the grading sandbox needs bubblewrap, which is not installed: run `apt-get install "
                           "bubblewrap` (Debian/Ubuntu), or `make autograde`, which installs it")
    root = os.getuid() == 0
    cmd = [bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
           "--die-with-parent", "--new-session"]
    if root:  # the zygote keeps only what it needs to make workers; workers drop everything
        cmd += ["--cap-drop", "ALL", "--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETUID",
                "--cap-add", "CAP_SETGID"]
    else:
        cmd += ["--unshare-user"]
    for path in ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin"):
        if os.path.islink(path):
            cmd += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            cmd += ["--ro-bind", path, path]
    for path in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/nsswitch.conf"):
        if os.path.exists(path):
            cmd += ["--ro-bind", path, path]
    # /tmp first: a Python or a checkout under /tmp (a CI clone) is then bound inside it, not hidden by it
    cmd += ["--perms", "0755", "--tmpfs", "/tmp"]
    made = {pathlib.Path("/tmp")}
    for tree in _python_trees():
        cmd += _parents(tree, made) + ["--ro-bind", str(tree), str(tree)]
    for path in _hidden_installs():
        cmd += ["--tmpfs", path]
    cmd += ["--ro-bind", str(HARNESS_DIR), "/grader_worker",
            "--proc", "/proc", "--dev", "/dev", "--dir", SCRATCH, "--chdir", "/tmp",
            "--setenv", "HOME", "/tmp", "--unsetenv", "PYTHONPATH",
            "--", sys.executable, "-I", "/grader_worker/harness.py", f"--control-fd={control_fd}",
            f"--slot-uid={slot_uid}", *limits.harness_args(), f"--nproc-limit={nproc or limits.max_processes}"]
    if preload:
        cmd += ["--preload", *preload]
    return cmd


def unsandboxed_command(control_fd, preload, limits):
    cmd = [sys.executable, "-I", str(HARNESS_DIR / "harness.py"), f"--control-fd={control_fd}", "--no-isolation",
           *limits.harness_args()]
    return cmd + (["--preload", *preload] if preload else [])


class Cgroups:
    """A pids and a memory cgroup (cgroup v1) for one slot, made under this process's own cgroups, so that a slot's
    processes (the zygote and its current worker) are bounded together: pids.max holds fork bombs without a
    per-uid count shared with other pools, and memory.limit_in_bytes counts what RLIMIT_AS does not (memfd, shared
    memory, tmpfs pages). Made only as root where the controllers are mounted; make() returns None otherwise."""

    ROOT = pathlib.Path("/sys/fs/cgroup")
    CONTROLLERS = ("pids", "memory")

    def __init__(self, dirs):
        self.dirs = dirs

    @classmethod
    def make(cls, name):
        if os.getuid() != 0:
            return None
        dirs = {}
        try:
            for controller in cls.CONTROLLERS:
                own = cls._own(controller)
                if own is None:
                    raise OSError(f"no {controller} cgroup")
                dirs[controller] = own / name
                dirs[controller].mkdir()
        except OSError:
            cls(dirs).remove()
            return None
        return cls(dirs)

    @classmethod
    def _own(cls, controller):
        """This process's cgroup directory for a v1 controller, or None."""
        with open("/proc/self/cgroup") as fh:
            for line in fh:
                _, names, path = line.rstrip("\n").split(":", 2)
                if controller in names.split(","):
                    folder = cls.ROOT / controller / path.lstrip("/")
                    return folder if (folder / "cgroup.procs").exists() else None
        return None

    def procs_files(self):
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    def limit(self, max_processes, memory_mb):
        """From now on: what the slot uses at rest (the warm zygote) plus a worker's allowance."""
        pids, memory = self.dirs["pids"], self.dirs["memory"]
        (pids / "pids.max").write_text(str(int((pids / "pids.current").read_text()) + max_processes))
        usage = int((memory / "memory.usage_in_bytes").read_text())
        (memory / "memory.limit_in_bytes").write_text(str(usage + memory_mb * 2**20))

    def remove(self):
        for folder in self.dirs.values():
            for _ in range(50):
                try:
                    for pid in (folder / "cgroup.procs").read_text().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), 9)
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


class Slot:
    """One warm zygote in its sandbox."""

    def __init__(self, index, preload=(), limits=None, unsafe_no_sandbox=False):
        self.index, self.preload, self.limits = index, tuple(preload), limits or Limits()
        self.unsafe = unsafe_no_sandbox
        self.proc = self.control = None
        self.lock = threading.Lock()
        self.start_seconds = None
        self.launcher = None  # set by the Pool: the thread that starts (and restarts) this slot

    def start(self, launcher=None):
        """Start the zygote and wait until it is warm. bwrap's --die-with-parent follows the *thread* that started
        it: a pool starts its slots from one long-lived launcher thread (`launcher`, an executor)."""
        self.launch() if launcher is None else launcher.submit(self.launch).result()
        return self.wait_ready()

    def launch(self):
        trusted, zygote_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        fd = zygote_end.fileno()
        self.cgroups = None
        if self.unsafe:
            cmd = unsandboxed_command(fd, self.preload, self.limits)
        else:
            self.cgroups = Cgroups.make(f"grader-{os.getpid()}-{id(self):x}-{self.index}")
            nproc = self.limits.max_processes if self.cgroups is None else 4096  # the pids cgroup holds instead
            cmd = bwrap_command(fd, SLOT_UID_BASE + self.index, self.preload, self.limits, nproc)
            if self.cgroups is not None:  # the shell joins the slot's cgroups, then becomes bwrap
                cmd = ["/bin/sh", "-c", 'for f in "$@"; do [ "$f" = -- ] && break; echo $$ > "$f"; shift; done; '
                       'shift; exec "$@"', "grader-slot", *self.cgroups.procs_files(), "--", *cmd]
        self.log = tempfile.TemporaryFile()
        started = time.monotonic()
        self.proc = subprocess.Popen(cmd, pass_fds=(fd,), stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        zygote_end.close()
        self.control = trusted
        self.started = started

    def wait_ready(self):
        self.control.settimeout(self.limits.start_seconds)
        try:
            line = self._line()
        except (OSError, EOFError) as exc:
            self.stop()
            raise SandboxError(f"the grading sandbox did not start ({exc}): {self._log_tail()}") from None
        if not line.startswith("ready"):
            self.stop()
            raise SandboxError(f"the grading sandbox did not start: {line!r} {self._log_tail()}")
        self.start_seconds = time.monotonic() - self.started
        self.control.settimeout(30)
        if self.cgroups is not None:
            self.cgroups.limit(self.limits.max_processes, self.limits.memory_mb)
        return self

    def _log_tail(self):
        try:
            self.log.seek(0)
            text = self.log.read().decode(errors="replace").strip()
        except (OSError, ValueError, AttributeError):
            return ""
        lines = [line for line in text.splitlines() if line.strip()]
        return " | ".join(lines[-3:])[-600:] or "(no message)"

    def _line(self):
        data = b""
        while not data.endswith(b"\n"):
            chunk = self.control.recv(1)
            if not chunk:
                raise EOFError("the sandbox exited")
            data += chunk
            if len(data) > 200:
                raise EOFError("unexpected answer from the sandbox")
        return data.decode(errors="replace").strip()

    def alive(self):
        if self.proc is None or self.proc.poll() is not None or self.control is None:
            return False
        try:  # the zygote speaks only when asked: a control socket readable now means it closed its end
            readable, _, _ = select.select([self.control], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def open_worker(self):
        """A new worker (one submission): a Worker connected to it. A slot whose zygote died or cannot fork (what a
        submission before may leave behind) is replaced once, when the pool that lent it can start it again."""
        try:
            return self._open_worker()
        except WorkerGone:
            if self.launcher is None:
                raise
        self.stop()
        self.start(self.launcher)
        return self._open_worker()

    def _open_worker(self):
        with self.lock:
            if not self.alive():
                raise WorkerGone("the sandbox slot is not running")
            trusted, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                socket.send_fds(self.control, [b"fork"], [worker_end.fileno()])
                answer = self._line()
            except (OSError, EOFError) as exc:
                raise WorkerGone(f"the sandbox slot stopped: {exc}") from None
            finally:
                worker_end.close()
            if not answer.startswith("forked "):
                raise WorkerGone(f"the sandbox slot answered {answer!r}")
            return Worker(self, int(answer.split()[1]), trusted)

    def kill_worker(self, pid):
        with self.lock:
            if not self.alive():
                return
            try:
                self.control.sendall(f"kill {pid}".encode())
                self._line()
            except (OSError, EOFError):
                pass

    def stop(self):
        if self.control is not None:
            with contextlib.suppress(OSError):
                self.control.close()
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 9)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        if getattr(self, "cgroups", None) is not None:
            self.cgroups.remove()
            self.cgroups = None


class Pool:
    """`size` slots, started in parallel; acquire() lends one to a thread (a dead one is started again first)."""

    def __init__(self, size=2, preload=("tensorflow",), limits=None, unsafe_no_sandbox=False):
        self.slots = [Slot(i, preload, limits, unsafe_no_sandbox) for i in range(max(1, size))]
        self.free = queue.Queue()
        self.start_seconds = None
        self.launcher = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sandbox-launcher")
        for slot in self.slots:
            slot.launcher = self.launcher

    def start(self):
        started = time.monotonic()
        errors = []

        def start(slot):
            try:
                slot.start(self.launcher)
            except SandboxError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(s,)) for s in self.slots]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            self.stop()
            raise errors[0]
        for slot in self.slots:
            self.free.put(slot)
        self.start_seconds = time.monotonic() - started
        return self

    @contextlib.contextmanager
    def acquire(self):
        slot = self.free.get()
        try:
            if not slot.alive():
                slot.stop()
                slot.start(self.launcher)
            yield slot
        finally:
            self.free.put(slot)

    def stop(self):
        for slot in self.slots:
            slot.stop()
        self.launcher.shutdown(wait=False)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------------------------------------------------------
# One worker: the trusted side's calls


_BUILTIN_ERRORS = {name for name in dir(__builtins__ if isinstance(__builtins__, dict) else __builtins__)}


def _write_back(sent, after):
    """Copy into the arrays that were sent what the student's function left in them (an array changed in place,
    also inside lists and dicts), as if it had run here; anything that no longer matches in kind, shape or dtype is
    left alone."""
    if isinstance(sent, np.ndarray) and isinstance(after, np.ndarray):
        if sent.shape == after.shape and sent.dtype == after.dtype and sent.flags.writeable:
            np.copyto(sent, after)
    elif isinstance(sent, (list, tuple)) and isinstance(after, (list, tuple)) and len(sent) == len(after):
        for a, b in zip(sent, after):
            _write_back(a, b)
    elif isinstance(sent, dict) and isinstance(after, dict):
        for key in sent.keys() & after.keys():
            _write_back(sent[key], after[key])


class Worker:
    """One submission's worker. Every method either returns plain data or raises StudentRaised (the student's
    code raised) or WorkerGone (the worker died, broke the protocol or ran out of time: it is killed)."""

    GRACE = 5.0  # seconds after a time limit before the worker is killed (it had its own alarm first)
    MAX_MESSAGE = 64 << 20  # bytes: what one answer of a worker may hold (graded outputs are far smaller)

    def __init__(self, slot, pid, sock):
        self.slot, self.pid, self.sock = slot, pid, sock
        self.closed = False
        self.callback_ids = itertools.count(1)  # never reused: a stub kept from an earlier call matches nothing

    def close(self):
        if not self.closed:
            self.closed = True
            with contextlib.suppress(OSError):
                self.sock.close()
            self.slot.kill_worker(self.pid)

    def _receive(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        self.sock.settimeout(left)
        return protocol.receive(self.sock, max_total=self.MAX_MESSAGE)

    def _exchange(self, header, blobs, timeout, callbacks=None):
        """Send a request and serve callbacks until its answer; any failure kills the worker."""
        if self.closed:
            raise WorkerGone("the worker was stopped earlier")
        deadline = time.monotonic() + timeout + self.GRACE
        try:
            protocol.send(self.sock, header, blobs)
            while True:
                reply, reply_blobs = self._receive(deadline)
                if reply.get("op") != "callback":
                    return reply, reply_blobs
                self._callback(reply, reply_blobs, callbacks or {})
        except socket.timeout:
            self.close()
            raise WorkerGone(f"did not finish within the time limit of {timeout:g} s (stopped)") from None
        except (EOFError, OSError):
            self.close()
            raise WorkerGone("the worker process died (crashed, exited or ran out of memory)") from None
        except protocol.ProtocolError as exc:
            self.close()
            raise WorkerGone(f"the worker sent something that is not allowed ({exc}); stopped") from None

    def _callback(self, reply, blobs, callbacks):
        fn = callbacks.get(reply.get("id")) if isinstance(reply.get("id"), int) else None
        if fn is None:  # not a function of the current call: a stub kept from an earlier one
            protocol.send(self.sock, {"op": "callback_error", "ename": "RuntimeError",
                                      "evalue": "this function may only be called during the check it was given to"})
            return
        try:
            args = protocol.decode(reply.get("args"), blobs, handle=protocol.Handle)
            kwargs = protocol.decode(reply.get("kwargs"), blobs, handle=protocol.Handle)
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise protocol.ProtocolError("malformed call")
            with np.errstate(all="ignore"):
                value = fn(*args, **kwargs)
            out = []
            header = {"op": "callback_result", "value": protocol.encode(value, out)}
        except protocol.ProtocolError:
            raise
        except Exception as exc:  # noqa: BLE001 - the reference refused these arguments: the student's code sees it
            name = type(exc).__name__ if type(exc).__name__ in _BUILTIN_ERRORS else "ValueError"
            header, out = {"op": "callback_error", "ename": name, "evalue": str(exc)[:2000]}, []
        protocol.send(self.sock, header, out)

    def run_cell(self, source, timeout):
        """The cell's outputs (nbformat-shaped dicts, from untrusted data: only their text is used)."""
        reply, _ = self._exchange({"op": "cell", "source": source, "timeout": timeout}, [], timeout)
        outputs = reply.get("outputs") if reply.get("op") == "cell_done" else None
        if not isinstance(outputs, list):
            self.close()
            raise WorkerGone("the worker answered a cell with something else; stopped")
        return outputs

    def call(self, name, args, kwargs, isolate=None, timeout=10.0):
        """The student's function `name` on these arguments; isolate maps names inside it to trusted functions."""
        callbacks, blobs = {}, []

        def register(fn):
            ident = next(self.callback_ids)
            callbacks[ident] = fn
            return ident

        header = {"op": "call", "name": name, "timeout": timeout,
                  "args": protocol.encode(list(args), blobs, callback=register),
                  "kwargs": protocol.encode(dict(kwargs), blobs, callback=register),
                  "isolate": {n: register(fn) for n, fn in (isolate or {}).items()}}
        reply, reply_blobs = self._exchange(header, blobs, timeout, callbacks)
        value = self._value(reply, reply_blobs)
        try:
            after = protocol.decode(reply.get("after"), reply_blobs, handle=protocol.Handle)
        except protocol.ProtocolError:
            after = None
        if isinstance(after, list) and len(after) == 2:
            _write_back(list(args), after[0])
            _write_back(dict(kwargs), after[1])
        return value

    def _value(self, reply, blobs):
        if reply.get("op") == "raised":
            raise StudentRaised(reply.get("ename", "Error"), reply.get("evalue", ""), reply.get("where", ""))
        if reply.get("op") != "result":
            self.close()
            raise WorkerGone("unexpected answer from the worker; stopped")
        try:
            return protocol.decode(reply.get("value"), blobs, handle=protocol.Handle)
        except protocol.ProtocolError as exc:
            self.close()
            raise WorkerGone(f"the worker sent something that is not allowed ({exc}); stopped") from None

    def inspect(self, names):
        reply, _ = self._exchange({"op": "inspect", "names": list(names)}, [], 10)
        info = reply.get("info")
        if not isinstance(info, dict):
            self.close()
            raise WorkerGone("unexpected answer from the worker; stopped")
        return {n: str(info.get(n, "undefined"))[:100] for n in names}

    UNDEFINED = object()

    def get(self, name):
        reply, blobs = self._exchange({"op": "get", "name": name}, [], 10)
        if reply.get("op") == "undefined":
            return self.UNDEFINED
        return self._value(reply, blobs)

    def view(self, name, attrs):
        """None if name is undefined, else (type as "module.Class", {attr: value}) of the worker's object."""
        reply, blobs = self._exchange({"op": "get", "name": name, "attrs": list(attrs)}, [], 10)
        if reply.get("op") == "undefined":
            return None
        value = self._value(reply, blobs)
        if not (isinstance(value, dict) and isinstance(value.get("type"), str) and isinstance(value.get("attrs"),
                                                                                               dict)):
            self.close()
            raise WorkerGone("unexpected answer from the worker; stopped")
        return value["type"][:200], {a: value["attrs"].get(a) for a in attrs}

    def provide(self, modules, stubs=()):
        """Make these modules importable in the worker: {"course_pkg.x": source}; `stubs`: checks modules whose
        import gives the self-check stub (course_pkg.checks.* always do)."""
        reply, _ = self._exchange({"op": "provide", "modules": dict(modules), "stubs": list(stubs)}, [], 30)
        if reply.get("op") != "ok":
            self.close()
            raise WorkerGone(f"the worker could not load the notebook's modules: {reply.get('message', '')}")

    def reset(self):
        self._exchange({"op": "reset"}, [], 10)
