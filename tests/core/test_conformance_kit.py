"""The conformance kit fails a backend that only pretends to time (one reporting a constant, one that never times)
and one whose errors surface at no stage of their own. (A kit a fake can pass proves nothing: these play the fake.)"""

import textwrap

import pytest

from ksdk.testing.conformance import BackendConformance, Case

# Numpy "kernels": a Python candidate defines `kernel(a, out)`. The honest Runner times it with perf_counter;
# the fakes report 1.0 ms whatever ran, or raise instead of timing.
DOUBLE = textwrap.dedent('''
    import time
    from ksdk.interfaces.backend import Backend, CallReport, CandidateError, Runner
    from ksdk.models import Availability, DeviceInfo, ErrorKind

    class NumpyRunner(Runner):
        MODE = "honest"

        def load(self, source):
            self.ns = {}
            try:
                exec(compile(source, "<candidate>", "exec"), self.ns)
            except SyntaxError as e:
                raise CandidateError(ErrorKind.SYNTAX, str(e), e.lineno) from None
            if "kernel" not in self.ns:
                raise CandidateError(ErrorKind.MISSING_ENTRY, "no kernel(a, out) defined")

        def build(self):
            return []

        def call(self, inputs, outputs, record_ops=False):
            self.ns["kernel"](inputs[0], outputs[0])
            return CallReport(outputs=[(list(outputs[0].shape), str(outputs[0].dtype))])

        def time(self, inputs, outputs, settings, share, warmup, turn=0):
            if self.MODE == "never":
                raise RuntimeError("this backend does not time")
            samples = []
            for _ in range(max(3, int(settings.repetitions * share))):
                t = time.perf_counter()
                self.ns["kernel"](inputs[0], outputs[0])
                samples.append((time.perf_counter() - t) * 1e3)
            if self.MODE == "constant":
                samples = [1.0] * len(samples)
            return samples, self.call(inputs, outputs)

    class ConstantRunner(NumpyRunner):
        MODE = "constant"

    class LazyRunner(NumpyRunner):
        """Reports no stage of its own: loads nothing until the first call, so every error surfaces there."""

        def load(self, source):
            self.source = source

        def call(self, inputs, outputs, record_ops=False):
            if not hasattr(self, "ns"):
                NumpyRunner.load(self, self.source)
            return NumpyRunner.call(self, inputs, outputs, record_ops)

    class NeverRunner(NumpyRunner):
        MODE = "never"

    def _backend(name, runner):
        class B(Backend):
            language = "numpy_kit"

            @classmethod
            def probe(cls):
                return Availability(name=cls.name, available=True,
                                    devices=[DeviceInfo(index=0, name="cpu", kind="cpu")])

            def runner(self, ctx):
                return runner()
        B.name = name
        return B

    HonestBackend = _backend("kit_honest", NumpyRunner)
    ConstantBackend = _backend("kit_constant", ConstantRunner)
    NeverBackend = _backend("kit_never", NeverRunner)
    LazyBackend = _backend("kit_lazy", LazyRunner)
''')

TASK = '''
import numpy as np
KSDK_TASK = {"correctness_trials": 1, "timing": {"warmup": 1, "warmup_ms": 0, "repetitions": 5, "min_time_ms": 0}}
class Model:
    def __call__(self, a):
        return np.sqrt(np.abs(a)) + 1.0
def get_inputs():
    return [np.random.rand(20_000).astype(np.float32)]
def get_init_inputs():
    return []
'''
GOOD = "import numpy as np\ndef kernel(a, out):\n    np.sqrt(np.abs(a), out=out)\n    out += 1.0\n"
SLOW = ("import numpy as np\ndef kernel(a, out):\n    for _ in range(20):\n        np.sqrt(np.abs(a), out=out)\n"
        "    out += 1.0\n")


@pytest.fixture
def kit_backends(backend_double):
    from ksdk.testing.plugins import plugin_site

    site = backend_double("kit_honest", "HonestBackend", DOUBLE)
    plugin_site(site, "kit-fakes", "1.0", {}, {"ksdk.backends": {"kit_constant": "kit_honest_backend:ConstantBackend",
                                                                  "kit_never": "kit_honest_backend:NeverBackend",
                                                                  "kit_lazy": "kit_honest_backend:LazyBackend"}})


def kit(backend: str):
    class Kit(BackendConformance):
        def cases(self):
            return {"good": Case(TASK, GOOD), "slow": Case(TASK, SLOW), "wrong": Case(TASK, GOOD.replace("1.0", "2.0")),
                    "broken_load": Case(TASK, GOOD.replace("def kernel(a, out):", "def kernel(a, out)"))}

    Kit.backend = backend
    Kit._results = {}
    return Kit()


def test_an_honest_backend_passes_the_timing_checks(kit_backends):
    k = kit("kit_honest")
    k.test_good_candidate_timed_or_says_why_not()
    k.test_reported_times_agree_with_the_judges_clock()
    k.test_a_slower_candidate_is_timed_slower()
    k.test_broken_load_rejected_at_load()


def test_a_backend_reporting_a_constant_time_fails_the_kit_but_not_the_judges_clock(kit_backends):
    """A Runner's own timer no longer decides a speedup (the judge's clock does, and orders good and slow whatever the
    Runner reports), but the kit still fails the timer it would report as a record."""
    k = kit("kit_constant")
    k.test_a_slower_candidate_is_timed_slower()
    with pytest.raises(AssertionError, match="timer is off"):
        k.test_reported_times_agree_with_the_judges_clock()


def test_a_backend_that_never_times_fails_the_kit(kit_backends):
    k = kit("kit_never")
    k.test_good_candidate_timed_or_says_why_not()  # the judge's clock times it all the same
    with pytest.raises(AssertionError, match="does not time"):
        k.test_reported_times_agree_with_the_judges_clock()


def test_a_backend_whose_errors_surface_at_no_stage_of_their_own_fails_the_kit(kit_backends):
    """A Runner that loads nothing until the first call reports a syntax error as a correctness failure: the kit
    names the stage it came at."""
    k = kit("kit_lazy")
    with pytest.raises(AssertionError, match="CORRECTNESS"):
        k.test_broken_load_rejected_at_load()
