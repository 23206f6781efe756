"""method="hypergradient" against its baselines, one command: writes benchmarks/results/hypergradient.md.

    python benchmarks/hypergradient/run.py [--kkt-time-limit 150] [--only SECTION ...]

Sections (all by default; ``--only`` re-runs some of them: the results file is rendered from every
section's last rows, kept in benchmarks/results/hypergradient.json with the time and ``uptime`` of
the run that made them; ``--dry`` prints the rows and writes nothing; ``--render`` runs nothing and
rewrites the file from the stored rows):

* ``ridge-real``: ridge, one penalty per feature, on load_diabetes with polynomial features of
  degree 2, 3, 4 (65, 285, 1000 features): validation loss and wall time of the hypergradient
  route against the KKT route (``n_starts=1, global_search=False``) in the same run. A KKT run
  that may not finish runs in a subprocess killed after ``--kkt-time-limit`` seconds.
* ``ridge-sparse``: benchmarks/scale's banded sparse ridge (1000, 10⁴; the same problem object
  for both routes, the same start), the route again with ``n_starts=4``, and at n = 1000 the
  diagnosis of the difference (each point's reduced stationarity, a tight polish from each).
* ``ridge-make-regression``: make_regression (seed 0, 10⁴ features, 200 train / 200 validation
  rows): the route alone (target: under 10 s), with the declaration's construction time.
* ``ridge-global``: one global penalty: the route vs scikit-learn RidgeCV and a loop of Ridge
  fits over the same 901 α on the same validation split.
* ``logistic-gradient``: logistic regression on load_digits (640 weights, per-feature penalties):
  the hypergradient vs central finite differences and vs JAXopt implicit differentiation.
* ``logistic``: the full solve (64 per-feature penalties, and one global penalty) vs a grid of
  scikit-learn ``LogisticRegression`` over one global penalty.
Needs the ``bench`` extra (scikit-learn, jax, jaxopt).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sps

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "scale"))

import workbench as wb  # noqa: E402
from workbench.solve.smooth_follower import SmoothFollower  # noqa: E402

SEED = 0
VERDICTS: list[str] = []   # target checks, computed from the measured rows (written under "Targets")
NOTES: list[str] = []      # markdown written under the ridge table (the n = 1000 diagnosis)
STORE = ROOT / "benchmarks" / "results" / "hypergradient.json"   # every section's last rows, time and load
LAMBDA_BOX = (1e-4, 1e2)   # the linear-penalty declarations (from_arrays) for the KKT route
CANDIDATES: list[dict] = []  # one per (data, start rule): the numbers of the "choosing the default" table
CONFIGS = (  # the start rules compared on every per-feature ridge row (label, route options)
    ("default: tied_start='extra'", {}),
    ("tied_start='off' (the previous default)", {"tied_start": "off"}),
    ("tied_start='only'", {"tied_start": "only"}),
    ("tied_start='off', n_starts=2 (seed 0)", {"tied_start": "off", "n_starts": 2}),
)


def diabetes(degree: int):
    from sklearn.datasets import load_diabetes
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler
    X, t = load_diabetes(return_X_y=True)
    P = StandardScaler().fit_transform(PolynomialFeatures(degree, include_bias=False).fit_transform(X))
    t = (t - t.mean()) / t.std()
    perm = np.random.default_rng(SEED).permutation(len(t))
    tr, va = perm[:300], perm[300:]
    return P[tr], t[tr], P[va], t[va]


def regression(d: int = 10_000, n: int = 200):
    from sklearn.datasets import make_regression
    X, t = make_regression(n_samples=2 * n, n_features=d, n_informative=d // 100, noise=100.0, random_state=SEED)
    X = (X - X.mean(0)) / X.std(0)
    t = (t - t.mean()) / t.std()
    return X[:n], t[:n], X[n:], t[n:]


def linear_ridge(X, t, Xv, tv):
    """The same model as ``ridge_regression`` with the penalty λ = e^x itself as the leader
    (λ in LAMBDA_BOX), declared by ``from_arrays`` for the KKT route (Q = XᵀX/n dense)."""
    n, d = X.shape
    nv = len(tv)
    return wb.VectorBilevelProblem.from_arrays(
        sps.csc_matrix(X.T @ X / n), -(X.T @ t) / n, n_x=d, E=sps.identity(d, format="csc"),
        M=sps.csc_matrix(Xv) / np.sqrt(nv), m=tv / np.sqrt(nv), x_bounds=LAMBDA_BOX, x_start=np.ones(d))


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def kkt_child(case: str) -> None:
    """Run one KKT baseline and print its JSON (for the subprocess with a kill timeout)."""
    kind, arg = case.split(":")
    p = linear_ridge(*diabetes(int(arg))) if kind == "diabetes" else None
    out = kkt(p)
    out.pop("x", None)
    print(json.dumps(out))


def kkt_in_subprocess(case: str, limit: float) -> dict:
    t0 = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, __file__, "--kkt-child", case], capture_output=True, text=True,
                             timeout=limit)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        return {"F": None, "time": time.perf_counter() - t0, "status": f"killed after {limit:g} s"}
    except (json.JSONDecodeError, IndexError):
        return {"F": None, "time": time.perf_counter() - t0, "status": "failed: " + out.stderr.strip()[-200:]}


def hyper(p, **kw):
    r, t = timed(lambda: p.solve(method="hypergradient", progress=False, **{"max_iter": 1000, **kw}))
    return r, t


def iterations(r) -> int:
    """Optimizer iterations over every start of the route (its log has a row per iteration and start)."""
    return sum(s["iterations"] for s in r.info["starts"])


def kkt(p):
    """The KKT baseline. Its SX model (built on demand since the declaration builds MX only) is
    built first and not counted in its time, as when declarations built it eagerly."""
    from workbench.lower import lower
    _, t_sx = timed(lambda: lower(p))
    try:
        r, t = timed(lambda: p.solve(method="kkt", n_starts=1, global_search=False))
        return {"F": r.upper_value if r.status.has_point else None, "time": t,
                "status": f"{r.status} (SX model {t_sx:.2f} s, not counted)",
                "x": np.asarray(r.x, float) if r.status.has_point else None}
    except wb.errors.WorkbenchError as exc:
        return {"F": None, "time": float("nan"), "status": f"{type(exc).__name__}: {str(exc)[:90]}"}


def _candidate(data, config, n, r, t_h, k) -> None:
    CANDIDATES.append({"data": data, "config": config, "n": n, "F": r.upper_value, "time": t_h,
                       "status": str(r.status), "F_kkt": k["F"], "time_kkt": k["time"]})


def _row(label, n, t_build, r, t_h, k) -> str:
    kv = k["F"]
    rel = "—" if kv is None else f"{(r.upper_value - kv) / abs(kv):+.1e}"
    ratio = "—" if kv is None else f"{t_h / k['time']:.3f}"
    if kv is None and "killed" in k["status"]:
        ratio = f"< {t_h / k['time']:.3f}"
    kvs = "—" if kv is None else f"{kv:.10g}"
    kt = "—" if not np.isfinite(k["time"]) else f"{k['time']:.2f}"
    line = (f"| {label} | {n} | {t_build:.2f} | {r.upper_value:.10g} | {t_h:.2f} | {iterations(r)} / "
            f"{r.info['evaluations']} | {r.status} | {r.info['leader_stationarity']:.1e} | {kvs} | {kt} | "
            f"{k['status']} | {rel} | {ratio} |")
    print(line, flush=True)
    if kv is not None and n >= 1000:
        rel_v, ratio_v = (r.upper_value - kv) / abs(kv), t_h / k["time"]
        VERDICTS.append(f"Ridge per feature, {label}, n = {n}: time ratio {ratio_v:.3f} "
                        f"({'met' if ratio_v <= 0.1 else 'NOT met'}: <= 1/10); relative difference {rel_v:+.1e} "
                        f"({'met: within 1e-6' if abs(rel_v) <= 1e-6 else ('met: lower than the KKT route, a better stationary point' if rel_v < 0 else 'NOT met: within 1e-6')})")
    return line


def ridge_real_rows(kkt_limit: float) -> list[str]:
    rows = []
    for deg in (2, 3, 4):
        data = diabetes(deg)
        p, t_build = timed(lambda: wb.VectorBilevelProblem.ridge_regression(*data, name=f"diabetes{deg}"))
        d = data[0].shape[1]
        if deg == 2:
            k = kkt(linear_ridge(*data))
        elif deg == 3:
            k = kkt_in_subprocess(f"diabetes:{deg}", kkt_limit)
        else:
            k = {"F": None, "time": float("nan"), "status": "not run (see degree 3)"}
        configs = CONFIGS if deg < 4 else CONFIGS[:2]   # degree 4 hits max_iter: the default and the previous one
        for c, (config, kw) in enumerate(configs):
            r, t_h = hyper(p, **kw)
            if deg == 2 and c == 0:
                rows.append(_row(f"diabetes, degree {deg} (real), e^x; {config}; KKT on the same object", d, t_build,
                                 r, t_h, kkt(p)))
            rows.append(_row(f"diabetes, degree {deg} (real), e^x; {config}; KKT on the λ = e^x declaration", d,
                             t_build, r, t_h, k))
            _candidate(f"diabetes, degree {deg}", config, d, r, t_h, k)
            if deg == 4 and c == 0:
                NOTES.extend(degree4_diagnosis(p, r))
    return rows


def degree4_diagnosis(p, r) -> list[str]:
    """Why degree 4 does not converge: Φ along the run, and the curvature of Φ where it stopped —
    the Hessian by central differences of the exact hypergradient (h = 1e-6, 2 n_x evaluations),
    its eigenvalues on the coordinates off the box's faces."""
    from workbench.solve.leader_descent import stationarity
    eng = SmoothFollower(p, p.parameter_vector())
    x = np.asarray(r.x, float)
    n, h = x.size, 1e-6
    H = np.empty((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = h
        H[:, j] = (eng.evaluate(x + e).grad - eng.evaluate(x - e).grad) / (2 * h)
    free = np.abs(x) < 20 - 1e-3
    w = np.linalg.eigvalsh(((H + H.T) / 2)[np.ix_(free, free)])
    g = eng.evaluate(x).grad
    won = min(r.info["starts"], key=lambda s: s["F"])["start"]   # the run whose end is the answer
    log = [row for row in r.log if row["start"] == won]
    its = [row for row in log if row["iteration"] in (0, 100, 250, 500, 750) or row is log[-1]]
    out = ["### Why diabetes degree 4 (1000 penalties, 300 training and 142 validation rows) does not converge\n",
           f"Φ along the run that gave the answer (the {r.info['starts'][won]['origin']} run; iteration: Φ, "
           "projected gradient): "
           + "; ".join(f"{row['iteration']}: {row['F']:.5f}, {row['projected_gradient']:.1e}" for row in its) + ".\n",
           f"Curvature where it stopped (Φ = {r.upper_value:.6f}, projected gradient "
           f"{stationarity(x, g, -20 * np.ones(n), 20 * np.ones(n)):.1e}; Hessian by central differences of the exact "
           f"hypergradient on the {int(free.sum())} coordinates off the box's faces): eigenvalues from {w[0]:.1e} to "
           f"{w[-1]:.1e}; {int(np.sum(w < 0))} negative ({int(np.sum(w < -1e-8))} below −1e-8); "
           f"{int(np.sum(np.abs(w) < 1e-4))} of magnitude below 1e-4.\n"]
    print("\n".join(out), flush=True)
    return out


def ridge_sparse_rows() -> list[str]:
    """Every start rule (CONFIGS) on the same object; the KKT route (from the declaration's start
    x = 1, the route's first start) is measured once per size and every row is compared with it."""
    from problems import ridge as sparse_ridge
    rows = []
    for n in (1000, 10000):
        p, t_build = timed(lambda: sparse_ridge(n))
        runs = [(config, *hyper(p, **kw)) for config, kw in CONFIGS]
        k = kkt(p)
        for config, r, t_h in runs:
            rows.append(_row(f"banded sparse (benchmarks/scale ridge, seed 0), same object; {config}", n, t_build,
                             r, t_h, k))
            _candidate(f"banded sparse, n = {n}", config, n, r, t_h, k)
        if n == 1000:
            NOTES.extend(ridge_sparse_diagnosis(p, runs[1][1], runs[0][1], k))
    return rows


def ridge_sparse_diagnosis(p, r1, rm, k) -> list[str]:
    """r1: the run from the declaration's start only (tied_start="off"); rm: the default (the start
    and the tied point)."""
    """Why the routes differ at n = 1000: each point's reduced stationarity, and L-BFGS-B from it
    with a tolerance 10⁴ times tighter (gtol 1e-10 · |F|): a point that moves is not stationary."""
    import scipy.optimize as so
    from workbench.solve.leader_descent import ReducedObjective, stationarity
    red = ReducedObjective(SmoothFollower(p, p.parameter_vector()))
    n = p.n_x
    lo, hi = np.zeros(n), np.full(n, 10.0)
    out = ["### Why the routes differ at n = 1000 (same problem object, same start x = 1)\n",
           "Reduced stationarity ‖P(x − ∇Φ) − x‖∞ at each route's point (∇Φ by the matrix engine), then L-BFGS-B "
           "from that point with gtol = 1e-10 · |Φ| (10⁴ times tighter than the route's): Φ after the polish and its "
           "relative change (a point that is not stationary would move).\n",
           "| point | Φ | stationarity | Φ after tight L-BFGS-B | relative change | zero penalties (λ_j = 0) |",
           "|---|---|---|---|---|---|"]
    for label, x in (("KKT route (Ipopt on the MPCC)", k["x"]), ("hypergradient route, tied_start='off' (start x = 1)", r1.x),
                     ("hypergradient route, default (best of the start and the tied point)", rm.x)):
        x = np.clip(np.asarray(x, float), lo, hi)
        e = red.at(x)
        pg = stationarity(x, e.grad, lo, hi)
        res = so.minimize(red, x, jac=True, method="L-BFGS-B", bounds=so.Bounds(lo, hi),
                          options={"maxiter": 20000, "gtol": 1e-10 * abs(e.F), "ftol": 1e-16, "maxcor": 30})
        out.append(f"| {label} | {e.F:.10f} | {pg:.1e} | {res.fun:.10f} | {(res.fun - e.F) / abs(e.F):+.1e} | "
                   f"{int(np.sum(res.x <= 1e-12))} |")
    moved = max(abs(float(line.split("|")[5])) for line in out[-3:])
    out += ["", f"Largest relative change by the tight polish: {moved:.1e}: every point is stationary to that accuracy, "
            "so the differences in Φ are between distinct stationary points of a nonconvex Φ, not an early stop.", "",
            f"The default's runs (Φ at each run's end; tied stage: t = {rm.info['tied_start']['t']:.6f}, "
            f"Φ(t·1) = {rm.info['tied_start']['F']:.6f}, {rm.info['tied_start']['evaluations']} evaluations): "
            + ", ".join(f"{s['origin']}: {s['F']:.10f} ({s['iterations']} it., "
                        f"{'converged' if s['converged'] else 'not converged'})" for s in rm.info["starts"]) + ".", ""]
    print("\n".join(out), flush=True)
    return out


def make_regression_rows() -> list[str]:
    data = regression()
    p, t_build = timed(lambda: wb.VectorBilevelProblem.ridge_regression(*data, name="make_regression"))
    rows = []
    none = {"F": None, "time": float("nan"), "status": "not run (dense 10⁴ × 10⁴ Hessian as SX)"}
    for c, (config, kw) in enumerate(CONFIGS):
        r, t_h = hyper(p, **kw)
        met = "met" if t_h < 10.0 else "NOT met"
        if c == 0:
            VERDICTS.append(f"make_regression 10⁴, default: the solve took {t_h:.2f} s ({met}: < 10 s), "
                            f"the declaration {t_build:.2f} s")
        rows.append(_row(f"make_regression (seed 0), 200 + 200 rows, e^x; {config} (solve < 10 s: {met})", 10000,
                         t_build, r, t_h, none))
        _candidate("make_regression, n = 10⁴", config, 10000, r, t_h, none)
    return rows


def global_ridge_rows() -> list[str]:
    from sklearn.linear_model import Ridge
    Xtr, ttr, Xva, tva = diabetes(2)
    p = wb.VectorBilevelProblem.ridge_regression(Xtr, ttr, Xva, tva, penalty="global")
    r, t_h = timed(lambda: p.solve(method="hypergradient", progress=False))
    n = len(ttr)

    def grid():  # sklearn Ridge minimises ‖Xw − t‖² + α‖w‖²: α = n e^x for our 1/(2n)‖Xw − t‖² + ½ e^x ‖w‖²
        alphas = np.logspace(-4, 5, 901)
        losses = [np.sum((Ridge(alpha=a, fit_intercept=False).fit(Xtr, ttr).predict(Xva) - tva) ** 2) / (2 * len(tva))
                  for a in alphas]
        i = int(np.argmin(losses))
        return alphas[i], losses[i]
    (a, lg), t_g = timed(grid)

    def ridgecv():  # the same train/validation split as a PredefinedSplit; refit on the train rows only
        from sklearn.linear_model import RidgeCV
        from sklearn.model_selection import PredefinedSplit
        fold = np.r_[np.full(len(ttr), -1), np.zeros(len(tva))]
        cv = RidgeCV(alphas=np.logspace(-4, 5, 901), fit_intercept=False, cv=PredefinedSplit(fold),
                     scoring="neg_mean_squared_error").fit(np.vstack([Xtr, Xva]), np.r_[ttr, tva])
        w = Ridge(alpha=cv.alpha_, fit_intercept=False).fit(Xtr, ttr)
        return cv.alpha_, np.sum((w.predict(Xva) - tva) ** 2) / (2 * len(tva))
    (ac, lc), t_c = timed(ridgecv)
    best = min(lc, lg)
    verdict = "equal or lower: met" if r.upper_value <= best * (1 + 1e-9) else "NOT met"
    VERDICTS.append(f"Ridge, one global penalty: route {r.upper_value:.10g} vs best of RidgeCV / grid {best:.10g} "
                    f"({verdict})")
    rows = [f"| hypergradient route (one e^x) | α = n e^x = {n * np.exp(r.x[0]):.6g} | {r.upper_value:.10g} | {t_h:.2f} | "
            f"{r.status} | {(r.upper_value - best) / best:+.1e} ({verdict}) |",
            f"| scikit-learn RidgeCV, 901 α (log-spaced 1e-4 … 1e5), PredefinedSplit = the same split | α = {ac:.6g} | "
            f"{lc:.10g} | {t_c:.2f} | — | — |",
            f"| scikit-learn Ridge, loop over the same 901 α | α = {a:.6g} | {lg:.10g} | {t_g:.2f} | — | — |"]
    print("\n".join(rows), flush=True)
    return rows


def digits():
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler
    X, lab = load_digits(return_X_y=True)
    perm = np.random.default_rng(SEED).permutation(len(lab))
    X = StandardScaler().fit_transform(X)[perm]
    lab = lab[perm]
    return X[:1078], lab[:1078], X[1078:], lab[1078:]


def jaxopt_hypergradient(Xtr, ltr, Xva, lva, x0):
    import jax
    import jax.numpy as jnp
    import jaxopt
    jax.config.update("jax_enable_x64", True)
    Ytr, Yva = jnp.eye(10)[ltr], jnp.eye(10)[lva]
    Xtr, Xva = jnp.asarray(Xtr), jnp.asarray(Xva)

    def loss(W, X, Y):
        Z = X @ W
        return jnp.mean(jax.nn.logsumexp(Z, axis=1) - jnp.sum(Z * Y, axis=1))

    def inner(W, x):
        return loss(W, Xtr, Ytr) + 0.5 * jnp.sum(jnp.exp(x)[:, None] * W ** 2)

    from functools import partial  # the implicit linear system solved to 1e-12 (jaxopt's CG default is looser)
    solver = jaxopt.LBFGS(fun=inner, tol=1e-11, maxiter=5000, implicit_diff=True,
                          implicit_diff_solve=partial(jaxopt.linear_solve.solve_cg, tol=1e-12, maxiter=2000))

    def outer(x):
        W = solver.run(jnp.zeros((64, 10)), x).params
        return loss(W, Xva, Yva)
    g = jax.jit(jax.grad(outer))
    g(jnp.asarray(x0)).block_until_ready()  # compile
    t0 = time.perf_counter()
    out = np.asarray(g(jnp.asarray(x0)).block_until_ready())
    return out, time.perf_counter() - t0


LOGISTIC_X0 = np.log(1e-2)
LOGISTIC_MAX_ITER = 1000


def logistic_gradient_rows() -> list[str]:
    Xtr, ltr, Xva, lva = digits()
    p = wb.VectorBilevelProblem.logistic_regression(Xtr, ltr, Xva, lva)
    x0 = np.full(64, LOGISTIC_X0)
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):   # as inside the route (its blas_threads=1)
        eng = SmoothFollower(p, p.parameter_vector())
        eng.evaluate(x0 + 0.01)
        e, t_hg = timed(lambda: eng.evaluate(x0))      # warm start from a nearby point, as inside the route
        cold = SmoothFollower(p, p.parameter_vector())
        _, t_cold = timed(lambda: cold.evaluate(x0))
        h = 1e-4

        def phi(x):
            return eng.evaluate(x).F
        fd, t_fd = timed(lambda: np.array([(phi(x0 + h * u) - phi(x0 - h * u)) / (2 * h) for u in np.eye(64)]))
    jx, t_jx = jaxopt_hypergradient(Xtr, ltr, Xva, lva, x0)
    scale = np.max(np.abs(e.grad))
    errs = (np.max(np.abs(e.grad - fd)) / scale, np.max(np.abs(e.grad - jx)) / scale)
    VERDICTS.append(f"Logistic hypergradient: agreement {errs[0]:.1e} with central differences, {errs[1]:.1e} with "
                    f"JAXopt ({'met' if max(errs) <= 1e-6 else 'NOT met'}: <= 1e-6); time per hypergradient "
                    f"{t_hg:.3f} s (workbench, warm) vs {t_jx:.3f} s (JAXopt)")
    rows = [f"| workbench (matrix engine: damped Newton with the stated Hessian + Cholesky, adjoint by the same "
            f"factor) | warm {t_hg:.3f} / cold {t_cold:.3f} | — |",
            f"| central differences (h = 1e-4, 128 warm follower solves) | {t_fd:.2f} (total) | "
            f"{np.max(np.abs(e.grad - fd)) / scale:.1e} |",
            f"| JAXopt LBFGS (tol 1e-11) + implicit_diff (CG to 1e-12), jit, float64 | {t_jx:.3f} | "
            f"{np.max(np.abs(e.grad - jx)) / scale:.1e} |"]
    print("\n".join(rows), flush=True)
    return rows


def _logloss_accuracy(W: np.ndarray, X: np.ndarray, lab: np.ndarray) -> tuple[float, float]:
    """Mean validation log-loss and accuracy of weights W (d × K), computed here in NumPy."""
    Z = X @ W
    Z = Z - Z.max(axis=1, keepdims=True)
    logP = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
    return float(-np.mean(logP[np.arange(len(lab)), lab])), float(np.mean(np.argmax(Z, 1) == lab))


def logistic_solve_rows() -> list[str]:
    from sklearn.linear_model import LogisticRegression
    Xtr, ltr, Xva, lva = digits()
    n = len(ltr)
    rows, found, glob_route = [], None, None
    for penalty, label in (("per_feature", "64 per-feature penalties"), ("global", "one global penalty")):
        p = wb.VectorBilevelProblem.logistic_regression(Xtr, ltr, Xva, lva, penalty=penalty)
        x0 = np.full(p.n_x, LOGISTIC_X0)
        r, t_h = timed(lambda: p.solve(method="hypergradient", start=x0, progress=False, max_iter=LOGISTIC_MAX_ITER))
        loss, acc = _logloss_accuracy(r.y.reshape(64, 10, order="F"), Xva, lva)
        assert abs(loss - r.upper_value) <= 1e-9 * max(1.0, loss)   # the route's F is the NumPy log-loss
        extra = f"; e^x = {np.exp(r.x[0]):.3g} (C = {1 / (np.exp(r.x[0]) * n):.3g})" if penalty == "global" else ""
        rows.append(f"| hypergradient route, {label}{extra} | {r.upper_value:.6f} | {acc:.4f} | {t_h:.1f} "
                    f"({iterations(r)} it., {r.info['evaluations']} ev.; certify {r.info['certify_s']:.2f}) | {r.status} |")
        print(rows[-1], flush=True)
        found = found if penalty == "global" else (r.upper_value, t_h, str(r.status))
        if penalty == "global":
            glob_route = (r.upper_value, t_h)

    def grid():  # sklearn: C Σ loss + ½‖W‖²  ⇔  mean loss + ½ (1/(C n)) ‖W‖²
        best = (np.inf, None, None)
        for C in np.logspace(-4, 2, 25):
            m = LogisticRegression(C=C, fit_intercept=False, tol=1e-10, max_iter=5000).fit(Xtr, ltr)
            val = -np.mean(np.log(m.predict_proba(Xva)[np.arange(len(lva)), lva]))
            if val < best[0]:
                best = (val, C, float(m.score(Xva, lva)))
        return best
    (gv, C, gacc), t_g = timed(grid)
    rows.append(f"| scikit-learn LogisticRegression (lbfgs, tol 1e-10), grid of 25 C log-spaced 1e-4 … 1e2 (one global "
                f"penalty; e^x = 1/(C n)), best C = {C:.3g} | {gv:.6f} | {gacc:.4f} | {t_g:.1f} | — |")
    print(rows[-1], flush=True)
    VERDICTS.append(f"Logistic full solve: 64 per-feature penalties reach validation log-loss {found[0]:.6f} in "
                    f"{found[1]:.1f} s ({found[2]}) against {gv:.6f} for the best of 25 global C ({t_g:.1f} s); the "
                    f"route with one global penalty reaches {glob_route[0]:.6f} in {glob_route[1]:.1f} s "
                    f"({'equal or lower than the grid' if glob_route[0] <= gv * (1 + 1e-9) else 'higher than the grid'})")
    return rows


SECTIONS = ("ridge-real", "ridge-sparse", "ridge-make-regression", "ridge-global", "logistic-gradient", "logistic")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kkt-time-limit", type=float, default=150.0)
    ap.add_argument("--only", nargs="+", choices=SECTIONS, default=None,
                    help="run these sections only; the results file keeps the other sections' last rows")
    ap.add_argument("--kkt-child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help="results file (default: benchmarks/results/hypergradient.md)")
    ap.add_argument("--dry", action="store_true", help="print the rows only, write nothing")
    ap.add_argument("--render", action="store_true", help="run nothing: write the results file from the stored rows")
    a = ap.parse_args()
    if a.kkt_child:
        return kkt_child(a.kkt_child)
    chosen = () if a.render else tuple(a.only) if a.only else SECTIONS
    makers = {"ridge-real": lambda: ridge_real_rows(a.kkt_time_limit), "ridge-sparse": ridge_sparse_rows,
              "ridge-make-regression": make_regression_rows, "ridge-global": global_ridge_rows,
              "logistic-gradient": logistic_gradient_rows, "logistic": logistic_solve_rows}
    store = json.loads(STORE.read_text()) if STORE.exists() else {}
    cmd = "python benchmarks/hypergradient/run.py" + ("" if set(chosen) == set(SECTIONS) else " --only " + " ".join(chosen))
    for name in SECTIONS:
        if name not in chosen:
            continue
        print(f"== {name}", flush=True)
        v0, n0, c0, up0 = len(VERDICTS), len(NOTES), len(CANDIDATES), _uptime()
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        rows, secs = timed(makers[name])
        store[name] = {"rows": rows, "notes": NOTES[n0:], "verdicts": VERDICTS[v0:], "candidates": CANDIDATES[c0:],
                       "when": when, "seconds": secs,
                       "command": cmd, "load": f"`uptime` before: {up0}; after: {_uptime()}"}
        print(f"{name}: {secs:.0f} s; {store[name]['load']}", flush=True)
    if a.dry:
        return
    STORE.write_text(json.dumps(store, indent=1, ensure_ascii=False) + "\n")
    out = Path(a.out or ROOT / "benchmarks" / "results" / "hypergradient.md")
    out.write_text(render(store))
    print(f"wrote {out} and {STORE}")


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load average %.2f %.2f %.2f" % os.getloadavg()


def render(store: dict) -> str:
    """The results file from every section's stored rows (each section says when it ran and the load)."""
    def runs(*names):
        return "".join(f"\n- `{n}`: {store[n]['when']}, {store[n]['seconds']:.0f} s, {store[n]['load']}"
                       + (f" (`{store[n]['command']}`)" if "command" in store[n] else "") for n in names if n in store)
    md = ["# method=\"hypergradient\" against its baselines\n",
          "Command: `python benchmarks/hypergradient/run.py [--only SECTION ...]` (one command; `--only` re-runs "
          "some sections and this file keeps the other sections' last rows, stored in `hypergradient.json`). "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores "
          "shared with other engineers, so absolute times are inflated by the load stated per section; every ratio "
          f"is measured within one run of its section. Data splits use seed {SEED}. Sections, when they ran and the "
          "load:" + runs(*SECTIONS) + "\n"]
    ridge = [r for n in ("ridge-real", "ridge-sparse", "ridge-make-regression") for r in store.get(n, {}).get("rows", [])]
    if ridge:
        md += ["## Ridge, one penalty per feature: hypergradient route vs KKT route\n",
               "Route options: `p.solve(method=\"hypergradient\", max_iter=1000)` (tol 1e-6 relative: projected "
               "gradient <= 1e-6 · max(|F(x0)|, |pg(x0)|)) with the start rule the row names (`tied_start`, "
               "`n_starts`; the default is `tied_start=\"extra\"`: descend from the declaration's start and from the "
               "tied point, the best point of the box's diagonal x = t·1, and keep the lower end); KKT: "
               "`p.solve(method=\"kkt\", n_starts=1, global_search=False)` (its start is the declaration's x_start, the "
               "hypergradient route's first start). The real-data and make_regression rows use the `ridge_regression` family "
               "(penalty e^x, x in [-20, 20]); the KKT route fails on that declaration, so it also runs on the same "
               f"model with the penalty λ = e^x itself as the leader (`from_arrays`, λ in {LAMBDA_BOX}). The sparse "
               "rows are `benchmarks/scale`'s `from_arrays` ridge (λ in [0, 10]), the same object for both routes. "
               "build s = constructing the declaration (its MX model; the SX model the KKT route needs is built on "
               "demand, just before the KKT timing starts, and its time is given in the KKT status column). "
               "iterations = the optimizer's, summed over the starts. relative difference = (F_hyper − F_KKT)/|F_KKT| "
               "(negative: the hypergradient route found the lower validation loss).\n",
               "| data | n_x = n_y | build s | val. loss (hypergradient) | time s | iterations / evaluations | status | "
               "stationarity | val. loss (KKT) | time s | KKT status | relative difference | time ratio |",
               "|---|---|---|---|---|---|---|---|---|---|---|---|---|", *ridge, ""]
        md += candidates_table([c for n in ("ridge-real", "ridge-sparse", "ridge-make-regression")
                                for c in store.get(n, {}).get("candidates", [])])
        md += [line for n in ("ridge-real", "ridge-sparse", "ridge-make-regression") for line in store.get(n, {}).get("notes", [])]
    if "ridge-global" in store:
        md += ["## Ridge, one global penalty: diabetes, quadratic features (65), same split\n",
               "Target: the route's validation loss equal to or lower than the best of RidgeCV and the grid "
               "(last column: (F_route − F_best)/F_best).\n",
               "| method | penalty | val. loss | time s | status | vs best of sklearn |", "|---|---|---|---|---|---|",
               *store["ridge-global"]["rows"], ""]
    if "logistic-gradient" in store:
        md += ["## Logistic regression on load_digits (1078 train / 719 validation rows, 64 × 10 = 640 weights), "
               "per-feature penalties: the hypergradient\n",
               "Hypergradient at x = log(1e-2)·1 (64 penalties); error = max |g − g_ref| / max |g|.\n",
               "| method | time per hypergradient s | error vs workbench |", "|---|---|---|",
               *store["logistic-gradient"]["rows"], ""]
    if "logistic" in store:
        md += ["## Logistic regression on load_digits: the full solve against a grid over one global penalty\n",
               f"Route: `p.solve(method=\"hypergradient\", start=log(1e-2)·1, max_iter={LOGISTIC_MAX_ITER})`; "
               "validation mean log-loss and accuracy recomputed in NumPy from the route's weights.\n",
               "| method | val. log-loss | val. accuracy | time s | status |", "|---|---|---|---|---|",
               *store["logistic"]["rows"], ""]
    verdicts = [v for n in SECTIONS for v in store.get(n, {}).get("verdicts", [])]
    md += ["## Targets (computed by the command from the rows above)\n", *[f"- {v}" for v in verdicts], ""]
    md += [line for line in EXPLAINED]
    return "\n".join(md) + "\n"


def candidates_table(cands: list[dict]) -> list[str]:
    """The start rules side by side, from the rows above: per data set and rule, the validation loss
    relative to the KKT route (or, where the KKT route has no answer, to tied_start='off'), and the
    time (its ratio to the KKT route's)."""
    if not cands:
        return []
    configs = [c for c, _ in CONFIGS if any(d["config"] == c for d in cands)]
    data = list(dict.fromkeys(d["data"] for d in cands))
    md = ["### Choosing the default start rule (the rows above, side by side)\n",
          "Each cell: relative difference of the validation loss (F − F_ref)/|F_ref| (negative: lower), then the "
          "route's time and, in parentheses, its ratio to the KKT route's. F_ref is the KKT route's value; where the KKT "
          "route has none (killed, not run) it is the `tied_start='off'` row's (marked ‡). Targets at n ≥ 10³ with a "
          "KKT value: relative difference <= 1e-6 (or negative) and time ratio <= 0.1.\n",
          "| data | " + " | ".join(configs) + " |", "|---|" + "---|" * len(configs)]
    for name in data:
        rows = {d["config"]: d for d in cands if d["data"] == name}
        off = rows.get(CONFIGS[1][0])
        cells = []
        for c in configs:
            d = rows.get(c)
            if d is None:
                cells.append("not run")
                continue
            ref, mark = (d["F_kkt"], "") if d["F_kkt"] is not None else (off["F"] if off else None, "‡")
            rel = "—" if ref is None else f"{(d['F'] - ref) / abs(ref):+.1e}{mark}"
            tk = d["time_kkt"]
            ratio = f" ({d['time'] / tk:.3f})" if d["F_kkt"] is not None and np.isfinite(tk) else ""
            cells.append(f"{rel}; {d['time']:.2f} s{ratio}" + ("" if d["status"] == "optimal" else f", {d['status']}"))
        md.append(f"| {name} | " + " | ".join(cells) + " |")
    return md + [""]


EXPLAINED = [  # what the investigation of issue #15 found; its numbers were measured outside this command (stated)
    "## Reading the per-feature ridge rows\n",
    "**Banded ridge, n = 1000: the routes end at different stationary points, not at an early stop.** Measured while "
    "investigating (2026-12-02 06:53–06:56 UTC, 1-min load 0.4–2.3; `/tmp` scripts, not re-run by this command): from the "
    "common start x = 1, L-BFGS-B with gtol 2.4e-4, 1e-6 and 1e-8 ends at Φ = 158.772967 each time (+4.1e-4 relative to "
    "the KKT route); so do L-BFGS-B over log-penalties λ = e^s (s >= −20 or −40: no bound at λ = 0, 14,500 iterations) "
    "and trust-constr (an interior-point method, like the KKT route's Ipopt), each followed by a polish. From the KKT "
    "route's x the reduced stationarity is 7e-6 and a tight L-BFGS-B moves Φ by 5e-11: that point is stationary too "
    "(the table above repeats this check inside the command). Constant starts λ = 0.01, 0.1, 0.5 end at 158.494096 "
    "(1.35e-3 *below* the KKT route), λ = 5 at the KKT route's 158.707740, λ = 2 and 10 at 158.772967; three of four "
    "uniform starts in the box end at the KKT route's point. The points differ in local groups of 20–40 neighbouring "
    "penalties (e.g. coordinates 80–98 and 856–875 of the band): each group settles on \"unpenalised\" (λ_j = 0) or "
    "\"shrunk\" nearly independently of the others, so stationary points multiply with n and two algorithms from the "
    "same start need not meet. Hence a second start, chosen below.\n",
    "**The default start rule (`tied_start=\"extra\"`), chosen by the side-by-side table.** Before, one start met "
    "the time and not the accuracy at n = 10³ (+4.1e-4, ratio 0.028 in this run) and `n_starts=4` the accuracy and not "
    "the time (+1.9e-8, ratio 0.150 in the previous run). Candidates, each run on every per-feature ridge row:\n",
    "- *(a) tied start only* (`tied_start=\"only\"`): first min_t Φ(t·1) over the box's diagonal (one shared value "
    "for every penalty: the one-global-penalty problem, a 1-D L-BFGS-B from the mean of the start; 6 evaluations at "
    "n = 10³), then the per-feature descent from t*·1 instead of the start. At n = 10³ it ends 1.3e-3 *below* the KKT "
    "route (a lower stationary point) at ratio 0.031; at 10⁴ and on make_regression it is equal or lower and faster. "
    "But on diabetes degree 3 it ends 5.2 % *above* the start's run: the tied point is a principled start, not a "
    "better one on every problem, so alone it breaks \"real-data rows at least as good\".\n",
    "- *(b) a small multistart* (`tied_start=\"off\", n_starts=2`: the start and one uniform point of the box, seed "
    "0): meets both at n = 10³ (+2.5e-8, ratio 0.051) because that seeded point lies in the KKT route's basin (of the "
    "previous run's three seeded points two did, one did not); on the e^x families a uniform point of x ∈ [−20, 20] "
    "means penalties up to e^{±20}, and its second run ended higher on diabetes 2 and 3 (no gain) while make_regression "
    "took 11.4 s (the 10 s target NOT met). An early stop \"once two starts agree to 1e-8\" would not have stopped the "
    "previous run before its fourth start (starts 0 and 2 agreed to 5e-8 only, 1 and 3 to 6e-9), so it costs at least "
    "n_starts=2 and is only as good as its random starts: not chosen.\n",
    "- *(c) both* (`tied_start=\"extra\"`, **the default**): the start's run, then the tied point's, the lower end "
    "wins. The tied stage runs after the first descent, so the first run is bit for bit the `\"off\"` run and the "
    "answer is never above it (on every row: equal or lower). n = 10³: −1.3e-3 at ratio 0.060 (both targets met); "
    "10⁴: +9.2e-8 at ratio 0.054; diabetes 2: lower than the start alone (0.2055069 against 0.2059044; both below the KKT route's 0.2132479 on "
    "the λ = e^x declaration); diabetes 3: equal; "
    "make_regression: 8.46 s (< 10 s, met at load 5, but the rule roughly doubles the time, so this is the target "
    "nearest to failing on a loaded machine; `tied_start=\"only\"` took 3.3 s there). A final tight polish from the "
    "winner was considered as (c′) and not added: the diagnosis table shows it moves Φ by at most 6e-8 relative.\n",
    "The make_regression values (~1e-8) are an interpolation of the 200 validation rows by 10⁴ penalties: their "
    "relative differences in the table (−35 %, −74 %) compare numbers near zero, not accuracies. At n = 10⁴ (banded) "
    "every rule ends within 1.1e-7 of the KKT route: there the difference is the stopping tolerance.\n",
    "**Diabetes, degree 4: Φ has no stationary point within reach of the descent.** 1000 penalties are chosen on 142 "
    "validation rows, and Φ keeps falling as penalties drift to the box's faces (x_j = ±20: feature unpenalised or "
    "removed), where the e^x parameterisation makes ∂Φ/∂x_j = λ_j ∂Φ/∂λ_j vanish. Measured while investigating (same "
    "scripts, 1-min load 1–9): Φ = 0.0363 after 1000 L-BFGS-B iterations, 0.0264 after 6000, 0.0238 after 12,000, with "
    "|x_j| > 15 for 77, 93, 103 coordinates at 8000, 10,000, 12,000 iterations; at the 6000-iteration point the Hessian "
    "of Φ (central differences of the exact hypergradient, 994 free coordinates) has 220 negative eigenvalues (down to "
    "−3.8e-6) and 869 of magnitude 1e-8 … 1e-4 against a largest 0.15, so the iterate is not near a local minimum. A "
    "second-order leader step does not help: SciPy's trust-ncg and trust-krylov with Hessian-vector products "
    "(central differences of the exact hypergradient, two follower solves each) from the same start reach Φ = 0.0314 "
    "and 0.0394 after about 1750 follower solves (826 and 820 products), where L-BFGS-B is at 0.0307 after the same "
    "number (1680 iterations). The route therefore reports `not_certified` (the optimizer's iteration limit with a "
    "stationarity above the tolerance is not convergence: an earlier rule accepted 100 × the tolerance at an iteration "
    "limit and would have called the 6000-iteration point optimal). What would converge is a better-posed model "
    "(fewer penalties than validation rows, or a penalty on x), not a better optimizer.\n",
]


if __name__ == "__main__":
    main()
