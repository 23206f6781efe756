"""One status vocabulary for every route, in named groups (after CVXPY's ``settings.py``).

A route's answer is one :class:`Status`. ``Status`` is a ``str`` Enum, so
``r.status == "optimal"`` keeps working. The groups say what a user may read:

* ``SOLUTION_PRESENT`` — a point exists (``r.leader``, ``r.follower``):
  ``optimal`` (both levels feasible with absolute tolerances, the leader inside its
  simple bounds exactly, follower optimality *proven*: proof ``convex`` or ``global``),
  ``not_certified`` (a point, but no proof; the reasons are in ``r.certificate.reasons``),
  ``not_attained`` (the infimum is approached but not attained; the point is the best
  exact one seen, ``r.info["infimum"]`` holds the limit).
* ``INF_OR_UNB`` — ``infeasible``, ``unbounded``: no point, and the solver says why.
* ``ERROR`` — ``time_limit`` (the limit stopped the search before a proof),
  ``solver_failed``.

Solver details (the solver's own status text, iterations, times) live in
:class:`SolverStats`, never in the status word.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Status(str, Enum):
    """The status of a bilevel result (see module docstring)."""

    OPTIMAL = "optimal"
    NOT_CERTIFIED = "not_certified"
    NOT_ATTAINED = "not_attained"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    TIME_LIMIT = "time_limit"
    SOLVER_FAILED = "solver_failed"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def has_point(self) -> bool:
        return self in SOLUTION_PRESENT


SOLUTION_PRESENT = frozenset({Status.OPTIMAL, Status.NOT_CERTIFIED, Status.NOT_ATTAINED})
INF_OR_UNB = frozenset({Status.INFEASIBLE, Status.UNBOUNDED})
ERROR = frozenset({Status.TIME_LIMIT, Status.SOLVER_FAILED})
FAILED = INF_OR_UNB | ERROR

#: How follower optimality at the returned leader point was established.
PROOFS = ("convex", "global", "sampled", "none")

_IPOPT = {
    "Infeasible_Problem_Detected": Status.INFEASIBLE,
    "Diverging_Iterates": Status.UNBOUNDED,
    "Maximum_CpuTime_Exceeded": Status.TIME_LIMIT,
    "Maximum_WallTime_Exceeded": Status.TIME_LIMIT,
}
_HIGHS = {1: Status.TIME_LIMIT, 2: Status.INFEASIBLE, 3: Status.UNBOUNDED, 4: Status.SOLVER_FAILED}
_SCIP = {"infeasible": Status.INFEASIBLE, "unbounded": Status.UNBOUNDED, "inforunbd": Status.UNBOUNDED,
         "timelimit": Status.TIME_LIMIT, "nodelimit": Status.TIME_LIMIT, "gaplimit": Status.TIME_LIMIT}


def failure_from_ipopt(text: str | None) -> Status:
    """The failure status for an Ipopt return status that produced no usable point."""
    return _IPOPT.get(str(text), Status.SOLVER_FAILED)


def failure_from_highs(code: int) -> Status:
    """The failure status for a ``scipy.optimize.milp``/``linprog`` status code (0 is success)."""
    return _HIGHS.get(int(code), Status.SOLVER_FAILED)


def failure_from_scip(text: str | None) -> Status:
    """The failure status for a SCIP ``getStatus()`` word that produced no proof."""
    return _SCIP.get(str(text), Status.SOLVER_FAILED)


@dataclass(frozen=True)
class SolverStats:
    """What the last decisive solver call reported (after CVXPY's ``SolverStats``)."""

    solver_name: str
    status: str | None = None          # the solver's own status text, e.g. "Solve_Succeeded"
    iterations: int | None = None
    setup_time: float | None = None
    solve_time: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.solver_name}: {self.status}"
