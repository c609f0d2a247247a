"""What the candidate sandbox costs and allows on a GPU machine: CUDA, Triton and NVML inside bubblewrap; device
memory shared with the judge (CUDA VMM fds and legacy IPC handles, sandboxed or not); host shared-memory transfer
bandwidth; process start-up; limits; whether anything outlives the sandbox.

    python benchmarks/sandbox_probe.py OUT_DIR        (the judge's side; it starts the sandboxed children)
"""

from __future__ import annotations

import json
import mmap
import os
import subprocess
import sys
import time
from pathlib import Path

GPU_NODES = ["/dev/nvidia*", "/dev/nvidia-caps/*"]
MiB = 1 << 20


def child(mode: str, *args: str) -> None:
    """Runs inside (or outside) the sandbox; prints one JSON line."""
    out: dict = {"mode": mode}
    t0 = time.perf_counter()
    import torch

    out["import_torch_s"] = time.perf_counter() - t0
    if mode == "basics":
        t = time.perf_counter()
        torch.cuda.init()
        x = torch.ones(1 << 20, device="cuda")
        torch.cuda.synchronize()
        out["cuda_init_s"] = time.perf_counter() - t
        out["device"] = torch.cuda.get_device_name(0)
        t = time.perf_counter()
        import triton
        import triton.language as tl

        @triton.jit
        def double(x_ptr, n, BLOCK: tl.constexpr):
            offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
            m = offs < n
            tl.store(x_ptr + offs, tl.load(x_ptr + offs, mask=m) * 2, mask=m)

        double[(triton.cdiv(x.numel(), 1024),)](x, x.numel(), BLOCK=1024)
        torch.cuda.synchronize()
        out["triton_first_kernel_s"] = time.perf_counter() - t
        out["triton_ok"] = float(x.sum()) == 2.0 * x.numel()
        try:
            import pynvml

            pynvml.nvmlInit()
            h = pynvml.nvmlDeviceGetHandleByIndex(0)
            out["nvml_sm_clock"] = pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM)
        except Exception as e:
            out["nvml_error"] = f"{type(e).__name__}: {e}"
        out["pids_visible"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        out["uid"] = os.getuid()
        import socket

        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", int(args[0])))
            out["tcp_to_host_port"] = "connected"
        except OSError as e:
            out["tcp_to_host_port"] = f"refused: {e}"
        out["home_listing"] = sorted(os.listdir(os.path.expanduser("~")))[:5]
        out["root_listing"] = sorted(os.listdir("/"))
    elif mode == "vmm_import":
        from ksdk_triton_nvidia import devshare

        fd, size = int(args[0]), int(args[1])
        torch.cuda.init()
        torch.zeros(1, device="cuda")
        t = time.perf_counter()
        try:
            sh = devshare.import_fd(fd, size)
            v = devshare.tensor(sh, 0, (size // 4,), torch.float32)
            out["vmm_import_s"] = time.perf_counter() - t
            out["vmm_sum_seen"] = float(v.sum())
            v.fill_(3.0)
            torch.cuda.synchronize()
            out["vmm_ok"] = True
        except Exception as e:
            out["vmm_error"] = f"{type(e).__name__}: {e}"
    elif mode == "legacy_ipc":
        import ctypes

        torch.cuda.init()
        torch.zeros(1, device="cuda")
        cu = ctypes.CDLL("libcuda.so.1")
        handle = (ctypes.c_char * 64).from_buffer_copy(bytes.fromhex(args[0]))
        ptr = ctypes.c_ulonglong()
        code = cu.cuIpcOpenMemHandle_v2(ctypes.byref(ptr), handle, 1)
        out["legacy_ipc_result"] = code
    elif mode == "shm_copy":
        fd, size = int(args[0]), int(args[1])
        buf = mmap.mmap(fd, size)
        host = torch.frombuffer(buf, dtype=torch.uint8)
        dev = torch.ones(size, dtype=torch.uint8, device="cuda")
        torch.cuda.synchronize()
        for label in ("pageable", "registered"):
            if label == "registered":
                t = time.perf_counter()
                rc = torch.cuda.cudart().cudaHostRegister(host.data_ptr(), size, 0)
                out["register_s"] = time.perf_counter() - t
                out["register_rc"] = int(rc)
            times = []
            for _ in range(3):
                t = time.perf_counter()
                host.copy_(dev)
                torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
            out[f"d2h_{label}_GBps"] = size / min(times) / 1e9
    elif mode == "limits":
        torch.cuda.init()
        x = torch.ones(1 << 28, device="cuda")
        torch.cuda.synchronize()
        out["cuda_under_limits"] = float(x.sum()) == float(1 << 28)
        try:
            bytearray(int(args[0]))
            out["big_host_alloc"] = "succeeded"
        except MemoryError:
            out["big_host_alloc"] = "MemoryError"
    elif mode == "survivor":
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "7777"])
            os._exit(0)
        time.sleep(0.5)
        out["forked"] = True
    print("PROBE " + json.dumps(out), flush=True)


def run(argv: list[str], sandboxed: bool, pass_fds=(), limits=None, edit=None) -> dict:
    from ksdk.evaluation import sandbox as sb

    scratch = sb.make_scratch()
    cmd = [sys.executable, __file__, "--child", *argv]
    if sandboxed:
        cmd = sb.command(cmd, sb.Spec(scratch=scratch, devices=GPU_NODES, readonly=[str(Path(__file__).parent)]))
        if edit:
            cmd = edit(cmd)
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, pass_fds=pass_fds, timeout=300,
                       preexec_fn=(limits.apply if limits else None))
    wall = time.perf_counter() - t
    sb.remove_scratch(scratch)
    line = next((x for x in p.stdout.splitlines() if x.startswith("PROBE ")), None)
    res = json.loads(line[6:]) if line else {"error": (p.stderr or p.stdout)[-1500:], "rc": p.returncode}
    res["wall_s"] = wall
    return res


def main(out_dir: str) -> None:
    import socket

    import torch

    from ksdk.evaluation import sandbox as sb
    from ksdk_triton_nvidia import devshare

    report: dict = {"sandbox": sb.status().model_dump(), "python": sys.version}
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    report["basics_sandboxed"] = run(["basics", str(port)], True)
    report["basics_sandboxed_again"] = run(["basics", str(port)], True)
    report["basics_plain"] = run(["basics", str(port)], False)

    torch.cuda.init()
    size = 256 * MiB
    sh = devshare.allocate(size)
    v = devshare.tensor(sh, 0, (size // 4,), torch.float32)
    v.fill_(1.0)
    torch.cuda.synchronize()
    for label, sandboxed in (("vmm_sandboxed", True), ("vmm_plain", False)):
        fd = sh.export_fd()
        v.fill_(1.0)
        torch.cuda.synchronize()
        res = run(["vmm_import", str(fd), str(sh.size)], sandboxed, pass_fds=(fd,))
        os.close(fd)
        res["parent_sees_sum"] = float(v.sum())
        report[label] = res

    import ctypes

    cu = ctypes.CDLL("libcuda.so.1")
    t = torch.ones(1 << 20, device="cuda")
    handle = (ctypes.c_char * 64)()
    code = cu.cuIpcGetMemHandle(handle, ctypes.c_ulonglong(t.data_ptr()))
    report["legacy_ipc_get"] = code
    hexh = bytes(handle).hex()
    report["legacy_ipc_plain"] = run(["legacy_ipc", hexh], False)
    report["legacy_ipc_sandboxed"] = run(["legacy_ipc", hexh], True)
    def share_pid_and_ipc(cmd):
        rest = [a for a in cmd if a != "--unshare-all"]
        return rest[:1] + ["--unshare-user", "--unshare-net", "--unshare-uts"] + rest[1:]

    report["legacy_ipc_sandbox_shared_pid_ipc"] = run(["legacy_ipc", hexh], True, edit=share_pid_and_ipc)

    gib = 1 << 30
    fd = os.memfd_create("ksdk-probe", 0)
    os.ftruncate(fd, gib)
    report["shm_sandboxed"] = res = run(["shm_copy", str(fd), str(gib)], True, pass_fds=(fd,))
    buf = mmap.mmap(fd, gib)
    host = torch.frombuffer(buf, dtype=torch.uint8)
    dev = torch.empty(gib, dtype=torch.uint8, device="cuda")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        dev.copy_(host)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    res["h2d_pageable_GBps_judge"] = gib / min(times) / 1e9
    torch.cuda.cudart().cudaHostRegister(host.data_ptr(), gib, 0)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        dev.copy_(host)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    res["h2d_registered_GBps_judge"] = gib / min(times) / 1e9
    res["d2d_copy_GBps"] = None
    a = torch.empty(gib, dtype=torch.uint8, device="cuda")
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(5):
        a.copy_(dev)
    torch.cuda.synchronize()
    res["d2d_copy_GBps"] = 5 * gib / (time.perf_counter() - t0) / 1e9

    report["limits_data_32g"] = run(["limits", str(48 << 30)], True,
                                    limits=sb.Limits(data_bytes=32 << 30, processes=256))
    report["limits_as_64g"] = run(["limits", str(48 << 30)], True, limits=sb.Limits(address_bytes=64 << 30))
    report["survivor"] = run(["survivor"], True)
    time.sleep(1)
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    report["survivor"]["alive_after"] = [line for line in ps.splitlines() if "sleep 7777" in line]
    Path(out_dir, "sandbox_probe.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        child(*sys.argv[2:])
    else:
        main(sys.argv[1])
