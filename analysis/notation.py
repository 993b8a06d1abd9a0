"""Equations as a person reads them: one expression, written both as plain text and as LaTeX.

In:  sympy text as distill.json stores it ("-1.9277*dx + 1.9047*dx/r - 0.027774", a law's
     force "2 - 2*r'" with r' the softened distance), or a sympy expression.
Out: `write(text)` / `written(expr)` -> `Written(text, latex)`; `force(text)` the same for a
     law's radial force (over r' or r, q1 q2 m1 m2) in `distill.physical.display_form`
     (a·r' + b as a·(r' + b/a)), so a discovered force and the true one read alike.
     `Written`: text with no Python syntax (factors joined by "·", powers as
     superscripts or "^", 6.99e-9 as 6.99×10⁻⁹) and LaTeX for matplotlib's mathtext. Both come
     from the same expression and the same constants, each shown to DIGITS significant
     digits; a whole-numbered constant is written as an integer, any other keeps its digits
     (1.0002 is "1.000", never dropped as a factor 1). Text that does not parse (through
     `nbody.expr.parse_text`'s whitelist) comes back with only "**" and "*" rewritten, its
     LaTeX None.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from distill.physical import display_form
from nbody.expr import FUNCTIONS, parse_text
from plumbing.errors import InputError

DIGITS = 4
PRIME = "rp"   # what r' is called while the text is parsed
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


@dataclass(frozen=True)
class Written:
    """An expression as plain text and as LaTeX (None when the text did not parse)."""

    text: str
    latex: str | None


def number(value: float | None, digits: int = DIGITS) -> str:
    """`value` to `digits` significant digits as plain text ("–" for None; 6.99×10⁻⁹ where
    Python's "g" format would use an exponent)."""
    if value is None:
        return "–"
    mantissa, exponent = _mantissa(float(value), digits)
    return mantissa if not exponent else f"{mantissa}×10{str(exponent).translate(SUPERSCRIPT)}"


def _mantissa(value: float, digits: int) -> tuple[str, int]:
    """(mantissa, exponent) of `value`: a whole number below 1e6 as an integer (exponent 0),
    any other to `digits` significant digits, trailing zeros dropped unless that would make
    it look whole (1.0002 -> "1.000")."""
    if value == int(value) and abs(value) < 1e6:
        return str(int(value)), 0
    head, _, tail = format(value, f".{digits}g").partition("e")
    if "." not in head and len(head.lstrip("-")) < digits:   # rounded to a whole number: say it is not one
        head = format(float(head), f"#.{digits}g")
    return head, int(tail) if tail else 0


class _Plain(StrPrinter):
    def _print_Float(self, expr):
        return number(float(expr))


class _Latex(LatexPrinter):
    def _print_Float(self, expr):
        mantissa, exponent = _mantissa(float(expr), DIGITS)
        return mantissa if not exponent else rf"{mantissa} \cdot 10^{{{exponent}}}"


def _powers(text: str) -> str:
    """"r**2" -> "r²", "r**(-3/2)" -> "r^(-3/2)", then "*" -> "·"."""
    text = re.sub(r"\*\*(-?\d+)(?![\d.])", lambda m: m.group(1).translate(SUPERSCRIPT), text)
    return text.replace("**", "^").replace("*", "·")


def written(expr: sp.Expr) -> Written:
    """A sympy expression as `Written`."""
    return Written(_powers(_Plain().doprint(expr)), _Latex().doprint(expr))


def parse(text: str) -> sp.Expr:
    """sympy text as distill.json stores it, over any variable names, r' included (as the
    symbol r'). Raises InputError when `nbody.expr` refuses it."""
    safe = text.replace("r'", PRIME)
    names = set(re.findall(r"[A-Za-z_]\w*", safe)) - set(FUNCTIONS) - {"pi", "E", "Piecewise", "True"}
    symbols = {name: sp.Symbol("r'" if name == PRIME else name, real=True) for name in names}
    return parse_text(safe, "equation", symbols=symbols)


def write(text: str) -> Written:
    """sympy text as `Written`; text that does not parse keeps its form (latex None)."""
    try:
        return written(parse(text))
    except InputError:
        return Written(_powers(text), None)


def force(text: str) -> Written:
    """A radial force f over r' (or r, the same softened distance) and q1 q2 m1 m2 as `Written`,
    in `display_form`; text that does not parse as `write` returns it."""
    try:
        expr = parse_text(text.replace("r'", "r"), "force")
    except InputError:
        return write(text)
    return written(display_form(expr, 15))
