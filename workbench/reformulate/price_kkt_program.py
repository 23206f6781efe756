"""The KKT program of a leader paid in shadow prices, for a global solve (SCIP).

For a follower that is a linear program in y its KKT conditions are necessary and sufficient,
so with L = f - lam^T g - mu^T h the bilevel problem is *exactly*

    min_{x, y, s, lam, mu}  F(x, y, lam, mu)
    s.t.  G(x, y, lam, mu) >= 0,  H = 0,                     (leader, multipliers included)
          grad_y L = 0,  h = 0,  g - s = 0,                  (stationarity, primal feasibility)
          s >= 0,  lam >= 0,  SOS1(s_i, lam_i)  for every i  (complementarity, no big-M)

over every follower-optimal y *and* every multiplier of it: the optimistic reading, in which the
leader may pick the multiplier when it is not unique (LICQ fails). ``wb.multiplier`` symbols in
F, G, H become the program's lam, mu (``Bilevel2MPCC`` substitutes them). When
:class:`~workbench.reformulate.price_strong_duality.PriceStrongDuality` applied first, F has no
price x quantity term left and the program is a MILP; otherwise the bilinear terms stay for SCIP's
spatial branch-and-bound.

Bounds (``bound_program``): what the affine rows imply (LP propagation) for every variable in a
nonlinear term or an SOS1 pair, and an *assumed* box |w_i - ref_i| <= radius (1 + |ref_i|) for
what stays unbounded (``prog.assumed``). An optimum on an assumed bound is not a global one; a
multiplier pinned there is often the sign that the leader can raise a price without limit.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..errors import MethodError
from ..lower import LoweredProblem
from .global_kkt import follower_cq
from ..values import Point
from .bilevel2mpcc import Bilevel2MPCC
from .program import ASSUMED_RADIUS, SingleLevelProgram, bound_program
from .reduction import Reduction


class Priced2SOS1KKT(Reduction):
    """LoweredProblem (leader may use multipliers) -> SingleLevelProgram (module docstring).

    ``derive_box(ineq_rows, eq_rows, n)`` may replace the default bound derivation (injected by the
    caller: reformulations import no later stage); ``ref`` is the centre of assumed boxes.
    """

    def __init__(self, p: np.ndarray, derive_box: Callable | None = None, ref: np.ndarray | None = None,
                 leader_names: Sequence[str] | None = None, follower_names: Sequence[str] | None = None,
                 radius: float = ASSUMED_RADIUS):
        self.p = np.asarray(p, float)
        self.derive_box = derive_box
        self.ref = None if ref is None else np.asarray(ref, float)
        self.leader_names, self.follower_names = leader_names, follower_names
        self.radius = float(radius)

    def apply(self, lp: LoweredProblem) -> tuple[SingleLevelProgram, dict]:
        cq = follower_cq(lp)
        if cq.kind != "affine":
            raise MethodError(f"the KKT program needs follower constraints affine in y: {cq.reason}")
        mpcc, inv = Bilevel2MPCC().apply(lp)
        b = mpcc.blocks
        xn = list(self.leader_names) if self.leader_names is not None else [f"x{i + 1}" for i in range(lp.n_x)]
        yn = list(self.follower_names) if self.follower_names is not None else [f"y{j + 1}" for j in range(lp.n_y)]
        names = (xn + yn + [f"s[{n}]" for n in lp.g_names] + [f"lam[{n}]" for n in lp.g_names]
                 + [f"mu[{n}]" for n in lp.h_names])
        eq_names = ([f"stationarity[{n}]" for n in yn] + [f"h[{n}]" for n in lp.h_names]
                    + [f"g[{n}] - s" for n in lp.g_names] + [f"H[{n}]" for n in lp.H_names])
        pairs = tuple((int(s), int(l)) for s, l in zip(mpcc.comp_s, mpcc.comp_lam))
        ref = np.zeros(mpcc.lbw.size)
        ref[b["x"]], ref[b["y"]] = lp.x_start, lp.y_start
        if self.ref is not None:
            ref[: self.ref.size] = self.ref
        prog = SingleLevelProgram(w=mpcc.w, p=lp.p, p_value=self.p, objective=mpcc.objective, eq=mpcc.g_eq,
                                  ineq=mpcc.g_ineq, lb=mpcc.lbw.copy(), ub=mpcc.ubw.copy(), names=tuple(names),
                                  sos1=pairs, eq_names=tuple(eq_names),
                                  ineq_names=tuple(f"G[{n}]" for n in lp.G_names), info={"cq": cq.kind})
        return bound_program(prog, self.derive_box, ref, self.radius), inv

    def invert(self, w: np.ndarray, inverse_data: dict) -> Point:
        return Bilevel2MPCC().invert(w, inverse_data)


def start_vector(prog: SingleLevelProgram, inverse_data: dict, x: np.ndarray, y: np.ndarray, s: np.ndarray,
                 lam: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """A point of the program (e.g. a known candidate) as a full w, for a SCIP warm start."""
    b = inverse_data["blocks"]
    w = np.zeros(prog.n)
    for key, v in (("x", x), ("y", y), ("s", s), ("lam", lam), ("mu", mu)):
        w[b[key]] = np.asarray(v, float).reshape(-1)
    return w


def program_point(prog: SingleLevelProgram, w: np.ndarray) -> Any:
    """``w`` clipped into the program's box (a warm start must respect the bounds SCIP sees)."""
    return np.clip(np.asarray(w, float), prog.lb, prog.ub)
