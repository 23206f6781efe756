"""wb.sweep on local processes and on a Dask LocalCluster (2 worker processes, loopback).

Model used throughout: follower min_y ½(y − x)² s.t. y >= 1/2, so by hand
y*(x) = max(x, 1/2), its multiplier lam = y* − x = max(1/2 − x, 0) (stationarity
y − x − lam = 0) and dy*/dx = 1 for x > 1/2, 0 for x < 1/2.
"""
import pickle

import numpy as np
import pytest
import sympy as sp
from distributed import Client, LocalCluster

import workbench as wb
from workbench.errors import MethodError, ValueInputError
from workbench.model.vector import VectorBilevelProblem
from workbench.parallel import executor, sweep

x, y, a = sp.symbols("x y a", real=True)


def model(param: float = 0.2) -> wb.BilevelProblem:
    return wb.BilevelProblem([x], [y], (x - a) ** 2 + y ** 2, (y - x) ** 2 / 2, [x >= 0], [y >= sp.Rational(1, 2)],
                             parameters={a: param}, name="sweep_model")


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      host="127.0.0.1") as cluster, Client(cluster) as c:
        yield c


XS = np.linspace(-1.0, 2.0, 13)  # contains points on both sides of the kink at 1/2


def test_problem_declarations_pickle():
    p = model()
    q = pickle.loads(pickle.dumps(p))
    assert q.leader == p.leader and q.f == p.f
    vec = VectorBilevelProblem.from_arrays(np.eye(2), np.zeros(2), n_x=2, C=-np.eye(2), M=np.eye(2), m=np.ones(2))
    assert pickle.loads(pickle.dumps(vec)).n_y == 2  # plain pickle: its callables are data classes


def test_response_sweep_on_cluster_equals_serial_and_closed_form(client):
    p = model()
    serial = sweep(p, {x: XS}, what="response", jobs=1)
    dist = sweep(p, {x: XS}, what="response", client=client)
    assert dist.workers == 2 and serial.workers == 1
    np.testing.assert_allclose(dist.values("y"), serial.values("y"), atol=1e-12)
    np.testing.assert_allclose(dist.values("lam"), serial.values("lam"), atol=1e-12)
    np.testing.assert_allclose(serial.values("y").ravel(), np.maximum(XS, 0.5), atol=1e-8)
    np.testing.assert_allclose(serial.values("lam").ravel(), np.maximum(0.5 - XS, 0.0), atol=1e-8)


def test_sensitivity_sweep_on_cluster(client):
    p = model()
    pts = [[-0.5], [0.2], [1.0], [1.7]]  # away from the kink: dy/dx = 0, 0, 1, 1
    dist = sweep(p, pts, what="sensitivity", client=client)
    serial = sweep(p, pts, what="sensitivity", jobs=1)
    np.testing.assert_allclose(dist.values("dy_dx").ravel(), [0, 0, 1, 1], atol=1e-8)
    np.testing.assert_allclose(dist.values("hypergradient"), serial.values("hypergradient"), atol=1e-12)


def test_solve_sweep_over_parameters_on_cluster(client):
    # By hand (y* = max(x, 1/2), x >= 0): for x <= 1/2, F = (x − a)² + 1/4 is least at
    # x = clip(a, 0, 1/2); for x >= 1/2, F = (x − a)² + x² is least at x = max(a/2, 1/2).
    # a = 0.2: x = 0.2, F = 0.25 (vs 0.34 at x = 1/2).  a = 3: x = 1.5, F = 2.25 + 2.25 = 4.5
    # (vs 6.25 + 0.25 = 6.5 at x = 1/2).
    p = model()
    r = sweep(p, [{a: 0.2}, {a: 3.0}], what="solve", client=client, n_starts=2)
    assert [rec["status"] for rec in r.records] == ["optimal", "optimal"]
    np.testing.assert_allclose(r.values("x").ravel(), [0.2, 1.5], atol=1e-6)
    np.testing.assert_allclose(r.values("upper_value"), [0.25, 4.5], atol=1e-6)


def test_local_process_pool_equals_serial_and_failures_are_records():
    # follower y >= 1/2 and y <= x: infeasible for x < 1/2, where the record says why.
    p = wb.BilevelProblem([x], [y], x + y, (y - x) ** 2 / 2, [x >= 0], [y >= sp.Rational(1, 2), y <= x])
    pts = [[0.0], [0.8], [1.5]]
    local = sweep(p, pts, jobs=2)
    serial = sweep(p, pts, jobs=1)
    assert local.failures == serial.failures == [0]
    assert "error" in local.records[0] and not local.records[0]["ok"]
    np.testing.assert_allclose(local.values("y")[1:].ravel(), [0.8, 1.5], atol=1e-8)  # y* = x when x >= 1/2
    with executor(jobs=2) as pool:
        assert list(pool.map(abs, [-1, 2])) == [1, 2]


def test_vector_declaration_sweeps_on_cluster(client):
    # follower min ½‖y‖² − xᵀy (Q = I, C = −I) gives y* = x exactly.
    vec = VectorBilevelProblem.from_arrays(np.eye(2), np.zeros(2), n_x=2, C=-np.eye(2), M=np.eye(2), m=np.ones(2))
    pts = [[0.5, -1.0], [2.0, 3.0]]
    r = sweep(vec, pts, client=client)
    np.testing.assert_allclose(r.values("y"), pts, atol=1e-8)


def test_executor_from_a_scheduler_address(client):
    # what the BOLIB benchmark's --dask ADDRESS uses: connect, run, close the new client only
    with executor(client=client.scheduler.address) as pool:
        assert list(pool.map(abs, [-1, 2, -3])) == [1, 2, 3]
    assert client.status == "running"


def test_bad_sweep_input_is_typed():
    p = model()
    with pytest.raises(MethodError, match="what must be"):
        sweep(p, [[0.0]], what="gradient")
    with pytest.raises(MethodError, match="over='parameters'"):
        sweep(p, [[0.0]], what="solve", over="leader")
    with pytest.raises(ValueInputError, match="no points"):
        sweep(p, [], jobs=1)
    with pytest.raises(ValueInputError, match="entries"):
        sweep(p, [[0.0, 1.0]], jobs=1)
    with pytest.raises(MethodError, match="jobs"):
        executor(jobs=0)
