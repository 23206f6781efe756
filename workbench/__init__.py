"""workbench: declare bilevel problems in SymPy, solve, certify, differentiate and show them."""
from . import errors
from .errors import (ConstraintError, MethodError, ModelError, NonSmoothError, NotDifferentiable, SolverFailure,
                     UnknownSymbolError, ValueInputError, WorkbenchError)
from . import bolib
from .model import BilevelProblem, Maximize, Minimize, multiplier, named
from .reformulate import Relaxation
from .result import BilevelResult, MultiplierMap
from .status import SolverStats, Status
from .display import latex, explore, compare

__version__ = "0.1.0"

__all__ = ["BilevelProblem", "BilevelResult", "ConstraintError", "Maximize", "MethodError", "Minimize",
           "ModelError", "MultiplierMap", "NonSmoothError", "Relaxation", "SolverFailure",
           "UnknownSymbolError", "ValueInputError", "WorkbenchError", "errors", "multiplier", "named"]
__all__ += ["compare", "explore", "latex", "NotDifferentiable", "SolverStats", "Status"]
from .model.vector import VectorBilevelProblem
from .parallel import multistart, sweep
__all__ += ["VectorBilevelProblem", "multistart", "sweep"]
