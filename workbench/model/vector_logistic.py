"""Hyperparameter families of machine learning declared as vector bilevel problems (matrix CasADi only).

    ridge     f(x, w) = 1/(2n) ‖X w − t‖² + ½ Σ_j e^{x_j} w_j²          F = 1/(2n_v) ‖X_v w − t_v‖²
    logistic  f(x, W) = mean_i [lse(X_i W) − (X_i W)_{c_i}] + ½ Σ e^{x} · (penalised blocks of W²)
              F = the same mean log-loss on the validation rows (K = 1: binary, log(1 + e^z) − t z)

Why e^{x}: the penalty stays positive for every real x, so the leader is unconstrained (L-BFGS
needs no bounds) and the follower is *strictly* convex for every x: its Hessian is
(data term, positive semidefinite) + diag(e^{x}) ≻ 0, hence y*(x) is unique and smooth and the
implicit function theorem gives the hypergradient everywhere. ``penalty`` is "per_feature"
(one x_j per input column, shared across classes), "per_class" (one per class, logistic only)
or "global" (one x for all weights). No intercept: standardise the features (an unpenalised
intercept would be a direction of zero curvature on separable data). ``x_bounds`` defaults to
[−20, 20]: with collinear features (XᵀX singular) e^x → 0 is flat for the leader but makes the
follower's Hessian numerically singular (condition ≳ 1e16); e^{−20} ≈ 2e-9 keeps it factorable.
Pass ``x_bounds=None`` for a free x.

Every block is written with ``ca.mtimes`` on CasADi DM data, so the same callables build SX
(the pipeline's lowering for the KKT route) and MX graphs (the hypergradient route's lowering
and certificate: one node per matrix product). The DM copies of the data are made once per
block (``_dm``): converting a dense 200 × 10⁴ array to a DM takes about a second.

Each block also states its derivatives in NumPy (``numeric``, ``mixed``, ``hessian_vector``; the
protocol of :class:`workbench.solve.smooth_follower.SmoothFollower`), the same functions as the
CasADi expressions (``tests/test_hypergradient.py`` checks the two against each other). Why:
CasADi's virtual machine evaluates a dense ``mtimes`` by a scalar loop over the nonzeros, while
NumPy hands it to BLAS; the route evaluates these products hundreds of times (measured in
``benchmarks/hypergradient``: the MX oracle was half of the route's time on make_regression 10⁴
and most of it for logistic regression on load_digits).
``ridge`` additionally states its Hessian in closed form (``hessian(x)`` = XᵀX/n + diag(e^x),
constant in w), so the route solves it by one Cholesky factorisation instead of Newton steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np
import scipy.linalg as sla
from scipy.special import expit

from ..errors import ValueInputError

PENALTIES = ("per_feature", "per_class", "global")
X_BOUNDS = (-20.0, 20.0)


def _matrix(a: Any, what: str, rows: int | None = None) -> np.ndarray:
    m = np.asarray(a, dtype=float)
    if m.ndim != 2 or not np.all(np.isfinite(m)):
        raise ValueInputError(f"{what} must be a finite 2-D array, got shape {np.shape(a)}")
    if rows is not None and m.shape[0] != rows:
        raise ValueInputError(f"{what} has {m.shape[0]} rows, expected {rows}")
    return m.copy()


def _penalty_size(penalty: str, d: int, k: int) -> int:
    if penalty not in PENALTIES:
        raise ValueInputError(f"penalty must be one of {PENALTIES}, got {penalty!r}")
    if penalty == "per_class" and k == 1:
        raise ValueInputError("penalty='per_class' needs a multinomial problem (at least 3 classes)")
    return {"per_feature": d, "per_class": k, "global": 1}[penalty]


def _weighted_squares(x: Any, W: Any, penalty: str) -> Any:
    """½ Σ e^{x} · (squared weights summed over the block each x_j penalises)."""
    if penalty == "per_feature":
        return 0.5 * ca.dot(ca.exp(x), ca.sum2(W * W))
    if penalty == "per_class":
        return 0.5 * ca.dot(ca.exp(x), ca.sum1(W * W).T)
    return 0.5 * ca.exp(x[0]) * ca.sumsqr(W)


def _weights(x: np.ndarray, shape: tuple[int, int], penalty: str) -> np.ndarray:
    """Λ(x) of W's shape with penalty ½ Σ Λ ⊙ W²: e^{x_j} on row j, e^{x_k} on column k, or e^{x_0}."""
    e = np.exp(np.asarray(x, float).reshape(-1))
    if penalty == "per_feature":
        return np.broadcast_to(e[:, None], shape)
    if penalty == "per_class":
        return np.broadcast_to(e[None, :], shape)
    return np.full(shape, e[0])


def _reduce(A: np.ndarray, penalty: str) -> np.ndarray:
    """Σ of A over the block each x_j penalises (∂/∂x_j of ½ Σ Λ ⊙ W² is ½ Σ_block Λ ⊙ W²)."""
    if penalty == "per_feature":
        return A.sum(axis=1)
    if penalty == "per_class":
        return A.sum(axis=0)
    return np.array([A.sum()])


class _Block:
    """Shared NumPy side of the family blocks: cached DM data, the penalty's derivatives.

    Subclasses define ``_data_term(W) -> (value, ∇_W)``, ``_data_hv(W, V)`` and ``_shape``.
    ``numeric``, ``mixed`` and ``hessian_vector`` work on the flat y = vec(W) (column-major,
    as ``ca.reshape``) and mirror ``__call__`` (which has no parameter blocks).
    """

    def _dm(self, name: str) -> ca.DM:
        cache = self.__dict__.setdefault("_dm_cache", {})
        if name not in cache:
            cache[name] = ca.DM(getattr(self, name))
        return cache[name]

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_dm_cache", "_p_cache", "_triu")}

    def _W(self, y: Any) -> np.ndarray:
        return np.asarray(y, float).reshape(self._shape, order="F")

    def numeric(self, x: Any, y: Any) -> tuple[float, np.ndarray, np.ndarray]:
        """(f, ∇_x f, ∇_y f) at numeric (x, y)."""
        W = self._W(y)
        val, g = self._data_term(W)
        gx = np.zeros(np.size(x))
        if self.penalty is not None:
            L = _weights(x, W.shape, self.penalty)
            val += 0.5 * float(np.sum(L * W * W))
            g = g + L * W
            gx = _reduce(0.5 * L * W * W, self.penalty)
        return float(val), gx, g.reshape(-1, order="F")

    def hessian_vector(self, x: Any, y: Any, v: Any) -> np.ndarray:
        """∇²_yy f · v."""
        W, V = self._W(y), self._W(v)
        out = self._data_hv(W, V)
        if self.penalty is not None:
            out = out + _weights(x, W.shape, self.penalty) * V
        return out.reshape(-1, order="F")

    def mixed(self, x: Any, y: Any, v: Any) -> np.ndarray:
        """∇_x (∇_y f · v) = Σ_block Λ ⊙ W ⊙ V (the data term does not depend on x)."""
        if self.penalty is None:
            return np.zeros(np.size(x))
        W, V = self._W(y), self._W(v)
        return _reduce(_weights(x, W.shape, self.penalty) * W * V, self.penalty)


@dataclass
class _SquaredLoss(_Block):
    """1/(2n) ‖X w − t‖² (+ the e^x ridge penalty when ``penalty`` is set)."""

    X: np.ndarray
    t: np.ndarray
    penalty: str | None = None

    def __call__(self, x: Any, y: Any, p: dict) -> Any:
        r = ca.mtimes(self._dm("X"), y) - self._dm("t")
        f = ca.sumsqr(r) / (2 * self.X.shape[0])
        return f if self.penalty is None else f + _weighted_squares(x, y, self.penalty)

    @property
    def _shape(self) -> tuple[int, int]:
        return (self.X.shape[1], 1)

    def _data_term(self, W: np.ndarray) -> tuple[float, np.ndarray]:
        n = self.X.shape[0]
        r = self.X @ W - self.t
        return float(np.sum(r * r)) / (2 * n), self.X.T @ r / n

    def _data_hv(self, W: np.ndarray, V: np.ndarray) -> np.ndarray:
        return self.X.T @ (self.X @ V) / self.X.shape[0]

    def _penalties(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, float).reshape(-1)
        d = self.X.shape[1]
        return np.exp(x) if self.penalty == "per_feature" else np.full(d, np.exp(x[0]))

    def _gram(self) -> np.ndarray:
        G = self.__dict__.get("_gram_cache")
        if G is None:  # XᵀX/n is constant: formed once, not at every leader point
            G = self.__dict__["_gram_cache"] = self.X.T @ self.X / self.X.shape[0]
        return G

    def hessian(self, x: np.ndarray) -> np.ndarray:
        """∇²_w f = XᵀX/n + diag(e^x) (constant in w: the follower is a QP)."""
        H = self._gram().copy()
        H[np.diag_indices(H.shape[0])] += self._penalties(x)
        return H

    def factor(self, x: np.ndarray) -> Any:
        """b -> (XᵀX/n + D)⁻¹ b with D = diag(e^x) ≻ 0, by the cheaper of two Cholesky factorisations.

        d <= n: of the d×d Hessian (Gram matrix cached). d > n (more features than rows): of the
        n×n matrix K = nI + X D⁻¹ Xᵀ by Sherman–Morrison–Woodbury,

            (D + XᵀX/n)⁻¹ = D⁻¹ − D⁻¹Xᵀ K⁻¹ X D⁻¹,       O(n² d) instead of O(d³),

        followed by one step of iterative refinement with the exact product (XᵀX/n + D) v
        (O(nd)), which removes the cancellation of the two terms when some e^x are tiny.
        Both matrices are positive definite for every x (D ≻ 0), so the factorisation cannot fail
        on a well-posed point; a failure is reported as a LinAlgError by SciPy.
        """
        n, d = self.X.shape
        D = self._penalties(x)
        if d <= n:
            c = sla.cho_factor(self.hessian(x), check_finite=True)
            return lambda b: sla.cho_solve(c, b)
        XD = self.X / D                       # X D⁻¹  (n×d)
        # K = X D⁻¹ Xᵀ + nI by BLAS syrk on X D^{-1/2} (the lower triangle only: half a GEMM's flops)
        K = sla.blas.dsyrk(1.0, (self.X / np.sqrt(D)).T, trans=1, lower=1)
        K[np.diag_indices(n)] += n
        c = sla.cho_factor(K, lower=True, check_finite=True)

        def once(b: np.ndarray) -> np.ndarray:
            return b / D - XD.T @ sla.cho_solve(c, XD @ b)

        def solve(b: np.ndarray) -> np.ndarray:
            v = once(b)
            r = b - (self.X.T @ (self.X @ v) / n + D * v)
            return v + once(r)
        return solve


@dataclass
class _LogLoss(_Block):
    """Mean multinomial (K ≥ 2 columns) or binary (K = 1) log-loss (+ the e^x penalty)."""

    X: np.ndarray
    Y: np.ndarray          # one-hot (n, K) or 0/1 labels (n, 1) for binary
    penalty: str | None = None

    def __call__(self, x: Any, y: Any, p: dict) -> Any:
        n, d = self.X.shape
        K = self.Y.shape[1]
        W = ca.reshape(y, d, K)
        Z = ca.mtimes(self._dm("X"), W)
        if K == 1:
            loss = ca.sum1(ca.log1p(ca.exp(Z)) - Z * self._dm("Y")) / n
        else:
            lse = ca.log(ca.mtimes(ca.exp(Z), ca.DM.ones(K, 1)))
            loss = (ca.sum1(lse) - ca.sum1(ca.sum2(Z * self._dm("Y")))) / n
        return loss if self.penalty is None else loss + _weighted_squares(x, W, self.penalty)

    @property
    def _shape(self) -> tuple[int, int]:
        return (self.X.shape[1], self.Y.shape[1])

    def _probabilities(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(per-row loss terms, P) at W: sigmoid / softmax probabilities, computed without overflow.

        The last W's answer is kept: conjugate gradients call the Hessian product many times at
        one W, and recomputing X W and the softmax would double each product's cost."""
        last = self.__dict__.get("_p_cache")
        if last is not None and last[0].shape == W.shape and np.array_equal(last[0], W):
            return last[1], last[2]
        Z = self.X @ W
        if Z.shape[1] == 1:
            terms, P = np.logaddexp(0.0, Z[:, 0]) - Z[:, 0] * self.Y[:, 0], expit(Z)
        else:
            m = Z.max(axis=1, keepdims=True)
            E = np.exp(Z - m)
            s = E.sum(axis=1, keepdims=True)
            terms, P = (m + np.log(s))[:, 0] - np.sum(Z * self.Y, axis=1), E / s
        self.__dict__["_p_cache"] = (W.copy(), terms, P)
        return terms, P

    def _data_term(self, W: np.ndarray) -> tuple[float, np.ndarray]:
        terms, P = self._probabilities(W)
        return float(np.mean(terms)), self.X.T @ (P - self.Y) / self.X.shape[0]

    def hessian_at(self, x: Any, y: Any) -> np.ndarray:
        """∇²_yy f at (x, y), dense (dK × dK, y = vec(W) column-major): Σ_i (x_i x_iᵀ) ⊗ S_i / n + diag(Λ).

        Softmax: S_i = diag(p_i) − p_i p_iᵀ, so with U = [P_1 ⊙ X, …, P_K ⊙ X] (n × dK) the data
        term is blockdiag(Xᵀ diag(P_k) X) − UᵀU, all / n (UᵀU by BLAS syrk: one n·(dK)² product).
        Sigmoid: Xᵀ diag(p (1 − p)) X / n.
        """
        W = self._W(y)
        _, P = self._probabilities(W)
        n, d = self.X.shape
        K = W.shape[1]
        if K == 1:
            H = self.X.T @ (self.X * (P * (1.0 - P))) / n
        else:
            U = np.empty((n, K * d), order="F")
            for k in range(K):
                U[:, k * d:(k + 1) * d] = self.X * P[:, k:k + 1]
            H = sla.blas.dsyrk(-1.0 / n, U, trans=1, lower=1)
            iu = self.__dict__.get("_triu")
            if iu is None or iu[0].size != (K * d) * (K * d - 1) // 2:
                iu = self.__dict__["_triu"] = np.triu_indices(K * d, 1)
            H[iu] = H.T[iu]                      # mirror the lower triangle syrk filled
            for k in range(K):                   # Xᵀ diag(P_k) X = Xᵀ U_k
                H[k * d:(k + 1) * d, k * d:(k + 1) * d] += self.X.T @ U[:, k * d:(k + 1) * d] / n
        if self.penalty is not None:
            H[np.diag_indices(d * K)] += _weights(x, W.shape, self.penalty).reshape(-1, order="F")
        return H

    def _data_hv(self, W: np.ndarray, V: np.ndarray) -> np.ndarray:
        """Xᵀ S X V / n with S_i = diag(p_i) − p_i p_iᵀ (softmax) or p_i (1 − p_i) (sigmoid)."""
        _, P = self._probabilities(W)
        U = self.X @ V
        if W.shape[1] == 1:
            R = P * (1.0 - P) * U
        else:
            R = P * U - P * np.sum(P * U, axis=1, keepdims=True)
        return self.X.T @ R / self.X.shape[0]


def ridge_problem(cls: Any, X: Any, t: Any, X_val: Any, t_val: Any, *, penalty: str = "per_feature",
                  x_start: Any = None, name: str = "ridge", x_bounds: Any = X_BOUNDS, **kwargs: Any) -> Any:
    """Ridge regression with penalties e^{x} chosen on a validation split (module docstring)."""
    X, X_val = _matrix(X, "X"), _matrix(X_val, "X_val")
    t = _matrix(np.reshape(t, (-1, 1)), "t", X.shape[0])
    t_val = _matrix(np.reshape(t_val, (-1, 1)), "t_val", X_val.shape[0])
    d = X.shape[1]
    if X_val.shape[1] != d:
        raise ValueInputError(f"X_val has {X_val.shape[1]} columns, X has {d}")
    if penalty == "per_class":
        raise ValueInputError("penalty='per_class' is for logistic regression; ridge has one output")
    n_x = _penalty_size(penalty, d, 1)
    info = {"family": "ridge", "penalty": penalty,
            "follower_convex_by_construction": "XᵀX/n ⪰ 0 plus diag(e^x) ≻ 0: strictly convex QP in w"}
    return cls(n_x, d, _SquaredLoss(X_val, t_val), _SquaredLoss(X, t, penalty), x_start=x_start,
               x_bounds=x_bounds, name=name, leader_name="x", follower_name="w", info={**info, **kwargs.pop("info", {})}, **kwargs)


def logistic_problem(cls: Any, X: Any, labels: Any, X_val: Any, labels_val: Any, *,
                     penalty: str = "per_feature", x_start: Any = None, name: str = "logistic",
                     x_bounds: Any = X_BOUNDS, **kwargs: Any) -> Any:
    """L2-regularised logistic regression (binary or multinomial) with penalties e^{x}."""
    X, X_val = _matrix(X, "X"), _matrix(X_val, "X_val")
    d = X.shape[1]
    if X_val.shape[1] != d:
        raise ValueInputError(f"X_val has {X_val.shape[1]} columns, X has {d}")
    labels, labels_val = np.asarray(labels).reshape(-1), np.asarray(labels_val).reshape(-1)
    if labels.size != X.shape[0] or labels_val.size != X_val.shape[0]:
        raise ValueInputError("labels and labels_val need one entry per row of X and X_val")
    classes = np.unique(labels)
    if classes.size < 2:
        raise ValueInputError("logistic regression needs at least two classes in the training labels")
    if not np.all(np.isin(labels_val, classes)):
        raise ValueInputError("labels_val contains classes that do not occur in the training labels")
    K = 1 if classes.size == 2 else classes.size

    def encode(lab: np.ndarray) -> np.ndarray:
        if K == 1:
            return (lab == classes[1]).astype(float).reshape(-1, 1)
        return (lab[:, None] == classes[None, :]).astype(float)

    n_x = _penalty_size(penalty, d, K)
    info = {"family": "logistic", "penalty": penalty, "classes": classes.tolist(), "weights_shape": (d, K),
            "follower_convex_by_construction": "log-sum-exp of affine maps is convex, diag(e^x) ≻ 0: strictly convex"}
    return cls(n_x, d * K, _LogLoss(X_val, encode(labels_val)), _LogLoss(X, encode(labels), penalty),
               x_start=x_start, x_bounds=x_bounds, name=name, leader_name="x", follower_name="w",
               info={**info, **kwargs.pop("info", {})}, **kwargs)
