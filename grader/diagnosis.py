"""Automatic diagnosis: when a student's outputs differ from the reference and no mistake of the hand-written library
matches, search for the explanation among the single-edit mutants of the notebook's own solution code.

Instructor-side only. The grader reads each graded function's solution from the course's source notebook (the cells
between `### BEGIN SOLUTION` and `### END SOLUTION`), parses it with `ast`, and makes every mutant that one edit of
these kinds produces (OPERATORS, in this order):

- activation: a sigmoid or tanh swapped for another of sigmoid, tanh, ReLU and the identity;
- gate: a gate (a value in (0, 1)) replaced by 1 or by 0 where it is used;
- complement: z and 1 - z exchanged (in one expression, or at one place);
- block: a gate block permuted (a block slice of W, U and b, the order of the blocks put side by side) or a bias row
  exchanged (b[0] and b[1]);
- derivative: a derivative factor of the wrong function (1 - h for 1 - h², the sigmoid's for the tanh's and back), a
  sigmoid's derivative left out, a transpose (.T) removed or added;
- term: a term of a sum left out or counted twice (a running sum that overwrites instead of adding);
- factor: a factor of a product left out;
- product: a product moved to the other side of a sum (r * (a + b) against r * a + b; r multiplying another term of
  the sum; a scaling before or after a matrix product);
- variable: one variable replaced by another of the same shape, or by a part of another variable's sum (a
  half-updated state).

Each mutant runs where the check runs the student's function: `spec.run(get, inputs)` with get(spec.name) the mutant
and every other name registry.reference(name) (only the function under check is mutated). A mutant whose outputs
match the student's on the failing case is an explanation, said in words built from the code's context ("in
lstm_step_forward, computing c_t: the forget gate f is left out of the product f * c_prev, as if it were 1"), never with
the solution's code.

Mutants are compiled once per function and filtered on fixed probe cases: those that compute what the solution
computes (an edit that changes nothing), that fail on every probe, or that compute what an earlier mutant computes
are dropped; at most CAP remain, in a fixed order. A function whose solution does not pass its own check on the
probes gets no mutants (the search would explain nothing).

`with_diagnosis(registry, source_folder)` returns a copy of an assignment's registry whose `explainers` include the
search (core.diagnose calls it after the library); grader/nbgrader_ext.py uses it for every notebook it grades.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import hashlib
import itertools
import pathlib
import re
import sys
import threading

import numpy as np

from course_pkg import activations
from course_pkg.checks.core import CacheEntries, _as_outputs, _copy_inputs, _matches, hidden_cases

CAP = 300  # mutants kept per function
MAX_EXPLANATIONS = 3  # per failing case
PROBE_SEED = 1_000_003  # the probe cases' seed (hidden_cases: float64, square and not, both conventions in a3)
PROBES_PER_SPEC = 4

OPERATORS = ("activation", "gate", "complement", "block", "derivative", "term", "factor", "product", "variable")

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


# ---------------------------------------------------------------------------------------------------------------
# The solution functions of the source notebooks


def solution_sources(notebooks):
    """{function name: source of its def, the solution markers removed} for every function defined at the top level
    of a code cell that holds a solution region, in the given notebooks (paths), the first definition of a name
    kept."""
    import nbformat

    found = {}
    for path in notebooks:
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "code" or BEGIN not in cell.source:
                continue
            text = "\n".join(line for line in cell.source.splitlines()
                             if not line.strip().startswith((BEGIN, END)))
            try:
                tree = ast.parse(text)
            except SyntaxError:
                continue
            for node in tree.body:
                if isinstance(node, ast.FunctionDef) and node.name not in found:
                    found[node.name] = ast.get_source_segment(text, node)
    return found


def _order_words(sources):
    """The block letters ("blocks in the order i, f, g, o") and the bias rows ("rows: input side, recurrent side")
    that the solution functions' docstrings state, if any."""
    blocks, rows = (), ()
    for src in sources.values():
        doc = ast.get_docstring(ast.parse(src).body[0]) or ""
        m = re.search(r"order ([a-z]\w*(?:, [a-z]\w*)+)", doc)
        if m and not blocks:
            blocks = tuple(m[1].split(", "))
        m = re.search(r"rows: ([\w -]+?), ([\w -]+?)\)", doc)
        if m and not rows:
            rows = (m[1], m[2])
    return blocks, rows


# ---------------------------------------------------------------------------------------------------------------
# Words


NAMES = {
    "x_t": "the input x_t", "x": "the inputs x", "h_prev": "the previous state h_prev", "h0": "the initial state h0",
    "c_prev": "the previous cell state c_prev", "c0": "the initial cell state c0", "h_t": "the new state h_t",
    "c_t": "the new cell state c_t", "h": "the states h", "c": "the cell states c", "i": "the input gate i",
    "f": "the forget gate f", "g": "the candidate g", "o": "the output gate o", "z": "the update gate z",
    "r": "the reset gate r", "h_tilde": "the candidate h_tilde", "tanh_c": "tanh(c_t)", "b": "the bias b",
    "W": "W", "U": "U", "U_h": "U_h", "q": "the recurrent term q", "dh_t": "the upstream gradient dh_t",
    "dc_t": "the upstream gradient dc_t", "dh": "the upstream gradients dh", "dh_next": "the gradient dh_next "
    "arriving from the next step", "dc_next": "the gradient dc_next arriving from the next step",
    "cache": "the cache", "caches": "the caches", "step_cache": "the step's cache",
}
RUNNING = {"h_t": "the running state h_t", "c_t": "the running cell state c_t"}
BLOCK_WORDS = {"i": "input gate", "f": "forget gate", "g": "candidate", "o": "output gate", "z": "update gate",
               "r": "reset gate", "h": "candidate"}
ACTIVATION_WORDS = {"sigmoid": "a sigmoid", "tanh": "tanh", "relu": "ReLU", "identity": "nothing"}


def name_words(name):
    if name in NAMES:
        return NAMES[name]
    if re.fullmatch(r"a(_[a-z])?", name):  # a, a_t, a_i: the student's name may be another
        return "the pre-activation"
    if re.fullmatch(r"da(_[a-z])?", name):
        return f"the pre-activation's gradient {name}"
    if re.fullmatch(r"d[a-zA-Z]\w*", name):
        return f"the gradient {name}"
    return name


_PREC = {ast.Add: 1, ast.Sub: 1, ast.Mult: 2, ast.Div: 2, ast.MatMult: 3, ast.Pow: 4}
_SYMBOL = {ast.Add: " + ", ast.Sub: " - ", ast.Mult: " * ", ast.MatMult: " ", ast.Div: " / "}
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def render(node, outer=0):
    """An expression in the notebook's mathematical notation (x_t W + h_prev U + b, 1 - h_t², Uᵀ), never as code:
    no slices, no @, no method calls."""
    try:
        return _render(node, outer)
    except Exception:  # noqa: BLE001 - an unusual node: words are still possible without it
        return "an expression"


def _render(node, outer):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Constant):
        return repr(node.value) if isinstance(node.value, str) else str(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _PREC:
        prec = _PREC[type(node.op)]
        if isinstance(node.op, ast.Pow):
            base = _render(node.left, prec + 1)
            if isinstance(node.right, ast.Constant) and isinstance(node.right.value, int):
                text = base + str(node.right.value).translate(_SUPERSCRIPT)
            else:
                text = f"{base}^{_render(node.right, prec + 1)}"
        elif isinstance(node.op, ast.MatMult):
            text = _render(node.left, prec + 1) + " " + _render(node.right, prec + 1)
        else:
            text = _render(node.left, prec) + _SYMBOL[type(node.op)] + _render(node.right, prec + 1)
        return f"({text})" if prec < outer or (isinstance(node.op, ast.MatMult) and outer == 2) else text
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return "-" + _render(node.operand, 3)
    if isinstance(node, ast.Call):
        func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "f")
        args = ", ".join(_render(a, 0) for a in node.args)
        if isinstance(node.func, ast.Attribute) and not (isinstance(node.func.value, ast.Name)
                                                         and node.func.value.id == "np"):
            args = _render(node.func.value, 0)  # a method: x.sum(axis=0) -> sum(x)
        if func in ("concatenate", "stack", "hstack", "vstack") and node.args:
            return f"the blocks [{_render_list(node.args[0])}] side by side"
        return f"{func}({args})"
    if isinstance(node, ast.Subscript):
        base = _render(node.value, 5)
        index = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        shown = [e for e in index if isinstance(e, ast.Constant)
                 or isinstance(e, ast.Name) and re.fullmatch(r"[a-z]", e.id)]  # a row, a step t
        if shown:
            return f"{base}[{', '.join(_render(e, 0) for e in shown)}]"
        return base
    if isinstance(node, ast.Attribute):
        if node.attr == "T":
            return _render(node.value, 5) + "ᵀ"
        return f"{_render(node.value, 5)}.{node.attr}"
    if isinstance(node, (ast.Tuple, ast.List)):
        return f"({_render_list(node)})"
    raise ValueError(type(node).__name__)


def _render_list(node):
    elts = node.elts if isinstance(node, (ast.Tuple, ast.List)) else [node]
    return ", ".join(_render(e, 0) for e in elts)


def _names_in(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def expr_words(node):
    """A short phrase for an expression: the glossary's words for a name, else its rendering."""
    if isinstance(node, ast.Name):
        return name_words(node.id)
    tanh_derivative = _square_complement(node)
    if tanh_derivative:
        return f"the tanh's derivative 1 - {tanh_derivative}²"
    return render(node)


def part_words(terms):
    """Words for some terms of a sum: "the input's part (x_t W + b[0])", "the previous state's part (...)"."""
    text = " + ".join(render(t, 1) for t in terms)
    names = set().union(*(_names_in(t) for t in terms))
    kinds = set()
    for t in terms:
        n = _names_in(t)
        if n & {"x_t", "x"}:
            kinds.add("input")
        elif n & {"h_prev", "h0", "h_t"}:
            kinds.add("state")
        elif n <= {"b", "H", "block", "cols"} and "b" in n:
            kinds.add("bias")
        else:
            kinds.add("other")
    if kinds == {"bias"}:
        return f"the bias ({text})" if len(terms) > 1 or "b" not in names else f"the bias {text}"
    if kinds <= {"input", "bias"} and "input" in kinds:
        return f"the input's part ({text})"
    if kinds <= {"state", "bias"} and "state" in kinds:
        return f"the previous state's part ({text})"
    return text


# ---------------------------------------------------------------------------------------------------------------
# The shapes of AST patterns


def _is_const(node, value=None):
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and \
        (value is None or node.value == value)


def _square_complement(node):
    """X if node is 1 - X ** 2 or 1 - X * X (a tanh's derivative written with its output), else None."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and _is_const(node.left, 1):
        r = node.right
        if isinstance(r, ast.BinOp) and isinstance(r.op, ast.Pow) and _is_const(r.right, 2):
            return render(r.left)
        if isinstance(r, ast.BinOp) and isinstance(r.op, ast.Mult) and ast.dump(r.left) == ast.dump(r.right):
            return render(r.left)
    return None


def _complement_of(node):
    """The name X if node is 1 - X, else None."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and _is_const(node.left, 1) \
            and isinstance(node.right, ast.Name):
        return node.right.id
    return None


def _chain(node, ops):
    """The operands of a chain of one kind of operator, left-associated: [(sign, operand)] (sign -1 after a minus)."""
    if isinstance(node, ast.BinOp) and type(node.op) in ops:
        left = _chain(node.left, ops)
        sign = -1 if isinstance(node.op, ast.Sub) else 1
        return left + [(sign, node.right)]
    return [(1, node)]


def _sum(terms):
    """An expression from [(sign, term)] (the first sign may be -1)."""
    sign, first = terms[0]
    out = ast.UnaryOp(ast.USub(), first) if sign < 0 else first
    for sign, t in terms[1:]:
        out = ast.BinOp(out, ast.Sub() if sign < 0 else ast.Add(), t)
    return out


def _product(factors):
    out = factors[0]
    for f in factors[1:]:
        out = ast.BinOp(out, ast.Mult(), f)
    return out


def _activation_of(node):
    """'sigmoid', 'tanh' or 'relu' if node calls one with one argument, else None."""
    if not isinstance(node, ast.Call) or len(node.args) != 1 or node.keywords:
        return None
    func = node.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    return name if name in ("sigmoid", "tanh", "relu") else None


def _activation_call(kind, arg):
    if kind == "identity":
        return arg
    if kind == "tanh":
        return ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "tanh", ast.Load()), [arg], [])
    if kind == "relu":
        return ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "maximum", ast.Load()), [arg, ast.Constant(0)], [])
    return ast.Call(ast.Name("sigmoid", ast.Load()), [arg], [])


def _multiple(node, unit):
    """k if node is k * unit (unit a name; 0, unit and k * unit or unit * k), else None."""
    if _is_const(node, 0):
        return 0
    if isinstance(node, ast.Name) and node.id == unit:
        return 1
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        if _is_const(node.left) and isinstance(node.right, ast.Name) and node.right.id == unit:
            return node.left.value
        if _is_const(node.right) and isinstance(node.left, ast.Name) and node.left.id == unit:
            return node.right.value
    return None


def _times(k, unit):
    if k == 0:
        return ast.Constant(0)
    if k == 1:
        return ast.Name(unit, ast.Load())
    return ast.BinOp(ast.Constant(k), ast.Mult(), ast.Name(unit, ast.Load()))


# ---------------------------------------------------------------------------------------------------------------
# What the probes say of the solution function: shapes and values of its variables


@dataclasses.dataclass
class Probe:
    """Per variable of the solution function: its shape in each probe run (None: not one array shape), whether its
    values always lie strictly in (0, 1) (a gate), and the last values of each run (to size sub-expressions)."""

    shapes: dict
    gates: set
    finals: list
    ints: dict


def _trace_locals(code, call):
    """Run call() and collect the locals of every frame of `code` at each line and at the return."""
    seen = []

    def local_trace(frame, event, arg):
        if event in ("line", "return"):
            seen.append((event, dict(frame.f_locals)))
        return local_trace

    def global_trace(frame, event, arg):
        return local_trace if frame.f_code is code else None

    old = sys.gettrace()
    sys.settrace(global_trace)
    try:
        call()
    finally:
        sys.settrace(old)
    return seen


def _probe(runs):
    """A Probe from [(events of one run)]."""
    shapes, values, finals, ints = {}, {}, [], {}
    for k, events in enumerate(runs):
        for _, local in events:
            for name, v in local.items():
                if isinstance(v, np.ndarray):
                    shapes.setdefault(name, [set() for _ in runs])[k].add(v.shape)
                    values.setdefault(name, []).append(v)
                elif isinstance(v, (int, np.integer)) and not isinstance(v, bool):
                    ints.setdefault(name, set()).add(int(v))
        finals.append(events[-1][1] if events else {})
    sig = {name: tuple(next(iter(s)) if len(s) == 1 else None for s in per_run) for name, per_run in shapes.items()}
    sig = {n: s for n, s in sig.items() if None not in s}
    gates = {n for n, vs in values.items() if all(v.dtype.kind == "f" and v.size and np.all(v > 0) and np.all(v < 1)
                                                 and v.ndim >= 1 for v in vs)}
    return Probe(sig, gates, finals, ints)


def _signature(expr, probe):
    """The shape of an expression in each probe run (evaluated on the run's last locals), or None."""
    code = compile(ast.fix_missing_locations(ast.Expression(copy.deepcopy(expr))), "<probe>", "eval")
    out = []
    for local in probe.finals:
        try:
            with np.errstate(all="ignore"):
                v = eval(code, {"np": np, **vars(activations)}, dict(local))  # noqa: S307 - the solution's own code
        except Exception:  # noqa: BLE001
            return None
        if not isinstance(v, np.ndarray):
            return None
        out.append(v.shape)
    return tuple(out)


# ---------------------------------------------------------------------------------------------------------------
# Mutants


@dataclasses.dataclass
class Mutant:
    function: str
    operator: str
    what: str  # words: where and what changed
    source: str  # the mutated function's code (instructor-side: tests compile it as a student's)
    fn: object = None
    id: str = ""

    def explanation(self):
        return Explanation(self.id, self.function, self.operator, self.what)


@dataclasses.dataclass(frozen=True)
class Explanation:
    """A mutant that matches the student's outputs, with core.Mistake's interface (.id, .message())."""

    id: str
    function: str
    operator: str
    what: str

    def message(self):
        return (f"Likely mistake [{self.id}] in {self.what}\n    Hint: your outputs are what the solution computes "
                "with exactly this one change (found by trying small changes of the solution on the same inputs); "
                "compare that part of your code with the equations in the notebook.")


class _Generator:
    """The edits of one solution function: [(operator, words, node index, make(node) -> new node)]."""

    def __init__(self, fdef, probe, blocks, rows):
        self.fdef, self.probe, self.blocks, self.rows = fdef, probe, blocks, rows
        self.nodes = list(ast.walk(fdef))
        self.index = {id(n): k for k, n in enumerate(self.nodes)}
        self.parent = {}
        for n in self.nodes:
            for child in ast.iter_child_nodes(n):
                self.parent[id(child)] = n
        body = fdef.body[1:] if ast.get_docstring(fdef) is not None else fdef.body
        self.body_nodes = [n for stmt in body for n in ast.walk(stmt)]
        self.defined = self._definition_lines()
        self.edits = []
        self.loop = any(isinstance(n, ast.For) for n in self.body_nodes)

    def words(self, name):
        """name_words, where a loop's h_t and c_t are the running states."""
        if self.loop and name in RUNNING:
            return RUNNING[name]
        return name_words(name)

    # -- context

    def _definition_lines(self):
        first = {a.arg: self.fdef.lineno for a in self.fdef.args.args + self.fdef.args.kwonlyargs}
        for n in self.body_nodes:
            targets = []
            if isinstance(n, ast.Assign):
                targets = n.targets
            elif isinstance(n, (ast.AugAssign, ast.For)):
                targets = [n.target]
            for t in targets:
                for name in ast.walk(t):
                    if isinstance(name, ast.Name):
                        first.setdefault(name.id, n.lineno)
        return first

    def statement(self, node):
        while node is not None and not isinstance(node, ast.stmt):
            node = self.parent.get(id(node))
        return node

    def where(self, node):
        """'computing c_t', 'the value returned', ... for the statement holding node."""
        stmt = self.statement(node)
        if isinstance(stmt, ast.Assign):
            target, value = stmt.targets[0], stmt.value
            if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
                for t, v in zip(target.elts, value.elts):
                    if any(x is node for x in ast.walk(v)):
                        return f"computing {self._target_words(t)}"
            return f"computing {self._target_words(target)}"
        if isinstance(stmt, ast.AugAssign):
            return f"updating {self._target_words(stmt.target)}"
        if isinstance(stmt, ast.Return):
            value = stmt.value
            if isinstance(value, ast.Tuple):
                for v in value.elts:
                    if any(x is node for x in ast.walk(v)):
                        if isinstance(v, ast.Name):
                            return f"the returned {v.id}"
                        return "the values returned"
            return "the value returned"
        if isinstance(stmt, ast.For):
            return "the loop"
        if isinstance(stmt, ast.If):
            return "the condition"
        return ""

    @staticmethod
    def _target_words(t):
        if isinstance(t, ast.Name):
            return "the pre-activation" if name_words(t.id) == "the pre-activation" else t.id
        if isinstance(t, ast.Subscript):
            return render(t)
        if isinstance(t, ast.Tuple):
            return ", ".join(_Generator._target_words(e) for e in t.elts)
        return "a value"

    def branch(self, node):
        """'with reset_after=True' if node sits in the body of `if reset_after:` (its else: False), else ''."""
        child, p = node, self.parent.get(id(node))
        while p is not None and p is not self.fdef:
            if isinstance(p, ast.If):
                test = p.test
                flag = test.id if isinstance(test, ast.Name) else test.slice.value if (
                    isinstance(test, ast.Subscript) and isinstance(test.slice, ast.Constant)) else None
                if flag:
                    return f"with {flag}={any(child is s for s in p.body)}"
            child, p = p, self.parent.get(id(p))
        return ""

    def add(self, operator, node, what, make, where=None):
        where = self.where(node) if where is None else where
        place = ", ".join(x for x in (self.fdef.name, self.branch(node), where) if x)
        self.edits.append((operator, f"{place}: {what}", self.index[id(node)], make))

    def loads(self):
        return [n for n in self.body_nodes if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
                and not self._is_callee(n)]

    def _is_callee(self, n):
        """A name that is called (a function) or a module (np)."""
        p = self.parent.get(id(n))
        return (isinstance(p, ast.Call) and p.func is n) or n.id == "np"

    def _chains(self, ops):
        """Roots of maximal chains of the operators (not the left operand of a same-kind parent)."""
        out = []
        for n in self.body_nodes:
            if isinstance(n, ast.BinOp) and type(n.op) in ops:
                p = self.parent.get(id(n))
                if isinstance(p, ast.BinOp) and type(p.op) in ops and p.left is n:
                    continue
                out.append(n)
        return out

    # -- operators

    def activation(self):
        for n in self.body_nodes:
            kind = _activation_of(n)
            if not kind:
                continue
            arg = n.args[0]
            arg_words = expr_words(arg) if isinstance(arg, ast.Name) or len(render(arg)) <= 30 else \
                "its pre-activation"
            for new in ("sigmoid", "tanh", "relu", "identity"):
                if new == kind:
                    continue
                if new == "identity":
                    what = f"the {kind} applied to {arg_words} is missing."
                else:
                    what = (f"{ACTIVATION_WORDS[new]} is applied to {arg_words} where {ACTIVATION_WORDS[kind]} "
                            "belongs.")
                self.add("activation", n, what, lambda node, new=new: _activation_call(new, node.args[0]))

    def gate(self):
        for n in self.loads():
            if n.id not in self.probe.gates or _complement_of(self.parent.get(id(n))):
                continue  # 1 - z: the complement operator's
            words = self.words(n.id)
            root = self._product_root(n)
            of = f" of the product {render(root)}" if root is not None else ""
            inside = f" in the product {render(root)}" if root is not None else ""
            self.add("gate", n, f"{words} is left out{of}, as if it were 1.", lambda node: ast.Constant(1))
            self.add("gate", n, f"{words} is taken as 0{inside}.", lambda node: ast.Constant(0))

    def _product_root(self, node):
        """The root of the chain of * that node is a factor of, or None."""
        root, p = None, self.parent.get(id(node))
        while isinstance(p, ast.BinOp) and isinstance(p.op, ast.Mult):
            root, p = p, self.parent.get(id(p))
        return root

    def complement(self):
        complemented = {}
        for n in self.body_nodes:
            x = _complement_of(n)
            if x:
                complemented.setdefault(x, []).append(n)
        for x, places in complemented.items():
            words = self.words(x)
            stmts = []
            for n in places:
                self.add("complement", n, f"{x} is used where 1 - {x} belongs ({words}).",
                         lambda node: node.right)
                stmt = self.statement(n)
                if stmt not in stmts:
                    stmts.append(stmt)
            for n in self.loads():
                if n.id == x and not _complement_of(self.parent.get(id(n))):
                    self.add("complement", n, f"1 - {x} is used where {x} belongs ({words}).",
                             lambda node: ast.BinOp(ast.Constant(1), ast.Sub(), node))
            for stmt in stmts:
                bare = [n for n in ast.walk(stmt) if isinstance(n, ast.Name) and n.id == x
                        and isinstance(n.ctx, ast.Load) and not _complement_of(self.parent.get(id(n)))]
                if bare:
                    self.add("complement", stmt.value if hasattr(stmt, "value") else stmt,
                             f"{x} and 1 - {x} are exchanged ({words}).",
                             lambda node, x=x: _Exchange(x).visit(node))

    def block(self):
        H = self._block_unit()
        G = self._block_count(H)
        if H and G:
            for n in self.body_nodes:
                bounds = None
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "slice" \
                        and len(n.args) == 2:
                    bounds = n.args
                elif isinstance(n, ast.Slice) and n.step is None:
                    bounds = [n.lower, n.upper]
                if bounds is None:
                    continue
                lo = 0 if bounds[0] is None else _multiple(bounds[0], H)
                hi = G if bounds[1] is None else _multiple(bounds[1], H)
                if lo is None or hi is None or hi - lo != 1 or (bounds[0] is None and bounds[1] is None):
                    continue
                for k in range(G):
                    if k == lo:
                        continue
                    what = f"{self._block_words(k)} is read instead of {self._block_words(lo)}."
                    if isinstance(n, ast.Call):
                        make = (lambda node, k=k: ast.Call(ast.Name("slice", ast.Load()),
                                                           [_times(k, H), _times(k + 1, H)], []))
                    else:
                        make = (lambda node, k=k: ast.Slice(_times(k, H), _times(k + 1, H)))
                    self.add("block", n, what, make, where="")
        for n in self.body_nodes:  # blocks put side by side in the wrong order
            if isinstance(n, ast.Call) and _activation_of(n) is None and isinstance(n.func, ast.Attribute) \
                    and n.func.attr in ("concatenate", "stack", "hstack") and n.args \
                    and isinstance(n.args[0], ast.List) and len(n.args[0].elts) >= 2:
                elts = n.args[0].elts
                for a, c in itertools.combinations(range(len(elts)), 2):
                    what = f"{self._part_name(a, len(elts))} and {self._part_name(c, len(elts))} are in each " \
                           f"other's places among {render(n)}."
                    self.add("block", n, what, lambda node, a=a, c=c: _swap_elements(node, a, c))
        rows = []  # bias rows: b[0, ...] and b[1, ...]
        for n in self.body_nodes:
            if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Tuple) and len(n.slice.elts) >= 2 \
                    and isinstance(n.slice.elts[0], ast.Constant) and n.slice.elts[0].value in (0, 1) \
                    and isinstance(n.value, ast.Name):
                rows.append(n)
        for n in rows:
            k = n.slice.elts[0].value
            what = f"row {1 - k} of {n.value.id}{self._row_words(1 - k)} is used where row {k}" \
                   f"{self._row_words(k)} belongs."
            self.add("block", n, what, lambda node: _flip_row(node))
        for stmt in dict.fromkeys(self.statement(n) for n in rows):
            here = [n for n in rows if self.statement(n) is stmt]
            if {n.slice.elts[0].value for n in here} == {0, 1}:
                name = here[0].value.id
                self.add("block", stmt.value if hasattr(stmt, "value") else stmt,
                         f"the two rows of {name}{self._rows_words()} are exchanged.",
                         lambda node: _FlipRows().visit(node))

    def _block_unit(self):
        """The name of the block width (H) if the function slices with multiples of it."""
        for n in self.body_nodes:
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "slice":
                for a in n.args:
                    for m in ast.walk(a):
                        if isinstance(m, ast.Name):
                            return m.id
            if isinstance(n, ast.Slice):
                for a in (n.lower, n.upper):
                    for m in ast.walk(a) if a is not None else ():
                        if isinstance(m, ast.Name):
                            return m.id
        return None

    def _block_count(self, unit):
        """How many blocks the arrays of the function have side by side (W's columns over H), from the probes."""
        if not unit or len(self.probe.ints.get(unit, ())) == 0:
            return None
        counts = set()
        for local in self.probe.finals:
            h = local.get(unit)
            if not isinstance(h, (int, np.integer)) or h <= 0:
                return None
            per = [v.shape[-1] // h for v in local.values() if isinstance(v, np.ndarray) and v.ndim >= 1
                   and v.shape[-1] % h == 0 and v.shape[-1] > h]
            if per:
                counts.add(max(per))
        return counts.pop() if len(counts) == 1 else None

    def _block_words(self, k):
        if k < len(self.blocks):
            letter = self.blocks[k]
            return f"the {BLOCK_WORDS.get(letter, letter)}'s block (block {k} in the order {', '.join(self.blocks)})"
        return f"block {k}"

    def _part_name(self, k, n):
        if n == len(self.blocks):
            return f"the {BLOCK_WORDS.get(self.blocks[k], self.blocks[k])}'s block"
        if n == len(self.rows) == 2:
            return f"the {self.rows[k]} row"
        return f"part {k}"

    def _row_words(self, k):
        return f" (the {self.rows[k]})" if k < len(self.rows) else ""

    def _rows_words(self):
        return f" ({' and '.join(self.rows)})" if len(self.rows) == 2 else ""

    def derivative(self):
        for n in self.body_nodes:
            x = _square_complement(n)
            if x:
                self.add("derivative", n, f"the tanh's derivative is taken as 1 - {x} instead of 1 - {x}².",
                         lambda node: ast.BinOp(ast.Constant(1), ast.Sub(), node.right.left))
                self.add("derivative", n, f"the sigmoid's derivative {x} (1 - {x}) is used where the tanh's, "
                                          f"1 - {x}², belongs.",
                         lambda node: ast.BinOp(node.right.left, ast.Mult(),
                                                ast.BinOp(ast.Constant(1), ast.Sub(), node.right.left)))
        for root in self._chains({ast.Mult}):
            factors = [f for _, f in _chain(root, {ast.Mult})]
            for k in range(len(factors) - 1):
                a, c = factors[k], factors[k + 1]
                if isinstance(a, ast.Name) and _complement_of(c) == a.id:
                    x = a.id
                    self.add("derivative", root, f"the sigmoid's derivative {x} (1 - {x}) is missing.",
                             lambda node, k=k: _product(_drop(_factors(node), k, k + 1)))
                    self.add("derivative", root, f"the tanh's derivative 1 - {x}² is used where the sigmoid's, "
                                                 f"{x} (1 - {x}), belongs.",
                             lambda node, k=k: _product(_drop(_factors(node), k, k + 1, tanh_of=k)))
        for n in self.body_nodes:
            if isinstance(n, ast.Attribute) and n.attr == "T":
                self.add("derivative", n, f"{render(n.value)} is used without its transpose.",
                         lambda node: node.value)
        transposes = any(isinstance(n, ast.Attribute) and n.attr == "T" for n in self.body_nodes)
        for n in self.body_nodes if transposes else ():
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.MatMult):
                for side in ("left", "right"):
                    operand = getattr(n, side)
                    if isinstance(operand, ast.Name) and len(self.probe.shapes.get(operand.id, ((),))[0]) == 2:
                        self.add("derivative", operand, f"{operand.id} is used transposed ({operand.id}ᵀ).",
                                 lambda node: ast.Attribute(node, "T", ast.Load()))

    def term(self):
        for root in self._chains({ast.Add, ast.Sub}):
            terms = _chain(root, {ast.Add, ast.Sub})
            if len(terms) < 2 or any(_is_const(t) for _, t in terms):
                continue  # 1 - z, 1 - h²: the complement and derivative operators' business
            target = self._assigned_name(root)
            for k, (_, t) in enumerate(terms):
                if _is_const(t):
                    continue
                if target and isinstance(t, ast.Name) and t.id == target:
                    what = f"{target} is overwritten instead of accumulated: its earlier value is left out."
                else:
                    what = f"{expr_words(t) if isinstance(t, ast.Name) else part_words([t])} is left out."
                self.add("term", root, what, lambda node, k=k: _sum(_without(_chain(node, {ast.Add, ast.Sub}), k)))
                what = f"{expr_words(t) if isinstance(t, ast.Name) else part_words([t])} is counted twice."
                self.add("term", root, what, lambda node, k=k: _sum(_doubled(_chain(node, {ast.Add, ast.Sub}), k)))
        for n in self.body_nodes:
            if isinstance(n, ast.AugAssign) and isinstance(n.op, ast.Add) and isinstance(n.target, ast.Name):
                self.add("term", n, f"{n.target.id} is overwritten instead of accumulated: its earlier value is "
                                    "left out.",
                         lambda node: ast.Assign([ast.Name(node.target.id, ast.Store())], node.value))

    def _assigned_name(self, node):
        stmt = self.statement(node)
        if isinstance(stmt, ast.Assign):
            t, v = stmt.targets[0], stmt.value
            if isinstance(t, ast.Name):
                return t.id
            if isinstance(t, ast.Tuple) and isinstance(v, ast.Tuple):
                for te, ve in zip(t.elts, v.elts):
                    if any(x is node for x in ast.walk(ve)) and isinstance(te, ast.Name):
                        return te.id
        return None

    def factor(self):
        for root in self._chains({ast.Mult}):
            factors = _factors(root)
            if len(factors) < 2:
                continue
            if not _names_in(root) & (set(self.probe.shapes) | self.probe.gates):
                continue  # a product of sizes (2 * H), not of arrays
            for k, f in enumerate(factors):
                if _is_const(f):
                    continue
                words = self.words(f.id) if isinstance(f, ast.Name) else f"the factor {expr_words(f)}"
                self.add("factor", root, f"{words} is missing from the product {render(root)}.",
                         lambda node, k=k: _product(_drop(_factors(node), k)))

    def product(self):
        # X * (A + B): X multiplies only one term; and a sum with a term X * S: X multiplies other terms
        for n in self.body_nodes:
            if not (isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult)):
                continue
            for x_side, s_side in (("left", "right"), ("right", "left")):
                x, s = getattr(n, x_side), getattr(n, s_side)
                if not isinstance(x, ast.Name) or not _is_sum(s):
                    continue
                terms = [t for _, t in _chain(s, {ast.Add})]
                if len(terms) < 2:
                    continue
                for k, t in enumerate(terms):
                    what = (f"{self.words(x.id)} multiplies only {part_words([t])} instead of the whole "
                            f"{render(s)}.")
                    self.add("product", n, what, lambda node, k=k, x_side=x_side, s_side=s_side:
                             _distribute(node, x_side, s_side, k))
        for root in self._chains({ast.Add}):
            terms = [t for _, t in _chain(root, {ast.Add})]
            if len(terms) < 2 or not _is_sum(root):
                continue
            for k, t in enumerate(terms):
                scaled = _scaled(t, self.probe.gates)
                if not scaled:
                    continue
                x, s = scaled
                others = [j for j in range(len(terms)) if j != k]
                for size in range(1, len(others) + 1):
                    for chosen in itertools.combinations(others, size):
                        moved = [terms[j] for j in chosen]
                        what = (f"{self.words(x.id)} multiplies {part_words(moved)} instead of "
                                f"{part_words([s])}.")
                        self.add("product", root, what,
                                 lambda node, k=k, chosen=chosen: _move(node, k, chosen, self.probe.gates))
                        what = f"{self.words(x.id)} multiplies {part_words(moved)} as well as {part_words([s])}."
                        self.add("product", root, what,
                                 lambda node, k=k, chosen=chosen: _extend(node, k, chosen, self.probe.gates))
        # a scaling before or after a matrix product: (X * A) @ M against X * (A @ M)
        gates = self.probe.gates
        for n in self.body_nodes:
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.MatMult) and _scaled(n.left, gates):
                x, a = _scaled(n.left, gates)
                what = (f"{self.words(x.id)} scales the product {render(a)} {render(n.right, 3)} after it instead of "
                        f"{render(a)} before it.")
                self.add("product", n, what, lambda node: ast.BinOp(
                    _scaled(node.left, gates)[0], ast.Mult(),
                    ast.BinOp(_scaled(node.left, gates)[1], ast.MatMult(), node.right)))
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult):
                for x_side, m_side in (("left", "right"), ("right", "left")):
                    x, m = getattr(n, x_side), getattr(n, m_side)
                    if isinstance(x, ast.Name) and x.id in gates and isinstance(m, ast.BinOp) \
                            and isinstance(m.op, ast.MatMult):
                        what = (f"{self.words(x.id)} scales {render(m.left)} before the product with "
                                f"{render(m.right, 3)} instead of the product after it.")
                        self.add("product", n, what, lambda node, x_side=x_side, m_side=m_side: ast.BinOp(
                            ast.BinOp(getattr(node, x_side), ast.Mult(), getattr(node, m_side).left),
                            ast.MatMult(), getattr(node, m_side).right))

    def variable(self):
        shapes = self.probe.shapes
        partials = self._partials()
        for n in self.loads():
            sig = shapes.get(n.id)
            stmt = self.statement(n)
            if sig is None or stmt is None:
                continue
            line = stmt.lineno
            grad = _is_gradient(n.id)
            for other, osig in shapes.items():
                if other == n.id or osig != sig or _is_gradient(other) != grad:
                    continue
                if self.defined.get(other, line) >= line:
                    continue  # not defined yet where n is read
                what = f"uses {self.words(other)} where {self.words(n.id)} belongs."
                self.add("variable", n, what, lambda node, other=other: ast.Name(other, ast.Load()))
            for owner, part in partials:
                if self.statement(part) is stmt:
                    continue  # a part of the very sum being computed is not available yet
                if any(self.defined.get(m, 0) >= line for m in _names_in(part)):  # globals: 0
                    continue
                if n.id not in _names_in(part) or _signature(part, self.probe) != sig:
                    continue  # a half-updated n: a part of a later sum that is computed from n
                half = "pre-activation" if name_words(owner) == "the pre-activation" else owner
                what = (f"uses {render(part)}, a half-computed {half} (one part of its sum), where "
                        f"{self.words(n.id)} belongs.")
                self.add("variable", n, what, lambda node, part=part: copy.deepcopy(part))

    def _partials(self):
        """(variable, a term of the sum assigned to it) for the sums of two or more terms that are not constants."""
        out = []
        for n in self.body_nodes:
            if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name) and _is_sum(n.value):
                terms = [t for _, t in _chain(n.value, {ast.Add, ast.Sub})]
                if len(terms) >= 2:
                    out += [(n.targets[0].id, t) for t in terms if not _is_const(t) and not isinstance(t, ast.Name)]
        return out

    def all(self):
        for op in OPERATORS:
            getattr(self, op)()
        return self.edits


def _is_gradient(name):
    return bool(re.fullmatch(r"d[a-zA-Z]\w*", name))


def _is_sum(node):
    return isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub))


def _scaled(node, gates):
    """(X, S) if node is X * S or S * X with X the name of a gate, else None."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        if isinstance(node.left, ast.Name) and node.left.id in gates:
            return node.left, node.right
        if isinstance(node.right, ast.Name) and node.right.id in gates:
            return node.right, node.left
    return None


def _factors(node):
    return [f for _, f in _chain(node, {ast.Mult})]


def _drop(factors, *ks, tanh_of=None):
    out = []
    for j, f in enumerate(factors):
        if j in ks:
            if j == tanh_of:
                x = f
                out.append(ast.BinOp(ast.Constant(1), ast.Sub(), ast.BinOp(x, ast.Pow(), ast.Constant(2))))
            continue
        out.append(f)
    return out or [ast.Constant(1)]


def _without(terms, k):
    rest = [t for j, t in enumerate(terms) if j != k]
    return rest


def _doubled(terms, k):
    return [(s, ast.BinOp(ast.Constant(2), ast.Mult(), t) if j == k else t) for j, (s, t) in enumerate(terms)]


def _distribute(node, x_side, s_side, k):
    """X * (A + B + ...) with X multiplying only term k."""
    x, s = getattr(node, x_side), getattr(node, s_side)
    terms = _chain(s, {ast.Add})
    return _sum([(1, ast.BinOp(x, ast.Mult(), t) if j == k else t) for j, (_, t) in enumerate(terms)])


def _move(node, k, chosen, gates):
    """In a sum whose term k is X * S: S alone, and X multiplying the chosen terms."""
    terms = [t for _, t in _chain(node, {ast.Add})]
    x, s = _scaled(terms[k], gates)
    out = []
    for j, t in enumerate(terms):
        if j == k:
            out.append(s)
        elif j == chosen[0]:
            out.append(ast.BinOp(x, ast.Mult(), _sum([(1, terms[c]) for c in chosen])))
        elif j not in chosen:
            out.append(t)
    return _sum([(1, t) for t in out])


def _extend(node, k, chosen, gates):
    """In a sum whose term k is X * S: X multiplying S and the chosen terms together."""
    terms = [t for _, t in _chain(node, {ast.Add})]
    x, s = _scaled(terms[k], gates)
    out = []
    for j, t in enumerate(terms):
        if j == k:
            out.append(ast.BinOp(x, ast.Mult(), _sum([(1, terms[c]) for c in chosen] + [(1, s)])))
        elif j not in chosen:
            out.append(t)
    return _sum([(1, t) for t in out])


def _swap_elements(call, a, c):
    elts = call.args[0].elts
    elts[a], elts[c] = elts[c], elts[a]
    return call


def _flip_row(node):
    node.slice.elts[0] = ast.Constant(1 - node.slice.elts[0].value)
    return node


class _FlipRows(ast.NodeTransformer):
    def visit_Subscript(self, node):
        self.generic_visit(node)
        if isinstance(node.slice, ast.Tuple) and node.slice.elts and isinstance(node.slice.elts[0], ast.Constant) \
                and node.slice.elts[0].value in (0, 1):
            return _flip_row(node)
        return node


class _Exchange(ast.NodeTransformer):
    """x and 1 - x exchanged everywhere in a node."""

    def __init__(self, x):
        self.x = x

    def visit_BinOp(self, node):
        if _complement_of(node) == self.x:
            return ast.Name(self.x, ast.Load())
        self.generic_visit(node)
        return node

    def visit_Name(self, node):
        if node.id == self.x and isinstance(node.ctx, ast.Load):
            return ast.BinOp(ast.Constant(1), ast.Sub(), ast.Name(self.x, ast.Load()))
        return node


def _apply(fdef, index, make):
    """A copy of fdef in which the node at `index` (ast.walk order) is replaced by make(its copy)."""
    new = copy.deepcopy(fdef)
    nodes = list(ast.walk(new))
    target = nodes[index]
    replacement = make(target)
    if replacement is target:
        return new
    for parent in nodes:
        for field, value in ast.iter_fields(parent):
            if value is target:
                setattr(parent, field, replacement)
                return new
            if isinstance(value, list):
                for j, item in enumerate(value):
                    if item is target:
                        value[j] = replacement
                        return new
    raise ValueError("node not found")


# ---------------------------------------------------------------------------------------------------------------
# Running and comparing


def _fingerprint(outputs):
    """A hash of outputs, rounded (equal fingerprints: the same outputs, up to rounding)."""
    h = hashlib.sha1()
    for o in outputs:
        if isinstance(o, CacheEntries):
            h.update(_fingerprint([v for _, v in o.entries]).encode())
        elif isinstance(o, np.ndarray) and o.dtype.kind == "f":
            h.update(str(o.shape).encode())
            with np.errstate(all="ignore"):
                h.update(np.round(o.astype(np.float64), 6).tobytes())
        else:
            h.update(repr(o)[:200].encode())
    return h.hexdigest()


def _same(spec, case, got, out):
    """core._matches, False where the outputs cannot be compared at all (a mutant that returns a number)."""
    try:
        return _matches(spec, case, got, out)
    except Exception:  # noqa: BLE001
        return False


def _run(spec, fn, registry, inputs):
    def get(name):
        return fn if name == spec.name else registry.reference(name)

    with np.errstate(all="ignore"):
        return _as_outputs(spec.run(get, _copy_inputs(inputs)), spec)


class Diagnoser:
    """The explainer of one assignment: the mutants of each graded function's solution, built on first use."""

    def __init__(self, registry, sources, cap=CAP):
        self.registry, self.sources, self.cap = registry, dict(sources), cap
        self.blocks, self.rows = _order_words(self.sources)
        self._mutants = {}
        self._lock = threading.Lock()

    def _globals(self):
        g = {"np": np}
        g.update({k: v for k, v in vars(activations).items() if not k.startswith("_")})
        for name in self.registry.references:
            g[name] = self.registry.reference(name)
        return g

    def _probe_cases(self, name):
        return [(spec, case) for spec in self.registry.specs.values() if spec.name == name
                for case in hidden_cases(spec, PROBE_SEED, n64=PROBES_PER_SPEC, n32=0)]

    def _compile(self, name, fdef):
        module = ast.fix_missing_locations(ast.Module([fdef], []))
        ns = self._globals()
        exec(compile(module, f"<mutant of {name}>", "exec"), ns)  # noqa: S102 - the course's own solution code
        return ns[name]

    def mutants(self, name):
        """The mutants of function `name` (empty when there is no solution, it fails its own probes, or they cannot
        be made: the search is an extra and never stops grading)."""
        with self._lock:
            if name not in self._mutants:
                try:
                    self._mutants[name] = self._build(name)
                except Exception:  # noqa: BLE001
                    self._mutants[name] = []
            return self._mutants[name]

    def _build(self, name):
        src = self.sources.get(name)
        if src is None:
            return []
        fdef = ast.parse(src).body[0]
        probes = self._probe_cases(name)
        if not probes:
            return []
        solution = self._compile(name, copy.deepcopy(fdef))
        runs, reference = [], []
        try:
            for spec, case in probes:
                expected = _run(spec, self.registry.reference(name), self.registry, case.inputs)
                holder = {}
                events = _trace_locals(solution.__code__, lambda: holder.setdefault(
                    "out", _run(spec, solution, self.registry, case.inputs)))
                if not _same(spec, case, holder["out"], expected):
                    return []  # the solution does not pass its own check: nothing to explain with
                runs.append(events)
                reference.append(holder["out"])
        except Exception:  # noqa: BLE001 - the solution cannot run on these probes
            return []
        probe = _probe(runs)
        gen = _Generator(fdef, probe, self.blocks, self.rows)
        seen_code, seen_out, kept = set(), set(), {op: [] for op in OPERATORS}
        ref_prints = [_fingerprint(r) for r in reference]
        for operator, what, index, make in gen.all():
            try:
                new = _apply(fdef, index, make)
                code = ast.unparse(new)
            except Exception:  # noqa: BLE001 - an edit that does not fit this node
                continue
            if code in seen_code:
                continue
            seen_code.add(code)
            try:
                fn = self._compile(name, new)
            except Exception:  # noqa: BLE001
                continue
            prints, differs = [], False
            for (spec, case), ref, ref_print in zip(probes, reference, ref_prints):
                try:
                    out = _run(spec, fn, self.registry, case.inputs)
                except Exception:  # noqa: BLE001 - shapes that do not fit this probe
                    prints.append("raised")
                    differs = True
                    continue
                prints.append(_fingerprint(out))
                if prints[-1] != ref_print and not _same(spec, case, out, ref):
                    differs = True
            if not differs or all(p == "raised" for p in prints):
                continue  # the same function as the solution, or never runs
            key = tuple(prints)
            if key in seen_out:
                continue  # computes what an earlier mutant computes
            seen_out.add(key)
            kept[operator].append(Mutant(name, operator, what, code, fn))
        # at most `cap`, taken from the operators in turn, in a fixed order
        chosen, queues = [], [list(kept[op]) for op in OPERATORS]
        while len(chosen) < self.cap and any(queues):
            for q in queues:
                if q and len(chosen) < self.cap:
                    chosen.append(q.pop(0))
        order = {id(m): k for k, m in enumerate(m for op in OPERATORS for m in kept[op])}
        chosen.sort(key=lambda m: order[id(m)])
        for k, m in enumerate(chosen):
            m.id = f"auto-{name}-{k + 1}"
        return chosen

    def __call__(self, spec, case, got, found):
        """Explanations of the student's outputs `got` on `case`: the mutants of spec.name whose outputs match. None
        when a mistake of the library already matches: a mutant that matches too computes the same outputs, and the
        library's entry has the better hint."""
        if found:
            return []
        out = []
        for m in self.mutants(spec.name):
            try:
                result = _run(spec, m.fn, self.registry, case.inputs)
            except Exception:  # noqa: BLE001 - the mutant does not apply to these shapes
                continue
            if _same(spec, case, got, result):
                out.append(m.explanation())
                if len(out) >= MAX_EXPLANATIONS:
                    break
        return out


# ---------------------------------------------------------------------------------------------------------------
# The grader's entry point

_DIAGNOSERS = {}
_DIAGNOSERS_LOCK = threading.Lock()


def source_notebooks(folder):
    return sorted(pathlib.Path(folder).glob("*.ipynb"))


def diagnoser(registry, folder):
    """The Diagnoser of an assignment whose source notebooks are in `folder` (one per registry, folder and version
    of the notebooks: mutants are compiled once per grading process)."""
    notebooks = source_notebooks(folder)
    key = (id(registry), str(pathlib.Path(folder).resolve()),
           tuple((str(p), p.stat().st_mtime_ns) for p in notebooks))
    with _DIAGNOSERS_LOCK:
        if key not in _DIAGNOSERS:
            names = {spec.name for spec in registry.specs.values()}
            try:
                sources = {n: s for n, s in solution_sources(notebooks).items() if n in names}
            except Exception:  # noqa: BLE001 - a source notebook that cannot be read: no search, grading goes on
                sources = {}
            _DIAGNOSERS[key] = Diagnoser(registry, sources)
        return _DIAGNOSERS[key]


def with_diagnosis(registry, folder):
    """A copy of the registry whose explainers include the mutant search over the solutions in `folder` (the course's
    source/<assignment>/); the registry itself is left as it is."""
    out = copy.copy(registry)
    out.explainers = [*registry.explainers, diagnoser(registry, folder)]
    return out
