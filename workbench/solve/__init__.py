"""Stage 4: numeric solvers (Ipopt via CasADi): follower solves, the eps-homotopy, start points."""
from .follower import FollowerSolution, FollowerSolver, box_from_constraints
from .homotopy import Homotopy, HomotopyResult, HomotopyStep
from .ipopt import STATUS_MAP, IpoptResult, IpoptSolver
from .starts import follower_starts, leader_starts

__all__ = ["FollowerSolution", "FollowerSolver", "Homotopy", "HomotopyResult", "HomotopyStep",
           "IpoptResult", "IpoptSolver", "STATUS_MAP", "box_from_constraints",
           "follower_starts", "leader_starts"]
