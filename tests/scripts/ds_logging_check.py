"""Run under `accelerate launch` (2 processes): a logging window in which rank 1 has no halted
example while rank 0 halts every example. Both processes must log the same metrics (the averages
over rank 0's halted examples), not hang or crash on all-reduces of different lengths."""

import json
import os
import sys

import torch
from datasets import Dataset

from hf_reason import TRMConfig, TRMForPuzzleSolving
from hf_reason.distributed import end_distributed
from hf_reason.trainers import DeepSupervisionConfig, DeepSupervisionTrainer


def main(out_dir: str) -> None:
    rank = int(os.environ["RANK"])
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randint(2, 11, (64, 16), generator=gen)
    dataset = Dataset.from_dict({"input_ids": inputs.tolist(), "labels": ((inputs - 1) % 9 + 2).tolist()})
    # The step limit is configuration, not a parameter, so DDP lets it differ between processes:
    # rank 0 halts every example at its first step; rank 1 (limit 8 > the 4 steps run, head biased
    # against halting, no exploration) never halts.
    config = TRMConfig(
        vocab_size=11,
        seq_len=16,
        hidden_size=32,
        num_heads=2,
        intermediate_size=64,
        L_layers=1,
        H_cycles=1,
        L_cycles=1,
        halt_max_steps=1 if rank == 0 else 8,
        halt_exploration_prob=0.0,
    )
    args = DeepSupervisionConfig(
        output_dir=os.path.join(out_dir, "run"),
        per_device_train_batch_size=4,
        max_steps=4,
        learning_rate=1e-3,
        warmup_steps=0,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        logging_steps=2,
    )
    trainer = DeepSupervisionTrainer(model=TRMForPuzzleSolving(config), args=args, train_dataset=dataset)
    trainer.train()
    result = {
        "rank": rank,
        "world_size": trainer.args.world_size,
        "final_steps": trainer._carry.steps.tolist(),
        "logs": [h for h in trainer.state.log_history if "lm_loss" in h],
    }
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
    end_distributed()
