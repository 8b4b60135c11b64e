"""The checker behind the assignments: a student's function against course_pkg's on fixed and hidden random cases.

A Spec says how to build the inputs of one graded function and how to run it; `run(get, inputs)` receives a
resolver `get(name)` that returns the function to use for each name, so the same Spec runs the reference
(course_pkg's functions), the student's functions, or a Mistake (a known wrong version of one or more functions, the
references elsewhere). When the student's outputs differ from the reference, every Mistake of the library for that
function is run on the same inputs; one whose outputs match the student's names the mistake.

Isolation: while function F is checked, the names in spec.isolate inside the student's code resolve to course_pkg's
versions (for example the gate functions inside lstm_step_forward), so one wrong gate costs the gate's points, not
also those of every function that calls it.
"""

from __future__ import annotations

import dataclasses
import dis
import inspect
import io
import traceback
import types
import zlib
from typing import Callable

import numpy as np

# |yours - reference| <= ATOL + RTOL * |reference|, elementwise
TOLERANCES = {np.dtype(np.float64): (1e-6, 1e-8), np.dtype(np.float32): (1e-4, 1e-5)}
TOLERANCE_TEXT = "float64: |yours - reference| <= 1e-8 + 1e-6 |reference|; float32: 1e-5 + 1e-4 |reference|"


@dataclasses.dataclass
class Case:
    """One set of inputs: `inputs` (a dict) plus a short description such as 'float64, B=1 D=3 H=3'."""

    inputs: dict
    label: str
    dtype: np.dtype = np.dtype(np.float64)


@dataclasses.dataclass
class Spec:
    """How to check one graded function.

    name: the function's name (course_pkg's and the notebook's).
    reference: course_pkg's function.
    make_case(rng, dtype, square) -> Case: random inputs of random shapes (rng is the checker's private Generator;
        square asks for D == H where the function has both).
    visible_case() -> Case: the fixed small example of the notebook's visible test.
    run(get, inputs) -> tuple of named outputs (see `outputs`); get(name) resolves functions.
    outputs: the names of run's outputs, used in messages ("h_t differs ...").
    isolate: names that resolve to course_pkg's versions inside the student's code during this check.
    uses: other student functions that run() calls (their own code is used, isolated the same way).
    """

    name: str
    reference: Callable
    make_case: Callable
    visible_case: Callable
    run: Callable
    outputs: tuple
    isolate: tuple = ()
    uses: tuple = ()
    note: str = ""  # said once in the report, e.g. "the gate functions inside it are course_pkg's"
    key: str = ""  # the check's name (test cell test_<key>); defaults to `name` (two checks of one function differ)
    # course_pkg's function with the cache in the layout the notebook prescribes (a forward step's cache is what the
    # notebook's backward step reads): what the checks call and isolate with; `reference` stays course_pkg's own
    prescribed: Callable | None = None

    def __post_init__(self):
        self.key = self.key or self.name


@dataclasses.dataclass
class Mistake:
    """A common mistake, recognised by its outputs.

    impls maps function names to wrong versions (same signatures); names not in impls resolve to course_pkg.
    function is the key of the check that recognises it (usually the function's name); gate the part concerned.
    what says what is wrong; hint how to think about the fix, never the code.
    """

    id: str
    function: str
    gate: str | None
    what: str
    hint: str
    impls: dict
    dtypes: tuple = (np.dtype(np.float64),)  # the case dtypes on which it can be recognised

    def message(self):
        where = f"{self.function}, {self.gate}" if self.gate else self.function
        return f"Likely mistake [{self.id}] in {where}: {self.what}\n    Hint: {self.hint}"


def kind_of(kind, known, factory):
    """`kind` if it is one of `known`, else a ValueError when the mistake library is built (at import): a misspelt
    kind must never make a mistake that silently computes the correct function."""
    if kind not in known:
        raise ValueError(f"{factory}: unknown kind {kind!r}; known: {', '.join(map(repr, known))}")
    return kind


class Registry:
    """One assignment's checks: Specs by key, course_pkg's reference functions by name, Mistakes by check key."""

    def __init__(self, assignment):
        self.assignment = assignment
        self.specs = {}
        self.references = {}
        self.mistakes = {}
        self.cell_checks = {}  # key -> fn(namespace, out=None): a test cell that is not one function's check
        # {(forward key, backward key): [Case]}: where the grader measures that the student's backward pass is the
        # gradient of the student's forward pass (behind a gradient check cell)
        self.gradient_cases = dict
        # callables explain(spec, case, got, found) -> more explanations (objects with .id and .message()) of outputs
        # that differ from the reference, `found` being the library's Mistakes that already match; the grader adds
        # its search over mutants of the solution code here (grader/diagnosis.py)
        self.explainers = []

    def add_spec(self, spec):
        if spec.key in self.specs:
            raise ValueError(f"duplicate spec {spec.key}")
        used = spec.prescribed or spec.reference
        if self.references.get(spec.name, used) is not used:
            raise ValueError(f"two references for {spec.name}")
        self.specs[spec.key] = spec
        self.references[spec.name] = used
        self.mistakes.setdefault(spec.key, [])

    def reference_modules(self):
        """The modules a student's function may not call into: course_pkg's references and those this registry's
        checks use (an assignment whose checks live outside course_pkg has its references there)."""
        found = {getattr(fn, "__module__", None) for fn in self.references.values()}
        found |= {getattr(spec.reference, "__module__", None) for spec in self.specs.values()}
        return _REFERENCE_MODULES + tuple(sorted(m for m in found if m and m not in ("__main__", "builtins")))

    def add_reference(self, name, fn):
        """A course_pkg function a check's run() uses under `name` without grading it."""
        self.references[name] = fn

    def reference(self, name):
        return self.references[name]

    def spec(self, key):
        try:
            return self.specs[key]
        except KeyError:
            raise KeyError(f"no checks defined for {key!r}; known: {sorted(self.specs)}") from None

    def check(self, key, namespace):
        return check(self, key, namespace)

    def add_mistake(self, mistake):
        if mistake.function not in self.specs:
            raise ValueError(f"mistake {mistake.id}: no spec for {mistake.function}")
        if any(m.id == mistake.id for ms in self.mistakes.values() for m in ms):
            raise ValueError(f"duplicate mistake id {mistake.id}")
        self.mistakes[mistake.function].append(mistake)

    def all_mistakes(self):
        return [m for ms in self.mistakes.values() for m in ms]


# course_pkg modules whose functions a student must not call in place of their own
_REFERENCE_MODULES = ("course_pkg.rnn", "course_pkg.lstm", "course_pkg.gru", "course_pkg.keras_interop",
                      "course_pkg.gradcheck", "course_pkg.checks")


class CheckFailure(Exception):
    """A case failed; the message says what differs."""


class CacheLayoutError(CheckFailure):
    """A forward function's cache is not in the layout the notebook prescribes."""


@dataclasses.dataclass
class CacheEntries:
    """A forward function's cache as checked: [(label, value)] in the prescribed order, or why it cannot be read
    (error): the other outputs are still compared first, and a known mistake can still be named on them."""

    entries: list
    error: str | None = None


def _kind_of(value):
    return f"a {getattr(value, 'type_name', type(value).__name__)}"


@dataclasses.dataclass(frozen=True)
class CacheLayout:
    """The cache a notebook prescribes for one forward step: a tuple of these entries in this order, or a dict with
    these keys (kind "tuple" or "dict"); a sequence function's cache is the list of its steps' caches."""

    kind: str
    names: tuple

    def __post_init__(self):
        if self.kind not in ("tuple", "dict"):
            raise ValueError(f"a cache layout is a 'tuple' or a 'dict', not {self.kind!r}")

    def describe(self):
        if self.kind == "tuple":
            return f"a tuple ({', '.join(self.names)})"
        return "a dict with the keys " + ", ".join(repr(n) for n in self.names)

    def values(self, cache, where="cache"):
        """The entries of a cache in the prescribed order; CacheLayoutError saying what is wrong otherwise."""
        if self.kind == "tuple":
            if not isinstance(cache, (tuple, list)) or len(cache) != len(self.names):
                size = f" of {len(cache)} entries" if isinstance(cache, (tuple, list)) else ""
                raise CacheLayoutError(f"{where} is {_kind_of(cache)}{size}; the notebook prescribes "
                                       f"{self.describe()}")
            return list(cache)
        if not isinstance(cache, dict):
            raise CacheLayoutError(f"{where} is {_kind_of(cache)}; the notebook prescribes {self.describe()}")
        missing = [n for n in self.names if n not in cache]
        if missing:
            raise CacheLayoutError(f"{where} has no {', '.join(repr(m) for m in missing)}; the notebook prescribes "
                                   f"{self.describe()}")
        return [cache[n] for n in self.names]

    def entries(self, cache, where="cache"):
        try:
            return CacheEntries(list(zip(self.labels(where), self.values(cache, where))))
        except CacheLayoutError as exc:
            return CacheEntries([], str(exc))

    def labels(self, where):
        if self.kind == "tuple":
            return [f"{where}[{k}] ({n})" for k, n in enumerate(self.names)]
        return [f"{where}[{n!r}]" for n in self.names]

    def sequence_entries(self, caches, steps):
        """A sequence function's cache: a list of `steps` step caches, each in this layout."""
        if not isinstance(caches, (list, tuple)) or len(caches) != steps:
            size = f" of {len(caches)} entries" if isinstance(caches, (list, tuple)) else ""
            return CacheEntries([], f"the cache is {_kind_of(caches)}{size}; the notebook prescribes a list of the "
                                f"{steps} step caches, in order, each {self.describe()}")
        out = []
        for t, cache in enumerate(caches):
            step = self.entries(cache, f"cache[{t}]")
            if step.error:
                return step
            out += step.entries
        return CacheEntries(out)


def _code_names(code):
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _code_strings(code):
    strings = {c for c in code.co_consts if isinstance(c, str)}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            strings |= _code_strings(const)
    return strings


def _imported_references(code, modules=_REFERENCE_MODULES):
    """Reference modules imported inside the function's own code (import x / from x import y)."""
    found = set()
    ins = list(dis.get_instructions(code))
    for k, i in enumerate(ins):
        if i.opname != "IMPORT_NAME" or not str(i.argval).startswith(tuple(m.split(".")[0] for m in modules)):
            continue
        fromlist = ins[k - 1].argval if k and ins[k - 1].opname == "LOAD_CONST" else None
        names = [f"{i.argval}.{n}" for n in (fromlist or ())] or [i.argval]
        found |= {n for n in names if n.startswith(modules)}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found |= _imported_references(const, modules)
    return found


def _borrowed_reference(fn, namespace, allowed, modules=_REFERENCE_MODULES):
    """The name of a reference function (of `modules`) that fn uses (directly or through the namespace), or None."""
    mod = getattr(fn, "__module__", "") or ""
    if mod.startswith(modules):
        return f"{mod}.{getattr(fn, '__name__', '?')}"
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    imported = _imported_references(code, modules)
    if imported:
        return sorted(imported)[0]
    names = _code_names(code)
    for name in names | _code_strings(code):  # `from course_pkg.lstm import ...` inside the function, or its string
        if name.startswith(modules):
            return name
    for name in names:
        if name in allowed:
            continue
        obj = namespace.get(name)
        if isinstance(obj, types.ModuleType) and obj.__name__.startswith(modules):
            return obj.__name__
        if name == "course_pkg" and isinstance(obj, types.ModuleType):
            return "course_pkg"
        m = getattr(obj, "__module__", "") or ""
        if callable(obj) and m.startswith(modules):
            return f"{m}.{getattr(obj, '__name__', name)}"
    return None


def _isolated(fn, names, registry):
    """fn with the given names (graded functions) resolved to course_pkg's versions in its globals."""
    if not names or not isinstance(fn, types.FunctionType):
        return fn
    g = dict(fn.__globals__)
    for n in names:
        if n in g or n in fn.__code__.co_names:
            g[n] = registry.reference(n)
    new = types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, fn.__closure__)
    new.__kwdefaults__ = fn.__kwdefaults__
    return new


class StudentCode:
    """The student's functions, looked up by name in the notebook's namespace, isolated for one spec."""

    def __init__(self, namespace, spec, registry):
        self.namespace = namespace
        self.spec = spec
        self.registry = registry

    def problem(self):
        """Why the student's code cannot be checked at all (not defined, not a function, borrowed), or None."""
        allowed = set(self.registry.references)  # calling one's own graded functions is expected
        for name in (self.spec.name, *self.spec.uses):
            fn = self.namespace.get(name)
            if fn is None:
                return f"{name} is not defined: run the cell that defines it (and keep its name)."
            if not callable(fn):
                return f"{name} is a {type(fn).__name__}, not a function."
            borrowed = _borrowed_reference(fn, self.namespace, allowed, self.registry.reference_modules())
            if borrowed:
                return (f"{name} uses course_pkg's reference implementation ({borrowed}); the assignment asks for "
                        "your own code (numpy and the helpers the notebook gives are fine).")
        return None

    def __call__(self, name):
        if name == self.spec.name or name in self.spec.uses:
            fn = _isolated(self.namespace[name], self.spec.isolate, self.registry)

            def student_function(*args, **kwargs):
                from .cases import real_layers  # a Keras layer's description becomes the layer itself

                return fn(*real_layers(args), **kwargs)

            return student_function
        return self.registry.reference(name)


def student_for(namespace, spec, registry):
    """The resolver of the student's functions for one spec: in this process (StudentCode, the notebook's own
    self-check), or whatever the namespace makes (the grader's namespace stands for a sandboxed worker)."""
    make = getattr(namespace, "student", None)
    return make(spec, registry) if make else StudentCode(namespace, spec, registry)


def object_view(namespace, name, attrs):
    """None if `name` is not defined, else (its type as "module.Class", {attr: value}) for the given attributes
    (None where missing): what a check may read of an object the student's code made, here or in the grader's
    worker."""
    view = getattr(namespace, "view", None)
    if view is not None:
        return view(name, attrs)
    if name not in namespace:
        return None
    obj = namespace[name]
    return f"{type(obj).__module__}.{type(obj).__qualname__}", {a: getattr(obj, a, None) for a in attrs}


def _mistake_resolver(mistake, registry):
    def get(name):
        return mistake.impls.get(name) or registry.reference(name)

    return get


def _as_outputs(result, spec):
    if not isinstance(result, tuple):
        result = (result,)
    return result


def _copy_inputs(inputs):
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in inputs.items()}


def _describe(a):
    if isinstance(a, np.ndarray):
        return f"an array of shape {a.shape} and dtype {a.dtype}"
    return f"a {getattr(a, 'type_name', type(a).__name__)}"  # type_name: an object left in the grader's worker


def compare(spec, case, got, expected):
    """Raise CheckFailure naming the first output that differs (count, type, shape, dtype, values)."""
    names = spec.outputs
    if len(got) != len(expected):
        raise CheckFailure(f"{spec.name} returned {len(got)} value(s); expected {len(expected)}: {', '.join(names)}")
    for name, g, e in zip(names, got, expected):
        if isinstance(e, CacheEntries):
            _compare_cache(case, g, e)
        else:
            _compare_array(case, name, g, e)


def _compare_cache(case, got, expected):
    if not isinstance(got, CacheEntries):
        raise CheckFailure("the cache could not be read")
    if got.error:
        raise CheckFailure(got.error)
    for (name, g), (_, e) in zip(got.entries, expected.entries):
        if isinstance(e, np.ndarray):
            _compare_array(case, name, g, e)
        elif not (type(g) is type(e) and g == e):
            raise CheckFailure(f"{name} is {str(g)[:40]}; expected {e!r}")


def _compare_array(case, name, g, e):
    rtol, atol = TOLERANCES[case.dtype]
    if not isinstance(g, np.ndarray) or not np.issubdtype(g.dtype, np.floating):
        if isinstance(g, (float, np.floating)) and np.ndim(e) == 0:
            g = np.asarray(g)
        else:
            raise CheckFailure(f"{name}: expected a float array of shape {e.shape}; got {_describe(g)}")
    if g.shape != e.shape:
        raise CheckFailure(f"{name}: expected shape {e.shape}; got {g.shape}")
    if g.dtype != e.dtype:
        raise CheckFailure(f"{name}: expected dtype {e.dtype} (the inputs' dtype); got {g.dtype}. Create new "
                           "arrays with the inputs' dtype (np.zeros_like, or dtype=x.dtype).")
    if not np.all(np.isfinite(g)):
        raise CheckFailure(f"{name}: contains NaN or infinity")
    if not np.allclose(g, e, rtol=rtol, atol=atol):
        err = float(np.max(np.abs(g.astype(np.float64) - e.astype(np.float64))))
        raise CheckFailure(f"{name} differs from the reference (largest absolute difference {err:.3g})")


def _matches(spec, case, got, mistake_out):
    """Whether the mistake's outputs are the student's; a cache the student's code did not lay out as prescribed is
    left out of the comparison (the mistake is named on the other outputs)."""
    if len(got) == len(mistake_out):
        kept = [k for k, g in enumerate(got) if not (isinstance(g, CacheEntries) and g.error)]
        if len(kept) < len(got):
            spec = dataclasses.replace(spec, outputs=tuple(spec.outputs[k] for k in kept))
            got, mistake_out = tuple(got[k] for k in kept), tuple(mistake_out[k] for k in kept)
    try:
        compare(spec, case, got, mistake_out)
        return True
    except CheckFailure:
        return False


def diagnose(registry, spec, case, got):
    """The Mistakes whose outputs on this case match the student's outputs: the check's own, then those of the
    functions it uses (a backward check runs on the cache of the student's own forward, so a wrong forward shows in
    the backward's outputs, and the report should send the student to it)."""
    found = []
    used = [m for name in spec.uses for m in registry.mistakes.get(name, [])]
    for mistake in [*registry.mistakes.get(spec.key, []), *used]:
        if case.dtype not in mistake.dtypes:
            continue
        try:
            out = _as_outputs(spec.run(_mistake_resolver(mistake, registry), _copy_inputs(case.inputs)), spec)
        except Exception:  # the mistake does not apply to these shapes
            continue
        if _matches(spec, case, got, out):
            found.append(mistake)
    for explain in registry.explainers:
        found += [e for e in explain(spec, case, got, list(found)) if e.id not in {f.id for f in found}]
    return found


def _student_error(exc):
    """The exception and the student's own frames (cells), not the checker's."""
    if hasattr(exc, "detail"):  # raised in the grader's sandboxed worker: it says where, in the student's code
        return exc.detail()
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "course_pkg" not in f.filename]
    where = ""
    if frames:
        f = frames[-1]
        where = f" (in {f.name}, line {f.lineno}: {f.line})" if f.line else f" (in {f.name})"
    return f"raised {type(exc).__name__}: {exc}{where}"


@dataclasses.dataclass
class CaseResult:
    case: Case
    passed: bool
    detail: str = ""
    mistakes: list = dataclasses.field(default_factory=list)
    raised: bool = False  # the student's code raised: no outputs to compare with the library


def run_case(registry, spec, student, case):
    """Run one case; never raises for anything the student's code does."""
    try:
        expected = _as_outputs(spec.run(registry.reference, _copy_inputs(case.inputs)), spec)
    except Exception as exc:  # a bug in the checker itself: say so instead of blaming the student
        raise RuntimeError(f"checker error in {spec.name} on {case.label}: {exc!r}") from exc
    try:
        with np.errstate(all="ignore"):
            got = _as_outputs(spec.run(student, _copy_inputs(case.inputs)), spec)
    except CheckFailure as exc:  # what the student's function returned is not what the notebook prescribes
        return CaseResult(case, False, str(exc), raised=True)
    except RecursionError:
        return CaseResult(case, False, "RecursionError (a function that calls itself without end?)", raised=True)
    except Exception as exc:
        return CaseResult(case, False, _student_error(exc), raised=True)
    try:
        compare(spec, case, got, expected)
    except CheckFailure as exc:
        return CaseResult(case, False, str(exc), diagnose(registry, spec, case, got))
    return CaseResult(case, True)


def private_rng(seed, name):
    """The hidden checks' generator: seeded from the hidden cell's seed and the function name, never global state."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFFFFFFFFFF, zlib.crc32(name.encode())])


def hidden_cases(spec, seed, n64=4, n32=2):
    """n64 float64 then n32 float32 cases; every other case has D == H (see cases.dims). A case maker that takes
    `index` gets the case's position, to cover fixed patterns whatever the seed (a3: both GRU conventions)."""
    rng = private_rng(seed, spec.key)
    dtypes = [np.dtype(np.float64)] * n64 + [np.dtype(np.float32)] * n32
    try:
        indexed = "index" in inspect.signature(spec.make_case).parameters
    except (TypeError, ValueError):
        indexed = False
    return [spec.make_case(rng, dtype, square=(k % 2 == 0), **({"index": k} if indexed else {}))
            for k, dtype in enumerate(dtypes)]


def _report(spec, results, header):
    out = io.StringIO()
    print(header, file=out)
    if spec.note:
        print(f"  ({spec.note})", file=out)
    named = []
    for r in results:
        mark = "ok  " if r.passed else "FAIL"
        print(f"  {mark} {r.case.label}" + ("" if r.passed else f": {r.detail}"), file=out)
        for m in r.mistakes:
            if m.id not in {x.id for x in named}:
                named.append(m)
    if len(named) > 1:
        print(f"  {len(named)} explanations fit these outputs; look at each:", file=out)
    for m in named:
        print("  " + m.message(), file=out)
    if not named and any(not r.passed and not r.raised for r in results):
        print("  No common mistake matches these outputs: compare your function with the equations in the "
              "notebook, term by term, on the small example.", file=out)
    return out.getvalue().rstrip("\n")


def function_summary(registry, namespace, cases):
    """Report lines for a cell that depends on several graded functions (a gradient check): for each key of
    `cases` (key -> list of Cases, each described by its label), whether the student's function passes on them and
    which known mistakes match; so such a cell can name the mistake behind its failure."""
    lines = []
    for key, key_cases in cases.items():
        spec = registry.spec(key)
        student = student_for(namespace, spec, registry)
        problem = student.problem()
        if problem:
            lines.append(f"  {key}: {problem}")
            continue
        results = [run_case(registry, spec, student, case) for case in key_cases]
        failed = [r for r in results if not r.passed]
        if not failed:
            lines.append(f"  {key}: passes on " + " and on ".join(r.case.label for r in results))
            continue
        named = []
        for r in failed:
            lines.append(f"  {key}: fails on {r.case.label}: {r.detail}")
            named += [m for m in r.mistakes if m.id not in {x.id for x in named}]
        lines += ["    " + m.message() for m in named]
    return lines


def check(registry, key, namespace):
    """The visible test: the notebook's fixed small example. Prints a short report; raises AssertionError on failure."""
    spec = registry.spec(key)
    name = spec.key
    student = StudentCode(namespace, spec, registry)
    problem = student.problem()
    if problem:
        raise AssertionError(f"{name}: {problem}") from None
    result = run_case(registry, spec, student, spec.visible_case())
    report = _report(spec, [result], f"{name}: visible check on the small example")
    if not result.passed:
        raise AssertionError("\n" + report) from None
    print(report)
    print(f"  Hidden checks run when your work is graded: random shapes, float64 and float32 ({TOLERANCE_TEXT}).")


