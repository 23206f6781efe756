"""Solve a :class:`~workbench.reformulate.program.SingleLevelProgram` globally with SCIP (PySCIPOpt).

The program's CasADi expressions are recorded once as an SX tape (``lower.casadi2scip``) and
replayed with every w_i a SCIP variable, so SCIP sees the exact expression graph (polynomials as
polynomials, exp/log/sin/... as its own expression handlers) and bounds it by spatial
branch-and-bound. SOS1 pairs become SCIP SOS1 constraints (branching on the disjunction, no big-M).
A nonlinear objective is moved to an epigraph row t >= objective (scaled by 100 so that the 1e-9
feasibility tolerance on it is 1e-11 in objective units).

SCIP's dual bound is valid only inside the variable box and up to SCIP's floating-point
tolerances; the returned point is re-evaluated by the caller. ``seed`` != 0 shifts SCIP's random
seeds and permutes the variables (``randomization/randomseedshift``, ``permutationseed``,
``permutevars``): a second solve with another seed is the cross-check for answers near a tolerance.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np

from ..errors import MethodError, UnsupportedExpressionError
from ..lower.casadi2scip import Unsupported, record_function
from ..reformulate.program import SingleLevelProgram

FEASTOL = 1e-9
EPIGRAPH_SCALE = 100.0


@dataclass(frozen=True)
class ScipSolution:
    """One SCIP solve of a program: SCIP's status word, its best point, primal and dual bound."""

    status: str                 # SCIP's getStatus(): "optimal", "infeasible", "timelimit", ...
    w: np.ndarray | None
    primal: float
    dual: float
    nodes: int
    time_s: float
    seed: int
    message: str = ""

    @property
    def optimal(self) -> bool:
        return self.status == "optimal"

    @property
    def gap(self) -> float:
        return self.primal - self.dual if math.isfinite(self.primal) and math.isfinite(self.dual) else math.inf


def _require_scip() -> Any:
    try:
        import pyscipopt
    except ImportError:  # pragma: no cover - depends on the environment
        raise MethodError("method='global' needs PySCIPOpt (pip install pyscipopt)") from None
    return pyscipopt


def _tape(prog: SingleLevelProgram) -> Any:
    key = "_scip_tape"
    tape = prog.info.get(key)
    if tape is None:
        fn = ca.Function("program", [prog.w, prog.p],
                         [ca.densify(prog.objective), ca.densify(prog.eq), ca.densify(prog.ineq)])
        tape = record_function(fn, ("obj", "eq", "ineq"), "program")
        prog.info[key] = tape  # the program is frozen, its info dict is the cache
    return tape


def build_model(prog: SingleLevelProgram, seed: int = 0, feastol: float = FEASTOL) -> tuple[Any, list[Any]]:
    """The SCIP model of ``prog`` (see module docstring) and its variables in w's order."""
    ps = _require_scip()
    m = ps.Model("program")
    m.hideOutput()
    integer = set(prog.integer)
    vs = []
    for i in range(prog.n):
        lo = None if not np.isfinite(prog.lb[i]) else float(prog.lb[i])
        hi = None if not np.isfinite(prog.ub[i]) else float(prog.ub[i])
        vs.append(m.addVar(name=f"w{i}", lb=lo, ub=hi, vtype="I" if i in integer else "C"))
    vals = _tape(prog).replay_inputs([vs, list(np.asarray(prog.p_value, float))], ("obj", "eq", "ineq"))
    for kind, rows, labels in (("eq", vals["eq"], prog.eq_names), ("ineq", vals["ineq"], prog.ineq_names)):
        for k, e in enumerate(rows):
            label = labels[k] if k < len(labels) else f"{kind}[{k}]"
            if isinstance(e, Unsupported):
                raise UnsupportedExpressionError(
                    f"the program row {label} uses the operation {e.op!r}, which SCIP cannot represent; "
                    "use method='kkt' instead")
            if isinstance(e, float):
                bad = abs(e) > FEASTOL if kind == "eq" else e < -FEASTOL
                if bad or math.isnan(e):
                    m.addCons(0 * vs[0] >= 1, name=f"violated_constant_{label}")  # SCIP then proves infeasible
                continue
            m.addCons(e == 0 if kind == "eq" else e >= 0, name=f"{kind}{k}")
    f = vals["obj"][0]
    if isinstance(f, Unsupported):
        raise UnsupportedExpressionError(f"the upper objective uses the operation {f.op!r}, which SCIP cannot "
                                         "represent; use method='kkt' instead")
    if isinstance(f, float):
        m.setObjective(0 * vs[0] if vs else 0, "minimize")
        m.addObjoffset(f)
    else:
        from pyscipopt.scip import Expr
        if isinstance(f, Expr) and f.degree() <= 1:
            m.setObjective(f, "minimize")
        else:
            t = m.addVar(name="t", lb=None, ub=None)
            m.addCons(EPIGRAPH_SCALE * (t - f) >= 0, name="epigraph")
            m.setObjective(t, "minimize")
    for a, b in prog.sos1:
        m.addConsSOS1([vs[a], vs[b]])
    m.setParam("numerics/feastol", float(feastol))
    m.setParam("numerics/dualfeastol", 1e-7)  # SCIP's default; tighter only makes SoPlex complain
    if seed:
        m.setParam("randomization/randomseedshift", int(seed))
        m.setParam("randomization/permutationseed", int(seed))
        m.setParam("randomization/permutevars", True)
    return m, vs


def solve_program(prog: SingleLevelProgram, *, time_limit: float = 60.0, seed: int = 0,
                  abs_gap: float = 1e-9, rel_gap: float = 1e-9, feastol: float = FEASTOL,
                  objlimit: float | None = None) -> ScipSolution:
    """Solve ``prog`` to global optimality (SCIP closes primal - dual to ``abs_gap`` or ``rel_gap``).

    With ``objlimit`` only points with objective below it are sought: "infeasible" then means no
    feasible point has objective < objlimit (a proof that an incumbent of that value is optimal)."""
    t0 = time.perf_counter()
    m, vs = build_model(prog, seed, feastol)
    m.setParam("limits/time", max(float(time_limit), 0.1))
    m.setParam("limits/absgap", float(abs_gap))
    m.setParam("limits/gap", float(rel_gap))
    if objlimit is not None and math.isfinite(objlimit):
        m.setObjlimit(float(objlimit))
    try:
        with quiet_soplex():
            m.optimize()
    except Exception as exc:  # SCIP errors surface as generic exceptions from the Cython layer
        return ScipSolution("error", None, math.inf, -math.inf, 0, time.perf_counter() - t0, seed,
                            f"SCIP raised {type(exc).__name__}: {exc}")
    status = str(m.getStatus())
    if status == "gaplimit":
        status = "optimal"  # closed to the requested tolerance
    w = None
    if m.getNSols() > 0:
        sol = m.getBestSol()
        w = np.array([m.getSolVal(sol, v) for v in vs], dtype=float)
    primal = float(m.getPrimalbound()) if w is not None else math.inf
    dual = float(m.getDualbound())
    if status == "infeasible":
        dual = math.inf
    return ScipSolution(status, w, primal, dual, int(m.getNTotalNodes()), time.perf_counter() - t0, seed,
                        f"SCIP status {status}")


_NOISE = "without GMP"


@contextlib.contextmanager
def quiet_soplex() -> Any:
    """SoPlex writes "Cannot set ... tolerance to small value ... without GMP" to the C-level stderr each
    time SCIP tightens an LP tolerance below 1e-10 (hideOutput does not reach it). fd 2 is sent to a
    temporary file for the solve and every other line is written back to stderr afterwards."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # no real stderr (some notebook front ends)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            keep = [ln for ln in tmp.read().decode(errors="replace").splitlines(True) if _NOISE not in ln]
            if keep:
                sys.stderr.write("".join(keep))


def solve_retrying(prog: SingleLevelProgram, *, time_limit: float, seed: int, gap: float) -> ScipSolution:
    """``solve_program`` closing the gap to ``gap`` (absolute and relative); when SCIP's LP solver gives
    up ("error"), once more with another seed and variable permutation."""
    sol = solve_program(prog, time_limit=time_limit, seed=seed, rel_gap=gap, abs_gap=gap)
    if sol.status == "error":
        sol = solve_program(prog, time_limit=time_limit, seed=seed + 7, rel_gap=gap, abs_gap=gap)
    return sol


def slater_cq(lp: Any, p: np.ndarray, cq: Any, time_limit: float) -> Any:
    """The follower CQ ``cq`` ("convex_fixed_set": x-free, concave nonlinear rows) settled by a Slater point:
    max t s.t. g_i >= t on the nonlinear rows (``reformulate.global_kkt.slater_program``) by SCIP; t > 0 holds."""
    from ..reformulate.global_kkt import FollowerCQ, slater_program
    sol = solve_program(slater_program(lp, p, cq.nonlinear_rows, None), time_limit=time_limit)
    if sol.status == "optimal" and sol.primal < -1e-7:  # max t = -primal > 0: a strictly feasible point
        return FollowerCQ("convex_fixed_set", f"follower constraints independent of x and concave in y, with a "
                          f"Slater point (min_i g_i = {-sol.primal:.3g} > 0 over the nonlinear rows)")
    return FollowerCQ(None, "follower constraints concave in y but no Slater point was found "
                      f"(SCIP: {sol.status}, max min_i g_i = {-sol.primal:.3g})")
