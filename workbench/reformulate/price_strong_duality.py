"""Price x quantity terms of a leader paid in shadow prices, rewritten by LP duality.

A leader paid the follower's multipliers (``wb.multiplier``) has bilinear terms such as
mu_balance * q_L in F. For a follower that is an LP in y,

    min_y c(x)^T y + d(x)   s.t.  g = A y - b(x) >= 0  (lam),   h = E y - e(x) = 0  (mu),

with A, E constant and c, b, e affine in x, every point of the KKT system satisfies the identities

    S_j := c_j(x) - A_j^T lam - E_j^T mu = 0                    (stationarity in y_j)
    lam_i g_i = 0                                               (complementarity)
    h_k = 0,

hence also every product  S_j * v  (v a leader or follower variable),  h_k * v  (v any variable,
multipliers included) and  lam_i * g_i.  Each is a quadratic form in w = [x, y, lam, mu] that
vanishes on the KKT set, so

    F'(w) = F(w) + sum_k theta_k I_k(w)

equals F wherever the single-level KKT program is feasible, for *any* weights theta. Strong
duality c(x)^T y = b(x)^T lam + e(x)^T mu is the sum of all S_j y_j, lam_i g_i and mu_k h_k, and the
textbook rewrite of a producer's revenue (stationarity in its own output times that output,
complementarity of its capacity bound, then strong duality for its offer x times its output) is
one such combination. The reduction looks for it by linear algebra: the Hessian of F' in w is
Q_F + sum_k theta_k Q_k, and the price x quantity terms are gone when every entry of it that
involves a follower variable or a multiplier is zero, a linear system in theta (sparse least
squares). When it is inconsistent, an L1 fit by HiGHS (weighted to keep monomials without a
multiplier) says which monomials stay: if none of them has a multiplier (e.g. a quadratic
production cost q_L**2, or x * q_L) the rewrite still applies and they stay in F'; if one has
(e.g. mu**2, or mu_1 * q_L when the balance is written twice and only mu_1 + mu_2 is determined)
it does not apply and :meth:`PriceStrongDuality.check` names them. Monomials in x alone are kept.

When it applies, F' (and every leader row rewritten the same way) is affine in (lam, mu), and
with the follower's stationarity affine in w the KKT program is mixed-integer linear (SOS1
complementarity; quadratic only in the (x, y) terms that stayed): no spatial branching on prices.
A follower that is not an LP of the form above is refused with the reason as well.

The rewritten problem is only equivalent on the KKT set: it is meant for the KKT program
(``Bilevel2SOS1KKT``) at the parameter value given here, and candidates are valued with the
original F afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import casadi as ca
import numpy as np
import scipy.sparse as sps
from scipy.optimize import linprog
from scipy.sparse.linalg import lsqr

from ..errors import MethodError
from ..lower import LoweredProblem
from .reduction import Reduction

REMOVED_TOL = 1e-9  # a removed Hessian entry is at most REMOVED_TOL (1 + max |Q_F|) after the rewrite


@dataclass(frozen=True)
class PriceRewrite:
    """Whether the rewrite applies (see module docstring) and what it did or why not."""

    applies: bool
    reason: str
    rewritten: tuple[str, ...] = ()   # leader pieces whose price x quantity terms were removed
    remaining: tuple[str, ...] = ()   # monomials no identity removes (with a multiplier: it does not apply)
    residual: float = 0.0             # largest removed Hessian entry left after the rewrite


def _names(lp: LoweredProblem, leader: Sequence[str] | None, follower: Sequence[str] | None) -> list[str]:
    xs = list(leader) if leader is not None else [str(lp.x[i]) for i in range(lp.n_x)]
    ys = list(follower) if follower is not None else [str(lp.y[j]) for j in range(lp.n_y)]
    return xs + ys + [f"lam[{n}]" for n in lp.g_names] + [f"mu[{n}]" for n in lp.h_names]


def _dense(e: Any) -> np.ndarray:
    return np.asarray(ca.evalf(ca.densify(e)), float)


class PriceStrongDuality(Reduction):
    """LoweredProblem -> LoweredProblem with F, G, H free of price x quantity terms (module docstring).

    ``p`` is the parameter value the rewrite is made at (the weights theta depend on it).
    """

    def __init__(self, p: np.ndarray, leader_names: Sequence[str] | None = None,
                 follower_names: Sequence[str] | None = None):
        self.p = np.asarray(p, float).reshape(-1)
        self.leader_names, self.follower_names = leader_names, follower_names
        self._cache: dict[int, tuple[PriceRewrite, Any]] = {}

    # -- structure ----------------------------------------------------------------------------
    def _pieces(self, lp: LoweredProblem) -> dict:
        num = (lambda e: ca.substitute(e, lp.p, ca.DM(self.p))) if lp.p.numel() else (lambda e: e)  # noqa: E731
        lam, mu = lp.lam_sym, lp.mu_sym
        w = ca.vertcat(lp.x, lp.y, lam, mu)
        L = lp.f - (ca.dot(lam, lp.g) if lp.g.numel() else 0) - (ca.dot(mu, lp.h) if lp.h.numel() else 0)
        return dict(w=w, F=num(lp.F), G=num(lp.G), H=num(lp.H), f=num(lp.f), g=num(lp.g), h=num(lp.h),
                    S=num(ca.gradient(L, lp.y)))

    def _structure(self, lp: LoweredProblem, d: dict) -> str:
        """Why the identities are not quadratic forms in w ("" when they are)."""
        if not lp.multiplier_dependent:
            return "the leader's pieces use no follower multipliers: there is no price x quantity term"
        xy = ca.vertcat(lp.x, lp.y)
        if not (ca.is_linear(d["f"], lp.y) or not ca.depends_on(d["f"], lp.y)):
            return "the follower's objective is not linear in y (not an LP follower)"
        grad = ca.gradient(d["f"], lp.y)
        if ca.depends_on(grad, lp.x) and not ca.is_linear(grad, lp.x):
            return "the follower's cost coefficients are not affine in the leader's variables"
        for block, names, what in ((d["g"], lp.g_names, "inequality"), (d["h"], lp.h_names, "equality")):
            for i in range(int(block.numel())):
                if ca.depends_on(block[i], xy) and not ca.is_linear(block[i], xy):
                    return (f"the follower {what} {names[i]!r} is not affine jointly in the leader's and the "
                            "follower's variables (its coefficients of y depend on x)")
        for e, what in [(d["F"], "upper objective")] + [(d["G"][k], f"upper constraint {lp.G_names[k]!r}")
                                                        for k in range(int(d["G"].numel()))] \
                + [(d["H"][k], f"upper constraint {lp.H_names[k]!r}") for k in range(int(d["H"].numel()))]:
            if ca.depends_on(e, d["w"]) and not ca.is_quadratic(e, d["w"]):
                return f"the {what} is not quadratic in (x, y, multipliers)"
        return ""

    def _identities(self, lp: LoweredProblem, d: dict) -> tuple[list[tuple[Any, int]], list[np.ndarray]]:
        """The identities as (affine form, variable index) and the forms' gradients in w."""
        nx, ny, ng, nh = lp.n_x, lp.n_y, int(lp.g.numel()), int(lp.h.numel())
        n = nx + ny + ng + nh
        forms, grads = [], []
        JS = _dense(ca.jacobian(d["S"], d["w"])) if ny else np.zeros((0, n))
        Jh = _dense(ca.jacobian(d["h"], d["w"])) if nh else np.zeros((0, n))
        Jg = _dense(ca.jacobian(d["g"], d["w"])) if ng else np.zeros((0, n))
        for j in range(ny):                              # S_j * y_l, S_j * x_m
            for v in list(range(nx, nx + ny)) + list(range(nx)):
                forms.append((d["S"][j], v))
                grads.append(JS[j])
        for k in range(nh):                              # h_k * (any variable)
            for v in range(n):
                forms.append((d["h"][k], v))
                grads.append(Jh[k])
        for i in range(ng):                              # lam_i * g_i
            forms.append((d["g"][i], nx + ny + i))
            grads.append(Jg[i])
        return forms, grads

    # -- the linear system ---------------------------------------------------------------------
    @staticmethod
    def _system(n: int, nx: int, forms: list[tuple[Any, int]], grads: list[np.ndarray]
                ) -> tuple[sps.csr_matrix, dict[tuple[int, int], int]]:
        """M with M theta = the targeted upper-triangle Hessian entries of sum_k theta_k I_k."""
        index: dict[tuple[int, int], int] = {}
        for a in range(n):
            for b in range(a, n):
                if b >= nx:                            # involves y or a multiplier (x-x entries are kept)
                    index[(a, b)] = len(index)
        rows, cols, vals = [], [], []
        for k, ((_, v), gr) in enumerate(zip(forms, grads)):
            for i in np.flatnonzero(gr):
                key = (min(i, v), max(i, v))
                if key in index:
                    rows.append(index[key])
                    cols.append(k)
                    vals.append(2.0 * gr[i] if i == v else gr[i])
        M = sps.csr_matrix((vals, (rows, cols)), shape=(len(index), len(forms)))
        return M, index

    @staticmethod
    def _targets(Q: np.ndarray, index: dict[tuple[int, int], int]) -> np.ndarray:
        q = np.zeros(len(index))
        for (a, b), r in index.items():
            q[r] = Q[a, b]
        return q

    def _weights(self, M: sps.csr_matrix, q: np.ndarray, price: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """theta with M theta = -q when consistent (least squares), and the residual q + M theta; when
        inconsistent, an L1 fit that puts what stays preferably on monomials without a multiplier
        (``price`` marks the rows with one: weight 10 against 1)."""
        if not np.any(q):
            return np.zeros(M.shape[1]), q
        tol = REMOVED_TOL * (1 + np.max(np.abs(q)))
        theta = lsqr(M, -q, atol=1e-15, btol=1e-15, conlim=1e12, iter_lim=20 * max(M.shape))[0]
        res = q + M @ theta
        if np.max(np.abs(res)) <= tol:
            return theta, res
        m, k = M.shape
        A = sps.hstack([M, sps.identity(m), -sps.identity(m)], format="csr")
        wgt = np.where(price, 10.0, 1.0)
        c = np.concatenate([np.zeros(k), wgt, wgt])
        r = linprog(c, A_eq=A, b_eq=-q, bounds=[(None, None)] * k + [(0, None)] * (2 * m), method="highs")
        if r.status != 0:
            return theta, res
        theta = r.x[:k]
        res = q + M @ theta
        done = np.abs(res) <= 1e-6 * (1 + np.max(np.abs(q)))  # polish the removed entries to full precision
        if np.any(done) and np.max(np.abs(res[done])) > tol:
            sub = M[done]
            theta = theta + lsqr(sub, -(q[done] + sub @ theta), atol=1e-15, btol=1e-15,
                                 iter_lim=20 * max(M.shape))[0]
            res = q + M @ theta
        return theta, res

    # -- public --------------------------------------------------------------------------------
    def check(self, lp: LoweredProblem) -> PriceRewrite:
        """Whether the rewrite applies to ``lp`` at ``p``, and why not (see module docstring)."""
        return self._run(lp)[0]

    def accepts(self, lp: LoweredProblem) -> bool:
        return self.check(lp).applies

    def _run(self, lp: LoweredProblem) -> tuple[PriceRewrite, Any]:
        key = id(lp)
        if key in self._cache:
            return self._cache[key]
        out = self._compute(lp)
        self._cache[key] = out
        return out

    def _compute(self, lp: LoweredProblem) -> tuple[PriceRewrite, Any]:
        d = self._pieces(lp)
        why = self._structure(lp, d)
        if why:
            return PriceRewrite(False, why), None
        nx, w = lp.n_x, d["w"]
        n = int(w.numel())
        names = _names(lp, self.leader_names, self.follower_names)
        forms, grads = self._identities(lp, d)
        M, index = self._system(n, nx, forms, grads)
        rows = [("upper objective", d["F"])]
        rows += [(f"upper constraint {lp.G_names[k]!r}", d["G"][k]) for k in range(int(d["G"].numel()))]
        rows += [(f"upper constraint {lp.H_names[k]!r}", d["H"][k]) for k in range(int(d["H"].numel()))]
        zero = ca.DM.zeros(n)
        price = np.array([b >= lp.n_x + lp.n_y for (a, b) in index], bool)
        label = lambda a, b: f"{names[a]}*{names[b]}" if a != b else f"{names[a]}**2"  # noqa: E731
        new, rewritten, blocking, kept, worst = [], [], [], [], 0.0
        for what, e in rows:
            Q = _dense(ca.substitute(ca.hessian(e, w)[0], w, zero)) if ca.depends_on(e, w) else np.zeros((n, n))
            q = self._targets(Q, index)
            if not np.any(q):
                new.append(e)
                continue
            theta, res = self._weights(M, q, price)
            tol = REMOVED_TOL * (1 + np.max(np.abs(q)))
            stay = {key for key, r in index.items() if abs(res[r]) > tol}
            if any(price[index[key]] for key in stay):
                blocking += [f"{label(*key)} (in the {what})" for key in sorted(stay) if price[index[key]]]
                continue
            kept += [f"{label(*key)} (in the {what})" for key in sorted(stay)]
            E = e
            for th, (form, v) in zip(theta, forms):
                if th != 0.0:
                    E = E + float(th) * form * w[v]
            fn = ca.Function("rewritten", [w], [E, ca.gradient(E, w), ca.hessian(E, w)[0]])
            e0, g0, QE = (np.asarray(v, float) for v in fn(zero))
            QE = QE.reshape(n, n)
            keep = np.zeros((n, n), bool)
            keep[:nx, :nx] = True
            for a, b in stay:
                keep[a, b] = keep[b, a] = True
            worst = max(worst, float(np.max(np.abs(QE[~keep]), initial=0.0)))
            Qk = np.where(keep, QE, 0.0)
            expr = float(e0.reshape(-1)[0]) + ca.dot(ca.DM(g0.reshape(-1)), w)
            if np.any(Qk):
                expr = expr + 0.5 * ca.mtimes([w.T, ca.DM(Qk), w])
            new.append(expr)
            rewritten.append(what)
        if blocking:
            return PriceRewrite(False, (
                "strong duality cannot remove every price x quantity term: no combination of the follower's "
                "stationarity, complementarity and equality identities cancels " + ", ".join(blocking)
                + "; the bilinear terms stay"), remaining=tuple(blocking)), None
        if not rewritten:
            return PriceRewrite(False, "the leader's pieces have no product of a follower variable or multiplier "
                                       "with another variable: nothing to rewrite"), None
        nG, nH = int(d["G"].numel()), int(d["H"].numel())
        F = new[0]
        G = ca.vertcat(*new[1:1 + nG]) if nG else lp.G
        H = ca.vertcat(*new[1 + nG:1 + nG + nH]) if nH else lp.H
        out = replace(lp, F=F, G=G, H=H, cache={})
        tail = (" as linear terms in (y, lam, mu): the KKT program is mixed-integer linear (SOS1 complementarity, "
                "no spatial branching on prices)") if not kept else (
                "; no multiplier stays in a product, but these terms in (x, y) stay: " + ", ".join(kept))
        return PriceRewrite(True, (
            "strong duality (stationarity x quantity, complementarity and equality identities of the follower LP) "
            "rewrote the price x quantity terms of the " + ", ".join(rewritten) + tail),
            rewritten=tuple(rewritten), remaining=tuple(kept), residual=worst), out

    def apply(self, lp: LoweredProblem) -> tuple[LoweredProblem, dict]:
        rw, out = self._run(lp)
        if not rw.applies:
            raise MethodError(f"the strong-duality rewrite of the leader's prices does not apply: {rw.reason}")
        return out, {"p": self.p}

    def invert(self, solution: Any, inverse_data: dict) -> Any:
        """The rewritten problem has the same variables: a solution of it is one of the original."""
        return solution
