"""A record of the GPU kernels this process launches, taken from NVIDIA CUPTI's callback API through ctypes.

One CUPTI subscriber is set up before any candidate code runs (`start`, from the runner's warm_up); subscribing
creates no CUDA context. Its callback is enabled only for the kernel-launch API functions (driver: cuLaunchKernel,
cuLaunchKernelEx, cuLaunchCooperativeKernel and their _ptsz variants; runtime: cudaLaunchKernel and friends; plus
cu/cudaGraphLaunch, so a graph replay shows as one) and only inside a window (`window` ... `since`, `pause`): timed
calls pay nothing. At API entry it appends the launch's symbol name, which tells the library that launched it
(`classify`). Only one CUPTI subscriber may exist per process: once this one is, torch.profiler there fails.

The record lives in the candidate's process, so it is advice: `since` notices a subscriber that was removed or a
callback that was disabled (`lost`), but Python there can still edit what was recorded. The judge cross-checks it
with the aten ops recorded and the launches Triton's hook counted (ksdk.evaluation.kernel_policy).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import importlib.util
import os
import re
import threading
from collections import Counter
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator, Optional, Sequence

# Callback domains, sites and launch callback ids, from CUPTI's cupti_callbacks.h, cupti_driver_cbid.h and
# cupti_runtime_cbid.h (CUDA 12.6 and 13.0 headers agree; ids are never renumbered; libcupti 13.0 names each the same
# through cuptiGetCallbackName). `start` checks each against the library it loads, and adds launch functions it names
# that are not listed here.
DRIVER, RUNTIME = 1, 2  # CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_CB_DOMAIN_RUNTIME_API
API_ENTER = 0  # CUPTI_API_ENTER (CUPTI_API_EXIT = 1)
LAUNCH_IDS: tuple[tuple[int, int, str], ...] = (
    (DRIVER, 115, "cuLaunch"), (DRIVER, 116, "cuLaunchGrid"), (DRIVER, 117, "cuLaunchGridAsync"),
    (DRIVER, 307, "cuLaunchKernel"), (DRIVER, 442, "cuLaunchKernel_ptsz"),
    (DRIVER, 477, "cuLaunchCooperativeKernel"), (DRIVER, 478, "cuLaunchCooperativeKernel_ptsz"),
    (DRIVER, 480, "cuLaunchCooperativeKernelMultiDevice"),
    (DRIVER, 514, "cuGraphLaunch"), (DRIVER, 515, "cuGraphLaunch_ptsz"),
    (DRIVER, 652, "cuLaunchKernelEx"), (DRIVER, 653, "cuLaunchKernelEx_ptsz"),
    (RUNTIME, 13, "cudaLaunch_v3020"), (RUNTIME, 211, "cudaLaunchKernel_v7000"),
    (RUNTIME, 213, "cudaLaunch_ptsz_v7000"), (RUNTIME, 214, "cudaLaunchKernel_ptsz_v7000"),
    (RUNTIME, 269, "cudaLaunchCooperativeKernel_v9000"), (RUNTIME, 270, "cudaLaunchCooperativeKernel_ptsz_v9000"),
    (RUNTIME, 272, "cudaLaunchCooperativeKernelMultiDevice_v9000"),
    (RUNTIME, 311, "cudaGraphLaunch_v10000"), (RUNTIME, 312, "cudaGraphLaunch_ptsz_v10000"),
    (RUNTIME, 430, "cudaLaunchKernelExC_v11060"), (RUNTIME, 431, "cudaLaunchKernelExC_ptsz_v11060"),
)
LAUNCH_NAME = re.compile(r"^cu(da)?(Launch(Kernel(ExC?)?|CooperativeKernel(MultiDevice)?|Grid(Async)?)?|GraphLaunch)"
                         r"(_ptsz)?(_v\d+)?$")
MAX_LAUNCHES = 100_000  # per window; more are counted in `dropped`
KINDS = ("jit", "library-bookkeeping", "library-compute", "graph")

# Library kernels: C++ (Itanium-mangled, or demangled as a profiler prints them) and vendor-named ones (cuBLAS,
# cuBLASLt, CUTLASS, cuDNN, NCCL). Triton kernels carry their Python function's name, unmangled.
_LIBRARY = re.compile(r"^(_Z|void |sm\d+_|(ampere|volta|turing|maxwell|pascal|kepler|hopper|blackwell)_|nvjet|"
                      r"cutlass|xmma|cublas|cudnn|nccl)|::", re.I)
# Kernels torch.compile (Inductor) generates from PyTorch code: launched through Triton, but PyTorch's work.
INDUCTOR = re.compile(r"^triton_(poi|red|per|tem|for)_")
# PyTorch's copies, casts and fills (copy_, _to_copy, contiguous, clone, zeros, fill_, cat, arange).
_BOOKKEEPING = re.compile(r"copy_kernel|copy_device_to_device|CatArrayBatchedCopy|FillFunctor|"
                          r"elementwise_kernel_with_index")


@dataclass(frozen=True)
class Launch:
    """One launch: the kernel's symbol name (the API function's for a graph), its kind (KINDS), the API function."""

    name: str
    kind: str
    api: str = ""


def classify(name: str, api: str = "") -> str:
    """The kind of a launch, from its symbol name and launching API function: 'graph' (a graph replay), 'jit'
    (unmangled: Triton's), 'library-bookkeeping' (PyTorch copies, casts, fills) or 'library-compute'."""
    if "GraphLaunch" in api:
        return "graph"
    if INDUCTOR.match(name):
        return "library-compute"
    if not _LIBRARY.search(name):
        return "jit"
    return "library-bookkeeping" if _BOOKKEEPING.search(name) else "library-compute"


def attribute(launches: Iterable[Launch], triton_names: Iterable[str]) -> list[Launch]:
    """`launches` with those that Triton's launch hook also reported (by name, as many times as it did) counted as
    'jit': a Triton kernel may be named like a vendor kernel. Inductor's kernels stay PyTorch's."""
    budget = Counter(triton_names)
    out = []
    for launch in launches:
        if launch.kind.startswith("library") and budget[launch.name] > 0 and not INDUCTOR.match(launch.name):
            budget[launch.name] -= 1
            launch = replace(launch, kind="jit")
        out.append(launch)
    return out


def summary(launches: Iterable[Launch], cap: int = 256) -> dict[str, list[str]]:
    """Names by kind, in launch order (at most `cap` of each kind)."""
    out: dict[str, list[str]] = {k: [] for k in KINDS}
    for launch in launches:
        names = out.setdefault(launch.kind, [])
        if len(names) < cap:
            names.append(launch.name)
    return out


def library_paths() -> Iterator[str]:
    """Where libcupti may be, best first: one already loaded here (torch's), the nvidia-* pip packages next to torch,
    the CUDA toolkits, then the linker's cache (asked last: it runs ldconfig)."""
    seen: set[str] = set()
    for path in _library_paths():
        real = os.path.realpath(path) if os.sep in path else path
        if path and real not in seen:
            seen.add(real)
            yield path


def _library_paths() -> Iterator[str]:
    try:
        with open("/proc/self/maps") as maps:
            yield from [line.split(None, 5)[-1].strip() for line in maps if "/libcupti.so" in line]
    except OSError:
        pass
    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        spec = None
    for root in (spec.submodule_search_locations or []) if spec else []:
        for pattern in ("*/lib/libcupti.so*", "*/lib64/libcupti.so*"):
            yield from sorted(glob.glob(os.path.join(root, pattern)), reverse=True)
    homes = [os.environ.get(v, "") for v in ("CUDA_HOME", "CUDA_PATH")] + ["/usr/local/cuda"]
    homes += sorted(glob.glob("/usr/local/cuda-*"), key=_version_key, reverse=True)
    for home in filter(None, homes):
        for sub in ("extras/CUPTI/lib64", "targets/*/lib", "lib64"):
            yield from sorted(glob.glob(os.path.join(home, sub, "libcupti.so*")), reverse=True)
    yield ctypes.util.find_library("cupti") or ""


def launch_ids(name_of: Callable[[int, int], Optional[str]]) -> tuple[list[tuple[int, int, str]], list[str]]:
    """(ids to enable, notes): the known LAUNCH_IDS whose names `name_of` (a library's cuptiGetCallbackName) confirms
    or cannot tell, plus launch functions it names under ids not listed; notes say what was left out."""
    wanted, notes, known = [], [], set()
    for domain, cbid, expected in LAUNCH_IDS:
        got = name_of(domain, cbid)
        if got is not None and _base(got) != _base(expected):
            notes.append(f"callback {domain}/{cbid} is {got}, not {expected}")
            continue
        wanted.append((domain, cbid, got or expected))
        known.add((domain, cbid))
    for domain in (DRIVER, RUNTIME):
        misses = 0
        for cbid in range(1, 4096):
            name = name_of(domain, cbid)
            misses = misses + 1 if name is None else 0
            if misses > 256 or (cbid == 1 and name is None):
                break
            if name and (domain, cbid) not in known and LAUNCH_NAME.match(name):
                wanted.append((domain, cbid, name))
    return wanted, notes


def callback_name(lib: ctypes.CDLL, domain: int, cbid: int) -> Optional[str]:
    """The API function a library's CUPTI calls callback `cbid` of `domain` (None where it cannot say)."""
    fn = getattr(lib, "cuptiGetCallbackName", None)
    name = ctypes.c_char_p()
    if fn is None or fn(domain, cbid, ctypes.byref(name)) != 0 or not name.value:
        return None
    return _text(name.value)


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", os.path.basename(path)))


def _base(api: str) -> str:
    return re.sub(r"_v\d+$", "", api)


def _text(raw: Optional[bytes]) -> str:
    return raw.decode("utf-8", "replace") if raw else ""


class _CallbackData(ctypes.Structure):
    """The head of CUpti_CallbackData (cupti_callbacks.h), the data of a driver or runtime API callback; the fields
    after symbolName (context, contextUid, correlationData, correlationId) are not read."""

    _fields_ = [("callbackSite", ctypes.c_int), ("functionName", ctypes.c_char_p), ("functionParams", ctypes.c_void_p),
                ("functionReturnValue", ctypes.c_void_p), ("symbolName", ctypes.c_char_p)]


# void CUPTIAPI (*CUpti_CallbackFunc)(void *userdata, CUpti_CallbackDomain domain, CUpti_CallbackId cbid,
# const void *cbdata); CUPTIAPI is the default C convention on Linux.
_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_void_p)


def bind(lib: ctypes.CDLL) -> None:
    """Declare the CUPTI functions used (every one returns a CUptiResult, a C enum)."""
    u32, handle, p = ctypes.c_uint32, ctypes.c_void_p, ctypes.POINTER
    signatures = {
        "cuptiSubscribe": [p(handle), _CALLBACK, ctypes.c_void_p],
        "cuptiUnsubscribe": [handle],
        "cuptiEnableCallback": [u32, handle, ctypes.c_int, u32],
        "cuptiGetCallbackState": [p(u32), handle, ctypes.c_int, u32],
        "cuptiGetResultString": [ctypes.c_int, p(ctypes.c_char_p)],
    }
    for name, args in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, ctypes.c_int
    try:  # CUPTI 11.x and later
        lib.cuptiGetCallbackName.argtypes = [ctypes.c_int, u32, p(ctypes.c_char_p)]
        lib.cuptiGetCallbackName.restype = ctypes.c_int
    except AttributeError:
        pass


class KernelLog:
    """This process's kernel record: one CUPTI subscriber, its launch callbacks enabled only inside a window."""

    def __init__(self) -> None:
        self.error: Optional[str] = "not started in this process"  # why there is no record (None once running)
        self.lost: Optional[str] = None  # set when the running record stopped (its subscriber or callbacks gone)
        self.path = ""  # the libcupti in use
        self.ids: list[tuple[int, int, str]] = []  # (domain, callback id, API function) enabled in a window
        self.notes: list[str] = []  # ids left out, and why
        self.dropped = self.faults = 0
        self._lib: Optional[ctypes.CDLL] = None
        self._handle = ctypes.c_void_p()
        self._callback = None  # the ctypes thunk CUPTI calls: kept alive as long as the subscription
        self._raw: list[tuple[str, str]] = []  # (API function, symbol name) since the window opened
        self._depth: dict[int, int] = {}  # per thread: runtime launches in progress (their driver launches are theirs)
        self._lock = threading.Lock()
        self._tried = self._started = False

    def available(self) -> bool:
        """True while the record runs (started, and nothing has switched it off)."""
        return self.error is None and self.lost is None

    def start(self, paths: Optional[Sequence[str]] = None) -> Optional[str]:
        """Subscribe (once per process; no CUDA context is made); None when running, else why there is no record."""
        with self._lock:
            if self._tried:
                return self.error
            self._tried = True
            reasons = []
            for path in library_paths() if paths is None else paths:
                reason = self._subscribe(path)
                if reason is None:
                    self.error, self.path, self._started = None, path, True
                    return None
                reasons.append(f"{path}: {reason}")
                if "MULTIPLE_SUBSCRIBERS" in reason:
                    break
            self.error = "no libcupti found" if not reasons else "CUPTI unavailable: " + "; ".join(reasons[:4])
            return self.error

    def _subscribe(self, path: str) -> Optional[str]:
        try:
            lib = ctypes.CDLL(path)
            bind(lib)
        except (OSError, AttributeError) as e:
            return f"cannot load: {e}"
        callback = _CALLBACK(self._on_callback)
        handle = ctypes.c_void_p()
        result = lib.cuptiSubscribe(ctypes.byref(handle), callback, None)
        if result != 0:
            return "cuptiSubscribe failed: " + _result(lib, result)
        self._lib, self._handle, self._callback = lib, handle, callback
        self.ids = self._launch_ids()
        if not any(_base(name) in ("cuLaunchKernel", "cuLaunchKernelEx") for _, _, name in self.ids):
            lib.cuptiUnsubscribe(handle)
            self._lib = self._callback = None
            return "no kernel-launch callback could be enabled (" + "; ".join(self.notes[:3]) + ")"
        return None

    def _launch_ids(self) -> list[tuple[int, int, str]]:
        """The launch ids this library names as launch functions, each enabled once to check it, then left
        disabled until a window opens."""
        wanted, self.notes = launch_ids(lambda domain, cbid: callback_name(self._lib, domain, cbid))
        ids = []
        for domain, cbid, name in wanted:
            result = self._lib.cuptiEnableCallback(1, self._handle, domain, cbid)
            if result == 0:
                ids.append((domain, cbid, name))
                self._lib.cuptiEnableCallback(0, self._handle, domain, cbid)
            else:
                self.notes.append(f"{name} ({domain}/{cbid}): {_result(self._lib, result)}")
        return ids

    def _on_callback(self, userdata, domain, cbid, cbdata) -> None:
        """CUPTI's call at the entry and exit of every enabled launch function, on the launching thread."""
        try:
            if not cbdata:
                return
            data = _CallbackData.from_address(cbdata)
            enter = data.callbackSite == API_ENTER
            thread = threading.get_ident()
            if domain == RUNTIME:
                depth = self._depth.get(thread, 0)
                self._depth[thread] = depth + 1 if enter else max(0, depth - 1)
            elif self._depth.get(thread):
                return
            if not enter:
                return
            if len(self._raw) < MAX_LAUNCHES:
                self._raw.append((_text(data.functionName), _text(data.symbolName)))
            else:
                self.dropped += 1
        except Exception:  # noqa: BLE001 - never raise into the driver
            self.faults += 1

    def _enable(self, on: bool) -> Optional[str]:
        for domain, cbid, name in self.ids:
            result = self._lib.cuptiEnableCallback(1 if on else 0, self._handle, domain, cbid)
            if result != 0:
                return f"cuptiEnableCallback({name}) failed: {_result(self._lib, result)}"
        return None

    def window(self) -> None:
        """Forget what was recorded and record launches from now on."""
        self._raw, self._depth, self.dropped = [], {}, 0
        if self.available():
            problem = self._enable(True)
            if problem:
                self.lost = problem

    def since(self) -> list[Launch]:
        """The launches since the window opened, classified; first checks that the record still runs."""
        if not self.available():
            return []
        for domain, cbid, name in self.ids:
            state = ctypes.c_uint32(0)
            result = self._lib.cuptiGetCallbackState(ctypes.byref(state), self._handle, domain, cbid)
            if result != 0 or not state.value:
                self.lost = (f"the {name} callback was disabled" if result == 0 else
                             f"the CUPTI subscriber is gone ({_result(self._lib, result)})")
                return []
        return self.recorded()

    def recorded(self) -> list[Launch]:
        """What the callback recorded since the window opened, classified (no check that the record still runs)."""
        return [Launch(name=symbol or api, kind=classify(symbol, api), api=api) for api, symbol in list(self._raw)]

    def pause(self) -> None:
        """Stop recording (launches cost nothing until the next window)."""
        if self.available():
            self._enable(False)

    def fields(self, launches: list[Launch],
               triton_names: Iterable[str]) -> tuple[Optional[dict[str, list[str]]], Optional[str], bool]:
        """(kernels_seen, kernel_record, kernel_record_lost) for a CallReport: names by kind after attributing
        Triton's own launches, or None and why, and whether a record that ran stopped."""
        if self.lost or (self._started and self.error):
            return None, f"the kernel record stopped: {self.lost or self.error}", True
        if self.error:
            return None, self.error, False
        return summary(attribute(launches, triton_names)), None, False

    def stop(self) -> None:
        """Unsubscribe: from then on the record counts as lost in this process."""
        if self.available():
            self._lib.cuptiUnsubscribe(self._handle)
            self.lost = "KernelLog.stop() unsubscribed it"


def _result(lib: ctypes.CDLL, result: int) -> str:
    text = ctypes.c_char_p()
    if lib.cuptiGetResultString(result, ctypes.byref(text)) == 0 and text.value:
        return _text(text.value)
    return f"CUptiResult {result}"


LOG = KernelLog()  # the process's one record, and its API as functions of the module
start, available, window, since, pause = LOG.start, LOG.available, LOG.window, LOG.since, LOG.pause
