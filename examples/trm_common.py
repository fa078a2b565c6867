"""Shared plumbing of the TRM training examples: model arguments, recipes, curricula, CPU fallback,
resume, timing."""

import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import torch  # noqa: E402
from datasets import load_from_disk  # noqa: E402
from transformers import HfArgumentParser, TrainerCallback, enable_full_determinism, set_seed  # noqa: E402

from hf_reason import AutoModelForPuzzleSolving, TRMConfig, TRMForPuzzleSolving  # noqa: E402
from hf_reason.data.curriculum import CURRICULUM_SCHEDULES, CurriculumSampler  # noqa: E402
from hf_reason.file_io import atomic_write_json  # noqa: E402
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
    puzzle_emb_len: int = field(
        default=0, metadata={"help": "Positions of the puzzle embedding (0: ceil(puzzle_emb_ndim / hidden_size))."}
    )
    loss_type: str = field(default="stablemax", metadata={"help": "Token loss: 'stablemax' or 'softmax'."})
    memory_slots: int = field(
        default=0, metadata={"help": "Slots of the pattern memory bank (0 = off; see TRMConfig.memory_slots)."}
    )
    memory_retrieval: str = field(
        default="exact", metadata={"help": "Memory retrieval: 'exact' or 'lsh' (approximate, for large banks)."}
    )


@dataclass
class PlanArguments:
    """How to train: a recipe's presets, a curriculum, a time budget (shared by the Sudoku and maze examples)."""

    recipe: Optional[str] = field(
        default=None,
        metadata={
            "help": "Presets of every flag (explicit flags win): 'paper' (the method's setting, for GPUs) or "
            "'cpu-2h' (the best 2 hours of this CPU). See docs/trm_hard.md."
        },
    )
    curriculum: str = field(
        default="none",
        metadata={"help": "Easy-to-hard curriculum: 'none', 'rating' (fixed schedule) or 'pass_rate' (the model's)."},
    )
    curriculum_buckets: int = field(default=4, metadata={"help": "Difficulty buckets of the curriculum."})
    curriculum_warmup: float = field(
        default=0.5, metadata={"help": "'rating': fraction of training (steps or time budget) to unlock every bucket."}
    )
    curriculum_pass_threshold: float = field(
        default=0.5, metadata={"help": "'pass_rate': probe exact rate that unlocks the next bucket."}
    )
    curriculum_probe_every: int = field(
        default=200, metadata={"help": "'pass_rate': optimizer steps between probes of the newest bucket."}
    )
    curriculum_probe_size: int = field(default=64, metadata={"help": "'pass_rate': puzzles per probe."})
    time_budget_minutes: Optional[float] = field(
        default=None, metadata={"help": "Stop training after this many minutes of wall time (None: max_steps)."}
    )
    data_cache_dir: Optional[str] = field(
        default=None,
        metadata={
            "help": "Keep generated puzzles here, keyed by their generation arguments, so that a resumed or "
            "repeated run reads them instead of generating them again (None: no cache)."
        },
    )


def cached_generation(cache_dir: Optional[str], generate, **kwargs):
    """`generate(**kwargs)` (a dataset generator such as `generate_sudoku`), read from `cache_dir` when an
    earlier call with the same function and arguments saved it there. Extreme puzzles take minutes to
    generate; the cache makes a resumed run start training at once and lets runs share their data."""
    if cache_dir is None:
        return generate(**kwargs)
    key = json.dumps({"function": f"{generate.__module__}.{generate.__name__}", **kwargs}, sort_keys=True)
    folder = Path(cache_dir) / f"{generate.__name__}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    if (folder / "dataset_info.json").is_file():
        return load_from_disk(str(folder))
    dataset = generate(**kwargs)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed into place: a killed run never leaves half a cache entry.
    tmp = folder.parent / f".{folder.name}.{os.getpid()}.tmp"
    dataset.save_to_disk(str(tmp))
    atomic_write_json(tmp / "generation.json", json.loads(key), indent=2)
    try:
        os.replace(tmp, folder)
    except OSError:  # another process cached the same data first
        shutil.rmtree(tmp, ignore_errors=True)
    return load_from_disk(str(folder))


def requested_recipe(argv=None) -> Optional[str]:
    """The `--recipe` value of the command line, read before parsing (its presets become the defaults)."""
    argv = sys.argv[1:] if argv is None else argv
    for i, arg in enumerate(argv):
        if arg == "--recipe" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--recipe="):
            return arg.split("=", 1)[1]
    return None


def parse_args(script_args_class, model_defaults: Optional[dict] = None, recipes: Optional[dict] = None):
    """Parses `script_args_class`, `TRMModelArguments` and `DeepSupervisionConfig` from the command line,
    then seeds every generator with `--seed`.

    `model_defaults` replaces the defaults of some model flags for one task (e.g. attention for
    mazes): they are the parser's defaults, so `--help` shows them and an explicit flag wins.
    `recipes` maps a `--recipe` name to presets of any flag (a flat dict), applied the same way.
    """
    parser = HfArgumentParser((script_args_class, TRMModelArguments, DeepSupervisionConfig))
    # Without a GPU, train on the CPU; under `accelerate launch` the processes then form a gloo group.
    parser.set_defaults(use_cpu=not torch.cuda.is_available(), report_to="none", **(model_defaults or {}))
    recipe = requested_recipe()
    if recipe is not None:
        if not recipes or recipe not in recipes:
            raise SystemExit(f"--recipe must be one of {sorted(recipes or {})}, got {recipe!r}")
        parser.set_defaults(**recipes[recipe])
    script_args, model_args, training_args = parser.parse_args_into_dataclasses()
    if getattr(script_args, "curriculum", "none") not in ("none", *CURRICULUM_SCHEDULES):
        raise SystemExit(
            f"--curriculum must be 'none' or one of {CURRICULUM_SCHEDULES}, got {script_args.curriculum!r}"
        )
    # The Trainer seeds itself only once the model exists: seeding as it does, before the scripts
    # build data and model, makes `--seed` fix the initial weights too.
    (enable_full_determinism if training_args.full_determinism else set_seed)(training_args.seed)
    return script_args, model_args, training_args


# The method's optimisation (the reference's cfg_pretrain.yaml with the README's Sudoku-Extreme and
# Maze-Hard commands): global batch 768, AdamW lr 1e-4 (beta2 0.95), 2000 warm-up steps then constant,
# weight decay 1.0, puzzle-embedding sign-SGD lr 1e-4 and decay 1.0, EMA 0.999, bfloat16. 50000
# "epochs" of one augmented copy per base puzzle (1000) at batch 768 are 65104 optimizer steps; the
# reference evaluates every 5000 epochs (6510 steps). The batch is split over the processes.
PAPER_GLOBAL_BATCH = 768
# The method's network (trm.yaml): hidden 512, 8 heads, expansion 4, 2 layers, 16 supervision steps
# with exploration 0.1, a puzzle embedding of hidden size over 16 positions. The tasks add their
# mixer and cycles.
PAPER_MODEL = dict(
    hidden_size=512,
    num_heads=8,
    expansion=4.0,
    L_layers=2,
    halt_max_steps=16,
    halt_exploration_prob=0.1,
    puzzle_emb_ndim=512,
    puzzle_emb_len=16,
)
PAPER_TRAINING = dict(
    learning_rate=1e-4,
    puzzle_emb_lr=1e-4,
    weight_decay=1.0,
    puzzle_emb_weight_decay=1.0,
    adam_beta2=0.95,
    warmup_steps=2000,
    lr_scheduler_type="constant_with_warmup",
    ema_decay=0.999,
    max_steps=65104,
    eval_strategy="steps",
    eval_steps=6510,
    save_steps=6510,
    save_total_limit=2,
    bf16=True,
    logging_steps=100,
)
# The best 2 hours of a small CPU (docs/trm_hard.md, "cpu-2h"): a short run wants a higher learning
# rate, a light weight decay and a short EMA; the budget, not max_steps, ends it.
CPU_2H_TRAINING = dict(
    learning_rate=1e-3,
    puzzle_emb_lr=1e-3,
    weight_decay=0.1,
    puzzle_emb_weight_decay=0.1,
    adam_beta2=0.95,
    warmup_steps=100,
    lr_scheduler_type="constant_with_warmup",
    ema_decay=0.99,
    max_steps=1_000_000,
    save_steps=500,
    save_total_limit=2,
    logging_steps=50,
    time_budget_minutes=120.0,
)


def paper_batch_size() -> int:
    """The method's global batch of 768 split over the processes of `accelerate launch` (WORLD_SIZE)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if PAPER_GLOBAL_BATCH % world:
        raise SystemExit(f"the paper's batch of {PAPER_GLOBAL_BATCH} does not split over {world} processes")
    return PAPER_GLOBAL_BATCH // world


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


def read_checkpoint_extra(args, state, name: str) -> dict:
    """A callback's own state saved beside the checkpoint training resumes from (`{}` in a new run)."""
    path = Path(args.output_dir) / f"checkpoint-{state.global_step}" / name
    return json.loads(path.read_text()) if state.global_step and path.is_file() else {}


def write_checkpoint_extra(args, state, name: str, data: dict) -> None:
    """Saves a callback's own state into the checkpoint just written (`on_save`; main process only)."""
    folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
    if state.is_world_process_zero and folder.is_dir():
        atomic_write_json(folder / name, data)


class TimeBudget(TrainerCallback):
    """Stops training once `seconds` of wall time have passed (for demos on small machines). The time
    spent is saved with every checkpoint, so a resumed run gets what is left of the budget."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start, self.offset = None, 0.0

    def elapsed(self) -> float:
        return self.offset + time.monotonic() - self.start

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()
        self.offset = read_checkpoint_extra(args, state, "time_budget.json").get("elapsed_s", 0.0)

    def on_step_end(self, args, state, control, **kwargs):
        if self.elapsed() > self.seconds:
            control.should_training_stop = True

    def on_save(self, args, state, control, **kwargs):
        write_checkpoint_extra(args, state, "time_budget.json", {"elapsed_s": self.elapsed()})


class CurriculumTrainer(DeepSupervisionTrainer):
    """`DeepSupervisionTrainer` drawing its training rows from a `CurriculumSampler` (one process)."""

    def __init__(self, *args, sampler: CurriculumSampler, **kwargs):
        self.curriculum_sampler = sampler
        super().__init__(*args, **kwargs)
        if self.args.world_size > 1:
            raise ValueError("The curriculum samples on one process; run it without `accelerate launch`.")

    def _get_train_sampler(self, train_dataset=None):
        return self.curriculum_sampler


class CurriculumCallback(TrainerCallback):
    """Moves the curriculum on: `"rating"` by the fraction of training done (steps, or time when a
    budget is set); `"pass_rate"` by probing the newest bucket every `probe_every` steps."""

    def __init__(
        self, sampler: CurriculumSampler, dataset, probe_every: int, probe_size: int, budget_s=None, progress=None
    ):
        self.sampler, self.dataset = sampler, dataset
        self.probe_every, self.probe_size, self.budget_s = probe_every, probe_size, budget_s
        self.progress = progress
        self.start, self.offset = None, 0.0
        self.trainer = None  # set by `train`: the probe solves with the trainer's evaluation model

    def elapsed(self) -> float:
        return self.offset + time.monotonic() - self.start

    def on_train_begin(self, args, state, control, **kwargs):
        # A resumed run keeps the buckets it had unlocked and the time it had spent.
        saved = read_checkpoint_extra(args, state, "curriculum.json")
        self.sampler.unlocked = max(self.sampler.unlocked, saved.get("unlocked", 1))
        self.start, self.offset = time.monotonic(), saved.get("elapsed_s", 0.0)

    def on_save(self, args, state, control, **kwargs):
        write_checkpoint_extra(
            args, state, "curriculum.json", {"unlocked": self.sampler.unlocked, "elapsed_s": self.elapsed()}
        )

    def on_step_begin(self, args, state, control, **kwargs):
        fraction = state.global_step / max(1, state.max_steps)
        if self.progress is not None:
            fraction = max(fraction, self.progress())
        elif self.budget_s:
            fraction = max(fraction, self.elapsed() / self.budget_s)
        self.sampler.set_progress(fraction)

    def on_step_end(self, args, state, control, **kwargs):
        if self.sampler.schedule != "pass_rate" or state.global_step % self.probe_every:
            return
        rows = self.sampler.frontier[: self.probe_size].tolist()
        probe = self.dataset.select(rows)
        model = self.trainer.evaluation_model()
        ids = torch.tensor(probe["input_ids"], device=model.device)
        labels = torch.tensor(probe["labels"], device=model.device)
        solved = model.solve(ids, use_halting=False).predictions
        rate = ((solved == labels) | (labels == -100)).all(-1).float().mean().item()
        if self.sampler.report_pass_rate(rate):
            print(
                f"curriculum: step {state.global_step}, pass rate {rate:.2f}: bucket {self.sampler.unlocked} unlocked"
            )


def difficulty_of(dataset) -> list:
    """The curriculum's difficulty per row: a Sudoku's `rating` (else its search `difficulty`), a maze's
    `path_length`."""
    for column in ("rating", "path_length", "difficulty"):
        if column in dataset.column_names:
            return dataset[column]
    raise ValueError(
        f"the curriculum needs a difficulty column (rating, path_length, difficulty); got {dataset.column_names}"
    )


def train(
    model, train_dataset, eval_dataset, training_args: DeepSupervisionConfig, callbacks=(), plan=None, progress=None
):
    """Trains (resuming when `--resume_from_checkpoint last` or a path is given) and saves the EMA model.

    `plan` (`PlanArguments`, optional) adds a time budget and a curriculum. `progress` (optional, a
    callable returning the fraction of training done) moves a `"rating"` curriculum when something
    other than steps or `plan.time_budget_minutes` ends the run (e.g. a CPU-time budget)."""
    # "last": the newest complete checkpoint; none there is an error, never a silent new run
    resume = resolve_resume_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    if resume:
        print(f"Resuming from {resume}")
    callbacks = list(callbacks)
    budget_s = plan.time_budget_minutes * 60 if plan is not None and plan.time_budget_minutes else None
    if budget_s:
        callbacks.append(TimeBudget(budget_s))
    kwargs = dict(model=model, args=training_args, train_dataset=train_dataset, eval_dataset=eval_dataset)
    curriculum = None
    if plan is not None and plan.curriculum != "none":
        steps = training_args.max_steps
        draws = steps * training_args.per_device_train_batch_size if steps > 0 else None
        sampler = CurriculumSampler(
            difficulty_of(train_dataset),
            num_samples=draws or int(len(train_dataset) * training_args.num_train_epochs),
            schedule=plan.curriculum,
            num_buckets=plan.curriculum_buckets,
            warmup_fraction=plan.curriculum_warmup,
            pass_threshold=plan.curriculum_pass_threshold,
            seed=training_args.seed,
        )
        curriculum = CurriculumCallback(
            sampler, train_dataset, plan.curriculum_probe_every, plan.curriculum_probe_size, budget_s, progress
        )
        trainer = CurriculumTrainer(**kwargs, sampler=sampler, callbacks=[*callbacks, curriculum])
        curriculum.trainer = trainer
    else:
        trainer = DeepSupervisionTrainer(**kwargs, callbacks=callbacks)
    for callback in callbacks:  # callbacks that score or probe the evaluation model get the trainer
        if hasattr(callback, "trainer"):
            callback.trainer = trainer
    trainer.train(resume_from_checkpoint=resume)
    print(f"Trained to global step {trainer.state.global_step}.")
    metrics = trainer.evaluate() if eval_dataset is not None else {}
    trainer.save_model()
    return trainer, metrics
