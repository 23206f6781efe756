"""Stage 3: reformulations, each a :class:`Reduction` with ``apply`` and ``invert``."""
from .bilevel2mpcc import MPCC, Bilevel2MPCC, initial_w, lagrangian
from .reduction import Chain, Reduction
from .mpcc_relax import SCHEMES, MPCCRelax, Relaxation, RelaxedNLP, Scheme, complementarity_residual

__all__ = ["MPCC", "Bilevel2MPCC", "Chain", "MPCCRelax", "Reduction", "Relaxation",
           "RelaxedNLP", "SCHEMES", "Scheme", "complementarity_residual", "initial_w", "lagrangian"]
