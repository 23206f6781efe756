"""A single-level program in CasADi form, ready for a global (spatial branch-and-bound) solve.

    min_w  objective(w)   s.t.  eq(w) = 0,  ineq(w) >= 0,  lb <= w <= ub,
                                w_i integer (i in ``integer``),  w_a * w_b = 0 for (a, b) in ``sos1``

Complementarity pairs are kept as SOS1 pairs (at most one of the two is nonzero), never as big-M
disjunctions: SCIP branches on them directly, so no multiplier or slack bound has to be *guessed*
for them. Spatial branching does need finite bounds on every variable inside a nonlinear term;
:func:`bound_program` derives them from the affine rows (the same simple-bound + LP propagation as
the global follower proof) and *assumes* a box only for what stays infinite, listing it in
``assumed`` so that an optimum on an assumed bound is never called global.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import casadi as ca
import numpy as np

ASSUMED_RADIUS = 1e3  # |w_i - ref_i| <= ASSUMED_RADIUS (1 + |ref_i|) where nothing bounds w_i


@dataclass(frozen=True)
class SingleLevelProgram:
    """See the module docstring; ``names[i]`` labels w_i in reports (e.g. "x1", "lam[cap]")."""

    w: Any
    p: Any
    p_value: np.ndarray
    objective: Any
    eq: Any
    ineq: Any
    lb: np.ndarray
    ub: np.ndarray
    names: tuple[str, ...]
    integer: tuple[int, ...] = ()
    sos1: tuple[tuple[int, int], ...] = ()
    eq_names: tuple[str, ...] = ()
    ineq_names: tuple[str, ...] = ()
    assumed: tuple[int, ...] = ()          # indices of w whose (finite) bounds are assumed, not derived
    derived_lb: np.ndarray | None = None    # bounds before any assumption (+-inf where none was derived)
    derived_ub: np.ndarray | None = None
    bound_source: str = ""
    info: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.w.numel())

    def on_assumed_bound(self, w: np.ndarray, rtol: float = 1e-6) -> list[int]:
        """Indices i in ``assumed`` whose value sits on an assumed (not derived) bound."""
        out = []
        for i in self.assumed:
            for b, derived in ((self.lb[i], self.derived_lb[i]), (self.ub[i], self.derived_ub[i])):
                if not np.isfinite(derived) and abs(w[i] - b) <= rtol * (1 + abs(b)):
                    out.append(i)
        return sorted(set(out))


def _numeric(e: Any, prog_p: Any, p_value: np.ndarray) -> Any:
    return ca.substitute(e, prog_p, ca.DM(p_value)) if prog_p.numel() else e


def nonlinear_columns(prog: SingleLevelProgram) -> np.ndarray:
    """Mask of variables that appear nonlinearly somewhere (a Jacobian column that depends on w)."""
    allexpr = ca.vertcat(prog.objective, prog.eq, prog.ineq)
    J = ca.jacobian(allexpr, prog.w)
    out = np.zeros(prog.n, dtype=bool)
    for j in range(prog.n):
        out[j] = bool(ca.depends_on(J[:, j], prog.w))
    return out


def affine_rows(prog: SingleLevelProgram) -> tuple[list[tuple[np.ndarray, float]], list[tuple[np.ndarray, float]]]:
    """(a, c) with row = a.w + c for every eq/ineq row affine in w (at the program's parameters)."""
    zero = ca.DM.zeros(prog.n)
    out: tuple[list, list] = ([], [])
    for k, block in enumerate((prog.ineq, prog.eq)):
        if not block.numel():
            continue
        block = _numeric(block, prog.p, prog.p_value)
        J = ca.jacobian(block, prog.w)
        fa = ca.Function("aff", [prog.w], [J, block])
        A, c = (np.asarray(v, float) for v in fa(zero))
        c = c.reshape(-1)
        for i in range(int(block.numel())):
            row = block[i]
            if not ca.is_linear(row, prog.w) and ca.depends_on(row, prog.w):
                continue
            a = A[i].reshape(-1)
            if np.all(np.isfinite(a)) and np.isfinite(c[i]):
                out[k].append((a, float(c[i])))
    return out


LP_ROUNDING = 1e-7  # outward rounding of LP-derived bounds (HiGHS' feasibility tolerance), as the follower proof


def simple_bounds(ineq: list[tuple[np.ndarray, float]], eq: list[tuple[np.ndarray, float]],
                  n: int) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, float, bool]]]:
    """Step (a) of a bound derivation: a row a.w + c >= 0 (or = 0) in one variable w_i is the bound
    w_i >= -c/a_i (a_i > 0) or w_i <= -c/a_i (a_i < 0), both for an equality. Returns (lo, hi) and the
    rows in several variables as (a, c, is_eq), left for LP propagation."""
    lo, hi = np.full(n, -np.inf), np.full(n, np.inf)
    multi = []
    for a, c, is_eq in [(a, c, False) for a, c in ineq] + [(a, c, True) for a, c in eq]:
        nz = np.flatnonzero(a)
        if nz.size != 1:
            if nz.size > 1:
                multi.append((a, c, is_eq))
            continue
        i = int(nz[0])
        b = -c / a[i]
        if is_eq or a[i] > 0:
            lo[i] = max(lo[i], b)
        if is_eq or a[i] < 0:
            hi[i] = min(hi[i], b)
    return lo, hi, multi


class BoxLP:
    """min sign * w_i over {a.w + c >= 0 (ineq), a.w + c = 0 (eq), lo <= w <= hi} for several (i, sign).

    One HiGHS model (SciPy's bundled ``scipy.optimize._highspy``) whose cost vector is changed between
    solves, so each LP starts from the last basis: ~0.3 ms per LP against ~7 ms through
    ``scipy.optimize.linprog`` (input checks, a new model, presolve each time), which was a third of the
    global route's time on a typical BOLIB problem. Falls back to ``linprog`` where the bundled module is
    missing (it is private to SciPy)."""

    def __init__(self, multi: list[tuple[np.ndarray, float, bool]], lo: np.ndarray, hi: np.ndarray, n: int):
        self.rows, self.lo, self.hi, self.n = multi, lo.copy(), hi.copy(), n
        try:
            from scipy.optimize._highspy import _core
        except ImportError:  # pragma: no cover - depends on the SciPy build
            self.h = None
            return
        inf = _core.kHighsInf
        A = np.array([a for a, _, _ in multi], float)
        c = np.array([c for _, c, _ in multi], float)
        iseq = np.array([e for *_, e in multi], bool)
        model = _core.HighsLp()
        model.num_col_, model.num_row_ = n, len(multi)
        model.col_cost_ = np.zeros(n)
        model.col_lower_ = np.where(np.isfinite(lo), lo, -inf)
        model.col_upper_ = np.where(np.isfinite(hi), hi, inf)
        model.row_lower_ = -c
        model.row_upper_ = np.where(iseq, -c, inf)
        nz = [np.flatnonzero(a) for a in A]
        mat = model.a_matrix_
        mat.format_ = _core.MatrixFormat.kRowwise
        mat.num_col_, mat.num_row_ = n, len(multi)
        mat.start_ = np.concatenate([[0], np.cumsum([z.size for z in nz])]).astype(np.int32)
        mat.index_ = np.concatenate(nz).astype(np.int32) if nz else np.zeros(0, np.int32)
        mat.value_ = np.concatenate([A[k, z] for k, z in enumerate(nz)]) if nz else np.zeros(0)
        model.a_matrix_ = mat
        self.h, self.core = _core._Highs(), _core
        self.h.setOptionValue("output_flag", False)
        if self.h.passModel(model) != _core.HighsStatus.kOk:
            self.h = None

    def minimise(self, i: int, sign: float) -> tuple[str, float]:
        """("optimal", min w_i or max w_i), ("infeasible", nan) or (anything else, nan)."""
        if self.h is None:
            return self._linprog(i, sign)
        h, S = self.h, self.core.HighsModelStatus
        h.changeColCost(int(i), float(sign))
        try:
            h.run()
            st = h.getModelStatus()
            v = sign * float(h.getInfo().objective_function_value)
        finally:
            h.changeColCost(int(i), 0.0)
        if st == S.kOptimal:
            return "optimal", v
        return ("infeasible" if st == S.kInfeasible else "other"), math.nan

    def _linprog(self, i: int, sign: float) -> tuple[str, float]:
        from scipy.optimize import linprog
        m = self.rows
        A_ub = np.array([-a for a, c, e in m if not e]) if any(not e for *_, e in m) else None
        b_ub = np.array([c for a, c, e in m if not e]) if A_ub is not None else None
        A_eq = np.array([a for a, c, e in m if e]) if any(e for *_, e in m) else None
        b_eq = np.array([-c for a, c, e in m if e]) if A_eq is not None else None
        bounds = list(zip(np.where(np.isfinite(self.lo), self.lo, None), np.where(np.isfinite(self.hi), self.hi, None)))
        cvec = np.zeros(self.n)
        cvec[i] = sign
        r = linprog(cvec, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds, method="highs")
        if r.status == 0:
            return "optimal", sign * float(r.fun)
        return ("infeasible" if r.status == 2 else "other"), math.nan


def propagate_bounds(ineq: list[tuple[np.ndarray, float]], eq: list[tuple[np.ndarray, float]], n: int,
                     need: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Box containing {w : a.w + c >= 0 (ineq), a.w + c = 0 (eq)}: the global follower proof's derivation
    (``certify.global_follower.derive_box``: (a) rows in one variable are simple bounds, (b) min and max
    of w_i over the polyhedron by LP, rounded outward), with the LPs only for the variables in ``need``
    whose simple bounds are not both finite: only variables in nonlinear terms need bounds for SCIP, and
    the LPs share one warm-started HiGHS model (:class:`BoxLP`)."""
    lo, hi, multi = simple_bounds(ineq, eq, n)
    how = ["simple bounds"] if np.isfinite(lo).any() or np.isfinite(hi).any() else []
    which = [i for i in np.flatnonzero(need) if not (np.isfinite(lo[i]) and np.isfinite(hi[i]))]
    if multi and which:
        lp = BoxLP(multi, lo, hi, n)
        used = False
        for i in which:
            for sign in (1.0, -1.0):
                if (sign > 0 and np.isfinite(lo[i])) or (sign < 0 and np.isfinite(hi[i])):
                    continue
                st, v = lp.minimise(i, sign)
                if st == "infeasible":  # the affine rows alone are infeasible: SCIP will say so
                    return lo, hi, " + ".join(how) or "none"
                if st != "optimal":
                    continue
                pad = LP_ROUNDING * (1 + abs(v))
                if sign > 0:
                    lo[i], used = v - pad, True
                else:
                    hi[i], used = v + pad, True
        if used:
            how.append("LP bound propagation")
    return lo, hi, " + ".join(how) or "none"


def bound_program(prog: SingleLevelProgram, derive_box: Callable[..., tuple[np.ndarray, np.ndarray, str]] | None = None,
                  ref: np.ndarray | None = None, radius: float = ASSUMED_RADIUS, *,
                  defer: np.ndarray | None = None,
                  refine: Callable[..., tuple[np.ndarray, np.ndarray, str]] | None = None
                  ) -> SingleLevelProgram:
    """The program with bounds derived from its affine rows and, for a variable in a nonlinear term
    that stays unbounded, an assumed box |w_i - ref_i| <= radius (1 + |ref_i|).

    The derivation is :func:`propagate_bounds` (LPs only for variables in nonlinear terms), or an
    injected ``derive_box(ineq, eq, n)`` over all variables. Variables that appear only linearly need
    no bounds: SCIP handles them, and a free direction there is reported by SCIP as unboundedness,
    not hidden by a box. ``refine(lo, hi, tighten) -> (lo', hi', how)`` derives further bounds from the
    first box (e.g. multipliers from dual vertices), and may call ``tighten(mask) -> (lo, hi)`` for LP
    bounds on more variables (those in ``mask``, e.g. linear ones it needs bounded); the variables in
    the mask ``defer`` get their LPs only after it, and only where it left them unbounded.
    """
    ineq, eq = affine_rows(prog)
    ineq = ineq + [(np.eye(prog.n)[i], -prog.lb[i]) for i in range(prog.n) if np.isfinite(prog.lb[i])]
    ineq = ineq + [(-np.eye(prog.n)[i], prog.ub[i]) for i in range(prog.n) if np.isfinite(prog.ub[i])]
    nonlin = nonlinear_columns(prog)
    for a, b in prog.sos1:  # SCIP's SOS1 handling misjudges feasibility with huge or infinite bounds
        nonlin[a] = nonlin[b] = True  # (measured: a feasible KKT system called infeasible at bounds 1e6)
    defer = np.zeros(prog.n, bool) if defer is None or derive_box is not None else np.asarray(defer, bool)
    if derive_box is None:
        lo, hi, how = propagate_bounds(ineq, eq, prog.n, nonlin & ~defer)
    else:
        lo, hi, how = derive_box(ineq, eq, prog.n)
    lo, hi = np.maximum(lo, prog.lb) + 0.0, np.minimum(hi, prog.ub) + 0.0
    def tighten(mask: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
        box = [(np.eye(prog.n)[i], -lo[i]) for i in range(prog.n) if np.isfinite(lo[i])] + \
              [(-np.eye(prog.n)[i], hi[i]) for i in range(prog.n) if np.isfinite(hi[i])]
        lo3, hi3, how3 = propagate_bounds(ineq + box, eq, prog.n, np.asarray(mask, bool))
        return np.maximum(lo, lo3), np.minimum(hi, hi3), how3

    if refine is not None:
        extra: list[str] = []

        def tighten_more(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            nonlocal lo, hi
            lo, hi, how3 = tighten(mask, lo, hi)
            extra.append(how3)
            return lo.copy(), hi.copy()

        lo2, hi2, how2 = refine(lo.copy(), hi.copy(), tighten_more)
        if any("LP" in h for h in extra) and "LP" not in how:
            how += " + LP bound propagation"
        if np.any(lo2 > lo) or np.any(hi2 < hi):
            how += f" + {how2}"
        lo, hi = np.maximum(lo, lo2), np.minimum(hi, hi2)
    still = defer & nonlin & ~(np.isfinite(lo) & np.isfinite(hi))
    if np.any(still):
        lo, hi, how3 = tighten(still, lo, hi)
        if "LP" in how3 and "LP" not in how:
            how += " + LP bound propagation"
    cross = lo > hi
    if np.any(cross):  # a variable pinned to one point may cross by LP rounding: keep that point
        mid = (lo[cross] + hi[cross]) / 2
        lo[cross], hi[cross] = mid, mid
    ref = np.zeros(prog.n) if ref is None else np.asarray(ref, float)
    a_lo, a_hi = lo.copy(), hi.copy()
    assumed = []
    for i in np.flatnonzero(nonlin):
        K = radius * (1 + abs(ref[i]))
        if not np.isfinite(lo[i]):
            a_lo[i] = (min(ref[i], hi[i]) if np.isfinite(hi[i]) else ref[i]) - K
            assumed.append(int(i))
        if not np.isfinite(hi[i]):
            a_hi[i] = (max(ref[i], lo[i]) if np.isfinite(lo[i]) else ref[i]) + K
            assumed.append(int(i))
    assumed = sorted(set(assumed))
    src = how
    if assumed:
        src += (f"; assumed |w_i - ref_i| <= {radius:g} (1 + |ref_i|) for "
                + ", ".join(prog.names[i] for i in assumed))
    return replace(prog, lb=a_lo, ub=a_hi, assumed=tuple(assumed), derived_lb=lo, derived_ub=hi, bound_source=src)


def box_report(prog: SingleLevelProgram) -> list[dict]:
    """The assumed entries of ``prog``'s box, for ``r.info["assumed_box"]``."""
    return [{"variable": prog.names[i], "lb": float(prog.lb[i]), "ub": float(prog.ub[i]),
             "derived_lb": float(prog.derived_lb[i]), "derived_ub": float(prog.derived_ub[i])} for i in prog.assumed]
