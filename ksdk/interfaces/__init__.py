"""The four interfaces of ksdk: Backend, Evaluator, Mutator, Archive. Each fits on one screen."""

from ksdk.interfaces.archive import Archive
from ksdk.interfaces.backend import Backend, EvalContext
from ksdk.interfaces.evaluator import Evaluator
from ksdk.interfaces.mutator import MutationOutcome, MutationRequest, Mutator, Scored

__all__ = [
    "Archive", "Backend", "EvalContext", "Evaluator", "Mutator", "MutationOutcome", "MutationRequest", "Scored",
]
