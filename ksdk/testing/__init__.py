"""Conformance kit for backend authors: subclass BackendConformance in your tests and fill in the cases.

    from ksdk.testing import BackendConformance, Case

    class TestMyBackend(BackendConformance):
        backend = "my_backend"
        def cases(self):
            return {"good": Case(task_src, good_src), "broken_load": Case(task_src, "def oops(:"), ...}
"""

from ksdk.testing.conformance import BackendConformance, Case
from ksdk.testing.plugins import plugin_site

__all__ = ["BackendConformance", "Case", "plugin_site"]
