"""Finite-difference check of a :class:`Sensitivity` by re-solving the follower.

One-sided quotients (y(z + h e_j) - y(z))/h and (y(z) - y(z - h e_j))/h are formed
besides the central one: a central difference averages the two sides of a kink and
would "confirm" a derivative that does not exist. ``passed`` is False when the two
sides disagree, or when the analytic (one-sided) derivatives disagree with them.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import NotDifferentiable
from .response import follower_response


def _errors(exact: np.ndarray, fd: np.ndarray) -> tuple[float, float]:
    ok = np.isfinite(exact)
    if not ok.any():
        return float("nan"), float("nan")
    diff = np.abs(exact[ok] - fd[ok])
    return float(diff.max()), float((diff / np.maximum(1.0, np.abs(fd[ok]))).max())


def _nanmax(vals: list[float]) -> float:
    vals = [v for v in vals if np.isfinite(v)]
    return float(max(vals)) if vals else float("nan")


def finite_difference_check(s: Any, h: float = 1e-6, tol: float = 1e-4) -> dict[str, Any]:
    """Central and one-sided differences of y*, the multipliers and F(z, y*(z)).

    Returns max absolute and relative (|err| / max(1, |fd|)) errors against the central
    differences (where a two-sided derivative exists), ``sides_agree`` (right and left
    quotients of y* and F within ``tol`` relative), ``one_sided_rel`` (analytic one-sided
    derivatives against the quotients, at degenerate points), ``passed``, and the FD matrices.
    NaN entries of the analytic result (undefined derivatives) are not compared.
    """
    r, lp = s.response, s.lp
    n_x = lp.n_x
    ncol = s.columns.size
    base = (r.y, np.concatenate([r.lam, r.mu]), float(lp.evaluate("upper_objective", r.x, r.y, r.p, r.lam, r.mu)[0]))
    right = [np.zeros((lp.n_y, ncol)), np.zeros((s.n_constraints, ncol)), np.zeros(ncol)]
    left = [np.zeros((lp.n_y, ncol)), np.zeros((s.n_constraints, ncol)), np.zeros(ncol)]
    for j, c in enumerate(s.columns):
        for sign, out in ((1.0, right), (-1.0, left)):
            z = np.concatenate([r.x, r.p])
            z[c] += sign * h
            fr = follower_response(s.problem, z[:n_x], parameters=z[n_x:], start=r.y, tol=r.tol)
            F = float(lp.evaluate("upper_objective", fr.x, fr.y, fr.p, fr.lam, fr.mu)[0])
            for k, v in enumerate((fr.y, np.concatenate([fr.lam, fr.mu]), F)):
                out[k][..., j] = sign * (v - base[k]) / h
    fd_y, fd_l, fd_F = ((a + b) / 2 for a, b in zip(right, left))
    out: dict[str, Any] = {}
    scale = lambda a: np.maximum(1.0, np.abs(a))
    gap = max(float(np.max(np.abs(right[0] - left[0]) / scale(right[0]), initial=0.0)),
              float(np.max(np.abs(right[2] - left[2]) / scale(right[2]), initial=0.0)))
    out["sides_gap"] = gap
    out["sides_agree"] = bool(gap <= tol)
    try:
        dy, dlam, hyper = s.dy_dx, s.dlam_dx, s.hypergradient
        differentiable = True
    except NotDifferentiable:
        differentiable = False
        nan = np.full(1, np.nan)
        dy, dlam, hyper = nan, nan, nan
    if differentiable:
        out["dy_abs"], out["dy_rel"] = _errors(dy, fd_y)
        if s.status == "licq_fails":  # dlam is a minimum-norm element of a set; the FD path picks another
            out["dlam_abs"] = out["dlam_rel"] = float("nan")
        else:
            out["dlam_abs"], out["dlam_rel"] = _errors(dlam, fd_l)
        out["hyper_abs"], out["hyper_rel"] = _errors(hyper, fd_F)
    else:
        for key in ("dy", "dlam", "hyper"):
            out[f"{key}_abs"] = out[f"{key}_rel"] = float("nan")
    one = s.one_sided if s.status in ("weakly_active", "licq_fails") else None
    if one is not None:
        hg = s.one_sided_hypergradient
        out["one_sided_rel"] = _nanmax([_errors(one["+"], right[0])[1], _errors(one["-"], left[0])[1],
                                        _errors(hg["+"], right[2])[1], _errors(hg["-"], left[2])[1]])
    else:
        out["one_sided_rel"] = float("nan")
    out["max_abs"] = _nanmax([out["dy_abs"], out["dlam_abs"], out["hyper_abs"]])
    out["max_rel"] = _nanmax([out["dy_rel"], out["dlam_rel"], out["hyper_rel"]])
    analytic_ok = (not differentiable or not np.isfinite(out["max_rel"]) or out["max_rel"] <= tol) and \
        (not np.isfinite(out["one_sided_rel"]) or out["one_sided_rel"] <= tol)
    out["passed"] = bool(differentiable and out["sides_agree"] and analytic_ok)
    out.update(fd_dy_dx=fd_y, fd_dlam_dx=fd_l, fd_hypergradient=fd_F, h=h,
               fd_right={"dy": right[0], "dlam": right[1], "hypergradient": right[2]},
               fd_left={"dy": left[0], "dlam": left[1], "hypergradient": left[2]})
    return out
