"""Plain result objects handed to the user (views and widgets are built on top)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import SolverFailure
from .printing import LatexPrintable, aligned, number, text
from .status import FAILED, INF_OR_UNB, SolverStats, Status
from .values import MultiplierMap, Point

if TYPE_CHECKING:  # annotations only
    from .model.protocol import Problem


class _Unset:
    """'The route gave no bound' (a singleton that survives pickling, e.g. results from worker processes)."""

    __slots__ = ()

    def __reduce__(self) -> str:
        return "_UNSET"

    def __repr__(self) -> str:
        return "<bound not computed>"


_UNSET = _Unset()


class _LazyBound:
    """``BilevelResult.bound``: the route's bound, else computed on first read (``compute_bound``)."""

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return _UNSET  # the dataclass default: "the route gave none"
        if obj.__dict__.get("_bound", _UNSET) is _UNSET:
            obj.compute_bound()
        return obj.__dict__["_bound"]

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__["_bound"] = value


@dataclass
class BilevelResult(LatexPrintable):
    """What ``BilevelProblem.solve`` returns.

    ``status`` is a :class:`~workbench.status.Status`: "optimal" only when the certificate
    holds a proof of follower optimality (``certificate.proof`` "convex" or "global") at an
    exactly feasible point; "not_certified" means a point without such a proof (see
    ``certificate.reasons``); "not_attained" means the infimum is not attained
    (``info["infimum"]``); "infeasible", "unbounded", "solver_failed" and "time_limit" mean
    there is no point, and reading ``leader``/``follower`` raises
    :class:`~workbench.errors.SolverFailure` carrying the solver's status.

    ``optimality`` says what is proven at the leader's level: "global" when the route
    proves it (MILP, SCIP), "local" otherwise (``info["leader_stationarity"]`` holds the
    single-level stationarity residual when the route has one). ``bound`` is a valid lower
    bound on the optimal F (upper for a maximised F): the route's, else computed on first read by
    ``certify.bound.relaxation_bound`` (SCIP, ~5 s at most; ``info["bound_source"]`` says how);
    ``gap`` = F - bound.
    """

    status: Status
    problem: Problem
    method: str
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    lam: np.ndarray | None = None
    mu: np.ndarray | None = None
    parameters: np.ndarray | None = None
    certificate: Any = None
    log: list[dict] = field(default_factory=list)
    solver_stats: SolverStats | None = None
    relaxation: str | None = None
    time_s: float = 0.0
    message: str = ""
    info: dict = field(default_factory=dict)
    optimality: str | None = None
    bound: float | None = _LazyBound()  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.status = Status(self.status)
        if self.optimality is None and self.status.has_point:
            self.optimality = "local"

    @property
    def ipopt_status(self) -> str | None:
        """Ipopt's own status text when Ipopt made the decisive call (else None); see ``solver_stats``."""
        s = self.solver_stats
        return s.status if s is not None and s.solver_name == "ipopt" else None

    def compute_bound(self, time_limit: float = 5.0) -> float | None:
        """(Re)compute ``bound`` from the KKT or high-point relaxation (``certify.bound``) under ``time_limit``."""
        self.__dict__["_bound"] = None
        if self.status in INF_OR_UNB or self.problem is None:
            return None
        from .certify.bound import relaxation_bound  # the result asks the certify stage; it never changes it
        rb = relaxation_bound(self.problem, self.parameters, time_limit=time_limit)
        self.__dict__["_bound"] = rb.value
        self.info["bound_source"] = rb.reason
        return rb.value

    @property
    def known_bound(self) -> float | None:
        """The bound if the route gave one or it was computed already (never starts a computation)."""
        v = self.__dict__.get("_bound", _UNSET)
        return None if v is _UNSET else v

    @property
    def gap(self) -> float | None:
        """F(x*, y*) - bound, when a valid lower bound is known."""
        if self.x is None or self.status in FAILED or self.bound is None:
            return None
        F = self.upper_value
        return max(F - self.bound if self.problem.upper_sense == "min" else self.bound - F, 0.0)

    def _solver_text(self) -> str:
        return str(self.solver_stats) if self.solver_stats is not None else "no solver"

    def _point(self) -> None:
        if self.x is None or self.status in FAILED:
            raise SolverFailure(
                f"no solution: status {self.status.value!r} ({self._solver_text()}). {self.message}".strip(),
                status=self.status.value, solver_status=None if self.solver_stats is None else self.solver_stats.status)

    @property
    def ok(self) -> bool:
        return self.status == "optimal"

    @property
    def point(self) -> Point:
        """The returned point with the follower's multipliers, as one value for the stages."""
        self._point()
        return Point(self.x, self.y, self.lam, self.mu)

    @property
    def leader(self) -> dict:
        self._point()
        return {s: float(v) for s, v in zip(self.problem.leader, self.x)}

    @property
    def follower(self) -> dict:
        self._point()
        return {s: float(v) for s, v in zip(self.problem.follower, self.y)}

    def _value(self, which: str) -> float:
        self._point()
        from .lower import lower_matrix  # the result reads the numeric model; it never changes it
        lp = lower_matrix(self.problem)   # a vector declaration's MX form: no SX graph built for one value
        v = float(lp.evaluate(f"{which}_objective", self.x, self.y, self.parameters, self.lam, self.mu)[0])
        sense = self.problem.upper_sense if which == "upper" else self.problem.lower_sense
        return -v if sense == "max" else v

    @property
    def upper_value(self) -> float:
        """F(x*, y*) in the user's sense (a maximised objective is reported as maximised)."""
        return self._value("upper")

    @property
    def lower_value(self) -> float:
        """f(x*, y*) in the user's sense."""
        return self._value("lower")

    @property
    def multipliers(self) -> MultiplierMap:
        self._point()
        names = [c.name for c in self.problem.g] + [c.name for c in self.problem.h]
        vals = np.concatenate([self.lam if self.lam is not None else [], self.mu if self.mu is not None else []])
        return MultiplierMap(names, vals)

    def sensitivity(self, wrt: str = "leader", **kwargs: Any) -> Any:
        """KKT sensitivities (dy/dx, dlam/dx, hypergradient) at this solution."""
        self._point()
        kwargs.setdefault("at", (self.y, self.lam, self.mu))  # this result's own reply, not a fresh solve
        return self.problem.sensitivity(self.leader, parameters=self._param_dict(), wrt=wrt, **kwargs)

    def _param_dict(self) -> dict:
        return {s: float(v) for s, v in zip(self.problem.parameter_symbols, self.parameters)}

    def summary(self) -> str:
        if self.x is None or self.status in FAILED:
            return f"{self.problem.name}: {self.status} ({self._solver_text()}) {self.message}"
        lines = [f"{self.problem.name}: {self.status} via {self.method}"
                 + (f"/{self.relaxation}" if self.relaxation else "") + f" in {self.time_s:.3g} s",
                 f"  leader   {self.leader}", f"  follower {self.follower}",
                 f"  F = {self.upper_value:.10g}, f = {self.lower_value:.10g}"]
        if self.certificate is not None:
            lines.append("  " + self.certificate.summary())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<BilevelResult {self.status}>\n{self.summary()}"

    def _latex(self, printer: Any) -> str:
        """Status and route, the point, both values, the multipliers by name, then the certificate."""
        from .reformulate.symbolic import kkt_system
        p = self.problem
        how = self.method + (f"/{self.relaxation}" if self.relaxation else "")
        head = r"\text{status} &: " + text(f"{self.status} ({how}, {self.time_s:.3g} s)")
        if self.x is None or self.status in FAILED:
            return aligned([head, r"& " + text(f"{self._solver_text()}. {self.message}".strip())])
        lines = [head]
        lines += [printer._print(s) + "^* &= " + number(v) for s, v in zip(p.leader, self.x)]
        lines += [printer._print(s) + "^* &= " + number(v) for s, v in zip(p.follower, self.y)]
        lines.append(r"F(x^*, y^*) &= " + number(self.upper_value))
        lines.append(r"f(x^*, y^*) &= " + number(self.lower_value))
        k = kkt_system(p)
        for m, v in zip(k.inequalities + k.equalities, self.multipliers.values()):
            lines.append(printer._print(m.symbol) + " &= " + number(v))
        body = aligned(lines)
        if self.certificate is not None:
            body = aligned([body + r" \qquad " + printer._print(self.certificate)])
        return body

    def plot_homotopy(self, fig: Any = None) -> Any:
        """eps against complementarity residual, objective and stationarity along the homotopy."""
        from .display import plot_homotopy
        return plot_homotopy(self, fig=fig)
