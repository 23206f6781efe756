"""Stage 5: certify a candidate by re-solving the follower at the leader's point."""
from .certificate import Certificate, certify, follower_starts
from .convexity import follower_is_convex

__all__ = ["Certificate", "certify", "follower_is_convex", "follower_starts"]
