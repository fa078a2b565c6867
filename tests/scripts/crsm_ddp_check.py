"""Run under `accelerate launch` (2 processes): checks examples/train_crsm.py's hand-written gradient
averaging on parameters used on both, one or no process, then trains a tiny CRSM through all four
stages and writes what each rank saw to `OUT_DIR/rank<r>.json`."""

import importlib.util
import json
import os
import sys
from pathlib import Path

import torch
from accelerate import Accelerator

from hf_reason.distributed import end_distributed


SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "train_crsm.py"


def load_example():
    spec = importlib.util.spec_from_file_location("train_crsm", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(out_dir: str) -> None:
    example = load_example()
    accelerator = Accelerator(cpu=True)
    rank = accelerator.process_index
    # `both` is used on every rank, `rank0_only` only on rank 0, `unused` nowhere.
    both, rank0_only, unused = (torch.nn.Parameter(torch.zeros(3)) for _ in range(3))
    loss = (both * (rank + 1)).sum()
    if rank == 0:
        loss = loss + (rank0_only * 4.0).sum()
    loss.backward()
    example.average_gradients(accelerator, [both, rank0_only, unused])
    grads = {
        name: None if p.grad is None else p.grad.tolist()
        for name, p in (("both", both), ("rank0_only", rank0_only), ("unused", unused))
    }

    run_dir = os.path.join(out_dir, "run")
    final = example.main(
        [
            "--output_dir",
            run_dir,
            "--hidden_size",
            "32",
            "--num_hidden_layers",
            "1",
            "--state_size",
            "4",
            "--vocab_size",
            "300",
            "--batch_size",
            "2",
            "--seq_len",
            "24",
            "--max_new_tokens",
            "6",
            "--dynamics_len",
            "6",
            "--teacher_tokens",
            "3",
            "--save_steps",
            "100",
            "--logging_steps",
            "1",
            "--lm_steps",
            "3",
            "--value_steps",
            "2",
            "--dynamics_steps",
            "2",
            "--joint_steps",
            "2",
            "--use_cpu",
            "true",
        ]
    )
    result = {"rank": rank, "world_size": accelerator.num_processes, "grads": grads, "final": final}
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
    end_distributed()
