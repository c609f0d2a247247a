"""The OS sandbox around every candidate process: bubblewrap (bwrap) with no network, its own PID, IPC, UTS, cgroup and
user namespaces (and none of its own inside), a read-only view of the Python environment and the toolchain, the
device nodes, one private scratch folder, a sized /dev/shm (the only RAM-backed folder it can write), no
capabilities, PR_SET_NO_NEW_PRIVS and resource limits. Ending the sandbox's first process ends every
process it started (PID namespace), so nothing a candidate spawns outlives its evaluation.
"""

from __future__ import annotations

import functools
import glob
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ksdk.models import Model

BWRAP_ENV = "KSDK_BWRAP"  # path of the bwrap binary, when it is not on PATH
NO_SANDBOX_ENV = "KSDK_NO_SANDBOX"  # "1": run candidates unsandboxed (the user's explicit opt-in)
INSIDE_UID = 65534  # nobody: what the candidate's process sees as its user
INSTALL_FIX = ("install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora/RHEL: dnf install bubblewrap; "
               "or set KSDK_BWRAP to a bwrap binary); or run unsandboxed on purpose with --no-sandbox "
               "(KSDK_NO_SANDBOX=1)")
# Files of /etc that compilers, the dynamic linker and Python need; the rest of /etc stays out of view.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "nsswitch.conf", "passwd",
             "group", "os-release", "hosts")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")


class SandboxStatus(Model):
    """Whether candidates can run sandboxed here, with what, and if not, why and what fixes it."""

    available: bool
    tool: str = ""
    version: str = ""
    reason: str = ""
    fix: str = ""

    def line(self) -> str:
        """One line for `ksdk backends` and for logs."""
        if self.available:
            return f"sandbox: {self.tool} {self.version} (no network, own PID namespace, read-only filesystem)"
        return f"sandbox unavailable: {self.reason}; fix: {self.fix}"


@dataclass
class Limits:
    """Resource limits of a candidate's process (None: unlimited). Address space cannot be limited where a GPU
    runtime reserves terabytes of virtual memory; `data_bytes` (private writable memory) is limited instead."""

    address_bytes: Optional[int] = None
    # Private writable memory of each process (heap and anonymous mappings; not device memory): half the machine's
    # memory, between 4 and 32 GiB (CUDA initialises under 32 GiB: docs/benchmarks.md); KSDK_MEMORY_LIMIT_BYTES
    # sets it. The same figure caps the containment box's memory (all processes, files in RAM included) and the size
    # of the sandbox's /dev/shm.
    data_bytes: Optional[int] = field(default_factory=lambda: _env_int("KSDK_MEMORY_LIMIT_BYTES", _default_memory()))
    cpu_seconds: Optional[int] = None
    file_bytes: Optional[int] = 4 << 30
    processes: Optional[int] = 256
    open_files: Optional[int] = 4096
    # The scratch folder (its /tmp) as a whole, which the judge watches: KSDK_SCRATCH_LIMIT_BYTES overrides the size.
    scratch_bytes: Optional[int] = field(default_factory=lambda: _env_int("KSDK_SCRATCH_LIMIT_BYTES", 8 << 30))
    scratch_files: int = 200_000

    def apply(self) -> None:
        """Set these limits on the calling process (run in the child between fork and exec)."""
        for res, value in ((resource.RLIMIT_AS, self.address_bytes), (resource.RLIMIT_DATA, self.data_bytes),
                           (resource.RLIMIT_CPU, self.cpu_seconds), (resource.RLIMIT_FSIZE, self.file_bytes),
                           (resource.RLIMIT_NPROC, self.processes), (resource.RLIMIT_NOFILE, self.open_files)):
            if value is not None:
                soft, hard = resource.getrlimit(res)
                value = value if hard == resource.RLIM_INFINITY else min(value, hard)
                resource.setrlimit(res, (value, value))


def _env_int(name: str, default: int) -> int:
    """An integer setting from the environment; a clear error for anything else."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(float(raw))
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number of bytes (e.g. {name}=8589934592)") from None


def _default_memory() -> int:
    """Half the machine's physical memory, between 4 and 32 GiB."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = 16 << 30
    return int(min(32 << 30, max(4 << 30, physical // 2)))


def folder_usage(path: Path, limit_files: int) -> tuple[int, int]:
    """(bytes on disk, entries) under `path`, counting at most limit_files + 1 entries (symlinks not followed)."""
    used = files = 0
    todo = [str(path)]
    while todo and files <= limit_files:
        try:
            entries = list(os.scandir(todo.pop()))
        except OSError:
            continue
        for e in entries:
            files += 1
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            used += st.st_blocks * 512
            if e.is_dir(follow_symlinks=False):
                todo.append(e.path)
    return used, files


@dataclass
class Spec:
    """What one sandboxed process sees: read-only paths, device nodes, its scratch folder, its limits."""

    scratch: Path
    readonly: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)  # globs such as /dev/nvidia*
    limits: Limits = field(default_factory=Limits)


def find_bwrap() -> Optional[str]:
    """The bwrap binary: $KSDK_BWRAP, else bwrap on PATH."""
    explicit = os.environ.get(BWRAP_ENV)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=1)
def status() -> SandboxStatus:
    """Can candidates be sandboxed here? Cached: one quick trial run of bwrap per process."""
    if not sys.platform.startswith("linux"):
        return SandboxStatus(available=False, reason=f"the OS sandbox needs Linux namespaces; this is {sys.platform}",
                             fix="evaluate on Linux, or run unsandboxed on purpose with --no-sandbox")
    bwrap = find_bwrap()
    if bwrap is None:
        where = f"${BWRAP_ENV}={os.environ[BWRAP_ENV]} is not executable" if os.environ.get(BWRAP_ENV) else \
            "bubblewrap (bwrap) is not installed"
        return SandboxStatus(available=False, reason=where, fix=INSTALL_FIX)
    try:
        version = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        probe = subprocess.run(
            [bwrap, *_namespace_args(), "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"],
            capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return SandboxStatus(available=False, reason=f"bwrap could not run: {e}", fix=INSTALL_FIX)
    if probe.returncode != 0:
        err = (probe.stderr or probe.stdout).strip().splitlines()
        return SandboxStatus(
            available=False, tool="bwrap", version=version.replace("bubblewrap ", ""),
            reason=f"bwrap cannot create namespaces here ({err[-1] if err else f'exit {probe.returncode}'})",
            fix="enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, or "
                "user.max_user_namespaces > 0; in a container, allow them in its seccomp/AppArmor profile); or run "
                "unsandboxed on purpose with --no-sandbox")
    return SandboxStatus(available=True, tool="bwrap", version=version.replace("bubblewrap ", ""))


def _namespace_args() -> list[str]:
    # --unshare-all: user, ipc, pid, net, uts, cgroup. --unshare-user again: when started as root bwrap would
    # otherwise skip the user namespace and keep root's identity. --disable-userns (bwrap 0.8): no user namespace
    # inside, so no capability to mount anything (a cgroup file system included) that the read-only view hides.
    nested = ["--disable-userns"] if "--disable-userns" in _features() else []
    return ["--unshare-all", "--unshare-user", *nested, "--uid", str(INSIDE_UID), "--gid", str(INSIDE_UID),
            "--cap-drop", "ALL", "--die-with-parent", "--new-session", "--hostname", "ksdk-sandbox"]


@functools.lru_cache(maxsize=1)
def _features() -> frozenset[str]:
    """The options this bwrap knows (from its --help): --size and --disable-userns came with 0.8."""
    bwrap = find_bwrap()
    if bwrap is None:
        return frozenset()
    try:
        text = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(w for w in text.split() if w.startswith("--"))


def python_paths() -> list[str]:
    """Folders the Python environment needs: its prefixes and library folders, folders that .pth files add, and
    the source folders of packages installed in editable mode. Not the current directory nor the rest of
    sys.path: a checkout or a home folder stays out of view."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    sites = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    for name in ("stdlib", "platstdlib", "purelib", "platlib", "include", "platinclude", "scripts", "data"):
        p = sysconfig.get_paths().get(name)
        if p:
            paths.add(p)
    paths.update(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p.startswith("/"))
    for site in sites:
        for pth in glob.glob(os.path.join(site, "*.pth")):
            try:
                lines = Path(pth).read_text().splitlines()
            except OSError:
                continue
            paths.update(line.strip() for line in lines if line.strip().startswith("/"))
        paths.update(_editable_dirs(site))
    return sorted({os.path.realpath(p) for p in paths if os.path.exists(p)} | {p for p in paths if os.path.exists(p)})


def _editable_dirs(site: str) -> list[str]:
    """Source folders that setuptools' editable finders in `site` map package names to."""
    import ast

    out = []
    for finder in glob.glob(os.path.join(site, "__editable___*_finder.py")):
        try:
            text = Path(finder).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("MAPPING"):
                try:
                    out.extend(str(v) for v in ast.literal_eval(line.split("=", 1)[1].strip()).values())
                except (ValueError, SyntaxError):
                    pass
    return out


def command(argv: list[str], spec: Spec) -> list[str]:
    """The bwrap command line that runs `argv` inside the sandbox described by `spec`."""
    bwrap = find_bwrap()
    if bwrap is None:
        raise RuntimeError(status().line())
    args = [bwrap, *_namespace_args()]
    seen: set[str] = set()

    def ro(path: str) -> None:
        if path in seen or not os.path.lexists(path):
            return
        seen.add(path)
        if os.path.islink(path) and os.path.dirname(path) == "/":  # merged /usr: /lib -> usr/lib
            args.extend(["--symlink", os.readlink(path), path])
            ro(os.path.realpath(path))
            return
        args.extend(["--ro-bind", path, path])

    # The scratch folder first: folders of the Python environment may lie under /tmp (PYTHONPATH=/tmp/site), and
    # a later mount over /tmp would hide them.
    args.extend(["--bind", str(spec.scratch), "/tmp"])
    for d in SYSTEM_DIRS:
        ro(d)
    for name in ETC_FILES:
        ro(os.path.join("/etc", name))
    for p in [*python_paths(), *spec.readonly]:
        if not _covered(p, seen):
            ro(p)
    args.extend(["--ro-bind-try", "/sys", "/sys", "--proc", "/proc", "--dev", "/dev"])
    for pattern in spec.devices:
        for node in sorted(glob.glob(pattern)):
            args.extend(["--dev-bind", node, node])
    # RAM-backed folders are memory: /dev/shm is the one writable tmpfs, of at most the memory limit where bwrap can
    # size it (the box's cgroup counts its pages too); the rest of / and /dev (bwrap's tmpfs) is read-only.
    shm = spec.limits.data_bytes
    if shm and "--size" in _features():
        args.extend(["--size", str(shm)])
    args.extend(["--tmpfs", "/dev/shm", "--remount-ro", "/dev", "--remount-ro", "/"])
    args.extend(["--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp",
                 "--chdir", "/tmp", "--"])
    return args + list(argv)


def _covered(path: str, mounted: set[str]) -> bool:
    """True when `path` lies inside a folder already mounted."""
    p = Path(path)
    return any(str(p) == m or Path(m) in p.parents for m in mounted)


def make_scratch(prefix: str = "ksdk-sbx-") -> Path:
    """A new private (0700) folder for one sandboxed process."""
    import tempfile

    d = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(d, 0o700)
    return d


def remove_scratch(path: Path) -> None:
    """Delete a scratch folder and whatever the candidate left in it."""
    shutil.rmtree(path, ignore_errors=True)


def opted_out() -> bool:
    """True when the user chose to run candidates unsandboxed (KSDK_NO_SANDBOX=1 or --no-sandbox)."""
    return os.environ.get(NO_SANDBOX_ENV, "").strip().lower() in ("1", "true", "yes", "on")
