import os

# Nothing in the suite may reach the network (the Hub is unreachable here anyway).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

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


@pytest.fixture
def tiny_config():
    return tiny_trm_config()
