"""Policy on what a candidate's process says about one call. Reports are claims: what incriminates the candidate is
believed (contract violations it saw, PyTorch ops or library kernels that computed, outputs of the wrong number,
shape or dtype); nothing in a report can make a verdict better."""

from __future__ import annotations

from typing import Optional

from ksdk.evaluation import policy
from ksdk.evaluation.kernel_policy import kernel_verdict, record_warning
from ksdk.evaluation.protocol import Report
from ksdk.evaluation.trial import dtype_name
from ksdk.evaluation.verdict import Verdict
from ksdk.models import ErrorKind, Stage


class ReportChecks:
    """The checks for one evaluation: `needs_kernels` when the backend's kernels must compute (Triton: a forward
    launching none of them is PyTorch doing the work) and the task allows no PyTorch compute."""

    def __init__(self, language: str, needs_kernels: bool, allowed_ops: list[str], on_device: bool = False):
        self.language, self.needs_kernels, self.allowed = language, needs_kernels, list(allowed_ops)
        self.on_device = on_device  # a missing kernel record is worth a warning there (never in an interpreter)
        self.min_launches: Optional[int] = None
        self.warnings: list[str] = []

    def outputs(self, stage: Stage, report: Optional[Report], refs: list, what: str) -> None:
        """Contract violations the process saw, kernels launched, and its outputs' number, shapes and dtypes."""
        r = report or Report()
        if r.problems:
            raise Verdict(stage, ErrorKind.REWARD_HACK, f"{what}: {r.problems[0]}")
        if self.needs_kernels and r.launches is not None and r.launches == 0:
            raise Verdict(stage, ErrorKind.REWARD_HACK, f"{what}: forward launched none of the backend's kernels: "
                          f"the output was computed by other code (PyTorch); {self.language} kernels must compute it")
        if r.launches is not None:
            self.min_launches = r.launches if self.min_launches is None else min(self.min_launches, r.launches)
        if len(r.outputs) != len(refs):
            raise Verdict(stage, ErrorKind.SHAPE, f"{what}: the candidate returned {len(r.outputs)} outputs, the "
                          f"reference {len(refs)}")
        for i, ((shape, dtype), ref) in enumerate(zip(r.outputs, refs)):
            if list(shape) != list(ref.shape):
                raise Verdict(stage, ErrorKind.SHAPE, f"{what}: output {i} has shape {tuple(shape)} but the "
                              f"reference has {tuple(ref.shape)}")
            if dtype.replace("torch.", "") != dtype_name(ref):
                raise Verdict(stage, ErrorKind.DTYPE, f"{what}: output {i} has dtype {dtype} but the reference has "
                              f"{dtype_name(ref)}")

    def compute(self, stage: Stage, report: Optional[Report], what: str) -> None:
        """PyTorch must not compute the answer: outputs no kernel wrote, compute ops or library kernels the task does
        not allow, and the two records of the process (its op recorder, its kernel record) must agree."""
        r = report or Report()
        if self.needs_kernels and r.written_by_kernels is False:
            raise Verdict(stage, ErrorKind.REWARD_HACK, f"{what}: an output was computed by PyTorch ops alone: none "
                          "of the kernels launched during forward received its memory; the output must be written "
                          "by your kernel")
        if r.torch_ops:
            ops = policy.compute_ops(r.torch_ops, self.allowed)
            if ops:
                raise Verdict(stage, ErrorKind.REWARD_HACK, f"{what}: forward ran {', '.join(ops[:8])} in PyTorch: "
                              "the candidate's kernels must compute the result (a task may allow ops through "
                              "KSDK_TASK's allow_torch_ops)")
        found = kernel_verdict(r.torch_ops, r.kernels_seen, r.kernel_record_lost, r.launches, self.allowed)
        if found:
            raise Verdict(stage, ErrorKind.REWARD_HACK, f"{what}: {found}")
        warning = record_warning(r.kernels_seen, r.kernel_record, r.kernel_record_lost) if self.on_device else None
        if warning and warning not in self.warnings:
            self.warnings.append(warning)

    def fewer_launches(self, stage: Stage, launches: Optional[int], what: str) -> None:
        """A call launching fewer kernels than any correctness call did does less work when called repeatedly."""
        if self.min_launches and launches is not None and launches < self.min_launches:
            raise Verdict(stage, ErrorKind.REWARD_HACK, f"{what}: forward launched {launches} kernels per call but "
                          f"at least {self.min_launches} per call during correctness: it does less work when called "
                          "repeatedly")
