"""TRM versus a direct (non-recursive) model of the same parameters, same data, same CPU time.

Both models are built from the same blocks (TRMBlock: MLP-mixer + SwiGLU, hidden 64, 2 layers),
so they have the same parameter count; the direct model applies its blocks once and is trained
with plain supervised cross-entropy, the TRM recurses (H/L cycles) with deep supervision and
learned halting. Each trains for `--minutes` of wall time on the same generated Sudoku set, then
both are scored on the same held-out puzzles with their EMA weights (the same decay, updated after
every optimizer step: the TRM recipe's EMA is given to the baseline too, so neither is scored with
an advantage the other lacks). Prints one comparison line per `--givens` value (exact-puzzle
accuracy with Wilson 95% intervals, and the ratio).

The default is 40 givens: at 50 of 81 cells given most puzzles fall to naked singles and both
models approach 100%, which says little. `--givens 40 50` reports both (twice the time).

    python bench/trm_vs_direct.py --minutes 4
"""

import argparse
import os
import sys
import time
from pathlib import Path


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn  # noqa: E402
from transformers import Trainer, TrainerCallback, TrainingArguments  # noqa: E402
from trm_common import TimeBudget  # noqa: E402

from hf_reason import TRMConfig, TRMForPuzzleSolving  # noqa: E402
from hf_reason.data.sudoku import generate_sudoku, sudoku_vocab_size  # noqa: E402
from hf_reason.evaluation.statistics import wilson_interval  # noqa: E402
from hf_reason.models.trm.modeling_trm import IGNORE_INDEX, TRMBlock, stablemax_cross_entropy  # noqa: E402
from hf_reason.trainers import DeepSupervisionConfig, DeepSupervisionTrainer  # noqa: E402


class DirectPuzzleModel(nn.Module):
    """Embeddings -> the same TRM blocks applied once -> token head: no recursion, no carry."""

    def __init__(self, config: TRMConfig):
        super().__init__()
        reference = TRMForPuzzleSolving(config)
        self.embed = reference.model.embed_tokens
        self.scale = config.hidden_size**0.5
        self.blocks = nn.ModuleList([TRMBlock(config, i) for i in range(config.L_layers)])
        for block, initialised in zip(self.blocks, reference.model.layers):
            block.load_state_dict(initialised.state_dict())
        self.head = reference.lm_head

    def forward(self, input_ids, labels=None):
        hidden = self.scale * self.embed(input_ids)
        for block in self.blocks:
            hidden = block(hidden)
        logits = self.head(hidden)
        loss = None
        if labels is not None:
            mask = labels != IGNORE_INDEX
            loss = (stablemax_cross_entropy(logits, labels, mask).sum(-1) / mask.sum(-1)).mean().float()
        return {"loss": loss, "logits": logits}


class EMACallback(TrainerCallback):
    """The deep-supervision trainer's EMA (AveragedModel, updated after every optimizer step), for a plain Trainer."""

    def __init__(self, model: nn.Module, decay: float):
        self.model = model
        self.ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True).eval()

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.ema.update_parameters(self.model)


def exact_matches(predictions: torch.Tensor, labels: torch.Tensor) -> int:
    return int((predictions == labels).all(-1).sum())


EMA_DECAY = 0.99


def compare(args, givens: int) -> str:
    train_ds = generate_sudoku(args.num_train, min_givens=givens, seed=args.seed, progress=False)
    eval_ds = generate_sudoku(args.num_eval, min_givens=givens, seed=args.seed + 10_000, progress=False)
    eval_inputs, eval_labels = torch.tensor(eval_ds["input_ids"]), torch.tensor(eval_ds["labels"])
    config = TRMConfig(
        vocab_size=sudoku_vocab_size(9),
        seq_len=81,
        hidden_size=64,
        num_heads=2,
        expansion=2.0,
        L_layers=2,
        H_cycles=2,
        L_cycles=3,
        halt_max_steps=6,
        mixer="mlp",
        pos_encodings="none",
    )
    # Identical optimisation for both: AdamW(beta2=0.95), warm-up then constant, no clipping (as
    # the TRM recipe), same batches, EMA weights scored.
    common = dict(
        per_device_train_batch_size=64,
        learning_rate=2e-3,
        warmup_steps=30,
        weight_decay=0.1,
        adam_beta2=0.95,
        lr_scheduler_type="constant_with_warmup",
        dataloader_drop_last=True,
        max_grad_norm=0.0,
        max_steps=100_000,
        logging_steps=100,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=args.seed,
        data_seed=args.seed,
    )
    budget = args.minutes * 60

    torch.manual_seed(args.seed)
    trm = TRMForPuzzleSolving(config)
    trm_args = DeepSupervisionConfig(output_dir="outputs/bench_trm", ema_decay=EMA_DECAY, **common)
    trm_trainer = DeepSupervisionTrainer(
        model=trm, args=trm_args, train_dataset=train_ds, callbacks=[TimeBudget(budget)]
    )
    start = time.monotonic()
    trm_trainer.train()
    trm_time = time.monotonic() - start
    solver = trm_trainer.evaluation_model().eval()  # the EMA weights
    trm_solved = solver.solve(eval_inputs)
    trm_exact = exact_matches(trm_solved.predictions, eval_labels)

    torch.manual_seed(args.seed)
    direct = DirectPuzzleModel(config)
    direct_ema = EMACallback(direct, EMA_DECAY)
    direct_args = TrainingArguments(output_dir="outputs/bench_direct", **common)
    direct_trainer = Trainer(
        model=direct, args=direct_args, train_dataset=train_ds, callbacks=[TimeBudget(budget), direct_ema]
    )
    start = time.monotonic()
    direct_trainer.train()
    direct_time = time.monotonic() - start
    with torch.no_grad():
        direct_exact = exact_matches(direct_ema.ema.module(eval_inputs)["logits"].argmax(-1), eval_labels)

    n = len(eval_ds)
    trm_params = sum(p.numel() for p in trm.parameters())
    direct_params = sum(p.numel() for p in direct.parameters())

    def fmt(k):
        low, high = wilson_interval(k, n)
        return f"{100 * k / n:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"

    ratio = trm_exact / direct_exact if direct_exact else (float("inf") if trm_exact else float("nan"))
    return (
        f"trm_vs_direct (9x9 Sudoku, {givens} givens, n={n} held-out, {args.minutes:g} CPU-min each, "
        f"{trm_params / 1e3:.0f}k vs {direct_params / 1e3:.0f}k params, EMA {EMA_DECAY} weights for both): "
        f"exact ours(TRM) {fmt(trm_exact)} in {trm_trainer.state.global_step} steps/{trm_time / 60:.1f} min "
        f"(mean {trm_solved.steps.float().mean():.2f} sup. steps), "
        f"reference(direct) {fmt(direct_exact)} in {direct_trainer.state.global_step} steps/{direct_time / 60:.1f} min, "
        f"ratio {ratio:.2f}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=4.0, help="Training wall time per model.")
    parser.add_argument(
        "--givens",
        type=int,
        nargs="+",
        default=[40],
        help="Givens per puzzle (fewer = harder); several values give one line each.",
    )
    parser.add_argument("--num_train", type=int, default=3000)
    parser.add_argument("--num_eval", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for givens in args.givens:
        print(compare(args, givens), flush=True)


if __name__ == "__main__":
    main()
