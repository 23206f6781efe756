"""Stage: sensitivities of the follower's reply from its KKT system (sparse, one factorisation)."""
from .directional import DirectionalDerivative
from .response import FollowerResponse, follower_response, response_at
from .export import export_function
from .sensitivity import Sensitivity, sensitivity

__all__ = ["DirectionalDerivative", "FollowerResponse", "response_at", "Sensitivity", "export_function", "follower_response", "sensitivity"]
