"""``BilevelProblem``: the SymPy declaration every later stage reads.

    min_x F(x, y)  s.t. G(x, y) >= 0, H(x, y) = 0,
    y in argmin_y { f(x, y) : g(x, y) >= 0, h(x, y) = 0 }

The object validates on construction and is never changed afterwards; solving,
certifying and differentiating are methods that hand it to the later stages.
"""
from __future__ import annotations

from typing import Any, Hashable, Iterable, Mapping, Sequence

import numpy as np
import sympy as sp

from ..errors import IntegerVariableError, ModelError, UnknownSymbolError, ValueInputError
from ..printing import latex_repr
from .constraints import normalise
from .multipliers import MultiplierSymbol, bind_multipliers
from .objective import split_objective

INTEGER_ROUTES = ("milp", "global", "auto")  # auto: the MILP route, else the KKT route, which refuses integers
NONSMOOTH = (sp.Abs, sp.Max, sp.Min, sp.sign, sp.floor, sp.ceiling, sp.Heaviside, sp.Piecewise)


def _symbols(seq: Any, role: str) -> tuple[sp.Symbol, ...]:
    if isinstance(seq, (sp.Symbol, sp.Indexed)):
        seq = [seq]
    if isinstance(seq, sp.MatrixBase):
        seq = list(seq)
    try:
        out = tuple(seq)
    except TypeError:
        raise ModelError(f"{role} must be a list of SymPy symbols, got {type(seq).__name__}") from None
    for s in out:
        if not isinstance(s, sp.Symbol):
            raise ModelError(
                f"{role} variable {s!r} is a {type(s).__name__}, not a SymPy Symbol; "
                "declare it with sp.symbols(...)"
            )
    dup = {s for s in out if out.count(s) > 1}
    if dup:
        raise ModelError(f"{role} variable(s) {sorted(map(str, dup))} listed twice")
    return out


def _expr(e: Any, what: str) -> sp.Expr:
    if isinstance(e, str):
        raise ModelError(f"{what} is the string {e!r}; pass a SymPy expression (use sp.sympify to parse text)")
    if isinstance(e, (sp.MatrixBase, list, tuple, np.ndarray)):
        raise ModelError(f"{what} must be a scalar expression, got {type(e).__name__}")
    if isinstance(e, bool) or (isinstance(e, sp.logic.boolalg.Boolean) and not isinstance(e, sp.Expr)):
        raise ModelError(f"{what} is a relational/boolean ({e!r}); objectives are expressions")
    try:
        out = sp.sympify(e, strict=True)
    except (sp.SympifyError, TypeError):
        raise ModelError(f"{what} ({e!r}) is not a SymPy expression of the declared symbols") from None
    if not isinstance(out, sp.Expr):
        raise ModelError(f"{what} ({e!r}) is not a SymPy expression")
    if out.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        raise ModelError(f"{what} contains nan or infinity: {out}")
    if out.has(sp.I):
        raise ModelError(f"{what} ({out}) has a complex coefficient (sp.I); objectives must be real-valued")
    return out


def _move_leader_only(upper: list, lower: list, follower: set) -> tuple[list, list]:
    """A follower constraint without follower variables only restricts x: the follower is
    infeasible unless it holds, so it is a leader requirement (with no multiplier). It is moved
    to the leader's constraints, keeping its name (prefixed ``lower:`` when the name is taken),
    with a warning."""
    import warnings
    from dataclasses import replace
    keep, moved = [], []
    for c in lower:
        if c.expr.free_symbols & follower:
            keep.append(c)
        else:
            moved.append(c)
    if not moved:
        return upper, lower
    taken = {c.name for c in upper}
    out = list(upper)
    for c in moved:
        name = c.name if c.name not in taken else f"lower:{c.name}"
        taken.add(name)
        out.append(replace(c, name=name))
        warnings.warn(f"follower constraint {c.name!r} ({c.source}) has no follower variable: it only restricts "
                      f"the leader, so it is treated as the leader's constraint {name!r} (no follower multiplier)",
                      UserWarning, stacklevel=4)
    return out, keep


def finite_vector(values: Any, n: int, what: str) -> np.ndarray:
    """Check a user-given numeric vector: right length, all finite."""
    try:
        arr = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise ValueInputError(f"{what} must be numbers, got {values!r}") from None
    if arr.size != n:
        raise ValueInputError(f"{what} has {arr.size} entries, expected {n}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueInputError(f"{what} entry {int(bad[0])} is {arr[bad[0]]}; values must be finite numbers")
    return arr


class BilevelProblem:
    """A leader-follower problem declared with SymPy.

    Parameters
    ----------
    leader, follower : sequences of ``sp.Symbol``
        The leader's variables x and the follower's variables y (order kept in results).
    upper_objective, lower_objective : SymPy expression, ``Minimize`` or ``Maximize``
        F(x, y) and f(x, y). A bare expression is minimised.
    upper_constraints, lower_constraints : list or dict of relationals
        ``a >= b``, ``a <= b``, ``sp.Eq(a, b)``; name one with ``wb.named(name, rel)``
        or pass a dict ``{name: rel}``. Unnamed constraints are keyed by position.
    parameters : mapping ``sp.Symbol -> float``
        Symbols with numeric values that can change without rebuilding (``solve(parameters=...)``).
    start : mapping ``sp.Symbol -> float``
        Starting point for leader and follower variables (missing ones start at 0).
    integer : sequence of leader symbols
        Leader variables restricted to integer values. Honoured by ``method="milp"`` (HiGHS) and
        ``method="global"`` (SCIP); every other route refuses such a problem (``MethodError``).

    Examples
    --------
    >>> import sympy as sp, workbench as wb
    >>> x, y = sp.symbols("x y", real=True)
    >>> p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x + y,
    ...     upper_constraints=[x >= 0, x <= 1], lower_objective=(y - x)**2 / 2)
    >>> p.n_x, p.n_y
    (1, 1)
    """

    def __init__(
        self,
        leader: Sequence[sp.Symbol],
        follower: Sequence[sp.Symbol],
        upper_objective: Any,
        lower_objective: Any,
        upper_constraints: Iterable[Any] | Mapping[Hashable, Any] | None = None,
        lower_constraints: Iterable[Any] | Mapping[Hashable, Any] | None = None,
        parameters: Mapping[sp.Symbol, float] | None = None,
        start: Mapping[sp.Symbol, float] | None = None,
        name: str = "bilevel",
        info: Mapping[str, Any] | None = None,
        integer: Sequence[sp.Symbol] | None = None,
    ) -> None:
        self.name = name
        self.leader = _symbols(leader, "leader")
        self.follower = _symbols(follower, "follower")
        if not self.leader:
            raise ModelError("the leader has no variables; a bilevel problem needs at least one")
        if not self.follower:
            raise ModelError("the follower has no variables; a bilevel problem needs at least one")
        both = set(self.leader) & set(self.follower)
        if both:
            raise ModelError(
                f"variable {sorted(map(str, both))[0]} is listed as both leader and follower; "
                "each variable belongs to exactly one level"
            )
        params = dict(parameters or {})
        self.parameter_symbols = _symbols(list(params), "parameter")
        clash = set(self.parameter_symbols) & (set(self.leader) | set(self.follower))
        if clash:
            raise ModelError(f"{sorted(map(str, clash))[0]} is both a parameter and a variable")
        self.parameter_values = self._check_parameters(params)

        F, self.upper_sense = split_objective(upper_objective)
        f, self.lower_sense = split_objective(lower_objective)
        self.upper_objective_user = _expr(F, "upper objective")
        self.lower_objective_user = _expr(f, "lower objective")
        sign = {"min": 1, "max": -1}
        self.F = sign[self.upper_sense] * self.upper_objective_user
        self.f = sign[self.lower_sense] * self.lower_objective_user
        upper = normalise(upper_constraints, "upper")
        lower = normalise(lower_constraints, "lower")
        moved = {c.name for c in lower}
        upper, lower = _move_leader_only(upper, lower, set(self.follower))
        moved -= {c.name for c in lower}
        self.G = [c for c in upper if c.kind == "ineq"]
        self.H = [c for c in upper if c.kind == "eq"]
        self.g = [c for c in lower if c.kind == "ineq"]
        self.h = [c for c in lower if c.kind == "eq"]
        self.upper_constraints = upper
        self.lower_constraints = lower
        self._check_symbols()
        self._bind_multipliers(moved)
        # A follower objective without follower variables is a feasibility follower: every feasible
        # reply is optimal, and the optimistic leader chooses among them (valid, kept as declared).
        self.start = self._check_start(start or {})
        self.info: dict[str, Any] = dict(info or {})
        self.integer = self._check_integer(integer)

    def _check_integer(self, integer: Any) -> tuple[sp.Symbol, ...]:
        if integer is None:
            return ()
        out = _symbols(integer, "integer")
        for s in out:
            if s not in self.leader:
                role = "a follower" if s in self.follower else "not a"
                raise IntegerVariableError(
                    f"integer variable {s} is {role} leader variable; only leader variables can be declared "
                    f"integer (leader: {list(map(str, self.leader))}). Remove {s} from integer=[...]")
        return out

    def integer_indices(self) -> tuple[int, ...]:
        """Positions of the integer leader variables in x."""
        return tuple(self.leader.index(s) for s in self.integer)

    # -- validation -------------------------------------------------------
    def _check_parameters(self, params: Mapping[sp.Symbol, Any]) -> dict[sp.Symbol, float]:
        out = {}
        for s, v in params.items():
            out[s] = float(finite_vector([v], 1, f"parameter {s}")[0])
        return out

    def _check_start(self, start: Mapping[sp.Symbol, Any]) -> dict[sp.Symbol, float]:
        known = set(self.leader) | set(self.follower)
        out = {}
        for s, v in dict(start).items():
            if s not in known:
                raise ValueInputError(f"start gives a value for {s}, which is not a leader or follower variable")
            out[s] = float(finite_vector([v], 1, f"start value of {s}")[0])
        return out

    def _bind_multipliers(self, moved: set) -> None:
        """``multiplier_symbols``: each ``wb.multiplier`` symbol of F, G, H -> ("ineq", i) / ("eq", k)."""
        upper = [("upper objective", self.F)] + [(f"upper constraint {c.name!r}", c.expr) for c in self.upper_constraints]
        lower = [("lower objective", self.f)] + [(f"lower constraint {c.name!r}", c.expr) for c in self.lower_constraints]
        self.multiplier_symbols = bind_multipliers(upper, lower, [c.name for c in self.g], [c.name for c in self.h], moved)

    @property
    def uses_multipliers(self) -> bool:
        """Whether the leader's objective or constraints use follower multipliers (``wb.multiplier``)."""
        return bool(getattr(self, "multiplier_symbols", None))

    def _check_symbols(self) -> None:
        allowed = set(self.leader) | set(self.follower) | set(self.parameter_symbols)
        items = [("upper objective", self.F), ("lower objective", self.f)]
        items += [(f"upper constraint {c.name!r}", c.expr) for c in self.upper_constraints]
        items += [(f"lower constraint {c.name!r}", c.expr) for c in self.lower_constraints]
        for what, e in items:
            unknown = {s for s in e.free_symbols - allowed if not isinstance(s, MultiplierSymbol)}
            if unknown:
                s = sorted(map(str, unknown))[0]
                raise UnknownSymbolError(
                    f"{what} uses the symbol {s}, which is neither a leader, follower nor parameter "
                    f"symbol. Add {s} to leader=[...], follower=[...] or parameters={{{s}: value}}."
                )
            if e.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
                raise ModelError(f"{what} contains nan or infinity: {e}")

    # -- handy views ---------------------------------------------------------
    @property
    def n_x(self) -> int:
        return len(self.leader)

    @property
    def n_y(self) -> int:
        return len(self.follower)

    def nonsmooth_follower_terms(self) -> list[tuple[str, sp.Expr]]:
        """Non-smooth sub-expressions (Abs, Max, ...) in the follower's objective or constraints."""
        found = []
        items = [("lower objective", self.f)] + [(f"lower constraint {c.name!r}", c.expr) for c in self.lower_constraints]
        for what, e in items:
            for node in sp.preorder_traversal(e):
                if isinstance(node, NONSMOOTH) and node.free_symbols & set(self.follower):
                    found.append((what, node))
        return found

    def parameter_vector(self, parameters: Mapping[sp.Symbol, Any] | None = None) -> np.ndarray:
        """Parameter values in declaration order, with overrides checked and applied."""
        vals = dict(self.parameter_values)
        for s, v in dict(parameters or {}).items():
            if s not in vals:
                raise ValueInputError(f"{s} is not a declared parameter; declared: {list(map(str, vals))}")
            vals[s] = float(finite_vector([v], 1, f"parameter {s}")[0])
        return np.array([vals[s] for s in self.parameter_symbols], dtype=float)

    def point_vector(self, values: Mapping[sp.Symbol, Any] | Sequence[float] | None, which: str) -> np.ndarray:
        """A leader or follower point as a vector, from a dict keyed by symbols or a sequence."""
        syms = self.leader if which == "leader" else self.follower
        if values is None:
            return np.array([self.start.get(s, 0.0) for s in syms])
        if isinstance(values, Mapping):
            extra = set(values) - set(syms)
            if extra:
                raise ValueInputError(f"{sorted(map(str, extra))[0]} is not a {which} variable")
            missing = [s for s in syms if s not in values]
            if missing:
                raise ValueInputError(f"{which} point misses a value for {missing[0]}")
            return finite_vector([values[s] for s in syms], len(syms), f"{which} point")
        return finite_vector(values, len(syms), f"{which} point")

    def start_vectors(self, start: Mapping[sp.Symbol, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(x0, y0) from a ``start=`` mapping over the declared start: given values override,
        missing ones keep the declared start (or 0). A symbol that is not a variable is an error."""
        start = dict(start or {})
        known = set(self.leader) | set(self.follower)
        for s, v in start.items():
            if s not in known:
                raise ValueInputError(f"start gives a value for {s}, which is not a leader or follower variable "
                                      f"of this problem (leader {list(map(str, self.leader))}, follower "
                                      f"{list(map(str, self.follower))})")
            finite_vector([v], 1, f"start value of {s}")
        x0 = np.array([float(start.get(s, self.start.get(s, 0.0))) for s in self.leader])
        y0 = np.array([float(start.get(s, self.start.get(s, 0.0))) for s in self.follower])
        return x0, y0

    def certify(self, point: Mapping[sp.Symbol, Any], parameters: Mapping | None = None,
                multipliers: Mapping[Any, float] | None = None, **options: Any) -> Any:
        """A :class:`~workbench.certify.Certificate` for a point you bring (e.g. from a paper).

        ``point`` maps every leader and follower symbol to its value; ``multipliers`` (optional)
        maps follower constraint names to multipliers in the README's sign convention. The
        certificate proves follower optimality (convexity + KKT residuals, or SCIP's global
        bound) or says why it cannot, and checks both levels' feasibility with absolute tolerances.
        """
        from ..certify import certify
        from ..lower import lower
        point = dict(point)
        x = self.point_vector({s: point.pop(s) for s in self.leader if s in point}, "leader")
        y = self.point_vector({s: point.pop(s) for s in self.follower if s in point}, "follower")
        if point:
            raise ValueInputError(f"the point gives a value for {sorted(map(str, point))[0]}, which is not a "
                                  "leader or follower variable")
        lam = mu = None
        if multipliers is not None:
            names_g, names_h = [c.name for c in self.g], [c.name for c in self.h]
            unknown = set(multipliers) - set(names_g) - set(names_h)
            if unknown:
                raise ValueInputError(f"no follower constraint named {sorted(map(str, unknown))[0]!r}; "
                                      f"follower constraints: {names_g + names_h}")
            lam = np.array([float(multipliers.get(n, 0.0)) for n in names_g])
            mu = np.array([float(multipliers.get(n, 0.0)) for n in names_h])
        return certify(lower(self), x, y, self.parameter_vector(parameters), lam, mu=mu, **options)

    def __repr__(self) -> str:
        return (f"BilevelProblem({self.name!r}, leader={list(self.leader)}, follower={list(self.follower)}, "
                f"{len(self.upper_constraints)} upper / {len(self.lower_constraints)} lower constraints)")

    # -- entry points to the later stages (imported lazily: data flows forward only) --
    def solve(self, method: str = "kkt", formulation: str = "optimistic", **options: Any) -> Any:
        """Solve the bilevel problem; ``method`` is "kkt" (default) or another registered route.

        Common options of the KKT route: ``relaxation`` ("scholtes", "fischer_burmeister",
        "kanzow_schwartz", "penalty"), ``parameters``, ``start``, ``n_starts``, ``time_limit``.
        ``formulation="pessimistic"`` solves min_x max_{y in Y*(x)} F instead.
        """
        from ..routes import route
        tl = options.get("time_limit")
        if tl is not None and not (isinstance(tl, (int, float)) and np.isfinite(tl) and tl > 0):
            raise ValueInputError(f"time_limit must be a positive number of seconds (or None), got {tl!r}")
        if options.get("start") is not None:
            self.start_vectors(options["start"])  # unknown symbols are an error, not silently ignored
        ints = getattr(self, "integer", ())  # the vectorised declaration shares this method
        if ints and (formulation != "optimistic" or method not in INTEGER_ROUTES):
            from ..errors import MethodError
            raise MethodError(
                f"the leader variable(s) {list(map(str, ints))} are integer, which method={method!r}"
                + (f" with formulation={formulation!r}" if formulation != "optimistic" else "")
                + f" does not honour; use method='milp' (linear problems) or method='global' (SCIP)")
        if getattr(self, "multiplier_symbols", None):  # only multiplier-aware routes (routes/shadow.py) can state such a leader
            from ..routes.shadow import solve_with_multipliers
            return solve_with_multipliers(self, method=method, formulation=formulation, **options)
        if formulation == "pessimistic":
            if method == "global":  # the scan is no proof; refused rather than answered without one
                from ..routes.global_route import refuse_pessimistic
                refuse_pessimistic()
            return route("pessimistic")(self, method=method, **options)
        if formulation != "optimistic":
            from ..errors import MethodError
            raise MethodError(f"formulation must be 'optimistic' or 'pessimistic', got {formulation!r}")
        return route(method)(self, **options)

    def follower_response(self, leader: Any, parameters: Mapping | None = None, **options: Any) -> Any:
        """The follower's optimal reply (point, multipliers, active set) at a leader point."""
        from ..sensitivity import follower_response
        return follower_response(self, leader, parameters=parameters, **options)

    def sensitivity(self, leader: Any, parameters: Mapping | None = None, wrt: Any = "leader", **options: Any) -> Any:
        """dy/dx, dlam/dx and the hypergradient from the follower's KKT system at a leader point."""
        from ..sensitivity import sensitivity
        return sensitivity(self, leader, parameters=parameters, wrt=wrt, **options)

    def reaction_map(self, **options: Any) -> Any:
        """Closed-form y*(x) as SymPy (Piecewise over active sets) when SymPy can find it."""
        from ..analysis import reaction_map
        return reaction_map(self, **options)

    def reduced_objective(self, **options: Any) -> Any:
        """F(x, y*(x)) symbolically where possible, and as a numeric callable."""
        from ..analysis import reduced_objective
        return reduced_objective(self, **options)

    def check_convexity(self, region: Any = None, **options: Any) -> Any:
        """Convexity verdict of the reduced objective over ``region``, with evidence."""
        from ..analysis import check_convexity
        return check_convexity(self, region, **options)

    def diagnose(self, result: Any = None, **options: Any) -> Any:
        """Explain in words what can go wrong at a point (spurious KKT points, CQ failures)."""
        from ..analysis import diagnose
        return diagnose(self, result, **options)

    def _repr_latex_(self) -> str:
        return latex_repr(self)
