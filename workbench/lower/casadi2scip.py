"""CasADi -> PySCIPOpt: the model pieces as SCIP expressions, for global (spatial B&B) solves.

Why a tape and not a tree walk: CasADi already stores every expression of a problem as one
SX instruction list ``w[o] = op(w[i0], w[i1])`` (shared subexpressions computed once). We
record that list ONCE per problem as plain Python data (``ScipTape``, cached on the
``LoweredProblem``) and *replay* it for every leader point: the inputs x, p are numbers and y
are SCIP variables, so an instruction whose operands are all numbers is constant-folded (with
IEEE semantics, NaN for out-of-domain) and only the y-dependent part becomes a SCIP
expression. Polynomials in y stay PySCIPOpt ``Expr`` (exact coefficients; affine rows are
recognised from them), everything else a nonlinear ``GenExpr`` that SCIP's expression
handlers (exp, log, pow, abs, sin, cos) bound and branch on.

Supported on y: + - * / neg, sq, twice, inv, sqrt, exp, log, pow with a constant exponent
(integer or real; real exponents need a nonnegative base, as in CasADi where the base < 0
gives NaN), fabs, sin, cos, tan (= sin/cos), sinh, cosh, tanh, expm1, log1p, hypot, and
a**y for a constant a > 0 (= exp(y log a)). Any other operation on a y-dependent value is
recorded as "unsupported" and raises :class:`~workbench.errors.UnsupportedExpressionError`
naming the operation and the objective/constraint that uses it, only when that piece is
actually requested (an unsupported leader objective does not block a follower proof).
MX models are expanded to SX first (``Function.expand``); expansion failure is the same error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Hashable, Sequence

import casadi as ca
import numpy as np

from ..errors import UnsupportedExpressionError

OUTPUTS = ("f", "g", "h", "F", "G", "H")
_OP_NAMES = {getattr(ca, n): n[3:].lower() for n in dir(ca) if n.startswith("OP_")}
_TAPE_KEY = "scip_tape"


@dataclass(frozen=True)
class Unsupported:
    """Marker value that flows through the replay in place of an unrepresentable expression."""

    op: str


@dataclass
class ScipTape:
    """The SX instruction list of ``Function("all", [x, y, p], [f, g, h, F, G, H])``.

    ``instructions[k] = (op, out, ins, const)``; for an input op ``ins = (input index, nz)``, for
    an output op ``ins = (work index, output index, nz)`` (outputs are densified, so nz = row);
    ``outputs[name] = [(nz, work index), ...]``.
    """

    instructions: tuple[tuple[int, int, tuple[int, ...], float], ...]
    outputs: dict[str, list[tuple[int, int]]]
    sizes: dict[str, int]
    n_work: int
    _live: dict[tuple[str, ...], tuple[int, ...]] = field(default_factory=dict, repr=False)
    output_names: tuple[str, ...] = OUTPUTS

    def live(self, names: Sequence[str]) -> tuple[int, ...]:
        """Indices of the instructions needed for the named outputs (backward liveness, cached).

        Work slots are reused along the tape, so liveness is tracked backwards per slot.
        """
        key = tuple(sorted(names))
        if key not in self._live:
            wanted = {self.output_names.index(n) for n in key}
            need: set[int] = set()
            keep = []
            for k in range(len(self.instructions) - 1, -1, -1):
                op, out, ins, _ = self.instructions[k]
                if op == ca.OP_OUTPUT:
                    if ins[1] in wanted:
                        keep.append(k)
                        need.add(ins[0])
                    continue
                if out not in need:
                    continue
                need.discard(out)
                keep.append(k)
                if op not in (ca.OP_INPUT, ca.OP_CONST):
                    need.update(ins)
            self._live[key] = tuple(reversed(keep))
        return self._live[key]

    def replay(self, x: Sequence[float], y: Sequence[Any], p: Sequence[float],
               names: Sequence[str] = ("f", "g", "h"), apply: Any = None) -> dict[str, list[Any]]:
        """Values of the named outputs with x, p numbers and y numbers or SCIP variables.

        Entries are floats, PySCIPOpt expressions, or :class:`Unsupported` markers. ``apply(op,
        args)`` replaces the operation semantics (``certify/curvature.py`` replays curvatures).
        """
        apply = _apply if apply is None else apply
        inputs = ([float(v) for v in np.asarray(x, float).reshape(-1)],
                  [float(v) if isinstance(v, (int, float, np.number)) else v for v in y],
                  [float(v) for v in np.asarray(p, float).reshape(-1)])
        return self.replay_inputs(inputs, names, apply)

    def replay_inputs(self, inputs: Sequence[Sequence[Any]], names: Sequence[str],
                      apply: Any = None) -> dict[str, list[Any]]:
        """Values of the named outputs for one list of entries per function input.

        Entries are Python floats (constant-folded) or SCIP variables/expressions; this is the
        general form of :meth:`replay` for tapes recorded with :func:`record_function`.
        """
        apply = _apply if apply is None else apply
        inputs = [[float(v) if isinstance(v, (int, float, np.number)) else v for v in inp] for inp in inputs]
        w: list[Any] = [0.0] * self.n_work
        res: dict[str, list[Any]] = {n: [0.0] * self.sizes[n] for n in names}
        for k in self.live(names):
            op, out, ins, const = self.instructions[k]
            if op == ca.OP_OUTPUT:
                v = w[ins[0]]
                res[self.output_names[ins[1]]][ins[2]] = _materialize(v) if isinstance(v, _PowForm) else v
            elif op == ca.OP_INPUT:
                w[out] = inputs[ins[0]][ins[1]]
            elif op == ca.OP_CONST:
                w[out] = const
            else:
                w[out] = apply(op, [w[i] for i in ins])
        return res


def scip_tape(lp: Any) -> ScipTape:
    """The tape of ``lp`` (recorded on first use, then cached on ``lp``)."""
    return lp.cached(_TAPE_KEY, lambda: _record(lp))


def _record(lp: Any) -> ScipTape:
    leader = [lp.F, lp.G, lp.H]
    if getattr(lp, "multiplier_dependent", False):
        # The leader's pieces use follower multipliers, which are not inputs of the tape; only the
        # follower's pieces (f, g, h) are ever replayed, so the leader's are recorded as NaN.
        leader = [ca.SX.nan(e.shape) for e in leader]
    exprs = [ca.densify(e) for e in [lp.f, lp.g, lp.h] + leader]
    fn = ca.Function("all", [lp.x, lp.y, lp.p], exprs)
    return record_function(fn, OUTPUTS, lp.name)


def record_function(fn: ca.Function, names: Sequence[str], what: str = "model") -> ScipTape:
    """The SX tape of any CasADi Function (outputs densified, named ``names`` in order).

    Used for single-level programs built by the reformulations (e.g. the KKT system with
    x, y, multipliers all SCIP variables), replayed with :meth:`ScipTape.replay_inputs`.
    """
    names = tuple(names)
    if not fn.is_a("SXFunction"):
        try:
            fn = fn.expand()
        except Exception as exc:  # CasADi raises RuntimeError for non-expandable nodes
            raise UnsupportedExpressionError(
                f"the CasADi (MX) model of {what!r} cannot be expanded to scalar SX for SCIP "
                f"({exc}); use method='kkt' evidence (the multistart certificate) instead") from None
    ins_list = []
    outputs: dict[str, list[tuple[int, int]]] = {n: [] for n in names}
    for k in range(fn.n_instructions()):
        op = int(fn.instruction_id(k))
        i = tuple(int(v) for v in fn.instruction_input(k))
        o = [int(v) for v in fn.instruction_output(k)]
        if op == ca.OP_OUTPUT:
            outputs[names[o[0]]].append((o[1], i[0]))
            ins_list.append((op, -1, (i[0], o[0], o[1]), 0.0))
            continue
        c = float(fn.instruction_constant(k)) if op == ca.OP_CONST else 0.0
        ins_list.append((op, o[0], i, c))
    sizes = {n: int(fn.size_out(k)[0] * fn.size_out(k)[1]) for k, n in enumerate(names)}
    return ScipTape(tuple(ins_list), outputs, sizes, int(fn.sz_w()), output_names=names)


def unsupported_error(what: str, marker: Unsupported) -> UnsupportedExpressionError:
    return UnsupportedExpressionError(
        f"{what} uses the operation {marker.op!r} on the follower's variables, which SCIP cannot "
        f"represent, so no global follower proof is possible; use method='kkt' evidence "
        f"(the multistart certificate) instead")


def piece_name(kind: str, index: int, names: Sequence[Hashable]) -> str:
    """Human name of a model piece, e.g. lower constraint 'cap' (g[2])."""
    if kind == "f":
        return "the lower objective"
    label = {"g": "lower inequality", "h": "lower equality"}[kind]
    return f"{label} {names[index]!r} ({kind}[{index}])"


# ----------------------------------------------------------------------------- operations

def _is_num(v: Any) -> bool:
    return isinstance(v, float)


def _f(v: Any) -> float:
    return float(v)


def _numeric(op: int, a: list[float]) -> float | Unsupported:
    with np.errstate(all="ignore"):
        fn = _NUMERIC.get(op)
        if fn is None:
            return Unsupported(_OP_NAMES.get(op, str(op)))
        try:
            return float(fn(*a))
        except (ValueError, OverflowError, ZeroDivisionError):
            return math.nan


def _power(a: Any, b: Any) -> Any:
    if not _is_num(b):
        if _is_num(a) and a > 0:
            return _exp(b * math.log(a))
        return Unsupported("pow (variable exponent)")
    if b == 0.5:
        return _sqrt(a)
    if float(b).is_integer() and 0 <= b <= 16:
        n = int(b)
        return 1.0 if n == 0 else a ** n
    return a ** b


def _sqrt(a: Any) -> Any:
    from pyscipopt import sqrt
    return sqrt(a)


def _exp(a: Any) -> Any:
    from pyscipopt import exp
    return exp(a)


def _log(a: Any) -> Any:
    from pyscipopt import log
    return log(a)


def _sin(a: Any) -> Any:
    from pyscipopt import sin
    return sin(a)


def _cos(a: Any) -> Any:
    from pyscipopt import cos
    return cos(a)


_EXPR = {
    ca.OP_ADD: lambda a, b: a + b,
    ca.OP_SUB: lambda a, b: a - b,
    ca.OP_MUL: lambda a, b: a * b,
    ca.OP_DIV: lambda a, b: a / b,
    ca.OP_NEG: lambda a: -a,
    ca.OP_SQ: lambda a: a * a,
    ca.OP_TWICE: lambda a: 2.0 * a,
    ca.OP_INV: lambda a: 1.0 / a,
    ca.OP_SQRT: _sqrt,
    ca.OP_EXP: _exp,
    ca.OP_LOG: _log,
    ca.OP_POW: _power,
    ca.OP_CONSTPOW: _power,
    ca.OP_FABS: lambda a: abs(a),
    ca.OP_SIN: _sin,
    ca.OP_COS: _cos,
    ca.OP_TAN: lambda a: _sin(a) / _cos(a),
    ca.OP_SINH: lambda a: 0.5 * (_exp(a) - _exp(-a)),
    ca.OP_COSH: lambda a: 0.5 * (_exp(a) + _exp(-a)),
    ca.OP_TANH: lambda a: 1.0 - 2.0 / (_exp(2.0 * a) + 1.0),
    ca.OP_EXPM1: lambda a: _exp(a) - 1.0,
    ca.OP_LOG1P: lambda a: _log(1.0 + a),
    ca.OP_HYPOT: lambda a, b: _sqrt(a * a + b * b),
}


def _sign(a: float) -> float:
    return float(np.sign(a))


_NUMERIC = {
    ca.OP_ADD: np.add, ca.OP_SUB: np.subtract, ca.OP_MUL: np.multiply, ca.OP_DIV: np.divide,
    ca.OP_NEG: np.negative, ca.OP_SQ: np.square, ca.OP_TWICE: lambda a: 2.0 * a,
    ca.OP_INV: lambda a: np.divide(1.0, a), ca.OP_SQRT: np.sqrt, ca.OP_EXP: np.exp, ca.OP_LOG: np.log,
    ca.OP_POW: np.power, ca.OP_CONSTPOW: np.power, ca.OP_FABS: np.abs, ca.OP_SIN: np.sin,
    ca.OP_COS: np.cos, ca.OP_TAN: np.tan, ca.OP_SINH: np.sinh, ca.OP_COSH: np.cosh, ca.OP_TANH: np.tanh,
    ca.OP_EXPM1: np.expm1, ca.OP_LOG1P: np.log1p, ca.OP_HYPOT: np.hypot, ca.OP_ASIN: np.arcsin,
    ca.OP_ACOS: np.arccos, ca.OP_ATAN: np.arctan, ca.OP_ASINH: np.arcsinh, ca.OP_ACOSH: np.arccosh,
    ca.OP_ATANH: np.arctanh, ca.OP_ATAN2: np.arctan2, ca.OP_FMIN: np.fmin, ca.OP_FMAX: np.fmax,
    ca.OP_FLOOR: np.floor, ca.OP_CEIL: np.ceil, ca.OP_FMOD: np.fmod, ca.OP_SIGN: _sign,
    ca.OP_COPYSIGN: np.copysign, ca.OP_ERF: math.erf,
    ca.OP_LT: lambda a, b: float(a < b), ca.OP_LE: lambda a, b: float(a <= b),
    ca.OP_EQ: lambda a, b: float(a == b), ca.OP_NE: lambda a, b: float(a != b),
    ca.OP_NOT: lambda a: float(not a), ca.OP_AND: lambda a, b: float(bool(a) and bool(b)),
    ca.OP_OR: lambda a, b: float(bool(a) or bool(b)),
    ca.OP_IF_ELSE_ZERO: lambda c, v: v if c else 0.0,
}


@dataclass(frozen=True)
class _PowForm:
    """base^n of a polynomial base with several terms, kept unexpanded while it is squared or
    raised further: CasADi writes (y - c)^4 as sq(sq(y - c)), and expanded into monomials it
    hides its convexity from SCIP, whose bound at such a flat minimum then stalls for seconds."""

    base: Any
    n: int


def _materialize(v: "_PowForm") -> Any:
    if v.n == 2:
        return v.base * v.base  # a quadratic stays a polynomial (SCIP's quadratic handlers)
    from pyscipopt.scip import buildGenExprObj
    return buildGenExprObj(v.base) ** v.n


def _several_terms(a: Any) -> bool:
    return len(getattr(a, "terms", ())) > 1


def _apply(op: int, args: list[Any]) -> Any:
    for a in args:
        if isinstance(a, Unsupported):
            return a
    if op == ca.OP_SQ and (isinstance(args[0], _PowForm) or _several_terms(args[0])):
        a = args[0]
        return _PowForm(a.base, 2 * a.n) if isinstance(a, _PowForm) else _PowForm(a, 2)
    if op in (ca.OP_POW, ca.OP_CONSTPOW) and _is_num(args[1]) and float(args[1]).is_integer() \
            and 1 <= args[1] <= 16 and (isinstance(args[0], _PowForm) or _several_terms(args[0])):
        a, k = args[0], int(args[1])
        return _PowForm(a.base, k * a.n) if isinstance(a, _PowForm) else _PowForm(a, k)
    args = [_materialize(a) if isinstance(a, _PowForm) else a for a in args]
    if all(_is_num(a) for a in args):
        return _numeric(op, args)
    fn = _EXPR.get(op)
    if fn is None:
        return Unsupported(_OP_NAMES.get(op, str(op)))
    if op == ca.OP_DIV and _is_num(args[1]) and float(args[1]) == 0.0:
        return Unsupported("division by an expression that is zero at this leader point")
    out = fn(*args)
    return _f(out) if isinstance(out, (int, np.floating)) else out


def scip_follower(lp: Any, x: Sequence[float], p: Sequence[float], y: Sequence[Any]) -> tuple[Any, list[Any], list[Any]]:
    """(f, g, h) of the follower at fixed (x, p) as numbers / PySCIPOpt expressions of ``y``.

    Raises :class:`UnsupportedExpressionError` naming the first objective or constraint that
    applies an operation SCIP cannot represent to y.
    """
    vals = scip_tape(lp).replay(x, y, p, ("f", "g", "h"))
    pieces = [("f", 0, vals["f"][0])] + [("g", i, e) for i, e in enumerate(vals["g"])] \
        + [("h", i, e) for i, e in enumerate(vals["h"])]
    for kind, i, e in pieces:
        if isinstance(e, Unsupported):
            raise unsupported_error(piece_name(kind, i, lp.g_names if kind == "g" else lp.h_names), e)
    return vals["f"][0], vals["g"], vals["h"]
