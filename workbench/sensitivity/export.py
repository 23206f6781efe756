"""The sensitivity map as CasADi Functions and as generated C code.

For the active set fixed at the current point, (x, p, y, lam) -> (dy/dz, dlam/dz)
is an explicit function (a symbolic linear solve of the KKT matrix), so it can be
code-generated and compiled without Ipopt. ``to_casadi`` wraps the follower's
``nlpsol`` in front of it: (x, p) -> (y, lam, dy/dz, dlam/dz).
"""
from __future__ import annotations

import os
from typing import Any

import casadi as ca
import numpy as np

from ..errors import MethodError
from .kkt_matrix import kkt_function
from ..solve import FollowerSolver
from .threads import BUILD_LOCK


def _sym(lp: Any, name: str, n: int) -> Any:
    return (ca.SX if isinstance(lp.y, ca.SX) else ca.MX).sym(name, n)


VALID_TOL = 1e-6  # KKT residual and activity margin for ``valid`` (absolute, times max(1, |grad f|))


def _valid(lp: Any, out: Any, lam: Any, mu: Any, active: list[int], ng: int) -> Any:
    """1 when (y, lam, mu) is a KKT point whose active set is the one the map was built on, else 0.

    Conditions: |grad_y L|, |h| <= tol; built-active rows: |g_i| <= tol and lam_i > tol (strongly
    active); other rows: g_i > tol and |lam_i| <= tol. Outside that region the follower's reply
    is on another branch (or infeasible) and this map's derivatives are not its derivatives.
    """
    tol = VALID_TOL * ca.fmax(1.0, ca.mmax(ca.fabs(out["grad"] + ca.mtimes(out["Jg_y"].T, lam)
                                                    + ca.mtimes(out["Jh_y"].T, mu))))
    conds = [ca.mmax(ca.fabs(out["grad"])) <= tol]
    if out["h"].numel():
        conds.append(ca.mmax(ca.fabs(out["h"])) <= tol)
    for i in range(ng):
        g_i, l_i = out["g"][i], lam[i]
        conds += [ca.fabs(g_i) <= tol, l_i > tol] if i in active else [g_i > tol, ca.fabs(l_i) <= tol]
    v = conds[0]
    for c in conds[1:]:
        v = ca.logic_and(v, c)
    return v


def map_function(s: Any, name: str = "sensitivity_map") -> ca.Function:
    """Function (x, p, y, lam) -> (dy_dz, dlam_dz, valid): the derivative map of ONE active set.

    ``lam`` is the full multiplier vector [lam_g; mu_h] in our sign convention. The formulas
    hold only where the follower's active set is the one at the build point: ``valid`` is
    1.0 when (y, lam) is a KKT point with that active set (residual and activity checked,
    see :data:`VALID_TOL`), else 0.0 and the derivative outputs are NaN.
    """
    if s.status not in ("regular",):
        raise MethodError(f"the sensitivity map can only be exported at a regular point; status is {s.status!r}")
    lp = s.lp
    ng, nh, n = int(lp.g.numel()), int(lp.h.numel()), lp.n_y
    x, p, y, lam = _sym(lp, "x", lp.n_x), _sym(lp, "p", lp.n_p), _sym(lp, "y", n), _sym(lp, "lam", ng + nh)
    out = kkt_function(lp)(x=x, y=y, p=p, lam=lam[:ng], mu=lam[ng:])
    act = [int(i) for i in np.flatnonzero(s.rows)]
    cols = [int(c) for c in s.columns]
    J = ca.vertcat(out["Jg_y"][act, :], out["Jh_y"])
    Cz = ca.vertcat(out["Jg_z"][act, :], out["Jh_z"])[:, cols]
    m = J.size1()
    K = ca.blockcat([[out["H"], J.T], [J, ca.DM.zeros(m, m)]]) if m else out["H"]
    R = -ca.vertcat(out["L_yz"][:, cols], Cz)
    X = ca.solve(K, R) if isinstance(K, ca.SX) else ca.solve(K, R, "qr")
    dnu = -X[n:, :]
    dlam = ca.MX.zeros(ng + nh, len(cols)) if isinstance(X, ca.MX) else ca.SX.zeros(ng + nh, len(cols))
    for k, i in enumerate(act):
        dlam[i, :] = dnu[k, :]
    for k in range(nh):
        dlam[ng + k, :] = dnu[len(act) + k, :]
    valid = _valid(lp, out, lam[:ng], lam[ng:], act, ng)
    nan = ca.DM.nan(1, 1)
    dy_out = ca.if_else(valid, X[:n, :], nan * ca.DM.ones(n, len(cols)), True)
    dlam_out = ca.if_else(valid, dlam, nan * ca.DM.ones(ng + nh, len(cols)), True)
    return ca.Function(name, [x, p, y, lam], [dy_out, dlam_out, ca.if_else(valid, 1.0, 0.0)],
                       ["x", "p", "y", "lam"], ["dy_dz", "dlam_dz", "valid"])


def to_casadi(s: Any) -> ca.Function:
    """Function (x, p) -> (y, lam, dy_dz, dlam_dz, valid): the follower solve (nlpsol, started at
    the current reply) followed by the sensitivity map of ONE active set, the current one.

    Where the reply at (x, p) has another active set, is degenerate, or the follower is
    infeasible, ``valid`` is 0.0 and dy_dz, dlam_dz are NaN (see :func:`map_function`).
    """
    lp = s.lp
    ng, nh = int(lp.g.numel()), int(lp.h.numel())
    with BUILD_LOCK:  # a private nlpsol: the exported Function shares no memory with our solves
        solver = FollowerSolver(lp, tight=True).solver.solver
    x, p = ca.MX.sym("x", lp.n_x), ca.MX.sym("p", lp.n_p)
    lbg = np.concatenate([np.zeros(ng), np.zeros(nh)])
    ubg = np.concatenate([np.full(ng, np.inf), np.zeros(nh)])
    sol = solver(x0=s.response.y, p=ca.vertcat(x, p), lbg=lbg, ubg=ubg)
    y, lam = sol["x"], -sol["lam_g"]
    dy, dlam, valid = map_function(s)(x, p, y, lam)
    return ca.Function("follower_sensitivity", [x, p], [y, lam, dy, dlam, valid],
                       ["x", "p"], ["y", "lam", "dy_dz", "dlam_dz", "valid"])


def codegen(s: Any, directory: str, name: str = "sensitivity_map") -> str:
    """Write C code of the sensitivity map; returns the path of the .c file.

    Compile with e.g. ``gcc -shared -fPIC -O2 file.c -o lib.so`` and load with
    ``casadi.external(name, lib)`` or call ``name`` from C.
    """
    f = map_function(s, name)
    os.makedirs(directory, exist_ok=True)
    cg = ca.CodeGenerator(f"{name}.c", {"with_header": True})
    cg.add(f)
    cwd = os.getcwd()
    try:
        os.chdir(directory)
        cg.generate()
    finally:
        os.chdir(cwd)
    return os.path.join(directory, f"{name}.c")
