"""Train a TRM to find shortest paths in generated grid mazes, with deep supervision.

    python examples/train_trm_maze.py --output_dir runs/trm-maze --maze_size 15 --max_steps 5000
    accelerate launch --config_file accelerate_configs/cpu_2proc.yaml examples/train_trm_maze.py ...

The method's maze setting is a 30x30 maze with attention and RoPE (`--maze_size 30`; the model
defaults here are `--mixer attention --pos_encodings rope`). Every flag is listed by --help.
"""

from dataclasses import dataclass, field
from typing import Optional

from trm_common import build_model, parse_args, train

from hf_reason.data.maze import MAZE_VOCAB_SIZE, augment_maze_dataset, generate_mazes
from hf_reason.distributed import end_distributed


MAZE_MODEL_DEFAULTS = dict(mixer="attention", pos_encodings="rope")


@dataclass
class MazeArguments:
    maze_size: int = field(
        default=15,
        metadata={
            "help": "Maze side, walls included, 9 to 30 (30 is the method's setting; an even side is the "
            "odd maze one smaller plus a wall row and column)."
        },
    )
    pad_to: Optional[int] = field(default=None, metadata={"help": "Pad grids to pad_to x pad_to (e.g. 30)."})
    loop_prob: float = field(default=0.0, metadata={"help": "Probability of removing extra walls (several paths)."})
    num_train_mazes: int = field(default=1000, metadata={"help": "Generated training mazes (before augmentation)."})
    num_eval_mazes: int = field(default=200, metadata={"help": "Held-out mazes (other seed)."})
    num_augmentations: int = field(default=0, metadata={"help": "Dihedral copies per training maze (at most 7)."})


def main():
    # Mazes need spatial attention, as in the method: these are the defaults here, and an explicit
    # `--mixer mlp --pos_encodings none` is honoured.
    data_args, model_args, training_args = parse_args(MazeArguments, model_defaults=MAZE_MODEL_DEFAULTS)
    seed = training_args.seed
    kwargs = dict(size=data_args.maze_size, loop_prob=data_args.loop_prob, pad_to=data_args.pad_to)
    train_ds = generate_mazes(data_args.num_train_mazes, seed=seed, **kwargs)
    if data_args.num_augmentations:
        train_ds = augment_maze_dataset(train_ds, data_args.num_augmentations, seed=seed)
    eval_ds = generate_mazes(data_args.num_eval_mazes, seed=seed + 10_000, **kwargs)
    side = data_args.pad_to or data_args.maze_size
    model = build_model(model_args, vocab_size=MAZE_VOCAB_SIZE, seq_len=side * side)
    _, metrics = train(model, train_ds, eval_ds, training_args)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})


if __name__ == "__main__":
    main()
    end_distributed()
