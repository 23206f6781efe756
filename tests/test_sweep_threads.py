"""Sweeps and multistart on threads: a 2-thread pool and a Dask worker with 2 threads.

The nonlinear follower min_y 1/2 (y - x)^2 + e^y/10 s.t. y >= 0 has no closed form, so its reference
is the serial sweep (one thread); the closed-form model of tests/test_sweep.py,
y*(x) = max(x, 1/2), dy/dx = 1 for x > 1/2 and 0 for x < 1/2, is checked against its formula.
"""
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import sympy as sp
from distributed import Client, LocalCluster

import workbench as wb

x, y, a = sp.symbols("x y a", real=True)


def model():
    return wb.BilevelProblem([x], [y], (x - a) ** 2 + y ** 2, (y - x) ** 2 / 2, [x >= 0], [y >= sp.Rational(1, 2)],
                             parameters={a: 0.2}, name="sweep_model")


def nonlinear():
    return wb.BilevelProblem([x], [y], y ** 2 + x, (y - x) ** 2 / 2 + sp.exp(y) / 10, [], [y >= 0])


XS = np.array([-1.0, -0.3, 0.2, 0.45, 0.8, 1.3, 2.0, 2.5])  # off the kink at 1/2


def assert_same(a_, b_):
    assert a_.failures == b_.failures
    for name in ("y", "lam", "dy_dx", "hypergradient"):
        np.testing.assert_allclose(a_.values(name), b_.values(name), atol=1e-12, equal_nan=True)


def test_thread_pool_sweep_equals_serial_and_closed_form():
    p, q = model(), nonlinear()
    serial, serial_q = (wb.sweep(m, {x: XS}, what="sensitivity", jobs=1) for m in (p, q))
    with ThreadPoolExecutor(2) as pool:
        for _ in range(3):  # repeated: races show up as crashes or unequal numbers
            threaded = wb.sweep(p, {x: XS}, what="sensitivity", executor=pool, chunks_per_worker=4)
            threaded_q = wb.sweep(q, {x: XS}, what="sensitivity", executor=pool, chunks_per_worker=4)
            assert threaded.workers == 2
            assert_same(threaded, serial)
            assert_same(threaded_q, serial_q)
    np.testing.assert_allclose(serial.values("y").ravel(), np.maximum(XS, 0.5), atol=1e-8)
    np.testing.assert_allclose(serial.values("dy_dx").ravel(), (XS > 0.5).astype(float), atol=1e-8)


def test_thread_pool_multistart_equals_serial():
    # seed spurious example: optimum x = 0, |y| = 1/sqrt(2), F = 1/2 (tests/test_core_seed.py)
    p = wb.BilevelProblem(leader=[x], follower=[y], upper_objective=x ** 2 + y ** 2,
                          upper_constraints=[x >= -1, x <= 1],
                          lower_objective=y ** 6 - sp.Rational(7, 8) * y ** 4 + sp.Rational(1, 8) * y ** 2)
    with ThreadPoolExecutor(2) as pool:
        r = wb.multistart(p, seeds=2, executor=pool)
    serial = p.solve(seed=0)
    assert r.status == "optimal" and r.upper_value == pytest.approx(serial.upper_value, abs=1e-9)
    assert r.upper_value == pytest.approx(0.5, abs=1e-6) and abs(r.follower[y]) == pytest.approx(1 / math.sqrt(2), abs=1e-6)


def test_dask_worker_with_two_threads_equals_serial():
    p, q = model(), nonlinear()
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        dist = wb.sweep(p, {x: XS}, what="sensitivity", client=client)
        dist_q = wb.sweep(q, {x: XS}, what="response", client=client)
        assert dist.workers == 2
        ms = wb.multistart(model(), seeds=2, client=client, n_starts=2)
        # the worker process stayed up (no restart): same worker for every record
        assert len({rec["worker"] for rec in dist.records}) == 1
    assert_same(dist, wb.sweep(p, {x: XS}, what="sensitivity", jobs=1))
    np.testing.assert_allclose(dist_q.values("y"), wb.sweep(q, {x: XS}, what="response", jobs=1).values("y"), atol=1e-12)
    # by hand (test_sweep.py): a = 0.2 gives x = 0.2, F = 0.25
    assert ms.status == "optimal" and ms.upper_value == pytest.approx(0.25, abs=1e-6)
