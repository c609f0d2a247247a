"""cpu_c passes ksdk's backend conformance kit, run through the real LocalEvaluator."""

from ksdk.testing.conformance import BackendConformance, Case

import cpu_c_cases as tasks


class TestCpuCConformance(BackendConformance):
    backend = "cpu_c"

    def cases(self):
        return {
            "good": Case(tasks.ADD_TASK, tasks.GOOD, name="vector_add"),
            "slow": Case(tasks.ADD_TASK, tasks.SLOW, name="vector_add"),
            "broken_load": Case(tasks.ADD_TASK, tasks.BROKEN_LOAD, name="vector_add"),
            "broken_compile": Case(tasks.ADD_TASK, tasks.BROKEN_COMPILE, name="vector_add"),
            "wrong": Case(tasks.ADD_TASK, tasks.WRONG, name="vector_add"),
        }
