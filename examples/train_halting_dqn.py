"""Learn when a trained TRM should stop: DQN halting on generated Sudoku.

    python examples/train_halting_dqn.py --model_name_or_path outputs/demo/trm-sudoku \
        --output_dir runs/dqn-halting --q_head_type mlp --max_steps 2000
    accelerate launch --config_file accelerate_configs/cpu_2proc.yaml examples/train_halting_dqn.py \
        --model_name_or_path outputs/demo/trm-sudoku --output_dir runs/dqn-halting

The TRM (from `make demo` or examples/train_trm_sudoku.py) gets a fresh halting Q-head of
`--q_head_type` and is frozen by default; DQNHaltingTrainer precomputes every supervision step of
the training puzzles, learns the head by DQN, scores the greedy policy on held-out puzzles
(exact accuracy with its Wilson 95% interval, mean supervision steps, premature halts) and saves
the model with `halting="dqn"`, so `model.solve(...)` stops where the head says.
Every flag is listed by --help (script flags, then DQNHaltingConfig / TrainingArguments flags).
With `--save_strategy steps`, `--resume_from_checkpoint last` continues from the newest complete
checkpoint in --output_dir.
"""

import os
from dataclasses import dataclass, field
from typing import Optional


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402
from transformers import HfArgumentParser, enable_full_determinism, set_seed  # noqa: E402

from hf_reason import AutoModelForPuzzleSolving  # noqa: E402
from hf_reason.data.sudoku import generate_sudoku  # noqa: E402
from hf_reason.distributed import end_distributed  # noqa: E402
from hf_reason.evaluation.statistics import format_proportion  # noqa: E402
from hf_reason.trainers import DQNHaltingConfig, DQNHaltingTrainer, resolve_resume_checkpoint  # noqa: E402


@dataclass
class HaltingArguments:
    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "Trained TRM checkpoint (directory) whose halting is learned. Required."}
    )
    q_head_type: str = field(
        default="mlp", metadata={"help": "Q-head to learn: 'linear', 'mlp', 'gru' or 'attention'."}
    )
    q_head_hidden_size: int = field(default=64, metadata={"help": "Width of the mlp / gru / attention head."})
    size: int = field(default=9, metadata={"help": "Sudoku side (9 or 4); must match the TRM's seq_len."})
    num_train_puzzles: int = field(default=3000, metadata={"help": "Generated puzzles the policy learns on."})
    num_eval_puzzles: int = field(default=300, metadata={"help": "Held-out puzzles (another seed) for evaluation."})
    min_givens: Optional[int] = field(default=45, metadata={"help": "Givens per puzzle (None: minimal puzzles)."})
    data_seed_offset: int = field(default=0, metadata={"help": "Added to --seed for data generation."})


def main(argv=None):
    """Runs the example; `argv` (a list of flags) defaults to the command line."""
    parser = HfArgumentParser((HaltingArguments, DQNHaltingConfig))
    parser.set_defaults(use_cpu=not torch.cuda.is_available(), report_to="none", save_strategy="no")
    script_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    # Before the new Q-head is built: the Trainer seeds itself only once the model exists.
    (enable_full_determinism if training_args.full_determinism else set_seed)(training_args.seed)
    if not script_args.model_name_or_path:
        parser.error(
            "--model_name_or_path is required: train a TRM first (make demo, or "
            "examples/train_trm_sudoku.py) and pass its directory."
        )
    # "last": the newest complete checkpoint; none there is an error, never a silent new run
    resume = resolve_resume_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    if resume:
        print(f"Resuming from {resume}")
    model = AutoModelForPuzzleSolving.from_pretrained(script_args.model_name_or_path)
    if model.config.seq_len != script_args.size**2:
        parser.error(
            f"--size {script_args.size} gives {script_args.size**2} cells; the TRM expects "
            f"seq_len={model.config.seq_len}."
        )
    model.replace_q_head(script_args.q_head_type, script_args.q_head_hidden_size)

    seed = training_args.seed + script_args.data_seed_offset
    train_ds = generate_sudoku(
        script_args.num_train_puzzles, size=script_args.size, min_givens=script_args.min_givens, seed=seed
    )
    eval_ds = generate_sudoku(
        script_args.num_eval_puzzles, size=script_args.size, min_givens=script_args.min_givens, seed=seed + 10_000
    )
    trainer = DQNHaltingTrainer(model=model, args=training_args, train_dataset=train_ds, eval_dataset=eval_ds)
    trainer.train(resume_from_checkpoint=resume)
    metrics = trainer.evaluate()
    trainer.save_model()
    if trainer.is_world_process_zero():
        n, steps = int(metrics["eval_num_puzzles"]), model.config.halt_max_steps
        print(f"DQN halting ({script_args.q_head_type} head) on {n} held-out puzzles:")
        print(f"  exact accuracy at halt  {format_proportion(int(metrics['eval_num_exact']), n)}")
        print(f"  exact accuracy, {steps} steps {metrics['eval_exact_accuracy_max_steps']:.3f}")
        print(
            f"  mean supervision steps  {metrics['eval_mean_steps']:.2f} of {steps} "
            f"({metrics['eval_mean_steps'] / steps:.0%})"
        )
        print(f"  premature halts         {metrics['eval_premature_halt_rate']:.3f}")
        print(f"Saved to {training_args.output_dir} (halting='dqn').")
    return metrics


if __name__ == "__main__":
    main()
    end_distributed()
