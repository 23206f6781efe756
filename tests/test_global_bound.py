"""r.bound / r.gap on every route (certify/bound.py), computed lazily, checked against hand-derived bounds."""
import numpy as np
import pytest
import sympy as sp

import workbench as wb

x, y = sp.symbols("x y", real=True)


def double_well():
    # As in test_global: y*(x) = x, F(x) = (x^2 - 1)^2 + 3/10 x on [-2, 2]; start in the local well x ~ +1.
    return wb.BilevelProblem(leader=[x], follower=[y], upper_objective=(y ** 2 - 1) ** 2 + sp.Rational(3, 10) * x,
                             upper_constraints=[x >= -2, x <= 2], lower_objective=(y - x) ** 2,
                             start={x: 1.2, y: 1.2})


def test_kkt_route_gets_the_kkt_relaxation_bound_lazily():
    # The follower is unconstrained and convex: the KKT relaxation is exact, so its optimum is the global
    # minimum of F(x) = (x^2 - 1)^2 + 0.3 x, at the smallest root of 4x^3 - 4x + 0.3 (np.roots, by hand).
    F = lambda t: (t ** 2 - 1) ** 2 + 0.3 * t  # noqa: E731
    x_glob, x_loc = np.sort(np.real(np.roots([4, 0, -4, 0.3])))[[0, 2]]
    r = double_well().solve(method="kkt", n_starts=1, global_search=False)
    assert r.upper_value == pytest.approx(F(x_loc), abs=1e-6)       # the local well
    assert r.known_bound is None and "bound_source" not in r.info    # nothing computed yet
    assert r.bound == pytest.approx(F(x_glob), abs=1e-6)
    assert "KKT" in r.info["bound_source"] or "kkt" in r.info["bound_source"]
    assert r.gap == pytest.approx(F(x_loc) - F(x_glob), abs=1e-6)   # ~0.6


def test_high_point_bound_for_a_nonlinear_follower_constraint():
    # Follower min_y -y s.t. 1 - y^2 >= 0, -2 <= y <= 2: y* = 1 (not affine: no KKT relaxation). Leader
    # min x + y on [0, 1]: bilevel optimum F = 0 + 1 = 1. High-point relaxation: min x + y over x in [0, 1],
    # y in [-1, 1] = -1 (by hand), so bound -1 and gap 2.
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x + y, upper_constraints=[x >= 0, x <= 1],
                          lower_objective=-y, lower_constraints=[1 - y ** 2 >= 0, y >= -2, y <= 2])
    r = p.solve(method="kkt")
    assert r.upper_value == pytest.approx(1.0, abs=1e-6)
    assert r.bound == pytest.approx(-1.0, abs=1e-6)
    assert "high-point" in r.info["bound_source"]
    assert r.gap == pytest.approx(2.0, abs=1e-6)


def test_maximised_objective_gets_an_upper_bound():
    # Follower min_y y s.t. y >= x, y <= 3 (affine): y* = x. Leader max x + y on [0, 2]: optimum 4 at x = 2.
    # KKT relaxation = the bilevel problem here (y = x forced by optimality): bound 4 from above (by hand).
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=wb.Maximize(x + y),
                          upper_constraints=[x >= 0, x <= 2], lower_objective=y,
                          lower_constraints=[y - x >= 0, 3 - y >= 0])
    r = p.solve(method="kkt")
    assert r.upper_value == pytest.approx(4.0, abs=1e-6) and r.bound == pytest.approx(4.0, abs=1e-6)
    assert r.gap == pytest.approx(0.0, abs=1e-6)


def test_route_bounds_are_kept_and_compute_bound_recomputes():
    # The global route's own bound (SCIP's dual bound, -3/4 by hand: see test_global_multipliers) is kept.
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=(x - sp.Rational(1, 2)) ** 2 - y,
                          upper_constraints=[x >= 0, x <= 1], lower_objective=-y,
                          lower_constraints=[y >= 0, x - y >= 0])
    r = p.solve(method="global")
    assert r.known_bound == pytest.approx(-0.75, abs=1e-6) and "bound_source" not in r.info
    assert r.compute_bound(time_limit=2.0) == pytest.approx(-0.75, abs=1e-6)   # the KKT relaxation: same value
    assert "bound_source" in r.info


def test_no_bound_inside_an_assumed_box():
    # test_core_seed's seed_kkt: y >= x + 1, y >= 0 leave y unbounded above and F = (x-1)^2 + (y-1)^2 is
    # nonlinear in y, so SCIP would need an assumed box for y: no bound is claimed, and the reason names y.
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_core_seed import seed_kkt
    r = seed_kkt().solve(method="kkt")
    assert r.upper_value == pytest.approx(0.5, abs=1e-6)   # test_core_seed's hand derivation
    assert r.bound is None and r.gap is None
    assert "no derived bound for" in r.info["bound_source"] and "y" in r.info["bound_source"]


def test_an_uncomputed_bound_survives_pickling():
    # Results cross process boundaries (multistart, sweeps): "not computed" must stay "not computed".
    import pickle
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x + y, upper_constraints=[x >= 0, x <= 1],
                          lower_objective=-y, lower_constraints=[y >= 0, x - y >= 0])
    r = p.solve(method="kkt")
    r2 = pickle.loads(pickle.dumps(r))
    assert r2.known_bound is None
    # y* = x, F = 2x on [0, 1]: the KKT relaxation (exact here) gives the bound 0 (by hand)
    assert r2.bound == pytest.approx(0.0, abs=1e-7)
