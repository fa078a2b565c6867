"""Run untrusted Python (model-written programs, task test code) in a contained subprocess.

The code never runs in this process. Each call gets:

- a fresh interpreter, ``sys.executable -I -B`` (isolated: no ``PYTHON*`` variables, no user
  site, no bytecode written), started with a minimal environment in a new session;
- a temporary working directory that is deleted afterwards;
- resource limits set inside the child before the user code runs: ``RLIMIT_CPU`` (CPU seconds),
  ``RLIMIT_AS`` (address space), ``RLIMIT_FSIZE`` (largest file it may write), ``RLIMIT_NPROC``
  (fork bombs) and ``RLIMIT_CORE = 0``; plus a wall-clock timeout and a cap on captured output;
- no network: when the ``unshare`` tool can create namespaces here, the child runs in a new
  network namespace (only a downed loopback) and a new PID namespace (when its first process
  exits, the kernel kills everything it spawned); otherwise an audit hook installed before the
  user code refuses to create sockets. `SandboxResult.isolation` says which one was used;
- an audit hook (``sys.addaudithook``, which user code cannot remove) that refuses writes,
  renames, deletions and permission changes outside the working directory, process creation
  (``os.fork``, ``subprocess``, ``os.system``, ``os.exec*``, ``posix_spawn``), signals to other
  processes and ``ctypes`` (which could otherwise call libc directly past every hook).

Audit hooks are a policy layer, not a kernel boundary: the rlimits and namespaces are what the
kernel enforces. One kernel rule matters here: ``RLIMIT_NPROC`` is not enforced for root, so when
this runs as root the audit hook's process ban is what stops a fork bomb (and the PID namespace
plus the process-group kill clean up whatever got through).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Literal, Optional

__all__ = ["SandboxConfig", "SandboxResult", "network_isolation_available", "run_in_sandbox"]

SandboxStatus = Literal["ok", "timeout", "memory", "killed", "error"]

# Exit codes the bootstrap uses to report why it stopped (distinct from common Python codes).
_MEMORY_EXIT = 97
_CPU_EXIT = 98

_BOOTSTRAP = r'''
import json, os, resource, signal, sys
cfg = json.loads(sys.argv[1])
resource.setrlimit(resource.RLIMIT_CPU, (cfg["cpu"], cfg["cpu"] + 1))
resource.setrlimit(resource.RLIMIT_AS, (cfg["mem"], cfg["mem"]))
resource.setrlimit(resource.RLIMIT_FSIZE, (cfg["fsize"], cfg["fsize"]))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
try:
    resource.setrlimit(resource.RLIMIT_NPROC, (cfg["nproc"], cfg["nproc"]))
except (ValueError, OSError):
    pass
# As PID 1 of a PID namespace the default SIGXCPU action is ignored, so handle it explicitly;
# the hard limit (one second later) still ends with SIGKILL if a C loop never yields.
def _on_xcpu(signum, frame):
    sys.stderr.write("\nsandbox: CPU time limit exceeded\n")
    sys.stderr.flush()
    os._exit(%(cpu_exit)d)
signal.signal(signal.SIGXCPU, _on_xcpu)

_ROOT = os.path.realpath(os.getcwd())
_ALLOWED = ("/dev/null",)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PROCESS = {"os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system",
            "subprocess.Popen", "os.kill", "os.killpg", "signal.pthread_kill",
            "ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle"}
_PATH_ARG = {"os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.chmod": (0,),
             "os.chown": (0,), "os.truncate": (0,), "os.utime": (0,), "shutil.rmtree": (0,),
             "os.rename": (0, 1), "os.link": (0, 1), "os.symlink": (1,), "os.chflags": (0,),
             "os.setxattr": (0,), "os.removexattr": (0,)}
_BLOCK_PROCESS = cfg["block_process"]
_BLOCK_SOCKETS = cfg["block_sockets"]
_realpath, _join, _isinstance, _int, _bytes, _fsdecode = (
    os.path.realpath, os.path.join, isinstance, int, bytes, os.fsdecode)

def _inside(path):
    if _isinstance(path, _int):
        return True
    if _isinstance(path, _bytes):
        path = _fsdecode(path)
    full = _realpath(_join(_ROOT, str(path)))
    return full == _ROOT or full.startswith(_ROOT + os.sep) or full in _ALLOWED

def _hook(event, args):
    if event == "open":
        path, mode, flags = args
        writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (
            _isinstance(flags, _int) and flags & _WRITE_FLAGS)
        if writing and path is not None and not _inside(path):
            raise PermissionError("sandbox: writing outside the working directory is blocked: %%r" %% (path,))
    elif event in _PATH_ARG:
        for i in _PATH_ARG[event]:
            if i < len(args) and args[i] is not None and not _inside(args[i]):
                raise PermissionError("sandbox: %%s outside the working directory is blocked: %%r" %% (event, args[i]))
    elif _BLOCK_PROCESS and (event in _PROCESS or event.startswith("ctypes.")):
        raise PermissionError("sandbox: %%s is blocked (no processes, signals or ctypes)" %% event)
    elif _BLOCK_SOCKETS and event == "socket.__new__":
        raise PermissionError("sandbox: network access is blocked")

sys.addaudithook(_hook)
del json, resource
import runpy
sys.argv = [cfg["script"]] + cfg["argv"]
sys.path.insert(0, _ROOT)
try:
    runpy.run_path(cfg["script"], run_name="__main__")
except MemoryError:
    sys.stderr.write("\nsandbox: MemoryError (address-space limit)\n")
    sys.stderr.flush()
    os._exit(%(memory_exit)d)
''' % {"cpu_exit": _CPU_EXIT, "memory_exit": _MEMORY_EXIT}


@dataclasses.dataclass
class SandboxConfig:
    """Limits for one sandboxed run.

    Args:
        timeout (`float`, defaults to 10.0): wall-clock seconds before the whole process group is
            killed (> 0).
        cpu_seconds (`int`, defaults to 5): ``RLIMIT_CPU`` soft limit; the hard limit is one second
            more (>= 1).
        memory_bytes (`int`, defaults to 512 MiB): ``RLIMIT_AS`` address-space limit
            (>= 64 MiB: the interpreter itself needs ~30 MiB of address space).
        max_file_bytes (`int`, defaults to 16 MiB): ``RLIMIT_FSIZE``, the largest file the code
            may write (>= 0).
        max_processes (`int`, defaults to 16): ``RLIMIT_NPROC`` (>= 1; not enforced by the kernel
            for root, see the module docstring).
        max_output_bytes (`int`, defaults to 64 KiB): stdout and stderr are each captured up to
            this size; output beyond it kills the run with status ``"killed"`` (>= 1).
        network (`str`, defaults to `"auto"`): how the network is cut: ``"namespace"`` (a new
            network namespace via ``unshare``; an error if unavailable), ``"audit-hook"`` (refuse
            socket creation) or ``"auto"`` (the namespace when available, else the hook).
        allow_subprocesses (`bool`, defaults to `False`): let the code fork / spawn (then only
            ``RLIMIT_NPROC``, the PID namespace and the process-group kill contain it).
    """

    timeout: float = 10.0
    cpu_seconds: int = 5
    memory_bytes: int = 512 * 1024**2
    max_file_bytes: int = 16 * 1024**2
    max_processes: int = 16
    max_output_bytes: int = 64 * 1024
    network: str = "auto"
    allow_subprocesses: bool = False

    def __post_init__(self):
        checks = [
            ("timeout", self.timeout > 0, "> 0"),
            ("cpu_seconds", isinstance(self.cpu_seconds, int) and self.cpu_seconds >= 1, "an int >= 1"),
            ("memory_bytes", isinstance(self.memory_bytes, int) and self.memory_bytes >= 64 * 1024**2,
             "an int >= 64 MiB (67108864)"),
            ("max_file_bytes", isinstance(self.max_file_bytes, int) and self.max_file_bytes >= 0, "an int >= 0"),
            ("max_processes", isinstance(self.max_processes, int) and self.max_processes >= 1, "an int >= 1"),
            ("max_output_bytes", isinstance(self.max_output_bytes, int) and self.max_output_bytes >= 1,
             "an int >= 1"),
            ("network", self.network in ("auto", "namespace", "audit-hook"),
             "one of 'auto', 'namespace', 'audit-hook'"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"SandboxConfig.{name} must be {allowed}, got {getattr(self, name)!r}")


@dataclasses.dataclass
class SandboxResult:
    """What a sandboxed run did.

    Attributes:
        status (`str`): ``"ok"`` (exit code 0), ``"timeout"`` (wall clock or CPU limit),
            ``"memory"`` (address-space limit hit), ``"killed"`` (output cap exceeded or ended by
            a signal) or ``"error"`` (non-zero exit, e.g. an exception or a blocked operation).
        stdout (`str`), stderr (`str`): captured output, each truncated to `max_output_bytes`.
        returncode (`int` or `None`): the exit status (negative: the signal that ended it).
        duration (`float`): wall-clock seconds.
        isolation (`str`): how the network was cut: ``"namespace"`` or ``"audit-hook"``.
        reason (`str`): a short human-readable cause for any status other than ``"ok"``.
    """

    status: SandboxStatus
    stdout: str
    stderr: str
    returncode: Optional[int]
    duration: float
    isolation: str
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _unshare_prefix() -> list[str]:
    flags = ["-n", "-p", "-f", "--kill-child"]
    # An unprivileged user needs a user namespace to create the others; root does not.
    return ["unshare"] + ([] if os.geteuid() == 0 else ["-r"]) + flags


@functools.lru_cache(maxsize=1)
def network_isolation_available() -> bool:
    """Whether `unshare` can create network + PID namespaces here (probed once per process)."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    try:
        probe = subprocess.run(_unshare_prefix() + ["true"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def _reader(stream, sink: bytearray, cap: int, overflow: threading.Event, on_overflow) -> None:
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            break
        room = cap - len(sink)
        if room > 0:
            sink.extend(chunk[:room])
        if len(chunk) > room:
            overflow.set()
            on_overflow()
            # keep draining so the child never blocks on a full pipe before it dies
    stream.close()


def run_in_sandbox(
    code: str,
    config: Optional[SandboxConfig] = None,
    *,
    files: Optional[dict[str, str]] = None,
    argv: Optional[list[str]] = None,
    stdin: Optional[str] = None,
) -> SandboxResult:
    """Runs `code` as ``main.py`` in a fresh temporary directory under the limits of `config`.

    Args:
        code (`str`): the Python source to run (as ``__main__``).
        config (`SandboxConfig`, *optional*): the limits; defaults to `SandboxConfig()`.
        files (`dict[str, str]`, *optional*): extra files written next to ``main.py`` first
            (relative names only, e.g. test modules the code imports).
        argv (`list[str]`, *optional*): ``sys.argv[1:]`` for the code.
        stdin (`str`, *optional*): text fed to the code's standard input.

    Returns:
        `SandboxResult`.
    """
    if not sys.platform.startswith("linux"):
        raise NotImplementedError("the sandbox relies on Linux rlimits and namespaces; run it on Linux")
    config = config or SandboxConfig()
    if config.network == "namespace" and not network_isolation_available():
        raise RuntimeError("SandboxConfig.network='namespace' but `unshare` cannot create namespaces here; "
                           "use network='audit-hook' or 'auto'")
    namespaced = config.network != "audit-hook" and network_isolation_available()
    isolation = "namespace" if namespaced else "audit-hook"

    workdir = tempfile.mkdtemp(prefix="hf_reason_sandbox_")
    try:
        for name, content in {**(files or {}), "main.py": code}.items():
            target = os.path.realpath(os.path.join(workdir, name))
            if not target.startswith(workdir + os.sep):
                raise ValueError(f"`files` names must stay inside the sandbox directory, got {name!r}")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="utf-8") as handle:
                handle.write(content)
        child_config = {
            "cpu": config.cpu_seconds, "mem": config.memory_bytes, "fsize": config.max_file_bytes,
            "nproc": config.max_processes, "script": "main.py", "argv": list(argv or []),
            "block_process": not config.allow_subprocesses, "block_sockets": not namespaced,
        }
        command = [sys.executable, "-I", "-B", "-c", _BOOTSTRAP, json.dumps(child_config)]
        if namespaced:
            command = _unshare_prefix() + command
        env = {"PATH": os.defpath, "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        return _run(command, workdir, env, config, stdin, isolation)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(command, workdir, env, config: SandboxConfig, stdin, isolation) -> SandboxResult:
    start = time.monotonic()
    process = subprocess.Popen(
        command, cwd=workdir, env=env, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )

    def kill_group():
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    overflow = threading.Event()
    out, err = bytearray(), bytearray()
    readers = [
        threading.Thread(target=_reader, args=(process.stdout, out, config.max_output_bytes, overflow, kill_group),
                         daemon=True),
        threading.Thread(target=_reader, args=(process.stderr, err, config.max_output_bytes, overflow, kill_group),
                         daemon=True),
    ]
    for reader in readers:
        reader.start()
    if stdin is not None:
        try:
            process.stdin.write(stdin.encode())
            process.stdin.close()
        except (BrokenPipeError, OSError):
            pass
    timed_out = False
    try:
        process.wait(timeout=config.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_group()
        process.wait()
    # Whatever the child left behind in its group (without a PID namespace) goes too.
    kill_group()
    for reader in readers:
        reader.join(timeout=5)
    duration = time.monotonic() - start
    stdout = out.decode("utf-8", errors="replace")
    stderr = err.decode("utf-8", errors="replace")
    code = process.returncode

    if timed_out:
        status, reason = "timeout", f"wall-clock timeout after {config.timeout:g}s"
    elif overflow.is_set():
        status, reason = "killed", f"output exceeded {config.max_output_bytes} bytes"
    elif code == 0:
        status, reason = "ok", ""
    elif code == _CPU_EXIT or code in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        status, reason = "timeout", f"CPU time limit of {config.cpu_seconds}s exceeded"
    elif code == _MEMORY_EXIT or (code != 0 and "MemoryError" in stderr[-2000:]):
        status, reason = "memory", f"address-space limit of {config.memory_bytes} bytes exceeded"
    elif code in (-signal.SIGKILL, 128 + signal.SIGKILL):
        # Not killed by us: the kernel's hard RLIMIT_CPU ends with SIGKILL.
        status, reason = "timeout", "killed at the hard CPU time limit"
    elif code < 0 or code == 128 + signal.SIGXFSZ:
        sig = -code if code < 0 else code - 128
        status, reason = "killed", f"ended by signal {signal.Signals(sig).name if sig in signal.valid_signals() else sig}"
    else:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {code}"
        status, reason = "error", last[:500]
    return SandboxResult(status=status, stdout=stdout, stderr=stderr, returncode=code, duration=duration,
                         isolation=isolation, reason=reason)
