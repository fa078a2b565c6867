"""Run untrusted Python (model-written programs, task test code) in a contained subprocess.

The code never runs in this process, and what contains it is the kernel, not Python. Every run gets:

- a fresh interpreter, ``-I -B`` (isolated: no ``PYTHON*`` variables, no user site, no bytecode
  written), started with a minimal environment in a new session and process group;
- a temporary working directory that is deleted afterwards, under a disk quota
  (`SandboxConfig.max_disk_bytes`) that the parent measures every 50 ms and after the run;
- resource limits set inside the child before the user code runs: ``RLIMIT_CPU``, ``RLIMIT_AS``,
  ``RLIMIT_FSIZE`` (per file), ``RLIMIT_NPROC`` and ``RLIMIT_CORE = 0``; plus a wall-clock timeout
  and a cap on captured output;
- an audit hook (``sys.addaudithook``) as a policy layer that turns what the kernel also stops into
  clear errors: writes outside the working directory, process creation, signals, ``ctypes``,
  sockets (without a network namespace) and the introspection that could reach the sandbox's own
  state. Its settings are constants in its own code, held by no frame. It is still Python
  (``_posixsubprocess.fork_exec`` and ``os.open(dir_fd=...)`` raise no audit event, and a
  memory-corruption bug gets past any hook), so it is never what a claim below rests on;
- a status derived from what the parent observed (its own timers and kills, the wait status, the
  kernel's CPU and memory accounting), never from what the code chooses (see `SandboxResult.status`).

How the rest is contained depends on `SandboxConfig.network` and on the machine;
`SandboxResult.isolation` names the mode a run got:

- ``"namespace"`` (``auto`` picks it wherever ``unshare`` works): new network, PID, IPC and mount
  namespaces. No network at all (only a downed loopback); other processes invisible, and when the
  child's first process exits the kernel kills everything it spawned; every mount read-only except
  the working directory, with ``/tmp``, ``/var/tmp``, ``/dev/shm``, ``/run`` and ``/dev/mqueue``
  hidden under empty read-only tmpfs. As root, the child becomes a fresh unprivileged uid / gid
  drawn from ``[1e9, 2e9)`` for this run (so ``RLIMIT_NPROC``, which the kernel does not apply to
  root, caps it, and concurrent runs never share that budget), owner of only its directory, with no
  supplementary groups, no capabilities and ``no_new_privs`` (``setpriv``); as an ordinary user, the
  namespaces live in a user namespace and the child drops every capability in it.
- ``"seccomp"`` (``auto`` picks it where namespaces cannot be created, e.g. unprivileged
  containers): no namespaces; a seccomp filter loaded before the user code, inherited by every
  child, refuses ``socket(2)`` of every family and io_uring (no network, the host's loopback and
  abstract Unix sockets included), and ``setsid`` / ``setpgid`` / ``ptrace`` / ``process_vm_*`` (no
  child leaves the run's process group, which the parent kills on return). As root, the child
  still gets its private uid, and the parent also kills every process of that uid on return. Not
  contained, and said in `SandboxResult.degraded`: other processes are visible, and world-writable
  directories such as ``/tmp`` stay writable (outside the quota, and left behind).
- ``"audit-hook"`` (only when asked for by name): as ``"seccomp"`` without the filter's network
  rule, so sockets are refused by the audit hook alone; `SandboxResult.degraded` says what that
  leaves open. ``auto`` never falls back to it: where neither namespaces nor seccomp work it raises
  `RuntimeError` naming what is missing and this opt-in.

With ``allow_subprocesses=False`` (the default), a seccomp filter refuses ``fork``, ``vfork``,
``clone`` (threads excepted), ``clone3`` and ``execve`` in every mode where seccomp works; where it
does not and there are no namespaces, ``RLIMIT_NPROC=1`` stops every new process of the run's uid
(threads too). With ``allow_subprocesses=True``, the PID namespace, or the process-group filter and
the uid sweep, leave no descendant alive after `run_in_sandbox` returns.

Nothing a machine lacks is skipped silently: `SandboxResult.mechanisms` lists what was applied,
`SandboxResult.degraded` each gap and what it leaves open, `sandbox_support()` reports the same
without a run, and ``SandboxConfig(require_kernel_isolation=True)`` turns any gap into an error.
Reads are not confined: the code can read world-readable files.
"""

from .config import SandboxConfig, SandboxResult, SandboxStatus
from .runner import network_isolation_available, run_in_sandbox, sandbox_support


__all__ = [
    "SandboxConfig",
    "SandboxResult",
    "SandboxStatus",
    "network_isolation_available",
    "run_in_sandbox",
    "sandbox_support",
]
