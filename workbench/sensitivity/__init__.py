"""Stage: sensitivities of the follower's reply from its KKT system (sparse, one factorisation)."""
from .response import FollowerResponse, follower_response
from .sensitivity import Sensitivity, sensitivity

__all__ = ["FollowerResponse", "Sensitivity", "follower_response", "sensitivity"]
