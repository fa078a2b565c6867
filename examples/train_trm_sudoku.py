"""Train a TRM on generated Sudoku with deep supervision.

    python examples/train_trm_sudoku.py --output_dir runs/trm-sudoku --max_steps 2000
    accelerate launch --config_file accelerate_configs/cpu_2proc.yaml examples/train_trm_sudoku.py \
        --output_dir runs/trm-sudoku --max_steps 2000

Every flag is listed by --help (script, model and DeepSupervisionConfig / TrainingArguments flags).
`--resume_from_checkpoint last` continues from the newest complete checkpoint in --output_dir.
"""

from dataclasses import dataclass, field
from typing import Optional

from trm_common import build_model, parse_args, train

from hf_reason.data.sudoku import augment_sudoku_dataset, generate_sudoku, sudoku_vocab_size
from hf_reason.distributed import end_distributed


@dataclass
class SudokuArguments:
    size: int = field(default=9, metadata={"help": "Board side: 9 or 4."})
    num_train_puzzles: int = field(
        default=2000, metadata={"help": "Generated training puzzles (before augmentation)."}
    )
    num_eval_puzzles: int = field(default=200, metadata={"help": "Held-out puzzles for evaluation (other seed)."})
    min_givens: Optional[int] = field(
        default=None, metadata={"help": "Stop removing clues at this many givens (None: minimal puzzles, hardest)."}
    )
    min_difficulty: int = field(
        default=0, metadata={"help": "Keep puzzles whose solver needs >= this many backtracks."}
    )
    num_augmentations: int = field(
        default=0,
        metadata={"help": "Validity-preserving augmented copies per training puzzle (the method uses 1000)."},
    )
    data_seed_offset: int = field(default=0, metadata={"help": "Added to --seed for data generation."})


def main():
    data_args, model_args, training_args = parse_args(SudokuArguments)
    seed = training_args.seed + data_args.data_seed_offset
    train_ds = generate_sudoku(
        data_args.num_train_puzzles,
        size=data_args.size,
        min_givens=data_args.min_givens,
        min_difficulty=data_args.min_difficulty,
        seed=seed,
    )
    if data_args.num_augmentations:
        train_ds = augment_sudoku_dataset(train_ds, data_args.num_augmentations, seed=seed)
    eval_ds = generate_sudoku(
        data_args.num_eval_puzzles,
        size=data_args.size,
        min_givens=data_args.min_givens,
        min_difficulty=data_args.min_difficulty,
        seed=seed + 10_000,
    )
    model = build_model(model_args, vocab_size=sudoku_vocab_size(data_args.size), seq_len=data_args.size**2)
    _, metrics = train(model, train_ds, eval_ds, training_args)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})


if __name__ == "__main__":
    main()
    end_distributed()
