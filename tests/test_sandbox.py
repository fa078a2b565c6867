"""Containment cases for the untrusted-code sandbox: each is stopped and reported, quickly."""

import os
import sys
import uuid

import pytest

from hf_reason.evaluation.sandbox import SandboxConfig, network_isolation_available, run_in_sandbox

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is Linux-only")

SMALL = dict(timeout=4.0, cpu_seconds=1, memory_bytes=192 * 1024**2, max_output_bytes=4096)


def test_ok_run_captures_output_and_files_stay_inside():
    result = run_in_sandbox("open('a.txt', 'w').write('hi')\nprint(open('a.txt').read(), input())",
                            SandboxConfig(**SMALL), stdin="there\n")
    assert result.status == "ok" and result.returncode == 0
    assert result.stdout.strip() == "hi there"


def test_infinite_loop_hits_cpu_limit():
    result = run_in_sandbox("while True:\n    pass", SandboxConfig(**SMALL))
    assert result.status == "timeout"
    assert "CPU" in result.reason


def test_sleep_hits_wall_clock_timeout():
    result = run_in_sandbox("import time\ntime.sleep(60)", SandboxConfig(**{**SMALL, "timeout": 1.0}))
    assert result.status == "timeout" and "wall-clock" in result.reason
    assert result.duration < 10


def test_memory_bomb_is_reported_as_memory():
    result = run_in_sandbox("chunks = []\nwhile True:\n    chunks.append(bytearray(32 * 1024**2))",
                            SandboxConfig(**SMALL))
    assert result.status == "memory"


def test_fork_bomb_is_refused():
    result = run_in_sandbox("import os\nwhile True:\n    os.fork()", SandboxConfig(**SMALL))
    assert result.status == "error"
    assert "os.fork is blocked" in result.stderr
    result = run_in_sandbox("import subprocess\nsubprocess.run(['true'])", SandboxConfig(**SMALL))
    assert result.status == "error" and "blocked" in result.reason


@pytest.mark.skipif(os.geteuid() == 0, reason="the kernel does not enforce RLIMIT_NPROC for root")
def test_fork_bomb_with_subprocesses_allowed_is_capped_by_nproc():
    code = "import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(5)\n"
    code += "            os._exit(0)\n        n += 1\nexcept OSError:\n    print('capped', n)\n"
    result = run_in_sandbox(code, SandboxConfig(**{**SMALL, "allow_subprocesses": True, "max_processes": 8}))
    assert "capped" in result.stdout


def test_network_call_fails():
    code = "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)"
    result = run_in_sandbox(code, SandboxConfig(**SMALL))
    assert result.status == "error"
    expected = "namespace" if network_isolation_available() else "audit-hook"
    assert result.isolation == expected
    hooked = run_in_sandbox(code, SandboxConfig(**{**SMALL, "network": "audit-hook"}))
    assert hooked.status == "error" and "network access is blocked" in hooked.stderr


@pytest.mark.skipif(not network_isolation_available(), reason="unshare cannot create namespaces here")
def test_network_namespace_has_no_route():
    code = "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)"
    result = run_in_sandbox(code, SandboxConfig(**{**SMALL, "network": "namespace"}))
    assert result.isolation == "namespace" and "unreachable" in result.stderr.lower()


def test_write_outside_directory_is_blocked(tmp_path):
    target = tmp_path / f"escape-{uuid.uuid4().hex}.txt"
    for code in (f"open({str(target)!r}, 'w').write('x')",
                 f"import os\nos.open({str(target)!r}, os.O_WRONLY | os.O_CREAT)",
                 f"open('../{target.name}', 'w')"):
        result = run_in_sandbox(code, SandboxConfig(**SMALL))
        assert result.status == "error" and "outside the working directory" in result.stderr, code
    assert not target.exists()
    result = run_in_sandbox(f"import os\nos.remove({str(tmp_path)!r})", SandboxConfig(**SMALL))
    assert result.status == "error" and tmp_path.exists()


def test_file_size_limit_and_output_cap():
    result = run_in_sandbox("open('big', 'wb').write(b'x' * 10**6)", SandboxConfig(**{**SMALL, "max_file_bytes": 1000}))
    assert result.status in ("killed", "error") and result.status != "ok"
    result = run_in_sandbox("print('y' * 100000)", SandboxConfig(**SMALL))
    assert result.status == "killed" and len(result.stdout) <= 4096


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="network"):
        SandboxConfig(network="none")
    with pytest.raises(ValueError, match="memory_bytes"):
        SandboxConfig(memory_bytes=1024)
