"""Analysis tools: understand a bilevel problem before trusting a number.

Each tool lives in its own module; they are imported here plainly (no lazy string table),
so "go to definition" reaches the code.
"""
from __future__ import annotations

from .reduced_convexity import check_convexity
from .follower_convexity import follower_convexity_report
from .cq import constraint_qualification
from .diagnose import diagnose
from .reaction import reaction_map
from .reduced import reduced_objective
from .uniqueness import follower_uniqueness

__all__ = ["check_convexity", "constraint_qualification", "diagnose", "follower_convexity_report",
           "follower_uniqueness", "reaction_map", "reduced_objective"]
