"""Shared plumbing of the TRM training examples: model arguments, CPU fallback, resume, timing."""

import os
import time
from dataclasses import dataclass, field
from typing import Optional


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402
from transformers import HfArgumentParser, TrainerCallback, enable_full_determinism, set_seed  # noqa: E402

from hf_reason import AutoModelForPuzzleSolving, TRMConfig, TRMForPuzzleSolving  # noqa: E402
from hf_reason.trainers import DeepSupervisionConfig, DeepSupervisionTrainer, resolve_resume_checkpoint  # noqa: E402


@dataclass
class TRMModelArguments:
    """The TRM to train (ignored fields when `model_name_or_path` is given)."""

    model_name_or_path: Optional[str] = field(
        default=None, metadata={"help": "Start from this TRM checkpoint (directory or Hub id) instead of a new model."}
    )
    hidden_size: int = field(default=128, metadata={"help": "Width of the network and of the states y and z."})
    num_heads: int = field(default=4, metadata={"help": "Attention heads (mixer=attention); must divide hidden_size."})
    expansion: float = field(default=4.0, metadata={"help": "SwiGLU expansion factor."})
    L_layers: int = field(default=2, metadata={"help": "Blocks in the recursive network."})
    H_cycles: int = field(
        default=3, metadata={"help": "Outer cycles per supervision step (all but the last no-grad)."}
    )
    L_cycles: int = field(default=6, metadata={"help": "Latent updates per outer cycle."})
    halt_max_steps: int = field(default=16, metadata={"help": "Maximum supervision steps per example."})
    halt_exploration_prob: float = field(
        default=0.1, metadata={"help": "Halting exploration probability in training."}
    )
    halting: str = field(default="bce", metadata={"help": "Halting rule: 'bce' (TRM) or 'q_learning' (HRM)."})
    mixer: str = field(default="mlp", metadata={"help": "Token mixing: 'mlp' (MLP-mixer, for Sudoku) or 'attention'."})
    pos_encodings: str = field(default="none", metadata={"help": "'rope' (attention only), 'learned' or 'none'."})
    puzzle_emb_ndim: int = field(
        default=0,
        metadata={"help": "Puzzle-identifier embedding size (0 = off; the ARC example defaults to hidden_size)."},
    )
    loss_type: str = field(default="stablemax", metadata={"help": "Token loss: 'stablemax' or 'softmax'."})


def parse_args(script_args_class, model_defaults: Optional[dict] = None):
    """Parses `script_args_class`, `TRMModelArguments` and `DeepSupervisionConfig` from the command line,
    then seeds every generator with `--seed`.

    `model_defaults` replaces the defaults of some model flags for one task (e.g. attention for
    mazes): they are the parser's defaults, so `--help` shows them and an explicit flag wins.
    """
    parser = HfArgumentParser((script_args_class, TRMModelArguments, DeepSupervisionConfig))
    # Without a GPU, train on the CPU; under `accelerate launch` the processes then form a gloo group.
    parser.set_defaults(use_cpu=not torch.cuda.is_available(), report_to="none", **(model_defaults or {}))
    script_args, model_args, training_args = parser.parse_args_into_dataclasses()
    # The Trainer seeds itself only once the model exists: seeding as it does, before the scripts
    # build data and model, makes `--seed` fix the initial weights too.
    (enable_full_determinism if training_args.full_determinism else set_seed)(training_args.seed)
    return script_args, model_args, training_args


def build_model(args: TRMModelArguments, vocab_size: int, seq_len: int, num_puzzle_identifiers: int = 1):
    if args.model_name_or_path:
        return AutoModelForPuzzleSolving.from_pretrained(args.model_name_or_path)
    config = TRMConfig(
        vocab_size=vocab_size,
        seq_len=seq_len,
        num_puzzle_identifiers=max(1, num_puzzle_identifiers),
        **{k: v for k, v in vars(args).items() if k != "model_name_or_path"},
    )
    return TRMForPuzzleSolving(config)


class TimeBudget(TrainerCallback):
    """Stops training once `seconds` of wall time have passed (for demos on small machines)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if time.monotonic() - self.start > self.seconds:
            control.should_training_stop = True


def train(model, train_dataset, eval_dataset, training_args: DeepSupervisionConfig, callbacks=()):
    """Trains (resuming when `--resume_from_checkpoint last` or a path is given) and saves the EMA model."""
    # "last": the newest complete checkpoint; none there is an error, never a silent new run
    resume = resolve_resume_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    if resume:
        print(f"Resuming from {resume}")
    trainer = DeepSupervisionTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        callbacks=list(callbacks),
    )
    trainer.train(resume_from_checkpoint=resume)
    print(f"Trained to global step {trainer.state.global_step}.")
    metrics = trainer.evaluate() if eval_dataset is not None else {}
    trainer.save_model()
    return trainer, metrics
