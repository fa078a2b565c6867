"""Run under `accelerate launch` (2 processes): trains DQN halting Q-heads with the hand-written
Q-head gradient averaging of DQNHaltingTrainer and writes what each rank ended with to
`OUT_DIR/rank<r>.json`:

- table mode (frozen TRM, precomputed trajectories): digests of the Q-head and target network
  before and after training, and the trajectory indices this rank rolled out first;
- online joint training (`freeze_trm=False`, the TRM under DDP, the Q-head averaged by hand):
  digests of every weight;
- examples/train_halting_dqn.py end to end on a saved tiny TRM (its evaluation metrics).
"""

import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path

import torch
from datasets import Dataset

from hf_reason import TRMConfig, TRMForPuzzleSolving
from hf_reason.distributed import end_distributed
from hf_reason.trainers import DQNHaltingConfig, DQNHaltingTrainer


ROOT = Path(__file__).resolve().parents[2]


def digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def tiny_trm(seed: int, **overrides) -> TRMForPuzzleSolving:
    torch.manual_seed(seed)
    config = dict(
        vocab_size=11,
        seq_len=16,
        hidden_size=32,
        num_heads=2,
        intermediate_size=64,
        L_layers=1,
        H_cycles=1,
        L_cycles=2,
        halt_max_steps=3,
        halt_exploration_prob=0.0,
        q_head_type="mlp",
        q_head_hidden_size=16,
    )
    config.update(overrides)
    return TRMForPuzzleSolving(TRMConfig(**config))


def puzzles(num: int) -> Dataset:
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randint(1, 11, (num, 16), generator=gen)
    return Dataset.from_dict({"input_ids": inputs.tolist(), "labels": ((inputs % 10) + 1).tolist()})


def args(out_dir: str, name: str, **overrides) -> DQNHaltingConfig:
    kwargs = dict(
        output_dir=os.path.join(out_dir, name),
        per_device_train_batch_size=8,
        max_steps=8,
        learning_starts=8,
        dqn_batch_size=16,
        epsilon_steps=4,
        learning_rate=1e-2,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        logging_steps=4,
        seed=0,
    )
    kwargs.update(overrides)
    return DQNHaltingConfig(**kwargs)


class FirstBatch(DQNHaltingTrainer):
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not hasattr(self, "first_indices") and "trajectory_index" in inputs:
            self.first_indices = inputs["trajectory_index"].tolist()
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


def main(out_dir: str) -> None:
    data = puzzles(64)
    result = {}

    model = tiny_trm(seed=0)
    table = FirstBatch(model=model, args=args(out_dir, "table"), train_dataset=data)
    with torch.no_grad():  # a head that is not at its zero init, so the TD errors differ per rank
        for p in model.q_head.parameters():
            p.normal_(0, 0.2, generator=torch.Generator().manual_seed(p.numel()))
    table.target_q_head.load_state_dict(model.q_head.state_dict())
    result["table_head_before"] = digest(model.q_head)
    trm_before = digest(model.model)
    table.train()
    result.update(
        rank=table.args.process_index,
        world_size=table.args.world_size,
        table_head_after=digest(model.q_head),
        table_target_after=digest(table.target_q_head),
        table_trm_unchanged=digest(model.model) == trm_before,
        table_first_indices=table.first_indices,
        table_buffer_added=table.buffer.added,
    )

    model = tiny_trm(seed=1)
    joint = DQNHaltingTrainer(
        model=model,
        args=args(out_dir, "joint", freeze_trm=False, precompute_trajectories=False, max_steps=4, learning_starts=4),
        train_dataset=data,
    )
    before, head_before = digest(model), digest(model.q_head)
    joint.train()
    result.update(
        joint_before=before,
        joint_head_before=head_before,
        joint_after=digest(model),
        joint_head_after=digest(model.q_head),
    )

    trm_dir = os.path.join(out_dir, "trm")
    if table.args.process_index == 0:
        tiny_trm(seed=2, vocab_size=6).save_pretrained(trm_dir)
    table.accelerator.wait_for_everyone()
    spec = importlib.util.spec_from_file_location("train_halting_dqn", ROOT / "examples" / "train_halting_dqn.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    metrics = example.main(
        [
            "--model_name_or_path",
            trm_dir,
            "--output_dir",
            os.path.join(out_dir, "example"),
            "--size",
            "4",
            "--min_givens",
            "8",
            "--num_train_puzzles",
            "32",
            "--num_eval_puzzles",
            "8",
            "--q_head_type",
            "gru",
            "--per_device_train_batch_size",
            "8",
            "--max_steps",
            "4",
            "--learning_starts",
            "8",
            "--dqn_batch_size",
            "8",
            "--disable_tqdm",
            "true",
        ]
    )
    result["example_metrics"] = metrics
    with open(os.path.join(out_dir, f"rank{result['rank']}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])
    end_distributed()
