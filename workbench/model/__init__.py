"""Stage 1: declaration and validation of bilevel problems (SymPy is the source of truth)."""
from .constraints import Constraint, Named, named
from .multipliers import MultiplierSymbol, multiplier
from .objective import Maximize, Minimize
from .problem import BilevelProblem
from .protocol import Problem

__all__ = ["BilevelProblem", "Constraint", "Maximize", "Minimize", "MultiplierSymbol", "Named", "Problem", "multiplier", "named"]
