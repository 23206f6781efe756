"""The follower's side of a problem whose leader uses multipliers, for multiplier-unaware stages.

Certificates, follower solves and SCIP proofs only read the follower's pieces (f, g, h), the
leader's simple bounds and the leader's feasibility. ``follower_view(lp)`` is the same lowered
problem with F = 0 and only the leader constraints that do not use multipliers; those stages run
on it unchanged, and the multiplier-aware route adds the multiplier-dependent leader rows itself.
"""
from __future__ import annotations

from dataclasses import replace

import casadi as ca

from .lowered import LoweredProblem

_KEY = "follower_view"


def _rows_without(block, nu, names):
    keep = [k for k in range(int(block.numel())) if not ca.depends_on(block[k], nu)]
    sub = ca.vertcat(*[block[k] for k in keep]) if keep else type(block)(0, 1)
    return sub, [names[k] for k in keep], keep


def follower_view(lp: LoweredProblem) -> LoweredProblem:
    """``lp`` itself when its leader uses no multipliers, else the view described above (cached)."""
    if not lp.multiplier_dependent:
        return lp
    def make() -> LoweredProblem:
        nu = lp.nu_sym
        G, G_names, _ = _rows_without(lp.G, nu, lp.G_names)
        H, H_names, _ = _rows_without(lp.H, nu, lp.H_names)
        zero = type(lp.x).zeros(1, 1)
        return replace(lp, F=zero, G=G, H=H, G_names=G_names, H_names=H_names, cache={},
                       lam_sym=None, mu_sym=None)
    return lp.cached(_KEY, make)
