"""Follower multipliers in the leader's problem (issue 16): wb.multiplier, the KKT and SCIP routes,
non-unique multipliers, and the dlam/dx term of the hypergradient.

The one-node market used throughout: the follower (market operator) clears demand d at least
bid cost from the leader (offer price x per unit, capacity K) and a competitor (price c,
capacity C):

    min_{qL, qC}  x qL + c qC   s.t.  qL + qC = d  (balance, price lam = mu_balance),
                                      0 <= qL <= K,  0 <= qC <= C.

With L = f - mu (qL + qC - d) - ..., stationarity in qC gives c - mu + alpha_C - beta_C = 0, so
when the competitor is partly dispatched (0 < qC < C) the price is mu = c, and when the leader
is partly dispatched (0 < qL < K) the price is mu = x. The leader earns mu qL - cost qL.
"""
import numpy as np
import pytest
import sympy as sp

import workbench as wb
from workbench.certify.multipliers import check_multipliers, multiplier_range
from workbench.errors import ConstraintError, MethodError, UnknownMultiplierError
from workbench.lower import follower_view, lower


def market(d, K, C, c, cost, xmax=20.0, twice=None, cap=None):
    x = sp.Symbol("x", real=True)
    qL, qC = sp.symbols("q_L q_C", real=True)
    lower_cons = [wb.named("balance", sp.Eq(qL + qC, d))]
    if twice == "eq":
        lower_cons.append(wb.named("balance2", sp.Eq(qL + qC, d)))
    lower_cons += [wb.named("cap_L", qL <= K), wb.named("min_L", qL >= 0), wb.named("cap_C", qC <= C),
                   wb.named("min_C", qC >= 0)]
    if twice == "ineq":
        lower_cons.append(wb.named("cap_L2", qL <= K))
    price = wb.multiplier("balance")
    F = price * qL - cost * qL
    if twice == "ineq":  # a capacity payment: the shadow price of the leader's capacity times K
        F = F + wb.multiplier("cap_L") * K
    upper = [x >= 0, x <= xmax]
    if cap is not None:
        upper.append(wb.named("price_cap", price <= cap))
    return wb.BilevelProblem([x], [qL, qC], wb.Maximize(F), x * qL + c * qC, upper, lower_cons, name="market")


# -- 1. the API ---------------------------------------------------------------------------------
def test_multiplier_symbol_is_shared_and_printed_by_kind():
    assert wb.multiplier("balance") is wb.multiplier("balance")
    p = market(d=10, K=6, C=5, c=8, cost=2, cap=12)
    assert p.uses_multipliers and p.multiplier_symbols[wb.multiplier("balance")] == ("eq", 0)
    tex = wb.latex(p, mode="plain")
    assert r"\mu_{balance} q_{L}" in tex and r"\mu_{balance} \leq 12" in tex
    x, y = sp.symbols("x y", real=True)
    q = wb.BilevelProblem([x], [y], wb.multiplier("cap") * y, (y - x) ** 2, lower_constraints=[wb.named("cap", y <= 1)])
    assert r"\lambda_{cap} y" in wb.latex(q, mode="plain")


def test_unknown_unnamed_or_misplaced_multipliers_are_typed_errors():
    x, y = sp.symbols("x y", real=True)
    lower_cons = [wb.named("cap", y <= 1), y >= 0]
    with pytest.raises(UnknownMultiplierError, match=r"no constraint named 'capp'.*\['cap'\]"):
        wb.BilevelProblem([x], [y], wb.multiplier("capp") * y, (y - x) ** 2, lower_constraints=lower_cons)
    with pytest.raises(ConstraintError, match="wb.named"):
        wb.multiplier(1)  # the unnamed y >= 0 has no name to refer to
    with pytest.raises(UnknownMultiplierError, match="follower's own"):
        wb.BilevelProblem([x], [y], y, (y - x) ** 2 + wb.multiplier("cap") * y, lower_constraints=lower_cons)
    with pytest.warns(UserWarning, match="no follower variable"), \
            pytest.raises(UnknownMultiplierError, match="moved to the leader"):
        wb.BilevelProblem([x], [y], wb.multiplier("lead") * y, (y - x) ** 2,
                          lower_constraints=lower_cons + [wb.named("lead", x <= 3)])


def test_routes_that_do_not_know_multipliers_refuse():
    p = market(d=10, K=8, C=4, c=5, cost=2)
    with pytest.raises(MethodError, match="substitution"):
        p.solve(method="substitution")
    lp = lower(p)
    with pytest.raises(MethodError, match="multipliers"):
        lp.evaluate("upper_objective", [1.0], [6.0, 4.0], lp.p_default)
    # the follower's side is unaffected; the leader's pieces take the multipliers
    assert lp.evaluate("lower_objective", [1.0], [6.0, 4.0], lp.p_default)[0] == pytest.approx(1 * 6 + 5 * 4)
    nu = np.array([0.0, 0.0, 0.0, 0.0, 5.0])  # g order: cap_L, min_L, cap_C, min_C; then h: balance
    assert lp.evaluate("upper_objective", [1.0], [6.0, 4.0], lp.p_default, nu[:4], nu[4:])[0] == pytest.approx(-(5 - 2) * 6)


# -- 6a. the one-node market, two parameter sets ----------------------------------------------------
@pytest.mark.parametrize("method", ["kkt", "global_kkt"])
def test_market_leader_marginal(method):
    # d = 10, K = 8, C = 4, c = 5, cost = 2, 0 <= x <= 20.
    # x < 5: the leader is cheaper, qL = min(K, d) = 8, qC = 2 (competitor marginal), price 5:
    #        profit (5 - 2) 8 = 24 for every such x.
    # x > 5: the competitor runs at C = 4, qL = 6 (leader marginal), price = x: profit (x - 2) 6,
    #        increasing, so x = 20 gives 108 > 24. Optimum x* = 20, price 20, profit 108.
    r = market(d=10, K=8, C=4, c=5, cost=2).solve(method=method)
    assert r.status == "optimal", r.message
    assert r.x[0] == pytest.approx(20.0, abs=1e-6)
    assert r.y == pytest.approx([6.0, 4.0], abs=1e-6)
    assert r.multipliers["balance"] == pytest.approx(20.0, abs=1e-6)
    assert r.upper_value == pytest.approx(108.0, abs=1e-5)
    assert r.info["multipliers"]["licq"] and r.info["multipliers"]["unique"]
    assert r.certificate.passed and r.certificate.proof == "convex"


@pytest.mark.parametrize("method", ["kkt", "global_kkt"])
def test_market_competitor_marginal(method):
    # d = 10, K = 6, C = 10, c = 5, cost = 2.
    # x <= 5: qL = K = 6 (at x = 5 the optimistic follower still gives the leader 6), qC = 4 < C,
    #         the competitor is marginal and the price is c = 5: profit (5 - 2) 6 = 18.
    # x > 5: the competitor alone covers d (C = 10), qL = 0, profit 0. Optimum 18, any x in [0, 5].
    r = market(d=10, K=6, C=10, c=5, cost=2).solve(method=method)
    assert r.status == "optimal", r.message
    assert r.x[0] <= 5.0 + 1e-6
    assert r.upper_value == pytest.approx(18.0, abs=1e-5)
    assert r.multipliers["balance"] == pytest.approx(5.0, abs=1e-6)
    if method == "global_kkt":
        assert r.optimality == "global" and r.bound == pytest.approx(18.0, abs=1e-5)


# -- 6b. the seed's pitfall: the same constraint twice ------------------------------------------------
def test_capacity_twice_nonunique_multipliers_reported():
    # d = 10, K = 6, C = 10, c = 5, cost = 2, 0 <= x <= 8; the leader is also paid K times the
    # multiplier of "cap_L", its capacity written twice (cap_L, cap_L2).
    # For x < 5: qL = 6 (both caps active), price 5; stationarity in qL: x - 5 + a1 + a2 = 0, so
    # a1 + a2 = 5 - x with a1, a2 >= 0: LICQ fails and a1 ranges over [0, 5 - x].
    # Profit (5 - 2) 6 + 6 a1: optimistic (a1 = 5 - x, best at x = 0) 18 + 30 = 48, pessimistic
    # (a1 = 0) 18 for every x < 5. For x > 5 qL = 0 and the profit is 0.
    p = market(d=10, K=6, C=10, c=5, cost=2, xmax=8, twice="ineq")
    r = p.solve()
    assert r.status == "optimal", r.message
    assert r.x[0] == pytest.approx(0.0, abs=1e-6) and r.upper_value == pytest.approx(48.0, abs=1e-5)
    m = r.info["multipliers"]
    assert not m["licq"] and not m["unique"]
    assert m["F_range"] == pytest.approx((18.0, 48.0), abs=1e-5)
    assert "not unique" in m["note"]
    rp = p.solve(formulation="pessimistic")
    assert rp.status == "optimal" and rp.x[0] < 5.0
    assert rp.upper_value == pytest.approx(18.0, abs=1e-5)
    assert rp.multipliers["cap_L"] == pytest.approx(0.0, abs=1e-9)
    rg = p.solve(method="global_kkt")
    assert rg.status == "optimal" and rg.upper_value == pytest.approx(48.0, abs=1e-5)


@pytest.mark.parametrize("method", ["kkt", "global_kkt"])
def test_balance_twice_leader_paid_one_price_is_unbounded(method):
    # The balance written twice: stationarity gives mu1 + mu2 = price (= 5 for x < 5 with qL = 6),
    # mu1 free, so the leader paid mu1 qL - 2 qL can make its profit as large as it likes: no
    # finite optimum, status unbounded, never a finite "optimal".
    r = market(d=10, K=6, C=10, c=5, cost=2, xmax=8, twice="eq").solve(method=method)
    assert r.status == "unbounded"
    assert "not unique" in r.message and "multiplier" in r.message
    assert r.info["multipliers"]["optimistic"] == np.inf


# -- 6c. a leader constraint on a multiplier: a price cap ---------------------------------------------
@pytest.mark.parametrize("method", ["kkt", "global_kkt"])
def test_price_cap(method):
    # d = 10, K = 6, C = 5, c = 8, cost = 2, 0 <= x <= 20, and the cap mu_balance <= 12.
    # x < 8: qL = 6, qC = 4 (competitor marginal), price 8: profit (8 - 2) 6 = 36.
    # x > 8: qC = C = 5, qL = 5 (leader marginal), price = x: profit (x - 2) 5, capped at x = 12:
    # 50 > 36. Optimum x* = 12, price 12, profit 50 (without the cap: x = 20, profit 90).
    r = market(d=10, K=6, C=5, c=8, cost=2, cap=12).solve(method=method)
    assert r.status == "optimal", r.message
    assert r.x[0] == pytest.approx(12.0, abs=1e-6)
    assert r.multipliers["balance"] == pytest.approx(12.0, abs=1e-6)
    assert r.upper_value == pytest.approx(50.0, abs=1e-5)


# -- certificates check the multipliers reported -------------------------------------------------------
def test_certificate_checks_reported_multipliers():
    p = market(d=10, K=6, C=10, c=5, cost=2)
    lp = lower(p)
    view = follower_view(lp)
    x, y = np.array([1.0]), np.array([6.0, 4.0])
    # qL at its capacity, competitor marginal: price 5, cap_L multiplier 5 - x = 4 (stationarity in qL:
    # x - mu + a = 0), all others 0.
    good = check_multipliers(view, x, y, lp.p_default, np.array([4.0, 0, 0, 0]), np.array([5.0]))
    bad = check_multipliers(view, x, y, lp.p_default, np.array([4.0, 0, 0, 0]), np.array([4.0]))
    assert good.holds(1e-9) and not bad.holds(1e-7)
    assert bad.stationarity == pytest.approx(1.0)  # d/dqC: 5 - 4 = 1
    rng = multiplier_range(lp, x, y, lp.p_default)
    assert rng.licq and rng.low == pytest.approx(-(5 - 2) * 6)  # unique: profit 18, minimisation sense
    r = p.solve()
    assert r.certificate.stationarity <= 1e-9 and r.certificate.lam is not None


# -- 5. the hypergradient includes dlam/dx ---------------------------------------------------------------
def test_hypergradient_includes_multiplier_term():
    # Leader marginal (x > 5 in the first parameter set): price mu = x, dmu/dx = 1, qL = 6 fixed,
    # so d profit/dx = 6 and, in the minimisation sense of F = -profit, the hypergradient is -6;
    # dy/dx = 0, so without the dmu/dx term it would read 0. For x < 5 the price is c: 0.
    p = market(d=10, K=8, C=4, c=5, cost=2)
    x = p.leader[0]
    s = p.sensitivity({x: 9.0})
    assert s.dy_dx.ravel() == pytest.approx([0.0, 0.0], abs=1e-9)
    assert s.dlam_dx[s.multiplier_names.index("balance"), 0] == pytest.approx(1.0)
    assert s.hypergradient[0] == pytest.approx(-6.0)
    assert s.directional([1.0]).dF == pytest.approx(-6.0)
    chk = s.check()
    assert chk["passed"] and chk["fd_hypergradient"][0] == pytest.approx(-6.0, abs=1e-5)
    assert p.sensitivity({x: 3.0}).hypergradient[0] == pytest.approx(0.0, abs=1e-9)


# -- strong duality rewrites price x quantity terms (reformulate/price_strong_duality.py) -------------------
def test_rewrite_is_linear_and_equal_to_F_on_the_kkt_set():
    # Market 1 (d = 10, K = 8, C = 4, c = 5, cost = 2) at x = 20: qL = 6, qC = 4, price mu = 20; the
    # multipliers by hand from stationarity: qL: x - mu + a_capL - a_minL = 0 with both inactive -> 0;
    # qC: 5 - mu + a_capC - a_minC = 0, qC = C active, qC > 0 -> a_capC = 15, a_minC = 0.
    # F (minimisation sense) = -(mu - 2) qL = -108; the rewrite must agree there and be linear.
    import casadi as ca
    from workbench.reformulate.price_strong_duality import PriceStrongDuality
    p = market(d=10, K=8, C=4, c=5, cost=2)
    lp = lower(p)
    red = PriceStrongDuality(lp.p_default)
    assert red.accepts(lp)
    lp2, _ = red.apply(lp)
    w = ca.vertcat(lp.x, lp.y, lp.nu_sym)
    assert ca.is_linear(lp2.F, w)
    point = [20.0, 6.0, 4.0, 0.0, 0.0, 15.0, 0.0, 20.0]   # x, qL, qC, lam (cap_L, min_L, cap_C, min_C), mu
    value = float(ca.Function("F", [w], [lp2.F])(point))
    assert value == pytest.approx(-108.0, abs=1e-9)


@pytest.mark.parametrize("rewrite", [True, False])
@pytest.mark.parametrize("kw, x_star, profit", [
    (dict(d=10, K=8, C=4, c=5, cost=2), 20.0, 108.0),          # test_market_leader_marginal
    (dict(d=10, K=6, C=5, c=8, cost=2, cap=12), 12.0, 50.0),   # test_price_cap
])
def test_global_kkt_with_and_without_the_rewrite(rewrite, kw, x_star, profit):
    # Hand answers derived in the tests named next to each case; the MILP (rewrite) and the bilinear
    # program (rewrite=False) must both reproduce them, globally, and r.info says which ran.
    r = market(**kw).solve(method="global_kkt", rewrite=rewrite)
    assert r.status == "optimal" and r.optimality == "global", r.message
    assert r.x[0] == pytest.approx(x_star, abs=1e-6) and r.upper_value == pytest.approx(profit, abs=1e-5)
    assert r.bound == pytest.approx(profit, abs=1e-5)
    assert r.info["rewrite"]["applied"] is rewrite
    assert ("rewritten by strong duality" in r.info["route"]) is rewrite


def test_rewrite_removes_the_scarcity_rent_of_a_capacity_the_leader_chooses():
    # The leader withholds capacity: it offers at 3 with capacity x in [0, 8], the competitor at 5 with
    # capacity 10, d = 10, cost 2. The leader is cheaper, so qL = x, qC = 10 - x in [2, 10]: for x > 0 the
    # competitor is marginal, price 5, profit (5 - 2) x, best at x = 8: profit 24.
    # The revenue mu qL = 3 qL + a_cap x (stationarity in qL, complementarity of qL <= x) has the
    # bilinear scarcity rent a_cap x, which strong duality (3 qL + 5 qC = 10 mu - x a_cap - 10 a_capC)
    # turns into linear terms: the rewrite applies.
    x = sp.Symbol("x", real=True)
    qL, qC = sp.symbols("q_L q_C", real=True)
    cons = [wb.named("balance", sp.Eq(qL + qC, 10)), wb.named("cap_L", qL <= x), qL >= 0, qC <= 10, qC >= 0]
    p = wb.BilevelProblem([x], [qL, qC], wb.Maximize((wb.multiplier("balance") - 2) * qL), 3 * qL + 5 * qC,
                          [x >= 0, x <= 8], cons)
    r = p.solve(method="global_kkt")
    assert r.status == "optimal" and r.optimality == "global", r.message
    assert r.info["rewrite"]["applied"]
    assert r.x[0] == pytest.approx(8.0, abs=1e-6) and r.upper_value == pytest.approx(24.0, abs=1e-6)
    assert r.multipliers["balance"] == pytest.approx(5.0, abs=1e-6)


def test_rewrite_refused_for_a_squared_price_and_the_bilinear_program_solves_it():
    # Market 1 (d = 10, K = 8, C = 4, c = 5, cost = 2) with a penalty mu^2 / 4 on the price.
    # x > 5: qL = 6, mu = x: profit 6 (x - 2) - x^2 / 4, maximal where 6 - x / 2 = 0: x = 12, profit
    # 60 - 36 = 24. x < 5: qL = 8, mu = 5: profit 24 - 25 / 4 = 17.75. Optimum x* = 12, profit 24.
    # No identity of the follower LP has a mu^2 term, so the rewrite is refused, naming the monomial.
    x = sp.Symbol("x", real=True)
    qL, qC = sp.symbols("q_L q_C", real=True)
    mu = wb.multiplier("balance")
    cons = [wb.named("balance", sp.Eq(qL + qC, 10)), qL <= 8, qL >= 0, qC <= 4, qC >= 0]
    p = wb.BilevelProblem([x], [qL, qC], wb.Maximize((mu - 2) * qL - mu ** 2 / 4), x * qL + 5 * qC,
                          [x >= 0, x <= 20], cons)
    for method in ("global_kkt", "kkt"):
        r = p.solve(method=method)
        assert r.status == "optimal", r.message
        assert r.x[0] == pytest.approx(12.0, abs=1e-6) and r.upper_value == pytest.approx(24.0, abs=1e-6)
    rg = p.solve(method="global_kkt")
    assert not rg.info["rewrite"]["applied"] and "mu[balance]**2" in rg.info["rewrite"]["reason"]
    assert "bilinear price x quantity terms kept" in rg.info["route"]


# -- 3. the follower's reply y not unique either: F over the LP follower's optimal face -------------------
def test_pessimistic_takes_the_worst_follower_reply_not_only_the_worst_multiplier():
    # d = 10; the leader offers unit L (capacity 6, cost 2) at x in [0, 6] and also owns unit B (offer 5,
    # capacity 4, cost 4.5); the competitor's unit A offers 5 with capacity 4.
    # x < 5: qL = 6, the remaining 4 MW go to A and B, tied at 5: any split qA + qB = 4 is optimal (y is not
    # unique; the multipliers are: price 5). Profit (5 - 2) 6 + (5 - 4.5) qB in [18, 20].
    # x > 5: A and B run at 4 each, qL = 2, price x: profit (x - 2) 2 + (x - 4.5) 4 = 6x - 22 <= 14.
    # Optimistic: 20 (qB = 4, any x < 5); pessimistic: 18 (qB = 0, any x < 5). Ipopt's follower reply is
    # the middle of the face (qB = 2, profit 19): a pessimistic value taken at it would be wrong.
    x = sp.Symbol("x", real=True)
    qL, qA, qB = sp.symbols("q_L q_A q_B", real=True)
    price = wb.multiplier("balance")
    cons = [wb.named("balance", sp.Eq(qL + qA + qB, 10)), qL <= 6, qL >= 0, qA <= 4, qA >= 0, qB <= 4, qB >= 0]
    p = wb.BilevelProblem([x], [qL, qA, qB], wb.Maximize((price - 2) * qL + (price - sp.Rational(9, 2)) * qB),
                          x * qL + 5 * qA + 5 * qB, [x >= 0, x <= 6], cons)
    rp = p.solve(formulation="pessimistic")
    assert rp.status == "optimal", rp.message
    assert rp.x[0] < 5.0 and rp.upper_value == pytest.approx(18.0, abs=1e-6)
    assert rp.y == pytest.approx([6.0, 4.0, 0.0], abs=1e-6)
    face = rp.info["multipliers"]["follower_face"]
    assert not face["unique_y"] and face["F_range"] == pytest.approx((18.0, 20.0), abs=1e-6)
    assert "not unique" in face["note"]
    r = p.solve()
    assert r.status == "optimal" and r.upper_value == pytest.approx(20.0, abs=1e-6)
    assert r.y[2] == pytest.approx(4.0, abs=1e-6)
    # a unique reply is reported as such (market 1 at its optimum x = 20: qL = 6, qC = 4)
    r1 = market(d=10, K=8, C=4, c=5, cost=2).solve()
    assert r1.info["multipliers"]["follower_face"]["unique_y"]


def test_rewrite_of_a_leader_constraint_with_a_price_times_quantity():
    # Market 1 (d = 10, K = 8, C = 4, c = 5, cost = 2, x in [0, 20]) with a revenue cap mu qL <= 100.
    # x < 5: qL = 8 at price 5, revenue 40, profit 24. x > 5: qL = 6 at price x, revenue 6x <= 100 so
    # x <= 50/3, profit 6 (x - 2), best at x = 50/3: 100 - 12 = 88. Optimum x* = 50/3, profit 88.
    p = market(d=10, K=8, C=4, c=5, cost=2)
    qL = p.follower[0]
    q = wb.BilevelProblem(p.leader, p.follower, wb.Maximize((wb.multiplier("balance") - 2) * qL), p.f,
                          [c.expr >= 0 for c in p.G] + [wb.named("revenue_cap", wb.multiplier("balance") * qL <= 100)],
                          [wb.named(c.name, c.expr >= 0) for c in p.g] + [wb.named(c.name, sp.Eq(c.expr, 0)) for c in p.h])
    for method in ("global_kkt", "kkt"):
        r = q.solve(method=method)
        assert r.status == "optimal", r.message
        assert r.x[0] == pytest.approx(50 / 3, abs=1e-6) and r.upper_value == pytest.approx(88.0, abs=1e-5)
    assert r.multipliers["balance"] == pytest.approx(50 / 3, abs=1e-6)
    rg = q.solve(method="global_kkt")
    assert rg.info["rewrite"]["applied"] and "revenue_cap" in rg.info["rewrite"]["reason"]
    assert rg.optimality == "global"


def test_rewrite_keeps_terms_without_a_price_and_refuses_a_follower_that_is_not_of_lp_form():
    # Market 1 (d = 10, K = 8, C = 4, c = 5, cost = 2) with a quadratic production cost qL^2 / 10.
    # x > 5: qL = 6 at price x: profit 6 (x - 2) - 3.6, best at x = 20: 104.4; x < 5: qL = 8 at price 5:
    # 24 - 6.4 = 17.6. Optimum x* = 20, profit 104.4. The price x quantity term is rewritten; the
    # quantity-only quadratic term stays (no multiplier in it), and the route says which.
    from workbench.reformulate.price_strong_duality import PriceStrongDuality
    p = market(d=10, K=8, C=4, c=5, cost=2)
    qL = p.follower[0]
    mu = wb.multiplier("balance")
    q = wb.BilevelProblem(p.leader, p.follower, wb.Maximize((mu - 2) * qL - qL ** 2 / 10), p.f,
                          [c.expr >= 0 for c in p.G],
                          [wb.named(c.name, c.expr >= 0) for c in p.g] + [wb.named(c.name, sp.Eq(c.expr, 0)) for c in p.h])
    r = q.solve(method="global_kkt")
    assert r.status == "optimal" and r.optimality == "global", r.message
    assert r.x[0] == pytest.approx(20.0, abs=1e-6) and r.upper_value == pytest.approx(104.4, abs=1e-5)
    assert r.info["rewrite"]["applied"] and r.info["rewrite"]["remaining"]
    assert "no multiplier stays" in r.info["rewrite"]["reason"]
    # a follower whose coefficients of y depend on x (efficiency x of the leader's unit) is not of LP form
    x = p.leader[0]
    bad = wb.BilevelProblem([x], p.follower, wb.Maximize((mu - 2) * qL), p.f, [x >= 1, x <= 2],
                            [wb.named("balance", sp.Eq(x * qL + p.follower[1], 10)), qL >= 0, qL <= 8,
                             p.follower[1] >= 0, p.follower[1] <= 4])
    rw = PriceStrongDuality(lower(bad).p_default).check(lower(bad))
    assert not rw.applies and "'balance'" in rw.reason and "depend on x" in rw.reason
