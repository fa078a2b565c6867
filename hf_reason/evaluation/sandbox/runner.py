"""How a run is contained on this machine (the plan), the command that applies it, and the parent's
side of a run: its timers, the disk-quota watch, the kills on return and the status it derives."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from typing import Optional

from . import child, seccomp
from .config import SandboxConfig, SandboxResult


__all__ = ["network_isolation_available", "run_in_sandbox", "sandbox_support"]

# The uids a root parent hands out, one per run: far above distribution and subuid ranges.
_UID_RANGE = (1_000_000_000, 2_000_000_000)

# How often the parent measures the working directory against the disk quota.
_POLL_SECONDS = 0.05
# What a file or directory costs the quota at least: one filesystem block.
_MIN_ENTRY_BYTES = 4096
# The kernel signals the CPU limit at a scheduler tick, so the accounting can read a little below it.
_CPU_LIMIT_FRACTION = 0.9

# Run as the run's private uid after it returns: kill(-1) reaches exactly the processes of that uid.
_SWEEP = "import os\nfor _ in range(100):\n    try:\n        os.kill(-1, 9)\n    except ProcessLookupError:\n        break\n"

_PROBE_CODE = """import os
fields = dict(line.split(':', 1) for line in open('/proc/self/status') if ':' in line)
print('sandbox-probe', os.getuid(), fields.get('Seccomp', '?').strip())
"""


@dataclasses.dataclass(frozen=True)
class _Plan:
    namespaces: bool  # unshare + stage 1 (mounts) before the user code
    drop: bool  # setpriv before the user code (root: new uid; user: drop the namespace's capabilities)
    python: str  # the interpreter of the user code (it must be executable by the uid it runs as)
    rules: tuple = ()  # the seccomp rule sets the bootstrap loads
    nproc_one: bool = False  # RLIMIT_NPROC=1: no new process (nor thread) of the run's uid
    sweep: bool = False  # kill every process of the run's private uid on return
    isolation: str = "namespace"
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
    command = [plan.python, "-I", "-B", "-c", child.LOADER, bootstrap, json.dumps(child_config)]
    if plan.drop:
        command = _setpriv_prefix(uid) + command
    elif not _is_root() and shutil.which("setpriv"):
        command = [shutil.which("setpriv"), "--no-new-privs", "--"] + command  # no setuid-binary escalation
    if plan.namespaces:
        stage1 = {
            "masks": list(child.MASKED_DIRS),
            "name": os.path.basename(workdir),
            "workdir": workdir,
            "exec": command,
            "setup_exit": child.SETUP_EXIT,
        }
        # stage 1 needs no site-packages: -S saves its share of the start-up
        command = _unshare_prefix() + [sys.executable, "-I", "-B", "-S", "-c", child.STAGE1, json.dumps(stage1)]
    return command


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
def _probe(namespaces: bool, drop: bool, python: str, rules: tuple = ()) -> Optional[str]:
    """None when this machine runs the plan, seccomp rule sets `rules` included (checked by running
    it), else why not."""
    if not sys.platform.startswith("linux"):
        return "not Linux"
    for tool, needed in (("unshare", namespaces), ("setpriv", drop)):
        if needed and shutil.which(tool) is None:
            return f"`{tool}` (util-linux) is not installed"
    plan = _Plan(namespaces, drop, python, rules, sweep=not namespaces and drop and _is_root())
    try:
        result = _execute(_PROBE_CODE, SandboxConfig(timeout=20.0), plan, files=None, argv=None, stdin=None)
    except OSError as error:
        return f"{type(error).__name__}: {error}"
    words = result.stdout.split() if result.stdout.startswith("sandbox-probe") else []
    if result.status != "ok" or len(words) != 3:
        return (result.stderr.strip().splitlines() or [f"exit code {result.returncode}"])[-1][:300]
    if drop and _is_root() and words[1] == "0":
        return "setpriv did not change the uid"
    if rules and words[2] != "2":
        return f"the kernel did not load the seccomp filter (Seccomp: {words[2]})"
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
def _plan(network: str, allow_subprocesses: bool) -> _Plan:
    """How a run with these settings is contained here (each mechanism probed once per process).

    Raises `RuntimeError` where the settings ask for a mechanism this machine lacks, and where
    ``network="auto"`` finds no kernel mechanism to cut the network.
    """
    root = _is_root()
    if network in ("auto", "namespace"):
        python, no_namespaces = _first_working(True, True)
    else:
        python, no_namespaces = None, f"network={network!r} was asked for"
    namespaces = drop = python is not None
    no_drop = ""
    if not namespaces and root:
        python, no_drop = _first_working(False, True)
        drop = python is not None
    python = python or sys.executable
    if network == "namespace" and not namespaces:
        raise RuntimeError(
            f"SandboxConfig.network='namespace' but `unshare` cannot create namespaces here ({no_namespaces}); "
            "use network='seccomp' or 'auto'"
        )
    no_seccomp = seccomp.unavailable_reason() or _probe(namespaces, drop, python, (seccomp.NO_NETWORK,))
    if not namespaces and no_seccomp and network != "audit-hook":
        missing = f"no seccomp ({no_seccomp})"
        if network == "auto":
            missing = f"no namespaces ({no_namespaces}) and {missing}"
        raise RuntimeError(
            f"SandboxConfig.network={network!r}: the sandbox cannot cut the network here: {missing}. Install "
            "`pyseccomp` and libseccomp (libseccomp2 on Debian and Ubuntu) or allow unprivileged user namespaces; "
            "or pass SandboxConfig(network='audit-hook') to accept sockets refused by the Python audit hook only "
            "(SandboxResult.degraded then lists everything left open)"
        )
    isolation = "namespace" if namespaces else ("audit-hook" if network == "audit-hook" else "seccomp")
    runs_as_root = root and not drop
    rules = []
    if not no_seccomp:
        rules += [] if allow_subprocesses else [seccomp.NO_PROCESSES]
        rules += [] if namespaces else [seccomp.PROCESS_GROUP]
        rules += [seccomp.NO_NETWORK] if isolation == "seccomp" else []
    nproc_one = not (allow_subprocesses or namespaces or rules or runs_as_root)
    sweep = not namespaces and drop and root

    mechanisms = ["rlimits"] + (["rlimit-nproc=1"] if nproc_one else [])
    if namespaces:
        mechanisms += ["netns", "pidns", "ipcns", "mountns"]
    if drop:
        mechanisms += ["uid-drop" if root else "userns", "no-capabilities", "no-new-privs"]
    elif rules:
        mechanisms.append("no-new-privs")
    mechanisms += [f"seccomp-{name}" for name in rules]
    mechanisms += ["uid-sweep"] if sweep else []
    mechanisms += [f"python={python}"] if python != sys.executable else []
    mechanisms += ["audit-hook", "disk-quota"]

    degraded = []
    if not namespaces:
        writer = "by the run's own uid" if drop else ("as root" if root else "as the invoking user")
        degraded.append(
            f"no namespaces ({no_namespaces}): other processes are visible in /proc, and /tmp, /var/tmp, /dev/shm "
            f"and other world-writable directories are writable {writer}; what is written there outlives the run "
            "and is outside its disk quota"
        )
    if isolation == "audit-hook":
        starts = allow_subprocesses or not (rules or nproc_one)
        degraded.append(
            "the network is cut by the Python audit hook only (network='audit-hook' was asked for"
            + (f"; no seccomp: {no_seccomp}" if no_seccomp else "")
            + "): a socket opened past the interpreter (through a memory-corruption bug, or by patching it through "
            "/proc/self/mem) reaches the network, the host's loopback included"
            + ("; so does any program the code starts" if starts else "")
        )
    if not allow_subprocesses and no_seccomp:
        if namespaces:
            degraded.append(
                f"no seccomp ({no_seccomp}): new processes are refused by the audit hook only "
                "(`_posixsubprocess.fork_exec` gets past it); what they run stays in the namespaces and dies with the run"
            )
        elif nproc_one:
            degraded.append(
                f"no seccomp ({no_seccomp}): RLIMIT_NPROC=1 is what stops new processes, so the code cannot start "
                "threads either, and only the audit hook refuses exec"
            )
        else:
            degraded.append(
                f"no seccomp ({no_seccomp}) and the code runs as root: only the audit hook refuses new processes "
                "(`_posixsubprocess.fork_exec` gets past it), and nothing kills a child that leaves the process group"
            )
    if allow_subprocesses and not namespaces and no_seccomp and not sweep:
        degraded.append(
            f"no seccomp ({no_seccomp}): a child that calls setsid() leaves the process group and can outlive the run"
        )
    if runs_as_root:
        degraded.append(
            f"the code runs as root ({no_drop or 'not tried'}): RLIMIT_NPROC does not apply to it and only the "
            "audit hook stops writes outside the working directory"
        )
    elif not root and not namespaces:
        degraded.append(
            "the code runs as the invoking user: with that user's file permissions, able to signal that user's "
            "processes, and under an RLIMIT_NPROC that counts all of that user's processes"
        )
    return _Plan(
        namespaces, drop, python, tuple(rules), nproc_one, sweep, isolation, tuple(mechanisms), tuple(degraded)
    )


def sandbox_support(network: str = "auto", allow_subprocesses: bool = False) -> dict:
    """What `run_in_sandbox` applies on this machine for these settings (probed once per process).

    Args:
        network (`str`, defaults to `"auto"`): as `SandboxConfig.network`.
        allow_subprocesses (`bool`, defaults to `False`): as `SandboxConfig.allow_subprocesses`.

    Returns:
        `{"isolation": str, "mechanisms": [...], "degraded": [...]}`, as every `SandboxResult`
        carries them (without the per-run ``uid=<n>``).

    Raises:
        `RuntimeError` where `run_in_sandbox` would refuse to run (the message says what is missing).
    """
    SandboxConfig(network=network, allow_subprocesses=allow_subprocesses)  # validates the values
    plan = _plan(network, allow_subprocesses)
    return {"isolation": plan.isolation, "mechanisms": list(plan.mechanisms), "degraded": list(plan.degraded)}


def network_isolation_available() -> bool:
    """Whether `unshare` can create the sandbox's namespaces here (probed once per process)."""
    return _first_working(True, True)[0] is not None


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
        (`degraded`).

    Raises:
        `RuntimeError` when this machine cannot contain the run as `config` asks: no namespaces
        for ``network="namespace"``, no seccomp for ``"seccomp"``, neither for ``"auto"``, or any
        gap with ``require_kernel_isolation=True``.
    """
    if not sys.platform.startswith("linux"):
        raise NotImplementedError("the sandbox relies on Linux rlimits, namespaces and seccomp; run it on Linux")
    config = config or SandboxConfig()
    plan = _plan(config.network, config.allow_subprocesses)
    if config.require_kernel_isolation and plan.degraded:
        raise RuntimeError(
            "SandboxConfig.require_kernel_isolation=True but this run would not be contained: "
            + "; ".join(plan.degraded)
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
            "nproc": 1 if plan.nproc_one else config.max_processes,
            "seccomp": seccomp.program(plan.rules).hex() if plan.rules else "",
            "script": "main.py",
            "argv": list(argv or []),
            "cpu_exit": child.CPU_EXIT,
            "memory_exit": child.MEMORY_EXIT,
            "setup_exit": child.SETUP_EXIT,
        }
        bootstrap = child.bootstrap(block_processes=not config.allow_subprocesses, block_sockets=not plan.namespaces)
        command = _command(plan, workdir, uid, bootstrap, child_config)
        env = {"PATH": os.defpath, "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        return _run(command, workdir, env, config, stdin, plan, uid)
    finally:
        _remove_tree(workdir)


def _run(command, workdir, env, config: SandboxConfig, stdin, plan: _Plan, uid: Optional[int]) -> SandboxResult:
    baseline = _disk_usage(workdir, sys.maxsize)
    quota = baseline + config.max_disk_bytes
    report, report_writer = os.pipe()
    start = time.monotonic()
    try:
        process = subprocess.Popen(
            [sys.executable, "-I", "-B", "-S", "-c", child.REAPER, str(report_writer), json.dumps(command)],
            cwd=workdir,
            env=env,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            pass_fds=(report_writer,),
        )
    finally:
        os.close(report_writer)
    stopped_for = []  # why the parent killed the run, first cause first

    def stop(cause: str) -> None:
        stopped_for.append(cause)
        _kill_group(process.pid)

    out, err = bytearray(), bytearray()
    threads = [
        threading.Thread(target=_reader, args=(stream, sink, config.max_output_bytes, stop), daemon=True)
        for stream, sink in ((process.stdout, out), (process.stderr, err))
    ]
    if stdin is not None:
        # a thread, so that a child that never reads cannot hold the parent past its timeout
        threads.append(threading.Thread(target=_feed, args=(process.stdin, stdin.encode()), daemon=True))
    for thread in threads:
        thread.start()

    deadline, used = start + config.timeout, 0
    exited = _exit_notifier(process.pid)
    try:
        while True:
            pid, wait_status = os.waitpid(process.pid, os.WNOHANG)
            if pid:
                break
            used = max(used, _disk_usage(workdir, quota) - baseline)
            now = time.monotonic()
            if used > config.max_disk_bytes:
                stop("disk")
            elif now >= deadline:
                stop("timeout")
            if stopped_for:
                _, wait_status = os.waitpid(process.pid, 0)
                break
            if exited is None:
                time.sleep(min(_POLL_SECONDS, deadline - now))
            else:
                select.select([exited], [], [], min(_POLL_SECONDS, deadline - now))
        process.returncode = os.waitstatus_to_exitcode(wait_status)
        # the child's wait status and accounting, as the reaper saw them; none when it was killed first
        code, cpu, peak = _read_report(report) or (process.returncode, 0.0, 0)
    finally:
        os.close(report)
        if exited is not None:
            os.close(exited)
    # Whatever the child left behind goes too: its process group, and every process of its private uid.
    _kill_group(process.pid)
    if plan.sweep and uid is not None:
        _kill_uid(uid, plan.python)
    used = max(used, _disk_usage(workdir, quota) - baseline)
    for thread in threads:
        thread.join(timeout=5)
    stdout = out.decode("utf-8", errors="replace")
    stderr = err.decode("utf-8", errors="replace")
    status, reason = _classify(config, stopped_for, code, cpu, peak, used, stderr)
    return SandboxResult(
        status=status,
        stdout=stdout,
        stderr=stderr,
        returncode=code,
        duration=time.monotonic() - start,
        isolation=plan.isolation,
        reason=reason,
        mechanisms=tuple(f"uid={uid}" if m == "uid-drop" else m for m in plan.mechanisms),
        degraded=plan.degraded,
        cpu_time=cpu,
        peak_rss_bytes=peak,
        disk_bytes=max(used, 0),
    )


def _read_report(report: int) -> Optional[tuple[int, float, int]]:
    """(exit code, CPU seconds, peak resident bytes) of the child from the reaper's report, if it made one."""
    os.set_blocking(report, False)
    try:
        status, cpu, peak_kib = json.loads(os.read(report, 4096))
        return os.waitstatus_to_exitcode(status), float(cpu), int(peak_kib) * 1024
    except (OSError, ValueError, TypeError):  # no report: the reaper was killed before its child ended
        return None


def _classify(config: SandboxConfig, stopped_for: list, code: int, cpu: float, peak: int, used: int, stderr: str):
    """(status, reason) from what the parent observed: its own kills, the wait status and the
    kernel's accounting. The bootstrap's exit codes only name a cause the accounting must confirm."""
    cause = stopped_for[0] if stopped_for else "disk" if used > config.max_disk_bytes else None
    if cause == "timeout":
        return "timeout", f"wall-clock timeout after {config.timeout:g}s"
    if cause == "output":
        return "killed", f"output exceeded {config.max_output_bytes} bytes"
    if cause == "disk":
        return "disk", f"the working directory grew past its quota of {config.max_disk_bytes} bytes ({used} seen)"
    if code == 0:
        return "ok", ""
    if code in (child.CPU_EXIT, -signal.SIGXCPU, -signal.SIGKILL) and cpu >= _CPU_LIMIT_FRACTION * config.cpu_seconds:
        return "timeout", f"CPU time limit of {config.cpu_seconds}s reached ({cpu:.2f}s used)"
    if code == child.MEMORY_EXIT and peak >= config.memory_bytes // 2:
        return "memory", f"address-space limit of {config.memory_bytes} bytes reached ({peak} bytes resident at peak)"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        return "killed", f"ended by signal {name}"
    last = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {code}"
    return "error", last[:500]


def _reader(stream, sink: bytearray, cap: int, stop) -> None:
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            break
        room = cap - len(sink)
        if room > 0:
            sink.extend(chunk[:room])
        if len(chunk) > room:
            stop("output")
            # keep draining so the child never blocks on a full pipe before it dies
    stream.close()


def _feed(stream, data: bytes) -> None:
    try:
        stream.write(data)
        stream.close()
    except OSError:  # the child exited or closed its stdin
        pass


def _exit_notifier(pid: int) -> Optional[int]:
    """A pidfd that becomes readable when `pid` exits, or None where the kernel has none (< 5.3)."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_uid(uid: int, python: str) -> None:
    """SIGKILLs every process of the run's private uid, wherever it went (another session included)."""
    subprocess.run(
        [python, "-I", "-S", "-c", _SWEEP],
        user=uid,
        group=uid,
        extra_groups=[],
        cwd="/",
        env={},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=30,
        check=False,
    )


def _disk_usage(root: str, stop_above: int) -> int:
    """The bytes under `root` as the disk quota counts them (see `SandboxConfig.max_disk_bytes`).

    Symbolic links are counted, never followed. The walk stops once past `stop_above`, so a flood of
    files costs the parent at most `stop_above / 4 KiB` entries per look.
    """
    total, pending = 0, [root]
    while pending:
        try:
            entries = os.scandir(pending.pop())
        except OSError:  # removed meanwhile, or not listable
            continue
        with entries:
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += max(info.st_size, info.st_blocks * 512, _MIN_ENTRY_BYTES)
                if total > stop_above:
                    return total
                if stat.S_ISDIR(info.st_mode):
                    pending.append(entry.path)
    return total


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
