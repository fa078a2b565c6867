"""`make demo`: a small TRM learns Sudoku on a CPU in minutes.

Generates Sudoku puzzles offline, trains a small TRM with deep supervision (progress bars, at most
`--minutes` of training), evaluates on held-out puzzles, saves the EMA model with
`save_pretrained`, reloads it through `AutoModelForPuzzleSolving`, and writes two PNGs: one
held-out board refined across the supervision steps (wrong cells in red) and the training curves.
"""

import argparse
import os
import sys
import time
from pathlib import Path


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib  # noqa: E402


matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from trm_common import TimeBudget  # noqa: E402

from hf_reason import AutoModelForPuzzleSolving, TRMConfig, TRMForPuzzleSolving  # noqa: E402
from hf_reason.data.sudoku import decode_sudoku, generate_sudoku, sudoku_vocab_size  # noqa: E402
from hf_reason.evaluation.statistics import format_proportion  # noqa: E402
from hf_reason.trainers import DeepSupervisionConfig, DeepSupervisionTrainer  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="outputs/demo", help="Where the model and PNGs go.")
    parser.add_argument("--minutes", type=float, default=8.0, help="Training time budget (wall clock).")
    parser.add_argument("--max_steps", type=int, default=1200, help="Training steps, if the budget allows.")
    parser.add_argument("--givens", type=int, default=45, help="Givens per 9x9 puzzle (fewer = harder).")
    parser.add_argument("--num_train", type=int, default=3000, help="Generated training puzzles.")
    parser.add_argument("--num_eval", type=int, default=300, help="Held-out puzzles.")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def plot_refinement(puzzle, solution, step_predictions, steps_used, path: Path) -> None:
    """One panel per supervision step; givens black, right answers blue, wrong ones red."""
    num_steps = step_predictions.shape[0]
    fig, axes = plt.subplots(1, num_steps, figsize=(2.6 * num_steps, 3.0))
    for step, ax in enumerate(axes):
        prediction = decode_sudoku(step_predictions[step].tolist())
        wrong = 0
        for r in range(9):
            for c in range(9):
                given = puzzle[r, c] != 0
                right = prediction[r, c] == solution[r, c]
                wrong += not right
                if not right:
                    ax.add_patch(plt.Rectangle((c, 8 - r), 1, 1, color="#f6c7c7"))
                colour = "black" if given else ("#1f5fbf" if right else "#c00000")
                ax.text(
                    c + 0.5,
                    8.5 - r,
                    str(prediction[r, c]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color=colour,
                    fontweight="bold" if given else "normal",
                )
        for i in range(10):
            width = 1.6 if i % 3 == 0 else 0.4
            ax.plot([i, i], [0, 9], color="black", lw=width)
            ax.plot([0, 9], [i, i], color="black", lw=width)
        ax.set_xlim(0, 9), ax.set_ylim(0, 9), ax.set_aspect("equal"), ax.axis("off")
        halted = " (halts)" if step + 1 == steps_used else ""
        ax.set_title(f"step {step + 1}: {wrong} wrong{halted}", fontsize=9)
    fig.suptitle("TRM refining a held-out Sudoku across supervision steps (red = wrong)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(log_history, path: Path) -> None:
    logs = [h for h in log_history if "lm_loss" in h]
    if not logs:
        return
    steps = [h["step"] for h in logs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot(steps, [h["lm_loss"] for h in logs], label="token loss")
    left.plot(steps, [h["q_halt_loss"] for h in logs], label="halting loss")
    left.set_xlabel("training step"), left.legend(), left.set_title("losses")
    for key, label in (("cell_accuracy", "cell accuracy"), ("exact_accuracy", "exact puzzles")):
        points = [(h["step"], h[key]) for h in logs if key in h]
        right.plot(*zip(*points), label=label)
    right.set_xlabel("training step"), right.set_ylim(0, 1), right.legend(), right.set_title("train accuracy (halted)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)

    print(
        f"Generating {args.num_train} training and {args.num_eval} held-out 9x9 Sudoku puzzles "
        f"({args.givens} givens, unique solutions)..."
    )
    train_ds = generate_sudoku(args.num_train, size=9, min_givens=args.givens, seed=args.seed)
    eval_ds = generate_sudoku(args.num_eval, size=9, min_givens=args.givens, seed=args.seed + 10_000)
    overlap = set(map(tuple, train_ds["input_ids"])) & set(map(tuple, eval_ds["input_ids"]))
    assert not overlap, "held-out puzzles must not appear in training"

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
        halt_exploration_prob=0.1,
        mixer="mlp",
        pos_encodings="none",
        # One extra position in front of the board (the method's puzzle-embedding prefix, one
        # identifier): the halting head reads it, so it is not also a cell of the board.
        puzzle_emb_ndim=64,
        puzzle_emb_len=1,
        num_puzzle_identifiers=1,
    )
    model = TRMForPuzzleSolving(config)
    print(
        f"TRM: hidden {config.hidden_size}, {config.L_layers} layers, H={config.H_cycles} L={config.L_cycles}, "
        f"up to {config.halt_max_steps} supervision steps, {sum(p.numel() for p in model.parameters()) / 1e3:.0f}k params"
    )

    training_args = DeepSupervisionConfig(
        output_dir=str(out / "run"),
        per_device_train_batch_size=64,
        per_device_eval_batch_size=100,
        max_steps=args.max_steps,
        learning_rate=2e-3,
        warmup_steps=30,
        weight_decay=0.1,
        ema_decay=0.99,
        logging_steps=max(1, min(50, args.max_steps // 10)),
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=args.seed,
        data_seed=args.seed,
    )
    trainer = DeepSupervisionTrainer(
        model=model,
        args=training_args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        callbacks=[TimeBudget(args.minutes * 60)],
    )
    before = trainer.evaluate()
    start = time.monotonic()
    trainer.train()
    minutes = (time.monotonic() - start) / 60
    after = trainer.evaluate()

    n = int(after["eval_num_puzzles"])
    print(f"\nTrained {trainer.state.global_step} steps in {minutes:.1f} min.")
    print(f"Held-out ({n} puzzles), before -> after training (EMA weights):")
    print(f"  cell accuracy     {before['eval_cell_accuracy']:.3f} -> {after['eval_cell_accuracy']:.3f}")
    print(
        f"  exact puzzles     {format_proportion(int(before['eval_num_exact']), n)} -> "
        f"{format_proportion(int(after['eval_num_exact']), n)}"
    )
    print(f"  exact, all steps  {after['eval_exact_accuracy_max_steps']:.3f}")
    print(
        f"  mean steps used   {after['eval_mean_steps']:.2f} of {config.halt_max_steps} "
        f"(halting accuracy {after['eval_halting_accuracy']:.3f})"
    )

    model_dir = out / "trm-sudoku"
    trainer.save_model(str(model_dir))
    reloaded = AutoModelForPuzzleSolving.from_pretrained(model_dir).eval()
    sample = torch.tensor(eval_ds["input_ids"][:64])
    same = torch.equal(reloaded.solve(sample).predictions, trainer.evaluation_model().solve(sample).predictions)
    print(
        f"Saved to {model_dir}; reloaded as {type(reloaded).__name__} with AutoModelForPuzzleSolving, "
        f"identical predictions: {same}"
    )

    # The board to show: the first held-out puzzle the model gets right only after several steps.
    solved = reloaded.solve(sample, use_halting=False)
    labels = torch.tensor(eval_ds["labels"][:64])
    exact_per_step = (solved.step_predictions == labels).all(-1)  # (steps, batch)
    first_right = torch.where(exact_per_step.any(0), exact_per_step.float().argmax(0), 99)
    index = int(torch.argmax(torch.where(first_right < 99, first_right, -1)))
    halting = reloaded.solve(sample[index : index + 1])
    plot_refinement(
        decode_sudoku(eval_ds["input_ids"][index]),
        decode_sudoku(eval_ds["labels"][index]),
        solved.step_predictions[:, index],
        int(halting.steps[0]),
        out / "sudoku_refinement.png",
    )
    plot_curves(trainer.state.log_history, out / "training_curves.png")
    print(f"Wrote {out / 'sudoku_refinement.png'} and {out / 'training_curves.png'}")


if __name__ == "__main__":
    main()
