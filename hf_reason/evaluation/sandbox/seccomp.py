"""The sandbox's seccomp filters: compiled here with libseccomp, loaded by the child before the user code.

libseccomp resolves syscall names per architecture and guards a filter against foreign ABIs (an
i386 or x32 call on x86_64 kills the process instead of slipping past a rule written for x86_64
numbers), which is why the filters are not assembled by hand. It is reached through `pyseccomp`
(MIT, pure Python over ctypes): the system's ``libseccomp.so.2`` (LGPL-2.1) is loaded at run time
like any shared library, and nothing LGPL is built into or shipped with hf-reason, which rules out
libseccomp's own (LGPL, compiled) Python binding. A filter is exported as raw BPF, so the child loads
it with one ``prctl(2)`` and needs neither package (its interpreter may be the system's).

Every rule makes a syscall fail with an error; no rule kills: code that probes gets a clear
``OSError`` and the run's status stays the parent's to decide.
"""

from __future__ import annotations

import errno
import functools
import platform
import tempfile
from typing import Optional


__all__ = ["NO_NETWORK", "NO_PROCESSES", "PROCESS_GROUP", "RULE_SETS", "program", "unavailable_reason"]

# With allow_subprocesses=False: no new process and no other program. Threads stay allowed: clone(2)
# with CLONE_THREAD passes, and clone3(2), whose flags sit behind a pointer a filter cannot read,
# answers ENOSYS so that the C library falls back to clone(2).
NO_PROCESSES = "no-processes"
# Without a network namespace: no socket of any family (an abstract AF_UNIX socket is reachable across
# the whole host namespace) and no io_uring (it opens and connects sockets without socket(2)).
NO_NETWORK = "no-network"
# Without a PID namespace: nothing leaves the run's process group (so killing the group on return
# reaches every descendant) and nothing reaches into another process.
PROCESS_GROUP = "process-group"

_CLONE_THREAD = 0x00010000

_RULES = {
    NO_PROCESSES: (
        ("fork", errno.EPERM),
        ("vfork", errno.EPERM),
        ("execve", errno.EPERM),
        ("execveat", errno.EPERM),
        ("clone3", errno.ENOSYS),
        ("clone", errno.EPERM, (0, _CLONE_THREAD, 0)),  # flags & CLONE_THREAD == 0: a new process
    ),
    NO_NETWORK: (
        ("socket", errno.EPERM),
        ("io_uring_setup", errno.EPERM),
        ("io_uring_enter", errno.EPERM),
        ("io_uring_register", errno.EPERM),
    ),
    PROCESS_GROUP: (
        ("setsid", errno.EPERM),
        ("setpgid", errno.EPERM),
        ("ptrace", errno.EPERM),
        ("process_vm_readv", errno.EPERM),
        ("process_vm_writev", errno.EPERM),
    ),
}
RULE_SETS = tuple(_RULES)

# clone(2) takes its flags as the first argument on these; the NO_PROCESSES rule reads them there.
_ARCHITECTURES = ("x86_64", "aarch64")


@functools.cache
def program(rule_sets: tuple[str, ...]) -> bytes:
    """The BPF program (``struct sock_filter`` array) that applies `rule_sets` and allows the rest.

    Args:
        rule_sets (`tuple[str, ...]`): names among `RULE_SETS`.

    Raises:
        `ImportError` without `pyseccomp`; `RuntimeError` or `OSError` without a usable libseccomp.
    """
    import pyseccomp

    unknown = set(rule_sets) - set(RULE_SETS)
    if unknown:
        raise ValueError(f"unknown seccomp rule sets {sorted(unknown)}; expected names among {list(RULE_SETS)}")
    rules = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for name in rule_sets:
        for syscall, error, *conditions in _RULES[name]:
            arguments = [pyseccomp.Arg(index, pyseccomp.MASKED_EQ, mask, value) for index, mask, value in conditions]
            rules.add_rule(pyseccomp.ERRNO(error), syscall, *arguments)
    with tempfile.TemporaryFile() as handle:
        rules.export_bpf(handle)
        handle.seek(0)
        return handle.read()


@functools.cache
def unavailable_reason() -> Optional[str]:
    """None when this process can compile the sandbox's filters, else why not (whether the kernel
    loads them is checked by running one, see ``runner._probe``)."""
    machine = platform.machine()
    if machine not in _ARCHITECTURES:
        return f"the seccomp filters are written for {' and '.join(_ARCHITECTURES)}, not {machine}"
    try:
        program(RULE_SETS)
    except ImportError:
        return "the `pyseccomp` package is not installed (pip install pyseccomp)"
    except (OSError, RuntimeError) as error:  # pyseccomp raises RuntimeError without libseccomp.so.2
        return f"libseccomp is unusable: {error} (it ships as libseccomp2 on Debian and Ubuntu)"
    return None
