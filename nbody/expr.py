"""Safe parsing of law expressions written as text by a user or read from a file.

In:  untrusted text such as "-m1*m2*exp(-r)/r" or "Piecewise((0, r < 2), ((r - 1)**2, True))".
Out: a sympy expression in the symbols r q1 q2 m1 m2, built node by node from Python's
     `ast`; nothing is ever passed to `eval` or `sympy.sympify`.

Only a whitelist is accepted: finite numeric literals of bounded size, the five symbols,
the constants pi and E, + - * / ** and unary signs, and calls of `FUNCTIONS` (Piecewise
takes (value, condition) pairs, a condition being one comparison or True). Size is bounded
before any sympy work (`MAX_CHARS`, `MAX_NODES`) and so are constant exponents
(`MAX_EXPONENT`, and constant powers to about 1e300), so `9**9**9**9` is refused at once.
Anything else raises `InputError` with a one-line message naming what is not allowed.
"""
from __future__ import annotations

import ast
import contextvars
import math

import sympy as sp

from plumbing.errors import InputError

R, Q1, Q2, M1, M2 = SYMBOLS = sp.symbols("r q1 q2 m1 m2", real=True)
NAMES = {s.name: s for s in SYMBOLS} | {"pi": sp.pi, "E": sp.E}
FUNCTIONS = {"exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "abs": sp.Abs, "Abs": sp.Abs,
             "sin": sp.sin, "cos": sp.cos, "tanh": sp.tanh, "Heaviside": sp.Heaviside}
MAX_CHARS = 2000
MAX_NODES = 300
MAX_LITERAL = 1e15
MAX_EXPONENT = 64
MAX_LOG10_CONSTANT = 300       # a constant power may reach about 10**300, no further

_BINARY = {ast.Add: lambda a, b: sp.Add(a, b), ast.Sub: lambda a, b: sp.Add(a, -b),
           ast.Mult: lambda a, b: sp.Mul(a, b), ast.Div: lambda a, b: sp.Mul(a, sp.Pow(b, -1))}
_COMPARE = {ast.Lt: sp.StrictLessThan, ast.LtE: sp.LessThan,
            ast.Gt: sp.StrictGreaterThan, ast.GtE: sp.GreaterThan}
ALLOWED = ("numbers, r q1 q2 m1 m2 pi E, + - * / **, "
           f"{' '.join(sorted(FUNCTIONS))} and Piecewise((value, r < c), ..., (value, True))")


# The names the expression being parsed may use (`parse_text`'s `symbols`; NAMES by default).
_SCOPE: contextvars.ContextVar[dict] = contextvars.ContextVar("names", default=NAMES)


class _Refused(Exception):
    """Internal: the reason a node is not allowed (turned into one InputError line)."""


def parse_text(text: str, what: str = "expression", symbols: dict[str, sp.Symbol] | None = None) -> sp.Expr:
    """Parse untrusted `text` into a sympy expression; InputError (one line) if not allowed.
    `symbols` {name: symbol} replaces the five law symbols (e.g. a distilled equation's
    inputs dx, dy, r, e1, ...); pi and E stay."""
    token = _SCOPE.set(NAMES if symbols is None else {**symbols, "pi": sp.pi, "E": sp.E})
    try:
        return _parse(text, what)
    finally:
        _SCOPE.reset(token)


def _parse(text: str, what: str) -> sp.Expr:
    shown = text if len(text) <= 80 else text[:77] + "..."
    if len(text) > MAX_CHARS:
        raise InputError(f"{what} is {len(text)} characters long; at most {MAX_CHARS} are allowed")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
        raise InputError(f"{what} {shown!r} does not parse: {reason}") from None
    n_nodes = sum(1 for _ in ast.walk(tree))
    if n_nodes > MAX_NODES:
        raise InputError(f"{what} {shown!r} has {n_nodes} syntax nodes; at most {MAX_NODES} are allowed")
    try:
        expr = _build(tree.body)
    except _Refused as exc:
        raise InputError(f"{what} {shown!r}: {exc}; allowed: {ALLOWED}") from None
    require_finite_expr(expr, f"{what} {shown!r}")
    return expr


def require_finite_expr(expr: sp.Expr, what: str) -> None:
    """InputError if `expr` contains an infinity, NaN or a constant beyond float range."""
    if expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise InputError(f"{what} is not finite (it evaluates to {sp.zoo if expr.has(sp.zoo) else 'nan/oo'}, "
                         "e.g. a division by zero)")
    for number in expr.atoms(sp.Number):
        if not math.isfinite(float(number)):
            raise InputError(f"{what} has a constant beyond floating-point range")


def _build(node: ast.AST) -> sp.Expr:
    """The sympy expression of one whitelisted node (children first); _Refused otherwise."""
    if isinstance(node, ast.Constant):
        return _literal(node.value)
    if isinstance(node, ast.Name):
        names = _SCOPE.get()
        if node.id in names:
            return names[node.id]
        if node.id in FUNCTIONS or node.id == "Piecewise":
            raise _Refused(f"{node.id} must be called, as {node.id}(...)")
        raise _Refused(f"unknown name {node.id!r}")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _build(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return _power(_build(node.left), _build(node.right))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_build(node.left), _build(node.right))
    if isinstance(node, ast.Call):
        return _call(node)
    raise _Refused(f"{_describe(node)} is not allowed")


def _literal(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "True/False" if isinstance(value, bool) else type(value).__name__
        raise _Refused(f"a {kind} literal is not allowed here")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Refused(f"the literal {value} is not finite")
    if abs(value) > MAX_LITERAL:
        raise _Refused(f"the literal {value:.3g} exceeds {MAX_LITERAL:.0e} in magnitude")
    return sp.Integer(value) if isinstance(value, int) else sp.Float(value)


def _power(base: sp.Expr, exponent: sp.Expr) -> sp.Expr:
    if exponent.is_Number:
        if abs(exponent) > MAX_EXPONENT:
            raise _Refused(f"the exponent {_short(exponent)} exceeds {MAX_EXPONENT} in magnitude")
        if base.is_Number and base != 0:
            size = abs(float(exponent)) * math.log10(abs(float(base)))
            if size > MAX_LOG10_CONSTANT:
                raise _Refused(f"the constant power {_short(base)}**{_short(exponent)} is beyond "
                               f"10**{MAX_LOG10_CONSTANT}")
    return sp.Pow(base, exponent)


def _call(node: ast.Call) -> sp.Expr:
    if isinstance(node.func, ast.Attribute):
        raise _Refused(f"method calls (.{node.func.attr}(...)) are not allowed")
    if not isinstance(node.func, ast.Name):
        raise _Refused(f"calling {_describe(node.func)} is not allowed")
    name = node.func.id
    if name not in FUNCTIONS and name != "Piecewise":
        raise _Refused(f"calling {name!r} is not allowed")
    if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
        raise _Refused(f"keyword or starred arguments to {name} are not allowed")
    if name == "Piecewise":
        if not node.args:
            raise _Refused("Piecewise needs at least one (value, condition) pair")
        return sp.Piecewise(*(_piece(arg) for arg in node.args))
    if len(node.args) != 1:
        raise _Refused(f"{name} takes exactly one argument, got {len(node.args)}")
    return FUNCTIONS[name](_build(node.args[0]))


def _piece(node: ast.AST) -> tuple:
    if not isinstance(node, ast.Tuple) or len(node.elts) != 2:
        raise _Refused("each Piecewise argument must be a (value, condition) pair")
    value, cond = node.elts
    return _build(value), _condition(cond)


def _condition(node: ast.AST):
    if isinstance(node, ast.Constant) and node.value is True:
        return sp.true
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        return _COMPARE[type(node.ops[0])](_build(node.left), _build(node.comparators[0]))
    raise _Refused("a Piecewise condition must be one comparison (< <= > >=) or True")


def _describe(node: ast.AST) -> str:
    """A short human name for a refused syntax node."""
    names = {ast.Attribute: "attribute access", ast.Subscript: "subscripting", ast.Lambda: "lambda",
             ast.Constant: "a literal", ast.Tuple: "a tuple", ast.List: "a list", ast.Dict: "a dict",
             ast.Set: "a set", ast.Compare: "a comparison", ast.BoolOp: "and/or",
             ast.IfExp: "if/else", ast.NamedExpr: "assignment (:=)", ast.JoinedStr: "an f-string",
             ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
             ast.DictComp: "a comprehension", ast.GeneratorExp: "a generator", ast.Await: "await",
             ast.Yield: "yield", ast.YieldFrom: "yield", ast.Starred: "unpacking (*)"}
    if isinstance(node, ast.Attribute):
        return f"attribute access (.{node.attr})"
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        return f"the operator {type(node.op).__name__}"
    return names.get(type(node), type(node).__name__)


def _short(number: sp.Expr) -> str:
    text = str(number)
    return text if len(text) <= 20 else f"{float(number):.3g}"
