"""MultiEvaluator: several evaluators of one backend (a service per GPU or per machine) used as one."""

from __future__ import annotations

from typing import Optional, Sequence

from ksdk.errors import KsdkError
from ksdk.interfaces.evaluator import Evaluator
from ksdk.models import Candidate, EvalResult, EvaluatorInfo, Task


class MultiEvaluator(Evaluator):
    """Sends each evaluation to the least-loaded member; a member that fails over to the others.

    All members must run the same backend (speedups from different hardware are not comparable within
    one run): to evolve a task on several backends, run one `ksdk evolve` per backend.
    """

    def __init__(self, evaluators: Sequence[Evaluator]):
        if not evaluators:
            raise KsdkError("MultiEvaluator needs at least one evaluator")
        self.members = list(evaluators)
        self._inflight = [0] * len(self.members)
        self._checked = False

    def _check(self) -> list[EvaluatorInfo]:
        infos = [m.info() for m in self.members]
        if not self._checked:
            names = sorted({i.backend for i in infos})
            if len(names) > 1:
                raise KsdkError(f"the evaluators given run different backends ({', '.join(names)}); one run uses "
                                "one backend: start one `ksdk evolve --backend B --evaluator URL` per backend")
            self._checked = True
        return infos

    @property
    def workers(self) -> int:
        self._check()
        return sum(m.workers for m in self.members)

    def info(self) -> EvaluatorInfo:
        infos = self._check()
        first = infos[0]
        avail = first.availability.model_copy(
            update={"devices": [d for i in infos for d in i.availability.devices]})
        return first.model_copy(update={"workers": sum(i.workers for i in infos), "availability": avail})

    def hints(self) -> str:
        return self.members[0].hints()

    def _order(self) -> list[int]:
        load = [self._inflight[i] / max(1, self.members[i].workers) for i in range(len(self.members))]
        return sorted(range(len(self.members)), key=lambda i: (load[i], i))

    async def evaluate(self, task: Task, candidate: Candidate) -> EvalResult:
        last: Optional[KsdkError] = None
        for i in self._order():
            self._inflight[i] += 1
            try:
                return await self.members[i].evaluate(task, candidate)
            except KsdkError as e:  # that member is unreachable or refuses: the others may still answer
                last = e
            finally:
                self._inflight[i] -= 1
        raise KsdkError(f"every evaluator failed; the last said: {last}")

    async def close(self) -> None:
        for m in self.members:
            await m.close()
