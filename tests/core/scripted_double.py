"""A test-only backend, installed as a plugin by the `backend_double` fixture: its "candidates" are commands telling
its Runner how to misbehave, as native code in the candidate's process could (it shares that process with the
harness, so it can reach the socket to the judge). The task doubles its input. The judge's process reports its own
pid through versions() (the judge never runs candidate code)."""

import textwrap

DOUBLE = textwrap.dedent('''
    import gc, json, os, signal, struct, subprocess, sys, tempfile, time
    from ksdk.interfaces.backend import Backend, CallReport, CandidateError, Runner
    from ksdk.languages import Language
    from ksdk.models import Availability, DeviceInfo, ErrorKind

    def _sock():
        return next(o for o in gc.get_objects() if type(o).__name__ == "Harness").sock

    def _frame(body):
        return struct.pack(">I", len(body)) + body

    TAMPER = {"garbage": _frame(b"not json"), "not-a-dict": _frame(b"[1]"),
              "huge": struct.pack(">I", 1 << 31) + b"x" * 1024, "deep": _frame(b"[" * 200000 + b"]" * 200000),
              "extra-field": _frame(json.dumps({"op": "reply", "ok": True, "speedup": 1000}).encode())}

    class ScriptedRunner(Runner):
        def load(self, source):
            self.cmd = source.strip()

        def build(self):
            cmd = self.cmd
            if cmd == "crash":
                os.kill(os.getpid(), signal.SIGSEGV)
            if cmd == "hang":
                time.sleep(3600)
            if cmd == "hang-with-child":
                subprocess.Popen(["sleep", "3601"])
                time.sleep(3600)
            if cmd == "print":
                print('{"op": "reply", "ok": true}')
                sys.stdout.flush()
            if cmd == "env":
                raise CandidateError(ErrorKind.RUNTIME, json.dumps(sorted(os.environ)))
            if cmd.startswith("read-seed-"):  # an artefact an earlier candidate asked the judge to build
                path = os.path.join(tempfile.gettempdir(), cmd[len("read-seed-"):] + ".txt")
                raise CandidateError(ErrorKind.RUNTIME, open(path).read() if os.path.exists(path) else "absent")
            if cmd in ("read-seed", "tamper-seed"):  # the judge's seed cache, as this process's copy has it
                path = os.path.join(tempfile.gettempdir(), "seed.txt")
                if cmd == "tamper-seed":
                    open(path, "w").write("tampered by a candidate")
                raise CandidateError(ErrorKind.RUNTIME, open(path).read())
            if cmd == "sticky":
                raise CandidateError(ErrorKind.RUNTIME, "sticky")
            if cmd == "slow-once":
                subprocess.run(["sleep", "3.0017"])
            if cmd in TAMPER or cmd == "close-and-hang":  # write to the judge's channel (or close it), then hang
                sock = _sock()
                sock.sendall(TAMPER[cmd]) if cmd in TAMPER else sock.close()
                time.sleep(3600)
            return []

        def call(self, inputs, outputs, record_ops=False):
            outputs[0][...] = inputs[0] * 2
            report = CallReport(outputs=[(list(outputs[0].shape), str(outputs[0].dtype))])
            if self.cmd == "ask-seed":  # untrusted requests: the backend builds only names it accepts
                report.seed_requests = ["alpha", "../../escape", {"x": 1}, "alpha"] + [f"n{i}" for i in range(40)]
            return report

        def time(self, inputs, outputs, settings, share, warmup, turn=0):
            return [1.0], self.call(inputs, outputs)

    class ScriptedBackend(Backend):
        name = "scripted"
        language = Language(name="cmd", line_comments=("#",))  # so a comment-only change is the same program

        @classmethod
        def probe(cls):
            return Availability(name="scripted", available=True, devices=[DeviceInfo(index=0, name="host")])

        def versions(self):
            if os.environ.get("KSDK_TEST_PIDFILE"):
                open(os.environ["KSDK_TEST_PIDFILE"], "w").write(str(os.getpid()))
            return {"judge_pid": str(os.getpid())}

        def seed_cache(self, ctx, folder, requests=()):
            if not requests:
                (folder / "seed.txt").write_text("seeded by the judge")
            for r in requests:
                if isinstance(r, str) and r.isalnum():
                    (folder / f"{r}.txt").write_text(f"built {r} on request")
            with open(folder / "calls.txt", "a") as f:
                f.write(json.dumps(requests) + "\\n")

        def sticky_error(self, result):
            return "sticky" in result.message

        def target(self, ctx):
            from ksdk.evaluation.targets import Target

            if not os.environ.get("KSDK_TEST_DEVICE_TARGET"):
                return super().target(ctx)

            class Device(Target):  # a device's rules (its lock among judges, its clock) over the host's memory
                kind = "device"

                def thread_cpu_ns(self):
                    return None

            return Device()

        def runner(self, ctx):
            if os.environ.get("KSDK_TEST_BROKEN_RUNNER"):
                raise RuntimeError("backend bug")
            return ScriptedRunner()
''')

TASK_SOURCE = """
import torch
class Model(torch.nn.Module):
    def forward(self, x):
        return x * 2
def get_inputs():
    return [torch.randn(8)]
def get_init_inputs():
    return []
"""
