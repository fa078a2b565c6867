"""Containment cases for the untrusted-code sandbox: each is stopped and reported, quickly.

The escape tests (a-e) are the auditor's probes: each one got out of the sandbox before the kernel
contained it (frames reaching the audit hook's flags, `_posixsubprocess.fork_exec`,
`os.open(dir_fd=...)`, sqlite, `nsenter` back into the host's network namespace).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from hf_reason.evaluation.sandbox import (
    SandboxConfig,
    network_isolation_available,
    run_in_sandbox,
    runner,
    sandbox_support,
    seccomp,
)


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is Linux-only")

SMALL = dict(timeout=4.0, cpu_seconds=1, memory_bytes=192 * 1024**2, max_output_bytes=4096)
SANDBOX_DIR = Path(__file__).resolve().parents[1] / "hf_reason" / "evaluation" / "sandbox"


@pytest.fixture
def open_dir():
    """A world-writable directory outside the sandbox that any uid can reach (pytest's own temporary
    directories sit under a private parent): only the kernel's containment protects it."""
    path = Path(tempfile.mkdtemp(prefix="hf_reason_sandbox_test_", dir="/tmp"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def listener():
    """A TCP server on the host's loopback; yields (port, accepted) where accepted() says if anyone connected."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.3)

    def accepted() -> bool:
        try:
            connection, _ = server.accept()  # a completed handshake waits in the backlog
        except TimeoutError:
            return False
        connection.close()
        return True

    yield server.getsockname()[1], accepted
    server.close()


def test_ok_run_captures_output_and_files_stay_inside():
    result = run_in_sandbox(
        "open('a.txt', 'w').write('hi')\nprint(open('a.txt').read(), input())", SandboxConfig(**SMALL), stdin="there\n"
    )
    assert result.status == "ok" and result.returncode == 0
    assert result.stdout.strip() == "hi there"


def test_result_reports_the_isolation_used():
    result = run_in_sandbox("print(1)", SandboxConfig(**SMALL))
    support = sandbox_support()
    assert "rlimits" in result.mechanisms and "audit-hook" in result.mechanisms
    assert [m for m in result.mechanisms if not m.startswith("uid=")] == [
        m for m in support["mechanisms"] if m != "uid-drop"
    ]
    assert list(result.degraded) == support["degraded"]
    if os.geteuid() == 0 and not result.degraded:
        uid = int(next(m for m in result.mechanisms if m.startswith("uid="))[4:])
        assert uid >= 1_000_000_000
    hooked = run_in_sandbox("print(1)", SandboxConfig(**{**SMALL, "network": "audit-hook"}))
    assert hooked.isolation == "audit-hook" and "netns" not in hooked.mechanisms
    assert any("network='audit-hook'" in d for d in hooked.degraded)  # said, not silently skipped
    if hooked.degraded:
        with pytest.raises(RuntimeError, match="require_kernel_isolation"):
            run_in_sandbox("print(1)", SandboxConfig(network="audit-hook", require_kernel_isolation=True))


@pytest.mark.skipif(not network_isolation_available(), reason="unshare cannot create namespaces here")
def test_child_is_unprivileged_and_every_mount_but_its_directory_is_read_only():
    code = """import os
status = dict(line.split(':', 1) for line in open('/proc/self/status'))
print('uid', os.getuid(), 'caps', status['CapEff'].strip(), status['CapBnd'].strip(), 'nnp', status['NoNewPrivs'].strip())
top = {}
for line in open('/proc/self/mountinfo'):  # later lines are mounted on top of earlier ones
    fields = line.split()
    top[fields[4]] = fields[5].split(',')
print('writable', sorted(point for point, options in top.items() if 'rw' in options))
print('cwd', os.getcwd(), 'pids', sorted(p for p in os.listdir('/proc') if p.isdigit()))
"""
    result = run_in_sandbox(code, SandboxConfig(**SMALL))
    assert result.ok, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    uid, _, cap_eff, cap_bnd, _, nnp = lines["uid"].split()
    assert cap_eff == "0000000000000000" and cap_bnd == "0000000000000000" and nnp == "1"
    assert (uid != "0") if os.geteuid() == 0 else True
    cwd = lines["cwd"].split()[0]
    assert eval(lines["writable"]) == [cwd]
    assert eval(lines["cwd"].split(" ", 2)[2]) == ["1"]  # its own /proc: only itself


def test_stdin_the_code_never_reads_does_not_hold_the_parent_past_its_timeout():
    config = SandboxConfig(**{**SMALL, "timeout": 1.0})
    result = run_in_sandbox("import time\ntime.sleep(60)", config, stdin="x" * 4 * 1024**2)
    assert result.status == "timeout" and result.duration < 10


def test_infinite_loop_hits_cpu_limit():
    result = run_in_sandbox("while True:\n    pass", SandboxConfig(**SMALL))
    assert result.status == "timeout"
    assert "CPU" in result.reason


def test_sleep_hits_wall_clock_timeout():
    result = run_in_sandbox("import time\ntime.sleep(60)", SandboxConfig(**{**SMALL, "timeout": 1.0}))
    assert result.status == "timeout" and "wall-clock" in result.reason
    assert result.duration < 10


def test_memory_bomb_is_reported_as_memory():
    result = run_in_sandbox(
        "chunks = []\nwhile True:\n    chunks.append(bytearray(32 * 1024**2))", SandboxConfig(**SMALL)
    )
    assert result.status == "memory"


def test_memory_status_cannot_be_faked_on_stderr():
    result = run_in_sandbox("import sys\nsys.stderr.write('MemoryError\\n')\nsys.exit(3)", SandboxConfig(**SMALL))
    assert result.status == "error" and result.returncode == 3


def test_fork_bomb_is_refused():
    result = run_in_sandbox("import os\nwhile True:\n    os.fork()", SandboxConfig(**SMALL))
    assert result.status == "error"
    assert "os.fork is blocked" in result.stderr
    result = run_in_sandbox("import subprocess\nsubprocess.run(['true'])", SandboxConfig(**SMALL))
    assert result.status == "error" and "blocked" in result.reason


# Bounded bombs: against an uncontained sandbox they stop at 64 children instead of taking the machine.
FORK_BOMB = """import os, time
n = 0
try:
    while n < 64:
        if os.fork() == 0:
            time.sleep(3)
            os._exit(0)
        n += 1
    print('uncapped', n)
except OSError:
    print('capped', n)
"""


def test_fork_bomb_with_subprocesses_allowed_is_capped_by_nproc():
    # Runs as root too: the child has its own unprivileged uid, for which the kernel applies RLIMIT_NPROC.
    result = run_in_sandbox(FORK_BOMB, SandboxConfig(**{**SMALL, "allow_subprocesses": True, "max_processes": 8}))
    assert result.stdout.startswith("capped"), (result.stdout, result.stderr, result.degraded)
    assert int(result.stdout.split()[1]) < 8


# Switches off the audit hook's process check without an audit event: subprocess calls sys.audit through
# its module global `sys`, and _posixsubprocess.fork_exec raises none of its own.
SILENT_SUBPROCESS = """import subprocess, sys, types
quiet = types.ModuleType('sys')
quiet.__dict__.update(sys.__dict__)
quiet.audit = lambda *args: None
subprocess.sys = quiet
"""


def test_escape_a_frames_cannot_switch_off_the_audit_hook(open_dir):
    target = open_dir / "a.txt"
    tamper = """import os, sys
frame = sys._getframe()
while frame.f_back is not None:
    frame = frame.f_back
    for space in (frame.f_globals, frame.f_locals):
        for name in list(space):
            if name.startswith('_BLOCK') or name in ('_inside', '_PROCESS'):
                space[name] = (lambda *a: True) if name == '_inside' else (set() if name == '_PROCESS' else False)
"""
    result = run_in_sandbox(tamper + f"open({str(target)!r}, 'w').write('escaped')", SandboxConfig(**SMALL))
    assert result.status == "error" and not target.exists()
    result = run_in_sandbox(tamper + "os.fork()\nprint('forked')", SandboxConfig(**SMALL))
    assert "os.fork is blocked" in result.stderr and "forked" not in result.stdout
    # and the bootstrap's frame is not handed out
    result = run_in_sandbox("import sys\nfor depth in range(1, 20):\n    sys._getframe(depth)", SandboxConfig(**SMALL))
    assert "sys._getframe of the sandbox bootstrap is blocked" in result.stderr, result.stderr


def test_escape_b_fork_exec_without_audit_event_is_contained(open_dir):
    target = open_dir / "b.txt"
    result = run_in_sandbox(SILENT_SUBPROCESS + f"subprocess.run(['touch', {str(target)!r}])", SandboxConfig(**SMALL))
    assert not target.exists(), result
    bomb = FORK_BOMB.replace(
        "if os.fork() == 0:\n            time.sleep(3)\n            os._exit(0)", "subprocess.Popen(['sleep', '3'])"
    )
    result = run_in_sandbox(SILENT_SUBPROCESS + bomb, SandboxConfig(**{**SMALL, "max_processes": 8}))
    assert result.stdout.startswith("capped"), (result.stdout, result.stderr)


def test_escape_c_open_with_dir_fd_cannot_write_outside(open_dir):
    target = open_dir / "c.txt"
    code = f"""import os
fd = os.open({str(open_dir)!r}, os.O_RDONLY | os.O_DIRECTORY)
os.close(os.open('c.txt', os.O_WRONLY | os.O_CREAT, dir_fd=fd))
"""
    result = run_in_sandbox(code, SandboxConfig(**SMALL))
    assert result.status == "error" and not target.exists()


def test_escape_d_sqlite_cannot_write_outside(open_dir):
    target = open_dir / "d.db"
    code = f"import sqlite3\nsqlite3.connect({str(target)!r}).execute('create table t (x)')"
    result = run_in_sandbox(code, SandboxConfig(**SMALL))
    assert result.status == "error" and not target.exists()
    assert "database outside the working directory is blocked" in result.stderr
    inside = run_in_sandbox(
        "import sqlite3\nc = sqlite3.connect('ok.db')\nc.execute('create table t (x)')\nprint('ok')",
        SandboxConfig(**SMALL),
    )
    assert inside.ok and inside.stdout.strip() == "ok", inside.stderr


@pytest.mark.skipif(shutil.which("nsenter") is None, reason="nsenter (util-linux) is not installed")
@pytest.mark.skipif(not network_isolation_available(), reason="unshare cannot create namespaces here")
def test_escape_e_cannot_enter_the_host_network_namespace(listener):
    port, accepted = listener
    connect = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2); print('connected')"
    code = f"""import subprocess, sys
r = subprocess.run(['nsenter', '--net=/proc/{os.getpid()}/ns/net', sys.executable, '-c', {connect!r}],
                   capture_output=True, text=True)
print(r.returncode, r.stdout, r.stderr)
"""
    result = run_in_sandbox(code, SandboxConfig(**{**SMALL, "allow_subprocesses": True}))
    assert "connected" not in result.stdout, result.stdout
    assert not accepted()


def test_network_call_fails(listener):
    port, accepted = listener
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')"
    result = run_in_sandbox(code, SandboxConfig(**SMALL))
    assert result.status == "error" and "connected" not in result.stdout
    assert not accepted()  # the host's loopback is out of reach, not just the internet
    expected = "namespace" if network_isolation_available() else "audit-hook"
    assert result.isolation == expected
    hooked = run_in_sandbox(code, SandboxConfig(**{**SMALL, "network": "audit-hook"}))
    assert hooked.status == "error" and "network access is blocked" in hooked.stderr
    assert not accepted()


@pytest.mark.skipif(not network_isolation_available(), reason="unshare cannot create namespaces here")
def test_network_namespace_has_no_route(listener):
    port, accepted = listener
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)"
    result = run_in_sandbox(code, SandboxConfig(**{**SMALL, "network": "namespace"}))
    assert result.isolation == "namespace" and "unreachable" in result.stderr.lower()
    assert not accepted()


def test_write_outside_directory_is_blocked(tmp_path):
    target = tmp_path / f"escape-{uuid.uuid4().hex}.txt"
    for code in (
        f"open({str(target)!r}, 'w').write('x')",
        f"import os\nos.open({str(target)!r}, os.O_WRONLY | os.O_CREAT)",
        f"open('../{target.name}', 'w')",
    ):
        result = run_in_sandbox(code, SandboxConfig(**SMALL))
        assert result.status == "error" and "outside the working directory" in result.stderr, code
    assert not target.exists()
    result = run_in_sandbox(f"import os\nos.remove({str(tmp_path)!r})", SandboxConfig(**SMALL))
    assert result.status == "error" and tmp_path.exists()


@pytest.mark.skipif(not network_isolation_available(), reason="unshare cannot create namespaces here")
def test_world_writable_places_are_not_writable():
    # os.open with dir_fd is invisible to the audit hook: only the mounts stop these
    code = """import os
for place in ('/tmp', '/var/tmp', '/dev/shm', '/run', '/'):
    if os.path.isdir(place):
        try:
            fd = os.open(place, os.O_RDONLY | os.O_DIRECTORY)
            os.close(os.open('probe', os.O_WRONLY | os.O_CREAT, dir_fd=fd))
            print('wrote', place)
        except OSError as error:
            print('refused', place, error.errno)
"""
    result = run_in_sandbox(code, SandboxConfig(**SMALL))
    assert result.ok and "wrote" not in result.stdout and result.stdout.count("refused") >= 2, result.stdout


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to become another user")
def test_unprivileged_caller_gets_a_user_namespace_without_capabilities(tmp_path):
    # The sandbox as an ordinary user would call it: load the package by path under uid 65534 with a
    # world-readable interpreter (an interpreter in a private home is not one), with pyseccomp when
    # this environment has it. Then the same user without namespaces, as in an unprivileged container.
    python = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}", path=os.defpath) or shutil.which(
        "python3", path=os.defpath
    )
    if python is None:
        pytest.skip("no system interpreter that uid 65534 can run")
    try:
        import pyseccomp

        pyseccomp_file = pyseccomp.__file__
    except (ImportError, OSError, RuntimeError):
        pyseccomp_file = None
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o777)
    victim.chmod(0o777)
    tmp_path.chmod(0o755)
    script = f"""import importlib.util, json, sys
def load(name, path, package):
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=[path.rsplit('/', 1)[0]] if package else None)
    module = importlib.util.module_from_spec(spec); sys.modules[name] = module; spec.loader.exec_module(module)
    return module
if {pyseccomp_file!r}:
    load('pyseccomp', {pyseccomp_file!r}, False)
sandbox = load('sandbox', {str(SANDBOX_DIR / "__init__.py")!r}, True)
code = "import os\\nfd = os.open({str(victim)!r}, os.O_RDONLY)\\nos.close(os.open('x', os.O_WRONLY | os.O_CREAT, dir_fd=fd))"
result = sandbox.run_in_sandbox(code, sandbox.SandboxConfig(timeout=5.0))
print(json.dumps([result.status, result.mechanisms, result.degraded]))
spawn = {SILENT_SUBPROCESS!r} + "subprocess.run(['touch', {str(victim / "y")!r}])"
try:
    result = sandbox.run_in_sandbox(spawn, sandbox.SandboxConfig(timeout=5.0, network='seccomp'))
    print(json.dumps([result.status, result.mechanisms, result.degraded]))
except RuntimeError as error:
    print(json.dumps(['refused', str(error)]))
"""
    run = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-I", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    if "Permission denied" in run.stderr and not run.stdout:
        pytest.skip(f"uid 65534 cannot run the test itself here: {run.stderr[-200:]}")
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(lines) == 2, (run.stdout, run.stderr)
    (status, mechanisms, degraded), without_namespaces = lines
    assert status == "error" and not (victim / "x").exists(), (run.stdout, run.stderr)
    if "netns" in mechanisms:
        assert "userns" in mechanisms and "no-capabilities" in mechanisms and not degraded, degraded
    else:
        assert degraded  # whatever is missing is said
    assert not (victim / "y").exists()
    if without_namespaces[0] == "refused":
        assert pyseccomp_file is None and "network='audit-hook'" in without_namespaces[1]
    else:
        status, mechanisms, degraded = without_namespaces
        assert status == "error" and "seccomp-no-processes" in mechanisms and "seccomp-no-network" in mechanisms
        assert any("the code runs as the invoking user" in line for line in degraded), degraded


def test_file_size_limit_and_output_cap():
    result = run_in_sandbox(
        "open('big', 'wb').write(b'x' * 10**6)", SandboxConfig(**{**SMALL, "max_file_bytes": 1000})
    )
    assert result.status in ("killed", "error") and result.status != "ok"
    result = run_in_sandbox("print('y' * 100000)", SandboxConfig(**SMALL))
    assert result.status == "killed" and len(result.stdout) <= 4096


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="network"):
        SandboxConfig(network="none")
    with pytest.raises(ValueError, match="memory_bytes"):
        SandboxConfig(memory_bytes=1024)


# Without namespaces: unprivileged containers where `unshare` fails (forced here by the probe), or
# network="seccomp" / "audit-hook" asked for by name. The escapes are the ones that got out of the
# degraded sandbox: a process started through `_posixsubprocess.fork_exec` (no audit event), a
# loopback connection, and a detached child still writing after `run_in_sandbox` returned.


@pytest.fixture
def no_namespaces(monkeypatch):
    """`unshare` fails, as in an unprivileged container."""
    real = runner._first_working
    monkeypatch.setattr(runner, "_first_working", lambda ns, drop: (None, "forced off") if ns else real(ns, drop))
    runner._plan.cache_clear()
    yield
    runner._plan.cache_clear()


@pytest.fixture
def no_seccomp(monkeypatch):
    """No usable seccomp (no pyseccomp, no libseccomp, or a kernel without filters)."""
    monkeypatch.setattr(seccomp, "unavailable_reason", lambda: "forced off")
    runner._plan.cache_clear()
    yield
    runner._plan.cache_clear()


needs_seccomp = pytest.mark.skipif(seccomp.unavailable_reason() is not None, reason="seccomp is unavailable here")


@needs_seccomp
def test_auto_without_namespaces_uses_seccomp_and_says_what_it_leaves_open(no_namespaces):
    result = run_in_sandbox("print('hi')", SandboxConfig(**SMALL))
    assert result.ok and result.isolation == "seccomp", result.stderr
    assert {"seccomp-no-network", "seccomp-no-processes", "seccomp-process-group"} <= set(result.mechanisms)
    assert "netns" not in result.mechanisms
    (line,) = [line for line in result.degraded if line.startswith("no namespaces")]
    assert "forced off" in line and "/tmp" in line and "outside its disk quota" in line
    assert not any("network" in line for line in result.degraded)  # the network is cut: nothing to say


def test_auto_refuses_when_neither_namespaces_nor_seccomp_work(no_namespaces, no_seccomp):
    with pytest.raises(RuntimeError) as error:
        run_in_sandbox("print('hi')", SandboxConfig(**SMALL))
    message = str(error.value)
    assert "no namespaces (forced off)" in message and "no seccomp (forced off)" in message
    assert "pyseccomp" in message and "network='audit-hook'" in message  # what to install, and the opt-in
    with pytest.raises(RuntimeError, match="network='seccomp'"):
        run_in_sandbox("print('hi')", SandboxConfig(**{**SMALL, "network": "seccomp"}))
    # asked for by name, the weak mode runs and says what it leaves open
    result = run_in_sandbox("print('hi')", SandboxConfig(**{**SMALL, "network": "audit-hook"}))
    assert result.ok and result.isolation == "audit-hook"
    assert any(line.startswith("the network is cut by the Python audit hook only") for line in result.degraded)


# Each degraded mode with subprocesses off: seccomp where it works, else RLIMIT_NPROC=1 (root drops
# to a private uid here, for which the kernel applies it).
DEGRADED = [
    pytest.param("seccomp", False, id="seccomp", marks=needs_seccomp),
    pytest.param("audit-hook", False, id="audit-hook+seccomp", marks=needs_seccomp),
    pytest.param("audit-hook", True, id="audit-hook+nproc"),
]


@pytest.mark.parametrize("network,without_seccomp", DEGRADED)
def test_degraded_mode_starts_no_process_when_subprocesses_are_off(
    request, network, without_seccomp, listener, open_dir
):
    if without_seccomp:
        request.getfixturevalue("no_seccomp")
    if os.geteuid() == 0 and "uid-drop" not in sandbox_support(network)["mechanisms"]:
        pytest.skip("root without setpriv: RLIMIT_NPROC does not apply to the child (said in `degraded`)")
    port, accepted = listener
    connect = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)"
    code = (
        SILENT_SUBPROCESS
        + f"""import os, _posixsubprocess
for argv in (['touch', {str(open_dir / "spawned")!r}], ['python3', '-c', {connect!r}]):
    try:
        subprocess.run(argv, timeout=5)
        print('started', argv[0])
    except OSError as error:
        print('refused', argv[0], error.errno)
"""
    )
    result = run_in_sandbox(code, SandboxConfig(**{**SMALL, "network": network}))
    assert result.stdout.count("refused") == 2 and "started" not in result.stdout, (result.stdout, result.stderr)
    assert not (open_dir / "spawned").exists() and not accepted()
    expected = "rlimit-nproc=1" if without_seccomp else "seccomp-no-processes"
    assert expected in result.mechanisms and result.isolation == network
    if without_seccomp:  # the price of RLIMIT_NPROC=1 is said
        assert any("cannot start threads" in line for line in result.degraded), result.degraded
    else:
        threads = "import threading\nt = threading.Thread(target=print, args=('thread',))\nt.start()\nt.join()"
        assert run_in_sandbox(threads, SandboxConfig(**{**SMALL, "network": network})).stdout == "thread\n"


@needs_seccomp
def test_seccomp_mode_cuts_the_network_for_the_code_and_every_child(listener):
    port, accepted = listener
    # allow_subprocesses=True also lets ctypes past the audit hook: only the kernel stands in the way
    code = f"""import ctypes, errno, subprocess
libc = ctypes.CDLL(None, use_errno=True)
print('socket', libc.socket(2, 1, 0), errno.errorcode.get(ctypes.get_errno()))
child = subprocess.run(['python3', '-c', "import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)"],
                       capture_output=True, text=True)
print('child', child.returncode, child.stderr.strip().splitlines()[-1])
"""
    config = SandboxConfig(**{**SMALL, "network": "seccomp", "allow_subprocesses": True})
    result = run_in_sandbox(code, config)
    assert result.ok, result.stderr
    assert "socket -1 EPERM" in result.stdout and "Operation not permitted" in result.stdout, result.stdout
    assert not accepted()
    assert "seccomp-no-network" in result.mechanisms and "seccomp-no-processes" not in result.mechanisms


# A double fork into a new session: the grandchild writes a new file outside the working directory every
# 0.1 s for 4 s, long after the run would return.
DETACHED = """import os, time
if os.fork() == 0:
    try:
        os.setsid()
    except OSError as error:
        print('setsid refused', error.errno, flush=True)
    if os.fork() == 0:
        null = os.open(os.devnull, os.O_RDWR)
        for stream in (0, 1, 2):  # as a daemon does: nothing holds the run's pipes open
            os.dup2(null, stream)
        fd = os.open({directory!r}, os.O_RDONLY)
        for i in range(40):
            os.close(os.open('late%d' % i, os.O_WRONLY | os.O_CREAT, dir_fd=fd))
            time.sleep(0.1)
    os._exit(0)
os.wait()
time.sleep(0.3)
"""


@pytest.mark.parametrize(
    "network,without_seccomp",
    [
        pytest.param("seccomp", False, id="seccomp", marks=needs_seccomp),
        pytest.param("audit-hook", True, id="uid-sweep"),
    ],
)
def test_no_detached_child_outlives_the_run(request, network, without_seccomp, open_dir):
    if without_seccomp:
        request.getfixturevalue("no_seccomp")
        if "uid-sweep" not in sandbox_support(network, allow_subprocesses=True)["mechanisms"]:
            pytest.skip("no private uid to sweep: a child that calls setsid can outlive the run (said in `degraded`)")
    config = SandboxConfig(**{**SMALL, "network": network, "allow_subprocesses": True})
    result = run_in_sandbox(DETACHED.format(directory=str(open_dir)), config)
    written = set(os.listdir(open_dir))
    assert result.ok and written, (result.stderr, written)  # the grandchild ran while the run did
    assert ("setsid refused" in result.stdout) == (not without_seccomp)
    time.sleep(0.6)
    assert set(os.listdir(open_dir)) == written, (result.mechanisms, result.degraded)


# The status is what the parent observed, whatever the code exits with or signals to itself.


def test_status_cannot_be_forged_by_the_exit_code_or_a_signal():
    for code in (96, 97, 98):  # the bootstrap's own codes for setup failure, MemoryError and the CPU limit
        result = run_in_sandbox(f"import os\nos._exit({code})", SandboxConfig(**SMALL))
        assert (result.status, result.returncode) == ("error", code), (code, result.status, result.reason)
        assert result.cpu_time < SMALL["cpu_seconds"] / 2
    for name in ("SIGXCPU", "SIGKILL"):  # what the kernel sends at the CPU limit
        result = run_in_sandbox(f"import signal\nsignal.raise_signal(signal.{name})", SandboxConfig(**SMALL))
        assert result.status in ("ok", "error", "killed"), (name, result.status, result.reason)
    # and the real limits still read as such, with the parent's measurements in the result
    result = run_in_sandbox("while True:\n    pass", SandboxConfig(**SMALL))
    assert result.status == "timeout" and result.cpu_time >= 0.9 * SMALL["cpu_seconds"]
    result = run_in_sandbox(
        "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024**2))", SandboxConfig(**SMALL)
    )
    assert result.status == "memory" and result.peak_rss_bytes >= SMALL["memory_bytes"] // 2, result


# The disk quota: the parent measures the working directory while the run goes and after it ends.


def test_disk_quota_stops_a_run_that_writes_past_it():
    quota = dict(SMALL, max_disk_bytes=1024**2, max_file_bytes=256 * 1024)
    writer = "import itertools\nfor i in itertools.count():\n    open(f'f{i}', 'wb').write(b'x' * 256 * 1024)"
    result = run_in_sandbox(writer, SandboxConfig(**quota))
    assert result.status == "disk" and "quota of 1048576 bytes" in result.reason, (result.status, result.reason)
    assert result.disk_bytes > 1024**2 and result.duration < SMALL["timeout"]
    # a flood of empty files counts too (each at least one block)
    flood = "import itertools\nfor i in itertools.count():\n    open(f'e{i}', 'w').close()"
    assert run_in_sandbox(flood, SandboxConfig(**quota)).status == "disk"
    # a burst that ends before the parent looks is caught by the look after the run
    burst = "for i in range(8):\n    open(f'b{i}', 'wb').write(b'x' * 256 * 1024)"
    assert run_in_sandbox(burst, SandboxConfig(**quota)).status == "disk"
    # under the quota nothing changes; the files handed in do not count
    under = "for i in range(2):\n    open(f'u{i}', 'wb').write(b'x' * 256 * 1024)\nprint('done')"
    result = run_in_sandbox(under, SandboxConfig(**quota), files={"data.txt": "y" * 2 * 1024**2})
    assert result.ok and result.stdout == "done\n", (result.status, result.reason)
    assert 512 * 1024 <= result.disk_bytes <= 1024**2
    with pytest.raises(ValueError, match="max_disk_bytes"):
        SandboxConfig(max_disk_bytes=-1)
