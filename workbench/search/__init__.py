"""The search stage (above certify and analysis, below routes): candidate points and their evidence.

Strategies (homotopies from starts, reduced-objective sampling, value-function cuts, the
final re-check, the pessimistic scan) propose points; every point is implemented exactly and
certified, and kept as a frozen :class:`Candidate` in a :class:`CandidatePool`;
:func:`result_from` turns a pool into the route's answer.
"""
from .answer import result_from
from .cuts import cut_loop, value_function_cuts
from .homotopies import Homotopies, Start
from .pool import Candidate, CandidatePool, Origin
from .recheck import final_check, select_optimistically, snap_refuted
from .sampling import Sample, best_reply, sample_and_polish, sample_reduced_objective
from .selection import optimistic_reply

__all__ = ["Candidate", "CandidatePool", "Homotopies", "Origin", "Sample", "Start", "best_reply", "cut_loop",
           "final_check", "optimistic_reply", "result_from", "sample_and_polish", "sample_reduced_objective",
           "select_optimistically", "snap_refuted", "value_function_cuts"]
