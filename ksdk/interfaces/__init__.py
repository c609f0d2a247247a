"""The four interfaces of ksdk: Backend, Evaluator, Mutator, Archive. Each fits on one screen."""

from ksdk.interfaces.archive import Archive
from ksdk.interfaces.backend import Backend, CallReport, CandidateError, RunContext, Runner, TaskView
from ksdk.interfaces.evaluator import Evaluator
from ksdk.interfaces.mutator import MutationOutcome, MutationRequest, Mutator, Scored

__all__ = [
    "Archive", "Backend", "CallReport", "CandidateError", "Evaluator", "Mutator", "MutationOutcome",
    "MutationRequest", "RunContext", "Runner", "Scored", "TaskView",
]
