"""Finite-difference check of a :class:`Sensitivity` by re-solving the follower."""
from __future__ import annotations

from typing import Any

import numpy as np

from .response import follower_response


def _errors(exact: np.ndarray, fd: np.ndarray) -> tuple[float, float]:
    ok = np.isfinite(exact)
    if not ok.any():
        return float("nan"), float("nan")
    diff = np.abs(exact[ok] - fd[ok])
    return float(diff.max()), float((diff / np.maximum(1.0, np.abs(fd[ok]))).max())


def finite_difference_check(s: Any, h: float = 1e-6) -> dict[str, Any]:
    """Central differences of y*, the multipliers and F(z, y*(z)) against the analytic values.

    Returns max absolute and relative (|err| / max(1, |fd|)) errors, and the FD matrices.
    NaN entries of the analytic result (undefined derivatives) are not compared.
    """
    r, lp = s.response, s.lp
    n_x = lp.n_x
    ncol = s.columns.size
    fd_y = np.zeros((lp.n_y, ncol))
    fd_l = np.zeros((s.n_constraints, ncol))
    fd_F = np.zeros(ncol)
    for j, c in enumerate(s.columns):
        vals = []
        for sign in (1.0, -1.0):
            z = np.concatenate([r.x, r.p])
            z[c] += sign * h
            fr = follower_response(s.problem, z[:n_x], parameters=z[n_x:], start=r.y, tol=r.tol)
            F = float(lp.evaluate("upper_objective", fr.x, fr.y, fr.p)[0])
            vals.append((fr.y, np.concatenate([fr.lam, fr.mu]), F))
        fd_y[:, j] = (vals[0][0] - vals[1][0]) / (2 * h)
        fd_l[:, j] = (vals[0][1] - vals[1][1]) / (2 * h)
        fd_F[j] = (vals[0][2] - vals[1][2]) / (2 * h)
    out: dict[str, Any] = {}
    out["dy_abs"], out["dy_rel"] = _errors(s.dy_dx, fd_y)
    if s.status == "licq_fails":  # dlam is a minimum-norm element of a set; the FD path picks another
        out["dlam_abs"] = out["dlam_rel"] = float("nan")
    else:
        out["dlam_abs"], out["dlam_rel"] = _errors(s.dlam_dx, fd_l)
    out["hyper_abs"], out["hyper_rel"] = _errors(s.hypergradient, fd_F)
    out["max_abs"] = float(np.nanmax([out["dy_abs"], out["dlam_abs"], out["hyper_abs"]]))
    out["max_rel"] = float(np.nanmax([out["dy_rel"], out["dlam_rel"], out["hyper_rel"]]))
    out.update(fd_dy_dx=fd_y, fd_dlam_dx=fd_l, fd_hypergradient=fd_F, h=h)
    return out
