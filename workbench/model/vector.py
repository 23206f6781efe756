"""Vectorised declaration of large bilevel problems: blocks, not 10^4 scalar SymPy expressions.

    p = wb.VectorBilevelProblem(n_x, n_y, upper_objective=F, lower_objective=f,
                                lower_ineq={"cap": g}, y_bounds=(lo, hi), parameters={"t": t0})

``F``, ``f`` and every constraint block are callables ``(x, y, p) -> CasADi expression``
built with matrix operations (``ca.mtimes(A, y)``, ``ca.sumsqr``, ``ca.dot``) where ``x``,
``y`` are CasADi column symbols and ``p`` is a dict ``{block name: column}``, SX or MX: the same
callable builds the MX model (on construction, which checks every block's shape; one node per
matrix product, what the hypergradient route reads via ``workbench.lower.lower_matrix``) and,
on first use, the SX model the KKT route needs (``workbench.lower.lower``); data
enter as sparse CasADi matrices (:func:`sparse_dm` from NumPy/SciPy). Constraint blocks
are columns ``>= 0`` (``lower_ineq``) or ``== 0`` (``lower_eq``); row ``i`` of block
``"cap"`` is named ``"cap[i]"`` (its multiplier key). Bounds become rows ``"y_lb[i]"``,
``"y_ub[i]"`` (finite entries only) and are also handed to the solvers as known boxes.

``VectorBilevelProblem.from_arrays(Q, c, n_x=..., C=..., A=..., b=..., y_bounds=..., M=..., m=...)``
declares the parametric sparse QP family of :mod:`workbench.model.vector_qp` straight from
NumPy/SciPy data (ridge regression with one weight per feature: Q = XᵀX, E = I, c = −Xᵀt,
M = X_val, m = t_val).

Why CasADi callables and not SymPy matrices / ``MatrixSymbol`` blocks: SymPy keeps numeric
sparse matrices as Python dicts and expands matrix products entry by entry into scalar
expressions (declaring the benchmark's box QP with scalar SymPy takes 4.8 s at n_y = 10³
against 0.05 s here, and every later per-row step then walks 10⁴ scalar trees); CasADi's
sparse ``mtimes`` builds the graph in time linear in the number of nonzeros, and it is the
representation every later stage reads anyway. The object offers what the pipeline reads
from a :class:`~workbench.model.BilevelProblem` (``leader``/``follower`` SymPy symbols ``x0..``
made lazily for naming only, named ``g``/``h`` rows, ``parameter_vector``, ``point_vector``,
``start``, senses) and lowers itself via ``_lower(form)``; symbolic routes and analyses
(substitution, reaction maps, LaTeX) raise :class:`~workbench.errors.MethodError`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import casadi as ca
import numpy as np
import sympy as sp

from ..errors import MethodError, ModelError, ValueInputError
from .base import ProblemBase
from .problem import BilevelProblem, finite_vector
from .vector_qp import bounds_pair as _bounds
from .vector_qp import sparse_dm

__all__ = ["VectorBilevelProblem", "VectorRow", "sparse_dm"]
Block = Callable[[Any, Any, dict], Any]
_NONSMOOTH_OPS = {getattr(ca, n) for n in ("OP_FABS", "OP_FMAX", "OP_FMIN", "OP_SIGN", "OP_FLOOR",
                                           "OP_CEIL", "OP_IF_ELSE_ZERO") if hasattr(ca, n)}


@dataclass(frozen=True)
class VectorRow:
    """One named row of a constraint block (what ``result.multipliers`` keys by)."""

    name: str
    kind: str
    block: str
    index: int

    @property
    def expr(self) -> Any:
        raise MethodError(f"constraint {self.name} belongs to a vectorised declaration and has no SymPy expression")


class VectorBilevelProblem(ProblemBase):
    """A bilevel problem declared by blocks of CasADi matrix expressions (see module docstring)."""

    def __init__(self, n_x: int, n_y: int, upper_objective: Block, lower_objective: Block, *,
                 upper_ineq: Mapping[str, Block] | None = None, upper_eq: Mapping[str, Block] | None = None,
                 lower_ineq: Mapping[str, Block] | None = None, lower_eq: Mapping[str, Block] | None = None,
                 x_bounds: Any = None, y_bounds: Any = None, parameters: Mapping[str, Any] | None = None,
                 x_start: Any = None, y_start: Any = None, upper_sense: str = "min", lower_sense: str = "min",
                 name: str = "vector_bilevel", leader_name: str = "x", follower_name: str = "y",
                 info: Mapping[str, Any] | None = None) -> None:
        for what, n in (("n_x", n_x), ("n_y", n_y)):
            if not isinstance(n, (int, np.integer)) or n < 1:
                raise ModelError(f"{what} must be a positive integer, got {n!r}")
        self._n_x, self._n_y = int(n_x), int(n_y)
        for what, fn in (("upper_objective", upper_objective), ("lower_objective", lower_objective)):
            if not callable(fn):
                raise ModelError(f"{what} must be a callable (x, y, p) -> CasADi expression")
        self._F, self._f = upper_objective, lower_objective
        self._blocks = {k: self._check_blocks(v, k) for k, v in (("upper_ineq", upper_ineq), ("upper_eq", upper_eq),
                                                              ("lower_ineq", lower_ineq), ("lower_eq", lower_eq))}
        self.x_lb, self.x_ub = _bounds(x_bounds, self._n_x, "x_bounds")
        self.y_lb, self.y_ub = _bounds(y_bounds, self._n_y, "y_bounds")
        self.parameter_blocks = {str(k): finite_vector(v, np.size(v), f"parameter block {k!r}")
                                 for k, v in dict(parameters or {}).items()}
        self.x_start = finite_vector(np.zeros(self._n_x) if x_start is None else x_start, self._n_x, "x_start")
        self.y_start = finite_vector(np.zeros(self._n_y) if y_start is None else y_start, self._n_y, "y_start")
        for what, s in (("upper_sense", upper_sense), ("lower_sense", lower_sense)):
            if s not in ("min", "max"):
                raise ModelError(f"{what} must be 'min' or 'max', got {s!r}")
        self.upper_sense, self.lower_sense = upper_sense, lower_sense
        self.name, self.leader_name, self.follower_name = name, leader_name, follower_name
        self.info: dict[str, Any] = dict(info or {})
        self._lazy: dict[str, Any] = {}
        self._sizes: dict[str, list[tuple[str, int]]] = {}
        # Every block is built once, in MX (one node per matrix product: cheap for dense data), so
        # shape errors surface here; the SX model the KKT route needs is built on first use.
        self._lazy["lowered_mx"] = self._lower("MX")

    @staticmethod
    def _check_blocks(blocks: Mapping[str, Block] | None, where: str) -> dict[str, Block]:
        out = dict(blocks or {})
        for k, fn in out.items():
            if not isinstance(k, str) or not k:
                raise ModelError(f"{where} block names must be non-empty strings, got {k!r}")
            if k in ("x_lb", "x_ub", "y_lb", "y_ub"):
                raise ModelError(f"{where} block name {k!r} is reserved for bound rows; pick another name")
            if not callable(fn):
                raise ModelError(f"{where} block {k!r} must be a callable (x, y, p) -> CasADi column")
        return out

    # -- building the CasADi model (linear in nnz: matrix operations only) -------
    def _symbols(self, sym: Any = ca.SX) -> tuple[Any, Any, Any, dict]:
        x, y = sym.sym(self.leader_name, self._n_x), sym.sym(self.follower_name, self._n_y)
        p = sym.sym("p", sum(v.size for v in self.parameter_blocks.values()))
        blocks, o = {}, 0
        for k, v in self.parameter_blocks.items():
            blocks[k] = p[o:o + v.size]
            o += v.size
        return x, y, p, blocks

    def _column(self, fn: Block, args: tuple, what: str) -> Any:
        sym = type(args[0])
        try:
            e = fn(*args)
            e = sym(e) if not isinstance(e, sym) else e
        except (TypeError, ValueError, RuntimeError, NotImplementedError) as exc:
            raise ModelError(f"{what} could not be built from (x, y, p): {exc}") from exc
        if e.size2() != 1 and e.size1() == 1:
            e = e.T
        if e.size2() != 1:
            raise ModelError(f"{what} has shape {e.shape}; a block must be a column (n, 1)")
        return e

    def _lower(self, form: str = "SX") -> Any:
        """The CasADi model in SX (``workbench.lower.lower`` calls this once per problem object:
        scalar graphs, what the KKT route's exact Hessians need) or MX (``lower_matrix``: one node
        per matrix product, what the hypergradient route and its certificate use)."""
        from ..lower.lowered import LoweredProblem
        if form == "MX" and "lowered_mx" in self._lazy:
            return self._lazy["lowered_mx"]
        x, y, p, pb = self._symbols({"SX": ca.SX, "MX": ca.MX}[form])
        args = (x, y, pb)
        sign = {"min": 1.0, "max": -1.0}
        F = sign[self.upper_sense] * self._column(self._F, args, "upper objective")
        f = sign[self.lower_sense] * self._column(self._f, args, "lower objective")
        for what, e in (("upper objective", F), ("lower objective", f)):
            if e.shape != (1, 1):
                raise ModelError(f"{what} has shape {e.shape}; it must be a scalar")
        if not ca.depends_on(f, y):
            raise ModelError("the lower objective does not depend on the follower's variables y")
        cols, sizes = {}, {}
        for key, blocks in self._blocks.items():
            parts = [(k, self._column(fn, args, f"{key} block {k!r}")) for k, fn in blocks.items()]
            if key == "upper_ineq":
                parts += self._bound_rows(x, self.x_lb, self.x_ub, "x")
            if key == "lower_ineq":
                parts += self._bound_rows(y, self.y_lb, self.y_ub, "y")
            cols[key] = ca.vertcat(*[e for _, e in parts]) if parts else type(x)(0, 1)
            sizes[key] = [(k, int(e.size1())) for k, e in parts]
        self._sizes = sizes
        names = {key: [nm for k, n in sizes[key] for nm in self._names_of_block(k, n)] for key in sizes}
        lp = LoweredProblem(x=x, y=y, p=p, F=F, G=cols["upper_ineq"], H=cols["upper_eq"], f=f,
                            g=cols["lower_ineq"], h=cols["lower_eq"],
                            g_names=names["lower_ineq"], h_names=names["lower_eq"],
                            G_names=names["upper_ineq"], H_names=names["upper_eq"],
                            p_default=self.parameter_vector(), x_start=self.x_start.copy(),
                            y_start=self.y_start.copy(), lower_sense=self.lower_sense,
                            upper_sense=self.upper_sense, name=self.name)
        lp.known_boxes = {"x": (self.x_lb.copy(), self.x_ub.copy()), "y": (self.y_lb.copy(), self.y_ub.copy())}
        return lp

    @staticmethod
    def _bound_rows(v: Any, lo: np.ndarray, hi: np.ndarray, label: str) -> list[tuple[str, Any]]:
        out = []
        il, iu = np.flatnonzero(np.isfinite(lo)), np.flatnonzero(np.isfinite(hi))
        if il.size:
            out.append((f"{label}_lb", v[il.tolist()] - ca.DM(lo[il])))
        if iu.size:
            out.append((f"{label}_ub", ca.DM(hi[iu]) - v[iu.tolist()]))
        return out

    # -- the attributes the pipeline reads from a BilevelProblem ------------------
    n_x = property(lambda self: self._n_x, doc="number of leader variables")
    n_y = property(lambda self: self._n_y, doc="number of follower variables")

    def _cached(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._lazy:
            self._lazy[key] = make()
        return self._lazy[key]

    @property
    def leader(self) -> tuple[sp.Symbol, ...]:
        return self._cached("leader", lambda: tuple(sp.symbols(f"{self.leader_name}0:{self._n_x}", real=True)))

    @property
    def follower(self) -> tuple[sp.Symbol, ...]:
        return self._cached("follower", lambda: tuple(sp.symbols(f"{self.follower_name}0:{self._n_y}", real=True)))

    @property
    def parameter_symbols(self) -> tuple[sp.Symbol, ...]:
        return self._cached("psyms", lambda: tuple(sp.Symbol(f"{k}{i}", real=True)
                                                   for k, v in self.parameter_blocks.items() for i in range(v.size)))

    @property
    def parameter_values(self) -> dict[sp.Symbol, float]:
        return dict(zip(self.parameter_symbols, self.parameter_vector()))

    @property
    def start(self) -> dict[sp.Symbol, float]:
        return self._cached("start", lambda: {**dict(zip(self.leader, self.x_start)),
                                              **dict(zip(self.follower, self.y_start))})

    def _rows(self, key: str, kind: str) -> list[VectorRow]:
        def make():
            rows = []
            for k, n in self._sizes[key]:
                names = self._names_of_block(k, n)
                rows += [VectorRow(nm, kind, k, i) for i, nm in enumerate(names)]
            return rows
        return self._cached("rows_" + key, make)

    def _names_of_block(self, block: str, n: int) -> list[str]:
        bounds = {"x_lb": self.x_lb, "x_ub": self.x_ub, "y_lb": self.y_lb, "y_ub": self.y_ub}
        idx = np.flatnonzero(np.isfinite(bounds[block])) if block in bounds else np.arange(n)
        return [f"{block}[{int(i)}]" for i in idx]

    def _no_sympy(self) -> Any:
        raise MethodError(f"{self.name} is a vectorised declaration without SymPy objectives; symbolic "
                          "routes and analyses (substitution, reaction_map, LaTeX) need a BilevelProblem. "
                          "Use method='kkt' (the default), follower_response or sensitivity.")

    F = property(_no_sympy)
    f = property(_no_sympy)
    G = property(lambda self: self._rows("upper_ineq", "ineq"))
    H = property(lambda self: self._rows("upper_eq", "eq"))
    g = property(lambda self: self._rows("lower_ineq", "ineq"))
    h = property(lambda self: self._rows("lower_eq", "eq"))

    def nonsmooth_follower_terms(self) -> list[tuple[str, str]]:
        """Non-smooth CasADi operations (fabs, fmax, if_else, ...) in the follower's pieces."""
        from ..lower import lower
        lp = lower(self)
        found = []
        for what, e in (("lower objective", lp.f), ("lower constraints", ca.vertcat(lp.g, lp.h))):
            fn = ca.Function("probe", [lp.x, lp.y, lp.p], [e])
            ops = {fn.instruction_id(k) for k in range(fn.n_instructions())}
            bad = ops & _NONSMOOTH_OPS
            if bad and ca.depends_on(e, lp.y):
                found.append((what, f"CasADi operation(s) {sorted(bad)} (fabs/fmax/fmin/sign/if_else)"))
        return found

    def parameter_vector(self, parameters: Mapping[Any, Any] | None = None) -> np.ndarray:
        """Parameter values (declaration order); override by block name or by symbol ``t3``."""
        vals = {k: v.copy() for k, v in self.parameter_blocks.items()}
        overrides = dict(parameters or {})
        by_symbol = {}
        for key, v in overrides.items():
            if isinstance(key, str) and key in vals:
                vals[key] = finite_vector(v, vals[key].size, f"parameter block {key!r}")
            else:
                by_symbol[key] = v
        if by_symbol:
            index = {s: i for i, s in enumerate(self.parameter_symbols)}
            flat = np.concatenate(list(vals.values())) if vals else np.zeros(0)
            for s, v in by_symbol.items():
                if s not in index:
                    raise ValueInputError(f"{s} is not a declared parameter; blocks: {list(vals)}")
                flat[index[s]] = finite_vector([v], 1, f"parameter {s}")[0]
            return flat
        return np.concatenate(list(vals.values())) if vals else np.zeros(0)

    def point_vector(self, values: Any, which: str) -> np.ndarray:
        """A leader/follower point from a vector, ``{"x": array}`` or ``{symbol: value}``."""
        n, label = (self._n_x, self.leader_name) if which == "leader" else (self._n_y, self.follower_name)
        if values is None:
            return (self.x_start if which == "leader" else self.y_start).copy()
        if isinstance(values, Mapping):
            if set(values) == {label}:
                return finite_vector(values[label], n, f"{which} point")
            return BilevelProblem.point_vector(self, values, which)
        return finite_vector(values, n, f"{which} point")

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_lazy"] = {}  # CasADi graphs and naming symbols are rebuilt where they are used
        return state

    def __repr__(self) -> str:
        return (f"VectorBilevelProblem({self.name!r}, n_x={self._n_x}, n_y={self._n_y}, "
                f"{len(self.g)} lower ineq / {len(self.h)} lower eq rows)")

    def start_vectors(self, start: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """(x0, y0) from ``start=``: ``{symbol: value}`` (as for scalar declarations),
        ``{"x": array, "y": array}`` (either key may be left out) or a leader vector."""
        if start is None or (isinstance(start, Mapping) and not start):
            return self.x_start.copy(), self.y_start.copy()
        if isinstance(start, Mapping):
            blocks = {self.leader_name, self.follower_name}
            if set(start) <= blocks:
                return (self.point_vector({self.leader_name: start[self.leader_name]}, "leader")
                        if self.leader_name in start else self.x_start.copy(),
                        self.point_vector({self.follower_name: start[self.follower_name]}, "follower")
                        if self.follower_name in start else self.y_start.copy())
            return BilevelProblem.start_vectors(self, start)
        return self.point_vector(start, "leader"), self.y_start.copy()

    @classmethod
    def from_arrays(cls, Q: Any, c: Any = None, *, n_x: int, **data: Any) -> "VectorBilevelProblem":
        """The parametric sparse QP family of the module docstring from NumPy/SciPy data:
        ``C, E, A, b, B, Aeq, beq, Beq, y_bounds`` (follower), ``P, q, M, m, d, x_bounds``
        (leader); other keywords (``x_start``, ``name``, ...) go to the constructor."""
        from .vector_qp import qp_from_arrays
        return qp_from_arrays(cls, Q, c, n_x=n_x, **data)

    @classmethod
    def ridge_regression(cls, X: Any, t: Any, X_val: Any, t_val: Any, **options: Any) -> "VectorBilevelProblem":
        """Ridge penalties e^x chosen on a validation split (see :mod:`workbench.model.vector_logistic`)."""
        from .vector_logistic import ridge_problem
        return ridge_problem(cls, X, t, X_val, t_val, **options)

    @classmethod
    def logistic_regression(cls, X: Any, labels: Any, X_val: Any, labels_val: Any,
                            **options: Any) -> "VectorBilevelProblem":
        """L2-regularised logistic regression (binary / multinomial), penalties e^x chosen on validation data."""
        from .vector_logistic import logistic_problem
        return logistic_problem(cls, X, labels, X_val, labels_val, **options)
