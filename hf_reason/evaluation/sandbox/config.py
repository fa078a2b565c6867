"""The sandbox's limits (`SandboxConfig`) and what a run did (`SandboxResult`)."""

from __future__ import annotations

import dataclasses
from typing import Literal, Optional


__all__ = ["NETWORK_MODES", "SandboxConfig", "SandboxResult", "SandboxStatus"]

SandboxStatus = Literal["ok", "timeout", "memory", "disk", "killed", "error"]

NETWORK_MODES = ("auto", "namespace", "seccomp", "audit-hook")


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
        max_disk_bytes (`int`, defaults to 64 MiB): the most the code may add to its working
            directory, all files together (>= 0). Each file counts its size or its allocated
            blocks, whichever is larger, and every file or directory at least 4 KiB (so a flood
            of empty files is bounded too); the files passed to `run_in_sandbox` do not count.
            The parent measures the directory every 50 ms and once more after the run, and kills
            the run when it is over (status ``"disk"``): a run can pass the quota by what it
            writes in 50 ms, never for longer.
        max_processes (`int`, defaults to 16): ``RLIMIT_NPROC`` (>= 1). The kernel enforces it for
            the unprivileged uid the child runs as; not where the child stays root, and where it
            runs as the invoking user it counts all of that user's processes (see
            `SandboxResult.degraded`).
        max_output_bytes (`int`, defaults to 64 KiB): stdout and stderr are each captured up to
            this size; output beyond it kills the run with status ``"killed"`` (>= 1).
        network (`str`, defaults to `"auto"`): how the network is cut, and so which isolation the
            run gets: ``"namespace"`` (new namespaces via ``unshare``; an error if unavailable),
            ``"seccomp"`` (no namespaces; a seccomp filter refuses every socket; an error if
            unavailable), ``"audit-hook"`` (no namespaces and no seccomp network rule: sockets are
            refused by the Python audit hook only, which code that gets past the interpreter
            evades: the explicit opt-in to that weaker mode) or ``"auto"`` (the namespaces, else
            seccomp, else a `RuntimeError` naming what is missing: never the audit hook alone).
        allow_subprocesses (`bool`, defaults to `False`): let the code fork / spawn / exec. When
            `False`, a seccomp filter refuses new processes and other programs wherever seccomp
            works, else ``RLIMIT_NPROC=1`` does (threads too); when `True`, the PID namespace, or
            without one a seccomp filter that keeps every child in the run's process group, lets
            the parent kill them all on return.
        require_kernel_isolation (`bool`, defaults to `False`): raise `RuntimeError` instead of
            running when any kernel mechanism is unavailable (when `SandboxResult.degraded` would
            not be empty).
    """

    timeout: float = 10.0
    cpu_seconds: int = 5
    memory_bytes: int = 512 * 1024**2
    max_file_bytes: int = 16 * 1024**2
    max_disk_bytes: int = 64 * 1024**2
    max_processes: int = 16
    max_output_bytes: int = 64 * 1024
    network: str = "auto"
    allow_subprocesses: bool = False
    require_kernel_isolation: bool = False

    def __post_init__(self):
        def is_int(value, least):
            return isinstance(value, int) and not isinstance(value, bool) and value >= least

        checks = [
            ("timeout", isinstance(self.timeout, (int, float)) and self.timeout > 0, "> 0"),
            ("cpu_seconds", is_int(self.cpu_seconds, 1), "an int >= 1"),
            ("memory_bytes", is_int(self.memory_bytes, 64 * 1024**2), "an int >= 64 MiB (67108864)"),
            ("max_file_bytes", is_int(self.max_file_bytes, 0), "an int >= 0"),
            ("max_disk_bytes", is_int(self.max_disk_bytes, 0), "an int >= 0"),
            ("max_processes", is_int(self.max_processes, 1), "an int >= 1"),
            ("max_output_bytes", is_int(self.max_output_bytes, 1), "an int >= 1"),
            ("network", self.network in NETWORK_MODES, "one of " + ", ".join(map(repr, NETWORK_MODES))),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"SandboxConfig.{name} must be {allowed}, got {getattr(self, name)!r}")


@dataclasses.dataclass
class SandboxResult:
    """What a sandboxed run did.

    Attributes:
        status (`str`): what the parent observed, never what the code says about itself (its exit
            code, its output):

            - ``"ok"``: exit status 0 within every limit;
            - ``"timeout"``: the parent's wall clock ran out, or the run ended at the CPU limit
              (by ``SIGXCPU``, the hard limit's ``SIGKILL`` or the bootstrap's CPU exit) having used
              at least 90% of `cpu_seconds` by the kernel's accounting (`cpu_time`);
            - ``"memory"``: the bootstrap caught a ``MemoryError`` and the kernel's accounting shows
              the run's resident memory reached at least half of `memory_bytes`
              (`peak_rss_bytes`): a single request far over the limit fails early and reads as
              ``"error"``;
            - ``"disk"``: the working directory grew past `max_disk_bytes` (`disk_bytes`);
            - ``"killed"``: the output cap was exceeded, or a signal the parent did not send ended it;
            - ``"error"``: any other non-zero exit, e.g. an exception or a blocked operation.
        stdout (`str`), stderr (`str`): captured output, each truncated to `max_output_bytes`.
        returncode (`int` or `None`): the exit status (negative: the signal that ended it).
        duration (`float`): wall-clock seconds.
        isolation (`str`): how the network was cut: ``"namespace"``, ``"seccomp"`` or
            ``"audit-hook"`` (see `SandboxConfig.network`).
        reason (`str`): a short human-readable cause for any status other than ``"ok"``.
        mechanisms (`tuple[str, ...]`): the containment applied: ``"netns"``, ``"pidns"``,
            ``"ipcns"``, ``"mountns"`` (read-only mounts, masked ``/tmp`` & co., own ``/proc``),
            ``"uid=<n>"`` (the unprivileged uid it ran as), ``"userns"``, ``"no-capabilities"``,
            ``"no-new-privs"``, ``"rlimits"``, ``"rlimit-nproc=1"`` (no new process or thread of
            its uid), ``"seccomp-no-processes"``, ``"seccomp-no-network"``,
            ``"seccomp-process-group"`` (the seccomp rule sets loaded), ``"uid-sweep"`` (every
            process of the run's uid killed on return), ``"audit-hook"``, ``"disk-quota"`` and
            ``"python=<path>"`` (the interpreter, when not this one).
        degraded (`tuple[str, ...]`): each thing this run did not contain, with what it leaves
            open; empty when containment is complete.
        cpu_time (`float`): CPU seconds (user + system) of the run's processes that were waited
            for, by the kernel's accounting.
        peak_rss_bytes (`int`): the largest resident memory of one of those processes.
        disk_bytes (`int`): the most the parent measured the code to have added to its directory.
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
    cpu_time: float = 0.0
    peak_rss_bytes: int = 0
    disk_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"
