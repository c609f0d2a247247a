"""The plugin interfaces of ksdk: Backend, Evaluator, Mutator. Each fits on one screen."""

from ksdk.interfaces.backend import Backend, EvalContext
from ksdk.interfaces.evaluator import Evaluator
from ksdk.interfaces.mutator import MutationOutcome, MutationRequest, Mutator, Scored

__all__ = [
    "Backend", "EvalContext", "Evaluator", "Mutator", "MutationOutcome", "MutationRequest", "Scored",
]
