"""Stage 5: prove (or refute) that the follower's reply is optimal at the leader's point."""
from .certificate import Certificate, certify, leader_box
from .convexity import follower_is_convex
from .implement import implemented_point
from .residuals import KKTResiduals, infeasibility, kkt_residuals

__all__ = ["Certificate", "KKTResiduals", "certify", "follower_is_convex", "implemented_point", "infeasibility",
           "kkt_residuals", "leader_box"]
