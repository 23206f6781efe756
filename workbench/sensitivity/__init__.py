"""Stage: sensitivities of the follower's reply from its KKT system (sparse, one factorisation)."""
from .directional import DirectionalDerivative
from .response import FollowerResponse, follower_response, response_at
from .sensitivity import Sensitivity, export_function, minimum_norm, sensitivity

__all__ = ["DirectionalDerivative", "FollowerResponse", "response_at", "Sensitivity", "export_function", "follower_response", "minimum_norm", "sensitivity"]
