"""Stage 2: lower the SymPy model to CasADi once (a node-by-node translator)."""
from .lowered import LoweredProblem, lower, lower_matrix
from .multiplier_view import follower_view
from .sympy2casadi import SympyToCasadi, to_casadi

__all__ = ["follower_view", "LoweredProblem", "SympyToCasadi", "lower", "lower_matrix", "to_casadi"]
