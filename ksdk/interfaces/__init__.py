"""The plugin interfaces of ksdk: Backend, Evaluator, Mutator. Each fits on one screen."""

from ksdk.interfaces.backend import Backend, CallReport, CandidateError, RunContext, Runner, TaskView
from ksdk.interfaces.evaluator import Evaluator
from ksdk.interfaces.mutator import MutationOutcome, MutationRequest, Mutator, Scored

__all__ = [
    "Backend", "CallReport", "CandidateError", "Evaluator", "Mutator", "MutationOutcome",
    "MutationRequest", "RunContext", "Runner", "Scored", "TaskView",
]
