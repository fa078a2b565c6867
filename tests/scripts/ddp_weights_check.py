"""Run under `accelerate launch` (2 processes): trains a tiny TRM a few steps with the
DeepSupervisionTrainer and writes each rank's weight checksum, data and carry to JSON."""

import hashlib
import json
import os
import sys

import torch
from datasets import Dataset

from hf_reason import TRMConfig, TRMForPuzzleSolving
from hf_reason.distributed import end_distributed
from hf_reason.trainers import DeepSupervisionConfig, DeepSupervisionTrainer


def main(out_dir: str) -> None:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randint(2, 11, (64, 16), generator=gen)
    dataset = Dataset.from_dict({"input_ids": inputs.tolist(), "labels": ((inputs - 1) % 9 + 2).tolist()})
    config = TRMConfig(
        vocab_size=11,
        seq_len=16,
        hidden_size=32,
        num_heads=2,
        intermediate_size=64,
        L_layers=1,
        H_cycles=2,
        L_cycles=2,
        halt_max_steps=3,
        halt_exploration_prob=0.3,
    )
    args = DeepSupervisionConfig(
        output_dir=os.path.join(out_dir, "run"),
        per_device_train_batch_size=4,
        max_steps=4,
        learning_rate=1e-2,
        warmup_steps=0,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        logging_steps=2,
    )
    trainer = DeepSupervisionTrainer(model=TRMForPuzzleSolving(config), args=args, train_dataset=dataset)
    trainer.train()
    digest = hashlib.sha256()
    for name, tensor in sorted(trainer.model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().numpy().tobytes())
    rank = trainer.args.process_index
    result = {
        "rank": rank,
        "world_size": trainer.args.world_size,
        "weights_sha256": digest.hexdigest(),
        "first_rows": trainer._current["input_ids"][:, 0].tolist(),
        "logged_loss": [h["loss"] for h in trainer.state.log_history if "loss" in h],
    }
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
    end_distributed()
