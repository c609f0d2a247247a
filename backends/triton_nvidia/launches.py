"""Count Triton kernel launches and the memory they receive, on the GPU and in the interpreter.

Two independent sources: Triton's own `knobs.runtime.launch_enter_hook` (every real launch on the GPU, with
its kernel name and stream) and a wrapper around `JITFunction.run` / `InterpretedFunction.run` (every launch
through @triton.jit, in both modes, with its tensor arguments). The interpreter never calls the launch hook,
so there the wrapper is the counter. Both are verified intact after every candidate call (checks.Integrity).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class Launch:
    """One kernel launch: the kernel's name, its stream (GPU) and the storages of its tensor arguments."""

    name: str
    stream: Optional[int] = None
    storages: list[tuple[int, int]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    # The tensors themselves, kept alive until the window closes: a scratch buffer freed right after its launch
    # could otherwise be reused by a PyTorch-computed output, which would then look kernel-written.
    held: list = field(default_factory=list)


def _tensor_storages(values) -> list[tuple[int, int]]:
    import torch

    out = []
    for v in values:
        if isinstance(v, torch.Tensor):
            try:
                s = v.untyped_storage()
                out.append((s.data_ptr(), s.nbytes()))
            except Exception:  # tensors without storage (meta, sparse) cannot carry outputs
                pass
    return out


class LaunchRecorder:
    """Installed once per worker; `window()` starts a fresh list of launches for one candidate call."""

    def __init__(self, interpret: bool):
        self.interpret = interpret
        self.runs: list[Launch] = []  # from the run wrapper
        self.hooked: list[Launch] = []  # from Triton's launch hook (GPU only)
        self.functions: list[Any] = []  # JIT functions seen launching (for compiler metadata)
        self.installed: dict[str, Any] = {}
        self.hold = True
        self.on_compile = None  # set during a call: told when a Triton compilation starts (True) and ends (False)

    # -- installation ----------------------------------------------------------------------------
    def install(self) -> None:
        from triton import knobs
        from triton.runtime import interpreter, jit

        recorder = self

        def wrap(original):
            def run(fn_self, *args, **kwargs):
                if not kwargs.get("warmup", False):
                    recorder._note_run(fn_self, args, kwargs)
                return original(fn_self, *args, **kwargs)

            run.__wrapped__ = original
            run.__ksdk_launch_wrapper__ = True
            return run

        for owner in (jit.JITFunction, interpreter.InterpretedFunction):
            if not getattr(owner.run, "__ksdk_launch_wrapper__", False):
                owner.run = wrap(owner.run)
            self.installed[f"{owner.__name__}.run"] = owner.run

        compile_ = getattr(jit.JITFunction, "_do_compile", None)
        if compile_ is not None and not getattr(compile_, "__ksdk_compile_wrapper__", False):
            def do_compile(fn_self, *args, **kwargs):
                note = recorder.on_compile
                if note is not None:
                    note(True)
                try:
                    return compile_(fn_self, *args, **kwargs)
                finally:
                    if note is not None:
                        note(False)

            do_compile.__ksdk_compile_wrapper__ = True
            jit.JITFunction._do_compile = do_compile

        hook = knobs.runtime.launch_enter_hook
        if hasattr(hook, "add"):  # triton >= 3.5: a HookChain
            hook.add(self._on_launch)
        else:  # older knobs: a single optional callable; keep whatever was there
            previous = hook

            def chained(metadata):
                self._on_launch(metadata)
                if previous is not None:
                    previous(metadata)

            knobs.runtime.launch_enter_hook = chained
        self.installed["launch_enter_hook"] = knobs.runtime.launch_enter_hook

    def intact(self) -> list[str]:
        """Names of the launch-counting parts that were removed or replaced (empty when all is well)."""
        from triton import knobs
        from triton.runtime import interpreter, jit

        bad = []
        for owner in (jit.JITFunction, interpreter.InterpretedFunction):
            if owner.run is not self.installed.get(f"{owner.__name__}.run"):
                bad.append(f"triton {owner.__name__}.run")
        hook = knobs.runtime.launch_enter_hook
        if hook is not self.installed.get("launch_enter_hook"):
            bad.append("triton.knobs.runtime.launch_enter_hook")
        elif hasattr(hook, "calls") and self._on_launch not in hook.calls:
            bad.append("triton.knobs.runtime.launch_enter_hook (ksdk's hook removed)")
        return bad

    # -- recording -------------------------------------------------------------------------------
    def _note_run(self, fn_self, args, kwargs) -> None:
        name = getattr(fn_self, "__name__", None) or getattr(getattr(fn_self, "fn", None), "__name__", "kernel")
        options = {k: kwargs[k] for k in ("num_warps", "num_stages") if k in kwargs}
        values = list(args) + list(kwargs.values())
        held = [v for v in values if self.hold and hasattr(v, "untyped_storage")]
        self.runs.append(Launch(name=name, storages=_tensor_storages(values) if self.hold else [],
                                options=options, held=held))
        if fn_self not in self.functions:
            self.functions.append(fn_self)

    def _on_launch(self, metadata) -> None:
        data = getattr(metadata, "data", None) or {}
        stream = data.get("stream")
        self.hooked.append(Launch(name=str(data.get("name", "kernel")), stream=int(stream) if stream else None))

    @contextlib.contextmanager
    def unheld(self):
        """Launches in this block keep none of their arguments alive (timed calls: thousands of them)."""
        self.hold = False
        try:
            yield self
        finally:
            self.hold = True

    def window(self) -> "LaunchRecorder":
        """Forget launches seen so far; the caller reads `count` and `storages` after one candidate call."""
        self.runs.clear()
        self.hooked.clear()
        return self

    @property
    def count(self) -> int:
        """Kernel launches in the current window: the launch hook's count on the GPU, the wrapper's in the
        interpreter."""
        return len(self.runs) if self.interpret else max(len(self.hooked), len(self.runs))

    @property
    def storages(self) -> list[tuple[int, int]]:
        return [s for launch in self.runs for s in launch.storages]

    @property
    def streams(self) -> set[int]:
        return {launch.stream for launch in self.hooked if launch.stream is not None}
