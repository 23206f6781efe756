"""Stage 2: lower the SymPy model to CasADi once (a node-by-node translator)."""
from .lowered import LoweredProblem, lower
from .sympy2casadi import SympyToCasadi, to_casadi

__all__ = ["LoweredProblem", "SympyToCasadi", "lower", "to_casadi"]
