"""What every problem declaration shares: the entry points to the later stages.

``BilevelProblem`` (SymPy) and ``VectorBilevelProblem`` (arrays) both inherit these, so a
route, a certificate or a sensitivity sees one :class:`~workbench.model.protocol.Problem`.
This is the facade (as CVXPY's ``Problem.solve``): it imports later stages lazily, inside
the methods, so the data still flow one way at import time.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import sympy as sp

from ..errors import MethodError, ValueInputError

if TYPE_CHECKING:  # pragma: no cover - types only
    from ..certify import Certificate
    from ..result import BilevelResult

INTEGER_ROUTES = ("milp", "global", "auto")  # auto: the MILP route, else the KKT route, which refuses integers


class ProblemBase:
    """solve / certify / follower_response / sensitivity for any declaration."""

    def solve(self, method: str = "kkt", formulation: str = "optimistic", **options: Any) -> "BilevelResult":
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

    def certify(self, point: Mapping[sp.Symbol, Any], parameters: Mapping | None = None,
                multipliers: Mapping[Any, float] | None = None, **options: Any) -> "Certificate":
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

