"""Big-M values derived from the model, each with the reason it is valid.

Slack bound of follower constraint i: max g_i(x, y) over the high-point
relaxation {G >= 0, H = 0, g >= 0, h = 0}, an LP (``scipy.optimize.linprog``).
Every bilevel-feasible point lies in that region, so the bound is valid.

Dual bound of lam_i: the follower's dual feasible set D = {lam >= 0, mu :
A^T lam + E^T mu = c} does not depend on x when c, A, E are constant. At any x
where the follower has an optimum, its optimal duals form a nonempty face of D
(written in standard form, so pointed), and every such face contains a vertex
of D; any optimal dual is complementary to any optimal y. So restricting lam to
the box spanned by D's vertices keeps a KKT certificate for every bilevel
feasible point. The vertices are enumerated (bases of the ny x (ng + 2 nh)
system); the enumeration refuses when the number of bases is too large.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
from scipy.optimize import linprog

from ..errors import MethodError
from .linear import LinearBilevel


@dataclass
class RegionBounds:
    """Slack bounds of each follower inequality over the high-point relaxation."""

    upper: np.ndarray          # max g_i (inf when unbounded)
    lower: np.ndarray          # min g_i (clipped at 0 by g >= 0)
    feasible: bool
    message: str = ""
    points: list = field(default_factory=list)   # the LP solutions met on the way (x, y stacked)


def _relaxed_constraints(m: LinearBilevel, objective_cut: float | None = None) -> dict:
    A_ub = np.vstack([-m.G.A, -m.g.A]) if m.G.A.size or m.g.A.size else np.zeros((0, m.nx + m.ny))
    b_ub = np.concatenate([m.G.b, m.g.b])
    if objective_cut is not None:  # F(x, y) <= objective_cut
        A_ub = np.vstack([A_ub, m.F.A])
        b_ub = np.append(b_ub, objective_cut - m.F.b[0])
    A_ub, b_ub = (A_ub, b_ub) if A_ub.size else (None, None)
    A_eq = np.vstack([m.H.A, m.h.A]) if m.H.A.size or m.h.A.size else None
    b_eq = -np.concatenate([m.H.b, m.h.b]) if A_eq is not None else None
    n = m.nx + m.ny
    return dict(A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=[(None, None)] * n, method="highs")


def slack_bounds(m: LinearBilevel, objective_cut: float | None = None) -> RegionBounds:
    """max and min of every g_i over the high-point relaxation (one LP each), optionally cut by F <= value."""
    cons = _relaxed_constraints(m, objective_cut)
    ng = len(m.g.names)
    up, lo = np.full(ng, np.inf), np.zeros(ng)
    probe = linprog(m.F.A[0], **cons)
    if probe.status == 2:
        return RegionBounds(up, lo, False, "the high-point relaxation is infeasible: " + probe.message)
    points = [probe.x] if probe.status == 0 else []
    for i in range(ng):
        r = linprog(-m.g.A[i], **cons)
        if r.status == 0:
            up[i] = max(-r.fun + m.g.b[i], 0.0)
            points.append(r.x)
        r = linprog(m.g.A[i], **cons)
        if r.status == 0:
            lo[i] = max(r.fun + m.g.b[i], 0.0)
            points.append(r.x)
    return RegionBounds(up, lo, True, points=points)


def incumbent(m: LinearBilevel, points: list[np.ndarray]) -> tuple[float, np.ndarray] | None:
    """Best bilevel-feasible value found by fixing x at each point's leader part.

    At a fixed x the follower LP gives its value phi(x); the optimistic leader then
    minimises F over {y : g >= 0, h = 0, c.y <= phi(x), G >= 0, H = 0}. Both are LPs.
    """
    nx, ny = m.nx, m.ny
    Agx, Agy, Ahx, Ahy = m.g.A[:, :nx], m.g.A[:, nx:], m.h.A[:, :nx], m.h.A[:, nx:]
    best = None
    for pt in points:
        x = pt[:nx]
        free = [(None, None)] * ny
        eq = dict(A_eq=Ahy, b_eq=-(m.h.b + Ahx @ x)) if len(m.h.b) else {}
        fol = linprog(m.c_follower, A_ub=-Agy if len(m.g.b) else None,
                      b_ub=(m.g.b + Agx @ x) if len(m.g.b) else None, bounds=free, method="highs", **eq)
        if fol.status != 0:
            continue
        phi = fol.fun + 1e-9 * (1 + abs(fol.fun))
        A_ub = np.vstack([-Agy, -m.G.A[:, nx:], m.c_follower[None, :]])
        b_ub = np.concatenate([m.g.b + Agx @ x, m.G.b + m.G.A[:, :nx] @ x, [phi]])
        eqs = np.vstack([Ahy, m.H.A[:, nx:]])
        beq = -np.concatenate([m.h.b + Ahx @ x, m.H.b + m.H.A[:, :nx] @ x])
        lead = linprog(m.F.A[0, nx:], A_ub=A_ub, b_ub=b_ub, bounds=free, method="highs",
                       **(dict(A_eq=eqs, b_eq=beq) if len(beq) else {}))
        if lead.status != 0:
            continue
        value = float(m.F.A[0, :nx] @ x + lead.fun + m.F.b[0])
        if best is None or value < best[0]:
            best = (value, np.concatenate([x, lead.x]))
    return best


@dataclass
class DualBounds:
    """Componentwise range of lam (and |mu|) over the vertices of the dual feasible set."""

    lam_max: np.ndarray
    lam_min: np.ndarray
    mu_abs_max: np.ndarray
    n_vertices: int
    n_bases: int
    feasible: bool


def dual_vertex_bounds(m: LinearBilevel, max_bases: int = 200_000) -> DualBounds:
    """Enumerate the vertices of {z >= 0 : [A^T, E^T, -E^T] z = c} (see module docstring)."""
    A, E, c = m.Ay("g"), m.Ay("h"), m.c_follower
    ng, nh = A.shape[0], E.shape[0]
    M = np.hstack([A.T, E.T, -E.T]) if ng + nh else np.zeros((m.ny, 0))
    rank = np.linalg.matrix_rank(M) if M.size else 0
    if rank < m.ny:
        # keep independent rows; inconsistent rows mean D is empty
        _, _, piv = scipy.linalg.qr(M.T, pivoting=True) if M.size else (None, None, np.arange(m.ny))
        keep = np.sort(piv[:rank])
        sol = np.linalg.lstsq(M, c, rcond=None)[0] if M.size else np.zeros(0)
        if np.linalg.norm((M @ sol if M.size else 0) - c) > 1e-9 * (1 + np.linalg.norm(c)):
            empty = np.zeros(ng)
            return DualBounds(empty, empty, np.zeros(nh), 0, 0, False)
        M, c = M[keep], c[keep]
    ncol = M.shape[1]
    n_bases = math.comb(ncol, rank)
    if n_bases > max_bases:
        raise MethodError(
            f"bounding the follower duals needs {n_bases} bases of the dual feasible set (limit "
            f"max_bases={max_bases}); raise max_bases or use method='strong_duality'/'kkt'")
    zmax, zmin, count = np.zeros(ncol), np.full(ncol, np.inf), 0
    scale = 1.0 + np.abs(c).max() if c.size else 1.0
    for cols in itertools.combinations(range(ncol), rank):
        B = M[:, cols]
        if rank and abs(np.linalg.det(B)) < 1e-12:
            continue
        zb = np.linalg.solve(B, c) if rank else np.zeros(0)
        if np.any(zb < -1e-10 * scale):
            continue
        z = np.zeros(ncol)
        z[list(cols)] = np.maximum(zb, 0.0)
        zmax, zmin, count = np.maximum(zmax, z), np.minimum(zmin, z), count + 1
    if count == 0:
        empty = np.zeros(ng)
        return DualBounds(empty, empty, np.zeros(nh), 0, n_bases, False)
    mu_abs = np.maximum(zmax[ng:ng + nh], zmax[ng + nh:])
    return DualBounds(zmax[:ng], zmin[:ng], mu_abs, count, n_bases, True)


def qp_multiplier_bounds(m: LinearBilevel, max_bases: int = 20_000) -> DualBounds:
    """Multiplier bounds for a convex-QP follower, whose dual set moves with (x, y).

    At (x, y) the multipliers solve [A^T, E^T, -E^T] z = grad_y f(x, y), z >= 0; a nonempty set has
    a vertex z_B = M_B^{-1} grad_y f(x, y), affine in (x, y). So lam_i <= max over bases B of the LP
    max (z_B)_i over the high-point relaxation intersected with {z_B >= 0}; an unbounded LP gives inf.
    """
    A, E = m.Ay("g"), m.Ay("h")
    ng, nh = A.shape[0], E.shape[0]
    M = np.hstack([A.T, E.T, -E.T])
    R, r0 = m.grad.A, m.grad.b
    rank = int(np.linalg.matrix_rank(M)) if M.size else 0
    if 0 < rank < m.ny:
        keep = np.sort(scipy.linalg.qr(M.T, pivoting=True)[2][:rank])
        M, R, r0 = M[keep], R[keep], r0[keep]
    ncol = M.shape[1]
    n_bases = math.comb(ncol, rank)
    if n_bases > max_bases:
        raise MethodError(f"bounding the follower multipliers needs {n_bases} bases (limit max_bases={max_bases})")
    cons = _relaxed_constraints(m)
    lam_max, count = np.zeros(ng), 0
    for cols in itertools.combinations(range(ncol), rank):
        B = M[:, cols]
        if rank == 0 or abs(np.linalg.det(B)) < 1e-12:
            continue
        T = np.linalg.solve(B, np.hstack([R, r0[:, None]]))      # z_B = T[:, :-1] @ xy + T[:, -1]
        A_ub = np.vstack([cons["A_ub"], -T[:, :-1]]) if cons["A_ub"] is not None else -T[:, :-1]
        b_ub = np.concatenate([cons["b_ub"], T[:, -1]]) if cons["b_ub"] is not None else T[:, -1]
        feasible_basis = False
        for k, col in enumerate(cols):
            if col >= ng:
                continue
            r = linprog(-T[k, :-1], A_ub=A_ub, b_ub=b_ub, A_eq=cons["A_eq"], b_eq=cons["b_eq"],
                        bounds=cons["bounds"], method="highs")
            if r.status == 3:
                lam_max[col], feasible_basis = np.inf, True
            elif r.status == 0:
                lam_max[col], feasible_basis = max(lam_max[col], -r.fun + T[k, -1]), True
        count += feasible_basis
    return DualBounds(lam_max, np.zeros(ng), np.zeros(nh), count, n_bases, True)
