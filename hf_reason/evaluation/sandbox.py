"""Run untrusted Python (model-written programs, task test code) in a contained subprocess.

The code never runs in this process, and what contains it is the kernel, not Python. Each call gets:

- a fresh interpreter, ``sys.executable -I -B`` (isolated: no ``PYTHON*`` variables, no user
  site, no bytecode written), started with a minimal environment in a new session;
- a temporary working directory that is deleted afterwards;
- resource limits set inside the child before the user code runs: ``RLIMIT_CPU`` (CPU seconds),
  ``RLIMIT_AS`` (address space), ``RLIMIT_FSIZE`` (largest file it may write), ``RLIMIT_NPROC``
  (fork bombs) and ``RLIMIT_CORE = 0``; plus a wall-clock timeout and a cap on captured output;
- namespaces (``unshare``): a new network namespace (only a downed loopback: no network at all),
  a PID namespace with its own ``/proc`` (other processes are invisible, and when the child's first
  process exits the kernel kills everything it spawned), an IPC namespace, and a mount namespace
  in which every mount is read-only except the working directory, and ``/tmp``, ``/var/tmp``,
  ``/dev/shm``, ``/run`` and ``/dev/mqueue`` are hidden under empty read-only tmpfs;
- no privileges: as root, the child is switched to a fresh unprivileged uid / gid for this run
  (a random one in ``[1e9, 2e9)``, so concurrent runs never share an ``RLIMIT_NPROC`` budget; the
  kernel does not apply that limit to root) that owns only the working directory, with no
  supplementary groups, no capabilities (empty bounding set) and ``no_new_privs`` (``setpriv``).
  As an ordinary user, the namespaces are created inside a user namespace and the child then drops
  every capability in it, so it cannot undo the read-only mounts;
- an audit hook (``sys.addaudithook``) as a policy layer that turns what the kernel would also stop
  into clear errors: writes, renames, deletions and permission changes outside the working
  directory, process creation (``os.fork``, ``subprocess``, ``os.system``, ``os.exec*``,
  ``posix_spawn``), signals, ``ctypes``, sockets (when there is no network namespace), and the
  introspection that could reach the sandbox's own state (``gc`` object walks, ``sys.settrace``,
  ``sys._current_frames``, ``sys._getframe`` of the bootstrap). Its settings are constants in its
  own code, held by no frame: user code that walks ``f_back`` to the bootstrap finds nothing to
  switch off. It is still Python (``_posixsubprocess.fork_exec`` and ``os.open(dir_fd=...)`` raise
  no audit event), which is why the kernel mechanisms above are the boundary.

What a machine lacks is never skipped silently: `SandboxResult.mechanisms` lists what was applied
and `SandboxResult.degraded` says what was not and what that leaves open (e.g. no ``unshare``:
the network is cut by the audit hook only and ``/tmp`` stays writable; root without ``setpriv``:
``RLIMIT_NPROC`` is not enforced). ``SandboxConfig(require_kernel_isolation=True)`` turns any
degradation into an error. Reads are not confined: the code can read world-readable files.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Literal, Optional


__all__ = [
    "SandboxConfig",
    "SandboxResult",
    "network_isolation_available",
    "run_in_sandbox",
    "sandbox_support",
]

SandboxStatus = Literal["ok", "timeout", "memory", "killed", "error"]

# Exit codes the bootstrap uses to report why it stopped (distinct from common Python codes).
_SETUP_EXIT = 96
_MEMORY_EXIT = 97
_CPU_EXIT = 98

# The uids a root parent hands out, one per run: far above distribution and subuid ranges.
_UID_RANGE = (1_000_000_000, 2_000_000_000)

# World-writable (or socket-holding) places hidden under an empty read-only tmpfs in the mount
# namespace; everything else is remounted read-only, so these two together leave the working
# directory as the only writable place.
_MASKED_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run", "/var/run", "/dev/mqueue")

# Stage 1: runs as (namespace) root inside the new namespaces, before any user code, and execs the
# privilege drop. Trusted code, so it may use ctypes for mount(2).
_STAGE1 = r"""
import ctypes, json, os, re, sys
cfg = json.loads(sys.argv[1])
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE = 1024, 2048, 4096, 16384, 1 << 18
MS_RELATIME, MS_STRICTATIME = 1 << 21, 1 << 24
# flags a remount must repeat: in a user namespace the kernel refuses to clear locked ones
KEEP = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": MS_NOATIME,
        "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME, "strictatime": MS_STRICTATIME}
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]

def fail(message):
    sys.stderr.write("sandbox setup failed: %s\n" % message)
    sys.stderr.flush()
    os._exit(cfg["setup_exit"])

def mount(source, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else os.fsencode(s)
    if libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        fail("mount %s: %s" % (target, os.strerror(ctypes.get_errno())))

work = os.open(".", os.O_PATH | os.O_DIRECTORY)
mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here propagates to the host
masked = [p for p in cfg["masks"] if os.path.isdir(p) and not os.path.islink(p)]
for path in masked:
    mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k,nr_inodes=64")
# the work dir reappears at /tmp/<name> (inside the masked /tmp), reachable whatever its host parents
target = os.path.join("/tmp", cfg["name"]) if "/tmp" in masked else cfg["workdir"]
os.makedirs(target, mode=0o755, exist_ok=True)
mount("/proc/self/fd/%d" % work, target, None, MS_BIND)
os.close(work)
unescape = lambda s: re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)
with open("/proc/self/mountinfo") as handle:
    lines = handle.read().splitlines()
for line in lines:
    fields = line.split()
    point, options = unescape(fields[4]), fields[5].split(",")
    if point == target or any(point.startswith(m + "/") for m in masked):
        continue  # the work dir stays writable; mounts under a mask are out of reach anyway
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY
    for option in options:
        flags |= KEEP.get(option, 0)
    mount(None, point, None, flags)
os.chdir(target)
env = dict(os.environ, HOME=target, TMPDIR=target)
os.execve(cfg["exec"][0], cfg["exec"], env)
"""

_LOADER = "import sys; exec(compile(sys.argv[1], '<hf-reason-sandbox>', 'exec'))"

# Stage 2: the interpreter that runs the user code (argv[1] is this source, argv[2] the limits).
# The hook's settings are literals in its code (filled in per run), not variables: there is no
# global or cell to switch off.
_BOOTSTRAP = r"""
def _policy_hook(root):
    import os, types
    realpath, join, fspath, fsdecode = os.path.realpath, os.path.join, os.fspath, os.fsdecode
    isinstance_, int_, bytes_, str_, len_, perm = isinstance, int, bytes, str, len, PermissionError
    prefix = root + os.sep
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    process_events = frozenset({
        "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system", "subprocess.Popen",
        "os.kill", "os.killpg", "signal.pthread_kill", "ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle"})
    introspection = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames",
                               "sys.settrace", "sys.setprofile"})
    path_args = types.MappingProxyType({
        "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.chmod": (0,), "os.chown": (0,),
        "os.truncate": (0,), "os.utime": (0,), "shutil.rmtree": (0,), "os.rename": (0, 1), "os.link": (0, 1),
        "os.symlink": (1,), "os.chflags": (0,), "os.setxattr": (0,), "os.removexattr": (0,)})

    def inside(path):
        if isinstance_(path, int_):
            return True
        try:
            path = fspath(path)
        except TypeError:
            return False
        if isinstance_(path, bytes_):
            path = fsdecode(path)
        full = realpath(join(root, path))
        return full == root or full.startswith(prefix) or full == "/dev/null"

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writing = (mode is not None and any(c in str_(mode) for c in "wax+")) or (
                isinstance_(flags, int_) and flags & write_flags)
            if writing and path is not None and not inside(path):
                raise perm("sandbox: writing outside the working directory is blocked: %r" % (path,))
        elif event in path_args:
            for i in path_args[event]:
                if i < len_(args) and args[i] is not None and not inside(args[i]):
                    raise perm("sandbox: %s outside the working directory is blocked: %r" % (event, args[i]))
        elif event == "sqlite3.connect":
            database = args[0] if args else None
            if isinstance_(database, str_) and database.startswith("file:"):
                database = database[5:].split("?")[0]
            if database not in (None, "", ":memory:", b"", b":memory:") and not inside(database):
                raise perm("sandbox: a database outside the working directory is blocked: %r" % (database,))
        elif event in introspection:
            raise perm("sandbox: %s is blocked (it could reach the sandbox's own state)" % event)
        elif event == "sys._getframe" and args and args[0].f_code.co_filename == "<hf-reason-sandbox>":
            raise perm("sandbox: sys._getframe of the sandbox bootstrap is blocked")
        elif __BLOCK_PROCESS__ and (event in process_events or event.startswith("ctypes.")):
            raise perm("sandbox: %s is blocked (no processes, signals or ctypes)" % event)
        elif __BLOCK_SOCKETS__ and event == "socket.__new__":
            raise perm("sandbox: network access is blocked")

    return hook


def _sandbox_main():
    import json, os, resource, signal, sys
    cfg = json.loads(sys.argv[2])

    def limit(kind, soft, hard):
        # never above the hard limit the sandbox inherited (an unprivileged child may not raise it)
        inherited = resource.getrlimit(kind)[1]
        if inherited != resource.RLIM_INFINITY:
            hard = min(hard, inherited)
        resource.setrlimit(kind, (min(soft, hard), hard))

    limit(resource.RLIMIT_CPU, cfg["cpu"], cfg["cpu"] + 1)
    limit(resource.RLIMIT_AS, cfg["mem"], cfg["mem"])
    limit(resource.RLIMIT_FSIZE, cfg["fsize"], cfg["fsize"])
    limit(resource.RLIMIT_CORE, 0, 0)
    limit(resource.RLIMIT_NPROC, cfg["nproc"], cfg["nproc"])
    write, flush, leave = sys.stderr.write, sys.stderr.flush, os._exit

    # As PID 1 of a PID namespace the default SIGXCPU action is ignored, so handle it explicitly;
    # the hard limit (one second later) still ends with SIGKILL if a C loop never yields.
    def on_xcpu(signum, frame):
        write("\nsandbox: CPU time limit exceeded\n")
        flush()
        leave(cfg["cpu_exit"])

    signal.signal(signal.SIGXCPU, on_xcpu)
    root = os.path.realpath(os.getcwd())
    sys.addaudithook(_policy_hook(root))
    globals().pop("_policy_hook", None)
    import runpy
    sys.argv = [cfg["script"]] + cfg["argv"]
    sys.path.insert(0, root)
    try:
        runpy.run_path(cfg["script"], run_name="__main__")
    except MemoryError:
        write("\nsandbox: MemoryError (address-space limit)\n")
        flush()
        leave(cfg["memory_exit"])


_sandbox_main()
"""


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
        max_processes (`int`, defaults to 16): ``RLIMIT_NPROC`` (>= 1). The kernel enforces it for
            the unprivileged uid the child runs as; not where the child stays root (see
            `SandboxResult.degraded`).
        max_output_bytes (`int`, defaults to 64 KiB): stdout and stderr are each captured up to
            this size; output beyond it kills the run with status ``"killed"`` (>= 1).
        network (`str`, defaults to `"auto"`): how the network is cut: ``"namespace"`` (new
            namespaces via ``unshare``; an error if unavailable), ``"audit-hook"`` (no namespaces
            at all, sockets refused by the audit hook) or ``"auto"`` (the namespaces when
            available, else the hook).
        allow_subprocesses (`bool`, defaults to `False`): let the code fork / spawn (then
            ``RLIMIT_NPROC``, the PID namespace and the process-group kill contain it).
        require_kernel_isolation (`bool`, defaults to `False`): raise `RuntimeError` instead of
            running when any kernel mechanism is unavailable (when `SandboxResult.degraded` would
            not be empty).
    """

    timeout: float = 10.0
    cpu_seconds: int = 5
    memory_bytes: int = 512 * 1024**2
    max_file_bytes: int = 16 * 1024**2
    max_processes: int = 16
    max_output_bytes: int = 64 * 1024
    network: str = "auto"
    allow_subprocesses: bool = False
    require_kernel_isolation: bool = False

    def __post_init__(self):
        checks = [
            ("timeout", self.timeout > 0, "> 0"),
            ("cpu_seconds", isinstance(self.cpu_seconds, int) and self.cpu_seconds >= 1, "an int >= 1"),
            (
                "memory_bytes",
                isinstance(self.memory_bytes, int) and self.memory_bytes >= 64 * 1024**2,
                "an int >= 64 MiB (67108864)",
            ),
            ("max_file_bytes", isinstance(self.max_file_bytes, int) and self.max_file_bytes >= 0, "an int >= 0"),
            ("max_processes", isinstance(self.max_processes, int) and self.max_processes >= 1, "an int >= 1"),
            ("max_output_bytes", isinstance(self.max_output_bytes, int) and self.max_output_bytes >= 1, "an int >= 1"),
            (
                "network",
                self.network in ("auto", "namespace", "audit-hook"),
                "one of 'auto', 'namespace', 'audit-hook'",
            ),
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
            Only the bootstrap's own exit codes mean ``"timeout"`` / ``"memory"``: what the code
            prints cannot change the status.
        stdout (`str`), stderr (`str`): captured output, each truncated to `max_output_bytes`.
        returncode (`int` or `None`): the exit status (negative: the signal that ended it).
        duration (`float`): wall-clock seconds.
        isolation (`str`): how the network was cut: ``"namespace"`` or ``"audit-hook"``.
        reason (`str`): a short human-readable cause for any status other than ``"ok"``.
        mechanisms (`tuple[str, ...]`): the containment applied, e.g. ``"netns"``, ``"pidns"``,
            ``"ipcns"``, ``"mountns"`` (read-only mounts, masked ``/tmp`` & co., own ``/proc``),
            ``"uid=<n>"`` (the unprivileged uid it ran as), ``"userns"``, ``"no-capabilities"``,
            ``"no-new-privs"``, ``"rlimits"``, ``"audit-hook"``.
        degraded (`tuple[str, ...]`): each kernel mechanism that was not available here, with what
            that leaves to the audit hook alone; empty when containment is complete.
    """

    status: SandboxStatus
    stdout: str
    stderr: str
    returncode: Optional[int]
    duration: float
    isolation: str
    reason: str = ""
    mechanisms: tuple = ()
    degraded: tuple = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclasses.dataclass(frozen=True)
class _Plan:
    namespaces: bool  # unshare + stage 1 (mounts) before the user code
    drop: bool  # setpriv before the user code (root: new uid; user: drop the namespace's capabilities)
    python: str  # the interpreter of the user code (it must be executable by the uid it runs as)
    mechanisms: tuple = ()
    degraded: tuple = ()


def _is_root() -> bool:
    return os.geteuid() == 0


def _unshare_prefix() -> list[str]:
    flags = ["--net", "--pid", "--fork", "--ipc", "--mount", "--mount-proc", "--kill-child"]
    # An unprivileged user needs a user namespace to create the others; root does not.
    return ["unshare"] + ([] if _is_root() else ["--map-root-user"]) + flags


def _setpriv_prefix(uid: Optional[int]) -> list[str]:
    command = [shutil.which("setpriv") or "setpriv"]
    if uid is not None:
        command += [f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    # The parent-death signal unshare set would be cleared by the uid change; keep it.
    return command + ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--pdeathsig=keep", "--"]


def _command(plan: _Plan, workdir: str, uid: Optional[int], bootstrap: str, child_config: dict) -> list[str]:
    command = [plan.python, "-I", "-B", "-c", _LOADER, bootstrap, json.dumps(child_config)]
    if plan.drop:
        command = _setpriv_prefix(uid) + command
    elif not _is_root() and shutil.which("setpriv"):
        command = [shutil.which("setpriv"), "--no-new-privs", "--"] + command  # no setuid-binary escalation
    if plan.namespaces:
        stage1 = {
            "masks": list(_MASKED_DIRS),
            "name": os.path.basename(workdir),
            "workdir": workdir,
            "exec": command,
            "setup_exit": _SETUP_EXIT,
        }
        # stage 1 needs no site-packages: -S saves its share of the start-up
        command = _unshare_prefix() + [sys.executable, "-I", "-B", "-S", "-c", _STAGE1, json.dumps(stage1)]
    return command


_PROBE_CODE = "import os\nprint('sandbox-probe', os.getuid())\n"


def _interpreters() -> list[str]:
    """Interpreters for the user code, best first: ours, then the system's of the same version.

    A uid made up for the run can only start an interpreter whose files are world-readable; a
    virtual environment under a private home (e.g. a pyenv in /root) is not, the system's is.
    """
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [
        sys.executable,
        os.path.realpath(sys.executable),
        getattr(sys, "_base_executable", None),
        shutil.which(version, path=os.defpath),
        shutil.which("python3", path=os.defpath),
    ]
    return list(dict.fromkeys(c for c in candidates if c))


@functools.cache
def _probe(namespaces: bool, drop: bool, python: str) -> Optional[str]:
    """None when this machine runs the plan (checked by running it), else why not."""
    if not sys.platform.startswith("linux"):
        return "not Linux"
    for tool, needed in (("unshare", namespaces), ("setpriv", drop)):
        if needed and shutil.which(tool) is None:
            return f"`{tool}` (util-linux) is not installed"
    plan = _Plan(namespaces, drop, python)
    try:
        result = _execute(_PROBE_CODE, SandboxConfig(timeout=20.0), plan, files=None, argv=None, stdin=None)
    except OSError as error:
        return f"{type(error).__name__}: {error}"
    uid = result.stdout.split()[-1] if result.stdout.startswith("sandbox-probe") else None
    if result.status != "ok" or uid is None:
        return (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1][:300]
    if drop and _is_root() and uid == "0":
        return "setpriv did not change the uid"
    return None


def _first_working(namespaces: bool, drop: bool) -> tuple[Optional[str], str]:
    """(interpreter, "") for the first interpreter that runs under the plan, else (None, why not)."""
    reason = ""
    for python in _interpreters() if drop else [sys.executable]:
        reason = _probe(namespaces, drop, python)
        if reason is None:
            return python, ""
    return None, reason


@functools.cache
def _plan(network: str) -> _Plan:
    root = _is_root()
    candidates = [] if network == "audit-hook" else [(True, True)]
    candidates += [(False, True)] if root else []
    reasons = {}
    chosen = (False, False, sys.executable)
    for namespaces, drop in candidates:
        python, reasons[(namespaces, drop)] = _first_working(namespaces, drop)
        if python is not None:
            chosen = (namespaces, drop, python)
            break
    namespaces, drop, python = chosen
    mechanisms, degraded = ["rlimits"], []
    if namespaces:
        mechanisms += ["netns", "pidns", "ipcns", "mountns"]
    else:
        why = (
            "network='audit-hook' was asked for"
            if network == "audit-hook"
            else f"namespaces unavailable: {reasons[(True, True)]}"
        )
        degraded.append(
            f"no namespaces ({why}): the network is cut by the audit hook only, /tmp and other "
            "world-writable directories stay writable, other processes stay visible"
        )
    if drop and root:
        mechanisms += ["uid-drop", "no-capabilities", "no-new-privs"]
    elif drop:
        mechanisms += ["userns", "no-capabilities", "no-new-privs"]
    elif root:
        why = reasons.get((False, True)) or "not tried"
        degraded.append(
            f"the code runs as root ({why}): RLIMIT_NPROC is not enforced and only the audit hook "
            "stops writes outside the working directory"
        )
    else:
        degraded.append("the code runs as the invoking user with its file permissions")
    if python != sys.executable:
        mechanisms.append(f"python={python}")
    mechanisms.append("audit-hook")
    return _Plan(namespaces, drop, python, tuple(mechanisms), tuple(degraded))


def sandbox_support(network: str = "auto") -> dict:
    """What `run_in_sandbox` can apply on this machine (probed once per process and setting).

    Returns `{"mechanisms": [...], "degraded": [...]}`, the same lists every `SandboxResult`
    carries (without the per-run ``uid=<n>``).
    """
    plan = _plan(network)
    return {"mechanisms": list(plan.mechanisms), "degraded": list(plan.degraded)}


def network_isolation_available() -> bool:
    """Whether `unshare` can create the sandbox's namespaces here (probed once per process)."""
    return _first_working(True, True)[0] is not None


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


def _remove_tree(path: str) -> None:
    def retry_writable(function, name, exc_info):
        # the code may have left a directory without write / search permission for its owner
        try:
            os.chmod(os.path.dirname(name), 0o700)
            if os.path.isdir(name) and not os.path.islink(name):
                os.chmod(name, 0o700)
                shutil.rmtree(name, ignore_errors=True)
            else:
                function(name)
        except OSError:
            pass

    shutil.rmtree(path, onerror=retry_writable)


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
        `SandboxResult`, with the containment that was applied (`mechanisms`) and what was not
        available here (`degraded`).
    """
    if not sys.platform.startswith("linux"):
        raise NotImplementedError("the sandbox relies on Linux rlimits and namespaces; run it on Linux")
    config = config or SandboxConfig()
    plan = _plan(config.network)
    if config.network == "namespace" and not plan.namespaces:
        raise RuntimeError(
            f"SandboxConfig.network='namespace' but `unshare` cannot create namespaces here "
            f"({_first_working(True, True)[1]}); use network='audit-hook' or 'auto'"
        )
    if config.require_kernel_isolation and plan.degraded:
        raise RuntimeError(
            "SandboxConfig.require_kernel_isolation=True but this machine lacks: " + "; ".join(plan.degraded)
        )
    return _execute(code, config, plan, files=files, argv=argv, stdin=stdin)


def _execute(code, config: SandboxConfig, plan: _Plan, *, files, argv, stdin) -> SandboxResult:
    uid = secrets.randbelow(_UID_RANGE[1] - _UID_RANGE[0]) + _UID_RANGE[0] if plan.drop and _is_root() else None
    workdir = tempfile.mkdtemp(prefix="hf_reason_sandbox_")
    try:
        for name, content in {**(files or {}), "main.py": code}.items():
            target = os.path.realpath(os.path.join(workdir, name))
            if not target.startswith(workdir + os.sep):
                raise ValueError(f"`files` names must stay inside the sandbox directory, got {name!r}")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="utf-8") as handle:
                handle.write(content)
        if uid is not None:
            # the run's uid owns its directory (0700) and nothing else on the machine
            for parent, dirs, names in os.walk(workdir):
                for entry in [parent] + [os.path.join(parent, n) for n in dirs + names]:
                    os.chown(entry, uid, uid, follow_symlinks=False)
        child_config = {
            "cpu": config.cpu_seconds,
            "mem": config.memory_bytes,
            "fsize": config.max_file_bytes,
            "nproc": config.max_processes,
            "script": "main.py",
            "argv": list(argv or []),
            "cpu_exit": _CPU_EXIT,
            "memory_exit": _MEMORY_EXIT,
        }
        bootstrap = _BOOTSTRAP.replace("__BLOCK_PROCESS__", repr(not config.allow_subprocesses)).replace(
            "__BLOCK_SOCKETS__", repr(not plan.namespaces)
        )
        command = _command(plan, workdir, uid, bootstrap, child_config)
        env = {"PATH": os.defpath, "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        mechanisms = tuple(f"uid={uid}" if m == "uid-drop" else m for m in plan.mechanisms)
        return _run(
            command,
            workdir,
            env,
            config,
            stdin,
            "namespace" if plan.namespaces else "audit-hook",
            mechanisms,
            plan.degraded,
        )
    finally:
        _remove_tree(workdir)


def _run(command, workdir, env, config: SandboxConfig, stdin, isolation, mechanisms, degraded) -> SandboxResult:
    start = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )

    def kill_group():
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    overflow = threading.Event()
    out, err = bytearray(), bytearray()
    readers = [
        threading.Thread(
            target=_reader, args=(process.stdout, out, config.max_output_bytes, overflow, kill_group), daemon=True
        ),
        threading.Thread(
            target=_reader, args=(process.stderr, err, config.max_output_bytes, overflow, kill_group), daemon=True
        ),
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
    elif code == _MEMORY_EXIT:
        # only the bootstrap's exit code: text on stderr is the code's to fake
        status, reason = "memory", f"address-space limit of {config.memory_bytes} bytes exceeded"
    elif code in (-signal.SIGKILL, 128 + signal.SIGKILL):
        # Not killed by us: the kernel's hard RLIMIT_CPU ends with SIGKILL.
        status, reason = "timeout", "killed at the hard CPU time limit"
    elif code < 0 or code == 128 + signal.SIGXFSZ:
        sig = -code if code < 0 else code - 128
        status, reason = (
            "killed",
            f"ended by signal {signal.Signals(sig).name if sig in signal.valid_signals() else sig}",
        )
    else:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {code}"
        status, reason = "error", last[:500]
    return SandboxResult(
        status=status,
        stdout=stdout,
        stderr=stderr,
        returncode=code,
        duration=duration,
        isolation=isolation,
        reason=reason,
        mechanisms=mechanisms,
        degraded=degraded,
    )
