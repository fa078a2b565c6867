"""ReasoningGRPOTrainer with a difficulty curriculum under `accelerate launch` (2 processes).

A run of 4 steps; each rank writes the prompts and difficulties its reward function saw per step, and the chunks at
which buckets unlocked, to `rank{r}.json`. With `pass_rate` as the second argument the curriculum follows the pass
rate, and the reward is 1 on rank 0's rollouts and 0 on rank 1's: only the gathered rollouts pass at rate 0.5, so
both ranks unlock together only if each counts the other's.
(The resumed run is tested on one process: transformers 4.57 loads a checkpoint's optimizer state with
`map_location=args.device`, which torch cannot restore to on a multi-process CPU run.)
"""

import os
import sys
from pathlib import Path

from hf_reason.data import build_tokenizer
from hf_reason.distributed import end_distributed
from hf_reason.file_io import atomic_write_json
from hf_reason.trainers import ReasoningGRPOConfig, ReasoningGRPOTrainer


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' tiny models and data
from grpo_ddp_check import COMMON_ARGS  # noqa: E402  (this folder is on the path: the script's own)
from grpo_testing import leveled_arithmetic, tiny_gpt2  # noqa: E402


def run(out_dir: str, tokenizer, schedule: str) -> tuple[list, list]:
    seen = []
    rank = int(os.environ.get("RANK", 0))

    def recording_reward(prompts, completions, num_ops, **kwargs):
        seen.append([list(prompts), list(num_ops)])
        if schedule == "pass_rate":
            return [1.0 if rank == 0 else 0.0] * len(completions)
        return [float(len(c)) for c in completions]

    args = ReasoningGRPOConfig(
        output_dir=out_dir,
        per_device_train_batch_size=4,
        max_completion_length=6,
        max_steps=4,
        difficulty_column="num_ops",
        curriculum_schedule=schedule,
        curriculum_pass_threshold=0.5,
        curriculum_pass_window=8,
        **COMMON_ARGS,
    )
    trainer = ReasoningGRPOTrainer(
        model=tiny_gpt2(tokenizer),
        reward_funcs=recording_reward,
        args=args,
        processing_class=tokenizer,
        train_dataset=leveled_arithmetic(),
    )
    trainer.train()
    return seen, trainer.curriculum_sampler.unlock_chunks


def main(out_dir: str, schedule: str = "rating") -> None:
    tokenizer = build_tokenizer(vocab_size=320)
    seen, unlocks = run(os.path.join(out_dir, "run"), tokenizer, schedule)
    rank = int(os.environ.get("RANK", 0))
    atomic_write_json(os.path.join(out_dir, f"rank{rank}.json"), {"steps": seen, "unlock_chunks": unlocks})


if __name__ == "__main__":
    main(*sys.argv[1:3])
    end_distributed()
