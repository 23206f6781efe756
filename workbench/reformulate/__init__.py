"""Stage 3: reformulations, each a :class:`Reduction` with ``apply`` and ``invert``."""
from .bilevel2mpcc import MPCC, Bilevel2MPCC, KKTSolution, initial_w, lagrangian
from .reduction import Chain, Reduction
from .mpcc_relax import MPCCRelax, Relaxation, RelaxedNLP, complementarity_residual

__all__ = ["MPCC", "Bilevel2MPCC", "Chain", "KKTSolution", "MPCCRelax", "Reduction", "Relaxation",
           "RelaxedNLP", "complementarity_residual", "initial_w", "lagrangian"]
