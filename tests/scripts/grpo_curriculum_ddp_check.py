"""ReasoningGRPOTrainer with a difficulty curriculum under `accelerate launch` (2 processes).

A run of 4 steps; each rank writes the prompts and difficulties its reward function saw per step to `rank{r}.json`.
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


def run(out_dir: str, tokenizer) -> list:
    seen = []

    def recording_reward(prompts, completions, num_ops, **kwargs):
        seen.append([list(prompts), list(num_ops)])
        return [float(len(c)) for c in completions]

    args = ReasoningGRPOConfig(
        output_dir=out_dir,
        per_device_train_batch_size=4,
        max_completion_length=6,
        max_steps=4,
        difficulty_column="num_ops",
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
    return seen


def main(out_dir: str) -> None:
    tokenizer = build_tokenizer(vocab_size=320)
    seen = run(os.path.join(out_dir, "run"), tokenizer)
    atomic_write_json(os.path.join(out_dir, f"rank{int(os.environ.get('RANK', 0))}.json"), {"steps": seen})


if __name__ == "__main__":
    main(sys.argv[1])
    end_distributed()
