"""Train a TRM on generated Sudoku with deep supervision.

    python examples/train_trm_sudoku.py --output_dir runs/trm-sudoku --max_steps 2000
    accelerate launch --config_file accelerate_configs/cpu_2proc.yaml examples/train_trm_sudoku.py \
        --output_dir runs/trm-sudoku --max_steps 2000

Hard puzzles (docs/trm_hard.md):

    python examples/train_trm_sudoku.py --recipe cpu-2h --output_dir runs/sudoku-cpu-2h
    accelerate launch --config_file accelerate_configs/multi_gpu_ddp.yaml --num_processes 4 \
        examples/train_trm_sudoku.py --recipe paper --output_dir runs/sudoku-paper

`--recipe paper` is the method's Sudoku-Extreme setting (1000 extreme puzzles x 1000 augmentations,
MLP mixer, hidden 512, H=3 / L=6, batch 768 split over the processes, lr 1e-4, weight decay 1.0,
EMA 0.999); `--recipe cpu-2h` the best 2 hours of a small CPU. Explicit flags override a recipe.
`--curriculum rating|pass_rate` trains easy to hard (with `--train_levels` mixing levels).
Every flag is listed by --help (script, model and DeepSupervisionConfig / TrainingArguments flags).
`--resume_from_checkpoint last` continues from the newest complete checkpoint in --output_dir.
"""

from dataclasses import dataclass, field
from typing import Optional

from trm_common import (
    CPU_2H_TRAINING,
    PAPER_MODEL,
    PAPER_TRAINING,
    PlanArguments,
    build_model,
    cached_generation,
    paper_batch_size,
    parse_args,
    requested_recipe,
    train,
)

from hf_reason.data.recipes import build_sudoku_recipe, num_puzzle_identifiers
from hf_reason.data.sudoku import generate_sudoku, sudoku_vocab_size
from hf_reason.distributed import end_distributed


@dataclass
class SudokuArguments(PlanArguments):
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
    level: Optional[str] = field(
        default=None,
        metadata={"help": "Human-technique level of the puzzles: easy, medium, hard, expert or extreme (None: any)."},
    )
    train_levels: Optional[str] = field(
        default=None,
        metadata={
            "help": "Comma-separated levels of the training puzzles, in equal shares (e.g. 'hard,expert,extreme' "
            "for a curriculum); None: --level."
        },
    )
    num_augmentations: int = field(
        default=0,
        metadata={"help": "Validity-preserving augmented copies per training puzzle (the method uses 1000)."},
    )
    puzzle_identifier_per_example: bool = field(
        default=False,
        metadata={"help": "One puzzle identifier per augmented example (the Sudoku recipe uses the blank 0)."},
    )
    data_seed_offset: int = field(default=0, metadata={"help": "Added to --seed for data generation."})


SUDOKU_DATA = dict(num_train_puzzles=1000, level="extreme", num_eval_puzzles=1000)
RECIPES = {
    # The method's Sudoku-Extreme setting (reference README: arch.mlp_t=True arch.pos_encodings=none,
    # L_layers=2, H_cycles=3, L_cycles=6; trm.yaml: hidden 512, 8 heads, expansion 4, puzzle embedding of
    # hidden size over 16 positions, halt_max_steps 16, exploration 0.1).
    "paper": dict(
        **SUDOKU_DATA,
        num_augmentations=1000,
        **PAPER_MODEL,
        H_cycles=3,
        L_cycles=6,
        mixer="mlp",
        pos_encodings="none",
        per_device_eval_batch_size=256,
        **PAPER_TRAINING,
    ),
    # docs/trm_hard.md explains the choice: the method's depth of recursion (H=3, L=6) at a quarter of
    # its width, half its supervision steps, and 100 augmentations (more than 2 hours can read).
    "cpu-2h": dict(
        **SUDOKU_DATA,
        num_augmentations=100,
        hidden_size=128,
        expansion=4.0,
        L_layers=2,
        H_cycles=3,
        L_cycles=6,
        halt_max_steps=8,
        halt_exploration_prob=0.1,
        mixer="mlp",
        pos_encodings="none",
        puzzle_emb_ndim=128,
        puzzle_emb_len=1,
        per_device_train_batch_size=64,
        per_device_eval_batch_size=200,
        **CPU_2H_TRAINING,
    ),
}


def build_sudoku_data(args: SudokuArguments, seed: int):
    """The training set (N puzzles of the asked levels x augmentations) and the held-out set."""
    levels = args.train_levels.split(",") if args.train_levels else [args.level]
    shares = [
        args.num_train_puzzles // len(levels) + (i < args.num_train_puzzles % len(levels)) for i in range(len(levels))
    ]
    kwargs = dict(size=args.size, min_givens=args.min_givens, min_difficulty=args.min_difficulty)
    parts = [
        cached_generation(
            args.data_cache_dir,
            generate_sudoku,
            num_puzzles=n,
            level=level or None,
            rate=bool(level) or args.curriculum != "none",  # a level implies the rating: one cache entry
            seed=seed + 1000 * i,
            progress=False,
            **kwargs,
        )
        for i, (level, n) in enumerate(zip(levels, shares))
    ]
    from datasets import concatenate_datasets

    base = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    train_ds = build_sudoku_recipe(
        len(base),
        args.num_augmentations,
        puzzle_identifiers=args.puzzle_identifier_per_example,
        seed=seed,
        source=base,
    )
    eval_ds = cached_generation(
        args.data_cache_dir,
        generate_sudoku,
        num_puzzles=args.num_eval_puzzles,
        level=args.level,
        seed=seed + 10_000,
        progress=False,
        **kwargs,
    )
    return train_ds, eval_ds


def main():
    if requested_recipe() == "paper":
        RECIPES["paper"]["per_device_train_batch_size"] = paper_batch_size()
    data_args, model_args, training_args = parse_args(SudokuArguments, recipes=RECIPES)
    seed = training_args.seed + data_args.data_seed_offset
    train_ds, eval_ds = build_sudoku_data(data_args, seed)
    model = build_model(
        model_args,
        vocab_size=sudoku_vocab_size(data_args.size),
        seq_len=data_args.size**2,
        num_puzzle_identifiers=num_puzzle_identifiers(train_ds),
    )
    _, metrics = train(model, train_ds, eval_ds, training_args, plan=data_args)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})


if __name__ == "__main__":
    main()
    end_distributed()
