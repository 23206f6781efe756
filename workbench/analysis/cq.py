"""Constraint qualifications of the follower at one of its solutions.

The KKT route trusts that the follower's KKT conditions describe its argmin and
that the multipliers mean something. At a follower point y(x) this reports:

- LICQ: the active constraint gradients (in y) are linearly independent (rank test);
- MFCQ: equality gradients independent and some direction d has grad h d = 0,
  grad g_A d > 0 (an LP maximising the margin);
- the multiplier set {lam_A >= 0, mu : grad f = grad g_A^T lam_A + grad h^T mu}:
  empty, a single point or a polyhedron, with its dimension and componentwise ranges (LPs);
- strict complementarity (some multiplier with lam_A > 0), and
- SOSC: the Lagrangian Hessian in y, reduced to the null space of the strongly
  active gradients, is positive definite.

A leader objective cannot use the follower's multipliers in our declaration; a
problem that models one anyway (``problem.info["upper_uses_multipliers"] = True``
or ``upper_uses_multipliers=True``) is flagged ill-posed when they are not unique:
the leader could pick among them, so "the" bilevel optimum is not defined.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Hashable, Mapping

import casadi as ca
import numpy as np
import scipy.linalg
from scipy.optimize import linprog

from ..lower import lower
from ..reformulate.bilevel2mpcc import lagrangian
from ..solve import FollowerSolver

if TYPE_CHECKING:  # annotations only
    from ..model.problem import BilevelProblem


@dataclass
class CQReport:
    """What holds at the follower point; ``text`` explains it in words."""

    leader_point: np.ndarray
    follower_point: np.ndarray
    active: list[Hashable]
    n_active: int
    jacobian_rank: int
    licq: bool
    mfcq: bool
    mfcq_margin: float
    multiplier_set_empty: bool
    multipliers_unique: bool
    multiplier_set_dimension: int
    multiplier_ranges: dict[Hashable, tuple[float, float]]
    multiplier: dict[Hashable, float]
    strict_complementarity: bool
    sosc: bool | None
    reduced_hessian_min_eig: float | None
    ill_posed: bool | None
    notes: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        y = np.round(self.follower_point, 6).tolist()
        lines = [f"Follower point y = {y} at x = {np.round(self.leader_point, 6).tolist()}; "
                 f"active constraints: {self.active or 'none'}."]
        lines.append(f"LICQ {'holds' if self.licq else 'FAILS'}: the {self.n_active} active gradients "
                     f"(equalities included) have rank {self.jacobian_rank}.")
        lines.append(f"MFCQ {'holds' if self.mfcq else 'FAILS'} (best margin min_i grad g_i.d = {self.mfcq_margin:.3g} "
                     "over |d| <= 1 with grad h.d = 0).")
        if self.multiplier_set_empty:
            lines.append("No multipliers exist: y is not a KKT point of the follower.")
        elif self.multipliers_unique:
            lines.append(f"The multipliers are unique: {self.multiplier}.")
        else:
            rng = ", ".join(f"{k}: [{a:.6g}, {b:.6g}]" for k, (a, b) in self.multiplier_ranges.items())
            lines.append(f"The multipliers are NOT unique: they form a set of dimension "
                         f"{self.multiplier_set_dimension} (ranges {rng}).")
        lines.append(f"Strict complementarity {'holds' if self.strict_complementarity else 'fails'} "
                     "(some multiplier is positive on every active constraint)." if self.active else
                     "Strict complementarity holds trivially (no active inequality).")
        if self.sosc is not None and self.reduced_hessian_min_eig == float("inf"):
            lines.append("SOSC holds trivially: the strongly active gradients span the follower's space.")
        elif self.sosc is not None:
            lines.append(f"SOSC {'holds' if self.sosc else 'fails'}: reduced Hessian of the Lagrangian has smallest "
                         f"eigenvalue {self.reduced_hessian_min_eig:.6g}.")
        if self.ill_posed:
            lines.append("ILL-POSED: the leader's objective uses the follower's multipliers, which are not unique; "
                         "the leader could exploit the choice.")
        return "\n".join(lines + self.notes)

    def __str__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        return "**Constraint qualifications**\n\n" + "\n".join(f"- {s}" for s in self.text.splitlines())


def _functions(lp: Any) -> ca.Function:
    ng, nh = int(lp.g.numel()), int(lp.h.numel())
    lam, mu = ca.SX.sym("lam", ng), ca.SX.sym("mu", nh)
    L = lagrangian(lp, lam, mu)
    jg = ca.jacobian(lp.g, lp.y) if ng else ca.SX(0, lp.n_y)
    jh = ca.jacobian(lp.h, lp.y) if nh else ca.SX(0, lp.n_y)
    return ca.Function("cq", [lp.x, lp.y, lp.p, lam, mu],
                       [lp.g, ca.gradient(lp.f, lp.y), jg, jh, ca.hessian(L, lp.y)[0]])


def _margin_lp(JA: np.ndarray, Jh: np.ndarray) -> float:
    """max t s.t. JA d >= t, Jh d = 0, -1 <= d <= 1, t <= 1 (MFCQ iff t > 0)."""
    n = JA.shape[1]
    if JA.shape[0] == 0:
        return 1.0
    c = np.zeros(n + 1)
    c[-1] = -1.0
    A_ub = np.hstack([-JA, np.ones((JA.shape[0], 1))])
    eq = dict(A_eq=np.hstack([Jh, np.zeros((Jh.shape[0], 1))]), b_eq=np.zeros(Jh.shape[0])) if Jh.shape[0] else {}
    r = linprog(c, A_ub=A_ub, b_ub=np.zeros(JA.shape[0]), bounds=[(-1, 1)] * n + [(None, 1)], method="highs", **eq)
    return float(-r.fun) if r.status == 0 else float("nan")


def _multiplier_set(M: np.ndarray, rhs: np.ndarray, n_ineq: int, tol: float) -> dict:
    """Ranges, dimension and a strictly complementary point of {z : M z = rhs, z[:n_ineq] >= 0}."""
    n = M.shape[1]
    bounds = [(0, None)] * n_ineq + [(None, None)] * (n - n_ineq)
    feas = linprog(np.zeros(n), A_eq=M, b_eq=rhs, bounds=bounds, method="highs") if n else None
    if n == 0:
        ok = np.linalg.norm(rhs) <= tol * (1 + np.linalg.norm(rhs))
        return dict(empty=not ok, lo=np.zeros(0), hi=np.zeros(0), dim=0, point=np.zeros(0), strict=True)
    if feas.status != 0:
        return dict(empty=True, lo=np.full(n, np.nan), hi=np.full(n, np.nan), dim=-1, point=None, strict=False)
    lo, hi = np.zeros(n), np.zeros(n)
    for i in range(n):
        e = np.zeros(n)
        e[i] = 1.0
        a = linprog(e, A_eq=M, b_eq=rhs, bounds=bounds, method="highs")
        b = linprog(-e, A_eq=M, b_eq=rhs, bounds=bounds, method="highs")
        lo[i] = a.fun if a.status == 0 else -np.inf
        hi[i] = -b.fun if b.status == 0 else np.inf
    fixed = [i for i in range(n) if hi[i] - lo[i] <= tol * (1 + abs(hi[i]))]
    rows = np.vstack([M] + [np.eye(n)[i:i + 1] for i in fixed])
    dim = n - int(np.linalg.matrix_rank(rows, tol=1e-9))
    # strictly complementary multiplier: max t s.t. z_i >= t on the inequality part
    c = np.zeros(n + 1)
    c[-1] = -1.0
    A_ub = np.hstack([-np.eye(n)[:n_ineq], np.ones((n_ineq, 1))]) if n_ineq else None
    s = linprog(c, A_ub=A_ub, b_ub=np.zeros(n_ineq) if n_ineq else None,
                A_eq=np.hstack([M, np.zeros((M.shape[0], 1))]), b_eq=rhs,
                bounds=bounds + [(None, 1)], method="highs")
    strict = bool(n_ineq == 0 or (s.status == 0 and -s.fun > tol))
    point = s.x[:n] if s.status == 0 else feas.x
    return dict(empty=False, lo=lo, hi=hi, dim=dim, point=point, strict=strict)


def constraint_qualification(problem: BilevelProblem, leader_point: Any, parameters: Mapping | None = None,
                             follower_point: Any = None, upper_uses_multipliers: bool | None = None,
                             tol: float = 1e-7) -> CQReport:
    """LICQ, MFCQ, multiplier set, strict complementarity and SOSC of the follower at (x, y)."""
    lp = lower(problem)
    p = problem.parameter_vector(parameters)
    x = problem.point_vector(leader_point, "leader")
    notes = []
    if follower_point is None:
        fs = FollowerSolver(lp, tight=True).solve(x, p, lp.y_start)
        y = fs.y
        notes.append(f"The follower point was computed by Ipopt from the declared start ({fs.ipopt_status}).")
    else:
        y = problem.point_vector(follower_point, "follower")
    ng, nh = int(lp.g.numel()), int(lp.h.numel())
    fun = _functions(lp)
    g, grad_f, Jg, Jh, _ = (np.asarray(v, float) for v in fun(x, y, p, np.zeros(ng), np.zeros(nh)))
    g = g.reshape(-1)
    grad_f = grad_f.reshape(-1)
    Jg, Jh = Jg.reshape(ng, lp.n_y), Jh.reshape(nh, lp.n_y)
    act = [i for i in range(ng) if abs(g[i]) <= tol * (1 + np.abs(Jg[i]).max(initial=0))]
    JA = Jg[act]
    J = np.vstack([JA, Jh])
    rank = int(np.linalg.matrix_rank(J, tol=1e-9)) if J.size else 0
    licq = rank == J.shape[0]
    margin = _margin_lp(JA, Jh)
    mfcq = bool((nh == 0 or np.linalg.matrix_rank(Jh, tol=1e-9) == nh) and margin > tol)
    ms = _multiplier_set(J.T, grad_f, len(act), tol)
    names = [lp.g_names[i] for i in act] + list(lp.h_names)
    lam_full, mu = np.zeros(ng), np.zeros(nh)
    sosc, min_eig = None, None
    if not ms["empty"]:
        lam_full[act] = ms["point"][:len(act)]
        mu = ms["point"][len(act):]
        H = np.asarray(fun(x, y, p, lam_full, mu)[4], float).reshape(lp.n_y, lp.n_y)
        strong = [k for k, i in enumerate(act) if lam_full[i] > tol]
        Z = scipy.linalg.null_space(np.vstack([JA[strong], Jh])) if (strong or nh) else np.eye(lp.n_y)
        if Z.shape[1] == 0:
            sosc, min_eig = True, float("inf")
        else:
            min_eig = float(np.min(np.linalg.eigvalsh(Z.T @ H @ Z)))
            sosc = min_eig > tol
    uses = problem.info.get("upper_uses_multipliers", False) if upper_uses_multipliers is None else upper_uses_multipliers
    unique = (not ms["empty"]) and ms["dim"] == 0
    ill = bool(uses and not ms["empty"] and not unique) if uses else None
    if not licq and not ms["empty"]:
        notes.append("LICQ fails, so the multipliers need not be unique and the KKT route's multipliers are one "
                     "choice among many; sensitivities that divide by the active Jacobian are undefined.")
    if not mfcq:
        notes.append("MFCQ fails: the KKT conditions may not hold at a minimiser, so the KKT route can miss it.")
    return CQReport(
        leader_point=x, follower_point=y, active=[lp.g_names[i] for i in act], n_active=J.shape[0],
        jacobian_rank=rank, licq=licq, mfcq=mfcq, mfcq_margin=margin, multiplier_set_empty=ms["empty"],
        multipliers_unique=unique, multiplier_set_dimension=max(ms["dim"], 0),
        multiplier_ranges={n: (float(a), float(b)) for n, a, b in zip(names, ms["lo"], ms["hi"])},
        multiplier={n: float(v) for n, v in zip(names, ms["point"])} if ms["point"] is not None else {},
        strict_complementarity=ms["strict"], sosc=sosc, reduced_hessian_min_eig=min_eig, ill_posed=ill, notes=notes)
