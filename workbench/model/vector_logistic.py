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
(the pipeline's lowering, certificate) and MX graphs (the hypergradient route's follower
oracle: gradient, Hessian-vector and mixed products in reverse mode, cost linear in the data).
``ridge`` additionally states its Hessian in closed form (``hessian(x)`` = XᵀX/n + diag(e^x),
constant in w), so the route solves it by one Cholesky factorisation instead of Newton steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np

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


@dataclass
class _SquaredLoss:
    """1/(2n) ‖X w − t‖² (+ the e^x ridge penalty when ``penalty`` is set)."""

    X: np.ndarray
    t: np.ndarray
    penalty: str | None = None

    def __call__(self, x: Any, y: Any, p: dict) -> Any:
        r = ca.mtimes(ca.DM(self.X), y) - ca.DM(self.t)
        f = ca.sumsqr(r) / (2 * self.X.shape[0])
        return f if self.penalty is None else f + _weighted_squares(x, y, self.penalty)

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
        import scipy.linalg as sla
        n, d = self.X.shape
        D = self._penalties(x)
        if d <= n:
            c = sla.cho_factor(self.hessian(x), check_finite=True)
            return lambda b: sla.cho_solve(c, b)
        XD = self.X / D                       # X D⁻¹  (n×d)
        K = XD @ self.X.T
        K[np.diag_indices(n)] += n
        c = sla.cho_factor(K, check_finite=True)

        def once(b: np.ndarray) -> np.ndarray:
            return b / D - XD.T @ sla.cho_solve(c, XD @ b)

        def solve(b: np.ndarray) -> np.ndarray:
            v = once(b)
            r = b - (self.X.T @ (self.X @ v) / n + D * v)
            return v + once(r)
        return solve


@dataclass
class _LogLoss:
    """Mean multinomial (K ≥ 2 columns) or binary (K = 1) log-loss (+ the e^x penalty)."""

    X: np.ndarray
    Y: np.ndarray          # one-hot (n, K) or 0/1 labels (n, 1) for binary
    penalty: str | None = None

    def __call__(self, x: Any, y: Any, p: dict) -> Any:
        n, d = self.X.shape
        K = self.Y.shape[1]
        W = ca.reshape(y, d, K)
        Z = ca.mtimes(ca.DM(self.X), W)
        if K == 1:
            loss = ca.sum1(ca.log1p(ca.exp(Z)) - Z * ca.DM(self.Y)) / n
        else:
            lse = ca.log(ca.mtimes(ca.exp(Z), ca.DM.ones(K, 1)))
            loss = (ca.sum1(lse) - ca.sum1(ca.sum2(Z * ca.DM(self.Y)))) / n
        return loss if self.penalty is None else loss + _weighted_squares(x, W, self.penalty)


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
