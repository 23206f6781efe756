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
from .kkt import kkt_function
from .response import follower_solver


def _sym(lp: Any, name: str, n: int) -> Any:
    return (ca.SX if isinstance(lp.y, ca.SX) else ca.MX).sym(name, n)


def map_function(s: Any, name: str = "sensitivity_map") -> ca.Function:
    """Function (x, p, y, lam) -> (dy_dz, dlam_dz) with the current active set fixed.

    ``lam`` is the full multiplier vector [lam_g; mu_h] in our sign convention.
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
    return ca.Function(name, [x, p, y, lam], [X[:n, :], dlam],
                       ["x", "p", "y", "lam"], ["dy_dz", "dlam_dz"])


def to_casadi(s: Any) -> ca.Function:
    """Function (x, p) -> (y, lam, dy_dz, dlam_dz): the follower solve (nlpsol, started at the
    current reply) followed by the sensitivity map of the current active set."""
    lp = s.lp
    ng, nh = int(lp.g.numel()), int(lp.h.numel())
    solver = follower_solver(lp).solver.solver
    x, p = ca.MX.sym("x", lp.n_x), ca.MX.sym("p", lp.n_p)
    lbg = np.concatenate([np.zeros(ng), np.zeros(nh)])
    ubg = np.concatenate([np.full(ng, np.inf), np.zeros(nh)])
    sol = solver(x0=s.response.y, p=ca.vertcat(x, p), lbg=lbg, ubg=ubg)
    y, lam = sol["x"], -sol["lam_g"]
    dy, dlam = map_function(s)(x, p, y, lam)
    return ca.Function("follower_sensitivity", [x, p], [y, lam, dy, dlam],
                       ["x", "p"], ["y", "lam", "dy_dz", "dlam_dz"])


def export_function(problem: Any, leader: Any, parameters: Any = None, wrt: Any = "leader",
                    **options: Any) -> ca.Function:
    """Shortcut: the sensitivity map at a leader point as a CasADi Function (see :func:`to_casadi`)."""
    from .sensitivity import sensitivity
    return to_casadi(sensitivity(problem, leader, parameters=parameters, wrt=wrt, **options))


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
