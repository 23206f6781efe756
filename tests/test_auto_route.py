"""method="auto": which route it takes, and that it says why (answers derived by hand)."""
import pytest
import sympy as sp

import workbench as wb
from test_core_seed import seed_kkt, seed_spurious


def test_nonconvex_follower_goes_to_the_global_route_first():
    # Follower y^6 - 7/8 y^4 + 1/8 y^2: f' = y (6 y^4 - 7/2 y^2 + 1/4) = 0 at y^2 = 1/2 or 1/12; f(1/sqrt2) =
    # 1/8 - 7/32 + 1/16 = -1/32 is the global minimum (f(1/sqrt12) > 0 = f(0)), for every x. So F = x^2 + 1/2,
    # minimal at x = 0: the global optimum 1/2, which SCIP's route proves (the follower is not convex).
    r = seed_spurious().solve(method="auto")
    assert r.status == "optimal" and r.optimality == "global"
    assert r.upper_value == pytest.approx(0.5, abs=1e-6)
    assert r.info["route"].startswith("global") and "not shown convex" in r.info["route"]


def test_convex_follower_goes_to_the_kkt_route():
    # The seed's KKT example has a convex QP follower: no global attempt, the KKT route's proof is "convex".
    r = seed_kkt().solve(method="auto")
    assert r.status == "optimal" and r.certificate.proof == "convex"
    assert r.info["route"].startswith("kkt") and "global route tried" not in r.info["route"]
