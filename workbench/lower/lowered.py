"""The problem lowered to CasADi once: symbols x, y, p and the six model pieces.

Every numeric stage (reformulations, solvers, certificate, sensitivity) reads
this object, never the SymPy model, so the SymPy -> CasADi translation happens
exactly once per problem (cached weakly on the problem object's identity).
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Hashable

import casadi as ca
import numpy as np

from .sympy2casadi import SympyToCasadi, to_casadi

if TYPE_CHECKING:  # annotations only
    from ..model.protocol import Problem


@dataclass
class LoweredProblem:
    """CasADi view of a bilevel problem (all constraints as ``>= 0`` or ``== 0``)."""

    x: Any
    y: Any
    p: Any
    F: Any
    G: Any
    H: Any
    f: Any
    g: Any
    h: Any
    g_names: list[Hashable]
    h_names: list[Hashable]
    G_names: list[Hashable]
    H_names: list[Hashable]
    p_default: np.ndarray
    x_start: np.ndarray
    y_start: np.ndarray
    lower_sense: str = "min"
    upper_sense: str = "min"
    name: str = "bilevel"
    # The one cache of everything derived from this problem (CasADi Functions, proofs per
    # leader point, SCIP tapes): its lifetime is the lowered problem's. Use ``cached``.
    cache: dict[str, Any] = field(default_factory=dict, repr=False)
    # Boxes a declaration states outright ({"x": (lb, ub), "y": (lb, ub)}), read before deriving any.
    known_boxes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
    # Follower multipliers as symbols of the leader's pieces (``wb.multiplier``): F, G, H may
    # depend on lam_sym (one entry per g) and mu_sym (one per h). None when they do not.
    lam_sym: Any = None
    mu_sym: Any = None

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        """``cache[key]``, built once by ``make()`` (thread-safe: one builder at a time)."""
        try:
            return self.cache[key]
        except KeyError:
            pass
        with BUILD_LOCK:
            if key not in self.cache:
                self.cache[key] = make()
            return self.cache[key]

    @property
    def multiplier_dependent(self) -> bool:
        """Whether F, G or H use the follower's multipliers (then they take (x, y, p, lam, mu))."""
        if self.lam_sym is None:
            return False
        def make() -> bool:
            nu = ca.vertcat(self.lam_sym, self.mu_sym)
            return bool(nu.numel()) and bool(ca.depends_on(ca.vertcat(self.F, self.G, self.H), nu))
        return self.cached("multiplier_dependent", make)

    @property
    def nu_sym(self) -> Any:
        """[lam_sym; mu_sym] (empty when the leader does not use multipliers)."""
        if self.lam_sym is None:
            return type(self.x)(0, 1)
        return ca.vertcat(self.lam_sym, self.mu_sym)

    @property
    def n_x(self) -> int:
        return int(self.x.numel())

    @property
    def n_y(self) -> int:
        return int(self.y.numel())

    @property
    def n_p(self) -> int:
        return int(self.p.numel())

    def function(self, name: str) -> ca.Function:
        """Named CasADi Function of (x, y, p): upper_objective, upper_ineq, upper_eq,
        lower_objective, lower_ineq, lower_eq. Built on first use, then cached.

        When the leader uses multipliers (``multiplier_dependent``) the upper pieces are
        Functions of (x, y, p, lam, mu)."""
        def make() -> ca.Function:
            expr = {"upper_objective": self.F, "upper_ineq": self.G, "upper_eq": self.H,
                    "lower_objective": self.f, "lower_ineq": self.g, "lower_eq": self.h}[name]
            if name.startswith("upper") and self.multiplier_dependent:
                return ca.Function(name, [self.x, self.y, self.p, self.lam_sym, self.mu_sym],
                                   [expr], ["x", "y", "p", "lam", "mu"], [name])
            return ca.Function(name, [self.x, self.y, self.p], [expr], ["x", "y", "p"], [name])
        return self.cached(f"function_{name}", make)

    def _nu_args(self, name: str, lam: Any, mu: Any) -> tuple:
        if not (name.startswith("upper") and self.multiplier_dependent):
            return ()
        if lam is None or mu is None:
            from ..errors import MethodError
            raise MethodError(
                f"the leader's {name.replace('_', ' ')} depends on follower multipliers (wb.multiplier), "
                "and this step was not given them: only multiplier-aware routes (method='kkt', "
                "'global_kkt') can solve such a problem")
        return (np.asarray(lam, float).reshape(-1), np.asarray(mu, float).reshape(-1))

    def gradient(self, name: str, wrt: str, x: Any, y: Any, p: Any, lam: Any = None, mu: Any = None) -> np.ndarray:
        """Gradient of a scalar model piece ("upper_objective", "lower_objective") in x or y
        (or "nu", the multipliers [lam; mu], for a leader that uses them)."""
        key = f"gradient_{name}_{wrt}"
        nu = self._nu_args(name, lam, mu)
        def make() -> ca.Function:
            expr = {"upper_objective": self.F, "lower_objective": self.f}[name]
            v = self.nu_sym if wrt == "nu" else getattr(self, wrt)
            ins = [self.x, self.y, self.p] + ([self.lam_sym, self.mu_sym] if nu else [])
            return ca.Function(key, ins, [ca.gradient(expr, v)])
        return np.asarray(self.cached(key, make)(x, y, p, *nu), dtype=float).reshape(-1)

    def evaluate(self, name: str, x: Any, y: Any, p: Any, lam: Any = None, mu: Any = None) -> np.ndarray:
        """Numeric value of a model piece at a point (always a flat array). The leader's pieces
        of a problem whose leader uses multipliers need ``lam`` and ``mu`` (else MethodError)."""
        return np.asarray(self.function(name)(x, y, p, *self._nu_args(name, lam, mu)), dtype=float).reshape(-1)


BUILD_LOCK = threading.RLock()  # the one build lock (re-entrant: a builder may ask for another cached piece)
_CACHE: "weakref.WeakKeyDictionary[Any, LoweredProblem]" = weakref.WeakKeyDictionary()


def lower(problem: Problem) -> LoweredProblem:
    """Translate a ``BilevelProblem`` to CasADi SX (once; later calls hit a cache).

    Problems that already carry CasADi expressions (the vectorised declaration)
    provide ``_lower()`` themselves and are used as they are.
    """
    hit = _CACHE.get(problem)
    if hit is not None:
        return hit
    if hasattr(problem, "_lower"):
        out = problem._lower()
    else:
        out = _lower_sympy(problem)
    _CACHE[problem] = out
    return out


_MX_CACHE: "weakref.WeakKeyDictionary[Any, LoweredProblem]" = weakref.WeakKeyDictionary()


def lower_matrix(problem: Problem) -> LoweredProblem:
    """The problem in CasADi MX when its declaration can build one (vectorised declarations:
    ``_lower("MX")``), else :func:`lower`'s SX model. Cached like :func:`lower`.

    Why: a vectorised declaration on dense data (ridge on a dense 200 × 10⁴ design) has one SX
    node per product term — millions of nodes, seconds to build and minutes to differentiate —
    while its MX graph has one node per matrix product. Stages that only evaluate functions and
    first derivatives (the hypergradient route, its certificate) read this form; the KKT route
    needs the SX form's exact sparse Hessians and calls :func:`lower`.
    """
    hit = _MX_CACHE.get(problem)
    if hit is not None:
        return hit
    out = problem._lower("MX") if hasattr(problem, "_lower") and hasattr(problem, "parameter_blocks") else lower(problem)
    _MX_CACHE[problem] = out
    return out


def _lower_sympy(problem: Problem) -> LoweredProblem:
    x = ca.SX.sym("x", problem.n_x)
    y = ca.SX.sym("y", problem.n_y)
    p = ca.SX.sym("p", len(problem.parameter_symbols))
    mapping = {s: x[i] for i, s in enumerate(problem.leader)}
    mapping.update({s: y[i] for i, s in enumerate(problem.follower)})
    mapping.update({s: p[i] for i, s in enumerate(problem.parameter_symbols)})
    lam_sym = mu_sym = None
    if getattr(problem, "multiplier_symbols", None):
        lam_sym, mu_sym = ca.SX.sym("lam_F", len(problem.g)), ca.SX.sym("mu_F", len(problem.h))
        for s, (kind, i) in problem.multiplier_symbols.items():
            mapping[s] = lam_sym[i] if kind == "ineq" else mu_sym[i]
    tr = SympyToCasadi(mapping)
    return LoweredProblem(lam_sym=lam_sym, mu_sym=mu_sym,
        x=x, y=y, p=p,
        F=tr(problem.F), f=tr(problem.f),
        G=to_casadi([c.expr for c in problem.G], tr), H=to_casadi([c.expr for c in problem.H], tr),
        g=to_casadi([c.expr for c in problem.g], tr), h=to_casadi([c.expr for c in problem.h], tr),
        g_names=[c.name for c in problem.g], h_names=[c.name for c in problem.h],
        G_names=[c.name for c in problem.G], H_names=[c.name for c in problem.H],
        p_default=problem.parameter_vector(),
        x_start=problem.point_vector(None, "leader"), y_start=problem.point_vector(None, "follower"),
        lower_sense=problem.lower_sense, upper_sense=problem.upper_sense, name=problem.name,
    )
