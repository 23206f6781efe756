"""MILP route (big-M from derived bounds, HiGHS): answers derived by hand or by independent enumeration."""

import numpy as np
import pytest
import sympy as sp

import workbench as wb
from benchmarks.milp_linear import enumerate_kkt, follower_value_at, parse_record
from scipy.optimize import linprog

x, y, y1, y2 = sp.symbols("x y y1 y2", real=True)


def seed_lp():
    """Leader min -x - 2y, 0 <= x <= 4; follower min y s.t. y >= x - 2, y >= 0, y <= 3.

    By hand: y*(x) = max(x - 2, 0). F = -x on [0, 2] (down to -2) and 4 - 3x on [2, 4],
    so the optimum is x = 4, y = 2, F = -8.
    Big-M by hand: dual c = 1 = lam0 + lam1 - lam2, lam >= 0 has vertices (1,0,0), (0,1,0),
    so lam0, lam1 <= 1 and lam2 = 0. Over {0<=x<=4, y>=x-2, 0<=y<=3}: max (y - x + 2) = 5
    (y = 3, x = 0), max y = 3.
    """
    return wb.BilevelProblem([x], [y], -x - 2 * y, y, upper_constraints=[x >= 0, x <= 4],
                             lower_constraints=[y >= x - 2, y >= 0, y <= 3], name="seed_lp")


def test_seed_lp_global_optimum_and_bounds():
    r = seed_lp().solve(method="milp")
    assert r.status == "optimal"
    assert r.leader[x] == pytest.approx(4.0, abs=1e-7) and r.follower[y] == pytest.approx(2.0, abs=1e-7)
    assert r.upper_value == pytest.approx(-8.0, abs=1e-7)
    pairs = {row["constraint"]: row for row in r.info["big_m"]}
    assert pairs[0]["slack_bound"] == pytest.approx(5.0) and pairs[0]["dual_bound"] == pytest.approx(1.0)
    assert pairs[1]["slack_bound"] == pytest.approx(3.0) and pairs[1]["dual_bound"] == pytest.approx(1.0)
    assert pairs[2]["treatment"].startswith("lam fixed")
    assert all("high-point relaxation" in row["slack_source"] and "vertices" in row["dual_source"]
               for row in pairs.values())
    assert r.info["highs_status"] == 0 and r.info["global"] is True


def test_equality_constrained_follower():
    """Follower min y1 + 2 y2 s.t. y1 + y2 = x, y >= 0 -> y = (x, 0) (y1 is cheaper);
    leader min x - 3 y2 on [1, 3] -> F = x, optimum x = 1, F = 1.
    Dual: lam1 + mu = 1, lam2 + mu = 2 -> lam2 = lam1 + 1 >= 1 > 0, so y2 >= 0 is forced active."""
    p = wb.BilevelProblem([x], [y1, y2], x - 3 * y2, y1 + 2 * y2, upper_constraints=[x >= 1, x <= 3],
                          lower_constraints=[sp.Eq(y1 + y2, x), y1 >= 0, y2 >= 0])
    r = p.solve(method="milp")
    assert r.status == "optimal" and r.upper_value == pytest.approx(1.0, abs=1e-7)
    assert r.follower[y1] == pytest.approx(1.0, abs=1e-7)
    assert "forced active" in r.info["big_m"][1]["treatment"]


def test_convex_qp_follower():
    """Follower min 1/2 (y - x)^2 s.t. 0 <= y <= 5, leader min x - 3y, -2 <= x <= 2.

    By hand: y*(x) = max(x, 0) on [-2, 2]; F = x on [-2, 0] (>= -2) and -2x on [0, 2], so the
    optimum is x = 2, y = 2, F = -4. Multiplier bounds: stationarity y - x = lam0 - lam1; basis
    {lam0}: lam0 = y - x <= 5 + 2 = 7; basis {lam1}: lam1 = x - y <= 2 - 0 = 2.
    """
    p = wb.BilevelProblem([x], [y], x - 3 * y, (y - x) ** 2 / 2, upper_constraints=[x >= -2, x <= 2],
                          lower_constraints=[y >= 0, y <= 5])
    r = p.solve(method="milp")
    assert r.status == "optimal" and r.upper_value == pytest.approx(-4.0, abs=1e-7)
    assert r.follower[y] == pytest.approx(2.0, abs=1e-7)
    assert [row["dual_bound"] for row in r.info["big_m"]] == pytest.approx([7.0, 2.0])
    assert "convex-QP" in r.info["big_m"][0]["dual_source"]


def test_refuses_when_no_bound_can_be_derived():
    """Follower min y s.t. y >= x, y >= -x (y = |x|), leader min -x with no bounds: the relaxed
    region {y >= |x|} is unbounded, both duals can be positive (lam0 + lam1 = 1) and there is no
    bilevel-feasible incumbent with finite value to cut with (F = -x is unbounded below)."""
    p = wb.BilevelProblem([x], [y], -x, y, lower_constraints=[y >= x, y >= -x])
    with pytest.raises(wb.MethodError, match="no big-M bound for follower constraint"):
        p.solve(method="milp")


def test_refuses_nonlinear_with_the_culprit_named():
    p = wb.BilevelProblem([x], [y], x + y, y ** 4, upper_constraints=[x >= 0])
    with pytest.raises(wb.MethodError, match=r"d f/dy = 4\*y\*\*3 is nonlinear in y"):
        p.solve(method="milp")
    concave = wb.BilevelProblem([x], [y], x + y, -y ** 2, upper_constraints=[x >= 0], lower_constraints=[y >= 0])
    with pytest.raises(wb.MethodError, match="not a convex QP"):
        concave.solve(method="milp")
    q = wb.BilevelProblem([x], [y], x + y, y, upper_constraints=[x >= 1], lower_constraints=[x * y <= 2])
    with pytest.raises(wb.MethodError, match="nonlinear in x"):
        q.solve(method="milp")


def test_infeasible_reported_with_status():
    p = wb.BilevelProblem([x], [y], x + y, y, upper_constraints=[x >= 2, x <= 1], lower_constraints=[y >= 0])
    r = p.solve(method="milp")
    assert r.status == "infeasible"
    with pytest.raises(wb.SolverFailure):
        r.leader


@pytest.mark.parametrize("name", ["Bard1984a", "BialasKarwan1984a", "CandlerTownsley1982", "WangJiaoLi2005",
                                  "MershaDempe2006Ex2"])
def test_bolib_matches_best_known(name):
    # BOLIB's published global values (flag 1); the enumeration (benchmarks/milp_linear.py, 2^ng LPs)
    # reproduces each of them independently of the MILP.
    p = wb.bolib.load(name)
    r = p.solve(method="milp")
    assert r.status == "optimal"
    assert r.upper_value == pytest.approx(p.info["F_best"], abs=1e-6)
    assert enumerate_kkt(wb.bolib.record(name)).value == pytest.approx(p.info["F_best"], abs=1e-6)


def test_huhuangzhang_better_than_bolib():
    # By hand: f = -x - 3 y1 ignores y2; y1 <= 8/9 - y2 and y1 <= 25/9 - x - y2, so y2 = 0 and
    # y1 = min(8/9, 25/9 - x). y2 + x <= 2 gives x <= 2; F = -4x - y1 is -3x - 25/9 on [17/9, 2],
    # so x = 2, y = (7/9, 0), F = -79/9 < BOLIB's -76/9 (the kink x = 17/9).
    p = wb.bolib.load("HuHuangZhang2009")
    r = p.solve(method="milp")
    assert r.status == "optimal" and r.upper_value == pytest.approx(-79 / 9, abs=1e-7)
    assert r.leader[p.leader[0]] == pytest.approx(2.0, abs=1e-7)
    assert p.info["F_best"] == pytest.approx(-76 / 9)
    e = enumerate_kkt(wb.bolib.record("HuHuangZhang2009"))   # 2^5 active sets, one LP each
    assert e.value == pytest.approx(-79 / 9, abs=1e-7)


def test_lanwenshihlee_exact_optimum():
    # By hand: the follower minimises y, y*(x) = max((8-x)/4, (x-4)/2, 2x-24, 0); on x >= 44/3,
    # F = 2x - 11(2x - 24) = 264 - 20x, feasible while 2x - 24 <= (96 - 3x)/4, i.e. x <= 192/11:
    # F = -936/11 = -85.0909..., slightly better than BOLIB's best-known -85.0855 (flag 2).
    p = wb.bolib.load("LanWenShihLee2007")
    r = p.solve(method="milp")
    assert r.upper_value == pytest.approx(-936 / 11, abs=1e-7)
    assert r.leader[p.leader[0]] == pytest.approx(192 / 11, abs=1e-7)


def test_tuy2007ex3_is_unbounded_and_bolib_values_are_not_optima():
    # Independent check without the MILP: fix the follower active set the enumeration in
    # benchmarks/milp_linear.py finds unbounded (constraints 2, 4, 7, 9, 11, 12), box the leader by
    # 0 <= x <= K and solve the LP; at its x the follower LP (solved separately) has exactly the
    # follower value of the point, so the points are bilevel feasible while F falls like -365 K.
    rec = wb.bolib.record("TuyEtal2007Ex3")
    d = parse_record(rec)
    nx, ny, ng = d["nx"], d["ny"], len(d["bg"])
    S = [2, 4, 7, 9, 11, 12]
    values = []
    for K in (10.0, 100.0):
        A_ub = np.hstack([-np.vstack([d["AG"], d["Ag"]]), np.zeros((len(d["bG"]) + ng, ng))])
        stat = np.hstack([np.zeros((ny, nx + ny)), d["Ag"][:, nx:].T])
        act = np.hstack([d["Ag"][S], np.zeros((len(S), ng))])
        bounds = [(0, K)] * nx + [(None, None)] * ny + [(0, None) if i in S else (0, 0) for i in range(ng)]
        lp = linprog(np.concatenate([d["cF"], np.zeros(ng)]), A_ub=A_ub, b_ub=np.concatenate([d["bG"], d["bg"]]),
                     A_eq=np.vstack([stat, act]), b_eq=np.concatenate([d["cf"], -d["bg"][S]]), bounds=bounds)
        xv, yv = lp.x[:nx], lp.x[nx:nx + ny]
        assert follower_value_at(rec, xv) == pytest.approx(d["cf"] @ yv + d["fx"] @ xv + d["df"], abs=1e-6)
        values.append(lp.fun + d["dF"])
    assert values[0] < -864.16 < -467.4613 and values[1] < 10 * values[0] * 0.75
    r = wb.bolib.load("TuyEtal2007Ex3").solve(method="milp")
    assert r.status == "unbounded"
    boxed = [F for _, F in r.info["unbounded_evidence"]]     # boxed optima are bilevel feasible points
    assert len(boxed) == 3 and boxed[0] > boxed[1] > boxed[2] and boxed[2] < -864.16


def test_flags_active_big_m():
    # seed_lp optimum (4, 2): y = x - 2 is active with lam0 = 1 (its vertex bound); flagged as active.
    r = seed_lp().solve(method="milp")
    assert any("dual" in s for s in r.info["big_m_active"]) and "big-M bound active" in r.message


def test_reduction_and_highs_call_on_the_seed():
    # The chain of the route, step by step, on seed_lp (bounds by hand in its docstring): pairs 0 and 1
    # get a binary, lam2 is fixed to 0; z = [x, y, lam0..2, b0, b1]. HiGHS' optimum is F = -8 at
    # x = 4, y = 2 with lam0 = 1 (c = 1 = lam0 when only y >= x - 2 is active).
    from workbench.reformulate import Chain
    from workbench.reformulate.linear import Bilevel2Linear
    from workbench.reformulate.lp_bigm_milp import LinearBilevel2MILP
    from workbench.solve.highs import HighsSolver

    p = seed_lp()
    chain = Chain([Bilevel2Linear(p.parameter_vector(None), allow_qp=True), LinearBilevel2MILP()])
    milp, inv = chain.apply(p)
    assert milp.verdict is None and milp.n_binaries == 2
    assert milp.blocks["lam"] == slice(2, 5) and milp.blocks["b"] == slice(5, 7)
    assert milp.ub[milp.blocks["lam"]].tolist() == pytest.approx([1.0, 1.0, 0.0])
    res = HighsSolver().solve(milp)
    assert res.success and res.objective == pytest.approx(-8.0, abs=1e-9)
    pt = chain.invert(res.z, inv)
    assert (pt.x[0], pt.y[0], pt.lam[0]) == pytest.approx((4.0, 2.0, 1.0), abs=1e-9)
    boxed = milp.boxed(1.0)   # x, y in [-1, 1]: y*(x) = 0 there, so F = -x >= -1 at x = 1
    assert HighsSolver().solve(boxed).objective == pytest.approx(-1.0, abs=1e-9)
