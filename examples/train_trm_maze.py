"""Train a TRM to find shortest paths in generated grid mazes, with deep supervision.

    python examples/train_trm_maze.py --output_dir runs/trm-maze --maze_size 15 --max_steps 5000
    accelerate launch --config_file accelerate_configs/cpu_2proc.yaml examples/train_trm_maze.py ...

Hard mazes (docs/trm_hard.md):

    python examples/train_trm_maze.py --recipe cpu-2h --output_dir runs/maze-cpu-2h
    accelerate launch --config_file accelerate_configs/multi_gpu_ddp.yaml --num_processes 4 \
        examples/train_trm_maze.py --recipe paper --output_dir runs/maze-paper

The method's maze setting is a 30x30 maze with attention and RoPE (`--maze_size 30`; the model
defaults here are `--mixer attention --pos_encodings rope`); `--maze_preset hard` keeps the 30x30
mazes whose shortest path is longer than 110 moves (Maze-Hard). `--recipe paper` is the method's
Maze-Hard setting (1000 mazes x 8 symmetries, hidden 512, H=3 / L=4, batch 768 split over the
processes); `--recipe cpu-2h` the best 2 hours of a small CPU. Every flag is listed by --help.
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

from hf_reason.data.maze import MAZE_HARD, MAZE_VOCAB_SIZE, augment_maze_dataset, generate_mazes
from hf_reason.data.recipes import num_puzzle_identifiers
from hf_reason.distributed import end_distributed


MAZE_MODEL_DEFAULTS = dict(mixer="attention", pos_encodings="rope")


@dataclass
class MazeArguments(PlanArguments):
    maze_size: int = field(
        default=15,
        metadata={
            "help": "Maze side, walls included, 9 to 30 (30 is the method's setting; an even side is the "
            "odd maze one smaller plus a wall row and column)."
        },
    )
    maze_preset: Optional[str] = field(
        default=None,
        metadata={"help": "'hard': 30x30 perfect mazes with shortest paths over 110 moves (overrides size/loops)."},
    )
    min_path_length: int = field(
        default=0, metadata={"help": "Keep mazes whose shortest path has >= this many moves."}
    )
    pad_to: Optional[int] = field(default=None, metadata={"help": "Pad grids to pad_to x pad_to (e.g. 30)."})
    loop_prob: float = field(default=0.0, metadata={"help": "Probability of removing extra walls (several paths)."})
    num_train_mazes: int = field(default=1000, metadata={"help": "Generated training mazes (before augmentation)."})
    num_eval_mazes: int = field(default=200, metadata={"help": "Held-out mazes (other seed)."})
    num_augmentations: int = field(default=0, metadata={"help": "Dihedral copies per training maze (at most 7)."})


MAZE_DATA = dict(maze_preset="hard", num_train_mazes=1000, num_augmentations=7, num_eval_mazes=1000)
RECIPES = {
    # The method's Maze-Hard setting (reference README: L_layers=2, H_cycles=3, L_cycles=4, attention with
    # RoPE; trm.yaml: hidden 512, 8 heads, expansion 4, puzzle embedding of hidden size over 16 positions).
    "paper": dict(
        **MAZE_DATA,
        **PAPER_MODEL,
        H_cycles=3,
        L_cycles=4,
        mixer="attention",
        pos_encodings="rope",
        per_device_eval_batch_size=64,
        **PAPER_TRAINING,
    ),
    # 900 tokens of attention per example: docs/trm_hard.md explains the small width and recursion.
    "cpu-2h": dict(
        **MAZE_DATA,
        hidden_size=64,
        num_heads=4,
        expansion=2.0,
        L_layers=2,
        H_cycles=2,
        L_cycles=3,
        halt_max_steps=8,
        halt_exploration_prob=0.1,
        mixer="attention",
        pos_encodings="rope",
        puzzle_emb_ndim=64,
        puzzle_emb_len=1,
        per_device_train_batch_size=32,
        per_device_eval_batch_size=100,
        **CPU_2H_TRAINING,
    ),
}


def build_maze_data(args: MazeArguments, seed: int):
    """The training mazes (with their dihedral copies) and the held-out ones."""
    if args.maze_preset not in (None, "hard"):
        raise SystemExit(f"--maze_preset must be 'hard' or unset, got {args.maze_preset!r}")
    kwargs = dict(size=args.maze_size, loop_prob=args.loop_prob, min_path_length=args.min_path_length)
    if args.maze_preset == "hard":
        kwargs = dict(MAZE_HARD)
    train_ds = cached_generation(
        args.data_cache_dir, generate_mazes, num_mazes=args.num_train_mazes, seed=seed, pad_to=args.pad_to, **kwargs
    )
    if args.num_augmentations:
        train_ds = augment_maze_dataset(train_ds, args.num_augmentations, seed=seed)
    eval_ds = cached_generation(
        args.data_cache_dir,
        generate_mazes,
        num_mazes=args.num_eval_mazes,
        seed=seed + 10_000,
        pad_to=args.pad_to,
        **kwargs,
    )
    return train_ds, eval_ds, args.pad_to or kwargs["size"]


def main():
    if requested_recipe() == "paper":
        RECIPES["paper"]["per_device_train_batch_size"] = paper_batch_size()
    # Mazes need spatial attention, as in the method: these are the defaults here, and an explicit
    # `--mixer mlp --pos_encodings none` is honoured.
    data_args, model_args, training_args = parse_args(
        MazeArguments, model_defaults=MAZE_MODEL_DEFAULTS, recipes=RECIPES
    )
    train_ds, eval_ds, side = build_maze_data(data_args, training_args.seed)
    model = build_model(
        model_args,
        vocab_size=MAZE_VOCAB_SIZE,
        seq_len=side * side,
        num_puzzle_identifiers=num_puzzle_identifiers(train_ds),
    )
    _, metrics = train(model, train_ds, eval_ds, training_args, plan=data_args)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})


if __name__ == "__main__":
    main()
    end_distributed()
