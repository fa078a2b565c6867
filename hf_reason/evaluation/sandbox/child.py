"""The programs that run the sandbox's child, before and around the user code.

They are sources passed to a fresh interpreter with ``-c``, never imported here: the reaper starts
the child and reports how it ended; stage 1 sets up the mount namespace (as the namespace's root) and
execs the privilege drop; the bootstrap sets the resource limits, loads the seccomp filter, installs
the audit hook and runs the user code.

The exit codes below are cues the bootstrap gives the parent. The user code runs in the same
process and can exit with any of them, so the parent never takes one as proof: a status is only
``"timeout"`` or ``"memory"`` when the parent's own measurements agree (see ``runner._classify``).
"""

# Exit codes the bootstrap uses to say why it stopped (distinct from common Python codes).
SETUP_EXIT = 96
MEMORY_EXIT = 97
CPU_EXIT = 98

# World-writable (or socket-holding) places hidden under an empty read-only tmpfs in the mount
# namespace; everything else is remounted read-only, so these two together leave the working
# directory as the only writable place.
MASKED_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run", "/var/run", "/dev/mqueue")

# The parent's deputy, trusted: forks the child's command, waits for it and writes its wait status and
# the kernel's accounting of it (CPU seconds, peak resident KiB) to the report descriptor argv[1]. A
# process's peak resident memory includes the memory of whatever it was forked from, so the child is
# forked from this small interpreter rather than from the parent, whose footprint would swamp it. The
# report descriptor is closed on exec, so the child does not inherit it (without a PID namespace, a child
# of the caller's own uid could still reach it through /proc, as it can any of that user's processes).
REAPER = r"""
import json, os, sys
report, command = int(sys.argv[1]), json.loads(sys.argv[2])
os.set_inheritable(report, False)
pid = os.fork()
if pid == 0:
    try:
        os.execvp(command[0], command)
    except OSError as error:
        sys.stderr.write("sandbox setup failed: %s: %s\n" % (command[0], error))
        sys.stderr.flush()
    os._exit(127)
_, status, usage = os.wait4(pid, 0)
os.write(report, json.dumps([status, usage.ru_utime + usage.ru_stime, usage.ru_maxrss]).encode())
"""

# Stage 1: runs as (namespace) root inside the new namespaces, before any user code, and execs the
# privilege drop. Trusted code, so it may use ctypes for mount(2).
STAGE1 = r"""
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

LOADER = "import sys; exec(compile(sys.argv[1], '<hf-reason-sandbox>', 'exec'))"

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


def _load_seccomp(program, setup_exit):
    # Trusted, before the user code: ctypes for prctl(2), which the os module does not expose.
    import ctypes, os, sys
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    instructions = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.addressof(instructions))
    # PR_SET_NO_NEW_PRIVS (38) lets an unprivileged process load a filter;
    # PR_SET_SECCOMP (22) with SECCOMP_MODE_FILTER (2) loads it, for this process and all it starts.
    if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.addressof(fprog), 0, 0) != 0:
        sys.stderr.write("sandbox setup failed: seccomp: %s\n" % os.strerror(ctypes.get_errno()))
        sys.stderr.flush()
        os._exit(setup_exit)


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
    if cfg["seccomp"]:
        _load_seccomp(bytes.fromhex(cfg["seccomp"]), cfg["setup_exit"])
    globals().pop("_load_seccomp", None)
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


def bootstrap(block_processes: bool, block_sockets: bool) -> str:
    """The bootstrap's source with the audit hook's two switches written in as literals.

    Args:
        block_processes (`bool`): refuse process creation, signals and ctypes in the hook.
        block_sockets (`bool`): refuse sockets in the hook (when there is no network namespace).
    """
    return _BOOTSTRAP.replace("__BLOCK_PROCESS__", repr(block_processes)).replace(
        "__BLOCK_SOCKETS__", repr(block_sockets)
    )
