"""Closed-form reaction map y*(x) of a strictly convex follower, by active-set enumeration.

For a follower  min_y f(x, y)  s.t.  g(x, y) >= 0, h(x, y) = 0  whose objective is
strictly convex in y and whose constraints are affine in y, the KKT conditions are
necessary and sufficient and the minimiser is unique. For every active set A
(subsets of the inequalities, at most n_y - n_h of them) we solve

    grad_y f - sum_{i in A} lam_i grad_y g_i - mu^T grad_y h = 0,  g_A = 0,  h = 0

with SymPy, and keep the region of leader points where the piece is primal
feasible (inactive g_i >= 0) and dual feasible (lam_A >= 0). The answer is one
``Piecewise`` per follower variable. When this cannot be done the reason is
raised as :class:`NoClosedFormError` (never a guess).
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import sympy as sp

from ..errors import MethodError
from ..reformulate.symbolic import lagrangian_expr, multiplier_symbol

if TYPE_CHECKING:  # annotations only
    from ..model.problem import BilevelProblem


class NoClosedFormError(MethodError):
    """No closed-form reaction map; ``reason`` is one of the class constants below."""

    NOT_STRICTLY_CONVEX = "not_strictly_convex"
    NONLINEAR_CONSTRAINTS = "nonlinear_constraints"
    UNSOLVABLE = "sympy_could_not_solve"
    TOO_MANY_ACTIVE_SETS = "too_many_active_sets"
    NO_FEASIBLE_PIECE = "no_feasible_piece"

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class ReactionPiece:
    """y*(x) on one active set: the follower's point, its multipliers and the leader region."""

    active: tuple                      # names of the active follower inequalities
    y: dict                            # follower symbol -> SymPy expression of x
    lam: dict                          # active constraint name -> multiplier expression (>= 0 on region)
    mu: dict                           # equality name -> multiplier expression
    region: Any                        # SymPy boolean in the leader symbols (where this piece is y*)


@dataclass
class ReactionMap(Mapping):
    """y*(x) keyed by follower symbol (``rm[y]`` is a SymPy expression, a Piecewise when
    constraints can be active). ``pieces`` lists the active sets with their regions,
    ``as_dict()`` gives a plain dict; ``__call__(x)`` evaluates y*(x) numerically."""

    leader: tuple
    follower: tuple
    pieces: list[ReactionPiece]
    solution: dict = field(default_factory=dict)
    ineq_names: list = field(default_factory=list)
    eq_names: list = field(default_factory=list)

    def __getitem__(self, key: Any) -> sp.Expr:
        return self.solution[key]

    def __iter__(self) -> Iterator:
        return iter(self.solution)

    def __len__(self) -> int:
        return len(self.solution)

    def as_dict(self) -> dict:
        return dict(self.solution)

    def piece_at(self, x: Any) -> ReactionPiece:
        """The first piece whose region contains the leader point ``x`` (Piecewise order)."""
        point = dict(zip(self.leader, np.asarray(x, float).reshape(-1)))
        for piece in self.pieces:
            if bool(piece.region.subs(point)):
                return piece
        raise MethodError(f"the follower has no solution at leader point {point} (outside every region)")

    def __call__(self, x: Any) -> np.ndarray:
        point = dict(zip(self.leader, np.asarray(x, float).reshape(-1)))
        piece = self.piece_at(x)
        return np.array([float(piece.y[s].subs(point)) for s in self.follower])

    def multipliers(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """(lam, mu) at ``x`` in the order of the follower's inequalities / equalities."""
        point = dict(zip(self.leader, np.asarray(x, float).reshape(-1)))
        piece = self.piece_at(x)
        lam = np.array([float(sp.sympify(piece.lam.get(n, 0)).subs(point)) for n in self.ineq_names])
        mu = np.array([float(sp.sympify(piece.mu.get(n, 0)).subs(point)) for n in self.eq_names])
        return lam, mu

    def __repr__(self) -> str:
        return "ReactionMap(" + ", ".join(f"{s} = {e}" for s, e in self.solution.items()) + ")"

    def _repr_latex_(self) -> str:
        rows = [f"{sp.latex(s)}^*({', '.join(map(sp.latex, self.leader))}) &= {sp.latex(e)}"
                for s, e in self.solution.items()]
        return "$\\begin{aligned}" + " \\\\ ".join(rows) + "\\end{aligned}$"


def _strict_convexity(f: sp.Expr, ys: tuple, others: tuple) -> None:
    """Raise unless the Hessian of f in y is provably positive definite everywhere."""
    H = sp.hessian(f, ys)
    real = {s: sp.Dummy(s.name, real=True) for s in tuple(ys) + tuple(others)}
    Hr = H.subs(real)
    minors = [sp.simplify(Hr[:k, :k].det()) for k in range(1, len(ys) + 1)]
    if all(m.is_positive for m in minors):
        return
    rng = np.random.default_rng(0)
    syms = list(real.values())
    for m in minors:
        if m.is_positive:
            continue
        fn = sp.lambdify(syms, m, "numpy")
        for _ in range(200):
            pt = rng.uniform(-3, 3, len(syms))
            if float(fn(*pt)) <= 0:
                where = ", ".join(f"{s} = {v:.3g}" for s, v in zip(tuple(ys) + tuple(others), pt))
                shown = m.subs({d: s for s, d in real.items()})
                raise NoClosedFormError(
                    f"the follower objective is not strictly convex in {list(ys)}: the Hessian minor {shown} "
                    f"is {float(fn(*pt)):.3g} <= 0 at {where}. Its argmin need not be unique, so there is no "
                    "single-valued reaction map; use method='kkt' or formulation='pessimistic'.",
                    NoClosedFormError.NOT_STRICTLY_CONVEX)
    raise NoClosedFormError(
        f"SymPy could not prove the follower objective strictly convex in {list(ys)} (Hessian {H.tolist()}); "
        "without strict convexity the argmin need not be unique. Use method='kkt'.",
        NoClosedFormError.NOT_STRICTLY_CONVEX)


def _check_affine(problem: BilevelProblem) -> None:
    for c in problem.g + problem.h:
        if sp.hessian(c.expr, problem.follower) != sp.zeros(problem.n_y):
            raise NoClosedFormError(
                f"follower constraint {c.name!r} ({c.source}) is not affine in {list(problem.follower)}; "
                "active-set enumeration needs affine follower constraints. Use method='kkt'.",
                NoClosedFormError.NONLINEAR_CONSTRAINTS)


def _solve_piece(problem: BilevelProblem, f: sp.Expr, g: list, h: list, active: tuple) -> ReactionPiece | None:
    ys = list(problem.follower)
    # the multipliers and Lagrangian of reformulate/symbolic.py (one naming, one sign convention)
    lam = {i: multiplier_symbol("ineq", g[i].name)[0] for i in active}
    mu = {j: multiplier_symbol("eq", h[j].name)[0] for j in range(len(h))}
    L = lagrangian_expr(f, [(lam[i], g[i].expr) for i in active] + [(mu[j], h[j].expr) for j in mu])
    eqs = [sp.diff(L, y) for y in ys] + [g[i].expr for i in active] + [c.expr for c in h]
    unknowns = ys + list(lam.values()) + list(mu.values())
    try:
        sols = sp.solve(eqs, unknowns, dict=True)
    except (NotImplementedError, ValueError) as exc:
        raise NoClosedFormError(f"SymPy could not solve the follower's optimality conditions "
                                f"for active set {active}: {exc}. Use method='kkt' (numeric).",
                                NoClosedFormError.UNSOLVABLE) from None
    sols = [s for s in sols if set(unknowns) <= set(s) and all(v.is_real is not False for v in s.values())
            and not any(v.has(*unknowns) for v in s.values())]
    if not sols:
        return None  # inconsistent active set, or degenerate (covered by a smaller one)
    if len(sols) > 1:
        raise NoClosedFormError(
            f"SymPy returned {len(sols)} branches {sols} for active set {active}; cannot tell which is real "
            "for every x.", NoClosedFormError.UNSOLVABLE)
    s = sols[0]
    y = {v: _tidy(s[v]) for v in ys}
    conds = [_tidy(c.expr.subs(y)) >= 0 for k, c in enumerate(g) if k not in active]
    conds += [_tidy(s[lam[i]]) >= 0 for i in active]
    region = sp.And(*conds)
    if region == sp.false:
        return None
    return ReactionPiece(active=tuple(g[i].name for i in active), y=y,
                         lam={g[i].name: _tidy(s[lam[i]]) for i in active},
                         mu={h[j].name: _tidy(s[mu[j]]) for j in mu}, region=region)


def _tidy(e: sp.Expr) -> sp.Expr:
    """Expand polynomials (cheap, canonical); full ``simplify`` only for anything else."""
    e = sp.sympify(e)
    return sp.expand(e) if e.is_polynomial(*e.free_symbols) else sp.simplify(e)


def _as_set(region: Any, x: sp.Symbol) -> sp.Set | None:
    try:
        out = region.as_set() if region != sp.true else sp.S.Reals
    except (NotImplementedError, TypeError, ValueError):
        return None
    return out if isinstance(out, sp.Set) else None


def _order_one_leader(pieces: list[ReactionPiece], x: sp.Symbol) -> list[ReactionPiece]:
    """1-D leader: give the unconstrained piece its closed interval, make the others disjoint and
    sort by position, so y*(x) reads like Piecewise((-1, x < -1), (x, -1 <= x <= 1), (1, x > 1))."""
    sets = [_as_set(p.region, x) for p in pieces]
    if any(s is None for s in sets):
        return pieces
    taken: sp.Set = sp.S.EmptySet
    out = []
    for piece, s in sorted(zip(pieces, sets), key=lambda ps: len(ps[0].active)):
        own = sp.Complement(s, taken)
        taken = sp.Union(taken, s)
        if own is sp.S.EmptySet:
            continue
        out.append((piece, own))
    out.sort(key=lambda ps: float(ps[1].inf))
    return [ReactionPiece(p.active, p.y, p.lam, p.mu, own.as_relational(x)) for p, own in out]


def reaction_map(problem: BilevelProblem, parameters: Mapping | None = None, max_active_sets: int = 64) -> ReactionMap:
    """y*(x) in closed form (a ``ReactionMap``, a Mapping follower symbol -> SymPy expression).

    Parameters are replaced by their values (``parameters`` overrides them). Raises
    :class:`NoClosedFormError` with ``reason`` when the follower is not strictly convex,
    has non-affine constraints, SymPy cannot solve a piece, or there are more than
    ``max_active_sets`` active sets to try.
    """
    pvals = dict(zip(problem.parameter_symbols, problem.parameter_vector(parameters)))
    pvals = {s: sp.nsimplify(v) for s, v in pvals.items()}
    f = problem.f.subs(pvals)
    _strict_convexity(f, problem.follower, problem.leader)
    _check_affine(problem)
    g = [type(c)(c.name, c.expr.subs(pvals), c.kind, c.source) for c in problem.g]
    h = [type(c)(c.name, c.expr.subs(pvals), c.kind, c.source) for c in problem.h]
    free = max(problem.n_y - len(h), 0)
    sizes = range(min(free, len(g)) + 1)
    count = sum(len(list(itertools.combinations(range(len(g)), k))) for k in sizes)
    if count > max_active_sets:
        raise NoClosedFormError(
            f"{len(g)} follower inequalities give {count} active sets to try (limit max_active_sets="
            f"{max_active_sets}); raise the limit or use method='kkt'.", NoClosedFormError.TOO_MANY_ACTIVE_SETS)
    pieces = [pc for k in sizes for act in itertools.combinations(range(len(g)), k)
              if (pc := _solve_piece(problem, f, g, h, act)) is not None]
    if not pieces:
        raise NoClosedFormError("no active set gives a primal and dual feasible follower point for any x; "
                                "the follower may be infeasible or unbounded.", NoClosedFormError.NO_FEASIBLE_PIECE)
    if problem.n_x == 1:
        pieces = _order_one_leader(pieces, problem.leader[0])
    if len(pieces) == 1 and pieces[0].region == sp.true:
        solution = dict(pieces[0].y)
    else:
        solution = {s: sp.Piecewise(*[(pc.y[s], pc.region) for pc in pieces]) for s in problem.follower}
    return ReactionMap(problem.leader, problem.follower, pieces, solution,
                       [c.name for c in problem.g], [c.name for c in problem.h])
