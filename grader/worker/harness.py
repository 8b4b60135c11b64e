"""The code that runs inside the grading sandbox: a warm parent (the zygote) and, per submission, a worker.

    python harness.py --control-fd N [--slot-uid UID] [--preload tensorflow] [limits...]

The zygote imports numpy, IPython and (optionally) TensorFlow/Keras once, then waits on its control socket. For each
submission the trusted side sends one connected socket (SCM_RIGHTS); the zygote forks a child that enters new PID and
mount namespaces (so that whatever the student's code starts dies with the worker), forks again into PID 1 of that
namespace, mounts a private scratch tmpfs and /proc, drops to an unprivileged uid and every capability, sets resource
limits, and serves the submission: it runs the notebook's cells and calls the student's functions on the inputs the
trusted side sends, returning plain data (protocol.py). It never sees a reference implementation: where a graded
function calls another one that must be the reference (isolation), that name is bound to a stub that calls back to
the trusted side, valid only during the current call.

Nothing here is secret, and nothing here decides a score: a student who controls this process controls only what
their own functions return.
"""

from __future__ import annotations

import argparse
import builtins
import ctypes
import io
import os
import resource
import signal
import socket
import sys
import time
import traceback
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import protocol  # noqa: E402 (the sandbox has this folder only, not the grader package)

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID = 0x00020000, 0x10000000, 0x20000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4
OUTPUT_CHARS = 200_000  # per cell; the trusted side cuts further
SCRATCH = "/scratch"
LIBC = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _drop_capabilities():
    """capset with empty sets (the uid change already cleared them for root; this covers user namespaces)."""
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header, data = Header(0x20080522, 0), (Data * 2)()
    _check(LIBC.capset(ctypes.byref(header), ctypes.byref(data)), "capset")


# ---------------------------------------------------------------------------------------------------------------
# The zygote


def preload(modules):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("KERAS_HOME", SCRATCH)
    import numpy  # noqa: F401
    from IPython.core.interactiveshell import InteractiveShell  # noqa: F401

    if "tensorflow" in modules:
        import keras  # noqa: F401  (imports TensorFlow; no op runs here, forked children run them)
        import tensorflow  # noqa: F401


class _SelfCheckStubs:
    """course_pkg.checks.* (and the checks module the trusted side names for the assignment, from its manifest)
    while grading: the notebook's set-up cell imports `check` from there; the checks themselves run on the trusted
    side, so here `check` only says so."""

    names = set()  # other checks modules, and their parent packages

    def find_spec(self, name, path=None, target=None):
        if name == "course_pkg.checks" or name.startswith("course_pkg.checks.") or name in self.names:
            import importlib.machinery

            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        module.__path__ = []
        module.check = _check_not_here
        return module

    def exec_module(self, module):
        pass


def _check_not_here(*args, **kwargs):
    print("(self-checks do not run while your work is graded: the grader checks your functions itself)")


def install_student_api():
    """course_pkg while graded: an empty package (the trusted side provides the modules a notebook may use, per
    assignment) whose checks.* are stubs."""
    package = types.ModuleType("course_pkg")
    package.__path__ = []
    sys.modules["course_pkg"] = package
    sys.meta_path.insert(0, _SelfCheckStubs())


def provide(modules, stubs=()):
    """Load the modules the trusted side sends ({"course_pkg.x": source}) as if installed; `stubs` names the
    assignment's checks modules, whose imports get the self-check stub."""
    for name in stubs:
        parts = name.split(".") if isinstance(name, str) else [""]
        if not all(p.isidentifier() for p in parts):
            raise ValueError(f"not a module name: {name!r}")
        _SelfCheckStubs.names.update(".".join(parts[:k]) for k in range(1, len(parts) + 1))
    for name, source in modules.items():
        parent, _, child = name.rpartition(".")
        if parent != "course_pkg" or not child.isidentifier():
            raise ValueError(f"not a course_pkg module: {name!r}")
        module = types.ModuleType(name)
        exec(compile(source, f"<{name}>", "exec"), module.__dict__)
        sys.modules[name] = module
        setattr(sys.modules["course_pkg"], child, module)


def zygote(options):
    control = socket.socket(fileno=options.control_fd)
    start = time.monotonic()
    install_student_api()
    preload(options.preload)
    LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # the workers (another uid) cannot trace or read this process
    control.sendall(f"ready {time.monotonic() - start:.3f}\n".encode())
    children = set()
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 64, 1)
        except OSError:
            break
        if not message:
            break  # the trusted side is gone: so is the sandbox (bwrap --die-with-parent)
        for pid in list(children):
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    children.discard(pid)
            except ChildProcessError:
                children.discard(pid)
        command = message.decode(errors="replace").split()
        if command[:1] == ["fork"] and len(fds) == 1:
            pid = _fork_patiently()
            if pid is None:
                os.close(fds[0])
                control.sendall(b"error: no process can be started in the slot (its process limit is reached)\n")
                continue
            if pid == 0:
                control.close()
                if options.no_isolation:
                    _worker_init(fds[0], options, user_ns=False, isolate=False)
                _enter_worker(fds[0], options)  # never returns
            os.close(fds[0])
            children.add(pid)
            control.sendall(f"forked {pid}\n".encode())
        elif command[:1] == ["kill"] and len(command) == 2 and int(command[1]) in children:
            try:
                os.kill(int(command[1]), signal.SIGKILL)  # the worker below it has PDEATHSIG: the namespace dies
                os.waitpid(int(command[1]), 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            children.discard(int(command[1]))
            control.sendall(b"killed\n")
        else:
            for fd in fds:
                os.close(fd)
            control.sendall(b"error\n")


def _fork_patiently(seconds=10.0):
    """os.fork(), retried while the slot's pids cgroup is full: the processes of a worker just killed (a fork bomb)
    leave the count only as the kernel reaps them, a moment after the kill returns. None if it never frees."""
    deadline = time.monotonic() + seconds
    delay = 0.01
    while True:
        try:
            return os.fork()
        except BlockingIOError:
            if time.monotonic() > deadline:
                return None
            time.sleep(delay)
            delay = min(0.2, delay * 2)


def _enter_worker(fd, options):
    """In the zygote's child: new PID and mount namespaces, then PID 1 of them runs the worker."""
    try:
        outer_uid, outer_gid = os.getuid(), os.getgid()
        user_ns = outer_uid != 0
        _check(LIBC.unshare(CLONE_NEWPID | CLONE_NEWNS | (CLONE_NEWUSER if user_ns else 0)), "unshare")
        if user_ns:  # an unprivileged instructor: map ourselves to root of the new user namespace, for the mounts
            LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # the zygote's "not dumpable" would make /proc/self read-only
            with open("/proc/self/setgroups", "w") as fh:
                fh.write("deny")
            with open("/proc/self/uid_map", "w") as fh:
                fh.write(f"0 {outer_uid} 1")
            with open("/proc/self/gid_map", "w") as fh:
                fh.write(f"0 {outer_gid} 1")
        pid = _fork_patiently()  # the slot's pids cgroup may still hold a killed fork bomb's processes
        if pid is None:
            raise OSError("no process can be started in the slot (its process limit is reached)")
        if pid == 0:
            _worker_init(fd, options, user_ns)
        os.close(fd)
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        os._exit(70)


def _worker_init(fd, options, user_ns, isolate=True):
    try:
        scratch = SCRATCH
        if isolate:
            _check(LIBC.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
            _check(LIBC.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "mount /proc")
            size = f"size={options.scratch_mb}m,mode=1777".encode()
            _check(LIBC.mount(b"scratch", SCRATCH.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, size), "mount scratch")
            with open("/proc/self/oom_score_adj", "w") as fh:  # out of memory in the slot: this worker goes first
                fh.write("1000")
            if not user_ns:
                os.setgroups([])
                os.setresgid(options.slot_uid, options.slot_uid, options.slot_uid)
                os.setresuid(options.slot_uid, options.slot_uid, options.slot_uid)
            _drop_capabilities()
        else:  # --no-isolation (the instructor's explicit, unsafe choice): a temporary folder, nothing else
            import tempfile

            scratch = tempfile.mkdtemp(prefix="grader-scratch-")
        LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after the uid change, which clears it
        _set_limits(options, isolate)
        devnull = os.open("/dev/null", os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(devnull, target)
        os.closerange(3, fd)
        os.closerange(fd + 1, 65536)
        os.chdir(scratch)
        os.environ.update(HOME=scratch, TMPDIR=scratch, MPLCONFIGDIR=f"{scratch}/.matplotlib")
        Worker(socket.socket(fileno=fd)).serve()
    except BaseException:  # noqa: BLE001 - before the worker serves, this reaches the sandbox's log
        traceback.print_exc()
        os._exit(71)
    os._exit(0)


def _vm_size():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _set_limits(o, isolate=True):
    limits = {
        resource.RLIMIT_AS: _vm_size() + o.memory_mb * 2**20,  # TensorFlow already maps a lot: on top of that
        resource.RLIMIT_NPROC: o.nproc_limit or o.max_processes,
        resource.RLIMIT_CPU: o.cpu_seconds,
        resource.RLIMIT_FSIZE: o.file_mb * 2**20,
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_NOFILE: 1024,
    }
    if not isolate:
        del limits[resource.RLIMIT_NPROC]  # it would count every process of the instructor's uid
    for kind, value in limits.items():
        resource.setrlimit(kind, (value, value))


# ---------------------------------------------------------------------------------------------------------------
# The worker: one submission


class TimeLimit(KeyboardInterrupt):
    """Raised in the student's code when a cell or call runs past its time (like Jupyter's interrupt)."""


def _on_alarm(signum, frame):
    raise TimeLimit("time limit reached")


class _Capped(io.TextIOBase):
    """A text stream that keeps at most OUTPUT_CHARS characters (the rest is counted, not kept)."""

    def __init__(self, name):
        self.name, self.parts, self.size, self.dropped = name, [], 0, 0

    def writable(self):
        return True

    def write(self, text):
        text = str(text)
        room = OUTPUT_CHARS - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(len(text), room)
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def value(self):
        text = "".join(self.parts)
        return text + (f"\n[... {self.dropped:,} more characters not kept ...]\n" if self.dropped else "")


def _student_frames(tb):
    """The frames of the student's own code (cells and functions defined in them): not the libraries' (files),
    nor the course modules the notebook was given (<course_pkg.x>), nor Python's frozen import machinery."""
    return [f for f in traceback.extract_tb(tb)
            if f.filename.startswith("<") and not f.filename.startswith(("<course_pkg.", "<frozen "))]


def _place(frame):
    return "the cell" if frame.name == "<module>" else frame.name


def _error(exc):
    """An error as the student sees it: the exception, then each line of the student's own code it passed through
    (no traceback through library or grader code, no file names)."""
    frames = _student_frames(exc.__traceback__)
    evalue = str(exc)
    at = [(_place(f), f.lineno, (f.line or "").strip()) for f in frames]
    if isinstance(exc, SyntaxError):  # raised while compiling the cell: its own line, not a frame
        evalue = str(exc.msg)
        at = [("the cell", exc.lineno, (exc.text or "").strip())] if exc.lineno else []
    where = ""
    if at:
        name, lineno, line = at[-1]
        where = f" (in {name}, line {lineno}: {line})" if line else f" (in {name}, line {lineno})"
    lines = [f"{type(exc).__name__}: {evalue}"[:2000]]
    lines += [f"    in {name}, line {lineno}" + (f": {line}" if line else "") for name, lineno, line in at[-20:]]
    return {"ename": type(exc).__name__[:200], "evalue": evalue[:4000], "where": where[:1000],
            "traceback": [line[:2000] for line in lines]}


def _isolated(fn, stubs):
    """fn with the given names bound to stubs in a copy of its globals (fn's own namespace is not changed)."""
    if not stubs or not isinstance(fn, types.FunctionType):
        return fn
    g = dict(fn.__globals__)
    for name, stub in stubs.items():
        if name in g or name in fn.__code__.co_names:
            g[name] = stub
    new = types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, fn.__closure__)
    new.__kwdefaults__ = fn.__kwdefaults__
    return new


_KERAS_KINDS = ("LSTM", "GRU", "SimpleRNN")
_KERAS_OPTIONS = ("return_sequences", "return_state", "reset_after")


_KERAS_LAYERS = {}  # (kind, units, input_dim, dtype, options) -> a layer built in this worker, for its next checks


def _build_keras(spec, weights):
    """The Keras layer a description asks for, with these weights. A layer of the same description built earlier in
    this worker (one submission) is reused with the new weights: building one takes some 20 ms, setting weights 1."""
    import keras

    kind = spec.get("kind")
    if kind not in _KERAS_KINDS:
        raise protocol.ProtocolError(f"unknown Keras layer {kind!r}")
    options = {k: bool(v) for k, v in dict(spec.get("options") or {}).items() if k in _KERAS_OPTIONS}
    key = (kind, int(spec["units"]), int(spec["input_dim"]), str(spec["dtype"]), tuple(sorted(options.items())))
    layer = _KERAS_LAYERS.get(key)
    if layer is None:
        zeros = {f"{k}_initializer": "zeros" for k in ("kernel", "recurrent", "bias")}  # (set_weights follows:
        # the default orthogonal initializer's QR decomposition would be a third of the build's time, for nothing)
        layer = getattr(keras.layers, kind)(key[1], dtype=key[3], **options, **zeros)
        layer.build((None, None, key[2]))
        _KERAS_LAYERS[key] = layer
    layer.set_weights(weights)
    return layer


class Worker:
    def __init__(self, sock):
        from IPython.core.interactiveshell import InteractiveShell

        from traitlets.config import Config

        self.sock = sock
        self.namespace = {"__name__": "__main__", "__builtins__": builtins}
        config = Config()
        config.HistoryManager.enabled = False
        self.shell = InteractiveShell.instance(user_ns=self.namespace, config=config)
        self.handles = {}
        self.outputs = None
        worker = self

        def show_traceback(*args, **kwargs):
            etype, value, tb = sys.exc_info()
            if value is not None:
                error = _error(value)
                worker.outputs.append({"output_type": "error", **{k: error[k] for k in ("ename", "evalue",
                                                                                         "traceback")}})

        self.shell.showtraceback = show_traceback
        self.shell.showsyntaxerror = show_traceback
        self.shell.displayhook.write_output_prompt = lambda: None
        self.shell.displayhook.write_format_data = (
            lambda data, md=None: worker.outputs.append({"output_type": "execute_result", "data": _texts(data)}))
        self.shell.display_pub.publish = (
            lambda data, metadata=None, **kw: worker.outputs.append({"output_type": "display_data",
                                                                      "data": _texts(data)}))
        signal.signal(signal.SIGALRM, _on_alarm)

    def send(self, header, value=None):
        blobs = []
        if value is not None or "value" in header:
            header["value"] = protocol.encode(value, blobs, handle=self._keep)
        protocol.send(self.sock, header, blobs)

    def _keep(self, obj):
        ident = len(self.handles) + 1
        self.handles[ident] = obj
        return ident

    def _handle(self, ident, type_name):
        if ident not in self.handles:
            raise protocol.ProtocolError(f"no object {ident}")
        return self.handles[ident]

    def serve(self):
        while True:
            try:
                header, blobs = protocol.receive(self.sock)
            except EOFError:
                return
            op = header.get("op")
            if op == "cell":
                self.run_cell(header["source"], float(header.get("timeout", 30)))
            elif op == "call":
                self.call(header, blobs)
            elif op == "inspect":
                self.send({"op": "info", "info": {n: self._kind(n) for n in header["names"]}})
            elif op == "get":
                name = header["name"]
                if name not in self.namespace:
                    self.send({"op": "undefined"})
                elif header.get("attrs") is not None:
                    self._send_view(self.namespace[name], header["attrs"])
                else:
                    self._send_value(self.namespace[name])
            elif op == "provide":
                try:
                    provide(header["modules"], header.get("stubs", ()))
                except Exception as exc:  # noqa: BLE001
                    self.send({"op": "error", "message": f"{type(exc).__name__}: {exc}"})
                else:
                    self.send({"op": "ok"})
            elif op == "reset":
                self.handles.clear()
                self.send({"op": "ok"})
            else:
                self.send({"op": "error", "message": f"unknown op {op!r}"})

    def _kind(self, name):
        if name not in self.namespace:
            return "undefined"
        value = self.namespace[name]
        return "function" if callable(value) and not isinstance(value, type) else type(value).__name__

    def _send_view(self, obj, attrs):
        signal.setitimer(signal.ITIMER_REAL, 5)  # a property of the student's may run code
        try:
            view = {"type": f"{type(obj).__module__}.{type(obj).__qualname__}",
                    "attrs": {str(a): getattr(obj, str(a), None) for a in attrs}}
        except BaseException as exc:  # noqa: BLE001
            view = {"type": type(obj).__qualname__, "attrs": {}, "error": str(exc)[:200]}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        self._send_value(view)

    def _send_value(self, value):
        try:
            self.send({"op": "result"}, value)
        except (protocol.ProtocolError, RecursionError, ValueError, TypeError) as exc:
            self.send({"op": "raised", "ename": "ValueError",
                       "evalue": f"returned a value that cannot be checked ({exc})", "where": ""})

    def run_cell(self, source, timeout):
        self.outputs = []
        out, err = _Capped("stdout"), _Capped("stderr")
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            self.shell.run_cell(source, store_history=False)
        except BaseException as exc:  # noqa: BLE001 - whatever escapes IPython is the cell's error
            self.outputs.append({"output_type": "error", **{k: v for k, v in _error(exc).items() if k != "where"}})
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            sys.stdout, sys.stderr = saved
        streams = [{"output_type": "stream", "name": s.name, "text": s.value()} for s in (out, err) if s.value()]
        self.send({"op": "cell_done", "outputs": streams + self.outputs})

    def _stub(self, ident):
        worker = self

        def reference(*args, **kwargs):
            blobs = []
            header = {"op": "callback", "id": ident, "args": protocol.encode(list(args), blobs, handle=worker._keep),
                      "kwargs": protocol.encode(kwargs, blobs, handle=worker._keep)}
            protocol.send(worker.sock, header, blobs)
            reply, reply_blobs = protocol.receive(worker.sock)
            if reply.get("op") == "callback_error":
                error = getattr(builtins, str(reply.get("ename")), None)
                if not (isinstance(error, type) and issubclass(error, Exception)):
                    error = RuntimeError
                raise error(reply.get("evalue", ""))
            return protocol.decode(reply["value"], reply_blobs, handle=worker._handle)

        return reference

    def call(self, header, blobs):
        name = header["name"]
        try:
            args = protocol.decode(header["args"], blobs, handle=self._handle, callback=self._stub,
                                   keras=_build_keras)
            kwargs = protocol.decode(header["kwargs"], blobs, handle=self._handle, callback=self._stub,
                                     keras=_build_keras)
        except Exception as exc:  # noqa: BLE001 - e.g. a Keras layer that cannot be built
            self.send({"op": "raised", "ename": type(exc).__name__, "evalue": str(exc)[:2000], "where": ""})
            return
        fn = self.namespace.get(name)
        if fn is None or not callable(fn):
            self.send({"op": "raised", "ename": "NameError", "evalue": f"{name} is not defined", "where": ""})
            return
        fn = _isolated(fn, {n: self._stub(i) for n, i in dict(header.get("isolate") or {}).items()})
        out = _Capped("stdout")
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = out  # what the function prints is not shown while grading
        signal.setitimer(signal.ITIMER_REAL, float(header.get("timeout", 10)))
        try:
            value = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - the student's function raised (or ran out of time)
            signal.setitimer(signal.ITIMER_REAL, 0)
            sys.stdout, sys.stderr = saved
            error = _error(exc)
            self.send({"op": "raised", "ename": error["ename"], "evalue": error["evalue"], "where": error["where"]})
            return
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            sys.stdout, sys.stderr = saved
        try:  # the arguments as the call left them: a check may look at what the function changed in place
            blobs = []
            header = {"op": "result", "value": protocol.encode(value, blobs, handle=self._keep),
                      "after": protocol.encode([list(args), kwargs], blobs, handle=self._keep)}
            message = protocol.frame(header, blobs)  # (json may refuse the value: nothing is sent then)
        except (protocol.ProtocolError, RecursionError, ValueError, TypeError):
            self._send_value(value)
        else:
            self.sock.sendall(message)


def _texts(data):
    """The text parts of a display (text/plain, text/html, ...), each cut to OUTPUT_CHARS; images are dropped."""
    out = {}
    for mime, value in dict(data or {}).items():
        if isinstance(mime, str) and mime.startswith("text/") and isinstance(value, str):
            out[mime] = value[:OUTPUT_CHARS]
    return out or {"text/plain": ""}


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--control-fd", type=int, required=True)
    p.add_argument("--slot-uid", type=int, default=65534)
    p.add_argument("--no-isolation", action="store_true")
    p.add_argument("--preload", nargs="*", default=[])
    p.add_argument("--memory-mb", type=int, default=2048)
    p.add_argument("--max-processes", type=int, default=64)
    p.add_argument("--nproc-limit", type=int, default=0, help="RLIMIT_NPROC (default: --max-processes)")
    p.add_argument("--cpu-seconds", type=int, default=600)
    p.add_argument("--file-mb", type=int, default=64)
    p.add_argument("--scratch-mb", type=int, default=256)
    zygote(p.parse_args(argv))


if __name__ == "__main__":
    main()
