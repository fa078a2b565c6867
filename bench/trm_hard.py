"""TRM on hard puzzles: the data's rates and rating, and accuracy against CPU time.

Three commands (docs/trm_hard.md has the full measured runs and their wall-time estimates):

    python bench/trm_hard.py data [--quick]
        Generation rates (extreme Sudoku per second, hard mazes per second) and the validation of the
        rating: the level distribution of random minimal puzzles, and for each level what the
        independent search-effort measure (backtracks) and the givens look like; the full rating
        of the puzzles the generator calls extreme.

    python bench/trm_hard.py train --task sudoku --variant baseline --output_dir runs/hard/sudoku-base
        Trains the `--recipe cpu-2h` model (examples/train_trm_sudoku.py or train_trm_maze.py) until
        `--budget_cpu_minutes` of process CPU time, scoring the EMA model on the held-out puzzles (1000
        extreme Sudoku, or hard mazes) every `--score_every_cpu_minutes`: exact and cell accuracy (Sudoku: blank cells)
        against CPU time in curve.json / curve.png (scoring time is not counted), the model in
        model/, per-puzzle results in final.json. Variants: baseline, curriculum (easy to hard by
        rating over hard + expert + extreme puzzles; `--curriculum pass_rate` for the model's own
        pass rate), mixed (the curriculum's data without the curriculum: its fair baseline), memory
        (the pattern memory bank). Rerunning the same command resumes from the newest checkpoint.

    python bench/trm_hard.py compare runs/hard/sudoku-base runs/hard/sudoku-curriculum ...
        At equal compute (each run's final checkpoint, same budget): exact accuracy with Wilson 95%
        intervals and the exact McNemar test of every run against the first, and cell accuracy per
        puzzle with a paired bootstrap interval of the difference (`name: ours X, reference Y,
        ratio Z` lines), compare.json and compare.png.

Add `--quick` to any command for tiny sizes (about a minute or two): it checks the script runs.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Optional


os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from hf_reason.data.maze import MAZE_HARD, generate_mazes  # noqa: E402
from hf_reason.data.sudoku import SUDOKU_BLANK_TOKEN, _geometry, _make_puzzle, generate_sudoku  # noqa: E402
from hf_reason.data.sudoku_rating import SUDOKU_LEVELS, rate_sudoku  # noqa: E402
from hf_reason.evaluation.statistics import format_proportion, mcnemar_from_outcomes  # noqa: E402
from hf_reason.file_io import atomic_path, atomic_write_json  # noqa: E402
from hf_reason.models.trm.supervision import IGNORE_INDEX, score_cells  # noqa: E402


# ----------------------------------------------------------------------------- data
def data_command(args) -> dict:
    n_rate, n_extreme, n_level, n_maze = (40, 3, 2, 20) if args.quick else (2000, 100, 30, 1000)
    out: dict = {}
    start = time.perf_counter()
    extreme = generate_sudoku(n_extreme, level="extreme", seed=args.seed, progress=False)
    seconds = time.perf_counter() - start
    out["sudoku_extreme_per_second"] = n_extreme / seconds
    out["extreme_full_ratings"] = {str(r): extreme["rating"].count(r) for r in sorted(set(extreme["rating"]))}
    out["extreme_givens"] = [min(extreme["num_givens"]), max(extreme["num_givens"])]
    # Random minimal puzzles, rated: the share of each level, and the search effort per level (an
    # independent measure: backtracks of the solver's uniqueness proof).
    geo, rng = _geometry(9), np.random.default_rng(args.seed + 1)
    levels, effort = dict.fromkeys(SUDOKU_LEVELS, 0), {level: [] for level in SUDOKU_LEVELS}
    for _ in range(n_rate):
        puzzle, _, backtracks = _make_puzzle(geo, rng, 0)
        level = rate_sudoku(np.array(puzzle).reshape(9, 9), max_technique="aic").level
        levels[level] += 1
        effort[level].append(backtracks)
    out["random_minimal_levels"] = {k: v / n_rate for k, v in levels.items()}
    out["backtracks_by_level"] = {
        k: {"n": len(v), "median": float(np.median(v)), "p90": float(np.percentile(v, 90))}
        for k, v in effort.items()
        if v
    }
    out["generated_backtracks_by_level"] = {}
    for i, level in enumerate(SUDOKU_LEVELS):
        ds = generate_sudoku(n_level, level=level, seed=args.seed + 100 + i, progress=False)
        out["generated_backtracks_by_level"][level] = float(np.median(ds["difficulty"]))
    start = time.perf_counter()
    mazes = generate_mazes(n_maze, seed=args.seed, progress=False, **MAZE_HARD)
    out["maze_hard_per_second"] = n_maze / (time.perf_counter() - start)
    out["maze_hard_path_length"] = {q: float(np.percentile(mazes["path_length"], q)) for q in (5, 50, 95)}
    for key, value in out.items():
        print(
            f"{key}: {json.dumps(value) if isinstance(value, dict) else round(value, 3) if isinstance(value, float) else value}"
        )
    atomic_write_json(Path(args.output_dir) / "data.json", out, indent=2)
    return out


# ----------------------------------------------------------------------------- train
def cpu_seconds() -> float:
    return time.process_time()


class ScoreCurve(TrainerCallback):
    """Scores the evaluation model on the held-out set every `every_s` CPU seconds of training and
    stops at `budget_s`; the scoring's own CPU time is not counted. The curve is rewritten atomically
    after each point and each checkpoint, and a resumed run continues its clock from where it stood
    when its checkpoint was saved."""

    def __init__(self, eval_ds, path: Path, every_s: float, budget_s: float, batch_size: int, blank_token=None):
        self.eval_ds, self.path, self.every_s, self.budget_s = eval_ds, path, every_s, budget_s
        self.batch_size, self.blank_token = batch_size, blank_token
        saved = json.loads(path.read_text()) if path.is_file() else {}
        self.points, self.saves = saved.get("points", []), saved.get("saves", {})
        self.offset = self.points[-1]["cpu_s"] if self.points else 0.0
        self.trainer = None
        self.start = self.excluded = 0.0
        self.last = None  # (step, per-puzzle scores) of the newest point: the final scoring reuses it

    def spent(self) -> float:
        return self.offset + cpu_seconds() - self.start - self.excluded

    def on_train_begin(self, args, state, control, **kwargs):
        # A resumed run restarts at its checkpoint: points scored after it are dropped with the steps.
        self.points = [p for p in self.points if p["step"] <= state.global_step]
        self.saves = {k: v for k, v in self.saves.items() if int(k) <= state.global_step}
        # The clock as it stood when the checkpoint was written (older curves: the last point before it).
        fallback = self.points[-1]["cpu_s"] if self.points else 0.0
        self.offset = self.saves.get(str(state.global_step), fallback)
        self.start, self.excluded = cpu_seconds(), 0.0

    def on_save(self, args, state, control, **kwargs):
        self.saves[str(state.global_step)] = self.spent()
        self.write()

    def write(self) -> None:
        atomic_write_json(self.path, {"points": self.points, "saves": self.saves}, indent=2)

    def on_step_end(self, args, state, control, **kwargs):
        spent = self.spent()
        due = not self.points or spent - self.points[-1]["cpu_s"] >= self.every_s
        if spent >= self.budget_s or due:
            self.score(state.global_step, spent)
        if spent >= self.budget_s:
            control.should_training_stop = True

    def scores_at(self, step: int) -> dict:
        """Per-puzzle scores of the model at `step`: those of the newest point when it was scored at that
        step (the budget's point), so the held-out set is not scored twice; else scored now."""
        if self.last is not None and self.last[0] == step:
            return self.last[1]
        return solve_and_score(self.trainer.evaluation_model(), self.eval_ds, self.batch_size, self.blank_token)

    def score(self, step: int, spent: float) -> list:
        begin = cpu_seconds()
        exact = solve_and_score(self.trainer.evaluation_model(), self.eval_ds, self.batch_size, self.blank_token)
        self.excluded += cpu_seconds() - begin
        self.last = (step, exact)
        self.points.append(
            {"step": step, "cpu_s": spent, "exact": float(np.mean(exact["exact"])), "cell": exact["cell"]}
        )
        print(
            f"[curve] step {step}, {spent / 60:.1f} CPU-min: exact {self.points[-1]['exact']:.4f}, cell {exact['cell']:.4f}"
        )
        self.write()
        return exact["exact"]


@torch.no_grad()
def solve_and_score(model, dataset, batch_size: int, blank_token: Optional[int] = None) -> dict:
    """Exact accuracy (every cell right) and cell accuracy per puzzle, and cell accuracy over all
    puzzles, after all supervision steps (no halting). With `blank_token` (Sudoku), cell accuracy
    counts only the cells blank in the puzzle: copying the givens earns nothing."""
    was_training = model.training
    model.eval()
    exact, cells, correct, total = [], [], 0, 0
    for start in range(0, len(dataset), batch_size):
        rows = dataset[start : start + batch_size]
        ids, labels = torch.tensor(rows["input_ids"]), torch.tensor(rows["labels"])
        predictions = model.solve(ids.to(model.device), use_halting=False).predictions.cpu()
        exact += score_cells(predictions, labels).exact.tolist()
        if blank_token is not None:
            labels = labels.masked_fill(ids != blank_token, IGNORE_INDEX)
        scores = score_cells(predictions, labels)
        cells += scores.accuracy.tolist()
        correct, total = correct + int(scores.correct.sum()), total + int(scores.total.sum())
    model.train(was_training)
    return {"exact": exact, "cells": cells, "cell": correct / max(1, total)}


def train_argv(args) -> list:
    argv = ["--recipe", "cpu-2h", "--output_dir", str(Path(args.output_dir) / "checkpoints"), "--seed", str(args.seed)]
    argv += ["--disable_tqdm", "true", "--eval_strategy", "no"]
    argv += ["--data_cache_dir", str(args.data_dir or Path(args.output_dir).parent / "data-cache")]
    if args.variant in ("curriculum", "mixed"):
        argv += ["--train_levels", "hard,expert,extreme"] if args.task == "sudoku" else []
    if args.variant == "curriculum":
        argv += ["--curriculum", args.curriculum]
    if args.variant == "memory":
        argv += ["--memory_slots", str(args.memory_slots)]
    if args.quick:
        argv += [
            "--hidden_size",
            "32",
            "--num_heads",
            "2",
            "--H_cycles",
            "1",
            "--L_cycles",
            "2",
            "--halt_max_steps",
            "2",
        ]
        argv += ["--per_device_train_batch_size", "4", "--save_steps", "5", "--logging_steps", "5"]
        argv += ["--num_augmentations", "2", "--curriculum_probe_every", "5", "--curriculum_probe_size", "4"]
        argv += ["--num_train_puzzles", "6"] if args.task == "sudoku" else ["--num_train_mazes", "6"]
    argv += args.extra
    if Path(args.output_dir, "checkpoints").is_dir() and any(
        Path(args.output_dir, "checkpoints").glob("checkpoint-*")
    ):
        argv += ["--resume_from_checkpoint", "last"]
    return argv


def train_command(args) -> None:
    script = "train_trm_sudoku" if args.task == "sudoku" else "train_trm_maze"
    module = __import__(script)
    from trm_common import build_model, cached_generation, parse_args

    from hf_reason.data.maze import MAZE_VOCAB_SIZE
    from hf_reason.data.recipes import num_puzzle_identifiers

    sys.argv = [script, *train_argv(args)]
    defaults = getattr(module, "MAZE_MODEL_DEFAULTS", None)
    data_args, model_args, training_args = parse_args(
        module.SudokuArguments if args.task == "sudoku" else module.MazeArguments, defaults, module.RECIPES
    )
    data_args.time_budget_minutes = None  # the CPU budget below ends the run
    if args.task == "sudoku":
        if args.quick:
            data_args.num_eval_puzzles = 8
        train_ds, eval_ds = module.build_sudoku_data(data_args, training_args.seed)
        vocab, seq_len, blank_token = 11, 81, SUDOKU_BLANK_TOKEN
    else:
        if args.variant in ("curriculum", "mixed"):  # easy to hard: 30x30 mazes of every path length
            data_args.maze_preset, data_args.maze_size = None, 30
        if args.quick:
            data_args.num_eval_mazes = 8
        train_ds, _, side = module.build_maze_data(data_args, training_args.seed)
        # held-out: the hard preset whatever the training data
        eval_ds = cached_generation(
            data_args.data_cache_dir,
            generate_mazes,
            num_mazes=data_args.num_eval_mazes,
            seed=training_args.seed + 10_000,
            progress=False,
            **MAZE_HARD,
        )
        vocab, seq_len, blank_token = MAZE_VOCAB_SIZE, side * side, None
    model = build_model(model_args, vocab, seq_len, num_puzzle_identifiers(train_ds))
    out = Path(args.output_dir)
    every_s, budget_s = args.score_every_cpu_minutes * 60, args.budget_cpu_minutes * 60
    curve = ScoreCurve(eval_ds, out / "curve.json", every_s, budget_s, args.eval_batch, blank_token)
    import trm_common

    # the curriculum's schedule follows the same CPU clock as the budget
    trainer, _ = trm_common.train(
        model,
        train_ds,
        None,
        training_args,
        callbacks=[curve],
        plan=data_args,
        progress=lambda: curve.spent() / budget_s,
    )
    final = curve.scores_at(trainer.state.global_step)
    trainer.evaluation_model().save_pretrained(out / "model")
    atomic_write_json(
        out / "final.json",
        {
            "variant": args.variant,
            "task": args.task,
            "cpu_s": curve.spent(),
            "step": trainer.state.global_step,
            # CPU-seconds buy less work when threads wait on each other or runs share the cores
            "torch_threads": torch.get_num_threads(),
            **final,
        },
    )
    plot([out], out / "curve.png")
    print(
        f"final: exact {np.mean(final['exact']):.4f} on {len(final['exact'])} held-out puzzles; model in {out / 'model'}"
    )


# ----------------------------------------------------------------------------- compare
def plot(runs, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for run in runs:
        points = json.loads((Path(run) / "curve.json").read_text())["points"]
        ax.plot([p["cpu_s"] / 3600 for p in points], [p["exact"] for p in points], marker="o", label=Path(run).name)
    ax.set_xlabel("training CPU time (hours, all threads)")
    ax.set_ylabel("exact accuracy (held-out)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def paired_bootstrap(ours, reference, resamples: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of the paired differences `ours - reference` and its 95% percentile-bootstrap interval
    (puzzles resampled with their pairs; a few lines of numpy rather than a scipy dependency)."""
    diff = np.asarray(ours, dtype=float) - np.asarray(reference, dtype=float)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(low), float(high)


def compare_command(args) -> None:
    finals = [json.loads((Path(run) / "final.json").read_text()) for run in args.runs]
    reference, n = finals[0], len(finals[0]["exact"])
    ref_text = f"{format_proportion(sum(reference['exact']), n)} exact at {reference['cpu_s'] / 60:.0f} CPU-min"
    rows = []
    for run, final in zip(args.runs, finals):
        if len(final["exact"]) != n:
            raise SystemExit(f"{run} was scored on {len(final['exact'])} puzzles, {args.runs[0]} on {n}")
        b, c, p = mcnemar_from_outcomes(final["exact"], reference["exact"])
        ours = sum(final["exact"])
        ratio = ours / max(1, sum(reference["exact"]))
        print(
            f"{Path(run).name}: ours {format_proportion(ours, n)} exact at {final['cpu_s'] / 60:.0f} CPU-min, "
            f"reference {ref_text}, ratio {ratio:.3f} (McNemar b={b} c={c} p={p:.3g})"
        )
        row = {"run": str(run), "exact": ours / n, "cpu_s": final["cpu_s"], "mcnemar_b": b, "mcnemar_c": c, "p": p}
        # Far below the goal exact accuracy hardly moves; the cells right, per puzzle, still do.
        diff, low, high = paired_bootstrap(final["cells"], reference["cells"])
        print(
            f"{Path(run).name} cells: ours {np.mean(final['cells']):.4f} cell accuracy, reference "
            f"{np.mean(reference['cells']):.4f}, ratio {np.mean(final['cells']) / max(1e-9, np.mean(reference['cells'])):.3f} "
            f"(paired difference {diff:+.4f}, 95% bootstrap [{low:+.4f}, {high:+.4f}])"
        )
        row.update(cell=float(np.mean(final["cells"])), cell_difference=diff, cell_difference_95=[low, high])
        rows.append(row)
    atomic_write_json(Path(args.output_dir) / "compare.json", rows, indent=2)
    plot(args.runs, Path(args.output_dir) / "compare.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="generation rates and rating validation")
    train = commands.add_parser("train", help="train and score against CPU time (resumable)")
    compare = commands.add_parser("compare", help="runs at equal compute, paired")
    for sub in (data, train, compare):
        sub.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--output_dir", default="outputs/bench_trm_hard")
    train.add_argument("--task", choices=("sudoku", "maze"), default="sudoku")
    train.add_argument("--variant", choices=("baseline", "curriculum", "mixed", "memory"), default="baseline")
    train.add_argument("--curriculum", choices=("rating", "pass_rate"), default="rating")
    train.add_argument("--memory_slots", type=int, default=4096, help="bank size of the memory variant")
    train.add_argument("--budget_cpu_minutes", type=float, default=240.0, help="process CPU time (all threads)")
    train.add_argument("--score_every_cpu_minutes", type=float, default=20.0)
    train.add_argument("--eval_batch", type=int, default=200)
    train.add_argument(
        "--data_dir",
        default=None,
        help="cache of the generated puzzles, shared by the runs that use the same data (default: "
        "data-cache beside --output_dir); a resumed run reads its data from here",
    )
    train.add_argument("extra", nargs="*", help="more flags of the example script, after --")
    compare.add_argument("runs", nargs="+", help="run folders of `train`; the first is the reference")
    args = parser.parse_args()
    if args.command == "train" and args.quick:
        args.budget_cpu_minutes, args.score_every_cpu_minutes, args.eval_batch = 0.5, 0.2, 8
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    {"data": data_command, "train": train_command, "compare": compare_command}[args.command](args)


if __name__ == "__main__":
    main()
