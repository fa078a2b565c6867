import os
import subprocess
import sys
import textwrap
from pathlib import Path


# Nothing in the suite may reach the network (the Hub is unreachable here anyway).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from hf_reason import TRMConfig  # noqa: E402


torch.set_num_threads(1)  # tests run two at a time (pytest -n 2) on two cores


def tiny_trm_config(**overrides) -> TRMConfig:
    """A TRM small enough for seconds-long tests (hidden 32, one layer)."""
    kwargs = dict(
        vocab_size=11,
        seq_len=16,
        hidden_size=32,
        num_heads=2,
        intermediate_size=64,
        L_layers=1,
        H_cycles=2,
        L_cycles=2,
        halt_max_steps=4,
        halt_exploration_prob=0.0,
    )
    kwargs.update(overrides)
    return TRMConfig(**kwargs)


# The TRM examples' model and batch flags for a model that trains in seconds.
TINY_TRM_FLAGS = [
    "--hidden_size",
    "32",
    "--num_heads",
    "2",
    "--L_layers",
    "1",
    "--H_cycles",
    "1",
    "--L_cycles",
    "1",
    "--halt_max_steps",
    "2",
    "--expansion",
    "1",
    "--per_device_train_batch_size",
    "4",
    "--per_device_eval_batch_size",
    "4",
]


# ----------------------------------------------------------------------------- checkpoints
class KilledWhileSaving(BaseException):
    """Stands for a kill -9: raised from inside a save, caught by nothing on its way out."""


class StepsTaken(TrainerCallback):
    """Records the global step at the end of every optimizer step a run takes."""

    def __init__(self):
        self.taken = []

    def on_step_end(self, args, state, control, **kwargs):
        self.taken.append(state.global_step)


def kill_before_the_state_file(trainer, step: int) -> None:
    """Makes `trainer` die while saving checkpoint-`step`: after the Trainer's own files (where the
    stock Trainer rotates old checkpoints) and before the state file that marks it complete."""
    save_files = trainer._save_checkpoint_files

    def save_then_die(folder):
        save_files(folder)
        if trainer.state.global_step == step:
            raise KilledWhileSaving

    trainer._save_checkpoint_files = save_then_die


@pytest.fixture(autouse=True)
def _restore_environment():
    """Undoes what a test leaves in os.environ. TrainingArguments with bf16 (TRL configs default to
    it) sets ACCELERATE_MIXED_PRECISION=bf16 for the whole process, so every later Trainer in the same
    pytest worker would autocast, whatever its own arguments say."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def tiny_config():
    return tiny_trm_config()


# Prepended to every script of `run_without_hf_reason`: hf_reason cannot be imported, whatever
# sys.path holds (an editable install would otherwise put the repository back on it).
_BLOCK_HF_REASON = """
import importlib.abc, os, sys
class BlockHfReason(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "hf_reason" or name.startswith("hf_reason."):
            raise ImportError("hf_reason is not installed in this process")
sys.meta_path.insert(0, BlockHfReason())
sys.path = [p for p in sys.path if not os.path.isdir(os.path.join(p or ".", "hf_reason"))]
try:
    import hf_reason  # noqa: F401
    raise SystemExit("hf_reason is importable: the test would prove nothing")
except ImportError:
    pass
"""
_NOTHING_IMPORTED = """
assert not [m for m in sys.modules if m.startswith("hf_reason")], "the script imported hf_reason"
"""


def run_without_hf_reason(script: str, cwd, env=None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Runs `script` in a fresh Python where hf_reason cannot be imported, as for a user of a Hub
    checkpoint who does not have it installed, and fails the test if the script fails."""
    code = _BLOCK_HF_REASON + textwrap.dedent(script) + _NOTHING_IMPORTED
    env = {**os.environ, "HF_MODULES_CACHE": str(Path(cwd) / "modules"), "PYTHONPATH": "", **(env or {})}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


REPO_ROOT = Path(__file__).resolve().parents[1]


def accelerate_launch(
    *args: str, cwd=REPO_ROOT, timeout: float = 600, config: str = "cpu_2proc.yaml", launch_args=()
) -> subprocess.CompletedProcess:
    """`accelerate launch` with a shipped config (by default the 2-process CPU one) and `launch_args`
    (flags of `accelerate launch` that override the config) on a free port (fixed ports collided when
    two of these tests ran at once under pytest-xdist)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    cmd = [
        str(Path(sys.executable).parent / "accelerate"),
        "launch",
        "--config_file",
        str(REPO_ROOT / "accelerate_configs" / config),
        "--main_process_port",
        str(port),
        *launch_args,
        *args,
    ]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
