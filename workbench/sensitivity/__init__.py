"""Stage: sensitivities of the follower's reply from its KKT system (sparse, one factorisation)."""
from .response import FollowerResponse, follower_response
from .export import export_function
from .sensitivity import Sensitivity, sensitivity

__all__ = ["FollowerResponse", "Sensitivity", "export_function", "follower_response", "sensitivity"]
