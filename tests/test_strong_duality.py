"""Strong-duality route: answers derived by hand next to each problem."""

import pytest
import sympy as sp

import workbench as wb

x, y, y1, y2 = sp.symbols("x y y1 y2", real=True)


def test_seed_lp():
    # Leader min -x - 2y, 0 <= x <= 4; follower min y s.t. y >= x - 2, 0 <= y <= 3.
    # By hand: y*(x) = max(x - 2, 0); F = 4 - 3x on [2, 4] -> x = 4, y = 2, F = -8.
    p = wb.BilevelProblem([x], [y], -x - 2 * y, y, upper_constraints=[x >= 0, x <= 4],
                          lower_constraints=[y >= x - 2, y >= 0, y <= 3])
    r = p.solve(method="strong_duality")
    assert r.status == "optimal" and r.certificate.passed
    assert r.upper_value == pytest.approx(-8.0, abs=1e-6)
    assert r.follower[y] == pytest.approx(2.0, abs=1e-6)
    # the right-hand side x - 2 multiplies the dual: b(x).lam is bilinear, and the result says so
    assert "nonconvex" in r.info["nonconvex"] and "right-hand sides depend on x" in r.info["nonconvex"]
    # dual of y >= x - 2 is 1 (c = 1 = lam0 when only that constraint is active)
    assert r.multipliers[0] == pytest.approx(1.0, abs=1e-6)


def test_bilinear_constraint_matrix():
    # Follower max y s.t. x*y <= 2, 0 <= y <= 3 with x in [1, 2]: y*(x) = 2/x.
    # Leader min -x - y = -x - 2/x: derivative -1 + 2/x^2 vanishes at sqrt(2) (a maximum, value
    # -2 sqrt 2 = -2.83); the minimum -3 is at both ends: (1, 2) and (2, 1).
    p = wb.BilevelProblem([x], [y], -x - y, -y, upper_constraints=[x >= 1, x <= 2],
                          lower_constraints=[x * y <= 2, y >= 0, y <= 3])
    r = p.solve(method="strong_duality", n_starts=6)
    assert r.status == "optimal" and r.upper_value == pytest.approx(-3.0, abs=1e-6)
    assert r.follower[y] == pytest.approx(2.0 / r.leader[x], abs=1e-6)
    assert "constraint matrix depends on x" in r.info["nonconvex"]
    with pytest.raises(wb.MethodError):   # the same problem is not linear: the MILP refuses
        p.solve(method="milp")


def test_equality_follower_and_dual_sign():
    # Follower min y1 + 2 y2 s.t. y1 + y2 = x, y >= 0 -> y = (x, 0); leader min x - 3 y2, x in [1, 3]
    # -> x = 1, F = 1. Multipliers (L = f - lam.g - mu.h, h = y1 + y2 - x): grad: 1 - mu - lam1 = 0,
    # 2 - mu - lam2 = 0 with lam1 = 0 (y1 > 0) -> mu = 1, lam2 = 1.
    p = wb.BilevelProblem([x], [y1, y2], x - 3 * y2, y1 + 2 * y2, upper_constraints=[x >= 1, x <= 3],
                          lower_constraints={"y1pos": y1 >= 0, "y2pos": y2 >= 0, "sum": sp.Eq(y1 + y2, x)})
    r = p.solve(method="strong_duality")
    assert r.status == "optimal" and r.upper_value == pytest.approx(1.0, abs=1e-6)
    assert r.multipliers["sum"] == pytest.approx(1.0, abs=1e-6)
    assert r.multipliers["y2pos"] == pytest.approx(1.0, abs=1e-6)


def test_rejects_nonlinear_follower_naming_expression_and_variable():
    p = wb.BilevelProblem([x], [y1, y2], x + y1, y1 + y2, upper_constraints=[x >= 0],
                          lower_constraints=[y1 >= 0, y2 ** 2 <= x])
    with pytest.raises(wb.MethodError, match=r"lower constraint 1 .* nonlinear in the follower variable y2"):
        p.solve(method="strong_duality")


@pytest.mark.parametrize("name", ["HuHuangZhang2009", "BenAyedBlair1990a"])
def test_bolib(name):
    # HuHuangZhang2009: -79/9 by hand (see test_milp.py); BenAyedBlair1990a: BOLIB's global -2.5,
    # reproduced by the enumeration in benchmarks/milp_linear.py.
    expected = {"HuHuangZhang2009": -79 / 9, "BenAyedBlair1990a": -2.5}[name]
    r = wb.bolib.load(name).solve(method="strong_duality")
    assert r.status == "optimal" and r.upper_value == pytest.approx(expected, abs=1e-6)


def test_convex_reformulation_when_follower_data_do_not_depend_on_x():
    # Follower min y1 + y2 s.t. y1 + y2 >= 1, y >= 0: its solution set is the segment y1 + y2 = 1
    # for every x (no x in its data, so no bilinear terms). The optimistic leader min x + y1 - 2 y2,
    # x in [0, 1], picks y = (0, 1) and x = 0: F = -2.
    p = wb.BilevelProblem([x], [y1, y2], x + y1 - 2 * y2, y1 + y2, upper_constraints=[x >= 0, x <= 1],
                          lower_constraints=[y1 + y2 >= 1, y1 >= 0, y2 >= 0])
    r = p.solve(method="strong_duality")
    assert r.info["nonconvex"] is None and r.info["reformulation_convex_constraints"] is True
    assert r.status == "optimal" and r.upper_value == pytest.approx(-2.0, abs=1e-6)
    assert r.follower[y2] == pytest.approx(1.0, abs=1e-6)


def test_reduction_blocks_gap_and_polish_bounds():
    # The seed LP: g = (y - x + 2, y, 3 - y) >= 0, c = 1, so A = (1, 1, -1), b = (2 - x, 0, 3).
    # At the bilevel optimum w = (x, y, lam) = (4, 2, (1, 0, 0)): gap c.y + b.lam = 2 + (2 - 4) = 0 and
    # grad_y L = c - A^T lam = 1 - 1 = 0. The polish bounds fix g_0 = 0 (lam_0 = 1 > g_0 = 0) and
    # lam_1 = lam_2 = 0 (g_1 = 2, g_2 = 1 exceed them), and free the gap row.
    import numpy as np
    from workbench.lower import lower
    from workbench.reformulate.lp_dual import Bilevel2StrongDuality

    p = wb.BilevelProblem([x], [y], -x - 2 * y, y, upper_constraints=[x >= 0, x <= 4],
                          lower_constraints=[y >= x - 2, y >= 0, y <= 3])
    red = Bilevel2StrongDuality()
    lp = lower(p)
    assert red.accepts(lp)
    nlp, inv = red.apply(lp)
    w = np.array([4.0, 2.0, 1.0, 0.0, 0.0])
    none = np.zeros(0)
    assert nlp.residual(w, none) == 0.0 and nlp.stationarity(w, none) == 0.0
    pt = red.invert(w, inv)
    assert (pt.x.tolist(), pt.y.tolist(), pt.lam.tolist(), pt.mu.size) == ([4.0], [2.0], [1.0, 0.0, 0.0], 0)
    lbx, ubx, lbg, ubg = nlp.polish(w, none)
    g_rows = nlp.rows["g"]
    assert ubg[g_rows].tolist() == [0.0, np.inf, np.inf] and ubx[nlp.blocks["lam"]].tolist() == [np.inf, 0.0, 0.0]
    assert lbg[nlp.rows["gap"]].tolist() == [-np.inf] and ubg[nlp.rows["gap"]].tolist() == [np.inf]
    r = p.solve(method="strong_duality")  # the one homotopy ran it: a polish row per start, gap 0 there
    polished = [row for row in r.log if row["phase"] == "polish"]
    assert polished and all(row["complementarity"] <= 1e-8 for row in polished if row["ipopt_status"] == "Solve_Succeeded")


def test_nonlinear_follower_is_not_accepted_by_the_reduction():
    # y^2 in the follower objective: c = 2y depends on y, so the follower is no LP.
    from workbench.lower import lower
    from workbench.reformulate.lp_dual import Bilevel2StrongDuality

    p = wb.BilevelProblem([x], [y], x + y, y ** 2, upper_constraints=[x >= 0], lower_constraints=[y >= x])
    assert not Bilevel2StrongDuality().accepts(lower(p))


def test_time_limit_is_reported_not_turned_into_a_point():
    # The seed LP above (optimum F = -8 at x = 4). With the deadline already past when the first
    # start would begin, no homotopy runs: the route must say time_limit and carry no point; with a
    # generous limit the same call reaches the optimum.
    p = wb.BilevelProblem([x], [y], -x - 2 * y, y, upper_constraints=[x >= 0, x <= 4],
                          lower_constraints=[y >= x - 2, y >= 0, y <= 3])
    r = p.solve(method="strong_duality", time_limit=1e-9)
    assert r.status == "time_limit"
    with pytest.raises(wb.SolverFailure):
        r.leader
    assert p.solve(method="strong_duality", time_limit=60).upper_value == pytest.approx(-8.0, abs=1e-6)
