"""Typed errors: every failure a user can cause or meet has its own class.

Each message names the offending symbol or constraint and says how to fix it,
so a notebook user can act on the error without reading our source.
"""


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""


class ModelError(WorkbenchError, ValueError):
    """The declaration of a bilevel problem is invalid."""


class UnknownSymbolError(ModelError):
    """An expression uses a symbol that is neither leader, follower nor parameter."""


class UnknownMultiplierError(UnknownSymbolError):
    """``wb.multiplier(name)`` refers to no follower constraint with a multiplier (or is misplaced)."""


class ConstraintError(ModelError):
    """A constraint is not a usable relational (strict, ``!=``, boolean, not SymPy)."""


class IntegerVariableError(ModelError):
    """``integer=[...]`` names a symbol that is not a leader variable."""


class ValueInputError(ModelError):
    """Numeric input (parameter values, starting points) is NaN/inf or wrongly sized."""


class NonSmoothError(ModelError):
    """The follower uses a non-smooth function where the KKT route needs derivatives."""


class MethodError(WorkbenchError, ValueError):
    """A solution method cannot be applied to this problem (and says why)."""


class SolverFailure(WorkbenchError, RuntimeError):
    """A solver did not produce a usable point; carries Ipopt's (or HiGHS') status."""

    def __init__(self, message: str, status: str = "solver_failed", solver_status: str | None = None):
        super().__init__(message)
        self.status = status
        self.solver_status = solver_status


class UnsupportedExpressionError(MethodError):
    """An operation has no counterpart in SCIP's expression language (the global follower proof)."""


class NotDifferentiable(WorkbenchError, ArithmeticError):
    """The follower's reply has a kink here: no two-sided derivative exists.

    ``constraints`` names the follower constraints whose activity switches;
    for a one-dimensional leader ``one_sided`` holds {"+": right, "-": left}
    derivatives of y* and ``one_sided_hypergradient`` those of F(x, y*(x)).
    Directional derivatives always exist there: use ``s.directional(d)``.
    """

    def __init__(self, message: str, constraints: list | None = None, one_sided: dict | None = None,
                 one_sided_hypergradient: dict | None = None):
        super().__init__(message)
        self.constraints = list(constraints or [])
        self.one_sided = one_sided
        self.one_sided_hypergradient = one_sided_hypergradient
